"""The step loop in one numba call: many exchange intervals without returning to Python.

Each interval ``[t, t + k)`` (``k``: the minimum delay in steps; the last interval may be
shorter) does, in this order:

1. the interval's Poisson drive and spike-train input into the ring buffers
   (:func:`~brainsim.kernels.stimuli.poisson_drive`; the spike-train schedule from ``cursor``);
2. for every step: external currents (:func:`~brainsim.kernels.advance.step_currents`), then
   every population (:func:`~brainsim.kernels.advance.advance_step`), which appends the spike
   keys ``(step - t) * n_gids + gid``;
3. the exchange: with one rank the keys are already sorted; with several, ``MPI_Allgather`` of
   the counts and ``MPI_Allgatherv`` of the keys, called through the function pointers of
   :class:`~brainsim.exchange.NativeExchange`, then a sort;
4. negative keys are control messages (stop, flush; they sort first), the rest are delivered
   (:func:`~brainsim.kernels.delivery.deliver_all`) and appended to ``pending`` as absolute keys
   ``step * n_gids + gid`` for the recorder.

The control keys of ``control`` ride on the first interval's exchange. The call returns after
the interval in which any rank sent a control key, once ``t >= t_end`` or after
``max_intervals`` intervals; ranks may return after different numbers of intervals because
every rank performs the same sequence of collectives, whichever call they fall in.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from brainsim.kernels.advance import advance_step, step_currents
from brainsim.kernels.delivery import deliver_all
from brainsim.kernels.stimuli import poisson_drive

__all__ = [
    "CONTROL_FLUSH",
    "CONTROL_STOP",
    "MPI_FAILED",
    "SAW_FLUSH",
    "SAW_STOP",
    "run_intervals",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

CONTROL_STOP = -2
CONTROL_FLUSH = -1
SAW_STOP = 1
"""Bit of the returned control word: some rank asked to stop."""
SAW_FLUSH = 2
"""Bit of the returned control word: rank 0 asked for a flush."""
MPI_FAILED = 4
"""Bit of the returned control word: an MPI call returned an error code."""


@numba.njit(cache=True, nogil=True)
def run_intervals(
    t0: int,
    t_end: int,
    n_steps: int,
    k: int,
    max_intervals: int,
    n_gids: int,
    seed: int,
    dt_ms: float,
    control: I64,
    pops: I64,
    state: F64,
    params: F64,
    refr: I64,
    t_ref_steps: I64,
    i_base_pA: F64,
    i_ext_pA: F64,
    spikes_out: I64,
    zeros: F64,
    dc_meta: I64,
    dc_idx: I64,
    dc_amp: F64,
    noise_meta: I64,
    noise_idx: I64,
    noise_gid: I64,
    noise_val: F64,
    noise_cache: F64,
    noise_block: I64,
    sample_var: I64,
    sample_idx: I64,
    samples: npt.NDArray[np.float32],
    rows: I64,
    po_segments: I64,
    po_gids: I64,
    po_columns: I64,
    po_lam: F64,
    po_table_of: I64,
    po_cdf: F64,
    po_guide: I64,
    po_weight: F64,
    po_words: npt.NDArray[np.uint32],
    po_block: I64,
    sched_steps: I64,
    sched_cols: I64,
    sched_w: F64,
    cursor: int,
    pop_gid_bounds: I64,
    by_source_ptr: I64,
    by_source: I64,
    meta: I64,
    const_weight: F64,
    indptrs: I64,
    targets: npt.NDArray[np.uint32],
    targets16: npt.NDArray[np.uint16],
    weights: npt.NDArray[np.float32],
    delays: npt.NDArray[np.uint16],
    delays8: npt.NDArray[np.uint8],
    buf_exc: F64,
    buf_inh: F64,
    keys: I64,
    pending: I64,
    n_pending: int,
    n_ranks: int,
    allgather: Any,
    allgatherv: Any,
    comm: int,
    int64_type: int,
    counts: I64,
    counts32: npt.NDArray[np.int32],
    displs32: npt.NDArray[np.int32],
    recv: I64,
) -> tuple[int, int, I64, I64, int, int]:
    """Run intervals from step ``t0`` (see the module docstring).

    Returns ``(t, n_pending, pending, recv, cursor, control)``: the first step not yet
    simulated, the pending key count and the (possibly grown) pending and receive buffers, the
    spike-train cursor and the bits :data:`SAW_STOP` / :data:`SAW_FLUSH` / :data:`MPI_FAILED`.
    """
    n_slots = buf_exc.shape[0]
    t = t0
    done = 0
    seen = 0
    while t < t_end and t < n_steps and done < max_intervals:
        t1 = min(t + k, n_steps)
        poisson_drive(seed, po_segments, po_gids, po_columns, po_lam, po_table_of, po_cdf,
                      po_guide, po_weight, t, t1 - t, buf_exc, buf_inh, po_words,
                      po_block)  # fmt: skip
        while cursor < sched_steps.shape[0] and sched_steps[cursor] < t1:
            row = sched_steps[cursor] % n_slots
            if sched_w[cursor] >= 0.0:
                buf_exc[row, sched_cols[cursor]] += sched_w[cursor]
            else:
                buf_inh[row, sched_cols[cursor]] += sched_w[cursor]
            cursor += 1
        n_keys = 0
        if done == 0:
            for c in range(control.shape[0]):
                keys[n_keys] = control[c]
                n_keys += 1
        for step in range(t, t1):
            step_currents(step, seed, i_base_pA, i_ext_pA, dc_meta, dc_idx, dc_amp, noise_meta,
                          noise_idx, noise_gid, noise_val, noise_cache, noise_block)  # fmt: skip
            n_keys = advance_step(step, t, n_gids, dt_ms, pops, state, params, refr,
                                  t_ref_steps, i_ext_pA, spikes_out, zeros, buf_exc, buf_inh,
                                  sample_var, sample_idx, samples, rows, keys,
                                  n_keys)  # fmt: skip
        if n_ranks == 1:
            got = keys[:n_keys]
        else:
            counts[n_ranks] = n_keys  # the send slot, after the n_ranks receive slots
            rc = allgather(counts[n_ranks:].ctypes.data, 1, int64_type, counts.ctypes.data, 1,
                           int64_type, comm)  # fmt: skip
            total = 0
            for r in range(n_ranks):
                counts32[r] = counts[r]
                displs32[r] = total
                total += counts[r]
            if total > recv.shape[0]:
                recv = np.empty(max(total, 2 * recv.shape[0]), dtype=np.int64)
            rc |= allgatherv(keys.ctypes.data, n_keys, int64_type, recv.ctypes.data,
                             counts32.ctypes.data, displs32.ctypes.data, int64_type,
                             comm)  # fmt: skip
            if rc != 0:
                return t, n_pending, pending, recv, cursor, seen | MPI_FAILED
            got = recv[:total]
            got.sort()
        n_control = 0
        while n_control < got.shape[0] and got[n_control] < 0:
            seen |= SAW_STOP if got[n_control] == CONTROL_STOP else SAW_FLUSH
            n_control += 1
        spikes = got[n_control:]
        deliver_all(spikes, t, n_gids, pop_gid_bounds, by_source_ptr, by_source, meta,
                    const_weight, indptrs, targets, targets16, weights, delays, delays8, buf_exc,
                    buf_inh)  # fmt: skip
        m = spikes.shape[0]
        if n_pending + m > pending.shape[0]:
            grown = np.empty(max(n_pending + m, 2 * pending.shape[0]), dtype=np.int64)
            grown[:n_pending] = pending[:n_pending]
            pending = grown
        base = t * n_gids
        for j in range(m):
            pending[n_pending + j] = spikes[j] + base
        n_pending += m
        t = t1
        done += 1
        if n_control > 0:
            break
    return t, n_pending, pending, recv, cursor, seen
