"""Values: distributions, supports, range checks, expression sampling and document form."""

from __future__ import annotations

import math

import pytest

from brainsim.circuit.problems import ProblemLog
from brainsim.circuit.spec import Expr, LogNormal, Normal, Uniform
from brainsim.circuit.values import (
    build_distribution,
    build_value,
    check_lower_bound,
    support,
    upper_estimate,
    value_data,
)


def _messages(log: ProblemLog) -> list[str]:
    return [str(problem) for problem in log.problems()]


def test_build_values() -> None:
    log = ProblemLog()
    assert build_value(3, ("w",), log) == 3.0
    assert build_value({"uniform": {"low": 0, "high": 2}}, ("w",), log) == Uniform(0.0, 2.0)
    assert build_value(
        {"normal": {"mean": 1, "std": 2, "bound": "clip", "low": 0}}, ("w",), log
    ) == (Normal(1.0, 2.0, low=0.0, bound="clip"))
    assert build_value({"lognormal": {"mu": 0, "sigma": 1}}, ("w",), log) == LogNormal(0.0, 1.0)
    rvs = {"r": Uniform(0.0, 1.0)}
    assert build_value({"expr": "2 * r"}, ("w",), log, rvs) == Expr("2 * r", ("r",))
    assert _messages(log) == []


def test_distribution_parameter_checks() -> None:
    log = ProblemLog()
    build_distribution({"normal": {"mean": 0, "std": 1, "low": 2, "high": 1}}, ("a",), log)
    build_distribution({"normal": {"mean": 0, "std": 1, "low": 4}}, ("b",), log)
    build_distribution({"normal": {"mean": 0, "std": 1, "low": 3}}, ("c",), log)
    build_distribution({"normal": {"mean": 0, "std": 1, "low": 4, "bound": "clip"}}, ("d",), log)
    build_distribution({"lognormal": {"mu": 0, "sigma": 1, "high": -1}}, ("e",), log)
    build_distribution({"normal": {"mean": 5, "std": 0, "low": 1, "high": 9}}, ("f",), log)
    messages = _messages(log)
    assert messages[0] == "a.normal.high: must be > low (2.0), got 1.0"
    assert messages[1].startswith(
        "b.normal: draws fall within [low, high] with probability 3.2e-05"
    )
    assert messages[2].startswith("e.lognormal: draws fall within [low, high] with probability 0")
    assert len(messages) == 3, "3 sigma (p = 0.00135) and clip bounds are accepted"


def test_supports_and_upper_estimates() -> None:
    assert support(2.0) == (2.0, 2.0)
    assert support(Uniform(1.0, 3.0)) == (1.0, 3.0)
    assert support(Normal(0.0, 1.0)) == (-math.inf, math.inf)
    assert support(Normal(0.0, 1.0, low=0.5)) == (0.5, math.inf)
    assert support(LogNormal(0.0, 1.0)) == (0.0, math.inf)
    assert support(Expr("r", ("r",))) is None
    assert upper_estimate(Normal(1.5, 0.75)) == pytest.approx(6.0)
    assert upper_estimate(Normal(1.5, 0.75, high=2.0)) == 2.0
    assert upper_estimate(LogNormal(0.0, 0.5)) == pytest.approx(math.exp(3.0))
    assert upper_estimate(Uniform(0.1, 4.0)) == 4.0


def test_lower_bound_checks() -> None:
    log = ProblemLog()
    check_lower_bound(LogNormal(0.0, 1.0), ("tau",), log, 0.0, inclusive=False, what="0")
    check_lower_bound(Expr("r", ("r",)), ("x",), log, 0.1, inclusive=True, what="dt_ms (0.1)")
    check_lower_bound(0.1 * 3 / 3, ("d",), log, 0.1, inclusive=True, what="dt_ms (0.1)")
    assert _messages(log) == []
    check_lower_bound(LogNormal(0.0, 1.0), ("d",), log, 0.1, inclusive=True, what="dt_ms (0.1)")
    check_lower_bound(Uniform(0.0, 1.0), ("t",), log, 0.0, inclusive=False, what="0")
    assert _messages(log) == [
        "d.lognormal: draws can fall below dt_ms (0.1): set low >= 0.1 (with bound: redraw or "
        "clip)",
        "t.uniform.low: must be > 0, got 0.0",
    ]


def test_expressions_are_tried_across_the_support() -> None:
    log = ProblemLog()
    rvs = {"r": Uniform(0.0, 1.0), "z": Normal(0.0, 1.0, low=0.0)}
    build_value({"expr": "log(r)"}, ("a",), log, rvs)
    build_value({"expr": "1 / (r - 0.5)"}, ("b",), log, rvs)
    build_value({"expr": "sqrt(z)"}, ("c",), log, rvs)
    build_value({"expr": "q"}, ("d",), log, rvs)
    build_value({"expr": "r"}, ("e",), log, {})
    messages = _messages(log)
    assert messages[0].startswith("a.expr: cannot evaluate 'log(r)': divide by zero")
    assert messages[0].endswith("(for some values of r)")
    assert messages[1].startswith("b.expr: cannot evaluate '1 / (r - 0.5)': divide by zero")
    assert messages[2:] == [
        "d.expr: unknown name 'q': expressions may use the population's random_variables (r, z)",
        "e.expr: unknown name 'r': expressions may use the population's random_variables "
        "(none are declared)",
    ]


def test_document_form_round_trips() -> None:
    values = [
        1.5,
        Uniform(0.0, 1.0),
        Normal(1.0, 0.5, low=0.1),
        Normal(1.0, 0.5, high=3.0, bound="clip"),
        LogNormal(0.0, 1.0, low=0.5, high=5.0),
    ]
    log = ProblemLog()
    for value in values:
        assert build_value(value_data(value), ("v",), log) == value
    assert value_data(Expr("2 * r", ("r",))) == {"expr": "2 * r"}
    assert value_data(Normal(1.0, 0.5)) == {"normal": {"mean": 1.0, "std": 0.5, "bound": "redraw"}}
