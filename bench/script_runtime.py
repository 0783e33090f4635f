"""Helpers every generated reference script carries: per-neuron draws and the result line.

The NEST and Brian2 scripts written by :mod:`bench.nest_script` and :mod:`bench.brian2_script`
embed this module's source verbatim, so they run in the reference environment without brainsim.
It needs only the standard library and NumPy. Per-neuron values (parameters and initial state
that are distributions or expressions in the circuit) are drawn here with NumPy's generator;
they follow the same distributions as brainsim's counter-based draws, not the same numbers.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["RESULT_MARKER", "draw", "emit_result", "weight_moments"]

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


def weight_moments(chunks: Iterable[npt.ArrayLike]) -> dict[str, Any]:
    """``count``, ``mean`` and ``sd`` (population standard deviation, ddof 0) of weights given
    a chunk at a time, in float64 (each chunk's mean and sum of squared deviations, combined
    pairwise as Chan, Golub and LeVeque do, so a narrow distribution far from 0 loses no
    digits). ``mean`` and ``sd`` are None without weights.

    Brainsim's store and NEST's connections are read a chunk at a time with it: all the weights
    of a projection of 10^8 synapses at once would take gigabytes (NEST: a connection id and a
    Python float per synapse).
    """
    count, mean, squares = 0, 0.0, 0.0
    for chunk in chunks:
        values = np.asarray(chunk, dtype=np.float64).ravel()
        if values.size == 0:
            continue
        chunk_mean = float(values.mean())
        chunk_squares = float(np.square(values - chunk_mean).sum())
        total = count + values.size
        delta = chunk_mean - mean
        mean += delta * values.size / total
        squares += chunk_squares + delta * delta * count * values.size / total
        count = total
    if count == 0:
        return {"count": 0, "mean": None, "sd": None}
    return {"count": count, "mean": mean, "sd": math.sqrt(squares / count)}
