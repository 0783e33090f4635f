"""Resolve the ``parameters:`` block and substitute ``${...}`` references throughout a document.

A parameter is a number or a reference expression over other parameters, in any order::

    parameters:
      scale: 0.1
      n_exc: ${round(20683 * scale)}

A string that is exactly one ``${...}`` becomes the expression's value (a float) wherever it
appears, except in ``description`` and in the keys of mappings. Inside an ``expr`` string (a
per-neuron expression) references are spliced into the text as numbers. Anywhere else a
reference must be the whole value. Expressions use the language of
:mod:`brainsim.circuit.expressions`; undefined names, circular definitions and arithmetic
errors are problems at the path of the reference.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from brainsim.circuit.expressions import (
    FUNCTIONS,
    ExpressionError,
    UnknownNameError,
    evaluate,
    parse_expression,
)
from brainsim.circuit.problems import Path, ProblemLog
from brainsim.circuit.spec import Expr

__all__ = ["REFERENCE", "substitute_parameters"]

REFERENCE = re.compile(r"\$\{([^{}]*)\}")
"""One ``${...}`` reference; group 1 is the expression text."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_UNSUBSTITUTED_KEYS = ("parameters", "description")


def substitute_parameters(
    document: Mapping[str, Any],
    log: ProblemLog,
    overrides: Mapping[str, float] | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Resolve the parameters (``overrides`` replace declared ones) and substitute references.

    Returns the substituted document, whose ``parameters`` block holds the resolved numbers,
    and the resolved parameters. Problems go to ``log``; a value that could not be substituted
    is left as it was and its path is settled, so later stages skip it quietly.
    """
    declared, definitions = _definitions(document.get("parameters"), log)
    if overrides:
        _apply_overrides(declared, definitions, overrides, log)
    values, failed = _Resolver(declared, definitions, log).resolve()
    context = _Context(declared, values, failed, log)
    substituted: dict[str, Any] = {}
    for key, value in document.items():
        if key == "parameters" and isinstance(value, dict):
            substituted[key] = {name: values.get(name, raw) for name, raw in value.items()}
        elif key in _UNSUBSTITUTED_KEYS:
            substituted[key] = value
        else:
            substituted[key] = context.substitute(value, (key,))
    return substituted, values


def _definitions(block: Any, log: ProblemLog) -> tuple[list[str], dict[str, float | Expr]]:
    """The declared names, and the numbers and parsed expressions of the well-formed ones (the
    schema reports the form of the others)."""
    definitions: dict[str, float | Expr] = {}
    if not isinstance(block, dict):
        return [], definitions
    names = [name for name in block if _IDENTIFIER.fullmatch(name)]
    for name in names:
        path: Path = ("parameters", name)
        raw = block[name]
        if name in FUNCTIONS:
            log.add(path, f"{name!r} is the name of a function; choose another name", settles=True)
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            definitions[name] = float(raw)
        elif isinstance(raw, str) and (match := REFERENCE.fullmatch(raw.strip())):
            expr = _parse(match.group(1), names, path, log)
            if expr is not None:
                definitions[name] = expr
    return names, definitions


def _apply_overrides(
    declared: list[str],
    definitions: dict[str, float | Expr],
    overrides: Mapping[str, float],
    log: ProblemLog,
) -> None:
    for name, value in overrides.items():
        path: Path = ("parameters", name)
        if name not in declared:
            log.add(path, f"cannot override {name!r}: {_defined_list(declared)}", settles=True)
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            log.add(path, f"override must be a finite number, got {value!r}", settles=True)
        else:
            definitions[name] = float(value)


class _Resolver:
    """Evaluates parameters in dependency order (iterative depth-first search)."""

    def __init__(
        self, declared: list[str], definitions: Mapping[str, float | Expr], log: ProblemLog
    ) -> None:
        self._definitions = definitions
        self._log = log
        self._values: dict[str, float] = {}
        self._failed = {name for name in declared if name not in definitions}
        self._state: dict[str, str] = {}

    def resolve(self) -> tuple[dict[str, float], set[str]]:
        for root in self._definitions:
            if root not in self._state and root not in self._failed:
                self._visit(root)
        ordered = {name: self._values[name] for name in self._definitions if name in self._values}
        return ordered, self._failed

    def _dependencies(self, name: str) -> Iterator[str]:
        definition = self._definitions[name]
        return iter(definition.names if isinstance(definition, Expr) else ())

    def _visit(self, root: str) -> None:
        stack = [(root, self._dependencies(root))]
        self._state[root] = "active"
        while stack:
            name, dependencies = stack[-1]
            dependency = next(dependencies, None)
            if dependency is None:
                stack.pop()
                self._state[name] = "done"
                self._compute(name)
            elif dependency in self._failed and dependency not in self._state:
                continue
            elif self._state.get(dependency) == "active":
                chain = [entry for entry, _ in stack]
                cycle = [*chain[chain.index(dependency) :], dependency]
                self._log.add(
                    ("parameters", dependency),
                    f"circular reference: {' -> '.join(cycle)}",
                    settles=True,
                )
                self._failed.update(cycle)
            elif dependency not in self._state:
                self._state[dependency] = "active"
                stack.append((dependency, self._dependencies(dependency)))

    def _compute(self, name: str) -> None:
        path: Path = ("parameters", name)
        definition = self._definitions[name]
        if name in self._failed:
            self._log.mark_invalid(path)
        elif isinstance(definition, float):
            self._values[name] = definition
        elif any(dependency in self._failed for dependency in definition.names):
            self._failed.add(name)
            self._log.mark_invalid(path)
        else:
            try:
                self._values[name] = float(evaluate(definition, self._values))
            except ExpressionError as error:
                self._failed.add(name)
                self._log.add(path, str(error), settles=True)


class _Context:
    """Substitutes references in a document tree, given the resolved parameters."""

    def __init__(
        self,
        declared: list[str],
        values: Mapping[str, float],
        failed: set[str],
        log: ProblemLog,
    ) -> None:
        self._declared = declared
        self._values = values
        self._failed = failed
        self._log = log

    def substitute(self, value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            return {key: self.substitute(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.substitute(item, (*path, index)) for index, item in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = REFERENCE.fullmatch(value.strip())
        if whole is not None:
            number = self._evaluate(whole.group(1), path)
            return value if number is None else number
        if path[-1] == "expr":
            return self._splice(value, path)
        self._log.add(
            path,
            f"a ${{...}} reference must be the whole value, got {value!r}",
            settles=True,
        )
        return value

    def _splice(self, text: str, path: Path) -> str:
        """Replace each reference inside a per-neuron expression by its value."""
        pieces: list[str] = []
        end = 0
        for match in REFERENCE.finditer(text):
            number = self._evaluate(match.group(1), path)
            if number is None:
                return text
            pieces += [text[end : match.start()], f"({number!r})"]
            end = match.end()
        return "".join([*pieces, text[end:]])

    def _evaluate(self, text: str, path: Path) -> float | None:
        expr = _parse(text, self._declared, path, self._log)
        if expr is None:
            return None
        if any(name in self._failed for name in expr.names):
            self._log.mark_invalid(path)
            return None
        try:
            return float(evaluate(expr, self._values))
        except ExpressionError as error:
            self._log.add(path, str(error), settles=True)
            return None


def _parse(text: str, names: list[str], path: Path, log: ProblemLog) -> Expr | None:
    try:
        return parse_expression(text, names)
    except UnknownNameError as error:
        message = f"undefined parameter {error.name!r}; {_defined_list(names)}"
        log.add(path, message, settles=True)
    except ExpressionError as error:
        log.add(path, str(error), settles=True)
    return None


def _defined_list(names: list[str]) -> str:
    if not names:
        return "no parameters are defined (declare them in a parameters: block)"
    return "defined parameters: " + ", ".join(names)
