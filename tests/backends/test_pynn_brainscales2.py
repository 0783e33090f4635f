"""``pynn:brainscales2``: the script brainsim writes for BrainScaleS-2, run against a stand-in
for pynn_brainscales (``bss2_standin/``, on ``PYTHONPATH`` for that run only) that records its
calls and answers with spikes of an Euler LIF in the chip's units. The real pynn_brainscales
(built in the EBRAINS/Electronic Vision(s) containers, not on PyPI) and the chip cannot be
reached here: these tests check the API calls and the parameter mapping, not the hardware."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from brainsim.backends import backend
from brainsim.backends.pynn import BSS2_SPEEDUP, voltage_map, weight_units
from brainsim.circuit import parse_circuit
from brainsim.circuit.spec import Circuit
from brainsim.engine.populations import neuron_values

STANDIN = Path(__file__).resolve().parent / "bss2_standin"
DURATION_MS = 200.0


def document() -> dict[str, Any]:
    """A small E/I network the chip takes: exponential synapses, one delay, whole levels."""
    neuron = {
        "tau_m_ms": 20.0, "c_m_pF": 250.0, "v_th_mV": -55.0, "v_reset_mV": -65.0,
        "e_l_mV": -70.0, "t_ref_ms": 2.0, "tau_syn_ex_ms": 2.0, "tau_syn_in_ms": 4.0,
        "synapse": "exponential",
    }  # fmt: skip
    return {
        "apiVersion": "brainsim/v1",
        "name": "bss2-small",
        "simulation": {"dt_ms": 0.1, "duration_ms": DURATION_MS, "seed": 7},
        "populations": {
            # tau_m drawn per neuron: written as an array.
            "E": {
                "size": 40,
                "model": "lif",
                "params": {**neuron, "tau_m_ms": {"uniform": {"low": 10.0, "high": 30.0}}},
            },
            "I": {"size": 10, "model": "lif", "params": neuron},
        },
        "projections": {
            "EE": {
                "source": "E",
                "target": "E",
                "weight": 100.0,
                "delay_ms": 1.0,
                "connectivity": {"rule": "fixed_indegree", "indegree": 4},
            },
            "EI": {
                "source": "E",
                "target": "I",
                "weight": 100.0,
                "delay_ms": 1.0,
                "connectivity": {"rule": "fixed_indegree", "indegree": 4},
            },
            "IE": {
                "source": "I",
                "target": "E",
                "weight": -400.0,
                "delay_ms": 1.0,
                "connectivity": {"rule": "fixed_indegree", "indegree": 2},
            },
        },
        "stimuli": {
            "drive": {
                "type": "poisson",
                "targets": ["E", "I"],
                "rate_hz": 3000.0,
                "weight": 300.0,
                "delay_ms": 1.0,
            },
            "kick": {
                "type": "spike_source_array",
                "targets": ["I"],
                "spike_times_ms": [50.0, 100.0],
                "weight": 300.0,
                "delay_ms": 1.0,
            },
            "replay": {
                "type": "spike_trains",
                "targets": [{"population": "E", "node_ids": [0, 1]}],
                "data": [[20.0, 40.0], [30.0]],
                "weight": 300.0,
                "delay_ms": 1.0,
            },
        },
        "recordings": {"spikes": ["E", "I"]},
    }


def run_standin(folder: Path) -> list[dict[str, Any]]:
    """``python run.py brainscales2`` in ``folder`` on the stand-in; its recorded calls."""
    log = folder / "calls.json"
    env = {**os.environ, "PYTHONPATH": str(STANDIN), "BSS2_STANDIN_LOG": str(log)}
    done = subprocess.run(
        [sys.executable, "run.py", "brainscales2", "--out", "results"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    calls: list[dict[str, Any]] = json.loads(log.read_text())
    return calls


def calls_named(calls: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for c in calls if c["call"] == name]


def cadc(circuit: Circuit, mv: float) -> float:
    """The documented map: 60 + k (v - low), k CADC per mV."""
    low, per_mv = voltage_map(circuit)
    return 60 + per_mv * (mv - low)


def test_the_script_runs_with_the_documented_mapping(tmp_path: Path) -> None:
    circuit = parse_circuit(document())
    checked = backend("pynn:brainscales2")
    assert checked.check(circuit) == []
    artefact = checked.compile(circuit, tmp_path)
    source = Path(artefact.paths[0]).read_text()
    ast.parse(source)
    compile(source, "run.py", "exec")
    assert "CalibHXNeuronCuba" in source
    calls = run_standin(tmp_path)

    # Voltages: lowest -70 mV, span 15 mV -> k = floor(100 / 15) = 6 CADC/mV.
    assert voltage_map(circuit) == (-70.0, 6.0)
    populations = {c["label"]: c for c in calls_named(calls, "Population")}
    for name in ("E", "I"):
        given = populations[name]["given"]
        assert given["v_rest"] == cadc(circuit, -70.0) == 60
        assert given["v_reset"] == cadc(circuit, -65.0) == 90
        assert given["v_thresh"] == cadc(circuit, -55.0) == 150
        # Time constants: ms of model time = us of chip time.
        assert given["tau_syn_E"] == 2.0
        assert given["tau_syn_I"] == 4.0
        assert given["tau_refrac"] == 2.0
        assert given["cm"] == 63
    assert populations["I"]["given"]["tau_m"] == 20.0
    drawn = neuron_values(circuit.populations["E"], circuit.simulation.seed)[0]["tau_m_ms"]
    np.testing.assert_array_equal(populations["E"]["given"]["tau_m"], drawn)
    assert len(set(populations["E"]["given"]["tau_m"])) > 10

    # Weights: per population and receptor, the largest magnitude is level 63.
    units = weight_units(circuit, 64)
    assert units["E", "excitatory"] == units["I", "excitatory"] == pytest.approx(300.0 / 63)
    assert units["E", "inhibitory"] == pytest.approx(400.0 / 63)
    projections = calls_named(calls, "Projection")
    by_pre = {(c["pre"], c["post"], c["receptor"]): c for c in projections}
    assert {w for _, _, w in by_pre["E", "E", "excitatory"]["connections"]} == {21}  # 100/300*63
    assert {w for _, _, w in by_pre["E", "I", "excitatory"]["connections"]} == {21}
    assert {w for _, _, w in by_pre["I", "E", "inhibitory"]["connections"]} == {-63}
    assert len(by_pre["E", "E", "excitatory"]["connections"]) == 40 * 4
    from_sources = [c for c in projections if c["pre"] is None]
    assert {w for c in from_sources for _, _, w in c["connections"]} == {63}

    # Spike sources in chip time: rates x 1000, times / 1000.
    poisson = calls_named(calls, "SpikeSourcePoisson")
    assert [p["size"] for p in poisson] == [40, 10]
    for p in poisson:
        assert p["rate"] == 3000.0 * BSS2_SPEEDUP
        assert p["start"] == 0.0
        assert p["duration"] == pytest.approx(DURATION_MS / BSS2_SPEEDUP)
    arrays = calls_named(calls, "SpikeSourceArray")
    assert arrays[0]["spike_times"] == [[0.05, 0.1]]
    assert arrays[1]["spike_times"] == [[0.02, 0.04], [0.03]]
    assert calls_named(calls, "setup") == [{"call": "setup"}]
    assert calls_named(calls, "run") == [{"call": "run", "runtime": DURATION_MS / BSS2_SPEEDUP}]
    assert calls[-1] == {"call": "end"}

    # Spikes: the stand-in's chip times, written in model ms, per neuron in index order.
    for c in calls_named(calls, "spikes"):
        name, trains = c["label"], c["trains"]
        found = np.load(tmp_path / "results" / f"{name}.spikes.npz")
        expected_ids = np.concatenate([np.full(len(t), i) for i, t in enumerate(trains)])
        expected_ms = np.concatenate([np.asarray(t, dtype=float) for t in trains]) * 1000.0
        assert found["node_ids"].size > 0, name
        np.testing.assert_array_equal(found["node_ids"], expected_ids)
        np.testing.assert_allclose(found["times_ms"], expected_ms)
        assert found["times_ms"].max() <= DURATION_MS
        assert (tmp_path / "results" / f"{name}.pkl").exists()


def test_what_the_chip_cannot_take_is_named() -> None:
    doc = document()
    e = doc["populations"]["E"]
    e["params"] = {**e["params"], "tau_m_ms": 100.0, "t_ref_ms": 0.0, "i_e_pA": 5.0}
    e["initial"] = {"v_mV": -60.0}
    i = doc["populations"]["I"]
    i["params"] = {**i["params"], "v_th_mV": -55.05}  # 149.7 CADC under k = 6
    doc["projections"]["IE"]["delay_ms"] = 2.0
    doc["stimuli"]["current"] = {"type": "dc", "targets": ["I"], "amplitude_pA": 10.0}
    found = {v.path: v.reason for v in backend("pynn:brainscales2").check(parse_circuit(doc))}
    assert "[0.5, 60]" in found["populations.E.params.tau_m_ms"]
    assert "[0.04, 32]" in found["populations.E.params.t_ref_ms"]
    assert "constant current" in found["populations.E.params.i_e_pA"]
    assert "leak potential" in found["populations.E.initial.v_mV"]
    assert "149.7 CADC" in found["populations.I.params.v_th_mV"]
    assert "one fixed latency" in found["projections.IE.delay_ms"]
    assert "no DC current" in found["stimuli.current.type"]
    assert "populations.E.params.e_l_mV" not in found
    # The other simulators keep their scripts: no chip units, no brainscales2 in them.
    nest = backend("pynn").capabilities()
    assert "brainscales2" not in nest.output
    assert backend("pynn:brainscales2").capabilities().output.startswith("run.py")
