"""The shape of a model declaration, and what is derived from it (schema fragment, docs table)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "Choice",
    "NeuronModel",
    "Option",
    "Parameter",
    "StateVariable",
    "SynapseModel",
    "TargetNames",
    "Variant",
    "WeightCheck",
    "docs_table",
    "neuron_docs",
    "neuron_schemas",
    "population_model_schema",
    "synapse_schema",
]


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter of a model: a number given in the circuit under ``name``.

    ``name`` carries the unit (``tau_plus_ms``); ``unit`` repeats it for tables (``"1"``:
    dimensionless). ``minimum``/``maximum`` bound it (``exclusive_minimum``: strictly above).
    ``kernel_name`` is the slot of the kernel's parameter row that receives it (the name
    itself when ``None``); ``nest_name`` is NEST's name for it, for the translators.
    """

    name: str
    unit: str
    default: float
    meaning: str
    nest_name: str
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    kernel_name: str | None = None

    @property
    def slot(self) -> str:
        """The kernel parameter slot that receives this parameter."""
        return self.kernel_name or self.name

    def violation(self, value: float) -> str | None:
        """What is wrong with ``value`` for this parameter, or ``None``."""
        if not math.isfinite(value):
            return f"must be a finite number, got {value}"
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                return f"must be > {self.minimum:g}, got {value:g}"
            if not self.exclusive_minimum and value < self.minimum:
                return f"must be >= {self.minimum:g}, got {value:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g}, got {value:g}"
        return None

    def schema(self) -> dict[str, Any]:
        """This parameter's JSON Schema (a number or a ``${...}`` reference, within bounds)."""
        number: dict[str, Any] = {"type": "number"}
        if self.minimum is not None:
            number["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            number["maximum"] = self.maximum
        return {
            "anyOf": [number, {"$ref": "#/$defs/parameterReference"}],
            "description": f"{self.meaning} ({self.unit}). NEST: {self.nest_name}.",
            "default": self.default,
        }

    def bounds_text(self) -> str:
        """The bounds as docs show them (``> 0``, ``[0, 1]``, ``any``)."""
        low = self.minimum
        if low is not None and self.maximum is not None:
            return f"{'(' if self.exclusive_minimum else '['}{low:g}, {self.maximum:g}]"
        if low is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {low:g}"
        if self.maximum is not None:
            return f"<= {self.maximum:g}"
        return "any"


TargetNames = tuple[tuple[str, str], ...]
"""A model's mapping to the compilation targets (:mod:`brainsim.backends`): pairs
``(target, name)``, the name being what the target calls the model (``("nir", "LIF")``: a NIR
``LIF`` node). A target without a pair cannot express the model; the target's backend
documents how the parameters translate, and a test checks that it handles every pair."""


def _named_by(targets: TargetNames, target: str) -> str | None:
    """What ``target`` calls the model of ``targets``, or ``None`` when it cannot express it."""
    return next((name for key, name in reversed(targets) if key == target), None)


WeightCheck = Callable[[Mapping[str, float], tuple[float, float]], list[tuple[str, str]]]
"""A model's check of a projection's initial weights: ``(parameters, (lowest, highest) weight)``
-> ``(key, message)`` problems, ``key`` ``"weight"`` or a parameter name."""


def _no_weight_check(params: Mapping[str, float], weights: tuple[float, float]) -> list[Any]:
    del params, weights
    return []


@dataclass(frozen=True, slots=True)
class SynapseModel:
    """A synapse model: what a projection's ``synapse: {model: NAME, ...}`` block means.

    ``kernel`` names the delivery kernel (``"static"``, ``"stdp"``, ``"stdp_power_law"``;
    :mod:`brainsim.kernels.plasticity` maps it to code). ``state_bytes`` is the per-synapse
    state beyond a static synapse's stored weight (0: the weight is the only state).
    ``reference`` cites the definition followed. ``targets``: what each compilation target
    calls it (:data:`TargetNames`).
    """

    name: str
    summary: str
    kernel: str
    nest_model: str
    parameters: tuple[Parameter, ...]
    equations: str
    reference: str
    plastic: bool
    state_bytes: int = 0
    check_weights: WeightCheck = field(default=_no_weight_check)
    targets: TargetNames = ()

    def target_name(self, target: str) -> str | None:
        """What ``target`` calls this synapse model, or ``None`` when it cannot express it."""
        return _named_by(self.targets, target)

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name`` (``KeyError`` if none)."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, float]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.parameters}

    def schema(self) -> dict[str, Any]:
        """The ``then`` branch of this model in the schema's ``synapse`` definition."""
        properties: dict[str, Any] = {"model": True}
        properties |= {p.name: p.schema() for p in self.parameters}
        return {"properties": properties, "additionalProperties": False}


def synapse_schema(models: Iterable[SynapseModel]) -> dict[str, Any]:
    """The JSON Schema of a projection's ``synapse`` block, derived from the declarations."""
    models = list(models)
    return {
        "title": "a synapse model",
        "description": "The synapse model of a projection and its parameters; absent: static.",
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {
                "enum": [m.name for m in models],
                "description": "; ".join(f"'{m.name}': {m.summary}" for m in models) + ".",
            }
        },
        "allOf": [
            {
                "if": {"properties": {"model": {"const": m.name}}, "required": ["model"]},
                "then": m.schema(),
            }
            for m in models
        ],
    }


def docs_table(model: SynapseModel) -> str:
    """The Markdown table of ``model``'s parameters, as docs/circuit-format.md shows it."""
    rows = [
        "| parameter | unit | default | bounds | NEST | meaning |",
        "|---|---|---|---|---|---|",
    ]
    rows += [
        f"| `{p.name}` | {p.unit} | {p.default:g} | {p.bounds_text()} | `{p.nest_name}` "
        f"| {p.meaning} |"
        for p in model.parameters
    ]
    return "\n".join(rows)


# -- neuron models -----------------------------------------------------------------------------

_NEURON_VALUES = {
    (None, False): "#/$defs/neuronValue",
    (0.0, True): "#/$defs/positiveNeuronValue",
    (0.0, False): "#/$defs/nonNegativeNeuronValue",
}
"""Schema definitions of per-neuron values by lower bound ``(minimum, exclusive)``."""

_ROW_BYTES = 8
"""Bytes of one neuron's entry in a row of the engine's state or parameter table (float64)."""


@dataclass(frozen=True, slots=True)
class StateVariable:
    """One state variable of a neuron model: a row of the engine's state table.

    ``name`` is what state recordings call it (``v``, ``i_syn_ex``); ``initial_key`` is its key
    in a population's ``initial`` block (``v_mV``), ``None`` when a circuit cannot set it.
    ``default`` is its initial value when not given: an expression in the circuit's expression
    language of the model's parameters and the state declared before it (``e_l_mV``,
    ``b * v``, ``0``), evaluated per neuron. ``recordable``: whether state recordings may
    sample it.
    """

    name: str
    unit: str
    meaning: str
    default: str
    initial_key: str | None = None
    recordable: bool = True


@dataclass(frozen=True, slots=True)
class Option:
    """One value of a neuron model's choice (``synapse: alpha``), and what it adds to the model.

    ``parameters`` and ``state`` exist only with this option; they follow the model's own (a
    parameter or variable that several options share is one declaration, used by each).
    ``param_rows`` extend the model's rows of the kernel's parameter table. The other fields,
    when set, replace the model's: ``kernel`` the step kernel, ``nest_model`` NEST's model,
    ``weight_unit`` the unit of a spike's weight onto this neuron. ``separates_inhibition``:
    input of positive and of negative weight arrives in separate ring buffers. ``targets``
    add to (and for the same target replace) the model's (:data:`TargetNames`).
    """

    value: str
    meaning: str
    parameters: tuple[Parameter, ...] = ()
    state: tuple[StateVariable, ...] = ()
    param_rows: tuple[str, ...] = ()
    kernel: str = ""
    nest_model: str = ""
    weight_unit: str = ""
    separates_inhibition: bool = False
    targets: TargetNames = ()


@dataclass(frozen=True, slots=True)
class Choice:
    """A string parameter of a neuron model with enumerated options (``synapse``,
    ``integration``); ``default`` is one of the options' values."""

    name: str
    summary: str
    default: str
    options: tuple[Option, ...]

    def option(self, value: str) -> Option:
        """The option called ``value`` (``KeyError`` if none)."""
        for option in self.options:
            if option.value == value:
                return option
        raise KeyError(value)


@dataclass(frozen=True, slots=True)
class Variant:
    """A neuron model with every choice made: what a population of it holds and runs.

    ``parameters`` are the numeric parameters that apply; ``state`` the state table's rows in
    order, ``param_rows`` the parameter table's (the kernel reads both by position);
    ``targets`` the model's and the chosen options' :data:`TargetNames`, options last.
    """

    model: str
    choices: tuple[tuple[str, str], ...]
    parameters: tuple[Parameter, ...]
    state: tuple[StateVariable, ...]
    param_rows: tuple[str, ...]
    kernel: str
    nest_model: str
    weight_unit: str
    separates_inhibition: bool
    targets: TargetNames = ()

    def target_name(self, target: str) -> str | None:
        """What ``target`` calls this variant, or ``None`` when it cannot express it."""
        return _named_by(self.targets, target)

    @property
    def state_rows(self) -> tuple[str, ...]:
        """The names of the state table's rows, in order."""
        return tuple(s.name for s in self.state)

    @property
    def initial_keys(self) -> tuple[str, ...]:
        """The keys a population's ``initial`` block may set."""
        return tuple(s.initial_key for s in self.state if s.initial_key is not None)

    @property
    def recordables(self) -> tuple[str, ...]:
        """The variables a state recording may sample."""
        return tuple(s.name for s in self.state if s.recordable)

    @property
    def takes_current(self) -> bool:
        """Whether the neurons integrate currents: a variant with the parameter ``i_e_pA`` (the
        engine's constant current) also takes DC and noise stimuli; one without (``parrot``)
        receives spikes only."""
        return any(p.name == "i_e_pA" for p in self.parameters)

    @property
    def table_bytes(self) -> int:
        """Bytes of one neuron's state and parameter rows in the engine's tables."""
        return _ROW_BYTES * (len(self.state) + len(self.param_rows))


def _unique(items: Iterable[Any]) -> tuple[Any, ...]:
    """``items`` without repeated names, first occurrence kept."""
    seen: dict[str, Any] = {}
    for item in items:
        seen.setdefault(item.name, item)
    return tuple(seen.values())


@dataclass(frozen=True, slots=True)
class NeuronModel:
    """A neuron model: what a population's ``model: NAME`` with its ``params`` and ``initial``
    means, and which kernel advances it.

    ``parameters`` and ``state`` are the model's own (every variant has them; either may be
    empty, as a ``parrot``'s are); ``choices`` its string parameters, whose options may add
    parameters, state and parameter rows (see :class:`Option`). A model with ``i_e_pA``
    integrates currents (:attr:`Variant.takes_current`); one with ``t_ref_ms`` is refractory
    for it. ``param_rows`` name the rows of the kernel's parameter table, in order;
    the engine fills each from the parameter of that name or from a quantity it derives (a
    propagator). ``below`` lists pairs ``(low, high)`` of parameters where a constant ``low``
    must be below a constant ``high``. ``title`` names the model in the schema, ``summary``
    describes it in a line, ``reference`` cites the definition followed. ``targets``: what
    each compilation target calls every variant (options may add their own).
    """

    name: str
    title: str
    summary: str
    reference: str
    parameters: tuple[Parameter, ...]
    choices: tuple[Choice, ...]
    state: tuple[StateVariable, ...]
    param_rows: tuple[str, ...] = ()
    kernel: str = ""
    nest_model: str = ""
    weight_unit: str = ""
    below: tuple[tuple[str, str], ...] = ()
    targets: TargetNames = ()

    def choice(self, name: str) -> Choice:
        """The choice called ``name`` (``KeyError`` if none)."""
        for choice in self.choices:
            if choice.name == name:
                return choice
        raise KeyError(name)

    def with_option(self, choice: str, option: Option) -> NeuronModel:
        """This model with ``option`` added to its choice ``choice`` (a plug-in option)."""
        return replace(
            self,
            choices=tuple(
                replace(c, options=(*c.options, option)) if c.name == choice else c
                for c in self.choices
            ),
        )

    def all_parameters(self) -> tuple[Parameter, ...]:
        """Every numeric parameter of any variant: the model's, then the options'."""
        return _unique([*self.parameters, *(p for o in self._options() for p in o.parameters)])

    def all_state(self) -> tuple[StateVariable, ...]:
        """Every state variable of any variant: the model's, then the options'."""
        return _unique([*self.state, *(s for o in self._options() for s in o.state)])

    def field_names(self) -> tuple[str, ...]:
        """The keys of ``params`` in the document's order: the model's numeric parameters,
        the choices, then the parameters of options."""
        own = [p.name for p in self.parameters]
        choices = [c.name for c in self.choices]
        added = [p.name for p in self.all_parameters() if p.name not in own]
        return (*own, *choices, *added)

    def variant(self, choices: Mapping[str, str]) -> Variant:
        """The variant with ``choices`` (a choice not given takes its default)."""
        chosen = tuple(c.option(choices.get(c.name, c.default)) for c in self.choices)
        return Variant(
            model=self.name,
            choices=tuple((c.name, o.value) for c, o in zip(self.choices, chosen, strict=True)),
            parameters=_unique([*self.parameters, *(p for o in chosen for p in o.parameters)]),
            state=_unique([*self.state, *(s for o in chosen for s in o.state)]),
            param_rows=(*self.param_rows, *(r for o in chosen for r in o.param_rows)),
            kernel=_last(self.kernel, (o.kernel for o in chosen)),
            nest_model=_last(self.nest_model, (o.nest_model for o in chosen)),
            weight_unit=_last(self.weight_unit, (o.weight_unit for o in chosen)),
            separates_inhibition=any(o.separates_inhibition for o in chosen),
            targets=(*self.targets, *(t for o in chosen for t in o.targets)),
        )

    def variants(self) -> tuple[Variant, ...]:
        """Every variant: each combination of options."""
        combinations = itertools.product(*(c.options for c in self.choices))
        return tuple(
            self.variant({c.name: o.value for c, o in zip(self.choices, combination, strict=True)})
            for combination in combinations
        )

    def used_with(self, name: str) -> str:
        """Which options a parameter or state variable (by name or initial key) exists with,
        as ``"synapse: exponential or alpha"``; ``""`` when every variant has it."""
        if _declares(name, self.parameters, self.state):
            return ""
        parts = []
        for choice in self.choices:
            values = [o.value for o in choice.options if _declares(name, o.parameters, o.state)]
            if values:
                parts.append(f"{choice.name}: {' or '.join(values)}")
        return "; ".join(parts)

    def params_schema(self) -> dict[str, Any]:
        """The schema of this model's ``params`` block (``$defs.<name>Params``)."""
        properties: dict[str, Any] = {}
        for name in self.field_names():
            if name in (c.name for c in self.choices):
                properties[name] = _choice_schema(self.choice(name))
            else:
                parameter = next(p for p in self.all_parameters() if p.name == name)
                properties[name] = self._parameter_schema(parameter)
        return {
            "title": f"{self.title} parameters",
            "description": f"{self.summary}; a parameter not given takes its default.",
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }

    def initial_schema(self) -> dict[str, Any]:
        """The schema of this model's ``initial`` block (``$defs.<name>Initial``)."""
        properties = {
            s.initial_key: {
                "$ref": "#/$defs/neuronValue",
                "description": f"Initial {s.meaning} ({s.unit}); default {s.default}."
                + self._only(s.name),
            }
            for s in self.all_state()
            if s.initial_key is not None
        }
        return {
            "title": f"{self.title} initial state",
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }

    def _parameter_schema(self, parameter: Parameter) -> dict[str, Any]:
        bounds = (parameter.minimum, parameter.exclusive_minimum)
        if bounds not in _NEURON_VALUES or parameter.maximum is not None:
            raise ValueError(
                f"{self.name}.{parameter.name}: a neuron parameter is bounded by > 0, >= 0 or "
                f"nothing, got {parameter.bounds_text()}"
            )
        return {
            "$ref": _NEURON_VALUES[bounds],
            "description": f"{parameter.meaning} ({parameter.unit}). NEST: {parameter.nest_name}."
            + self._only(parameter.name),
            "default": parameter.default,
        }

    def _only(self, name: str) -> str:
        used = self.used_with(name)
        return f" Only with {used}." if used else ""

    def _options(self) -> tuple[Option, ...]:
        return tuple(o for c in self.choices for o in c.options)


def _declares(
    name: str, parameters: tuple[Parameter, ...], state: tuple[StateVariable, ...]
) -> bool:
    """Whether ``name`` is one of ``parameters`` or of ``state`` (by name or initial key)."""
    return any(p.name == name for p in parameters) or any(
        name in (s.name, s.initial_key) for s in state
    )


def _last(default: str, values: Iterable[str]) -> str:
    """The last non-empty of ``values``, else ``default``."""
    return next((v for v in reversed(list(values)) if v), default)


def _choice_schema(choice: Choice) -> dict[str, Any]:
    return {
        "enum": [o.value for o in choice.options],
        "description": f"{choice.summary}: "
        + "; ".join(f"'{o.value}': {o.meaning}" for o in choice.options)
        + ".",
        "default": choice.default,
    }


def neuron_schemas(models: Iterable[NeuronModel]) -> dict[str, dict[str, Any]]:
    """The schema definitions that follow from the neuron models: ``<name>Params`` and
    ``<name>Initial`` for each."""
    definitions: dict[str, dict[str, Any]] = {}
    for model in models:
        definitions[f"{model.name}Params"] = model.params_schema()
        definitions[f"{model.name}Initial"] = model.initial_schema()
    return definitions


def population_model_schema(
    models: Iterable[NeuronModel],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A population's ``model`` property and its ``allOf`` branches (each model's ``params``
    and ``initial`` definitions), derived from the declarations."""
    models = list(models)
    model = {
        "enum": [m.name for m in models],
        "description": "Neuron model: "
        + "; ".join(f"'{m.name}': {m.summary}" for m in models)
        + ".",
    }
    branches = [
        {
            "if": {"properties": {"model": {"const": m.name}}, "required": ["model"]},
            "then": {
                "properties": {
                    "params": {"$ref": f"#/$defs/{m.name}Params"},
                    "initial": {"$ref": f"#/$defs/{m.name}Initial"},
                }
            },
        }
        for m in models
    ]
    return model, branches


def neuron_docs(model: NeuronModel) -> str:
    """The Markdown tables of ``model``'s parameters and state, as docs/circuit-format.md
    shows them (a line saying so in place of a table that would be empty)."""
    rows = ["No parameters: `params` is empty."]
    if model.field_names():
        rows = [
            "| parameter | unit | default | bounds | NEST | meaning |",
            "|---|---|---|---|---|---|",
        ]
    for name in model.field_names():
        if name in (c.name for c in model.choices):
            rows.append(_choice_row(model.choice(name)))
            continue
        p = next(p for p in model.all_parameters() if p.name == name)
        rows.append(
            f"| `{p.name}` | {p.unit} | {p.default:g} | {p.bounds_text()} | `{p.nest_name}` "
            f"| {p.meaning}{_with(model.used_with(p.name))} |"
        )
    rows.append("")
    if not model.all_state():
        rows.append("No state: `initial` is empty, and state recordings have nothing to sample.")
        return "\n".join(rows)
    rows += [
        "| state | unit | `initial` key | default | recordable | meaning |",
        "|---|---|---|---|---|---|",
    ]
    rows += [
        f"| `{s.name}` | {s.unit} | {f'`{s.initial_key}`' if s.initial_key else 'none'} "
        f"| `{s.default}` | {'yes' if s.recordable else 'no'} "
        f"| {s.meaning}{_with(model.used_with(s.name))} |"
        for s in model.all_state()
    ]
    return "\n".join(rows)


def _with(used: str) -> str:
    return f" (with `{used}`)" if used else ""


def _choice_row(choice: Choice) -> str:
    values = ", ".join(f"`{o.value}`" for o in choice.options)
    meanings = "; ".join(
        f"`{o.value}`: {o.meaning}" + (f" (NEST: `{o.nest_model}`)" if o.nest_model else "")
        for o in choice.options
    )
    return f"| `{choice.name}` | | `{choice.default}` | {values} | | {choice.summary}: {meanings} |"
