"""The ``nir`` target's export: the graph's structure and numbers, the round trip brainsim ->
NIR -> brainsim (identical spikes), and every violation with its field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest

import brainsim
from brainsim.backends import BACKENDS, import_nir
from brainsim.circuit import parse_circuit
from brainsim.errors import TargetError

DT_MS = 0.1


def _round_trip_document(tmp_path: Path) -> dict[str, Any]:
    """Parrot input (spike trains) -> E (delta LIF, weights and delays from a file, recurrent
    weights and delays drawn by the engine) -> X (exponential-synapse LIF)."""
    rng = np.random.default_rng(7)
    n_in, n_e = 12, 16
    sources = rng.integers(0, n_in, 80)
    targets = rng.integers(0, n_e, 80)
    np.savez(
        tmp_path / "in_e.npz",
        source=sources,
        target=targets,
        weight=rng.uniform(2.0, 9.0, 80),
        delay_ms=DT_MS * rng.integers(1, 4, 80),
    )
    times = [sorted({round(float(t), 1) for t in rng.uniform(0, 90, 8)}) for _ in range(n_in)]
    lif = {
        "tau_m_ms": 10.0,
        "v_th_mV": -55.0,
        "v_reset_mV": -70.0,
        "e_l_mV": -70.0,
        "t_ref_ms": 0.0,
    }
    return {
        "apiVersion": "brainsim/v1",
        "name": "round-trip",
        "simulation": {"dt_ms": DT_MS, "duration_ms": 100.0, "seed": 3},
        "populations": {
            "In": {"size": n_in, "model": "parrot"},
            "E": {"size": n_e, "model": "lif", "params": lif},
            "X": {
                "size": 6,
                "model": "lif",
                "params": {
                    **lif,
                    "synapse": "exponential",
                    "tau_syn_ex_ms": 3.0,
                    "tau_syn_in_ms": 3.0,
                    "c_m_pF": 200.0,
                },
            },
        },
        "projections": {
            "InE": {
                "source": "In",
                "target": "E",
                "connectivity": {"rule": "from_file", "path": "in_e.npz"},
                "weight": 0.0,
            },
            "EE": {
                "source": "E",
                "target": "E",
                "connectivity": {"rule": "fixed_indegree", "indegree": 4},
                "weight": {"normal": {"mean": 1.0, "std": 2.0}},
                "delay_ms": {"uniform": {"low": 0.1, "high": 0.45}},
            },
            "EX": {
                "source": "E",
                "target": "X",
                "connectivity": {"rule": "pairwise_bernoulli", "p": 0.5},
                "weight": {"uniform": {"low": -200.0, "high": 600.0}},
                "delay_ms": 0.2,
            },
        },
        "stimuli": {
            "replay": {
                "type": "spike_trains",
                "targets": ["In"],
                "data": times,
                "weight": 1.0,
                "delay_ms": DT_MS,
            }
        },
        "recordings": {"spikes": ["In", "E", "X"]},
    }


def _spikes(recording: Any, population: str) -> tuple[np.ndarray, np.ndarray]:
    trains = recording.spikes(population)
    return np.asarray(trains.times_ms), np.asarray(trains.node_ids)


def test_round_trip_identical_spikes(tmp_path: Path) -> None:
    document = _round_trip_document(tmp_path)
    circuit = parse_circuit(document, base_dir=str(tmp_path))
    artefact = BACKENDS["nir"].compile(circuit, tmp_path / "out")
    assert artefact.paths == (str(tmp_path / "out" / "round-trip.nir"),)
    imported = import_nir(
        artefact.paths[0],
        tmp_path / "back" / "round-trip.yaml",
        duration_ms=100.0,
        stimuli=document["stimuli"],
    )
    assert imported.circuit.simulation.dt_ms == DT_MS
    assert list(imported.circuit.populations) == ["In", "E", "X"]
    assert list(imported.circuit.projections) == ["InE", "EE", "EX"]
    e = imported.circuit.populations["E"].params
    assert (e.tau_m_ms, e.e_l_mV, e.v_th_mV, e.t_ref_ms) == (10.0, -70.0, -55.0, 0.0)
    original = brainsim.run(circuit, tmp_path / "a.zarr")
    back = brainsim.run(imported.circuit, tmp_path / "b.zarr")
    for population in ("In", "E", "X"):
        times, ids = _spikes(original, population)
        assert times.size > 10, population
        np.testing.assert_array_equal(_spikes(back, population)[0], times, err_msg=population)
        np.testing.assert_array_equal(_spikes(back, population)[1], ids, err_msg=population)


def test_graph_nodes_and_numbers(tmp_path: Path) -> None:
    document = _round_trip_document(tmp_path)
    document["populations"]["X"]["params"]["c_m_pF"] = {"uniform": {"low": 200.0, "high": 300.0}}
    circuit = parse_circuit(document, base_dir=str(tmp_path))
    path = BACKENDS["nir"].compile(circuit, tmp_path).paths[0]
    graph = nir.read(path)
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert {k: v for k, v in kinds.items() if not k.startswith(("InE", "EE"))} == {
        "In": "Input",
        "E": "LIF",
        "X": "CubaLIF",
        "EX": "Linear",
        "EX.delay": "Delay",
        "In.output": "Output",
        "E.output": "Output",
        "X.output": "Output",
    }
    # Delays of 1-3 steps: one Linear per delay, a Delay node for 2 and 3 steps.
    assert {k for k in kinds if k.startswith("InE")} == {
        "InE.1",
        "InE.2",
        "InE.2.delay",
        "InE.3",
        "InE.3.delay",
    }
    np.testing.assert_allclose(graph.nodes["InE.3.delay"].delay, 2 * DT_MS / 1000.0)
    assert ("InE.3", "InE.3.delay") in graph.edges
    assert ("InE.3.delay", "E") in graph.edges
    assert graph.metadata["dt"] == pytest.approx(1e-4)
    lif = graph.nodes["E"]
    np.testing.assert_allclose(lif.tau, 0.01)
    np.testing.assert_allclose(lif.r, 10.0 / DT_MS)
    np.testing.assert_allclose(lif.v_leak, -70.0)
    np.testing.assert_allclose(lif.v_reset, -70.0)
    cuba = graph.nodes["X"]
    np.testing.assert_allclose(cuba.w_in, 3.0 / DT_MS)
    assert np.unique(cuba.r).size == 6  # c_m drawn per neuron, as the engine draws it
    # File weights as the engine stores them (float32), summed per (target, source).
    data = np.load(tmp_path / "in_e.npz")
    total = sum(graph.nodes[k].weight for k in ("InE.1", "InE.2", "InE.3"))
    expected = np.zeros((16, 12))
    np.add.at(expected, (data["target"], data["source"]), data["weight"].astype(np.float32))
    np.testing.assert_array_equal(total, expected)


def _violations_document() -> dict[str, Any]:
    return {
        "apiVersion": "brainsim/v1",
        "name": "violations",
        "simulation": {"dt_ms": DT_MS, "duration_ms": 10.0},
        "populations": {
            "In": {"size": 3, "model": "parrot"},
            "Iz": {"size": 3, "model": "izhikevich"},
            "A": {"size": 3, "model": "lif", "params": {"synapse": "alpha", "t_ref_ms": 0.0}},
            "R": {"size": 3, "model": "lif", "params": {"i_e_pA": 1.0}},
            "C": {
                "size": 3,
                "model": "lif",
                "params": {"synapse": "exponential", "t_ref_ms": 0.0, "tau_syn_in_ms": 5.0},
                "initial": {"v_mV": -60.0},
            },
        },
        "projections": {
            "plastic": {
                "source": "R",
                "target": "R",
                "connectivity": {"rule": "all_to_all"},
                "weight": 1.0,
                "synapse": {"model": "stdp", "w_max": 10.0},
            },
            "into_input": {
                "source": "R",
                "target": "In",
                "connectivity": {"rule": "one_to_one"},
                "weight": 1.0,
            },
        },
        "stimuli": {
            "drive": {"type": "poisson", "targets": ["R"], "rate_hz": 10.0, "weight": 1.0},
            "current": {"type": "dc", "targets": ["C"], "amplitude_pA": 10.0},
            "ok": {"type": "poisson", "targets": ["In"], "rate_hz": 10.0, "weight": 1.0},
        },
        "recordings": {"spikes": ["R"], "state": [{"population": "R", "variables": ["v"]}]},
    }


def test_every_violation_with_its_path(tmp_path: Path) -> None:
    circuit = parse_circuit(_violations_document())
    backend = BACKENDS["nir"]
    found = {v.path: v.reason for v in backend.check(circuit)}
    assert set(found) == {
        "populations.Iz.model",
        "populations.A.params.synapse",
        "populations.R.params.t_ref_ms",
        "populations.R.params.i_e_pA",
        "populations.C.params.tau_syn_in_ms",
        "populations.C.initial",
        "projections.plastic.synapse.model",
        "projections.into_input.target",
        "stimuli.drive.targets",
        "stimuli.current.type",
        "recordings.state[0]",
    }
    assert "izhikevich" in found["populations.Iz.model"]
    assert "alpha" in found["populations.A.params.synapse"]
    assert "refractory" in found["populations.R.params.t_ref_ms"]
    assert "stdp" in found["projections.plastic.synapse.model"]
    with pytest.raises(TargetError) as caught:
        backend.compile(circuit, tmp_path)
    assert len(caught.value.problems) == len(found)
    assert any(p.startswith("populations.Iz.model: ") for p in caught.value.problems)
    assert not list(tmp_path.iterdir())


def test_poisson_onto_parrots_is_an_input(tmp_path: Path) -> None:
    document = _violations_document()
    document["populations"] = {
        "In": {"size": 3, "model": "parrot"},
        "R": {"size": 2, "model": "lif", "params": {"t_ref_ms": 0.0}},
    }
    document["projections"] = {
        "InR": {
            "source": "In",
            "target": "R",
            "connectivity": {"rule": "all_to_all"},
            "weight": 2.0,
        }
    }
    document["stimuli"] = {"ok": document["stimuli"]["ok"]}
    document["recordings"] = {"spikes": ["R"]}
    circuit = parse_circuit(document)
    assert BACKENDS["nir"].check(circuit) == []
    graph = nir.read(BACKENDS["nir"].compile(circuit, tmp_path).paths[0])
    assert isinstance(graph.nodes["In"], nir.Input)
    np.testing.assert_array_equal(graph.nodes["InR"].weight, np.full((2, 3), 2.0))
