"""Spike delivery: add the weights of arriving spikes into the rank's ring buffers.

A projection is stored post-side as a CSR indexed by the *source's population-local index*:
``indptr[i]:indptr[i+1]`` are the synapses of source ``i`` on this rank. For each synapse,
``targets`` holds the target's index within its population's local block and, when delays vary,
the delay in the top 8 bits (``target | delay_steps << 24``), so a synapse costs 4 bytes plus 4
for a float32 weight when weights vary (a constant weight or delay is stored once). Delays above
255 steps use a separate ``uint16`` array instead. A projection onto at most 65,536 local targets
stores its targets as ``uint16``, in an array of their own (``targets16``), and its delays, when
they vary, in a ``uint8`` array (``delays8``; ``uint16`` in ``delays`` above 255 steps): a synapse
with a constant weight and delay then costs 2 bytes, with a weight and delay of its own 7.
An ``all_to_all`` projection with one delay stores no targets at all (:data:`DELAY_DENSE`): each
source's row holds every local target in order, so its delivery is a contiguous vector add.

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

from brainsim.kernels.prefetch import prefetch

__all__ = [
    "DELAY_CONSTANT",
    "DELAY_DENSE",
    "DELAY_NARROW",
    "DELAY_NARROW_BYTE",
    "DELAY_NARROW_SEPARATE",
    "DELAY_PACKED",
    "DELAY_SEPARATE",
    "META_COLUMNS",
    "MODE_SWITCHES",
    "NARROW_MAX_TARGETS",
    "NARROW_MODES",
    "PACK_MAX_DELAY",
    "PACK_MAX_TARGET",
    "PREFETCH_AHEAD",
    "deliver_all",
    "deliver_all_ref",
    "encode_spikes",
    "modes_of",
]

DELAY_CONSTANT = 0
DELAY_PACKED = 1
DELAY_SEPARATE = 2
DELAY_NARROW = 3
"""One delay, like :data:`DELAY_CONSTANT`, with the targets in ``targets16``."""
DELAY_NARROW_BYTE = 4
"""Targets in ``targets16``, each synapse's delay in ``delays8`` (at most 255 steps)."""
DELAY_NARROW_SEPARATE = 5
"""Targets in ``targets16``, each synapse's delay in ``delays``."""
DELAY_DENSE = 6
"""One delay, and every source's row holds every local target in ascending order: no targets are
stored (synapse ``k`` of a row goes to local target ``k``)."""
NARROW_MODES = (DELAY_NARROW, DELAY_NARROW_BYTE, DELAY_NARROW_SEPARATE)
"""The modes whose targets are in ``targets16``."""
NARROW_MAX_TARGETS = 1 << 16
"""Most local targets a projection stored with ``uint16`` targets (the ``DELAY_NARROW*``
modes) may have."""
PACK_SHIFT = 24
PACK_MAX_TARGET = (1 << PACK_SHIFT) - 1
PACK_MAX_DELAY = 255

META_COLUMNS = (
    "source_gid_offset",
    "delay_mode",
    "delay_steps",
    "column_offset",
    "split",
    "indptr_offset",
    "synapse_offset",
    "weight_offset",
    "delay_offset",
)
"""Columns of the per-projection ``meta`` table (int64). The projections' arrays are stored
end to end: projection ``q``'s ``indptr`` starts at ``indptr_offset``, its synapses at
``synapse_offset`` (in ``targets16`` for the ``DELAY_NARROW*`` modes, else in ``targets``), its
delays at ``delay_offset`` (in ``delays8`` for :data:`DELAY_NARROW_BYTE`, else in ``delays``);
``weight_offset`` / ``delay_offset`` are -1 when its weights are all
``const_weight[q]`` / its delays are not stored per synapse."""

_SRC, _MODE, _DELAY, _COL, _SPLIT, _IPTR, _SYN, _WOFF, _DOFF = range(9)

_Index = int | np.uint64
"""An index of the helpers below: signed per row, unsigned per synapse."""


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
    indptrs: npt.NDArray[np.int64],
    targets: npt.NDArray[np.uint32],
    targets16: npt.NDArray[np.uint16],
    weights: npt.NDArray[np.float32],
    delays: npt.NDArray[np.uint16],
    delays8: npt.NDArray[np.uint8],
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
    dense: bool | None = True,
    narrow: bool | None = True,
    constant: bool | None = True,
    narrow_byte: bool | None = True,
    narrow_separate: bool | None = True,
    separate: bool | None = True,
    packed: bool | None = True,
) -> None:
    """Deliver one interval's spikes through every projection.

    ``pop_gid_bounds`` are the populations' first gids plus the total; the projections whose
    source is population ``p`` are ``by_source[by_source_ptr[p]:by_source_ptr[p + 1]]``
    (ascending = document order). ``meta[q]`` holds projection ``q``'s :data:`META_COLUMNS`,
    which locate its part of ``indptrs``, ``targets`` (or ``targets16``), ``weights`` and
    ``delays`` (or ``delays8``). Synapse
    indices in ``indptrs`` are relative to the projection's first synapse. No delay exceeds
    the buffers' ``n_slots`` rows (the engine makes ``n_slots = max_delay``).

    The last seven arguments say which storage modes (:data:`DELAY_DENSE`,
    :data:`DELAY_NARROW`, :data:`DELAY_CONSTANT`, :data:`DELAY_NARROW_BYTE`,
    :data:`DELAY_NARROW_SEPARATE`, :data:`DELAY_SEPARATE`, :data:`DELAY_PACKED`) are compiled in:
    ``None`` leaves a mode's loop out (see :func:`modes_of`); every mode in ``meta`` must be in.
    """
    n_slots = buf_exc.shape[0]
    n_pops = pop_gid_bounds.shape[0] - 1
    n_keys = keys.shape[0]
    for k in range(n_keys):
        if k + 2 * PREFETCH_AHEAD < n_keys:
            ahead = keys[k + 2 * PREFETCH_AHEAD] % n_gids
            _prefetch_row_pointers(ahead, _population(ahead, pop_gid_bounds, n_pops),
                                   by_source_ptr, by_source, meta, indptrs)  # fmt: skip
        if k + PREFETCH_AHEAD < n_keys:
            ahead = keys[k + PREFETCH_AHEAD] % n_gids
            _prefetch_rows(ahead, _population(ahead, pop_gid_bounds, n_pops), by_source_ptr,
                           by_source, meta, indptrs, targets, targets16, weights, delays,
                           delays8)  # fmt: skip
        key = keys[k]
        step_in = key // n_gids
        gid = key - step_in * n_gids
        slot = (first_step + step_in) % n_slots  # the ring-buffer row of a zero delay
        pop = _population(gid, pop_gid_bounds, n_pops)
        for qi in range(by_source_ptr[pop], by_source_ptr[pop + 1]):
            q = by_source[qi]
            src = meta[q, _IPTR] + gid - meta[q, _SRC]
            syn = meta[q, _SYN]
            lo, hi = syn + indptrs[src], syn + indptrs[src + 1]
            if lo == hi:
                continue
            col = meta[q, _COL]
            split = meta[q, _SPLIT] != 0
            mode = meta[q, _MODE]
            const_w = meta[q, _WOFF] < 0
            w_at = meta[q, _WOFF] - syn + lo  # weight of synapse lo + i: weights[w_at + i]
            d_at = meta[q, _DOFF] - syn + lo
            w0 = const_weight[q]
            row = _later_slot(slot, meta[q, _DELAY], n_slots)  # for the one-delay modes
            if dense is not None and mode == DELAY_DENSE:
                _add_dense(hi - lo, col, w0, const_w, split, weights, w_at, buf_exc[row],
                           buf_inh[row])  # fmt: skip
            elif narrow is not None and mode == DELAY_NARROW:
                _add_one_delay(targets16, lo, hi, col, w0, const_w, split, weights, w_at,
                               buf_exc[row], buf_inh[row])  # fmt: skip
            elif constant is not None and mode == DELAY_CONSTANT:
                _add_one_delay(targets, lo, hi, col, w0, const_w, split, weights, w_at,
                               buf_exc[row], buf_inh[row])  # fmt: skip
            elif narrow_byte is not None and mode == DELAY_NARROW_BYTE:
                _add_delays(targets16, delays8, lo, hi, d_at, col, slot, w0, const_w, split,
                            weights, w_at, buf_exc, buf_inh)  # fmt: skip
            elif narrow_separate is not None and mode == DELAY_NARROW_SEPARATE:
                _add_delays(targets16, delays, lo, hi, d_at, col, slot, w0, const_w, split,
                            weights, w_at, buf_exc, buf_inh)  # fmt: skip
            elif separate is not None and mode == DELAY_SEPARATE:
                _add_delays(targets, delays, lo, hi, d_at, col, slot, w0, const_w, split,
                            weights, w_at, buf_exc, buf_inh)  # fmt: skip
            elif packed is not None:
                _add_packed(targets, lo, hi, col, slot, w0, const_w, split, weights, w_at,
                            buf_exc, buf_inh)  # fmt: skip


# Each spike's rows start at a random place in the synapse arrays, so their first cache lines
# are a memory stall per spike and projection, paid on every rank for every spike of the
# network (each rank delivers all of them to its own targets). deliver_all therefore prefetches
# the rows of the spike PREFETCH_AHEAD places ahead, and the row pointers of the one twice as
# far, so that both are in cache when their turn comes; the hardware prefetcher follows a row
# once it is being read. On Brunel's network, replaying a run's spikes with other work between
# intervals (as the step loop has), delivery took 0.33 instead of 0.49 s on each of 2 ranks
# and 0.61 instead of 0.80 s on 1 rank.

PREFETCH_AHEAD = 4
"""Spikes ahead whose synapse rows :func:`deliver_all` prefetches (their row pointers twice as
far ahead)."""


@numba.njit(cache=True, nogil=True, inline="always")
def _population(gid: int, pop_gid_bounds: npt.NDArray[np.int64], n_pops: int) -> int:
    """The index of the population that holds ``gid``."""
    pop = 0
    while pop < n_pops - 1 and gid >= pop_gid_bounds[pop + 1]:
        pop += 1
    return pop


@numba.njit(cache=True, nogil=True, inline="always")
def _prefetch_row_pointers(
    gid: int,
    pop: int,
    by_source_ptr: npt.NDArray[np.int64],
    by_source: npt.NDArray[np.int64],
    meta: npt.NDArray[np.int64],
    indptrs: npt.NDArray[np.int64],
) -> None:
    """Prefetch source ``gid``'s row pointers in every projection of its population."""
    for qi in range(by_source_ptr[pop], by_source_ptr[pop + 1]):
        q = by_source[qi]
        prefetch(indptrs, meta[q, _IPTR] + gid - meta[q, _SRC])


@numba.njit(cache=True, nogil=True, inline="always")
def _prefetch_rows(
    gid: int,
    pop: int,
    by_source_ptr: npt.NDArray[np.int64],
    by_source: npt.NDArray[np.int64],
    meta: npt.NDArray[np.int64],
    indptrs: npt.NDArray[np.int64],
    targets: npt.NDArray[np.uint32],
    targets16: npt.NDArray[np.uint16],
    weights: npt.NDArray[np.float32],
    delays: npt.NDArray[np.uint16],
    delays8: npt.NDArray[np.uint8],
) -> None:
    """Prefetch the first two cache lines of source ``gid``'s targets, and the first line of its
    weights and delays where stored, in every projection of its population."""
    for qi in range(by_source_ptr[pop], by_source_ptr[pop + 1]):
        q = by_source[qi]
        syn = meta[q, _SYN]
        lo = syn + indptrs[meta[q, _IPTR] + gid - meta[q, _SRC]]
        mode = meta[q, _MODE]
        if mode in NARROW_MODES:
            prefetch(targets16, lo)
            prefetch(targets16, lo + 32)
        elif mode != DELAY_DENSE:
            prefetch(targets, lo)
            prefetch(targets, lo + 16)
        if meta[q, _WOFF] >= 0:
            prefetch(weights, meta[q, _WOFF] - syn + lo)
        if meta[q, _DOFF] >= 0:
            if mode == DELAY_NARROW_BYTE:
                prefetch(delays8, meta[q, _DOFF] - syn + lo)
            else:
                prefetch(delays, meta[q, _DOFF] - syn + lo)


# The helpers below index with unsigned integers: numba then adds no negative-index wraparound
# to every load and store, which cost a third of a synapse's delivery time. A delayed row is
# ``slot + delay`` less ``n_slots`` once if past the end (no delay exceeds ``n_slots``), not a
# division per synapse (:func:`_later_slot`, for the one-delay rows and every synapse's).


@numba.njit(cache=True, nogil=True, inline="always")
def _later_slot(slot: _Index, delay: _Index, n_slots: _Index) -> _Index:
    """Ring-buffer row ``delay`` rows after ``slot`` (``0 <= slot < n_slots``,
    ``0 <= delay <= n_slots``; signed or unsigned, compiled for each)."""
    row = slot + delay
    return row - n_slots if row >= n_slots else row


@numba.njit(cache=True, nogil=True, inline="always")
def _add_one_delay(
    tgt: npt.NDArray[np.uint32] | npt.NDArray[np.uint16],
    lo: int,
    hi: int,
    col: int,
    w0: float,
    const_w: bool,
    split: bool,
    weights: npt.NDArray[np.float32],
    w_at: int,
    exc: npt.NDArray[np.float64],
    inh: npt.NDArray[np.float64],
) -> None:
    """Add synapses ``lo:hi`` of a projection with one delay into the ring-buffer rows
    ``exc``/``inh`` (compiled once for each target width); synapse ``lo + i`` weighs
    ``weights[w_at + i]`` unless ``const_w``."""
    u_col, t_at, u_w = np.uint64(col), np.uint64(lo), np.uint64(w_at)
    n = np.uint64(hi - lo)
    if const_w:
        out = inh if split and w0 < 0.0 else exc
        for i in range(n):
            out[u_col + np.uint64(tgt[t_at + i])] += w0
    elif split:
        for i in range(n):
            w = np.float64(weights[u_w + i])
            if w >= 0.0:
                exc[u_col + np.uint64(tgt[t_at + i])] += w
            else:
                inh[u_col + np.uint64(tgt[t_at + i])] += w
    else:
        for i in range(n):
            exc[u_col + np.uint64(tgt[t_at + i])] += np.float64(weights[u_w + i])


@numba.njit(cache=True, nogil=True, inline="always")
def _add_delays(
    tgt: npt.NDArray[np.uint32] | npt.NDArray[np.uint16],
    dly: npt.NDArray[np.uint16] | npt.NDArray[np.uint8],
    lo: int,
    hi: int,
    d_at: int,
    col: int,
    slot: int,
    w0: float,
    const_w: bool,
    split: bool,
    weights: npt.NDArray[np.float32],
    w_at: int,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """Add synapses ``lo:hi`` of a projection with a delay per synapse (``dly[d_at + i]`` for
    synapse ``lo + i``) into the ring buffers, rows counted from ``slot`` (compiled once for each
    pair of target and delay widths)."""
    u_col, t_at, u_d, u_w = np.uint64(col), np.uint64(lo), np.uint64(d_at), np.uint64(w_at)
    u_slot, n_slots = np.uint64(slot), np.uint64(buf_exc.shape[0])
    for i in range(np.uint64(hi - lo)):
        row = _later_slot(u_slot, np.uint64(dly[u_d + i]), n_slots)
        t = u_col + np.uint64(tgt[t_at + i])
        w = w0 if const_w else np.float64(weights[u_w + i])
        if split and w < 0.0:
            buf_inh[row, t] += w
        else:
            buf_exc[row, t] += w


@numba.njit(cache=True, nogil=True, inline="always")
def _add_packed(
    tgt: npt.NDArray[np.uint32],
    lo: int,
    hi: int,
    col: int,
    slot: int,
    w0: float,
    const_w: bool,
    split: bool,
    weights: npt.NDArray[np.float32],
    w_at: int,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """:func:`_add_delays` for :data:`DELAY_PACKED` synapses (``target | delay << 24``)."""
    u_col, t_at, u_w = np.uint64(col), np.uint64(lo), np.uint64(w_at)
    u_slot, n_slots = np.uint64(slot), np.uint64(buf_exc.shape[0])
    mask, shift = np.uint64(PACK_MAX_TARGET), np.uint64(PACK_SHIFT)
    for i in range(np.uint64(hi - lo)):
        packed = np.uint64(tgt[t_at + i])
        row = _later_slot(u_slot, packed >> shift, n_slots)
        t = u_col + (packed & mask)
        w = w0 if const_w else np.float64(weights[u_w + i])
        if split and w < 0.0:
            buf_inh[row, t] += w
        else:
            buf_exc[row, t] += w


@numba.njit(cache=True, nogil=True, inline="always")
def _add_dense(
    n: int,
    col: int,
    w0: float,
    const_w: bool,
    split: bool,
    weights: npt.NDArray[np.float32],
    w_at: int,
    exc: npt.NDArray[np.float64],
    inh: npt.NDArray[np.float64],
) -> None:
    """Add a dense row of ``n`` synapses (weights from ``weights[w_at]``) onto the ring-buffer
    columns ``col ..`` of ``exc``/``inh``: contiguous on both sides, so the adds vectorize."""
    exc_row, inh_row = exc[col : col + n], inh[col : col + n]
    if const_w:
        out = inh_row if split and w0 < 0.0 else exc_row
        for k in range(n):
            out[k] += w0
    elif split:
        row_w = weights[w_at : w_at + n]
        for k in range(n):
            w = np.float64(row_w[k])
            if w >= 0.0:
                exc_row[k] += w
            else:
                inh_row[k] += w
    else:
        row_w = weights[w_at : w_at + n]
        for k in range(n):
            exc_row[k] += np.float64(row_w[k])


MODE_SWITCHES = (
    DELAY_DENSE,
    DELAY_NARROW,
    DELAY_CONSTANT,
    DELAY_NARROW_BYTE,
    DELAY_NARROW_SEPARATE,
    DELAY_SEPARATE,
    DELAY_PACKED,
)
"""The storage modes in the order of :func:`deliver_all`'s last seven arguments."""


def modes_of(meta: npt.NDArray[np.int64]) -> tuple[bool | None, ...]:
    """:func:`deliver_all`'s mode switches for the projections of ``meta``: ``True`` for
    each mode one of them uses, ``None`` for the others."""
    used = {int(mode) for mode in meta[:, _MODE]} if meta.shape[0] else set()
    return tuple(True if mode in used else None for mode in MODE_SWITCHES)


def deliver_all_ref(
    keys: npt.NDArray[np.int64],
    first_step: int,
    n_gids: int,
    pop_gid_bounds: npt.NDArray[np.int64],
    by_source_ptr: npt.NDArray[np.int64],
    by_source: npt.NDArray[np.int64],
    meta: npt.NDArray[np.int64],
    const_weight: npt.NDArray[np.float64],
    indptrs: npt.NDArray[np.int64],
    targets: npt.NDArray[np.uint32],
    targets16: npt.NDArray[np.uint16],
    weights: npt.NDArray[np.float32],
    delays: npt.NDArray[np.uint16],
    delays8: npt.NDArray[np.uint8],
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
            src_off, mode, delay, col, split, iptr, syn, woff, doff = (int(x) for x in meta[q])
            src = iptr + gid - src_off
            row_start = int(indptrs[src])
            stored = targets16 if mode in NARROW_MODES else targets
            for j in range(row_start, int(indptrs[src + 1])):
                packed = int(stored[syn + j]) if mode != DELAY_DENSE else 0
                if mode == DELAY_PACKED:
                    t, d = packed & PACK_MAX_TARGET, packed >> PACK_SHIFT
                elif mode in (DELAY_SEPARATE, DELAY_NARROW_SEPARATE):
                    t, d = packed, int(delays[doff + j])
                elif mode == DELAY_NARROW_BYTE:
                    t, d = packed, int(delays8[doff + j])
                elif mode == DELAY_DENSE:
                    t, d = j - row_start, delay
                else:
                    t, d = packed, delay
                w = float(const_weight[q]) if woff < 0 else float(weights[woff + j])
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
