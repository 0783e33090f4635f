"""Connection-rule samplers that build a projection post-side, keyed by identity, as CSR by target.

Every sampler returns ``(indptr, sources)``: ``sources[indptr[i]:indptr[i + 1]]`` are the
population-local source ids (int64) of the ``i``-th requested target. Apart from
:func:`fixed_outdegree_local`, the draws of a target are keyed by its gid alone, so any rank can
build exactly its own targets and the result does not depend on the decomposition: building targets
``[0, n)`` in one call equals concatenating the calls for ``[0, k)`` and ``[k, n)``.

Keying (see :mod:`.rng` for the counter layout). The sampler of one key reads a sequence of 32-bit
words: word ``w`` is word ``w mod 4`` of ``philox_words(seed, stream, key, w // 4, sub)``. Partner
draws use ``key = target gid`` (``source gid`` for :func:`fixed_outdegree_local`) and
:data:`SUB_PARTNERS`; the per-target counts of :func:`fixed_total_number_counts` use
``key = population-local target index`` and :data:`SUB_COUNTS`. An integer in ``[0, n)`` takes one
word per Lemire trial (:func:`.rng.lemire_trial`); a uniform double takes two words
(:func:`.rng.uniform_from_words`).

Autapses and multapses. An autapse is a connection whose source gid equals its target gid (only
possible when source and target population coincide). With ``allow_autapses=False`` the eligible
sources of target ``t`` are the population minus ``t`` itself: draws are made on ``[0, n - 1)`` and
values ``>= t``'s local id shifted up by one, so no draw is wasted or rejected. A multapse is a
repeated (source, target) pair; with ``allow_multapses=False`` a target's sources are drawn without
replacement: by rejection against a mark array while ``2 k <= n`` (expected draws below
``n ln 2``) and by a partial Fisher-Yates shuffle (undone afterwards, so its cost is ``O(k)``)
otherwise. Within a target, sources stay in draw order.

Impossible requests (a negative degree, more distinct sources than are eligible, ``p`` outside
``[0, 1]``) raise ``ValueError``; the circuit validation should have rejected them earlier.
"""

from __future__ import annotations

import math
from typing import cast

import numba
import numpy as np
import numpy.typing as npt

from .rng import ZERO, IntLike, lemire_trial, philox_words, uniform_from_words

__all__ = [
    "BINOMIAL_INVERSION_MAX_MEAN",
    "SUB_COUNTS",
    "SUB_PARTNERS",
    "all_to_all",
    "binomial",
    "fixed_indegree",
    "fixed_outdegree_local",
    "fixed_total_number",
    "fixed_total_number_counts",
    "hypergeometric",
    "pairwise_bernoulli",
]

SUB_PARTNERS = 0
"""Philox sub counter of partner draws (sources of a target, targets of a source)."""
SUB_COUNTS = 1
"""Philox sub counter of the per-target counts of :func:`fixed_total_number_counts`."""
_PARTNERS: int = cast(int, np.int64(SUB_PARTNERS))
_COUNTS: int = cast(int, np.int64(SUB_COUNTS))
# The kernels pass these (and start ``pos`` at ``rng.ZERO``) rather than the plain ints:
# numba compiles a called kernel once more for every literal argument value, so a literal 0
# and 1 besides the general int64 meant three or four compilations of every draw helper.
BINOMIAL_INVERSION_MAX_MEAN = 10.0
"""``n min(p, 1 - p)`` below which :func:`binomial` uses inversion; BTRS from here on."""

Int64Array = npt.NDArray[np.int64]
Block = tuple[np.uint32, np.uint32, np.uint32, np.uint32]

_NO_EXCLUSION = -1


# ---------------------------------------------------------------------------------------------
# The word sequence of one key
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _next_word(
    seed: IntLike, stream: IntLike, key: IntLike, sub: int, pos: int, block: Block
) -> tuple[np.uint32, int, Block]:
    """Word ``pos`` of the key's sequence; returns ``(word, pos + 1, block)``.

    ``block`` caches the four words of call ``pos // 4``; it is refreshed whenever ``pos`` enters
    a new call, so callers start with any block and ``pos = 0``.
    """
    if pos & 3 == 0:
        block = philox_words(seed, stream, key, pos >> 2, sub)
    return block[pos & 3], pos + 1, block


@numba.njit(cache=True)
def _next_below(
    seed: IntLike, stream: IntLike, key: IntLike, sub: int, pos: int, block: Block, n: int
) -> tuple[np.int64, int, Block]:
    """Uniform integer on ``[0, n)`` from the key's sequence; returns ``(value, pos, block)``."""
    while True:
        word, pos, block = _next_word(seed, stream, key, sub, pos, block)
        accepted, value = lemire_trial(word, n)
        if accepted:
            return value, pos, block


@numba.njit(cache=True)
def _next_uniform(
    seed: IntLike, stream: IntLike, key: IntLike, sub: int, pos: int, block: Block
) -> tuple[float, int, Block]:
    """Uniform double on ``[0, 1)`` from the next two words; returns ``(value, pos, block)``."""
    w_hi, pos, block = _next_word(seed, stream, key, sub, pos, block)
    w_lo, pos, block = _next_word(seed, stream, key, sub, pos, block)
    return uniform_from_words(w_hi, w_lo), pos, block


@numba.njit(cache=True)
def _empty_block() -> Block:
    zero = np.uint32(0)
    return zero, zero, zero, zero


# ---------------------------------------------------------------------------------------------
# Count distributions for fixed_total_number
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def binomial(seed: IntLike, stream: IntLike, key: IntLike, sub: int, n: int, p: float) -> int:
    """Binomial(``n``, ``p``) count from the word sequence of ``(key, sub)``.

    For ``p > 1/2`` it returns ``n - Binomial(n, 1 - p)``. With mean ``n p < 10``: inversion by
    sequential search from ``P(0) = (1 - p)**n`` with ``P(k) = P(k - 1) ((n + 1) s / k - s)``,
    ``s = p / (1 - p)`` (a fresh uniform if rounding exhausts the support). Otherwise BTRS, the
    transformed rejection with squeeze of Hörmann (1993), "The generation of binomial random
    variates", J. Statist. Comput. Simul. 46, 101-110: with ``spq = sqrt(n p q)``,
    ``b = 1.15 + 2.53 spq``, ``a = -0.0873 + 0.0248 b + 0.01 p``, ``c = n p + 0.5``,
    ``alpha = (2.83 + 5.1 / b) spq``, ``v_r = 0.92 - 4.2 / b``, ``m = floor((n + 1) p)``, a trial
    proposes ``k = floor((2a / u_s + b) U + c)`` from ``U - 1/2`` and ``V`` (``u_s = 1/2 - |U|``),
    accepts inside the squeeze ``u_s >= 0.07, V <= v_r`` and otherwise iff
    ``ln(V alpha / (a / u_s**2 + b)) <= ln(m! (n-m)!) - ln(k! (n-k)!) + (k - m) ln(p / q)``.
    Both are exact in distribution up to floating-point rounding.
    """
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    flipped = p > 0.5
    if flipped:
        p = 1.0 - p
    q = 1.0 - p
    block = _empty_block()
    pos = ZERO
    k = 0
    if n * p < BINOMIAL_INVERSION_MAX_MEAN:
        s = p / q
        a = (n + 1) * s
        p_zero = math.exp(n * math.log1p(-p))
        while True:
            u, pos, block = _next_uniform(seed, stream, key, sub, pos, block)
            k = 0
            p_k = p_zero
            while u >= p_k and k < n:
                u -= p_k
                k += 1
                p_k *= a / k - s
            if u < p_k:
                break
    else:
        spq = math.sqrt(n * p * q)
        b = 1.15 + 2.53 * spq
        a = -0.0873 + 0.0248 * b + 0.01 * p
        c = n * p + 0.5
        alpha = (2.83 + 5.1 / b) * spq
        v_r = 0.92 - 4.2 / b
        log_pq = math.log(p / q)
        m = math.floor((n + 1) * p)
        h = math.lgamma(m + 1.0) + math.lgamma(n - m + 1.0)
        while True:
            u_raw, pos, block = _next_uniform(seed, stream, key, sub, pos, block)
            v, pos, block = _next_uniform(seed, stream, key, sub, pos, block)
            u = u_raw - 0.5
            u_s = 0.5 - abs(u)
            k_real = math.floor((2.0 * a / u_s + b) * u + c)
            if k_real < 0.0 or k_real > n:
                continue
            if u_s >= 0.07 and v <= v_r:
                k = int(k_real)
                break
            log_v = math.log(v * alpha / (a / (u_s * u_s) + b))
            log_ratio = (
                h
                - math.lgamma(k_real + 1.0)
                - math.lgamma(n - k_real + 1.0)
                + (k_real - m) * log_pq
            )
            if log_v <= log_ratio:
                k = int(k_real)
                break
    return n - k if flipped else k


@numba.njit(cache=True)
def _log_choose(n: float, k: float) -> float:
    return math.lgamma(n + 1.0) - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0)


@numba.njit(cache=True)
def hypergeometric(
    seed: IntLike, stream: IntLike, key: IntLike, sub: int, n_good: int, n_bad: int, n_draws: int
) -> int:
    """Number of good items among ``n_draws`` drawn without replacement from ``n_good + n_bad``.

    Exact inversion searching outward from the mode (chop-down): ``P(mode)`` from log-binomial
    coefficients, neighbours by the pmf ratios
    ``P(k+1)/P(k) = (G - k)(D - k) / ((k + 1)(B - D + k + 1))`` and its inverse, alternating one
    step down and one up. Expected cost ``O(standard deviation)`` steps and two words per attempt.
    """
    lo = max(0, n_draws - n_bad)
    hi = min(n_good, n_draws)
    if lo >= hi:
        return lo
    total = n_good + n_bad
    mode = min(max((n_draws + 1) * (n_good + 1) // (total + 2), lo), hi)
    p_mode = math.exp(
        _log_choose(n_good, mode) + _log_choose(n_bad, n_draws - mode) - _log_choose(total, n_draws)
    )
    block = _empty_block()
    pos = ZERO
    while True:
        u, pos, block = _next_uniform(seed, stream, key, sub, pos, block)
        if u < p_mode:
            return mode
        u -= p_mode
        down, up = mode, mode
        p_down, p_up = p_mode, p_mode
        while down > lo or up < hi:
            if down > lo:
                p_down *= (
                    float(down)
                    * float(n_bad - n_draws + down)
                    / (float(n_good - down + 1) * float(n_draws - down + 1))
                )
                down -= 1
                if u < p_down:
                    return down
                u -= p_down
            if up < hi:
                p_up *= (
                    float(n_good - up)
                    * float(n_draws - up)
                    / (float(up + 1) * float(n_bad - n_draws + up + 1))
                )
                up += 1
                if u < p_up:
                    return up
                u -= p_up


@numba.njit(cache=True)
def fixed_total_number_counts(
    seed: IntLike,
    stream: IntLike,
    n_total: int,
    n_targets_total: int,
    eligible_per_target: int = -1,
) -> Int64Array:
    """How many of ``n_total`` connections each of ``n_targets_total`` targets receives.

    Every rank computes the same counts in ``O(n_targets_total)``; the count of target ``j`` is
    keyed by ``key = j`` and :data:`SUB_COUNTS`.

    * ``eligible_per_target < 0`` (multapses allowed): a multinomial with equal cell
      probabilities, as conditional binomials ``c_j ~ Binomial(N - sum_{i<j} c_i, 1 / (T - j))``
      (:func:`binomial`); the last target takes the rest.
    * ``eligible_per_target = E >= 0`` (multapses forbidden, every target has ``E`` eligible
      sources): the ``N`` connections are ``N`` distinct (source, target) pairs chosen uniformly,
      so the counts are multivariate hypergeometric, drawn as conditional hypergeometrics
      ``c_j ~ Hypergeometric(good = E, bad = (T - j - 1) E, draws = N - sum_{i<j} c_i)``
      (:func:`hypergeometric`). Requires ``N <= T E``.
    """
    if n_total < 0 or n_targets_total < 0:
        raise ValueError("fixed_total_number: n and the number of targets must be >= 0")
    if n_targets_total == 0:
        if n_total > 0:
            raise ValueError("fixed_total_number: connections requested but there are no targets")
        return np.zeros(0, dtype=np.int64)
    if eligible_per_target >= 0 and n_total > n_targets_total * eligible_per_target:
        raise ValueError("fixed_total_number: n exceeds the number of distinct eligible pairs")
    counts = np.zeros(n_targets_total, dtype=np.int64)
    remaining = n_total
    for j in range(n_targets_total - 1):
        if remaining == 0:
            break
        if eligible_per_target < 0:
            c = binomial(seed, stream, j, _COUNTS, remaining, 1.0 / (n_targets_total - j))
        else:
            c = hypergeometric(
                seed,
                stream,
                j,
                _COUNTS,
                eligible_per_target,
                (n_targets_total - j - 1) * eligible_per_target,
                remaining,
            )
        counts[j] = c
        remaining -= c
    counts[n_targets_total - 1] = remaining
    return counts


# ---------------------------------------------------------------------------------------------
# Partner draws shared by the rules
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _excluded_local(gid: int, pool_gid_offset: int, n_pool: int, allow_autapses: bool) -> int:
    """Pool-local id that ``gid`` may not connect to (itself), or -1."""
    local = gid - pool_gid_offset
    if allow_autapses or local < 0 or local >= n_pool:
        return _NO_EXCLUSION
    return local


@numba.njit(cache=True)
def _draw_partners(
    seed: IntLike,
    stream: IntLike,
    key: int,
    n_pool: int,
    excluded: int,
    k: int,
    allow_multapses: bool,
    out: Int64Array,
    start: int,
    marks: npt.NDArray[np.bool_],
    perm: Int64Array,
) -> None:
    """Write ``k`` pool-local ids drawn for ``key`` to ``out[start:start + k]`` in draw order.

    Draws are uniform on the ``n_eligible = n_pool - (excluded >= 0)`` eligible ids, with or
    without replacement. ``marks`` (all False, length ``n_pool``) and ``perm`` (the identity on
    ``n_pool``) are scratch that is restored before returning.
    """
    n_eligible = n_pool - 1 if excluded >= 0 else n_pool
    if k == 0:
        return
    if n_eligible <= 0:
        raise ValueError("connection rule: a neuron has no eligible partner")
    if not allow_multapses and k > n_eligible:
        raise ValueError("connection rule: more distinct partners requested than are eligible")
    block = _empty_block()
    pos = ZERO
    if allow_multapses:
        for i in range(k):
            v, pos, block = _next_below(seed, stream, key, _PARTNERS, pos, block, n_eligible)
            out[start + i] = v + 1 if excluded >= 0 and v >= excluded else v
    elif 2 * k <= n_eligible:
        i = 0
        while i < k:
            v, pos, block = _next_below(seed, stream, key, _PARTNERS, pos, block, n_eligible)
            if marks[v]:
                continue
            marks[v] = True
            out[start + i] = v
            i += 1
        for i in range(k):
            v = out[start + i]
            marks[v] = False
            if excluded >= 0 and v >= excluded:
                out[start + i] = v + 1
    else:
        # perm[:n_eligible] is the identity; swap slot i with a uniform slot j in [i, n_eligible).
        for i in range(k):
            r, pos, block = _next_below(seed, stream, key, _PARTNERS, pos, block, n_eligible - i)
            j = i + r
            v = perm[j]
            perm[j] = perm[i]
            perm[i] = v
            out[start + i] = v + 1 if excluded >= 0 and v >= excluded else v
        # Restore the identity in O(k) for the next key: the shuffle wrote slots 0..k-1 and slots
        # j >= k whose original value j was moved into the draws, so resetting slot i and slot
        # v_i for every draw v_i covers every written slot.
        for i in range(k):
            v = out[start + i]
            if excluded >= 0 and v > excluded:
                v -= 1
            perm[i] = i
            perm[v] = v


@numba.njit(cache=True)
def _scratch(n_pool: int, allow_multapses: bool) -> tuple[npt.NDArray[np.bool_], Int64Array]:
    if allow_multapses:
        return np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.int64)
    return np.zeros(n_pool, dtype=np.bool_), np.arange(n_pool, dtype=np.int64)


# Copies between arrays are written as loops in the kernels, not as ``a[:n] = b``: numba
# compiles a slice assignment with a shape check whose error message it formats at run time,
# and compiling that formatting (integer to string, concatenation) took about 2.4 s of a cold
# start, for a copy that LLVM turns into the same loop either way.


@numba.njit(cache=True)
def _grow(buffer: Int64Array, needed: int) -> Int64Array:
    """A copy of ``buffer`` with room for ``needed`` items and at least twice as long.

    Callers grow once per target or source, never inside a per-draw loop: reassigning an array
    there keeps numba from optimizing the loop and costs several times the draw itself.
    """
    bigger = np.empty(max(needed, 2 * buffer.shape[0]), dtype=np.int64)
    for i in range(buffer.shape[0]):  # not a slice assignment (see above)
        bigger[i] = buffer[i]
    return bigger


# ---------------------------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def all_to_all(
    target_gids: Int64Array, n_source: int, source_gid_offset: int, allow_autapses: bool
) -> tuple[Int64Array, Int64Array]:
    """Every source to every target (sources ascending), without the autapse unless allowed."""
    n_targets = target_gids.shape[0]
    indptr = np.zeros(n_targets + 1, dtype=np.int64)
    for i in range(n_targets):
        excluded = _excluded_local(target_gids[i], source_gid_offset, n_source, allow_autapses)
        indptr[i + 1] = indptr[i] + (n_source - 1 if excluded >= 0 else n_source)
    sources = np.empty(indptr[n_targets], dtype=np.int64)
    for i in range(n_targets):
        excluded = _excluded_local(target_gids[i], source_gid_offset, n_source, allow_autapses)
        at = indptr[i]
        for s in range(n_source):
            if s != excluded:
                sources[at] = s
                at += 1
    return indptr, sources


@numba.njit(cache=True)
def fixed_indegree(
    seed: IntLike,
    stream: IntLike,
    target_gids: Int64Array,
    n_source: int,
    source_gid_offset: int,
    indegree: int,
    allow_autapses: bool,
    allow_multapses: bool,
) -> tuple[Int64Array, Int64Array]:
    """Each target draws exactly ``indegree`` sources uniformly, keyed by its gid:
    :func:`fixed_total_number` with the same count for every target."""
    if indegree < 0:
        raise ValueError("fixed_indegree: indegree must be >= 0")
    counts = np.full(target_gids.shape[0], indegree, dtype=np.int64)
    return fixed_total_number(seed, stream, target_gids, counts, n_source, source_gid_offset,
                              allow_autapses, allow_multapses)  # fmt: skip


@numba.njit(cache=True)
def pairwise_bernoulli(
    seed: IntLike,
    stream: IntLike,
    target_gids: Int64Array,
    n_source: int,
    source_gid_offset: int,
    p: float,
    allow_autapses: bool,
) -> tuple[Int64Array, Int64Array]:
    """Each (source, target) pair independently with probability ``p``; sources ascending.

    Geometric skipping: the gap to the next connected source is ``floor(ln(1 - u) / ln(1 - p))``
    with ``u`` uniform on ``[0, 1)`` (two words), so the cost is ``O(connections)``, not
    ``O(n_source)``. A skipped autapse is simply not emitted, which leaves every other pair's
    Bernoulli draw intact.
    """
    if not (0.0 <= p <= 1.0):
        raise ValueError("pairwise_bernoulli: p must be in [0, 1]")
    n_targets = target_gids.shape[0]
    indptr = np.zeros(n_targets + 1, dtype=np.int64)
    expected = n_targets * n_source * p
    sources = np.empty(int(expected + 6.0 * math.sqrt(expected) + 16.0), dtype=np.int64)
    n_written = 0
    log_q = math.log1p(-p) if p < 1.0 else -math.inf
    for i in range(n_targets):
        gid = target_gids[i]
        excluded = _excluded_local(gid, source_gid_offset, n_source, allow_autapses)
        if p > 0.0:
            # room for a full row up front keeps the reallocation out of the draw loop (see _grow)
            if n_written + n_source > sources.shape[0]:
                sources = _grow(sources, n_written + n_source)
            block = _empty_block()
            pos = ZERO
            s = -1.0
            while True:
                u, pos, block = _next_uniform(seed, stream, gid, _PARTNERS, pos, block)
                # 1 - u is exact for a 53-bit u, so log beats the slower log1p at no cost
                s += 1.0 + math.floor(math.log(1.0 - u) / log_q)
                if s >= n_source:
                    break
                local = np.int64(s)
                if local == excluded:
                    continue
                sources[n_written] = local
                n_written += 1
        indptr[i + 1] = n_written
    return indptr, sources[:n_written].copy()


@numba.njit(cache=True)
def fixed_total_number(
    seed: IntLike,
    stream: IntLike,
    target_gids: Int64Array,
    counts: Int64Array,
    n_source: int,
    source_gid_offset: int,
    allow_autapses: bool,
    allow_multapses: bool,
) -> tuple[Int64Array, Int64Array]:
    """Target ``i`` draws ``counts[i]`` sources uniformly (keyed by its gid), as fixed_indegree.

    ``counts`` are this call's targets' entries of :func:`fixed_total_number_counts`. Without
    multapses each target draws without replacement, which is exactly "no repeated pair" for the
    whole projection; the counts must then come from the hypergeometric mode of
    :func:`fixed_total_number_counts` for the pairs to be uniform over all sets of distinct pairs.
    """
    n_targets = target_gids.shape[0]
    indptr = np.zeros(n_targets + 1, dtype=np.int64)
    for i in range(n_targets):
        if counts[i] < 0:
            raise ValueError("fixed_total_number: counts must be >= 0")
        indptr[i + 1] = indptr[i] + counts[i]
    sources = np.empty(indptr[n_targets], dtype=np.int64)
    marks, perm = _scratch(n_source, allow_multapses)
    for i in range(n_targets):
        gid = target_gids[i]
        excluded = _excluded_local(gid, source_gid_offset, n_source, allow_autapses)
        _draw_partners(
            seed,
            stream,
            gid,
            n_source,
            excluded,
            counts[i],
            allow_multapses,
            sources,
            indptr[i],
            marks,
            perm,
        )
    return indptr, sources


@numba.njit(cache=True)
def fixed_outdegree_local(
    seed: IntLike,
    stream: IntLike,
    n_source: int,
    source_gid_offset: int,
    n_target: int,
    target_gid_offset: int,
    outdegree: int,
    allow_autapses: bool,
    allow_multapses: bool,
    target_lo: int,
    target_hi: int,
) -> tuple[Int64Array, Int64Array]:
    """Each source draws exactly ``outdegree`` targets uniformly, keyed by its SOURCE gid.

    Returns CSR by target over the population-local targets ``[target_lo, target_hi)`` only,
    sources ascending within a target. A target's sources depend on every source's draws, so every
    rank generates all ``n_source * outdegree`` draws and keeps its own: ``O(n_source *
    outdegree)`` time per rank, memory only for the kept connections.
    """
    if outdegree < 0:
        raise ValueError("fixed_outdegree: outdegree must be >= 0")
    if not (0 <= target_lo <= target_hi <= n_target):
        raise ValueError("fixed_outdegree: need 0 <= target_lo <= target_hi <= n_target")
    n_local = target_hi - target_lo
    drawn = np.empty(outdegree, dtype=np.int64)
    marks, perm = _scratch(n_target, allow_multapses)
    expected = n_source * outdegree * n_local / max(n_target, 1)
    kept_target = np.empty(int(expected + 6.0 * math.sqrt(expected) + 16.0), dtype=np.int64)
    kept_source = np.empty(kept_target.shape[0], dtype=np.int64)
    n_kept = 0
    for s in range(n_source):
        gid = source_gid_offset + s
        excluded = _excluded_local(gid, target_gid_offset, n_target, allow_autapses)
        _draw_partners(
            seed, stream, gid, n_target, excluded, outdegree, allow_multapses, drawn, 0, marks, perm
        )
        # room for all of this source's draws before the keep loop (see _grow)
        if n_kept + outdegree > kept_target.shape[0]:
            kept_target = _grow(kept_target, n_kept + outdegree)
            kept_source = _grow(kept_source, n_kept + outdegree)
        for i in range(outdegree):
            t = drawn[i]
            if target_lo <= t < target_hi:
                kept_target[n_kept] = t - target_lo
                kept_source[n_kept] = s
                n_kept += 1
    # counting sort by target; stable, so sources stay ascending within a target
    indptr = np.zeros(n_local + 1, dtype=np.int64)
    for c in range(n_kept):
        indptr[kept_target[c] + 1] += 1
    for t in range(n_local):
        indptr[t + 1] += indptr[t]
    fill = indptr[:-1].copy()
    sources = np.empty(n_kept, dtype=np.int64)
    for c in range(n_kept):
        t = kept_target[c]
        sources[fill[t]] = kept_source[c]
        fill[t] += 1
    return indptr, sources
