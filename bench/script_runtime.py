"""Helpers every generated reference script carries: per-neuron draws and the result line.

The NEST and Brian2 scripts written by :mod:`bench.nest_script` and :mod:`bench.brian2_script`
embed this module's source verbatim, so they run in the reference environment without brainsim.
It needs only the standard library and NumPy. Per-neuron values (parameters and initial state
that are distributions or expressions in the circuit) are drawn here with NumPy's generator;
they follow the same distributions as brainsim's counter-based draws, not the same numbers.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["RESULT_MARKER", "draw", "emit_result"]

RESULT_MARKER = "BENCH_RESULT "
"""Prefix of the one stdout line that carries a script's JSON result."""

_MAX_REDRAW_ROUNDS = 10_000


def draw(
    rng: np.random.Generator, n: int, spec: dict[str, dict[str, Any]]
) -> npt.NDArray[np.float64]:
    """``n`` independent draws of one distribution written as in a circuit document.

    ``spec`` is ``{"uniform": {low, high}}``, ``{"normal": {mean, std, low?, high?, bound?}}``
    or ``{"lognormal": {mu, sigma, low?, high?, bound?}}`` (``exp(N(mu, sigma))``). Bounds work
    as in brainsim: ``bound="redraw"`` (default) draws again until every value is inside
    ``[low, high]``, ``bound="clip"`` moves values to the nearest bound.
    """
    (kind, args), *rest = spec.items()
    if rest:
        raise ValueError(f"one distribution expected, got {sorted(spec)}")
    if kind == "uniform":
        return rng.uniform(args["low"], args["high"], n)
    if kind not in ("normal", "lognormal"):
        raise ValueError(f"unknown distribution {kind!r}; valid: uniform, normal, lognormal")

    def sample(size: int) -> npt.NDArray[np.float64]:
        if kind == "normal":
            return rng.normal(args["mean"], args["std"], size)
        return np.exp(rng.normal(args["mu"], args["sigma"], size))

    low = -np.inf if args.get("low") is None else float(args["low"])
    high = np.inf if args.get("high") is None else float(args["high"])
    values = sample(n)
    if args.get("bound", "redraw") == "clip":
        return np.clip(values, low, high)
    for _ in range(_MAX_REDRAW_ROUNDS):
        outside = (values < low) | (values > high)
        if not outside.any():
            return values
        values[outside] = sample(int(outside.sum()))
    raise RuntimeError(f"{kind} draws stay outside [{low}, {high}]")


def emit_result(result: dict[str, Any]) -> None:
    """Print ``result`` as one JSON line after :data:`RESULT_MARKER` (the harness reads it)."""
    sys.stdout.write(RESULT_MARKER + json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
