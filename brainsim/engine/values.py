"""Materialize circuit values (constants, distributions, expressions) for neurons and synapses.

Every random value is keyed by identity (ARCHITECTURE.md, decision 2): a per-neuron draw by
``(seed, stream, gid)``, a per-synapse draw by ``(seed, stream, target gid, position of the
synapse in that target's incoming list)``, where ``stream`` is derived from the value's field
path (``populations.E.params.c_mV``). Which rank computes a draw therefore never changes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from brainsim.circuit import expressions
from brainsim.circuit.spec import Circuit, Distribution, Expr, LogNormal, Normal, Uniform, Value
from brainsim.errors import EngineError
from brainsim.kernels import rng, sample

__all__ = ["draw_distribution", "per_neuron", "per_synapse", "stream_of"]

Float64Array = npt.NDArray[np.float64]


def stream_of(path: str) -> int:
    """The RNG stream of the value at field path ``path``."""
    return int(rng.stream_id(path))


def _sampler_args(dist: Distribution) -> tuple[int, float, float, float, float, bool]:
    """``(kind, p0, p1, low, high, redraw)`` of the sampling kernels for ``dist``."""
    inf = float("inf")
    if isinstance(dist, Uniform):
        return sample.UNIFORM, float(dist.low), float(dist.high), -inf, inf, True
    kind = sample.NORMAL if isinstance(dist, Normal) else sample.LOGNORMAL
    p0, p1 = (dist.mean, dist.std) if isinstance(dist, Normal) else (dist.mu, dist.sigma)
    low = -inf if dist.low is None else float(dist.low)
    high = inf if dist.high is None else float(dist.high)
    return kind, float(p0), float(p1), low, high, dist.bound == "redraw"


def _checked(out: Float64Array, path: str, low: float, high: float) -> Float64Array:
    if np.isnan(out).any():
        raise EngineError(
            f"{path}: could not draw a value inside [{low}, {high}] by redrawing; "
            "widen the bounds or use bound: clip"
        )
    return out


def draw_distribution(
    dist: Distribution,
    *,
    seed: int,
    path: str,
    keys: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
) -> Float64Array:
    """One draw of ``dist`` per ``(keys[i], indices[i])``; raises if a bounded redraw gives up."""
    kind, p0, p1, low, high, redraw = _sampler_args(dist)
    out = np.empty(keys.shape[0], dtype=np.float64)
    # Fixed argument types: one compiled (and cached) specialization serves every call.
    sample.sample_values(
        kind, p0, p1, low, high, redraw, int(seed), stream_of(path),
        np.ascontiguousarray(keys, dtype=np.int64), np.ascontiguousarray(indices, dtype=np.int64),
        out,
    )  # fmt: skip
    return _checked(out, path, low, high)


def draws_per_neuron(circuit: Circuit) -> bool:
    """Whether a population of ``circuit`` draws a parameter, an initial value or a random
    variable from a distribution (:func:`draw_distribution`)."""
    for pop in circuit.populations.values():
        params = (getattr(pop.params, f.name) for f in dataclasses.fields(pop.params))
        values = [*params, *pop.initial.values(), *pop.random_variables.values()]
        if any(isinstance(v, Uniform | Normal | LogNormal) for v in values):
            return True
    return False


def sampling_kernel() -> tuple[Any, tuple[Any, ...]]:
    """The kernel :func:`draw_distribution` calls, with arguments of the types it passes (for
    compiling it ahead, :mod:`brainsim.kernels.compiler`)."""
    i8 = np.zeros(0, dtype=np.int64)
    args = (*_sampler_args(Uniform(0.0, 1.0)), 0, stream_of(""), i8, i8, np.zeros(0))
    return sample.sample_values, args


def per_neuron(
    value: Value,
    *,
    seed: int,
    path: str,
    gids: npt.NDArray[np.int64],
    variables: Mapping[str, Float64Array],
) -> Float64Array:
    """``value`` for each neuron in ``gids`` (float64 array, one entry per gid).

    ``variables`` are the population's per-neuron random variables for the same gids, which
    :class:`~brainsim.circuit.spec.Expr` values may use.
    """
    if isinstance(value, Expr):
        result = expressions.evaluate(value, {name: variables[name] for name in value.names})
        return np.broadcast_to(np.asarray(result, dtype=np.float64), gids.shape).copy()
    if isinstance(value, Uniform | Normal | LogNormal):
        return draw_distribution(
            value, seed=seed, path=path, keys=gids, indices=np.zeros_like(gids)
        )
    return np.full(gids.shape, float(value), dtype=np.float64)


def per_synapse(
    value: Value,
    *,
    seed: int,
    path: str,
    indptr: npt.NDArray[np.int64],
    first_gid: int,
) -> float | Float64Array:
    """``value`` for each synapse of a CSR by target, or a plain float when it is the same for
    all of them.

    Synapse ``j`` of row ``t`` targets gid ``first_gid + t``; its draw is keyed by that gid and
    ``j - indptr[t]``, its position in the target's incoming list of this projection.
    """
    if isinstance(value, Uniform | Normal | LogNormal):
        kind, p0, p1, low, high, redraw = _sampler_args(value)
        out = np.empty(int(indptr[-1]), dtype=np.float64)
        sample.sample_rows(
            kind, p0, p1, low, high, redraw, int(seed), stream_of(path),
            np.ascontiguousarray(indptr, dtype=np.int64), int(first_gid), out,
        )  # fmt: skip
        return _checked(out, path, low, high)
    if isinstance(value, Expr):
        raise EngineError(f"{path}: expressions are not supported for synapse values")
    return float(value)
