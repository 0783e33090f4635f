"""The plastic synapse store: the weight is the only per-synapse state (ARCHITECTURE.md, 12)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from brainsim.circuit import parse_circuit
from brainsim.engine.simulator import build_network
from brainsim.exchange import LocalCommunicator
from brainsim.kernels.delivery import (
    DELAY_CONSTANT,
    DELAY_DENSE,
    DELAY_NARROW,
    DELAY_NARROW_BYTE,
    DELAY_PACKED,
    META_COLUMNS,
    NARROW_MODES,
    PACK_MAX_TARGET,
)


def _network(size: int, indegree: int, delay_ms: Any) -> Any:
    circuit = parse_circuit(
        {
            "apiVersion": "brainsim/v1",
            "name": "store",
            "simulation": {"dt_ms": 0.1, "duration_ms": 1.0},
            "populations": {"E": {"size": size, "model": "lif"}},
            "projections": {
                "EE": {
                    "source": "E",
                    "target": "E",
                    "connectivity": {"rule": "fixed_indegree", "indegree": indegree},
                    "weight": 0.5,
                    "delay_ms": delay_ms,
                    "synapse": {"model": "stdp", "w_max": 1.0},
                }
            },
        }
    )
    return build_network(circuit, LocalCommunicator())


@pytest.mark.parametrize(
    ("size", "delay_ms", "bytes_per_synapse"),
    [
        (70_000, 1.5, 8),  # uint32 target + float32 weight
        (2_000, 1.5, 6),  # uint16 target (at most 65,536 local targets) + float32 weight
        (2_000, {"uniform": {"low": 0.5, "high": 3.0}}, 7),  # + a byte of delay
    ],
)
def test_bytes_per_plastic_synapse(size: int, delay_ms: Any, bytes_per_synapse: int) -> None:
    indegree = 4
    network = _network(size, indegree, delay_ms)
    plastic = network.plastic
    n_syn = size * indegree
    assert plastic.n_synapses == n_syn
    assert network.plan.n_synapses == 0  # nothing went to the static store
    indptr_bytes = plastic.arrays.indptrs.nbytes
    assert (plastic.synapse_bytes - indptr_bytes) / n_syn == bytes_per_synapse


def test_traces_grow_with_neurons_not_synapses() -> None:
    """Traces and post-spike rings are per neuron: ten times the synapses, the same bytes."""
    few, many = _network(2_000, 2, 1.5), _network(2_000, 20, 1.5)
    assert many.plastic.n_synapses == 10 * few.plastic.n_synapses
    assert many.plastic.state_bytes == few.plastic.state_bytes


def _connected(size: int, connectivity: dict[str, Any], delay_ms: Any, multapses: bool) -> Any:
    circuit = parse_circuit(
        {
            "apiVersion": "brainsim/v1",
            "name": "order",
            "simulation": {"dt_ms": 0.1, "duration_ms": 1.0, "seed": 11},
            "populations": {"E": {"size": size, "model": "lif"}},
            "projections": {
                "EE": {
                    "source": "E",
                    "target": "E",
                    "connectivity": {**connectivity, "allow_multapses": multapses}
                    if connectivity["rule"] != "all_to_all"
                    else connectivity,
                    "weight": 0.5,
                    "delay_ms": delay_ms,
                    "synapse": {"model": "stdp", "w_max": 1.0},
                }
            },
        }
    )
    return build_network(circuit, LocalCommunicator())


def _order_by_sorting(plastic: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sources, targets, storage index) of the projection's synapses by target, source and
    creation, from the store decoded in numpy and a stable sort: the reference."""
    a = plastic.arrays
    counts = np.diff(a.indptrs)
    sources = np.repeat(np.arange(counts.size), counts)
    mode = int(a.meta[0, META_COLUMNS.index("delay_mode")])
    n = int(a.indptrs[-1])
    if mode == DELAY_DENSE:
        targets = np.arange(n) - np.repeat(a.indptrs[:-1], counts)
    elif mode in NARROW_MODES:
        targets = a.targets16[:n].astype(np.int64)
    else:
        targets = a.targets[:n].astype(np.int64) & PACK_MAX_TARGET
    order = np.lexsort((sources, targets))  # stable: creation order within a (target, source)
    return sources[order], targets[order], order


@pytest.mark.parametrize(
    ("size", "connectivity", "delay_ms", "multapses", "mode"),
    [
        (300, {"rule": "fixed_indegree", "indegree": 40}, 1.5, True, DELAY_NARROW),
        (300, {"rule": "fixed_indegree", "indegree": 40}, [0.1, 2.0], True, DELAY_NARROW_BYTE),
        (70_000, {"rule": "fixed_indegree", "indegree": 2}, 1.5, True, DELAY_CONSTANT),
        (70_000, {"rule": "fixed_indegree", "indegree": 2}, [0.1, 2.0], False, DELAY_PACKED),
        (120, {"rule": "all_to_all"}, 1.5, False, DELAY_DENSE),
    ],
)
def test_weight_snapshots_read_the_store_in_the_recordings_order(
    size: int, connectivity: dict[str, Any], delay_ms: Any, multapses: bool, mode: int
) -> None:
    """Every way the store can hold a plastic projection, read a few columns at a time in
    uneven ranges (as the recorder's chunks cut them), equals a sort of the whole store."""
    if isinstance(delay_ms, list):
        delay_ms = {"uniform": {"low": delay_ms[0], "high": delay_ms[1]}}
    plastic = _connected(size, connectivity, delay_ms, multapses).plastic
    assert int(plastic.arrays.meta[0, META_COLUMNS.index("delay_mode")]) == mode
    n = plastic.n_synapses
    plastic.arrays.weights[:n] = np.random.default_rng(3).random(n, dtype=np.float32)
    sources, targets, storage = _order_by_sorting(plastic)
    order = plastic.order(0)
    assert order.n_synapses == n
    edges = [*range(0, n, 997), n]
    ids = [order.ids_of(lo, hi) for lo, hi in pairwise(edges)]
    np.testing.assert_array_equal(np.concatenate([s for s, _ in ids]), sources)
    np.testing.assert_array_equal(np.concatenate([t for _, t in ids]), targets)
    got_weights = np.concatenate([order.weights_of(lo, hi) for lo, hi in pairwise(edges)])
    np.testing.assert_array_equal(got_weights, plastic.arrays.weights[:n][storage])
    if multapses:  # some (target, source) pairs repeat, so creation order was tested too
        assert np.any((np.diff(targets) == 0) & (np.diff(sources) == 0))
