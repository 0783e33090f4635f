"""The expression language: whitelisted syntax only, float64 arithmetic, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from brainsim.circuit.expressions import (
    MAX_EXPRESSION_DEPTH,
    MAX_EXPRESSION_LENGTH,
    ExpressionError,
    UnknownNameError,
    evaluate,
    parse_expression,
)
from brainsim.circuit.spec import Expr


def test_parse_returns_the_source_and_the_names_in_order_of_use() -> None:
    expr = parse_expression("b * r + exp(-r) - b", ["r", "b", "unused"])
    assert expr == Expr(source="b * r + exp(-r) - b", names=("b", "r"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("2 ** 10", 1024.0),
        ("-7 % 3", 2.0),
        ("7 / 2", 3.5),
        ("+-+1", -1.0),
        ("sqrt(16) + abs(-2) + floor(1.7) + ceil(1.2)", 9.0),
        ("round(2.5) + round(3.5)", 6.0),
        ("min(3, 1, 2) + max(3, 1, 2)", 4.0),
        ("exp(log(5))", pytest.approx(5.0)),
        ("1e-3 * 1000", 1.0),
        ("10 ** -400", 0.0),
    ],
)
def test_constant_expressions(text: str, expected: float) -> None:
    result = evaluate(parse_expression(text, []), {})
    assert isinstance(result, float)
    assert result == expected


def test_evaluation_is_element_wise_over_arrays() -> None:
    r = np.array([0.0, 0.25, 1.0])
    expr = parse_expression("-65 + 15 * r**2", ["r"])
    np.testing.assert_array_equal(evaluate(expr, {"r": r}), -65 + 15 * r**2)
    both = parse_expression("max(r, s) - min(r, 0.5)", ["r", "s"])
    s = np.array([0.5, 0.0, 2.0])
    np.testing.assert_array_equal(
        evaluate(both, {"r": r, "s": s}), np.maximum(r, s) - np.minimum(r, 0.5)
    )
    assert evaluate(expr, {"r": 1.0}) == -50.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "cannot call '__import__'"),
        ("open('/etc/passwd')", "cannot call 'open'"),
        ("r.__class__", "attribute access is not allowed"),
        ("(1).real", "attribute access is not allowed"),
        ("lambda: 1", "lambda is not allowed"),
        ("(lambda: 1)()", "cannot call lambda"),
        ("[1, 2][0]", "indexing is not allowed"),
        ("[x for x in (1, 2)]", "a comprehension is not allowed"),
        ("1 if r else 2", "if-else is not allowed"),
        ("r < 1", "comparison is not allowed"),
        ("r and 1", "and/or is not allowed"),
        ("(y := 1)", "assignment is not allowed"),
        ("'text'", "only numbers are allowed as literals"),
        ("True", "only numbers are allowed as literals"),
        ("1j", "only numbers are allowed as literals"),
        ("f'{r}'", "a string is not allowed"),
        ("r << 2", "operator LShift is not allowed"),
        ("r // 2", "operator FloorDiv is not allowed"),
        ("~1", "operator Invert is not allowed"),
        ("exp", "'exp' is a function; call it"),
        ("exp(1, 2)", "exp() takes 1 argument(s), got 2"),
        ("max(1)", "max() takes at least 2 argument(s), got 1"),
        ("round(1.5, ndigits=1)", "takes positional arguments only"),
        ("max(*r)", "takes positional arguments only"),
        ("1 +", "invalid expression '1 +'"),
        ("", "expression is empty"),
        ("9" * 400, "number literal too large"),
        ("1; 2", "invalid expression"),
        ("import os", "invalid expression"),
    ],
)
def test_rejected_syntax(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse_expression(text, ["r"])
    assert message in str(raised.value)


def test_unknown_names_list_the_allowed_ones() -> None:
    with pytest.raises(UnknownNameError) as raised:
        parse_expression("r + q", ["r", "b"])
    assert raised.value.name == "q"
    assert raised.value.allowed == ("b", "r")
    assert "unknown name 'q' (allowed names: b, r)" in str(raised.value)
    with pytest.raises(UnknownNameError, match="none are defined here"):
        parse_expression("r", [])


def test_limits_on_length_and_depth() -> None:
    long_text = "1+" * (MAX_EXPRESSION_LENGTH // 2) + "1"
    with pytest.raises(ExpressionError, match="characters long"):
        parse_expression(long_text, [])
    deep = "-" * (MAX_EXPRESSION_DEPTH + 1) + "1"
    with pytest.raises(ExpressionError, match="nests deeper than"):
        parse_expression(deep, [])
    parse_expression("-" * (MAX_EXPRESSION_DEPTH - 2) + "1", [])
    with pytest.raises(ExpressionError):
        parse_expression("(" * 300 + "1" + ")" * 300, [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2 ** 10000", "overflow"),
        ("10 ** 400", "overflow"),
        ("exp(1000)", "overflow"),
        ("1 / 0", "divide by zero"),
        ("log(0)", "divide by zero"),
        ("log(-1)", "invalid value"),
        ("sqrt(-1)", "invalid value"),
        ("(-8) ** (1 / 3)", "invalid value"),
        ("5 % 0", "invalid value"),
    ],
)
def test_arithmetic_errors_are_expression_errors(text: str, message: str) -> None:
    expr = parse_expression(text, [])
    with pytest.raises(ExpressionError, match=message):
        evaluate(expr, {})


def test_evaluate_needs_every_variable_and_compatible_shapes() -> None:
    expr = parse_expression("r + s", ["r", "s"])
    with pytest.raises(UnknownNameError, match="unknown name 's'"):
        evaluate(expr, {"r": 1.0})
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate(expr, {"r": np.zeros(2), "s": np.zeros(3)})


def test_errors_are_value_errors() -> None:
    assert issubclass(ExpressionError, ValueError)
    assert issubclass(UnknownNameError, ExpressionError)
