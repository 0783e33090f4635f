"""Values of a circuit: build constants, distributions and expressions, check their ranges.

A value in the document is a number, ``{uniform: {low, high}}``, ``{normal: {mean, std, low?,
high?, bound?}}``, ``{lognormal: {mu, sigma, low?, high?, bound?}}`` or, for neuron parameters
and initial state, ``{expr: "..."}`` over the population's random variables. Its *support* (the
interval its draws can fall in) decides range checks: a delay drawn from an unbounded normal
can fall below ``dt_ms`` and is therefore rejected until it has ``low >= dt_ms``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from brainsim.circuit.expressions import (
    ExpressionError,
    UnknownNameError,
    evaluate,
    parse_expression,
)
from brainsim.circuit.problems import Path, ProblemLog
from brainsim.circuit.spec import Distribution, Expr, LogNormal, Normal, Uniform, Value

__all__ = [
    "MIN_REDRAW_ACCEPTANCE",
    "build_distribution",
    "build_value",
    "check_lower_bound",
    "support",
    "upper_estimate",
    "value_data",
]

MIN_REDRAW_ACCEPTANCE = 1e-3
"""Least probability mass a ``redraw``-bounded distribution must keep inside its bounds, so
that redrawing ends after about 1/p tries on average."""

_SAMPLE_POINTS = 9


def build_value(
    data: Any,
    path: Path,
    log: ProblemLog,
    random_variables: Mapping[str, Distribution] | None = None,
) -> Value:
    """The spec value of schema-valid ``data``; expressions only where ``random_variables`` is
    given (neuron parameters and initial state). Semantic problems go to ``log``."""
    if isinstance(data, int | float):
        return float(data)
    if "expr" in data and random_variables is not None:
        return _build_expression(data["expr"], (*path, "expr"), log, random_variables)
    return build_distribution(data, path, log)


def build_distribution(data: Mapping[str, Any], path: Path, log: ProblemLog) -> Distribution:
    """A distribution from schema-valid ``{kind: {...}}`` data, checking its parameters."""
    ((kind, fields),) = data.items()
    where: Path = (*path, kind)
    low = None if fields.get("low") is None else float(fields["low"])
    high = None if fields.get("high") is None else float(fields["high"])
    if kind == "uniform":
        uniform = Uniform(low=float(fields["low"]), high=float(fields["high"]))
        if not uniform.low < uniform.high:
            log.add((*where, "high"), f"must be > low ({uniform.low}), got {uniform.high}")
        return uniform
    ordered = low is None or high is None or low < high
    if not ordered:
        log.add((*where, "high"), f"must be > low ({low}), got {high}")
    bound: Literal["redraw", "clip"] = "clip" if fields.get("bound") == "clip" else "redraw"
    distribution: Normal | LogNormal
    if kind == "normal":
        distribution = Normal(float(fields["mean"]), float(fields["std"]), low, high, bound)
    else:
        distribution = LogNormal(float(fields["mu"]), float(fields["sigma"]), low, high, bound)
    if bound == "redraw" and ordered and (low is not None or high is not None):
        acceptance = _mass_inside(distribution)
        if acceptance < MIN_REDRAW_ACCEPTANCE:
            log.add(
                where,
                f"draws fall within [low, high] with probability {acceptance:.2g} only, so "
                "redrawing would practically never end; widen the bounds or use bound: clip",
            )
    return distribution


def _mass_inside(distribution: Normal | LogNormal) -> float:
    """Probability that one draw lies within ``[low, high]``."""
    if isinstance(distribution, Normal):
        center, spread = distribution.mean, distribution.std
        low, high = distribution.low, distribution.high
    else:
        center, spread = distribution.mu, distribution.sigma
        low = (
            None
            if distribution.low is None or distribution.low <= 0
            else math.log(distribution.low)
        )
        if distribution.high is not None and distribution.high <= 0:
            return 0.0
        high = None if distribution.high is None else math.log(distribution.high)
    lower = -math.inf if low is None else low
    upper = math.inf if high is None else high
    if spread == 0:
        return 1.0 if lower <= center <= upper else 0.0
    return _normal_cdf((upper - center) / spread) - _normal_cdf((lower - center) / spread)


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _build_expression(
    text: str, path: Path, log: ProblemLog, random_variables: Mapping[str, Distribution]
) -> Expr | float:
    try:
        expr = parse_expression(text, random_variables.keys())
    except UnknownNameError as error:
        declared = ", ".join(random_variables) or "none are declared"
        log.add(
            path,
            f"unknown name {error.name!r}: expressions may use the population's "
            f"random_variables ({declared})",
        )
        return math.nan
    except ExpressionError as error:
        log.add(path, str(error))
        return math.nan
    samples = {name: _samples(random_variables[name]) for name in expr.names}
    try:
        result = evaluate(expr, samples)
    except ExpressionError as error:
        log.add(path, f"{error} (for some values of {', '.join(expr.names)})")
    else:
        if not np.all(np.isfinite(result)):
            log.add(path, "gives values that are not finite")
    return expr


def _samples(distribution: Distribution) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Points across the support that an expression must be able to take (extreme parameters
    may give infinite points; the expression is then reported as not finite)."""
    spread = np.linspace(-4, 4, _SAMPLE_POINTS)
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(distribution, Uniform):
            return np.linspace(distribution.low, distribution.high, _SAMPLE_POINTS)
        if isinstance(distribution, Normal):
            points = distribution.mean + distribution.std * spread
        else:
            points = np.exp(distribution.mu + distribution.sigma * spread)
    low = -np.inf if distribution.low is None else distribution.low
    high = np.inf if distribution.high is None else distribution.high
    return np.asarray(np.clip(points, low, high), dtype=np.float64)


def support(value: Value) -> tuple[float, float] | None:
    """The smallest interval holding every draw of ``value``; ``None`` for an expression."""
    if isinstance(value, float | int):
        return float(value), float(value)
    if isinstance(value, Uniform):
        return value.low, value.high
    if isinstance(value, Normal):
        low = -math.inf if value.low is None else value.low
        return low, math.inf if value.high is None else value.high
    if isinstance(value, LogNormal):
        low = 0.0 if value.low is None else max(value.low, 0.0)
        return low, math.inf if value.high is None else value.high
    return None


def upper_estimate(value: Value) -> float:
    """A practical largest draw: the upper bound, or 6 standard deviations above the center."""
    if isinstance(value, Normal):
        tail = value.mean + 6 * value.std
        return tail if value.high is None else min(tail, value.high)
    if isinstance(value, LogNormal):
        tail = math.exp(min(value.mu + 6 * value.sigma, 700.0))
        return tail if value.high is None else min(tail, value.high)
    bounds = support(value)
    return 0.0 if bounds is None else bounds[1]


def check_lower_bound(
    value: Value,
    path: Path,
    log: ProblemLog,
    minimum: float,
    *,
    inclusive: bool,
    what: str,
) -> None:
    """Problem when draws of ``value`` can fall below ``minimum`` (``what`` names the limit,
    e.g. ``"dt_ms (0.1)"``). Expressions are not checked."""
    bounds = support(value)
    if bounds is None:
        return
    if isinstance(value, LogNormal) and minimum <= 0 and (value.low is None or value.low <= 0):
        return
    lowest = bounds[0]
    if lowest > minimum or (inclusive and lowest >= minimum * (1 - 1e-9)):
        return
    relation = ">=" if inclusive else ">"
    if isinstance(value, float | int):
        log.add(path, f"must be {relation} {what}, got {value}")
    elif isinstance(value, Uniform):
        log.add((*path, "uniform", "low"), f"must be {relation} {what}, got {value.low}")
    elif isinstance(value, Normal | LogNormal):
        kind = "normal" if isinstance(value, Normal) else "lognormal"
        if value.low is not None and not (isinstance(value, LogNormal) and value.low <= 0):
            log.add((*path, kind, "low"), f"must be {relation} {what}, got {value.low}")
        else:
            log.add(
                (*path, kind),
                f"draws can fall below {what}: set low {relation} {minimum} "
                "(with bound: redraw or clip)",
            )


def value_data(value: Value) -> Any:
    """The normalized document form of a value."""
    if isinstance(value, float | int):
        return float(value)
    if isinstance(value, Uniform):
        return {"uniform": {"low": value.low, "high": value.high}}
    if isinstance(value, Expr):
        return {"expr": value.source}
    if isinstance(value, Normal):
        fields: dict[str, Any] = {"mean": value.mean, "std": value.std}
        kind = "normal"
    else:
        fields = {"mu": value.mu, "sigma": value.sigma}
        kind = "lognormal"
    if value.low is not None:
        fields["low"] = value.low
    if value.high is not None:
        fields["high"] = value.high
    fields["bound"] = value.bound
    return {kind: fields}
