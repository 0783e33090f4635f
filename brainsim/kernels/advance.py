"""Advance every local neuron of a rank by one step.

A rank's neurons are laid out end to end, population after population, as struct-of-arrays
tables: ``state[rows, n_local]`` (see :data:`STATE_ROWS`: ``v``, then the model's further state),
``params[rows, n_local]`` (see :data:`PARAM_ROWS`) and per-neuron vectors (refractory counters,
external currents, spike scratch). A model variant uses a leading part of its model's rows
(LIF with delta synapses: ``v`` and five parameter rows; with alpha synapses all of them; a
parrot none), and the tables have as many rows as the rank's largest variant needs (none on a
rank of parrots), so each branch below reads only the rows of its own kind. ``pops[p]`` (columns
:data:`POP_COLUMNS`) says where population ``p`` starts, which model advances it and what it
samples. Population ``p``'s neurons are also columns ``col .. col + n`` of the rank's ring
buffers ``(n_slots, n_local)``.

One step (:func:`advance_step`): for each population, the model's step kernel reads the ring
buffer row ``step % n_slots``, the spikes become exchange keys ``(step - t0) * n_gids + gid``
(ascending: populations are in gid order and each kernel lists its spikes in ascending order),
the row is cleared, and due state samples are taken. External currents (``i_base`` plus DC and
noise stimuli) come first, from rank-wide tables: ``dc_meta[d] = (first_step, stop_step, lo,
hi)`` with targets ``dc_idx[lo:hi]`` (rank columns) and currents ``dc_amp[lo:hi]`` (pA, weight
applied); ``noise_meta[d] = (first_step, stop_step, lo, hi, stream)`` with ``noise_idx``,
``noise_gid`` and ``noise_val[j] = (mean_pA, std_pA, weight)``.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from brainsim.kernels.delivery import encode_spikes
from brainsim.kernels.izhikevich import izhikevich_step, izhikevich_step_ref
from brainsim.kernels.lif import (
    lif_alpha_step,
    lif_alpha_step_ref,
    lif_delta_step,
    lif_delta_step_ref,
    lif_exp_step,
    lif_exp_step_ref,
)
from brainsim.kernels.parrot import parrot_step, parrot_step_ref
from brainsim.kernels.rng import ZERO, normal4, normal4_ref

__all__ = [
    "FLAGS",
    "FLAG_CURRENT_PULSE",
    "FLAG_PUBLISHED_2003",
    "KINDS",
    "KIND_IZHIKEVICH",
    "KIND_LIF_ALPHA",
    "KIND_LIF_DELTA",
    "KIND_LIF_EXP",
    "KIND_PARROT",
    "PARAM_ROWS",
    "POP_COLUMNS",
    "STATE_ROWS",
    "advance_step",
    "advance_step_ref",
    "step_currents",
    "step_currents_ref",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

KIND_LIF_DELTA = 0
KIND_LIF_EXP = 1
KIND_IZHIKEVICH = 2
KIND_LIF_ALPHA = 3
KIND_PARROT = 4
KINDS = {
    "lif_delta_step": KIND_LIF_DELTA,
    "lif_exp_step": KIND_LIF_EXP,
    "izhikevich_step": KIND_IZHIKEVICH,
    "lif_alpha_step": KIND_LIF_ALPHA,
    "parrot_step": KIND_PARROT,
}
"""The kind code of each step kernel, by the name model declarations use
(:attr:`brainsim.models.Variant.kernel`)."""
FLAG_CURRENT_PULSE = 1
"""Izhikevich input is a current pulse (pA) rather than a voltage jump (mV)."""
FLAG_PUBLISHED_2003 = 2
"""Izhikevich integration in the published two half steps rather than Euler."""
FLAGS = {
    ("synapse", "current_pulse"): FLAG_CURRENT_PULSE,
    ("integration", "published_2003"): FLAG_PUBLISHED_2003,
}
"""The flag each (choice, option) of a model sets; a population's flags are their sum."""

POP_COLUMNS = (
    "kind",
    "col",
    "n",
    "first_gid",
    "flags",
    "sample_every",
    "sample_col",
    "sample_n",
    "sample_base",
)
"""Columns of the per-population table ``pops`` (int64): model kind, first rank column, neuron
count, gid of the first local neuron, model flags, and its samples: every ``sample_every`` steps
(0: never) the ``sample_n`` entries ``sample_col ..`` of ``sample_var`` / ``sample_idx`` (state
row, rank column) are written as one row at ``samples[sample_base + r * sample_n ..]``, ``r``
counted in ``rows[p]``."""

_KIND, _COL, _N, _GID, _FLAGS, _EVERY, _SCOL, _SN, _SBASE = range(len(POP_COLUMNS))

PARAM_ROWS = {
    "lif": ("p_mm", "p_me", "e_l_mV", "v_th_mV", "v_reset_mV", "p_ex", "p_in", "p_mex", "p_min",
            "p_21ex", "p_21in", "p_31ex", "p_31in", "psc_ex", "psc_in"),
    "izhikevich": ("a", "b", "c_mV", "d", "v_peak_mV"),
    "parrot": (),
}  # fmt: skip
"""Rows of the ``params`` table for each model, as the kernels below read them (LIF delta reads
the first 5, exponential the first 9, alpha all; see :mod:`brainsim.kernels.lif`; a parrot
none)."""

STATE_ROWS = {
    "lif": ("v", "i_syn_ex", "i_syn_in", "di_syn_ex", "di_syn_in"),
    "izhikevich": ("v", "u"),
    "parrot": (),
}
"""Rows of the ``state`` table for each model (LIF delta reads the first, exponential the first
3, alpha all, a parrot none); a sample's code is its row."""


@numba.njit(cache=True, nogil=True)
def step_currents(
    step: int,
    seed: int,
    i_base_pA: F64,
    i_ext_pA: F64,
    dc_meta: I64,
    dc_idx: I64,
    dc_amp: F64,
    noise_meta: I64,
    noise_idx: I64,
    noise_gid: I64,
    noise_val: F64,
    noise_cache: F64,
    noise_block: I64,
    noise: bool | None = True,
) -> None:
    """``i_ext = i_base`` plus every DC and noise stimulus active in ``step`` (``noise=None``
    compiles the noise part out: for tables without noise stimuli).

    Noise is ``(mean + std * z) * weight`` with ``z`` lane ``step % 4`` of
    :func:`~brainsim.kernels.rng.normal4` keyed by ``(seed, stream, gid, step // 4)``: a pure
    function of the step, computed once per four steps into ``noise_cache[j]`` (``noise_block[j]``
    says for which ``step // 4``; -1: none yet).
    """
    for i in range(i_ext_pA.shape[0]):
        i_ext_pA[i] = i_base_pA[i]
    for d in range(dc_meta.shape[0]):
        if dc_meta[d, 0] <= step < dc_meta[d, 1]:
            for j in range(dc_meta[d, 2], dc_meta[d, 3]):
                i_ext_pA[dc_idx[j]] += dc_amp[j]
    if noise is None:
        return
    for d in range(noise_meta.shape[0]):
        if noise_meta[d, 0] <= step < noise_meta[d, 1]:
            stream = noise_meta[d, 4]
            block, lane = step >> 2, step & 3
            for j in range(noise_meta[d, 2], noise_meta[d, 3]):
                if noise_block[j] != block:
                    z0, z1, z2, z3 = normal4(seed, stream, noise_gid[j], block)
                    noise_cache[j, 0], noise_cache[j, 1] = z0, z1
                    noise_cache[j, 2], noise_cache[j, 3] = z2, z3
                    noise_block[j] = block
                z = noise_cache[j, lane]
                i_ext_pA[noise_idx[j]] += (noise_val[j, 0] + noise_val[j, 1] * z) * noise_val[j, 2]


def step_currents_ref(
    step: int,
    seed: int,
    i_base_pA: F64,
    i_ext_pA: F64,
    dc_meta: I64,
    dc_idx: I64,
    dc_amp: F64,
    noise_meta: I64,
    noise_idx: I64,
    noise_gid: I64,
    noise_val: F64,
    noise_cache: F64,
    noise_block: I64,
) -> None:
    """Plain-Python reference of :func:`step_currents` (same operations, same order; it
    recomputes the normals and leaves the cache alone)."""
    i_ext_pA[:] = i_base_pA
    for first, stop, lo, hi in dc_meta.tolist():
        if first <= step < stop:
            for j in range(lo, hi):
                i_ext_pA[dc_idx[j]] += dc_amp[j]
    for first, stop, lo, hi, stream in noise_meta.tolist():
        if first <= step < stop:
            for j in range(lo, hi):
                z = normal4_ref(seed, stream, int(noise_gid[j]), step >> 2)[step & 3]
                mean, std, weight = (float(x) for x in noise_val[j])
                i_ext_pA[noise_idx[j]] += (mean + std * z) * weight


@numba.njit(cache=True, nogil=True)
def advance_step(
    step: int,
    t0: int,
    n_gids: int,
    dt_ms: float,
    pops: I64,
    state: F64,
    params: F64,
    refr: I64,
    t_ref_steps: I64,
    i_ext_pA: F64,
    spikes_out: I64,
    zeros: F64,
    buf_exc: F64,
    buf_inh: F64,
    sample_var: I64,
    sample_idx: I64,
    samples: npt.NDArray[np.float32],
    rows: I64,
    keys: I64,
    n_keys: int,
    lif_delta: bool | None = True,
    lif_exp: bool | None = True,
    lif_alpha: bool | None = True,
    izhikevich: bool | None = True,
    parrot: bool | None = True,
) -> int:
    """Advance every population by ``step`` (currents already in ``i_ext_pA``); append the
    spike keys relative to step ``t0`` to ``keys[n_keys:]`` and return the new key count.

    The last five arguments say which models' kernels are compiled in: ``None`` leaves that
    model out (numba prunes the branch before typing it, so its kernel is never compiled);
    every kind in ``pops`` must be included."""
    r = step % buf_exc.shape[0]
    for p in range(pops.shape[0]):
        kind, c, n = pops[p, _KIND], pops[p, _COL], pops[p, _N]
        h = c + n
        exc = buf_exc[r, c:h]
        sp = spikes_out[c:h]
        count = ZERO
        if parrot is not None and kind == KIND_PARROT:
            count = parrot_step(exc, sp)  # no state, no parameters
        elif lif_delta is not None and kind == KIND_LIF_DELTA:
            count = lif_delta_step(state[0, c:h], refr[c:h], exc, i_ext_pA[c:h],
                                   params[0, c:h], params[1, c:h], params[2, c:h],
                                   params[3, c:h], params[4, c:h], t_ref_steps[c:h],
                                   sp)  # fmt: skip
        elif lif_exp is not None and kind == KIND_LIF_EXP:
            inh = buf_inh[r, c:h]
            count = lif_exp_step(state[0, c:h], state[1, c:h], state[2, c:h], refr[c:h], exc,
                                 inh, i_ext_pA[c:h], params[0, c:h], params[1, c:h],
                                 params[5, c:h], params[6, c:h], params[7, c:h], params[8, c:h],
                                 params[2, c:h], params[3, c:h], params[4, c:h],
                                 t_ref_steps[c:h], sp)  # fmt: skip
            inh[:] = 0.0
        elif lif_alpha is not None and kind == KIND_LIF_ALPHA:
            inh = buf_inh[r, c:h]
            count = lif_alpha_step(state[0, c:h], state[1, c:h], state[2, c:h], state[3, c:h],
                                   state[4, c:h], refr[c:h], exc, inh, i_ext_pA[c:h],
                                   params[0, c:h], params[1, c:h], params[2, c:h],
                                   params[3, c:h], params[4, c:h], params[5, c:h],
                                   params[6, c:h], params[7, c:h], params[8, c:h],
                                   params[9, c:h], params[10, c:h], params[11, c:h],
                                   params[12, c:h], params[13, c:h], params[14, c:h],
                                   t_ref_steps[c:h], sp)  # fmt: skip
            inh[:] = 0.0
        elif izhikevich is not None and kind == KIND_IZHIKEVICH:
            pulse = (pops[p, _FLAGS] & FLAG_CURRENT_PULSE) != 0
            published = (pops[p, _FLAGS] & FLAG_PUBLISHED_2003) != 0
            count = izhikevich_step(state[0, c:h], state[1, c:h], exc if pulse else zeros[c:h],
                                    zeros[c:h] if pulse else exc, i_ext_pA[c:h], params[0, c:h],
                                    params[1, c:h], params[2, c:h], params[3, c:h],
                                    params[4, c:h], dt_ms, published, sp)  # fmt: skip
        n_keys = encode_spikes(keys, n_keys, sp, count, (step - t0) * n_gids + pops[p, _GID])
        exc[:] = 0.0
        every = pops[p, _EVERY]
        if every > 0 and (step + 1) % every == 0:
            m, first = pops[p, _SN], pops[p, _SCOL]
            base = pops[p, _SBASE] + rows[p] * m
            for j in range(m):
                samples[base + j] = state[sample_var[first + j], sample_idx[first + j]]
            rows[p] += 1
    return n_keys


def advance_step_ref(
    step: int,
    t0: int,
    n_gids: int,
    dt_ms: float,
    pops: I64,
    state: F64,
    params: F64,
    refr: I64,
    t_ref_steps: I64,
    i_ext_pA: F64,
    spikes_out: I64,
    zeros: F64,
    buf_exc: F64,
    buf_inh: F64,
    sample_var: I64,
    sample_idx: I64,
    samples: npt.NDArray[np.float32],
    rows: I64,
    keys: I64,
    n_keys: int,
) -> int:
    """Plain-Python reference of :func:`advance_step`, built on the models' numpy references."""
    r = step % buf_exc.shape[0]
    for p, (kind, c, n, gid, flags, every, first, m, sbase) in enumerate(pops.tolist()):
        h = c + n
        exc = buf_exc[r, c:h]
        rw = [state[j, c:h] for j in range(state.shape[0])]
        pr = [params[j, c:h] for j in range(params.shape[0])]
        sp = spikes_out[c:h]
        if kind == KIND_PARROT:
            count = parrot_step_ref(exc, sp)
        elif kind == KIND_LIF_DELTA:
            count = lif_delta_step_ref(rw[0], refr[c:h], exc, i_ext_pA[c:h], pr[0], pr[1], pr[2],
                                       pr[3], pr[4], t_ref_steps[c:h], sp)  # fmt: skip
        elif kind == KIND_LIF_EXP:
            count = lif_exp_step_ref(rw[0], rw[1], rw[2], refr[c:h], exc, buf_inh[r, c:h],
                                     i_ext_pA[c:h], pr[0], pr[1], pr[5], pr[6], pr[7], pr[8],
                                     pr[2], pr[3], pr[4], t_ref_steps[c:h], sp)  # fmt: skip
            buf_inh[r, c:h] = 0.0
        elif kind == KIND_LIF_ALPHA:
            count = lif_alpha_step_ref(rw[0], rw[1], rw[2], rw[3], rw[4], refr[c:h], exc,
                                       buf_inh[r, c:h], i_ext_pA[c:h], pr[0], pr[1], pr[2], pr[3],
                                       pr[4], pr[5], pr[6], pr[7], pr[8], pr[9], pr[10], pr[11],
                                       pr[12], pr[13], pr[14], t_ref_steps[c:h], sp)  # fmt: skip
            buf_inh[r, c:h] = 0.0
        else:
            pulse = bool(flags & FLAG_CURRENT_PULSE)
            count = izhikevich_step_ref(rw[0], rw[1], exc if pulse else zeros[c:h],
                                        zeros[c:h] if pulse else exc, i_ext_pA[c:h], pr[0], pr[1],
                                        pr[2], pr[3], pr[4], dt_ms,
                                        bool(flags & FLAG_PUBLISHED_2003), sp)  # fmt: skip
        for i in sp[:count].tolist():
            keys[n_keys] = (step - t0) * n_gids + gid + i
            n_keys += 1
        exc[:] = 0.0
        if every > 0 and (step + 1) % every == 0:
            base = sbase + int(rows[p]) * m
            for j in range(m):
                samples[base + j] = state[sample_var[first + j], sample_idx[first + j]]
            rows[p] += 1
    return n_keys
