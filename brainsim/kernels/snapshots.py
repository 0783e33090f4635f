"""One projection's synapses in the recording's order, a column range at a time.

The store is a CSR by source whose rows are in ascending target order (:mod:`.delivery`); a
weight recording orders the synapses by target, then source, then creation (RECORDING.md). That
order is the store's transpose, which these kernels read a range of columns at a time without
building it: with ``tptr``, the cumulative synapse count per local target (``tptr[t]`` is the
first column of target ``t``, computed once by :func:`count_by_target`), the columns
``lo .. hi - 1`` belong to the targets ``t_lo .. t_hi - 1`` that ``tptr`` brackets, and each
source row holds its synapses onto those targets in one contiguous run, found by bisection. A
range of ``n`` columns therefore costs ``O(sources * log(row length) + n)`` and ``n`` slots of
output, and a snapshot of every synapse, taken a chunk at a time, never needs a per-synapse
index (which would cost more memory than the plastic synapses themselves).

Within a target the sources come in ascending order because the rows are visited in order, and
a source's synapses onto one target (multapses) keep their order in the row, which is their
creation order.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from brainsim.kernels.delivery import DELAY_DENSE, DELAY_PACKED, PACK_MAX_TARGET

__all__ = ["count_by_target", "gather_by_target"]


@numba.njit(cache=True, nogil=True, inline="always")
def _target(stored: npt.NDArray[np.integer], mode: int, row_start: int, j: int) -> int:
    """Local target of synapse ``j`` (relative to the projection) in a row from ``row_start``."""
    if mode == DELAY_DENSE:
        return j - row_start
    if mode == DELAY_PACKED:
        return int(stored[j]) & PACK_MAX_TARGET
    return int(stored[j])


@numba.njit(cache=True, nogil=True)
def count_by_target(
    indptr: npt.NDArray[np.int64], stored: npt.NDArray[np.integer], mode: int, n_targets: int
) -> npt.NDArray[np.int64]:
    """``tptr``: ``tptr[t]`` synapses of the projection go to local targets below ``t``
    (``n_targets + 1`` entries). ``indptr`` and ``stored`` are the projection's own (its
    rows' offsets from 0 and its stored targets from its first synapse)."""
    tptr = np.zeros(n_targets + 1, dtype=np.int64)
    for s in range(indptr.shape[0] - 1):
        start = indptr[s]
        for j in range(start, indptr[s + 1]):
            tptr[_target(stored, mode, start, j) + 1] += 1
    for t in range(n_targets):
        tptr[t + 1] += tptr[t]
    return tptr


@numba.njit(cache=True, nogil=True)
def gather_by_target(
    indptr: npt.NDArray[np.int64],
    stored: npt.NDArray[np.integer],
    mode: int,
    tptr: npt.NDArray[np.int64],
    lo: int,
    hi: int,
    weights: npt.NDArray[np.float32],
    out_weights: npt.NDArray[np.float32],
    out_sources: npt.NDArray[np.int32],
    into_store: bool = False,
) -> None:
    """Columns ``lo .. hi - 1`` of the recording's order: their weights into ``out_weights``
    and their sources (row numbers) into ``out_sources``, each of ``hi - lo`` slots or empty
    when not wanted. ``weights`` is the projection's own slice of the store. ``into_store``
    reverses the weights' way: ``out_weights`` (in the recording's order) are written into the
    store (a checkpoint's weights restored)."""
    t_lo = np.searchsorted(tptr, lo, side="right") - 1
    t_hi = np.searchsorted(tptr, hi, side="left")
    cursor = tptr[t_lo:t_hi].copy()
    want_weights, want_sources = out_weights.shape[0] > 0, out_sources.shape[0] > 0
    for s in range(indptr.shape[0] - 1):
        start, end = indptr[s], indptr[s + 1]
        a, b = start, end  # first synapse of the row with a target >= t_lo
        while a < b:
            mid = (a + b) >> 1
            if _target(stored, mode, start, mid) < t_lo:
                a = mid + 1
            else:
                b = mid
        for j in range(a, end):
            t = _target(stored, mode, start, j)
            if t >= t_hi:
                break
            slot = cursor[t - t_lo]
            cursor[t - t_lo] = slot + 1
            if lo <= slot < hi:
                if want_weights and into_store:
                    weights[j] = out_weights[slot - lo]
                elif want_weights:
                    out_weights[slot - lo] = weights[j]
                if want_sources:
                    out_sources[slot - lo] = s
