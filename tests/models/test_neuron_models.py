"""What follows from the neuron model declarations really follows from them.

Generated from the declarations (and checked current by ``scripts/gen_models.py --check`` in
test_synapse_models.py): the schema's ``<model>Params`` / ``<model>Initial`` definitions and
the population's ``model`` branches, the docs tables. Derived at run time: the validation of
parameters, initial state and recorded variables, the normalized document, the memory estimate,
the engine's tables and recorded units. Checked here against the declarations: the typed spec,
and the kernel layer, which may not import them (the step loop's rows, kinds and flags).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import numpy as np
import pytest

from brainsim.circuit import parse_circuit, schema
from brainsim.circuit.expressions import parse_expression
from brainsim.circuit.spec import NEURON_PARAMS, Population
from brainsim.engine import build_network
from brainsim.engine.populations import STATE_UNITS
from brainsim.errors import CircuitError
from brainsim.exchange import LocalCommunicator
from brainsim.kernels.advance import FLAGS, KINDS, PARAM_ROWS, STATE_ROWS
from brainsim.models import NEURON_MODELS, NeuronModel, Variant, neuron_schemas

MODELS = list(NEURON_MODELS.values())
VARIANTS = [variant for model in MODELS for variant in model.variants()]


def _id(variant: Variant) -> str:
    return "-".join([variant.model, *(value for _, value in variant.choices)])


def test_the_published_schema_carries_the_declared_fragments() -> None:
    definitions = schema()["$defs"]
    for name, fragment in neuron_schemas(MODELS).items():
        assert definitions[name] == fragment, name
    assert definitions["population"]["properties"]["model"]["enum"] == list(NEURON_MODELS)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_the_spec_record_has_the_declared_fields_defaults_and_options(model: NeuronModel) -> None:
    record = NEURON_PARAMS[model.name]
    fields = {field.name: field.default for field in dataclasses.fields(record)}
    assert list(fields) == list(model.field_names())
    for parameter in model.all_parameters():
        assert fields[parameter.name] == parameter.default, parameter.name
    hints = typing.get_type_hints(record)
    for choice in model.choices:
        assert fields[choice.name] == choice.default
        assert typing.get_args(hints[choice.name]) == tuple(o.value for o in choice.options)


def test_every_model_has_a_spec_record() -> None:
    assert list(NEURON_PARAMS) == list(NEURON_MODELS)
    model_hint = typing.get_type_hints(Population)["model"]
    assert typing.get_args(model_hint) == tuple(NEURON_MODELS)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_the_step_loop_reads_the_declared_rows(model: NeuronModel) -> None:
    """Each variant's rows lead the kernel layer's rows of its model (the step loop reads
    them by position), and the largest variant has them all."""
    for variant in model.variants():
        assert STATE_ROWS[model.name][: len(variant.state)] == variant.state_rows
        assert PARAM_ROWS[model.name][: len(variant.param_rows)] == variant.param_rows
    assert max(len(v.state) for v in model.variants()) == len(STATE_ROWS[model.name])
    assert max(len(v.param_rows) for v in model.variants()) == len(PARAM_ROWS[model.name])


def test_every_declared_kernel_and_flag_exists() -> None:
    assert {variant.kernel for variant in VARIANTS} == set(KINDS)
    options = {(c.name, o.value) for m in MODELS for c in m.choices for o in c.options}
    assert set(FLAGS) <= options


def test_recorded_units_are_the_declared_ones() -> None:
    # Pinned too: the units are part of every recording.
    assert STATE_UNITS == {
        "lif": {"v": "mV", "i_syn_ex": "pA", "i_syn_in": "pA"},
        "izhikevich": {"v": "mV", "u": "pA"},
        "parrot": {},
    }
    for variant in VARIANTS:
        assert set(variant.recordables) <= set(STATE_UNITS[variant.model])


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_every_variant_is_complete(variant: Variant) -> None:
    names = [p.name for p in variant.parameters]
    # The engine's constant current; a model without it takes no current (the parrot).
    assert variant.takes_current == ("i_e_pA" in names) == (variant.model != "parrot")
    assert variant.kernel
    assert variant.nest_model
    assert variant.weight_unit in ("mV", "pA", "1")
    assert variant.separates_inhibition == (variant.weight_unit == "pA" and variant.model == "lif")
    known = set(names)
    for state in variant.state:
        # a default uses parameters and the state declared before it
        parse_expression(state.default, known)
        known.add(state.name)


def _circuit(variant: Variant, initial: dict[str, Any]) -> dict[str, Any]:
    params = {**dict(variant.choices), **{p.name: p.default for p in variant.parameters}}
    return {
        "apiVersion": "brainsim/v1",
        "name": "variant",
        "simulation": {"dt_ms": 0.1, "duration_ms": 1.0, "seed": 3},
        "populations": {
            "P": {"size": 5, "model": variant.model, "params": params, "initial": initial},
            "Q": {"size": 2, "model": "lif"},
        },
        "recordings": {
            "state": [{"population": "P", "variables": list(variant.recordables)}]
            if variant.recordables
            else [],
        },
    }


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_a_variant_parses_normalizes_and_builds_as_declared(variant: Variant) -> None:
    initial = dict.fromkeys(variant.initial_keys, -1.5)
    circuit = parse_circuit(_circuit(variant, initial))
    population = circuit.populations["P"]
    assert population.variant == variant
    document = circuit.document["populations"]["P"]["params"]
    assert set(document) == {p.name for p in variant.parameters} | dict(variant.choices).keys()
    assert parse_circuit(circuit.document) == circuit
    network = build_network(circuit, LocalCommunicator())
    built = network.populations["P"]
    assert tuple(built.state) == variant.state_rows
    assert tuple(built.params) == variant.param_rows
    for state in variant.state:
        want = -1.5 if state.initial_key else 0.0
        assert np.all(built.state[state.name] == want), state.name
    # The rank's tables have the rows of its largest variant (here P's or Q's).
    rows = max(len(variant.state), 1), max(len(variant.param_rows), 5)
    assert network.neurons.state.shape[0] == rows[0]
    assert network.neurons.params.shape[0] == rows[1]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_parameters_and_state_of_other_options_are_reported(model: NeuronModel) -> None:
    for choice in model.choices:
        for option in choice.options:
            variant = model.variant({choice.name: option.value})
            foreign_params = [p.name for p in model.all_parameters() if p not in variant.parameters]
            foreign_state = [
                s.initial_key
                for s in model.all_state()
                if s.initial_key and s.initial_key not in variant.initial_keys
            ]
            if not foreign_params and not foreign_state:
                continue
            document = _circuit(variant, dict.fromkeys(foreign_state, 0.0))
            document["populations"]["P"]["params"] |= dict.fromkeys(foreign_params, 1.0)
            document["recordings"] = {}
            with pytest.raises(CircuitError, match="only used with") as raised:
                parse_circuit(document)
            message = str(raised.value)
            for key in foreign_params:
                assert f"populations.P.params.{key}: only used with" in message
            for key in foreign_state:
                assert f"populations.P.initial.{key}: only used with" in message
            assert f"this population's {choice.name} is {option.value}" in message


def test_lower_bounds_come_from_the_declaration() -> None:
    for model in MODELS:
        for parameter in model.all_parameters():
            if parameter.minimum is None:
                continue
            bad = parameter.minimum - 1.0
            variant = next(v for v in model.variants() if parameter in v.parameters)
            document = _circuit(variant, {})
            document["populations"]["P"]["params"][parameter.name] = {
                "uniform": {"low": bad, "high": parameter.minimum + 1.0}
            }
            relation = ">" if parameter.exclusive_minimum else ">="
            with pytest.raises(CircuitError, match=f"must be {relation} {parameter.minimum:g}"):
                parse_circuit(document)
