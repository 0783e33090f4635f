"""Random spike drive kernels: Poisson stimuli and rate encoders over an exchange interval.

Random draws are keyed by ``(seed, stream, gid, step)`` (one stream per stimulus), so the input a
neuron receives does not depend on which rank simulates it. The drive is generated for a
whole exchange interval at once and adds ``count * weight`` to the neuron's ring-buffer rows
(positive weights to ``buf_exc``, negative to ``buf_inh``). :func:`poisson_drive` serves
``poisson`` stimuli (one constant rate per target); :func:`rate_drive` serves ``rate`` encoders,
whose rate changes with the sample shown. Current stimuli (DC, noise) are applied step by step
in :mod:`brainsim.kernels.advance`.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import numpy.typing as npt

from brainsim.kernels.rng import (
    POISSON_INVERSION_MAX_LAM,
    philox_words,
    philox_words_ref,
    poisson,
    poisson_ref,
    uniform01,
    uniform01_ref,
)

__all__ = [
    "GUIDE_BITS",
    "MODE_BERNOULLI",
    "MODE_POISSON",
    "POISSON_TABLE_LENGTH",
    "RATE_META_COLUMNS",
    "poisson_cdf_tables",
    "poisson_drive",
    "poisson_drive_ref",
    "rate_drive",
    "rate_drive_ref",
]


POISSON_TABLE_LENGTH = 64
GUIDE_BITS = 10

MODE_BERNOULLI = 0
"""Rate encoder mode: at most one spike per step, with probability ``lam``."""
MODE_POISSON = 1
"""Rate encoder mode: a Poisson(``lam``) count per step."""
RATE_META_COLUMNS = 8
"""Columns of a rate encoder segment: ``lo, hi, stream, delay_steps, mode, lam_lo, show_lo,
show_hi`` (see :func:`rate_drive`)."""


def poisson_cdf_tables(
    lam: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Cumulative Poisson probabilities for each distinct ``lam`` below the inversion limit.

    Returns ``(table_of, cdf, guide)``: neuron ``i`` uses row ``table_of[i]`` of ``cdf``
    (``-1`` when its ``lam`` is too large for inversion). ``cdf[t, k] = P(X <= k)``, computed by
    the recursion ``P(k) = P(k-1) lam / k``; the last column is 1 so a search always ends.
    ``guide[t, j]`` is the number of ``k`` with ``cdf[t, k] <= j / 2**GUIDE_BITS`` (the guide
    table of Chen & Asau, 1974): a uniform ``u`` in bucket ``j`` has at least that count, so the
    sequential search may start there and gives the same result in about one comparison.
    """
    small = lam < POISSON_INVERSION_MAX_LAM
    values, inverse = np.unique(lam[small], return_inverse=True)
    table_of = np.full(lam.shape[0], -1, dtype=np.int64)
    table_of[small] = inverse
    cdf = np.ones((max(values.shape[0], 1), POISSON_TABLE_LENGTH), dtype=np.float64)
    for t, value in enumerate(values.tolist()):
        p = np.exp(-value)
        cumulative = p
        for k in range(POISSON_TABLE_LENGTH - 1):
            cdf[t, k] = cumulative
            p *= value / (k + 1)
            cumulative += p
    buckets = np.arange(1 << GUIDE_BITS, dtype=np.float64) / (1 << GUIDE_BITS)
    guide = np.stack([np.searchsorted(row, buckets, side="right") for row in cdf])
    return table_of, cdf, np.minimum(guide, POISSON_TABLE_LENGTH - 1).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def poisson_drive(
    seed: int,
    segments: npt.NDArray[np.int64],
    gids: npt.NDArray[np.int64],
    local_idx: npt.NDArray[np.int64],
    lam: npt.NDArray[np.float64],
    table_of: npt.NDArray[np.int64],
    cdf: npt.NDArray[np.float64],
    guide: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    first_step: int,
    n_steps: int,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
    words: npt.NDArray[np.uint32],
    block: npt.NDArray[np.int64],
) -> None:
    """Poisson input of steps ``first_step .. first_step + n_steps - 1`` into the ring buffers.

    Targets come in segments, one per stimulus: ``segments[d] = (lo, hi, stream, delay_steps,
    draw_lo, draw_hi)`` covers targets ``lo .. hi - 1``. Target ``i`` receives, in step ``s``,
    ``count * weight[i]`` where ``count`` is Poisson(``lam[i]``) keyed by the generation step
    ``g = s - delay_steps`` (only for ``draw_lo <= g < draw_hi``). For ``lam < 10`` one
    Philox call yields the 32-bit uniforms of
    four consecutive generation steps (word ``g % 4`` of the words keyed by index ``g // 4``),
    inverted by searching the target's row of :func:`poisson_cdf_tables` from its guide entry
    (probabilities below 2**-32 are not resolved); larger ``lam`` uses
    :func:`~brainsim.kernels.rng.poisson` keyed by ``g``.

    ``words[i]`` keeps target ``i``'s four words of index ``block[i]`` (-1: none yet) from one
    call to the next, so that a loop that exchanges every step (one step per call) still makes
    one Philox call per four steps. The cache changes no value.
    """
    for d in range(segments.shape[0]):
        lo, hi, stream = segments[d, 0], segments[d, 1], segments[d, 2]
        delay_steps, draw_lo, draw_hi = segments[d, 3], segments[d, 4], segments[d, 5]
        if first_step - delay_steps >= draw_hi or first_step + n_steps - delay_steps <= draw_lo:
            continue
        _drive_segment(seed, stream, delay_steps, draw_lo, draw_hi, lo, hi, gids, local_idx,
                       lam, table_of, cdf, guide, weight, first_step, n_steps, buf_exc,
                       buf_inh, words, block)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _drive_segment(
    seed: int,
    stream: int,
    delay_steps: int,
    draw_lo: int,
    draw_hi: int,
    lo: int,
    hi: int,
    gids: npt.NDArray[np.int64],
    local_idx: npt.NDArray[np.int64],
    lam: npt.NDArray[np.float64],
    table_of: npt.NDArray[np.int64],
    cdf: npt.NDArray[np.float64],
    guide: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    first_step: int,
    n_steps: int,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
    words: npt.NDArray[np.uint32],
    block: npt.NDArray[np.int64],
) -> None:
    # Unsigned indices in the per-step work (numba adds no wraparound to them); the ring-buffer
    # row follows the step by an increment, not a division per draw.
    n_slots = np.uint64(buf_exc.shape[0])
    scale = 2.0**-32
    last = np.uint64(cdf.shape[1] - 1)
    guide_shift = np.uint32(32 - GUIDE_BITS)
    # Steps of the call whose generation step is drawn: draw_lo <= s - delay_steps < draw_hi.
    s_lo = max(first_step, draw_lo + delay_steps)
    s_hi = min(first_step + n_steps, draw_hi + delay_steps)
    if s_lo >= s_hi:
        return
    first_row = np.uint64(s_lo % buf_exc.shape[0])
    for i in range(lo, hi):
        gid = gids[i]
        target = np.uint64(local_idx[i])
        w = weight[i]
        table = table_of[i]
        u_table = np.uint64(max(table, 0))
        row = first_row
        for s in range(s_lo, s_hi):
            g = s - delay_steps
            count = np.uint64(0)
            if table >= 0:
                b = g >> 2
                if block[i] != b:
                    w0, w1, w2, w3 = philox_words(seed, stream, gid, b, np.int64(0))
                    words[i, 0], words[i, 1], words[i, 2], words[i, 3] = w0, w1, w2, w3
                    block[i] = b
                word = words[i, g & 3]
                u = float(word) * scale
                count = np.uint64(guide[u_table, word >> guide_shift])
                while count < last and u >= cdf[u_table, count]:
                    count += np.uint64(1)
            else:
                count = np.uint64(poisson(seed, stream, gid, g, lam[i]))
            if count > 0:
                if w >= 0.0:
                    buf_exc[row, target] += float(count) * w
                else:
                    buf_inh[row, target] += float(count) * w
            row += np.uint64(1)
            if row == n_slots:
                row = np.uint64(0)


def poisson_drive_ref(
    seed: int,
    segments: npt.NDArray[np.int64],
    gids: npt.NDArray[np.int64],
    local_idx: npt.NDArray[np.int64],
    lam: npt.NDArray[np.float64],
    table_of: npt.NDArray[np.int64],
    cdf: npt.NDArray[np.float64],
    guide: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    first_step: int,
    n_steps: int,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """Plain-Python reference of :func:`poisson_drive`."""
    n_slots = buf_exc.shape[0]
    last = cdf.shape[1] - 1
    for lo, hi, stream, delay_steps, draw_lo, draw_hi in segments.tolist():
        for i, s in itertools.product(range(lo, hi), range(first_step, first_step + n_steps)):
            g = s - delay_steps
            if g < draw_lo or g >= draw_hi:
                continue
            if table_of[i] >= 0:
                word = philox_words_ref(seed, stream, int(gids[i]), g >> 2, 0)[g & 3]
                u = float(word) * 2.0**-32
                count = int(guide[table_of[i], word >> (32 - GUIDE_BITS)])
                while count < last and u >= cdf[table_of[i], count]:
                    count += 1
            else:
                count = poisson_ref(seed, stream, int(gids[i]), g, float(lam[i]))
            if count > 0:
                row = s % n_slots
                if weight[i] >= 0.0:
                    buf_exc[row, local_idx[i]] += count * weight[i]
                else:
                    buf_inh[row, local_idx[i]] += count * weight[i]


@numba.njit(cache=True, nogil=True)
def rate_drive(
    seed: int,
    meta: npt.NDArray[np.int64],
    gids: npt.NDArray[np.int64],
    local_idx: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    lam: npt.NDArray[np.float64],
    shows: npt.NDArray[np.int64],
    first_step: int,
    n_steps: int,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """Rate-encoder input of steps ``first_step .. first_step + n_steps - 1`` into the buffers.

    Targets come in segments, one per stimulus and population: ``meta[d] = (lo, hi, stream,
    delay_steps, mode, lam_lo, show_lo, show_hi)`` covers targets ``lo .. hi - 1`` (``n = hi -
    lo`` of them). Rows ``show_lo .. show_hi - 1`` of ``shows`` are the stimulus' presentations
    ``(onset, end, sample)`` in steps, ascending and disjoint: sample ``sample`` is drawn in
    generation steps ``onset <= g < end``, target ``lo + j`` with the expected count per step
    ``lam[lam_lo + sample * n + j]``. A draw of generation step ``g`` arrives in step
    ``g + delay_steps`` and adds ``count * weight`` there. ``mode`` :data:`MODE_BERNOULLI`:
    ``count = 1`` when the uniform ``u`` keyed by ``(seed, stream, gid, g)`` (sub 0, 53 bits)
    is below ``lam`` (snnTorch's ``spikegen.rate`` per step), else 0; :data:`MODE_POISSON`:
    ``count`` is :func:`~brainsim.kernels.rng.poisson` keyed the same way.
    """
    n_slots = buf_exc.shape[0]
    for d in range(meta.shape[0]):
        lo, hi, stream, delay_steps = meta[d, 0], meta[d, 1], meta[d, 2], meta[d, 3]
        mode, lam_lo, show_lo, show_hi = meta[d, 4], meta[d, 5], meta[d, 6], meta[d, 7]
        g_lo = first_step - delay_steps
        g_hi = first_step + n_steps - delay_steps
        # The first presentation that ends after g_lo (ends ascend as presentations are disjoint).
        a, b = show_lo, show_hi
        while a < b:
            mid = (a + b) // 2
            if shows[mid, 1] <= g_lo:
                a = mid + 1
            else:
                b = mid
        for v in range(a, show_hi):
            if shows[v, 0] >= g_hi:
                break
            s_lo = max(shows[v, 0], g_lo)
            s_hi = min(shows[v, 1], g_hi)
            base = lam_lo + shows[v, 2] * (hi - lo)
            for i in range(lo, hi):
                p = lam[base + i - lo]
                if p <= 0.0:
                    continue
                gid = gids[i]
                target = local_idx[i]
                w = weight[i]
                for g in range(s_lo, s_hi):
                    if mode == MODE_BERNOULLI:
                        count = 1.0 if uniform01(seed, stream, gid, g, np.int64(0)) < p else 0.0
                    else:
                        count = float(poisson(seed, stream, gid, g, p))
                    if count > 0.0:
                        row = (g + delay_steps) % n_slots
                        if w >= 0.0:
                            buf_exc[row, target] += count * w
                        else:
                            buf_inh[row, target] += count * w


def rate_drive_ref(
    seed: int,
    meta: npt.NDArray[np.int64],
    gids: npt.NDArray[np.int64],
    local_idx: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    lam: npt.NDArray[np.float64],
    shows: npt.NDArray[np.int64],
    first_step: int,
    n_steps: int,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """Plain-Python reference of :func:`rate_drive` (every step of the call, no search)."""
    n_slots = buf_exc.shape[0]
    for lo, hi, stream, delay_steps, mode, lam_lo, show_lo, show_hi in meta.tolist():
        for onset, end, sample in shows[show_lo:show_hi].tolist():
            for i, s in itertools.product(range(lo, hi), range(first_step, first_step + n_steps)):
                g = s - delay_steps
                p = float(lam[lam_lo + sample * (hi - lo) + i - lo])
                if g < onset or g >= end or p <= 0.0:
                    continue
                if mode == MODE_BERNOULLI:
                    u = uniform01_ref(seed, stream, int(gids[i]), g, 0)
                    count = 1 if u < p else 0
                else:
                    count = poisson_ref(seed, stream, int(gids[i]), g, p)
                if count > 0:
                    buffer = buf_exc if weight[i] >= 0.0 else buf_inh
                    buffer[s % n_slots, local_idx[i]] += count * weight[i]
