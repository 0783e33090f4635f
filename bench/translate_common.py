"""What the NEST and Brian2 script writers share: per-neuron values as NumPy code, the header.

A circuit's neuron parameters and initial values are constants, distributions or expressions
of per-neuron random variables (:mod:`brainsim.circuit.spec`). In a generated script every
non-constant one becomes a NumPy array drawn with :func:`bench.script_runtime.draw` (embedded
in the script) or computed from the random-variable arrays, so both simulators get the same
distributions as brainsim. Features a writer cannot express raise :class:`UnsupportedCircuitError`
with the field path, never a silently different circuit.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainsim.circuit.spec import (
    Circuit,
    Expr,
    IzhikevichParams,
    LifParams,
    LogNormal,
    NodeSelection,
    Normal,
    ParrotParams,
    Population,
    Uniform,
    Value,
)

__all__ = [
    "RUNTIME_SOURCE",
    "NeuronValues",
    "UnsupportedCircuitError",
    "distribution_spec",
    "expression_to_numpy",
    "header_lines",
    "neuron_values",
    "python_literal",
    "selection_slice",
    "sign_of",
]

RUNTIME_SOURCE = (Path(__file__).with_name("script_runtime.py")).read_text(encoding="utf-8")
"""Source of :mod:`bench.script_runtime`, embedded at the top of every generated script."""

_NUMPY_FUNCTIONS = {
    "exp": "np.exp",
    "log": "np.log",
    "sqrt": "np.sqrt",
    "abs": "np.abs",
    "floor": "np.floor",
    "ceil": "np.ceil",
    "round": "np.round",
}
_NUMPY_REDUCTIONS = {"min": "np.minimum", "max": "np.maximum"}


class UnsupportedCircuitError(ValueError):
    """The circuit uses something a reference-simulator script cannot express."""

    def __init__(self, simulator: str, path: str, what: str) -> None:
        super().__init__(f"{simulator}: {path}: {what}")
        self.simulator = simulator
        self.path = path


def python_literal(number: float) -> str:
    """A float as Python source that reads back to the same value (``inf`` as ``float('inf')``)."""
    if math.isinf(number):
        return "float('inf')" if number > 0 else "-float('inf')"
    return repr(float(number))


def distribution_spec(value: Uniform | Normal | LogNormal) -> dict[str, dict[str, Any]]:
    """The document form ``{"normal": {...}}`` that :func:`~bench.script_runtime.draw` takes."""
    if isinstance(value, Uniform):
        return {"uniform": {"low": value.low, "high": value.high}}
    bounds = {"low": value.low, "high": value.high, "bound": value.bound}
    if isinstance(value, Normal):
        return {"normal": {"mean": value.mean, "std": value.std, **bounds}}
    return {"lognormal": {"mu": value.mu, "sigma": value.sigma, **bounds}}


class _ToNumpy(ast.NodeTransformer):
    """Rewrites a validated brainsim expression into NumPy code over a dict of arrays."""

    def __init__(self, variables: str) -> None:
        self._variables = variables

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return ast.Subscript(
            value=ast.Name(id=self._variables, ctx=ast.Load()),
            slice=ast.Constant(node.id),
            ctx=ast.Load(),
        )

    def visit_Call(self, node: ast.Call) -> ast.expr:
        assert isinstance(node.func, ast.Name)  # brainsim's parser accepts only named calls
        args: list[ast.expr] = [self.visit(arg) for arg in node.args]
        name = node.func.id
        if name in _NUMPY_REDUCTIONS:
            result = args[0]
            for arg in args[1:]:
                result = ast.Call(
                    func=_dotted(_NUMPY_REDUCTIONS[name]), args=[result, arg], keywords=[]
                )
            return result
        return ast.Call(func=_dotted(_NUMPY_FUNCTIONS[name]), args=args, keywords=[])


def _dotted(name: str) -> ast.expr:
    module, attribute = name.split(".")
    return ast.Attribute(value=ast.Name(id=module, ctx=ast.Load()), attr=attribute, ctx=ast.Load())


def expression_to_numpy(expression: Expr, variables: str) -> str:
    """NumPy code for a brainsim expression whose random variables live in dict ``variables``.

    ``"-65 + 15 * r**2"`` with ``variables="rv"`` gives ``"-65 + 15 * rv['r'] ** 2"``. The
    expression was validated by brainsim's whitelisting parser, so only numbers, names,
    arithmetic and the documented functions can occur.
    """
    tree = ast.parse(expression.source.strip(), mode="eval")
    return ast.unparse(ast.fix_missing_locations(_ToNumpy(variables).visit(tree)))


def sign_of(value: Value) -> int:
    """+1 when every draw is >= 0, -1 when every draw is <= 0, 0 when both signs occur."""
    if isinstance(value, float | int):
        return 1 if value >= 0 else -1
    if isinstance(value, Uniform):
        low, high = value.low, value.high
    elif isinstance(value, Normal):
        low = -math.inf if value.low is None else value.low
        high = math.inf if value.high is None else value.high
        if value.std == 0:
            low = high = value.mean
    elif isinstance(value, LogNormal):
        return 1
    else:
        return 0
    if low >= 0:
        return 1
    if high <= 0:
        return -1
    return 0


@dataclass(frozen=True, slots=True)
class NeuronValues:
    """The per-neuron values of one population as script code.

    ``code[name]`` is a Python literal (constant) or an expression naming a NumPy array in the
    script's dict ``arrays`` (``"vals['c_mV']"``); ``lines`` are the statements that draw or
    compute those arrays, in order (random variables first, so expressions can use them);
    ``varying`` names the values that differ between neurons.
    """

    code: Mapping[str, str]
    lines: tuple[str, ...]
    varying: frozenset[str]

    def is_constant(self, name: str) -> bool:
        """True when ``name`` has the same value for every neuron."""
        return name not in self.varying


_MODEL_FIELDS: Mapping[type, tuple[str, ...]] = {
    LifParams: (
        "tau_m_ms",
        "c_m_pF",
        "v_th_mV",
        "v_reset_mV",
        "e_l_mV",
        "t_ref_ms",
        "i_e_pA",
        "tau_syn_ex_ms",
        "tau_syn_in_ms",
    ),
    IzhikevichParams: ("a", "b", "c_mV", "d", "v_peak_mV", "i_e_pA"),
    ParrotParams: (),
}


def neuron_values(population: Population, arrays: str, rv: str) -> NeuronValues:
    """Code for every parameter and initial value of ``population`` (defaults filled in).

    Parameters keep their brainsim names; initial values are ``v_mV``, and ``u`` (Izhikevich)
    or ``i_syn_ex_pA`` / ``i_syn_in_pA`` (LIF with current synapses); a parrot has none. An
    unset Izhikevich ``u`` is ``b * v_mV`` per neuron, as in brainsim's engine. Arrays are
    stored in the script's dict named ``arrays``, random variables in the dict named ``rv``.
    """
    n = population.size
    code: dict[str, str] = {}
    lines = [
        f"{rv}[{name!r}] = draw(rng, {n}, {distribution_spec(distribution)!r})"
        for name, distribution in population.random_variables.items()
    ]
    varying: set[str] = set()

    def array(name: str, expression: str) -> None:
        lines.append(f"{arrays}[{name!r}] = {expression}")
        code[name] = f"{arrays}[{name!r}]"
        varying.add(name)

    def assign(name: str, value: Value) -> None:
        if isinstance(value, float | int):
            code[name] = python_literal(value)
        elif isinstance(value, Expr):
            numpy = expression_to_numpy(value, rv)
            array(name, f"np.broadcast_to(np.asarray({numpy}, dtype=float), ({n},)).copy()")
        else:
            array(name, f"draw(rng, {n}, {distribution_spec(value)!r})")

    def assign_or_default(name: str, default: str) -> None:
        """The initial value, or the parameter it defaults to (sharing that parameter's code)."""
        if name in population.initial:
            assign(name, population.initial[name])
            return
        code[name] = code[default]
        if default in varying:
            varying.add(name)

    params = population.params
    for name in _MODEL_FIELDS[type(params)]:
        assign(name, getattr(params, name))
    if isinstance(params, LifParams):
        assign_or_default("v_mV", "e_l_mV")
        if params.synapse != "delta":
            assign("i_syn_ex_pA", population.initial.get("i_syn_ex_pA", 0.0))
            assign("i_syn_in_pA", population.initial.get("i_syn_in_pA", 0.0))
    elif isinstance(params, IzhikevichParams):
        assign_or_default("v_mV", "c_mV")
        if "u" in population.initial:
            assign("u", population.initial["u"])
        elif "b" in varying or "v_mV" in varying:
            array("u", f"np.broadcast_to({code['b']} * {code['v_mV']}, ({n},)).copy()")
        else:
            code["u"] = python_literal(float(code["b"]) * float(code["v_mV"]))
    return NeuronValues(code=code, lines=tuple(lines), varying=frozenset(varying))


def selection_slice(selection: NodeSelection, size: int) -> tuple[int, int, int] | None:
    """``(start, stop, step)`` of a range selection, or ``None`` for an explicit id list."""
    if selection.ids is not None:
        return None
    return selection.start, size if selection.stop is None else selection.stop, selection.step


def header_lines(circuit: Circuit, simulator: str, source: str) -> list[str]:
    """The comment block that opens a generated script (what it is and where it came from)."""
    return [
        "#!/usr/bin/env python",
        f"# {simulator} script for the circuit {circuit.name!r}, generated by the brainsim",
        f"# benchmark suite (python -m bench) from {source}. Do not edit: regenerate it.",
        f"# {circuit.n_neurons} neurons, dt {circuit.simulation.dt_ms} ms, "
        f"{circuit.simulation.duration_ms} ms, seed {circuit.simulation.seed}.",
        "# Prints one line 'BENCH_RESULT {json}': build_s, sim_s, n_spikes per population,",
        "# n_synapses.",
    ]
