"""Every example circuit validates, loads, and holds the published numbers it claims."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from brainsim.circuit import (
    estimate_resources,
    evaluate,
    initial_state_names,
    load_circuit,
    parse_circuit,
    recordable_variables,
    validate_files,
)
from brainsim.circuit.spec import (
    AllToAll,
    Expr,
    FixedIndegree,
    FixedTotalNumber,
    IzhikevichParams,
    LifParams,
    NoiseStimulus,
    Normal,
    PoissonStimulus,
    Uniform,
)
from tests.circuit.conftest import CIRCUITS, EXAMPLES, NO_MEMORY_LIMIT, ROOT, full_document

REFERENCE = ROOT.parent / "shared" / "reference" / "brunel_delta_nest.json"


def test_the_four_examples_exist() -> None:
    assert {path.name for path in EXAMPLES} >= {
        "brunel_delta.yaml",
        "izhikevich_2003.yaml",
        "potjans_diesmann_2014.yaml",
        "tiny.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_validates_and_loads(path: Path) -> None:
    assert validate_files([str(path)], memory_limit_bytes=NO_MEMORY_LIMIT) == {str(path): []}
    circuit = load_circuit(path, memory_limit_bytes=NO_MEMORY_LIMIT)
    assert circuit.base_dir == str(CIRCUITS)
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("# "), "each example starts with a comment saying what it is"


def test_brunel_matches_the_nest_reference() -> None:
    if not REFERENCE.exists():
        pytest.skip(f"reference file missing: {REFERENCE}")
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))["params"]
    circuit = load_circuit(CIRCUITS / "brunel_delta.yaml")
    excitatory, inhibitory = circuit.populations["E"], circuit.populations["I"]
    assert (excitatory.size, inhibitory.size) == (reference["NE"], reference["NI"])
    assert (excitatory.gid_offset, inhibitory.gid_offset) == (0, reference["NE"])
    for population in (excitatory, inhibitory):
        params = population.params
        assert isinstance(params, LifParams)
        assert params.synapse == "delta"
        assert params.tau_m_ms == reference["tau_m_ms"]
        assert params.v_th_mV == reference["V_th_mV"]
        assert params.v_reset_mV == reference["V_reset_mV"]
        assert params.e_l_mV == reference["E_L_mV"]
        assert params.t_ref_ms == reference["t_ref_ms"]
        assert params.i_e_pA == 0.0
        assert population.initial == {"v_mV": reference["V_m_init_mV"]}
    indegrees = {
        "EE": reference["CE"],
        "EI": reference["CE"],
        "IE": reference["CI"],
        "II": reference["CI"],
    }
    for name, indegree in indegrees.items():
        projection = circuit.projections[name]
        assert projection.connectivity == FixedIndegree(indegree, True, True)
        excitatory_source = projection.source == "E"
        expected_weight = reference["J_mV"] * (1 if excitatory_source else -reference["g"])
        assert projection.weight == pytest.approx(expected_weight, rel=1e-15)
        assert projection.delay_ms == reference["delay_ms"]
    (drive,) = circuit.stimuli.values()
    assert isinstance(drive, PoissonStimulus)
    assert [target.population for target in drive.targets] == ["E", "I"]
    assert drive.rate_hz == reference["p_rate_hz"]
    assert drive.weight == reference["J_mV"]
    assert drive.delay_ms == reference["delay_ms"]
    assert (drive.start_ms, drive.stop_ms) == (0.0, None)
    assert circuit.simulation.dt_ms == reference["dt_ms"]
    assert circuit.simulation.duration_ms == reference["simtime_ms"]
    assert circuit.recordings.spikes == ("E", "I")


def test_izhikevich_2003_network() -> None:
    circuit = load_circuit(CIRCUITS / "izhikevich_2003.yaml")
    assert circuit.simulation.dt_ms == 1.0
    assert circuit.n_steps == 1000
    excitatory = circuit.populations["excitatory"]
    inhibitory = circuit.populations["inhibitory"]
    assert (excitatory.size, inhibitory.size) == (800, 200)
    assert excitatory.random_variables == {"r": Uniform(0.0, 1.0)}
    assert isinstance(excitatory.params, IzhikevichParams)
    assert isinstance(inhibitory.params, IzhikevichParams)
    assert excitatory.params.integration == "published_2003"
    assert excitatory.params.synapse == "current_pulse"
    r = np.array([0.0, 0.5, 1.0])
    excitatory_c = excitatory.params.c_mV
    excitatory_d = excitatory.params.d
    inhibitory_a = inhibitory.params.a
    inhibitory_b = inhibitory.params.b
    inhibitory_u = inhibitory.initial["u"]
    assert isinstance(excitatory_c, Expr)
    assert isinstance(excitatory_d, Expr)
    assert isinstance(inhibitory_a, Expr)
    assert isinstance(inhibitory_b, Expr)
    assert isinstance(inhibitory_u, Expr)
    np.testing.assert_allclose(evaluate(excitatory_c, {"r": r}), -65 + 15 * r**2)
    np.testing.assert_allclose(evaluate(excitatory_d, {"r": r}), 8 - 6 * r**2)
    np.testing.assert_allclose(evaluate(inhibitory_a, {"r": r}), 0.02 + 0.08 * r)
    np.testing.assert_allclose(evaluate(inhibitory_b, {"r": r}), 0.25 - 0.05 * r)
    np.testing.assert_allclose(evaluate(inhibitory_u, {"r": r}), (0.25 - 0.05 * r) * -65)
    assert (inhibitory.params.c_mV, inhibitory.params.d) == (-65.0, 2.0)
    assert excitatory.initial == {"v_mV": -65.0, "u": 0.2 * -65.0}
    for projection in circuit.projections.values():
        assert projection.connectivity == AllToAll(allow_autapses=True)
        assert projection.delay_ms == 1.0
        expected = Uniform(0.0, 0.5) if projection.source == "excitatory" else Uniform(-1.0, 0.0)
        assert projection.weight == expected
    noise = {stimulus.targets[0].population: stimulus for stimulus in circuit.stimuli.values()}
    assert isinstance(noise["excitatory"], NoiseStimulus)
    assert isinstance(noise["inhibitory"], NoiseStimulus)
    assert (noise["excitatory"].std_pA, noise["inhibitory"].std_pA) == (5.0, 2.0)
    assert estimate_resources(circuit).n_synapses == 1000 * 1000


POTJANS_SIZES = {
    "L23E": 20683, "L23I": 5834, "L4E": 21915, "L4I": 5479,
    "L5E": 4850, "L5I": 1065, "L6E": 14395, "L6I": 2948,
}  # fmt: skip
POTJANS_EXTERNAL_INDEGREES = {
    "L23E": 1600, "L23I": 1500, "L4E": 2100, "L4I": 1900,
    "L5E": 2000, "L5I": 1900, "L6E": 2900, "L6I": 2100,
}  # fmt: skip


def test_potjans_diesmann_at_full_scale() -> None:
    circuit = load_circuit(CIRCUITS / "potjans_diesmann_2014.yaml", memory_limit_bytes=2**36)
    assert {name: population.size for name, population in circuit.populations.items()} == (
        POTJANS_SIZES
    )
    assert circuit.n_neurons == 77_169
    estimate = estimate_resources(circuit)
    assert estimate.n_synapses == 298_880_968
    assert 2**30 < estimate.bytes_total < 8 * 2**30
    assert len(circuit.projections) == 55
    l4e_to_l23e = circuit.projections["L4E_to_L23E"]
    assert l4e_to_l23e.weight == Normal(175.6, 17.56, low=0.0)
    assert circuit.projections["L23E_to_L23E"].weight == Normal(87.8, pytest.approx(8.78), low=0.0)
    assert circuit.projections["L23I_to_L4E"].weight == Normal(
        pytest.approx(-351.2), pytest.approx(35.12), high=0.0
    )
    assert circuit.projections["L5E_to_L6I"].delay_ms == Normal(1.5, 0.75, low=0.1)
    assert circuit.projections["L6I_to_L6E"].delay_ms == Normal(0.75, 0.375, low=0.1)
    for name, population in circuit.populations.items():
        params = population.params
        assert isinstance(params, LifParams)
        assert (params.synapse, params.tau_syn_ex_ms, params.tau_syn_in_ms) == (
            "exponential",
            0.5,
            0.5,
        )
        assert (params.tau_m_ms, params.c_m_pF, params.e_l_mV) == (10.0, 250.0, -65.0)
        assert (params.v_th_mV, params.v_reset_mV, params.t_ref_ms) == (-50.0, -65.0, 2.0)
        assert population.initial == {"v_mV": Normal(-58.0, 10.0)}
        background = circuit.stimuli[f"background_{name}"]
        assert isinstance(background, PoissonStimulus)
        assert background.rate_hz == 8.0 * POTJANS_EXTERNAL_INDEGREES[name]
        assert (background.weight, background.delay_ms) == (87.8, 1.5)
    assert circuit.recordings.spikes == tuple(POTJANS_SIZES)


def test_potjans_diesmann_connection_numbers_follow_the_published_probabilities() -> None:
    circuit = load_circuit(CIRCUITS / "potjans_diesmann_2014.yaml", memory_limit_bytes=2**36)
    probabilities = {
        ("L23E", "L23E"): 0.1009,
        ("L4E", "L23E"): 0.0437,
        ("L5E", "L5I"): 0.06,
        ("L6I", "L6E"): 0.2252,
        ("L4I", "L5E"): 0.0057,
    }
    for (source, target), p in probabilities.items():
        rule = circuit.projections[f"{source}_to_{target}"].connectivity
        assert isinstance(rule, FixedTotalNumber)
        pairs = POTJANS_SIZES[source] * POTJANS_SIZES[target]
        assert rule.n == round(math.log(1 - p) / math.log(1 - 1 / pairs))


def test_potjans_diesmann_scales_sizes_and_keeps_indegrees() -> None:
    full = load_circuit(CIRCUITS / "potjans_diesmann_2014.yaml", memory_limit_bytes=2**36)
    small = load_circuit(CIRCUITS / "potjans_diesmann_2014.yaml", parameters={"scale": 0.1})
    assert small.parameters["scale"] == 0.1
    for name, population in small.populations.items():
        assert population.size == round(POTJANS_SIZES[name] * 0.1)
    for name, projection in small.projections.items():
        rule, full_rule = projection.connectivity, full.projections[name].connectivity
        assert isinstance(rule, FixedTotalNumber)
        assert isinstance(full_rule, FixedTotalNumber)
        indegree = rule.n / small.populations[projection.target].size
        full_indegree = full_rule.n / full.populations[projection.target].size
        assert indegree == pytest.approx(full_indegree, rel=0.01, abs=0.05)


def test_tiny_is_small() -> None:
    circuit = load_circuit(CIRCUITS / "tiny.yaml")
    assert circuit.n_neurons == 100
    assert circuit.n_steps == 1000
    assert estimate_resources(circuit).n_synapses < 2_000
    assert circuit.recordings.state[0].variables == ("v",)


def test_state_variable_names_per_model_and_synapse() -> None:
    circuit = parse_circuit(full_document())
    exponential_lif, izhikevich = circuit.populations["exc"], circuit.populations["inh"]
    assert initial_state_names(exponential_lif) == ("v_mV", "i_syn_ex_pA", "i_syn_in_pA")
    assert recordable_variables(exponential_lif) == ("v", "i_syn_ex", "i_syn_in")
    assert initial_state_names(izhikevich) == ("v_mV", "u")
    assert recordable_variables(izhikevich) == ("v", "u")
    delta_lif = load_circuit(CIRCUITS / "tiny.yaml").populations["E"]
    assert (initial_state_names(delta_lif), recordable_variables(delta_lif)) == (("v_mV",), ("v",))
