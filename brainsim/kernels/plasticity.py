"""Plastic synapses: event-driven STDP on the post-side synapse store, NEST's semantics.

Plastic projections are stored like static ones (:mod:`brainsim.kernels.delivery`: a CSR by
source, each row in ascending target order), always with a float32 weight per synapse, which is
their only per-synapse state (ARCHITECTURE.md, decision 12). The traces live with the neurons:

- presynaptic, per projection and source neuron: the step of its last spike and ``K+`` just
  after it (every rank keeps these for every source, since every rank sees every spike);
- postsynaptic, per projection and local target: a ring of its recent spike steps, each with
  ``K-`` just after that spike (the ring grows when an entry still needed would be lost).

Weights change only when a presynaptic spike is delivered (:func:`deliver_plastic`), never in a
pass over synapses: work is proportional to spikes times synapses, as for static delivery.
For a spike of source ``j`` in step ``s`` through a synapse with delay ``d`` (all dendritic: a
post spike in step ``p`` reaches the synapse at ``p + d``), with ``L`` the step of ``j``'s
previous spike:

1. facilitation for every post spike with ``L - d < p <= s - d``, oldest first, with
   ``k = K+(L) * exp((L - p - d) dt / tau_plus)``;
2. depression with ``k = K-`` just before ``s - d`` (post spikes with ``p < s - d``);
3. the new weight is stored (float32) and added to the ring buffer row ``s + d``;

then, after every synapse of the projection, ``K+ <- K+ exp((L - s) dt / tau_plus) + 1`` and
``L <- s``. The rules (:data:`RULE_STDP`, :data:`RULE_STDP_POWER_LAW`) are NEST's
``stdp_synapse`` and ``stdp_pl_synapse_hom``; see :mod:`brainsim.models.synapse_stdp`.

A source that has never spiked has ``K+ = 0``: its first spike skips facilitation, which NEST
also computes but which then leaves the weight as it is (up to one rounding of ``w / w_max *
w_max``).

The post spikes of an interval are added to the rings after the interval's delivery
(:func:`record_post_spikes`): a spike delivered in this interval looks only at post spikes before
``s - d``, which precede the interval because no delay is shorter than the interval.

Rank invariance: a weight depends only on its source's spikes (global) and its target's spikes
(held by the target's rank), both processed in step order, so every rank count computes the same
weights, and the ring buffers receive the same values in the same order as for static synapses.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import numpy.typing as npt

from brainsim.kernels.delivery import (
    DELAY_CONSTANT,
    DELAY_DENSE,
    DELAY_NARROW,
    DELAY_NARROW_BYTE,
    DELAY_NARROW_SEPARATE,
    DELAY_PACKED,
    DELAY_SEPARATE,
    PACK_MAX_TARGET,
    PACK_SHIFT,
)
from brainsim.kernels.delivery import _population as population_of

__all__ = [
    "DECAY_TABLE_TAUS",
    "HISTORY_START",
    "NEVER",
    "RULES",
    "RULE_COLUMNS",
    "RULE_STDP",
    "RULE_STDP_POWER_LAW",
    "PlasticArrays",
    "decay_table",
    "deliver_plastic",
    "record_post_spikes",
    "stdp_depress",
    "stdp_facilitate",
]

RULE_STDP = 1
RULE_STDP_POWER_LAW = 2
RULES = {"stdp": RULE_STDP, "stdp_power_law": RULE_STDP_POWER_LAW}
"""Kernel code of each plastic synapse model's ``kernel`` name."""

RULE_COLUMNS = (
    "rule",
    "tau_plus_ms",
    "tau_minus_ms",
    "lambda",
    "alpha",
    "mu_plus",
    "mu_minus",
    "w_max",
)
"""Columns of the per-projection ``rules`` table (float64); a model's parameters fill the
columns of their ``slot`` (:class:`brainsim.models.Parameter`), the others are 0."""
_RULE, _TAU_PLUS, _TAU_MINUS, _LAMBDA, _ALPHA, _MU_PLUS, _MU_MINUS, _W_MAX = range(8)

NEVER = -(1 << 50)
"""The last-spike step of a source that has not spiked."""

DECAY_TABLE_TAUS = 40
"""The decay tables reach this many time constants (beyond, e^-40 < 5e-18, ``exp`` is called)."""

HISTORY_START = 8
"""Initial ring length of each target's post-spike history (it doubles when needed)."""

_SRC, _MODE, _DELAY, _COL, _SPLIT, _IPTR, _SYN, _WOFF, _DOFF = range(9)
# Columns of the plastic ``post`` table, one row per projection.
_P_GID, _P_N, _P_ROW, _P_DMAX, _P_PRE = range(5)


class PlasticArrays(NamedTuple):
    """Everything the step loop needs of the plastic projections (one numba argument).

    The first eleven fields are a delivery plan (:class:`brainsim.engine.connectivity.
    DeliveryPlan`'s arrays, with every weight stored); then, per projection ``q``:
    ``rules[q]`` (:data:`RULE_COLUMNS`); ``post[q]`` = (first local target gid, number of local
    targets, first history row, largest delay in steps, first presynaptic slot);
    ``floor[q]`` = (history step at or below which facilitation needs nothing, interval it was
    computed in). Per source: ``pre_last`` / ``pre_trace`` (slots ``post[q, 4] + source
    index``). Per local target of each projection, one history row: ``hist[rows, 2 H]`` holds
    spike ``n`` of row ``r`` at columns ``2 (n % H)`` (its step, exact in float64) and
    ``2 (n % H) + 1`` (``K-`` just after it), side by side so that one cache line serves both;
    ``H`` is a power of two; ``hist_count[r]`` counts the spikes ever added. ``decay[q, 0]`` and
    ``decay[q, 1]`` hold ``exp(-n dt / tau_plus)`` and ``exp(-n dt / tau_minus)`` for lags of
    ``n`` steps (:func:`decay_table`): a table lookup instead of an ``exp`` per synapse.
    """

    pop_gid_bounds: npt.NDArray[np.int64]
    by_source_ptr: npt.NDArray[np.int64]
    by_source: npt.NDArray[np.int64]
    meta: npt.NDArray[np.int64]
    indptrs: npt.NDArray[np.int64]
    targets: npt.NDArray[np.uint32]
    targets16: npt.NDArray[np.uint16]
    weights: npt.NDArray[np.float32]
    delays: npt.NDArray[np.uint16]
    delays8: npt.NDArray[np.uint8]
    rules: npt.NDArray[np.float64]
    post: npt.NDArray[np.int64]
    floor: npt.NDArray[np.int64]
    pre_last: npt.NDArray[np.int64]
    pre_trace: npt.NDArray[np.float64]
    hist: npt.NDArray[np.float64]
    hist_count: npt.NDArray[np.int64]
    decay: npt.NDArray[np.float64]

    @classmethod
    def empty(cls) -> PlasticArrays:
        """No plastic projection (the arrays have the types of a real plan)."""
        i8 = np.zeros(0, np.int64)
        return cls(
            np.zeros(1, np.int64), np.zeros(2, np.int64), i8, np.zeros((0, 9), np.int64), i8,
            np.zeros(0, np.uint32), np.zeros(0, np.uint16), np.zeros(0, np.float32),
            np.zeros(0, np.uint16), np.zeros(0, np.uint8), np.zeros((0, 8)),
            np.zeros((0, 5), np.int64), np.zeros((0, 2), np.int64), i8, np.zeros(0),
            np.zeros((0, 2 * HISTORY_START)), i8, np.zeros((0, 2, 1)),
        )  # fmt: skip


# Per synapse, the kernels below call only helpers of scalars: numba adds reference counting to
# every call that passes arrays, even inlined ones, which would cost more than the update itself.


@numba.njit(cache=True, nogil=True, inline="always")
def _power(x: float, mu: float) -> float:
    """``x ** mu``, exactly, without ``pow`` for the common exponents 0 and 1."""
    if mu == 0.0:
        return 1.0
    if mu == 1.0:
        return x
    return math.pow(x, mu)


@numba.njit(cache=True, nogil=True, inline="always")
def _power_single(x: float, mu: float) -> float:
    """``x ** mu`` for a facilitation's increment: exact for the exponents 0 and 1, otherwise
    in single precision (``powf``, half the time of ``pow``, which was half of a plastic
    synapse event's time). The increment is added to a non-negative weight, so its relative
    error (at most about 1e-7) moves the new weight by less than that, below the float32
    rounding of the stored weight; depression, which subtracts, keeps ``pow``."""
    if mu == 0.0:
        return 1.0
    if mu == 1.0:
        return x
    return float(np.float32(x) ** np.float32(mu))


@numba.njit(cache=True, nogil=True, inline="always")
def stdp_facilitate(
    w: float, k: float, kind: float, lam: float, mu_plus: float, w_max: float
) -> float:
    """Potentiation of weight ``w`` by the decayed presynaptic trace ``k`` (rule ``kind``)."""
    if kind == RULE_STDP:
        norm = w / w_max + lam * _power_single(1.0 - w / w_max, mu_plus) * k
        return norm * w_max if norm < 1.0 else w_max
    return w + lam * _power_single(w, mu_plus) * k


@numba.njit(cache=True, nogil=True, inline="always")
def stdp_depress(
    w: float, k: float, kind: float, lam: float, alpha: float, mu_minus: float, w_max: float
) -> float:
    """Depression of weight ``w`` by the postsynaptic trace ``k`` (rule ``kind``)."""
    if kind == RULE_STDP:
        norm = w / w_max - alpha * lam * _power(w / w_max, mu_minus) * k
        return norm * w_max if norm > 0.0 else 0.0
    new = w - lam * alpha * w * k
    return new if new > 0.0 else 0.0


@numba.njit(cache=True, nogil=True, inline="always")
def _decay(lag: int, dt_ms: float, tau_ms: float) -> float:
    """``exp(-lag dt / tau)``, a trace's decay over ``lag`` steps: the one expression that both
    the kernels and :func:`decay_table` evaluate, so a table entry equals the direct value."""
    return math.exp(-lag * dt_ms / tau_ms)


def decay_table(n: int, dt_ms: float, tau_ms: float) -> npt.NDArray[np.float64]:
    """:func:`_decay` for lags ``0 .. n - 1``, bit for bit."""
    return np.array([_decay(lag, dt_ms, tau_ms) for lag in range(n)])


@numba.njit(cache=True, nogil=True)
def deliver_plastic(
    keys: npt.NDArray[np.int64],
    first_step: int,
    n_gids: int,
    dt_ms: float,
    pa: PlasticArrays,
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
    """Deliver one interval's spikes (sorted keys ``step_in_interval * n_gids + gid``) through
    every plastic projection, updating each weight first (see the module docstring).

    The last seven arguments say which storage modes are compiled in, as for
    :func:`~brainsim.kernels.delivery.deliver_all`: each mode has a synapse loop of its own
    (the mode a constant in it, so that no synapse asks which mode it is stored in), and
    ``None`` leaves a mode's loop out; every mode in ``pa.meta`` must be in.
    """
    n_pops = pa.pop_gid_bounds.shape[0] - 1
    for key in keys:
        step_in = key // n_gids
        gid = key - step_in * n_gids
        s = first_step + step_in
        pop = population_of(gid, pa.pop_gid_bounds, n_pops)
        for qi in range(pa.by_source_ptr[pop], pa.by_source_ptr[pop + 1]):
            q = pa.by_source[qi]
            mode = pa.meta[q, _MODE]
            if narrow is not None and mode == DELAY_NARROW:
                _deliver_row(pa, q, gid, s, dt_ms, buf_exc, buf_inh, DELAY_NARROW)
            elif constant is not None and mode == DELAY_CONSTANT:
                _deliver_row(pa, q, gid, s, dt_ms, buf_exc, buf_inh, DELAY_CONSTANT)
            elif dense is not None and mode == DELAY_DENSE:
                _deliver_row(pa, q, gid, s, dt_ms, buf_exc, buf_inh, DELAY_DENSE)
            elif narrow_byte is not None and mode == DELAY_NARROW_BYTE:
                _deliver_row(pa, q, gid, s, dt_ms, buf_exc, buf_inh, DELAY_NARROW_BYTE)
            elif narrow_separate is not None and mode == DELAY_NARROW_SEPARATE:
                _deliver_row(pa, q, gid, s, dt_ms, buf_exc, buf_inh, DELAY_NARROW_SEPARATE)
            elif separate is not None and mode == DELAY_SEPARATE:
                _deliver_row(pa, q, gid, s, dt_ms, buf_exc, buf_inh, DELAY_SEPARATE)
            elif packed is not None and mode == DELAY_PACKED:
                _deliver_row(pa, q, gid, s, dt_ms, buf_exc, buf_inh, DELAY_PACKED)


@numba.njit(cache=True, nogil=True, inline="always")
def _deliver_row(
    pa: PlasticArrays,
    q: int,
    gid: int,
    s: int,
    dt_ms: float,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
    mode: int,
) -> None:
    """The spike of ``gid`` in step ``s`` through its row of plastic projection ``q``, stored
    in ``mode`` (a constant at each call: inlined, the loop below has only its own mode's
    branches)."""
    meta, rule = pa.meta, pa.rules[q]
    kind, tau_plus, tau_minus = rule[_RULE], rule[_TAU_PLUS], rule[_TAU_MINUS]
    lam, alpha, w_max = rule[_LAMBDA], rule[_ALPHA], rule[_W_MAX]
    mu_plus, mu_minus = rule[_MU_PLUS], rule[_MU_MINUS]
    hist, counts, weights = pa.hist, pa.hist_count, pa.weights
    # exp(-n dt / tau) for lags of n steps, from the projection's tables where they reach.
    plus, minus = pa.decay[q, 0], pa.decay[q, 1]
    n_decay = pa.decay.shape[2]
    # Unsigned indices spare numba's negative-index wraparound on every load and store; the
    # rings' length is a power of two, so a ring position is a mask, not a division.
    size = hist.shape[1] // 2
    flat = hist.reshape(-1)  # indexed flat: a row view per synapse costs two reference counts
    width = np.uint64(hist.shape[1])
    mask, one = np.uint64(size - 1), np.uint64(1)
    n_slots = np.uint64(buf_exc.shape[0])
    src = gid - meta[q, _SRC]
    slot = pa.post[q, _P_PRE] + src
    last, k_plus = pa.pre_last[slot], pa.pre_trace[slot]
    iptr = meta[q, _IPTR] + src
    lo, hi = pa.indptrs[iptr], pa.indptrs[iptr + 1]
    row0 = np.uint64(pa.post[q, _P_ROW])
    col = np.uint64(meta[q, _COL])
    split = meta[q, _SPLIT] != 0
    t_at, w_at = np.uint64(meta[q, _SYN] + lo), np.uint64(meta[q, _WOFF] + lo)
    d_at = np.uint64(meta[q, _DOFF] + lo) if meta[q, _DOFF] >= 0 else np.uint64(0)
    narrow = mode in (DELAY_NARROW, DELAY_NARROW_BYTE, DELAY_NARROW_SEPARATE)
    base = np.uint64(s) % n_slots  # the ring-buffer row of a zero delay
    d_row = np.uint64(meta[q, _DELAY])  # the delay of the one-delay modes
    for i in range(np.uint64(hi - lo)):
        # The synapse's target and delay, as the storage mode holds them.
        d = d_row
        if mode == DELAY_DENSE:
            target = np.uint64(i)
        elif narrow:
            target = np.uint64(pa.targets16[t_at + i])
        else:
            target = np.uint64(pa.targets[t_at + i])
        if mode == DELAY_PACKED:
            d = target >> np.uint64(PACK_SHIFT)
            target = target & np.uint64(PACK_MAX_TARGET)
        elif mode == DELAY_NARROW_BYTE:
            d = np.uint64(pa.delays8[d_at + i])
        elif mode in (DELAY_SEPARATE, DELAY_NARROW_SEPARATE):
            d = np.uint64(pa.delays[d_at + i])
        # Facilitation by the post spikes in (last - d, s - d], then depression by K- before
        # s - d, walking the target's ring back from its newest spike (ring entries e are
        # counted from the first spike ever, >= oldest; -1 and below mean none).
        row = row0 + target
        at = row * width  # entry e's step at at + 2 (e & mask), its K- right after
        n = counts[row]
        oldest = n - size if n > size else 0
        arrive = s - np.int64(d)
        newest = n - 1
        while newest >= oldest and flat[at + ((np.uint64(newest) & mask) << one)] > arrive:
            newest -= 1
        w = float(weights[w_at + i])
        if k_plus > 0.0:
            start = last - np.int64(d)
            first = newest
            while first >= oldest and flat[at + ((np.uint64(first) & mask) << one)] > start:
                first -= 1
            for e in range(first + 1, newest + 1):
                lag = np.int64(flat[at + ((np.uint64(e) & mask) << one)] - start)
                decay = plus[lag] if lag < n_decay else _decay(int(lag), dt_ms, tau_plus)
                w = stdp_facilitate(w, k_plus * decay, kind, lam, mu_plus, w_max)
        before = newest
        while before >= oldest and flat[at + ((np.uint64(before) & mask) << one)] >= arrive:
            before -= 1
        k_minus = 0.0
        if before >= oldest:
            j = at + ((np.uint64(before) & mask) << one)
            lag = arrive - np.int64(flat[j])
            decay = minus[lag] if lag < n_decay else _decay(int(lag), dt_ms, tau_minus)
            k_minus = flat[j + one] * decay
        stored = np.float32(stdp_depress(w, k_minus, kind, lam, alpha, mu_minus, w_max))
        weights[w_at + i] = stored
        cell = base + d
        if cell >= n_slots:
            cell -= n_slots
        if split and stored < 0.0:
            buf_inh[cell, col + target] += np.float64(stored)
        else:
            buf_exc[cell, col + target] += np.float64(stored)
    pa.pre_trace[slot] = k_plus * _decay(int(s - last), dt_ms, tau_plus) + 1.0
    pa.pre_last[slot] = s


@numba.njit(cache=True, nogil=True, inline="always")
def _sources_of(pa: PlasticArrays, q: int) -> int:
    """Number of source neurons of projection ``q`` (its CSR's rows)."""
    first = pa.meta[q, _IPTR]
    end = pa.indptrs.shape[0] if q + 1 == pa.meta.shape[0] else pa.meta[q + 1, _IPTR]
    return int(end - first - 1)


@numba.njit(cache=True, nogil=True)
def _needs_floor(pa: PlasticArrays, q: int, next_step: int, n_sources: int) -> int:
    """The history step at or below which projection ``q``'s facilitation needs no post spike
    from ``next_step`` on: ``min(last spike of any source that spiked, next_step) - max delay``."""
    low = next_step
    first = pa.post[q, _P_PRE]
    for j in range(first, first + n_sources):
        last = pa.pre_last[j]
        if last != NEVER and last < low:
            low = last
    return int(low - pa.post[q, _P_DMAX])


@numba.njit(cache=True, nogil=True)
def _grown(pa: PlasticArrays) -> npt.NDArray[np.float64]:
    """History rings twice as long, each row's live entries at their new places."""
    rows, size = pa.hist.shape[0], pa.hist.shape[1] // 2
    hist = np.zeros((rows, 4 * size))
    for r in range(rows):
        n = pa.hist_count[r]
        for e in range(max(0, n - size), n):
            old, new = 2 * (e % size), 2 * (e % (2 * size))
            hist[r, new], hist[r, new + 1] = pa.hist[r, old], pa.hist[r, old + 1]
    return hist


@numba.njit(cache=True, nogil=True)
def record_post_spikes(
    keys: npt.NDArray[np.int64],
    first_step: int,
    next_step: int,
    interval: int,
    n_gids: int,
    dt_ms: float,
    pa: PlasticArrays,
) -> PlasticArrays:
    """Add this rank's spikes among ``keys`` (one interval's, sorted) to the post histories of
    the plastic projections onto them; return ``pa``, with longer rings if one had to grow.

    The oldest entry of a full ring is dropped only when no future delivery can need it: it is
    at or below the facilitation floor (:func:`_needs_floor`, recomputed at most once per
    interval) and a newer entry is already before every future ``s - d >= next_step - dmax``.
    """
    n_proj = pa.post.shape[0]
    for key in keys:
        step_in = key // n_gids
        gid = key - step_in * n_gids
        s = first_step + step_in
        for q in range(n_proj):
            target = gid - pa.post[q, _P_GID]
            if target < 0 or target >= pa.post[q, _P_N]:
                continue
            row = pa.post[q, _P_ROW] + target
            size = pa.hist.shape[1] // 2
            n = pa.hist_count[row]
            if n >= size:
                e0, e1 = 2 * ((n - size) % size), 2 * ((n - size + 1) % size)
                before_all = pa.hist[row, e1] < next_step - pa.post[q, _P_DMAX]
                if pa.hist[row, e0] > pa.floor[q, 0] and pa.floor[q, 1] != interval:
                    pa.floor[q, 0] = _needs_floor(pa, q, next_step, _sources_of(pa, q))
                    pa.floor[q, 1] = interval
                if not (before_all and pa.hist[row, e0] <= pa.floor[q, 0]):
                    pa = PlasticArrays(
                        pa.pop_gid_bounds, pa.by_source_ptr, pa.by_source, pa.meta, pa.indptrs,
                        pa.targets, pa.targets16, pa.weights, pa.delays, pa.delays8, pa.rules,
                        pa.post, pa.floor, pa.pre_last, pa.pre_trace, _grown(pa), pa.hist_count,
                        pa.decay,
                    )  # fmt: skip
                    size = pa.hist.shape[1] // 2
            k = 1.0
            if n > 0:
                prev = 2 * ((n - 1) % size)
                lag = s - np.int64(pa.hist[row, prev])
                k = pa.hist[row, prev + 1] * _decay(lag, dt_ms, pa.rules[q, _TAU_MINUS]) + 1.0
            at = 2 * (n % size)
            pa.hist[row, at] = s
            pa.hist[row, at + 1] = k
            pa.hist_count[row] = n + 1
    return pa
