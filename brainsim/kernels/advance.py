"""Advance one population over a run of steps in a single call.

Within an exchange interval no population needs another's spikes, so the engine can hand a
whole run of steps to numba at once: for each step, set the external current (``i_e`` plus DC
and noise stimuli), call the model's step kernel on the ring-buffer row of that step, append the
spikes as exchange keys, and clear the row. One call per population and interval replaces
several Python-level calls per step, whose dispatch overhead does not shrink as ranks are added.

Current stimuli come as flat tables: ``dc_meta[d] = (first_step, stop_step, lo, hi)`` with
targets ``dc_idx[lo:hi]`` (local indices) and currents ``dc_amp[lo:hi]`` (pA, weight applied);
``noise_meta[d] = (first_step, stop_step, lo, hi, stream)`` with ``noise_idx``, ``noise_gid`` and
``noise_val[j] = (mean_pA, std_pA, weight)``. The ring buffers are the rank's, shape
``(n_slots, n_local)``; the population's neurons are columns ``col .. col + n``.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from brainsim.kernels.delivery import encode_spikes
from brainsim.kernels.izhikevich import izhikevich_step
from brainsim.kernels.lif import lif_delta_step, lif_exp_step
from brainsim.kernels.rng import normal, normal_ref

__all__ = [
    "advance_izhikevich",
    "advance_lif_delta",
    "advance_lif_exp",
    "step_currents",
    "step_currents_ref",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


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
) -> None:
    """``i_ext = i_base`` plus every DC and noise stimulus active in ``step``.

    Noise is ``(mean + std * z) * weight`` with ``z`` the standard normal keyed by
    ``(seed, stream, gid, step)``.
    """
    for i in range(i_ext_pA.shape[0]):
        i_ext_pA[i] = i_base_pA[i]
    for d in range(dc_meta.shape[0]):
        if dc_meta[d, 0] <= step < dc_meta[d, 1]:
            for j in range(dc_meta[d, 2], dc_meta[d, 3]):
                i_ext_pA[dc_idx[j]] += dc_amp[j]
    for d in range(noise_meta.shape[0]):
        if noise_meta[d, 0] <= step < noise_meta[d, 1]:
            stream = noise_meta[d, 4]
            for j in range(noise_meta[d, 2], noise_meta[d, 3]):
                z = normal(seed, stream, noise_gid[j], step, 0)
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
) -> None:
    """Plain-Python reference of :func:`step_currents` (same operations, same order)."""
    i_ext_pA[:] = i_base_pA
    for first, stop, lo, hi in dc_meta.tolist():
        if first <= step < stop:
            for j in range(lo, hi):
                i_ext_pA[dc_idx[j]] += dc_amp[j]
    for first, stop, lo, hi, stream in noise_meta.tolist():
        if first <= step < stop:
            for j in range(lo, hi):
                z = normal_ref(seed, stream, int(noise_gid[j]), step, 0)
                mean, std, weight = (float(x) for x in noise_val[j])
                i_ext_pA[noise_idx[j]] += (mean + std * z) * weight


@numba.njit(cache=True, nogil=True)
def _sample(
    step: int,
    every: int,
    var: I64,
    idx: I64,
    first: F64,
    second: F64,
    third: F64,
    samples: npt.NDArray[np.float32],
    n_rows: int,
) -> int:
    """After ``step``: if a sample is due, store ``(first, second, third)[var[j]][idx[j]]``."""
    if every <= 0 or (step + 1) % every != 0:
        return n_rows
    for j in range(idx.shape[0]):
        code = var[j]
        i = idx[j]
        samples[n_rows, j] = first[i] if code == 0 else second[i] if code == 1 else third[i]
    return n_rows + 1


@numba.njit(cache=True, nogil=True)
def advance_lif_delta(
    first: int,
    last: int,
    interval_start: int,
    key_base: int,
    n_gids: int,
    seed: int,
    buf: F64,
    col: int,
    v: F64,
    refr: I64,
    p_mm: F64,
    p_me: F64,
    e_l_mV: F64,
    v_th_mV: F64,
    v_reset_mV: F64,
    t_ref_steps: I64,
    spikes_out: I64,
    i_base_pA: F64,
    i_ext_pA: F64,
    dc_meta: I64,
    dc_idx: I64,
    dc_amp: F64,
    noise_meta: I64,
    noise_idx: I64,
    noise_gid: I64,
    noise_val: F64,
    sample_every: int,
    sample_var: I64,
    sample_idx: I64,
    samples: npt.NDArray[np.float32],
    keys: I64,
    n_keys: int,
) -> tuple[int, int]:
    """Steps ``first .. last - 1`` of a LIF delta population.

    A spike of local neuron ``i`` in step ``s`` becomes the key
    ``(s - interval_start) * n_gids + key_base + i``. After every step ``s`` with
    ``(s + 1) % sample_every == 0`` (when ``sample_every > 0``), row ``r`` of ``samples`` gets
    the state ``sample_var[j]`` (0: ``v``; the other models: 1, 2 their further state) of neuron
    ``sample_idx[j]``. Returns ``(key count, sample rows written)``.
    """
    n = v.shape[0]
    n_slots = buf.shape[0]
    n_rows = 0
    for step in range(first, last):
        step_currents(step, seed, i_base_pA, i_ext_pA, dc_meta, dc_idx, dc_amp, noise_meta,
                      noise_idx, noise_gid, noise_val)  # fmt: skip
        row = buf[step % n_slots, col : col + n]
        count = lif_delta_step(v, refr, row, i_ext_pA, p_mm, p_me, e_l_mV, v_th_mV, v_reset_mV,
                               t_ref_steps, spikes_out)  # fmt: skip
        n_keys = encode_spikes(keys, n_keys, spikes_out, count,
                       (step - interval_start) * n_gids + key_base)  # fmt: skip
        row[:] = 0.0
        n_rows = _sample(step, sample_every, sample_var, sample_idx, v, v, v, samples, n_rows)
    return n_keys, n_rows


@numba.njit(cache=True, nogil=True)
def advance_lif_exp(
    first: int,
    last: int,
    interval_start: int,
    key_base: int,
    n_gids: int,
    seed: int,
    buf_exc: F64,
    buf_inh: F64,
    col: int,
    v: F64,
    i_ex: F64,
    i_in: F64,
    refr: I64,
    p_mm: F64,
    p_me: F64,
    p_ex: F64,
    p_in: F64,
    p_mex: F64,
    p_min: F64,
    e_l_mV: F64,
    v_th_mV: F64,
    v_reset_mV: F64,
    t_ref_steps: I64,
    spikes_out: I64,
    i_base_pA: F64,
    i_ext_pA: F64,
    dc_meta: I64,
    dc_idx: I64,
    dc_amp: F64,
    noise_meta: I64,
    noise_idx: I64,
    noise_gid: I64,
    noise_val: F64,
    sample_every: int,
    sample_var: I64,
    sample_idx: I64,
    samples: npt.NDArray[np.float32],
    keys: I64,
    n_keys: int,
) -> tuple[int, int]:
    """Steps ``first .. last - 1`` of a LIF population with exponential current synapses
    (sample codes 0: ``v``, 1: ``i_syn_ex``, 2: ``i_syn_in``; see :func:`advance_lif_delta`)."""
    n = v.shape[0]
    n_slots = buf_exc.shape[0]
    n_rows = 0
    for step in range(first, last):
        step_currents(step, seed, i_base_pA, i_ext_pA, dc_meta, dc_idx, dc_amp, noise_meta,
                      noise_idx, noise_gid, noise_val)  # fmt: skip
        r = step % n_slots
        exc = buf_exc[r, col : col + n]
        inh = buf_inh[r, col : col + n]
        count = lif_exp_step(v, i_ex, i_in, refr, exc, inh, i_ext_pA, p_mm, p_me, p_ex, p_in,
                             p_mex, p_min, e_l_mV, v_th_mV, v_reset_mV, t_ref_steps,
                             spikes_out)  # fmt: skip
        n_keys = encode_spikes(keys, n_keys, spikes_out, count,
                       (step - interval_start) * n_gids + key_base)  # fmt: skip
        exc[:] = 0.0
        inh[:] = 0.0
        n_rows = _sample(step, sample_every, sample_var, sample_idx, v, i_ex, i_in, samples,
                         n_rows)  # fmt: skip
    return n_keys, n_rows


@numba.njit(cache=True, nogil=True)
def advance_izhikevich(
    first: int,
    last: int,
    interval_start: int,
    key_base: int,
    n_gids: int,
    seed: int,
    buf: F64,
    col: int,
    current_pulse: bool,
    v: F64,
    u: F64,
    a: F64,
    b: F64,
    c_mV: F64,
    d: F64,
    v_peak_mV: F64,
    dt_ms: float,
    published_2003: bool,
    zeros: F64,
    spikes_out: I64,
    i_base_pA: F64,
    i_ext_pA: F64,
    dc_meta: I64,
    dc_idx: I64,
    dc_amp: F64,
    noise_meta: I64,
    noise_idx: I64,
    noise_gid: I64,
    noise_val: F64,
    sample_every: int,
    sample_var: I64,
    sample_idx: I64,
    samples: npt.NDArray[np.float32],
    keys: I64,
    n_keys: int,
) -> tuple[int, int]:
    """Steps ``first .. last - 1`` of an Izhikevich population.

    The ring buffer holds current pulses (pA) when ``current_pulse``, voltage jumps (mV)
    otherwise; ``zeros`` (length n, never written) stands for the unused input. Sample codes
    0: ``v``, 1: ``u`` (see :func:`advance_lif_delta`).
    """
    n = v.shape[0]
    n_slots = buf.shape[0]
    n_rows = 0
    for step in range(first, last):
        step_currents(step, seed, i_base_pA, i_ext_pA, dc_meta, dc_idx, dc_amp, noise_meta,
                      noise_idx, noise_gid, noise_val)  # fmt: skip
        row = buf[step % n_slots, col : col + n]
        in_pa = row if current_pulse else zeros
        in_mv = zeros if current_pulse else row
        count = izhikevich_step(v, u, in_pa, in_mv, i_ext_pA, a, b, c_mV, d, v_peak_mV, dt_ms,
                                published_2003, spikes_out)  # fmt: skip
        n_keys = encode_spikes(keys, n_keys, spikes_out, count,
                       (step - interval_start) * n_gids + key_base)  # fmt: skip
        row[:] = 0.0
        n_rows = _sample(step, sample_every, sample_var, sample_idx, v, u, u, samples, n_rows)
    return n_keys, n_rows
