"""Resource estimates: expected synapse counts per rule and the memory model."""

from __future__ import annotations

from typing import Any

import pytest

from brainsim.circuit import ResourceEstimate, estimate_resources, parse_circuit
from brainsim.circuit.resources import BYTES_PER_NEURON, format_bytes, physical_memory_bytes
from tests.circuit.conftest import changed

SIZES = {"E": 80, "I": 20}


def _single_projection(tiny: dict[str, Any], projection: dict[str, Any]) -> dict[str, Any]:
    document = changed(tiny, "projections", {"P": projection})
    return changed(document, "stimuli", {})


@pytest.mark.parametrize(
    ("source", "target", "connectivity", "expected"),
    [
        ("E", "E", {"rule": "one_to_one"}, 80),
        ("E", "I", {"rule": "all_to_all"}, 80 * 20),
        ("I", "I", {"rule": "all_to_all", "allow_autapses": False}, 20 * 19),
        ("E", "I", {"rule": "pairwise_bernoulli", "p": 0.25}, 400),
        ("I", "I", {"rule": "pairwise_bernoulli", "p": 0.5, "allow_autapses": False}, 190),
        ("E", "I", {"rule": "fixed_indegree", "indegree": 7}, 7 * 20),
        ("E", "I", {"rule": "fixed_outdegree", "outdegree": 3}, 3 * 80),
        ("I", "E", {"rule": "fixed_total_number", "n": 123}, 123),
    ],
)
def test_expected_synapses_per_rule(
    tiny: dict[str, Any],
    source: str,
    target: str,
    connectivity: dict[str, Any],
    expected: int,
) -> None:
    projection = {"source": source, "target": target, "connectivity": connectivity, "weight": 1.0}
    circuit = parse_circuit(_single_projection(tiny, projection))
    assert estimate_resources(circuit).n_synapses == expected


def test_memory_model(tiny: dict[str, Any]) -> None:
    fixed = {
        "source": "E",
        "target": "I",
        "connectivity": {"rule": "fixed_total_number", "n": 1000},
        "weight": 1.0,
        "delay_ms": 0.1,
    }
    varying_weight = {**fixed, "weight": {"uniform": {"low": 0.0, "high": 1.0}}}
    varying_both = {**varying_weight, "delay_ms": {"uniform": {"low": 0.1, "high": 0.2}}}
    constant = estimate_resources(parse_circuit(_single_projection(tiny, fixed)))
    weights = estimate_resources(parse_circuit(_single_projection(tiny, varying_weight)))
    both = estimate_resources(parse_circuit(_single_projection(tiny, varying_both)))
    assert constant.n_neurons == 100
    assert weights.bytes_total - constant.bytes_total == 1000 * 4
    # Two more bytes per synapse for the delay, and one more ring-buffer slot per neuron.
    assert both.bytes_total - weights.bytes_total == 1000 * 2 + 100 * 8
    row_pointers = (80 + 1) * 8
    per_neuron = BYTES_PER_NEURON + 8 + 2 * 8  # v_mV varies; ring buffer of 2 slots (dt, 0.1 ms)
    assert constant.bytes_total == 1000 * 4 + row_pointers + 100 * per_neuron


def test_exponential_synapses_double_the_ring_buffers(tiny: dict[str, Any]) -> None:
    delta = estimate_resources(parse_circuit(tiny))
    exponential = changed(tiny, "populations.E.params.synapse", "exponential")
    slots = 16  # the longest delay, 1.5 ms, spans 15 steps, plus the current one
    extra = estimate_resources(parse_circuit(exponential)).bytes_total - delta.bytes_total
    assert extra == 80 * slots * 8


def test_describe_and_format_bytes() -> None:
    estimate = ResourceEstimate(n_neurons=77169, n_synapses=298880968, bytes_total=3 * 2**30)
    assert estimate.describe() == "77,169 neurons, 298,880,968 synapses, about 3.0 GiB"
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(5 * 2**20) == "5.0 MiB"
    assert format_bytes(2**41) == "2.0 TiB"


def test_physical_memory_is_known_here() -> None:
    memory = physical_memory_bytes()
    assert memory is not None
    assert memory > 2**28
