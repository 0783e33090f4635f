"""NIR import beyond snnTorch's nodes: IF (no leak), LI (a readout that never spikes), nested
graphs, and every graph brainsim cannot express, named by its node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest

import brainsim
from brainsim.backends import import_nir
from brainsim.backends.nir_mapping import IF_TAU_MS, LI_THRESHOLD_MV
from brainsim.errors import TargetError

DT_MS = 0.1


def _chain(
    neuron: Any, weight: float = 0.3, extra: dict[str, Any] | None = None, n: int = 1
) -> nir.NIRGraph:
    """Input(n) -> Linear -> ``neuron`` -> Output."""
    nodes = {
        "in": nir.Input(input_type=np.array([n])),
        "w": nir.Linear(weight=np.full((n, n), weight)),
        "n": neuron,
        "out": nir.Output(output_type=np.array([n])),
        **(extra or {}),
    }
    return nir.NIRGraph(
        nodes=nodes, edges=[("in", "w"), ("w", "n"), ("n", "out")], metadata={"dt": DT_MS / 1000.0}
    )


def _run(graph: nir.NIRGraph, steps: list[int], tmp_path: Path, duration_ms: float) -> Any:
    stimulus = {
        "type": "spike_trains",
        "targets": ["in"],
        "data": [[s * DT_MS for s in steps]],
        "weight": 1.0,
        "delay_ms": DT_MS,
    }
    imported = import_nir(
        graph, tmp_path / "g.yaml", duration_ms=duration_ms, stimuli={"x": stimulus}
    )
    assert imported.populations == {"in": "in", "n": "n"}
    return imported, brainsim.run(imported.circuit, tmp_path / "g.zarr")


def test_if_integrates_without_leak(tmp_path: Path) -> None:
    """IF (dv/dt = r I): each spike adds r W dt = 0.3 for ever; the fourth spike crosses 1,
    even 500 steps after the third."""
    neuron = nir.IF(r=np.array([1e4]), v_threshold=np.array([1.0]), v_reset=np.array([0.0]))
    imported, recording = _run(_chain(neuron), [0, 1, 2, 503, 600, 601, 602, 603], tmp_path, 70.0)
    params = imported.circuit.populations["n"].params
    assert (params.tau_m_ms, params.e_l_mV) == (IF_TAU_MS, 0.0)
    # Input step t reaches the IF neuron in step t + 1, which stamps its spike (t + 2) dt.
    np.testing.assert_allclose(recording.spikes("n").times_ms, [505 * DT_MS, 605 * DT_MS])


def test_li_is_a_readout(tmp_path: Path) -> None:
    """LI never spikes; its v is recorded: 2.0 after the spike, then x 0.9 per step (euler)."""
    neuron = nir.LI(tau=np.array([1e-3]), r=np.array([10.0]), v_leak=np.array([0.0]))
    imported, recording = _run(_chain(neuron, weight=2.0), [0], tmp_path, 2.0)
    assert imported.circuit.populations["n"].params.v_th_mV == LI_THRESHOLD_MV
    assert imported.circuit.recordings.spikes == ()
    v = np.asarray(recording.report("n", "v")).ravel()
    expected = np.r_[0.0, 2.0 * 0.9 ** np.arange(19)]
    np.testing.assert_allclose(v, expected.astype(np.float32), rtol=1e-6)  # stored as float32


def test_scale_delay_and_nested_graph(tmp_path: Path) -> None:
    """A nested graph, Scale and Delay nodes: weight W s, delay dt + the Delay's."""
    lif = nir.LIF(
        tau=np.full(2, 1e-3),
        r=np.full(2, 10.0),
        v_leak=np.zeros(2),
        v_threshold=np.ones(2),
        v_reset=np.zeros(2),
    )
    inner = nir.NIRGraph(
        nodes={
            "i": nir.Input(input_type=np.array([2])),
            "s": nir.Scale(scale=np.array([2.0, 3.0])),
            "d": nir.Delay(delay=np.array([0.0, 3e-4])),
            "o": nir.Output(output_type=np.array([2])),
        },
        edges=[("i", "s"), ("s", "d"), ("d", "o")],
    )
    graph = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type=np.array([2])),
            "sub": inner,
            "w": nir.Linear(weight=np.array([[0.5, 0.0], [0.25, 1.0]])),
            "lif": lif,
            "out": nir.Output(output_type=np.array([2])),
        },
        edges=[("in", "sub"), ("sub", "w"), ("w", "lif"), ("lif", "out")],
        metadata={"dt": 1e-4},
    )
    imported = import_nir(graph, tmp_path / "n.yaml")
    (projection,) = imported.circuit.projections.values()
    data = np.load(tmp_path / "n_connections" / f"{projection.name}.npz")
    rows = sorted(
        zip(data["source"], data["target"], data["weight"], data["delay_ms"], strict=True)
    )
    assert [(int(s), int(t)) for s, t, _, _ in rows] == [(0, 0), (0, 1), (1, 1)]
    np.testing.assert_allclose([w for _, _, w, _ in rows], [1.0, 0.5, 3.0])
    np.testing.assert_allclose([d for _, _, _, d in rows], [0.1, 0.1, 0.4])


def _lif(n: int = 1, **changes: Any) -> nir.LIF:
    values = {
        "tau": np.full(n, 1e-3),
        "r": np.full(n, 10.0),
        "v_leak": np.zeros(n),
        "v_threshold": np.ones(n),
        "v_reset": np.zeros(n),
    } | changes
    return nir.LIF(**values)


@pytest.mark.parametrize(
    ("graph", "node", "words"),
    [
        (_chain(nir.Threshold(threshold=np.array([1.0]))), "n", "Threshold nodes cannot"),
        (_chain(_lif(2, tau=np.array([1e-3, 2e-3])), n=2), "n", "tau differs between neurons"),
        (
            _chain(_lif(), extra={"w": nir.Affine(weight=np.array([[1.0]]), bias=np.array([0.5]))}),
            "w",
            "non-zero bias",
        ),
        (_chain(_lif(v_reset=np.array([2.0]))), "n", "must be below"),
        (_chain(_lif(tau=np.array([5e-5]))), "n", "is not above dt"),
    ],
)
def test_errors_name_the_node(graph: nir.NIRGraph, node: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(TargetError) as caught:
        import_nir(graph, tmp_path / "bad.yaml")
    assert any(p.startswith(f"node {node!r}: ") and words in p for p in caught.value.problems), (
        caught.value.problems
    )
    assert not (tmp_path / "bad.yaml").exists()


def test_structural_errors_name_the_node(tmp_path: Path) -> None:
    """Edges into an Input, an Output read through weights, an LI that feeds weights: all
    reported at once."""
    nodes = {
        "in": nir.Input(input_type=np.array([1])),
        "w1": nir.Linear(weight=np.ones((1, 1))),
        "lif": _lif(),
        "w2": nir.Linear(weight=np.ones((1, 1))),
        "li": nir.LI(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1)),
        "w3": nir.Linear(weight=np.ones((1, 1))),
        "out": nir.Output(output_type=np.array([1])),
    }
    edges = [
        ("in", "w1"),
        ("w1", "lif"),
        ("lif", "w2"),
        ("w2", "in"),
        ("lif", "w3"),
        ("w3", "li"),
        ("li", "w2"),
        ("w1", "out"),
    ]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    with pytest.raises(TargetError) as caught:
        import_nir(graph, tmp_path / "bad.yaml")
    problems = caught.value.problems
    for node, words in [
        ("in", "Input node takes no edges"),
        ("li", "LI node does not spike"),
        ("out", "Output reads spikes"),
    ]:
        assert any(p.startswith(f"node {node!r}: ") and words in p for p in problems), problems
