"""The plastic synapse store: the weight is the only per-synapse state (ARCHITECTURE.md, 12)."""

from __future__ import annotations

from typing import Any

import pytest

from brainsim.circuit import parse_circuit
from brainsim.engine.simulator import build_network
from brainsim.exchange import LocalCommunicator


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
