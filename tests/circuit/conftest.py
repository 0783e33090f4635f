"""Shared helpers for the circuit tests: the example circuits and document mutation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CIRCUITS = ROOT / "circuits"
EXAMPLES = sorted(CIRCUITS.glob("*.yaml"))
NO_MEMORY_LIMIT = 0


def load_document(name: str) -> dict[str, Any]:
    """An example circuit as a plain, unshared JSON tree (YAML aliases become copies)."""
    with (CIRCUITS / name).open(encoding="utf-8") as file:
        data = yaml.safe_load(file)
    copied: dict[str, Any] = json.loads(json.dumps(data))
    return copied


def at(document: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``"populations.E.size"``, list items as ``"targets.0"``)."""
    node: Any = document
    for key in path.split("."):
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def changed(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the value at ``path`` replaced (or added)."""
    result = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = at(result, ".".join(parents)) if parents else result
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


def removed(document: dict[str, Any], path: str) -> dict[str, Any]:
    """A copy of ``document`` without the key at ``path``."""
    result = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = at(result, ".".join(parents)) if parents else result
    del node[last]
    return result


@pytest.fixture
def tiny() -> dict[str, Any]:
    """circuits/tiny.yaml as a fresh document."""
    return load_document("tiny.yaml")


def full_document() -> dict[str, Any]:
    """A small circuit that uses every feature of the format (except connection files)."""
    uniform = {"uniform": {"low": 0.0, "high": 1.0}}
    return {
        "apiVersion": "brainsim/v1",
        "name": "everything",
        "description": "every key of the format",
        "simulation": {"dt_ms": 0.5, "duration_ms": 50.0, "seed": 7},
        "parameters": {"scale": 1.0, "n_exc": "${round(40 * scale)}", "w": 20.0},
        "populations": {
            "exc": {
                "size": "${n_exc}",
                "model": "lif",
                "random_variables": {"r": uniform},
                "params": {
                    "tau_m_ms": {"lognormal": {"mu": 2.3, "sigma": 0.1, "low": 5.0,
                                               "high": 20.0, "bound": "clip"}},
                    "c_m_pF": 250.0,
                    "v_th_mV": {"expr": "-50 - 5 * r"},
                    "v_reset_mV": -65.0,
                    "e_l_mV": {"normal": {"mean": -65.0, "std": 1.0, "low": -70.0,
                                          "high": -60.0}},
                    "t_ref_ms": 2.0,
                    "i_e_pA": 100.0,
                    "synapse": "exponential",
                    "tau_syn_ex_ms": 0.5,
                    "tau_syn_in_ms": {"uniform": {"low": 1.0, "high": 2.0}},
                },
                "initial": {
                    "v_mV": {"expr": "-70 + 10 * r"},
                    "i_syn_ex_pA": 0.0,
                    "i_syn_in_pA": {"normal": {"mean": 0.0, "std": 1.0}},
                },
            },
            "inh": {
                "size": 10,
                "model": "izhikevich",
                "random_variables": {"q": uniform},
                "params": {
                    "a": {"expr": "0.02 + 0.08 * q"},
                    "b": 0.25,
                    "c_mV": -65.0,
                    "d": 2.0,
                    "v_peak_mV": 30.0,
                    "i_e_pA": 0.0,
                    "integration": "euler",
                    "synapse": "delta",
                },
                "initial": {"v_mV": -65.0, "u": {"expr": "0.25 * -65 + q"}},
            },
        },
        "projections": {
            "ee": {"source": "exc", "target": "exc", "weight": "${w}",
                   "connectivity": {"rule": "fixed_indegree", "indegree": 5,
                                    "allow_autapses": False, "allow_multapses": False},
                   "delay_ms": {"normal": {"mean": 1.5, "std": 0.5, "low": 0.5}}},
            "ei": {"source": "exc", "target": "inh", "weight": {"uniform": {"low": 0, "high": 1}},
                   "connectivity": {"rule": "fixed_outdegree", "outdegree": 3}, "delay_ms": 1.0},
            "ie": {"source": "inh", "target": "exc", "weight": -40.0,
                   "connectivity": {"rule": "pairwise_bernoulli", "p": 0.2}},
            "ii": {"source": "inh", "target": "inh", "weight": -1.0,
                   "connectivity": {"rule": "all_to_all", "allow_autapses": False}},
            "ii_one": {"source": "inh", "target": "inh", "weight": -1.0,
                       "connectivity": {"rule": "one_to_one"}, "delay_ms": 2.0},
            "ie_total": {"source": "inh", "target": "exc", "weight": -1.0,
                         "connectivity": {"rule": "fixed_total_number", "n": 30,
                                          "allow_multapses": False}},
        },
        "stimuli": {
            "drive": {"type": "poisson", "targets": ["exc", {"population": "inh",
                                                             "node_ids": [0, 2, 4]}],
                      "rate_hz": {"uniform": {"low": 100.0, "high": 200.0}}, "weight": 50.0,
                      "delay_ms": 1.0, "start_ms": 5.0, "stop_ms": 40.0},
            "bias": {"type": "dc", "targets": [{"population": "exc", "node_ids": {"first": 10}}],
                     "amplitude_pA": 20.0, "weight": 0.5, "start_ms": 0.0, "stop_ms": None},
            "jitter": {"type": "noise", "targets": ["inh"], "mean_pA": 1.0,
                       "std_pA": {"uniform": {"low": 0.5, "high": 1.0}}, "weight": 1.0},
            "train": {"type": "spike_source_array",
                      "targets": [{"population": "exc",
                                   "node_ids": {"range": {"start": 1, "stop": 30, "step": 3}}}],
                      "spike_times_ms": [1.0, 2.0, 2.0, 10.5], "weight": 30.0, "delay_ms": 0.5},
            "digits": {"type": "rate", "targets": [{"population": "exc", "node_ids": {"first": 3}}],
                       "data": [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]], "features": [3, 0, 1],
                       "start_ms": 1.0, "present_ms": 5.0, "rest_ms": 1.0, "order": [1, 0, 1],
                       "max_rate_hz": 500.0, "gain": 0.5, "offset": 0.1, "mode": "poisson",
                       "weight": uniform, "delay_ms": 1.0},
            "onset": {"type": "latency", "targets": [{"population": "inh", "node_ids": [3, 7]}],
                      "data": [[0.2, 0.9]], "present_ms": 10.0, "tau_ms": 2.0, "threshold": 0.05,
                      "linear": True, "normalize": True, "clip": True, "weight": 10.0},
            "petals": {"type": "population",
                       "targets": [{"population": "exc", "node_ids": {"range": {"start": 30}}}],
                       "data": [[0.5, 0.1], [0.9, 0.2]], "present_ms": 4.0,
                       "n_neurons_per_feature": 5, "low": -0.5, "high": 1.5, "sigma": 0.2,
                       "max_rate_hz": 100.0, "weight": "${w}"},
            "sensor": {"type": "delta", "targets": [{"population": "exc", "node_ids": [10, 11]}],
                       "targets_off": [{"population": "inh", "node_ids": [8, 9]}],
                       "data": [[0.0, 1.0], [0.5, 0.4], [0.1, 0.9]], "features": [0, 1],
                       "start_ms": 2.0, "step_ms": 1.5, "threshold": 0.3, "padding": True,
                       "off_spikes": True, "weight": 5.0, "delay_ms": 1.0},
            "replay": {"type": "spike_trains",
                       "targets": [{"population": "exc", "node_ids": [20, 21]}],
                       "data": [[1.0, 2.0], []], "weight": 5.0, "delay_ms": 0.5},
        },
        "recordings": {
            "spikes": "all",
            "state": [
                {"population": "exc", "variables": ["v", "i_syn_ex", "i_syn_in"],
                 "node_ids": {"range": {"step": 10}}, "interval_ms": 1.0},
                {"population": "inh", "variables": ["u", "v"], "node_ids": [9, 1]},
            ],
        },
    }  # fmt: skip
