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
    DELAY_DENSE,
    DELAY_NARROW,
    DELAY_NARROW_BYTE,
    DELAY_NARROW_SEPARATE,
    DELAY_PACKED,
    DELAY_SEPARATE,
    PACK_MAX_TARGET,
    PACK_SHIFT,
)

__all__ = [
    "HISTORY_START",
    "NEVER",
    "RULES",
    "RULE_COLUMNS",
    "RULE_STDP",
    "RULE_STDP_POWER_LAW",
    "PlasticArrays",
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
    index``). Per local target of each projection, one history row: ``hist_steps``/``hist_k``
    ``[rows, H]`` hold spike ``n`` of row ``r`` at column ``n % H``; ``hist_count[r]`` counts
    the spikes ever added.
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
    hist_steps: npt.NDArray[np.int64]
    hist_k: npt.NDArray[np.float64]
    hist_count: npt.NDArray[np.int64]

    @classmethod
    def empty(cls) -> PlasticArrays:
        """No plastic projection (the arrays have the types of a real plan)."""
        i8 = np.zeros(0, np.int64)
        return cls(
            np.zeros(1, np.int64), np.zeros(2, np.int64), i8, np.zeros((0, 9), np.int64), i8,
            np.zeros(0, np.uint32), np.zeros(0, np.uint16), np.zeros(0, np.float32),
            np.zeros(0, np.uint16), np.zeros(0, np.uint8), np.zeros((0, 8)),
            np.zeros((0, 5), np.int64), np.zeros((0, 2), np.int64), i8, np.zeros(0),
            np.zeros((0, HISTORY_START), np.int64), np.zeros((0, HISTORY_START)), i8,
        )  # fmt: skip


@numba.njit(cache=True, nogil=True, inline="always")
def stdp_facilitate(w: float, k: float, rule: npt.NDArray[np.float64]) -> float:
    """Potentiation of weight ``w`` by the decayed presynaptic trace ``k``."""
    lam = rule[_LAMBDA]
    if rule[_RULE] == RULE_STDP:
        w_max = float(rule[_W_MAX])
        norm = w / w_max + lam * math.pow(1.0 - w / w_max, rule[_MU_PLUS]) * k
        return norm * w_max if norm < 1.0 else w_max
    return float(w + lam * math.pow(w, rule[_MU_PLUS]) * k)


@numba.njit(cache=True, nogil=True, inline="always")
def stdp_depress(w: float, k: float, rule: npt.NDArray[np.float64]) -> float:
    """Depression of weight ``w`` by the postsynaptic trace ``k``."""
    lam, alpha = rule[_LAMBDA], rule[_ALPHA]
    if rule[_RULE] == RULE_STDP:
        w_max = float(rule[_W_MAX])
        norm = w / w_max - alpha * lam * math.pow(w / w_max, rule[_MU_MINUS]) * k
        return norm * w_max if norm > 0.0 else 0.0
    new = float(w - lam * alpha * w * k)
    return new if new > 0.0 else 0.0


@numba.njit(cache=True, nogil=True, inline="always")
def _population(gid: int, pop_gid_bounds: npt.NDArray[np.int64], n_pops: int) -> int:
    pop = 0
    while pop < n_pops - 1 and gid >= pop_gid_bounds[pop + 1]:
        pop += 1
    return pop


@numba.njit(cache=True, nogil=True, inline="always")
def _target_and_delay(pa: PlasticArrays, q: int, lo: int, i: int) -> tuple[int, int]:
    """Local target index and delay (steps) of synapse ``lo + i`` of projection ``q``
    (``lo``: the row's first synapse, counted from the projection's first)."""
    mode = pa.meta[q, _MODE]
    at = pa.meta[q, _SYN] + lo + i
    d_at = pa.meta[q, _DOFF] + lo + i
    target = np.int64(i)
    delay = np.int64(pa.meta[q, _DELAY])
    if mode in (DELAY_NARROW, DELAY_NARROW_BYTE, DELAY_NARROW_SEPARATE):
        target = np.int64(pa.targets16[at])
    elif mode != DELAY_DENSE:
        target = np.int64(pa.targets[at])
    if mode == DELAY_NARROW_BYTE:
        delay = np.int64(pa.delays8[d_at])
    elif mode in (DELAY_SEPARATE, DELAY_NARROW_SEPARATE):
        delay = np.int64(pa.delays[d_at])
    elif mode == DELAY_PACKED:
        delay = target >> PACK_SHIFT
        target = target & PACK_MAX_TARGET
    return int(target), int(delay)


@numba.njit(cache=True, nogil=True)
def _updated_weight(
    pa: PlasticArrays, q: int, row: int, w: float, s: int, d: int, last: int, k_plus: float,
    dt_ms: float,
) -> float:  # fmt: skip
    """The weight of a synapse onto history row ``row`` after its source's spike in step ``s``
    (delay ``d``; the source's previous spike in step ``last``, trace ``k_plus`` after it)."""
    rule = pa.rules[q]
    steps, ks = pa.hist_steps[row], pa.hist_k[row]
    size = steps.shape[0]
    n = pa.hist_count[row]
    oldest = n - size if n > size else 0
    arrive = s - d  # post spikes up to here have reached the synapse
    newest = n - 1  # newest post spike at or before arrive
    while newest >= oldest and steps[newest % size] > arrive:
        newest -= 1
    if k_plus > 0.0:
        first = newest  # oldest post spike after last - d
        while first >= oldest and steps[first % size] > last - d:
            first -= 1
        for e in range(first + 1, newest + 1):
            gap = (last - steps[e % size] - d) * dt_ms
            w = stdp_facilitate(w, k_plus * math.exp(gap / rule[_TAU_PLUS]), rule)
    before = newest  # newest post spike strictly before arrive
    while before >= oldest and steps[before % size] >= arrive:
        before -= 1
    k_minus = 0.0
    if before >= oldest:
        j = before % size
        k_minus = ks[j] * math.exp((steps[j] - arrive) * dt_ms / rule[_TAU_MINUS])
    return stdp_depress(w, k_minus, rule)


@numba.njit(cache=True, nogil=True)
def deliver_plastic(
    keys: npt.NDArray[np.int64],
    first_step: int,
    n_gids: int,
    dt_ms: float,
    pa: PlasticArrays,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """Deliver one interval's spikes (sorted keys ``step_in_interval * n_gids + gid``) through
    every plastic projection, updating each weight first (see the module docstring)."""
    n_slots = buf_exc.shape[0]
    n_pops = pa.pop_gid_bounds.shape[0] - 1
    for key in keys:
        step_in = key // n_gids
        gid = key - step_in * n_gids
        s = first_step + step_in
        pop = _population(gid, pa.pop_gid_bounds, n_pops)
        for qi in range(pa.by_source_ptr[pop], pa.by_source_ptr[pop + 1]):
            q = pa.by_source[qi]
            src = gid - pa.meta[q, _SRC]
            slot = pa.post[q, _P_PRE] + src
            last, k_plus = pa.pre_last[slot], pa.pre_trace[slot]
            iptr = pa.meta[q, _IPTR] + src
            lo, hi = pa.indptrs[iptr], pa.indptrs[iptr + 1]
            col, row0 = pa.meta[q, _COL], pa.post[q, _P_ROW]
            split = pa.meta[q, _SPLIT] != 0
            w_at = pa.meta[q, _WOFF] + lo
            for i in range(hi - lo):
                target, d = _target_and_delay(pa, q, lo, i)
                w = _updated_weight(pa, q, row0 + target, np.float64(pa.weights[w_at + i]), s,
                                    d, last, k_plus, dt_ms)  # fmt: skip
                stored = np.float32(w)
                pa.weights[w_at + i] = stored
                row = (s + d) % n_slots
                if split and stored < 0.0:
                    buf_inh[row, col + target] += np.float64(stored)
                else:
                    buf_exc[row, col + target] += np.float64(stored)
            pa.pre_trace[slot] = k_plus * math.exp((last - s) * dt_ms / pa.rules[q, _TAU_PLUS]) + 1
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
def _grown(pa: PlasticArrays) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """History rings twice as long, each row's live entries at their new columns."""
    rows, size = pa.hist_steps.shape
    steps = np.zeros((rows, 2 * size), dtype=np.int64)
    ks = np.zeros((rows, 2 * size), dtype=np.float64)
    for r in range(rows):
        n = pa.hist_count[r]
        for e in range(max(0, n - size), n):
            steps[r, e % (2 * size)] = pa.hist_steps[r, e % size]
            ks[r, e % (2 * size)] = pa.hist_k[r, e % size]
    return steps, ks


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
            size = pa.hist_steps.shape[1]
            n = pa.hist_count[row]
            if n >= size:
                e0, e1 = (n - size) % size, (n - size + 1) % size
                before_all = pa.hist_steps[row, e1] < next_step - pa.post[q, _P_DMAX]
                if pa.hist_steps[row, e0] > pa.floor[q, 0] and pa.floor[q, 1] != interval:
                    pa.floor[q, 0] = _needs_floor(pa, q, next_step, _sources_of(pa, q))
                    pa.floor[q, 1] = interval
                if not (before_all and pa.hist_steps[row, e0] <= pa.floor[q, 0]):
                    steps, ks = _grown(pa)
                    pa = PlasticArrays(
                        pa.pop_gid_bounds, pa.by_source_ptr, pa.by_source, pa.meta, pa.indptrs,
                        pa.targets, pa.targets16, pa.weights, pa.delays, pa.delays8, pa.rules,
                        pa.post, pa.floor, pa.pre_last, pa.pre_trace, steps, ks, pa.hist_count,
                    )  # fmt: skip
                    size = steps.shape[1]
            k = 1.0
            if n > 0:
                prev = (n - 1) % size
                gap = (pa.hist_steps[row, prev] - s) * dt_ms
                k = pa.hist_k[row, prev] * math.exp(gap / pa.rules[q, _TAU_MINUS]) + 1.0
            pa.hist_steps[row, n % size] = s
            pa.hist_k[row, n % size] = k
            pa.hist_count[row] = n + 1
    return pa
