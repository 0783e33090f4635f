"""Synapse storage: place a rank's incoming synapses (drawn target by target) in the CSR by
source that delivery walks.

Construction draws synapses target by target (post-side); delivery needs them source by source.
The transposition is a stable counting sort in two passes, so that no edge list, permutation or
per-synapse float64 value of a whole projection is ever held: :func:`count_sources` counts each
source's synapses block by block, then :func:`scatter_by_source` writes each block's synapses
straight to their final positions. Each source's synapses end up in ascending target order,
which fixes the summation order of delivery.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from brainsim.kernels.delivery import (
    DELAY_NARROW_BYTE,
    DELAY_NARROW_SEPARATE,
    DELAY_PACKED,
    DELAY_SEPARATE,
    PACK_MAX_DELAY,
    PACK_SHIFT,
)

__all__ = [
    "count_sources",
    "delay_steps",
    "scatter_by_source",
    "scatter_by_source_ref",
]

Int64Array = npt.NDArray[np.int64]


@numba.njit(cache=True, nogil=True)
def count_sources(sources: Int64Array, counts: Int64Array) -> None:
    """``counts[s] += 1`` for every ``s`` in ``sources`` (``counts`` may be a view, e.g. the
    tail of a CSR ``indptr`` that a cumulative sum then completes)."""
    for j in range(sources.shape[0]):
        counts[sources[j]] += 1


@numba.njit(cache=True, nogil=True)
def delay_steps(delays_ms: npt.NDArray[np.float64], dt_ms: float) -> Int64Array:
    """``max(1, round(delays_ms / dt_ms))`` as int64 (ties to even, as ``numpy.rint``)."""
    out = np.empty(delays_ms.shape[0], dtype=np.int64)
    for j in range(delays_ms.shape[0]):
        steps = np.int64(np.rint(delays_ms[j] / dt_ms))
        out[j] = steps if steps > 1 else 1
    return out


@numba.njit(cache=True, nogil=True)
def scatter_by_source(
    indptr: Int64Array,
    sources: Int64Array,
    first_target: int,
    cursor: Int64Array,
    weights: npt.NDArray[np.float64],
    steps: Int64Array,
    mode: int,
    out_targets: npt.NDArray[np.uint32] | npt.NDArray[np.uint16],
    out_weights: npt.NDArray[np.float32],
    out_delays: npt.NDArray[np.uint16] | npt.NDArray[np.uint8],
) -> tuple[int, int]:
    """Write a block of synapses, a CSR by target whose row ``t`` is local target
    ``first_target + t``, to their places in the CSR by source.

    ``cursor[s]`` is the next free position of source ``s`` (advanced here). ``weights`` and
    ``steps`` are per synapse of the block, or empty when constant (nothing is written for
    them). With ``mode`` :data:`~brainsim.kernels.delivery.DELAY_PACKED` the delay goes into the
    target's top bits, with ``DELAY_SEPARATE``, ``DELAY_NARROW_SEPARATE`` (``uint16``) or
    ``DELAY_NARROW_BYTE`` (``uint8``) into ``out_delays``; otherwise it is not stored. The
    ``DELAY_NARROW*`` modes write ``uint16`` targets; an empty ``out_targets`` writes none
    (``DELAY_DENSE``).
    Returns the smallest and largest delay in steps (``(1 << 62, 0)`` without delays); in
    ``DELAY_PACKED`` or ``DELAY_NARROW_BYTE`` mode a delay above
    :data:`~brainsim.kernels.delivery.PACK_MAX_DELAY` stops the block at once with that delay as
    the largest, and the caller starts over with ``uint16`` delays.
    """
    d_min, d_max = 1 << 62, 0
    has_w, has_d, has_t = weights.shape[0] > 0, steps.shape[0] > 0, out_targets.shape[0] > 0
    shift = np.uint32(PACK_SHIFT)
    for t in range(indptr.shape[0] - 1):
        target = np.uint32(first_target + t)
        for j in range(indptr[t], indptr[t + 1]):
            s = sources[j]
            pos = cursor[s]
            cursor[s] = pos + 1
            packed = target
            if has_d:
                d = steps[j]
                d_min, d_max = min(d_min, int(d)), max(d_max, int(d))
                if mode == DELAY_PACKED or mode == DELAY_NARROW_BYTE:  # noqa: PLR1714, SIM109
                    if d > PACK_MAX_DELAY:
                        return d_min, d_max
                    if mode == DELAY_PACKED:
                        packed = target | (np.uint32(d) << shift)
                    else:
                        out_delays[pos] = d
                elif mode == DELAY_SEPARATE or mode == DELAY_NARROW_SEPARATE:  # noqa: PLR1714, SIM109
                    out_delays[pos] = np.uint16(d)
            if has_t:
                out_targets[pos] = packed
            if has_w:
                out_weights[pos] = np.float32(weights[j])
    return d_min, d_max


def scatter_by_source_ref(
    indptr: Int64Array,
    sources: Int64Array,
    n_sources: int,
    weights: npt.NDArray[np.float64],
    steps: Int64Array,
) -> tuple[Int64Array, npt.NDArray[np.uint32], npt.NDArray[np.float32], Int64Array]:
    """numpy reference for one whole projection (a stable argsort by source): returns
    ``(src_indptr, local targets, float32 weights, delay steps)`` in CSR-by-source order."""
    perm = np.argsort(sources, kind="stable")
    src_indptr = np.zeros(n_sources + 1, dtype=np.int64)
    np.cumsum(np.bincount(sources, minlength=n_sources), out=src_indptr[1:])
    local_target = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
    return (
        src_indptr,
        local_target[perm].astype(np.uint32),
        weights.astype(np.float32)[perm] if weights.shape[0] else weights.astype(np.float32),
        steps[perm] if steps.shape[0] else steps,
    )
