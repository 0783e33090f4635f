"""Benchmark cases: variant circuit files derived from circuits/ with parameters changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cases import (
    BASELINE,
    CASES,
    case_info,
    expected_synapses,
    select_cases,
    variant_document,
    write_variant,
)
from brainsim.circuit import Circuit, load_circuit
from brainsim.circuit.spec import PoissonStimulus


def _case(name: str):  # type: ignore[no-untyped-def]
    return next(case for case in CASES if case.name == name)


def test_the_cases_of_the_issues() -> None:
    assert [case.name for case in CASES] == [
        "brunel",
        "brunel_x4",
        "izhikevich",
        "microcircuit_0.1",
        "microcircuit",
        "brunel_stdp",
        "hpc_benchmark_0.1",
        "hpc_benchmark",
    ]
    assert [case.name for case in CASES if case.quick] == [
        "brunel",
        "izhikevich",
        "microcircuit_0.1",
        "brunel_stdp",
        "hpc_benchmark_0.1",
    ]
    # The plastic cases price their static synapses with brunel's bytes per synapse.
    assert {case.name: case.static_twin for case in CASES if case.static_twin} == {
        "brunel_stdp": "brunel",
        "hpc_benchmark_0.1": "brunel",
        "hpc_benchmark": "brunel",
    }


def test_brunel_x4_scales_population_sizes_not_in_degrees(root: Path, tmp_path: Path) -> None:
    path = write_variant(_case("brunel_x4"), root, tmp_path, quick=False)
    circuit = load_circuit(path)
    assert {name: pop.size for name, pop in circuit.populations.items()} == {"E": 40000, "I": 10000}
    assert circuit.projections["EE"].connectivity.indegree == 1000  # type: ignore[union-attr]
    assert circuit.projections["IE"].connectivity.indegree == 250  # type: ignore[union-attr]
    assert circuit.simulation.duration_ms == 1000.0
    assert circuit.name == "brunel-delta-brunel-x4"


def test_microcircuit_scale_is_set_in_the_variant(root: Path, tmp_path: Path) -> None:
    info, circuit = case_info("m", write_variant(_case("microcircuit_0.1"), root, tmp_path, False))
    assert info.n_neurons == 7717
    assert circuit.parameters["scale"] == 0.1
    assert circuit.recordings.spikes == tuple(circuit.populations)
    assert 29_000_000 < info.n_synapses < 30_500_000


def test_quick_variants_are_short_and_small(root: Path) -> None:
    document = variant_document(_case("microcircuit_0.1"), root, quick=True)
    assert document["simulation"]["duration_ms"] == 100.0  # type: ignore[index]
    assert document["parameters"]["scale"] == 0.02  # type: ignore[index]


def test_variant_drops_state_recordings(root: Path, tmp_path: Path) -> None:
    path = write_variant(BASELINE, root, tmp_path, quick=False)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["recordings"] == {"spikes": ["E", "I"], "state": []}
    assert load_circuit(path).recordings.state == ()


def test_expected_synapses_per_rule(brunel: Circuit, izhikevich: Circuit) -> None:
    assert expected_synapses(brunel.projections["EE"], brunel.populations) == 10_000_000
    assert expected_synapses(brunel.projections["II"], brunel.populations) == 625_000
    total = sum(
        expected_synapses(p, izhikevich.populations) for p in izhikevich.projections.values()
    )
    assert total == 1_000_000


def test_case_info_lists_projection_sources(root: Path, tmp_path: Path) -> None:
    info, _ = case_info("brunel", write_variant(_case("brunel"), root, tmp_path, quick=True))
    assert info.projections == [
        ("E", 10_000_000),
        ("E", 2_500_000),
        ("I", 2_500_000),
        ("I", 625_000),
    ]
    assert info.duration_ms == 200.0


def test_select_cases() -> None:
    assert select_cases(["all"]) == list(CASES)
    assert [c.name for c in select_cases(["izhikevich", "brunel"])] == ["brunel", "izhikevich"]
    with pytest.raises(ValueError, match="unknown case"):
        select_cases(["hodgkin"])


def test_brunel_stdp_is_brunel_with_plastic_e_to_e(root: Path, tmp_path: Path) -> None:
    info, circuit = case_info("s", write_variant(_case("brunel_stdp"), root, tmp_path, False))
    static, _ = case_info("b", write_variant(_case("brunel"), root, tmp_path, False))
    assert (info.population_sizes, info.projections) == (
        static.population_sizes,
        static.projections,
    )
    assert [name for name, p in circuit.projections.items() if p.plastic] == ["EE"]
    assert info.plastic == {
        "EE": {"model": "stdp", "expected_synapses": 10_000_000, "initial_weight": 0.1}
    }
    assert dict(circuit.projections["EE"].synapse.params) == {
        "tau_plus_ms": 20.0,
        "tau_minus_ms": 20.0,
        "lambda": 0.01,
        "alpha": 1.0,
        "mu_plus": 1.0,
        "mu_minus": 1.0,
        "w_max": 0.2,
    }


@pytest.mark.parametrize(
    ("name", "quick", "neurons", "synapses"),
    [
        ("hpc_benchmark", False, 11_250, 126_562_500),
        ("hpc_benchmark_0.1", False, 1_125, 12_656_250),
        ("hpc_benchmark_0.1", True, 225, 2_531_250),
    ],
)
def test_hpc_benchmark_keeps_nest_s_in_degree_at_every_scale(
    root: Path, tmp_path: Path, name: str, quick: bool, neurons: int, synapses: int
) -> None:
    info, circuit = case_info(name, write_variant(_case(name), root, tmp_path, quick))
    assert (info.n_neurons, info.n_synapses) == (neurons, synapses)
    assert info.population_sizes == {"E": neurons * 4 // 5, "I": neurons // 5}
    assert info.plastic["EE"]["expected_synapses"] == neurons * 4 // 5 * 9000
    assert info.plastic["EE"]["model"] == "stdp_power_law"
    assert info.plastic["EE"]["initial_weight"] == pytest.approx(45.6096003165, rel=1e-10)
    stimulus = circuit.stimuli["external"]
    assert isinstance(stimulus, PoissonStimulus)
    assert stimulus.rate_hz == pytest.approx(20856.0372009, rel=1e-10)
    assert info.duration_ms == (100.0 if quick else 300.0)
    assert circuit.populations["E"].params.synapse == "alpha"
