"""Per-neuron and per-synapse values drawn from the circuit format's distributions, keyed by gid.

Every value is a pure function of ``(seed, stream, key, index)`` through :mod:`.rng`, so the values
a rank builds never depend on the decomposition. The engine keys

* per-neuron parameters by ``key = gid`` and ``index = 0``;
* per-synapse values by ``key = target gid`` and ``index = the synapse's position in that target's
  incoming list of the projection`` (the order the connection sampler produced);

and takes ``stream`` from :func:`.rng.stream_id` of the field path (``"populations.E.v_init_mV"``,
``"projections.EE.weight"``), so two fields never share draws.

Distributions (``kind`` codes, with the meaning of ``p0``, ``p1``):

* ``CONSTANT`` (0): ``x = p0``.
* ``UNIFORM`` (1): ``x = p0 + (p1 - p0) u`` with ``u`` from :func:`.rng.uniform01`, on ``[p0, p1)``.
* ``NORMAL`` (2): ``x = p0 + p1 z`` with ``z`` from :func:`.rng.normal` (mean ``p0``, std ``p1``).
* ``LOGNORMAL`` (3): ``x = exp(p0 + p1 z)`` (``mu = p0``, ``sigma = p1`` of the underlying normal).

Bounds ``[low, high]`` (inclusive; pass ``-inf``/``inf`` when unbounded) are applied in one of two
ways. ``bound_redraw=False`` clips, ``x = min(max(x, low), high)``, which piles the outside mass on
the bounds. ``bound_redraw=True`` redraws (NEST's ``redraw``): attempt ``t = 0, 1, 2, ...`` uses
sub counter ``t`` of the same key, and the first value inside the bounds is kept, which truncates
the distribution. After :data:`MAX_REDRAW_ATTEMPTS` attempts outside the bounds the value is NaN;
the caller checks for NaN and reports the field (the bounds then hold almost no probability mass).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from .rng import IntLike, normal, normal_ref, uniform01, uniform01_ref

__all__ = [
    "CONSTANT",
    "LOGNORMAL",
    "MAX_REDRAW_ATTEMPTS",
    "NORMAL",
    "UNIFORM",
    "draw_value",
    "sample_rows",
    "sample_values",
    "sample_values_ref",
]

CONSTANT = 0
"""Distribution code: the constant ``p0``."""
UNIFORM = 1
"""Distribution code: uniform on ``[p0, p1)``."""
NORMAL = 2
"""Distribution code: normal with mean ``p0`` and standard deviation ``p1``."""
LOGNORMAL = 3
"""Distribution code: ``exp(N(p0, p1**2))``."""
MAX_REDRAW_ATTEMPTS = 1000
"""Attempts before a bounded redraw gives up and yields NaN."""


@numba.njit(cache=True)
def draw_value(
    kind: int,
    p0: float,
    p1: float,
    seed: IntLike,
    stream: IntLike,
    key: IntLike,
    index: IntLike,
    sub: IntLike,
) -> float:
    """One unbounded draw of distribution ``kind`` keyed by ``(seed, stream, key, index, sub)``.

    An unknown ``kind`` yields NaN.
    """
    if kind == CONSTANT:
        return p0
    if kind == UNIFORM:
        return p0 + (p1 - p0) * uniform01(seed, stream, key, index, sub)
    if kind == NORMAL:
        return p0 + p1 * normal(seed, stream, key, index, sub)
    if kind == LOGNORMAL:
        return math.exp(p0 + p1 * normal(seed, stream, key, index, sub))
    return math.nan


@numba.njit(cache=True)
def sample_values(
    kind: int,
    p0: float,
    p1: float,
    low: float,
    high: float,
    bound_redraw: bool,
    seed: IntLike,
    stream: IntLike,
    keys: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    out: npt.NDArray[np.float64],
) -> None:
    """Fill ``out[i]`` with a draw keyed by ``(keys[i], indices[i])``, bounded as described."""
    for i in range(keys.shape[0]):
        out[i] = _bounded(kind, p0, p1, low, high, bound_redraw, seed, stream, keys[i], indices[i])


@numba.njit(cache=True)
def _bounded(
    kind: int,
    p0: float,
    p1: float,
    low: float,
    high: float,
    bound_redraw: bool,
    seed: IntLike,
    stream: IntLike,
    key: IntLike,
    index: IntLike,
) -> float:
    """One draw keyed by ``(key, index)``, redrawn or clipped into ``[low, high]``."""
    x = draw_value(kind, p0, p1, seed, stream, key, index, np.int64(0))  # not a literal
    if not bound_redraw:
        return min(max(x, low), high)
    attempt = np.int64(1)
    while not (low <= x <= high):
        if attempt == MAX_REDRAW_ATTEMPTS or kind == CONSTANT:
            return math.nan
        x = draw_value(kind, p0, p1, seed, stream, key, index, attempt)
        attempt += 1
    return x


@numba.njit(cache=True)
def sample_rows(
    kind: int,
    p0: float,
    p1: float,
    low: float,
    high: float,
    bound_redraw: bool,
    seed: IntLike,
    stream: IntLike,
    indptr: npt.NDArray[np.int64],
    first_key: int,
    out: npt.NDArray[np.float64],
) -> None:
    """:func:`sample_values` for the entries of a CSR: entry ``j`` of row ``t`` is keyed by
    ``(first_key + t, j - indptr[t])`` (per-synapse draws keyed by target gid and the synapse's
    position in its target's list), without materializing the keys."""
    for t in range(indptr.shape[0] - 1):
        for j in range(indptr[t], indptr[t + 1]):
            out[j] = _bounded(kind, p0, p1, low, high, bound_redraw, seed, stream,
                              first_key + t, j - indptr[t])  # fmt: skip


def _draw_value_ref(
    kind: int, p0: float, p1: float, seed: int, stream: int, key: int, index: int, sub: int
) -> float:
    if kind == CONSTANT:
        return p0
    if kind == UNIFORM:
        return p0 + (p1 - p0) * uniform01_ref(seed, stream, key, index, sub)
    if kind == NORMAL:
        return p0 + p1 * normal_ref(seed, stream, key, index, sub)
    if kind == LOGNORMAL:
        return math.exp(p0 + p1 * normal_ref(seed, stream, key, index, sub))
    return math.nan


def sample_values_ref(
    kind: int,
    p0: float,
    p1: float,
    low: float,
    high: float,
    bound_redraw: bool,
    seed: int,
    stream: int,
    keys: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """Pure-Python reference of :func:`sample_values`; returns the filled array."""
    out = np.empty(keys.shape[0], dtype=np.float64)
    for i, (key, index) in enumerate(zip(keys.tolist(), indices.tolist(), strict=True)):
        x = _draw_value_ref(kind, p0, p1, seed, stream, key, index, 0)
        if bound_redraw:
            attempt = 1
            while not (low <= x <= high):
                if attempt == MAX_REDRAW_ATTEMPTS or kind == CONSTANT:
                    x = math.nan
                    break
                x = _draw_value_ref(kind, p0, p1, seed, stream, key, index, attempt)
                attempt += 1
        else:
            x = min(max(x, low), high)
        out[i] = x
    return out
