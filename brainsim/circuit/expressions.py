"""Safe arithmetic expressions: parse user text into a whitelisted syntax tree and evaluate it.

One small language serves two purposes: ``${...}`` parameter references anywhere in a circuit
document (``${round(20683 * scale)}``) and per-neuron derived values (``{expr: "-65 + 15*r**2"}``,
where ``r`` is a per-neuron random variable). User text is never given to ``eval``, ``exec`` or
``compile``: it is parsed with :func:`ast.parse` and only these nodes are accepted:

- numeric literals (``3``, ``0.5``, ``1e-3``; not booleans or complex numbers),
- names from the caller's list (parameters, or the population's random variables),
- binary ``+ - * / ** %`` and unary ``- +``,
- calls of the functions in :data:`FUNCTIONS` with positional arguments only.

Everything is computed in float64 (so ``2**10000`` overflows instead of building a huge
integer) with NumPy, element-wise when a variable is an array. Overflow, division by zero and
invalid operations (``log(-1)``, ``sqrt(-1)``) raise :class:`ExpressionError`; underflow to 0 is
allowed. ``round`` rounds half to even, like Python and NumPy; ``min``/``max`` are element-wise.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Collection, Mapping

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import Expr

__all__ = [
    "FUNCTIONS",
    "MAX_EXPRESSION_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "ExpressionError",
    "UnknownNameError",
    "evaluate",
    "parse_expression",
]

MAX_EXPRESSION_LENGTH = 1000
"""Longest accepted expression text, in characters."""

MAX_EXPRESSION_DEPTH = 32
"""Deepest accepted nesting of the syntax tree."""

Number = np.float64 | npt.NDArray[np.float64]


def _reduce(ufunc: Callable[[Number, Number], Number]) -> Callable[..., Number]:
    def apply(*args: Number) -> Number:
        return functools.reduce(ufunc, args)

    return apply


FUNCTIONS: Mapping[str, tuple[Callable[..., Number], int, int | None]] = {
    "exp": (np.exp, 1, 1),
    "log": (np.log, 1, 1),
    "sqrt": (np.sqrt, 1, 1),
    "abs": (np.abs, 1, 1),
    "floor": (np.floor, 1, 1),
    "ceil": (np.ceil, 1, 1),
    "round": (np.round, 1, 1),
    "min": (_reduce(np.minimum), 2, None),
    "max": (_reduce(np.maximum), 2, None),
}
"""Callable functions: name -> (implementation, least and most arguments; ``None`` = any)."""

_BINARY: Mapping[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
    ast.Mod: np.mod,
}

_UNARY: Mapping[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.USub: np.negative,
    ast.UAdd: np.positive,
}


_NOT_ALLOWED: Mapping[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "lambda",
    ast.Compare: "comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "if-else",
    ast.NamedExpr: "assignment",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "a string",
}


class ExpressionError(ValueError):
    """An expression is not valid text of the language, or its value cannot be computed."""


class UnknownNameError(ExpressionError):
    """An expression uses a name that is neither an allowed variable nor a function."""

    def __init__(self, name: str, allowed: Collection[str]) -> None:
        self.name = name
        self.allowed = tuple(sorted(allowed))
        choices = ", ".join(self.allowed) if self.allowed else "none are defined here"
        super().__init__(f"unknown name {name!r} (allowed names: {choices})")


def parse_expression(text: str, allowed_names: Collection[str]) -> Expr:
    """Check ``text`` against the whitelist and return it as an :class:`Expr`.

    ``Expr.names`` lists the variables it uses, in order of first use. Raises
    :class:`UnknownNameError` for a name outside ``allowed_names`` and :class:`ExpressionError`
    (a ``ValueError``) for anything else that is not accepted, with a message saying why.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, got {type(text).__name__}")
    _, names = _compile(text)
    for name in names:
        if name not in allowed_names:
            raise UnknownNameError(name, allowed_names)
    return Expr(source=text, names=names)


def evaluate(
    expr: Expr, variables: Mapping[str, npt.NDArray[np.float64] | float]
) -> npt.NDArray[np.float64] | float:
    """Value of ``expr`` with ``variables`` bound; an array when any variable used is an array.

    Arrays must have broadcast-compatible shapes. Raises :class:`ExpressionError` on overflow,
    division by zero, invalid operations and missing variables.
    """
    tree, names = _compile(expr.source)
    missing = [name for name in names if name not in variables]
    if missing:
        raise UnknownNameError(missing[0], variables.keys())
    bound = {name: np.asarray(variables[name], dtype=np.float64) for name in names}
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            result = _evaluate(tree, bound)
    except (FloatingPointError, ValueError) as error:
        raise ExpressionError(f"cannot evaluate {_quote(expr.source)}: {error}") from None
    if np.ndim(result) == 0:
        return float(result)
    return np.asarray(result, dtype=np.float64)


def _quote(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")


@functools.lru_cache(maxsize=1024)
def _compile(text: str) -> tuple[ast.expr, tuple[str, ...]]:
    """Parse and whitelist-check ``text``; return the tree and the variable names it uses."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long; at most {MAX_EXPRESSION_LENGTH} allowed"
        )
    if not text.strip():
        raise ExpressionError("expression is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"invalid expression {_quote(text)}: {error.msg}") from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise ExpressionError(f"invalid expression {_quote(text)}: {error}") from None
    names: list[str] = []
    _check(tree.body, 1, names)
    return tree.body, tuple(names)


def _check(node: ast.AST, depth: int, names: list[str]) -> None:
    if depth > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(f"expression nests deeper than {MAX_EXPRESSION_DEPTH} levels")
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExpressionError(f"only numbers are allowed as literals, got {value!r}")
        try:
            float(value)
        except OverflowError:
            raise ExpressionError("number literal too large") from None
    elif isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise ExpressionError(f"{node.id!r} is a function; call it, e.g. {node.id}(x)")
        if node.id not in names:
            names.append(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left, depth + 1, names)
        _check(node.right, depth + 1, names)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand, depth + 1, names)
    elif isinstance(node, ast.Call):
        _check_call(node, depth, names)
    else:
        what = _NOT_ALLOWED.get(type(node), type(node).__name__)
        raise ExpressionError(
            f"{what} is not allowed (only numbers, names, + - * / ** % and calls of "
            f"{', '.join(FUNCTIONS)})"
        )


def _check_call(node: ast.Call, depth: int, names: list[str]) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        called = (
            repr(node.func.id)
            if isinstance(node.func, ast.Name)
            else _NOT_ALLOWED.get(type(node.func), type(node.func).__name__)
        )
        raise ExpressionError(f"cannot call {called}; the functions are: {', '.join(FUNCTIONS)}")
    name = node.func.id
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ExpressionError(f"{name}() takes positional arguments only")
    _, least, most = FUNCTIONS[name]
    count = len(node.args)
    if count < least or (most is not None and count > most):
        wanted = f"{least}" if least == most else f"at least {least}"
        raise ExpressionError(f"{name}() takes {wanted} argument(s), got {count}")
    for arg in node.args:
        _check(arg, depth + 1, names)


def _evaluate(node: ast.expr, variables: Mapping[str, Number]) -> Number:
    """Walk a tree that :func:`_check` accepted."""
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)
        return np.float64(node.value)
    if isinstance(node, ast.Name):
        return variables[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](
            _evaluate(node.left, variables), _evaluate(node.right, variables)
        )
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, variables))
    assert isinstance(node, ast.Call)
    assert isinstance(node.func, ast.Name)
    function, _, _ = FUNCTIONS[node.func.id]
    return function(*(_evaluate(arg, variables) for arg in node.args))
