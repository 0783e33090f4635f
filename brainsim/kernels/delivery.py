"""Spike delivery: add the weights of arriving spikes into the rank's ring buffers.

A projection is stored post-side as a CSR indexed by the *source's population-local index*:
``indptr[i]:indptr[i+1]`` are the synapses of source ``i`` on this rank. For each synapse,
``targets`` holds the target's index within its population's local block and, when delays vary,
the delay in the top 8 bits (``target | delay_steps << 24``), so a synapse costs 4 bytes plus 4
for a float32 weight when weights vary (a constant weight or delay is stored once). Delays above
255 steps use a separate ``uint16`` array instead.

All local neurons of a rank share one pair of ring buffers, ``(n_slots, n_local)``; a
population's neurons are the columns ``column_offset ..``. Projections onto targets that keep
excitatory and inhibitory input apart (exponential synapses) route each weight by sign
(``split``); all others add every weight to ``buf_exc``.

Exchanged spikes arrive as sorted int64 *keys* ``step_in_interval * n_gids + gid``; delivering
them in key order, each source's projections in document order and each projection's synapses
in stored order, makes every buffer cell's sum independent of the decomposition (ARCHITECTURE.md,
decision 3). A spike emitted in step ``s`` with delay ``d`` is added to row ``(s + d) % n_slots``
and is consumed by the update of step ``s + d``.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt
from numba.typed import List

__all__ = [
    "DELAY_CONSTANT",
    "DELAY_PACKED",
    "DELAY_SEPARATE",
    "META_COLUMNS",
    "PACK_MAX_DELAY",
    "PACK_MAX_TARGET",
    "array_list",
    "deliver_all",
    "deliver_all_ref",
    "encode_spikes",
]

DELAY_CONSTANT = 0
DELAY_PACKED = 1
DELAY_SEPARATE = 2
PACK_SHIFT = 24
PACK_MAX_TARGET = (1 << PACK_SHIFT) - 1
PACK_MAX_DELAY = 255

META_COLUMNS = ("source_gid_offset", "n_sources", "delay_mode", "delay_steps", "column_offset",
                "split")  # fmt: skip
"""Columns of the per-projection ``meta`` table (int64)."""

_SRC, _NSRC, _MODE, _DELAY, _COL, _SPLIT = range(6)


@numba.njit(cache=True, nogil=True)
def deliver_all(
    keys: npt.NDArray[np.int64],
    first_step: int,
    n_gids: int,
    pop_gid_bounds: npt.NDArray[np.int64],
    by_source_ptr: npt.NDArray[np.int64],
    by_source: npt.NDArray[np.int64],
    meta: npt.NDArray[np.int64],
    const_weight: npt.NDArray[np.float64],
    indptrs: List[npt.NDArray[np.int64]],
    targets: List[npt.NDArray[np.uint32]],
    weights: List[npt.NDArray[np.float32]],
    delays: List[npt.NDArray[np.uint16]],
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """Deliver one interval's spikes through every projection.

    ``pop_gid_bounds`` are the populations' first gids plus the total; the projections whose
    source is population ``p`` are ``by_source[by_source_ptr[p]:by_source_ptr[p + 1]]``
    (ascending = document order). ``meta[q]`` holds projection ``q``'s :data:`META_COLUMNS`;
    ``weights[q]`` is empty when its weight is ``const_weight[q]`` for every synapse.
    """
    n_slots = buf_exc.shape[0]
    n_pops = pop_gid_bounds.shape[0] - 1
    mask = np.uint32(PACK_MAX_TARGET)
    shift = np.uint32(PACK_SHIFT)
    for k in range(keys.shape[0]):
        key = keys[k]
        step_in = key // n_gids
        gid = key - step_in * n_gids
        step = first_step + step_in
        pop = 0
        while pop < n_pops - 1 and gid >= pop_gid_bounds[pop + 1]:
            pop += 1
        for qi in range(by_source_ptr[pop], by_source_ptr[pop + 1]):
            q = by_source[qi]
            src = gid - meta[q, _SRC]
            indptr = indptrs[q]
            lo, hi = indptr[src], indptr[src + 1]
            if lo == hi:
                continue
            tgt = targets[q]
            wts = weights[q]
            col = meta[q, _COL]
            split = meta[q, _SPLIT] != 0
            mode = meta[q, _MODE]
            const_w = wts.shape[0] == 0
            w0 = const_weight[q]
            if mode == DELAY_CONSTANT:
                row = (step + meta[q, _DELAY]) % n_slots
                if const_w:
                    out = buf_inh[row] if split and w0 < 0.0 else buf_exc[row]
                    for j in range(lo, hi):
                        out[col + tgt[j]] += w0
                elif split:
                    exc, inh = buf_exc[row], buf_inh[row]
                    for j in range(lo, hi):
                        w = np.float64(wts[j])
                        if w >= 0.0:
                            exc[col + tgt[j]] += w
                        else:
                            inh[col + tgt[j]] += w
                else:
                    exc = buf_exc[row]
                    for j in range(lo, hi):
                        exc[col + tgt[j]] += np.float64(wts[j])
            else:
                dly = delays[q]
                for j in range(lo, hi):
                    packed = tgt[j]
                    if mode == DELAY_PACKED:
                        row = (step + np.int64(packed >> shift)) % n_slots
                        t = col + np.int64(packed & mask)
                    else:
                        row = (step + np.int64(dly[j])) % n_slots
                        t = col + np.int64(packed)
                    w = w0 if const_w else np.float64(wts[j])
                    if split and w < 0.0:
                        buf_inh[row, t] += w
                    else:
                        buf_exc[row, t] += w


def deliver_all_ref(
    keys: npt.NDArray[np.int64],
    first_step: int,
    n_gids: int,
    pop_gid_bounds: npt.NDArray[np.int64],
    by_source_ptr: npt.NDArray[np.int64],
    by_source: npt.NDArray[np.int64],
    meta: npt.NDArray[np.int64],
    const_weight: npt.NDArray[np.float64],
    indptrs: list[npt.NDArray[np.int64]],
    targets: list[npt.NDArray[np.uint32]],
    weights: list[npt.NDArray[np.float32]],
    delays: list[npt.NDArray[np.uint16]],
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """Plain-Python reference of :func:`deliver_all` (same operations, same order)."""
    n_slots = buf_exc.shape[0]
    for key in keys.tolist():
        step_in, gid = divmod(int(key), n_gids)
        pop = int(np.searchsorted(pop_gid_bounds, gid, side="right")) - 1
        for qi in range(int(by_source_ptr[pop]), int(by_source_ptr[pop + 1])):
            q = int(by_source[qi])
            src_off, _, mode, delay, col, split = (int(x) for x in meta[q])
            src = gid - src_off
            for j in range(int(indptrs[q][src]), int(indptrs[q][src + 1])):
                packed = int(targets[q][j])
                if mode == DELAY_PACKED:
                    t, d = packed & PACK_MAX_TARGET, packed >> PACK_SHIFT
                elif mode == DELAY_SEPARATE:
                    t, d = packed, int(delays[q][j])
                else:
                    t, d = packed, delay
                w = float(const_weight[q]) if weights[q].shape[0] == 0 else float(weights[q][j])
                row = (first_step + step_in + d) % n_slots
                if split and w < 0.0:
                    buf_inh[row, col + t] += w
                else:
                    buf_exc[row, col + t] += w


@numba.njit(cache=True, nogil=True)
def encode_spikes(
    keys: npt.NDArray[np.int64],
    n_keys: int,
    spikes: npt.NDArray[np.int64],
    n_spikes: int,
    base: int,
) -> int:
    """Append ``base + spikes[:n_spikes]`` to ``keys[n_keys:]``; return the new key count.

    ``base = step_in_interval * n_gids + first local gid`` turns local spike indices into
    exchange keys without allocating.
    """
    for i in range(n_spikes):
        keys[n_keys + i] = base + spikes[i]
    return n_keys + n_spikes


def array_list(arrays: list[npt.NDArray[np.generic]], dtype: type) -> List[npt.NDArray[np.generic]]:
    """A numba typed list of 1-D contiguous arrays of ``dtype`` (for :func:`deliver_all`)."""
    out: List[npt.NDArray[np.generic]] = List.empty_list(numba.from_dtype(np.dtype(dtype))[::1])
    for a in arrays:
        out.append(np.ascontiguousarray(a, dtype=dtype))
    return out
