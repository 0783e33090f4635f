"""Synapse storage: turn a rank's incoming synapses (CSR by target) into the CSR by source.

Construction draws synapses target by target (post-side); delivery needs them source by source.
:func:`by_source` is a stable counting sort, O(synapses + sources), that keeps each source's
synapses in ascending target order, which fixes the summation order of delivery.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

__all__ = [
    "by_source",
    "by_source_ref",
    "pack_delays",
    "permuted_delay_steps",
    "permuted_weights",
]

Int64Array = npt.NDArray[np.int64]


@numba.njit(cache=True, nogil=True)
def by_source(
    indptr: Int64Array, sources: Int64Array, n_sources: int
) -> tuple[Int64Array, Int64Array, npt.NDArray[np.uint32]]:
    """CSR by source of a CSR by target.

    Returns ``(src_indptr, perm, local_target)``: synapse ``p`` of the result is synapse
    ``perm[p]`` of the input and targets local index ``local_target[p]``.
    """
    n_syn = sources.shape[0]
    src_indptr = np.zeros(n_sources + 1, dtype=np.int64)
    for j in range(n_syn):
        src_indptr[sources[j] + 1] += 1
    for i in range(n_sources):
        src_indptr[i + 1] += src_indptr[i]
    cursor = src_indptr[:-1].copy()
    perm = np.empty(n_syn, dtype=np.int64)
    local_target = np.empty(n_syn, dtype=np.uint32)
    for t in range(indptr.shape[0] - 1):
        for j in range(indptr[t], indptr[t + 1]):
            pos = cursor[sources[j]]
            cursor[sources[j]] = pos + 1
            perm[pos] = j
            local_target[pos] = t
    return src_indptr, perm, local_target


def by_source_ref(
    indptr: Int64Array, sources: Int64Array, n_sources: int
) -> tuple[Int64Array, Int64Array, npt.NDArray[np.uint32]]:
    """numpy reference of :func:`by_source` (a stable argsort)."""
    perm = np.argsort(sources, kind="stable").astype(np.int64)
    src_indptr = np.zeros(n_sources + 1, dtype=np.int64)
    np.cumsum(np.bincount(sources, minlength=n_sources), out=src_indptr[1:])
    local_target = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
    return src_indptr, perm, local_target[perm].astype(np.uint32)


@numba.njit(cache=True, nogil=True)
def pack_delays(
    local_target: npt.NDArray[np.uint32], delay_steps: Int64Array, shift: int
) -> npt.NDArray[np.uint32]:
    """``local_target | delay_steps << shift`` as uint32 (caller checks both fit)."""
    out = np.empty(local_target.shape[0], dtype=np.uint32)
    for j in range(local_target.shape[0]):
        out[j] = local_target[j] | (np.uint32(delay_steps[j]) << np.uint32(shift))
    return out


@numba.njit(cache=True, nogil=True)
def permuted_weights(values: npt.NDArray[np.float64], perm: Int64Array) -> npt.NDArray[np.float32]:
    """``values[perm]`` as float32, in one pass."""
    out = np.empty(perm.shape[0], dtype=np.float32)
    for p in range(perm.shape[0]):
        out[p] = values[perm[p]]
    return out


@numba.njit(cache=True, nogil=True)
def permuted_delay_steps(
    delays_ms: npt.NDArray[np.float64], perm: Int64Array, dt_ms: float
) -> Int64Array:
    """``max(1, round(delays_ms[perm] / dt_ms))`` as int64, in one pass (ties to even, as
    ``numpy.rint``)."""
    out = np.empty(perm.shape[0], dtype=np.int64)
    for p in range(perm.shape[0]):
        steps = np.int64(np.rint(delays_ms[perm[p]] / dt_ms))
        out[p] = steps if steps > 1 else 1
    return out
