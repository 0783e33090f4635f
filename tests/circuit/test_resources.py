"""Resource estimates: expected synapse counts per rule and the memory model."""

from __future__ import annotations

from typing import Any

import pytest

from brainsim.circuit import ResourceEstimate, estimate_resources, parse_circuit
from brainsim.circuit.resources import BYTES_PER_NEURON, format_bytes, physical_memory_bytes
from brainsim.models import NEURON_MODELS
from tests.circuit.conftest import changed

LIF = NEURON_MODELS["lif"]

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
    table = LIF.variant({"synapse": "delta"}).table_bytes  # v and 5 parameter rows
    assert table == 6 * 8
    per_neuron = BYTES_PER_NEURON + table + 8 + 2 * 8  # v_mV varies; 2 ring slots (dt, 0.1 ms)
    assert constant.bytes_total == 1000 * 4 + row_pointers + 100 * per_neuron


@pytest.mark.parametrize("synapse", ["exponential", "alpha"])
def test_current_synapses_double_the_ring_buffers_and_widen_the_tables(
    tiny: dict[str, Any], synapse: str
) -> None:
    # Only E (80 neurons) changes, but the rank's ring buffers and tables are shared: all 100
    # neurons get an inhibitory ring buffer and as many table rows as E's variant declares.
    delta = estimate_resources(parse_circuit(tiny))
    current = changed(tiny, "populations.E.params.synapse", synapse)
    slots = 16  # the longest delay, 1.5 ms, spans 15 steps, plus the current one
    rows = LIF.variant({"synapse": synapse}).table_bytes - LIF.variant({}).table_bytes
    extra = estimate_resources(parse_circuit(current)).bytes_total - delta.bytes_total
    assert extra == 100 * (slots * 8 + rows)
    assert rows == (48 if synapse == "exponential" else 112)


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
