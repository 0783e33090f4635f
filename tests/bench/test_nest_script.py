"""The generated NEST scripts take their model, parameters and rules from the circuit."""

from __future__ import annotations

import ast
import copy
from typing import Any

import pytest

from bench.nest_script import nest_script
from bench.translate_common import UnsupportedCircuitError
from brainsim.circuit import Circuit, parse_circuit


def _script(circuit: Circuit) -> str:
    text = nest_script(circuit, "circuit.yaml")
    ast.parse(text)  # a syntax error would only show on the reference machine
    return text


def _changed(circuit: Circuit, change: dict[str, Any]) -> Circuit:
    document = copy.deepcopy(dict(circuit.document))
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = document
        for parent in parents:
            node = node[parent]
        node[key] = value
    return parse_circuit(document)


def test_brunel_models_parameters_and_rules(brunel: Circuit) -> None:
    text = _script(brunel)
    assert text.count('nest.Create("iaf_psc_delta", 10000,') == 1
    assert text.count('nest.Create("iaf_psc_delta", 2500,') == 1
    for param in ('"tau_m": 20.0', '"V_th": 20.0', '"V_reset": 10.0', '"E_L": 0.0', '"t_ref": 2.0'):
        assert param in text
    assert '"V_m": 0.0' in text
    rule = (
        '{"rule": "fixed_indegree", "indegree": 1000, "allow_autapses": True, '
        '"allow_multapses": True}'
    )
    assert f"nest.Connect(pops['E'], pops['E'], {rule}, " in text
    assert '"weight": -0.5, "delay": 1.5' in text
    assert 'nest.Create("poisson_generator", params={"rate": 20000.0' in text
    assert text.count('nest.Create("spike_recorder")') == 2
    assert '"resolution": 0.1' in text
    assert '"local_num_threads": args.threads' in text


def test_network_synapses_are_counted_before_devices(brunel: Circuit) -> None:
    text = _script(brunel)
    counted = text.index('n_synapses = nest.GetKernelStatus("num_connections")')
    assert text.rindex("nest.Connect(pops['I'], pops['I']") < counted
    assert counted < text.index("poisson_generator")


def test_microcircuit_distributions_and_total_number(microcircuit: Circuit) -> None:
    text = _script(microcircuit)
    assert 'nest.Create("iaf_psc_exp", 207,' in text
    assert '"tau_syn_ex": 0.5' in text
    assert '"rule": "fixed_total_number", "N": 454998' in text
    assert (
        "nest.math.redraw(nest.random.normal(mean=87.8, std=8.78), min=0.0, max=float('inf'))"
        in text
    )
    assert "nest.math.redraw(nest.random.normal(mean=1.5, std=0.75), min=0.1," in text
    assert "max=0.0)" in text  # inhibitory weights bounded above by 0
    # The initial voltage is drawn per neuron and set on the population.
    assert "vals['v_mV'] = draw(rng, 207," in text
    assert "pops['L23E'].set({\"V_m\": vals['v_mV']})" in text


def test_izhikevich_published_scheme_and_pulse_weights(izhikevich: Circuit) -> None:
    text = _script(izhikevich)
    assert '"consistent_integration": False' in text
    assert '"V_th": 30.0' in text
    assert "pops['excitatory'].set({\"c\": vals['c_mV'], \"d\": vals['d']})" in text
    # dt = 1 ms: a current pulse of w for one step is a jump of w * 1 ms in v.
    assert '"weight": nest.random.uniform(min=0.0, max=0.5), "delay": 1.0' in text
    assert '"rule": "all_to_all", "allow_autapses": True' in text
    assert '"noise_generator", params={"mean": 0.0, "std": 5.0, "dt": 1.0' in text


def test_euler_izhikevich_uses_consistent_integration(izhikevich: Circuit) -> None:
    changed = _changed(izhikevich, {"populations.excitatory.params.integration": "euler"})
    assert '"consistent_integration": True' in _script(changed)


def test_clip_bounds_use_min_and_max(microcircuit: Circuit) -> None:
    changed = _changed(
        microcircuit,
        {
            "projections.L23E_to_L23E.weight": {
                "normal": {"mean": 87.8, "std": 8.78, "low": 0.0, "high": 100.0, "bound": "clip"}
            }
        },
    )
    assert (
        "nest.math.min(nest.math.max(nest.random.normal(mean=87.8, std=8.78), 0.0), 100.0)"
        in _script(changed)
    )


def test_partial_stimulus_targets_slice_the_population(brunel: Circuit) -> None:
    changed = _changed(
        brunel,
        {"stimuli.external.targets": [{"population": "E", "node_ids": {"first": 100}}, "I"]},
    )
    text = _script(changed)
    assert "nest.Connect(stimulus, pops['E'][0:100:1]," in text
    assert "nest.Connect(stimulus, pops['I']," in text


def test_state_recordings_are_refused(brunel: Circuit) -> None:
    changed = _changed(brunel, {"recordings.state": [{"population": "E", "variables": ["v"]}]})
    with pytest.raises(UnsupportedCircuitError, match=r"recordings\.state"):
        nest_script(changed, "circuit.yaml")


def test_initial_synaptic_current_is_refused(microcircuit: Circuit) -> None:
    changed = _changed(
        microcircuit, {"populations.L23E.initial": {"v_mV": -58.0, "i_syn_ex_pA": 5.0}}
    )
    with pytest.raises(UnsupportedCircuitError, match=r"populations\.L23E\.initial\.i_syn_ex_pA"):
        nest_script(changed, "circuit.yaml")


def test_large_networks_split_synapse_models_at_run_time(microcircuit: Circuit) -> None:
    text = _script(microcircuit)
    assert "NEST_CONNECTION_LIMIT = 134217726" in text
    assert "split_models = 2988807 > 0.9 * NEST_CONNECTION_LIMIT * args.threads" in text
    assert '"synapse_model": synapse_model("static_L23E_to_L23E", split_models)' in text
    assert 'nest.CopyModel("static_synapse", name)' in text
