"""Spike delivery: add the weights of arriving spikes into per-target ring buffers.

A projection is stored post-side as a CSR indexed by the *source's population-local index*:
``indptr[i]:indptr[i+1]`` are the synapses of source ``i`` on this rank. For each synapse,
``targets`` holds the rank-local target index and, when delays vary, the delay in the top 8 bits
(``target | delay_steps << 24``), so a synapse costs 4 bytes plus 4 for a float32 weight when
weights vary (a constant weight or delay is stored once). Delays above 255 steps use a separate
``uint16`` array instead.

Exchanged spikes arrive as sorted int64 *keys* ``step_in_interval * n_gids + gid``; delivering
them in key order, each source's synapses in stored order, makes every target's sum independent
of the decomposition (ARCHITECTURE.md, decision 3). A spike emitted in step ``s`` with delay ``d``
is added to ring-buffer row ``(s + d) % n_slots`` and is consumed by the update of step ``s + d``.
Positive weights go to ``buf_exc``, negative to ``buf_inh`` (pass the same buffer twice when the
target does not separate them).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

__all__ = [
    "DELAY_CONSTANT",
    "DELAY_PACKED",
    "DELAY_SEPARATE",
    "PACK_MAX_DELAY",
    "PACK_MAX_TARGET",
    "deliver",
    "deliver_ref",
    "encode_spikes",
]

DELAY_CONSTANT = 0
DELAY_PACKED = 1
DELAY_SEPARATE = 2
PACK_SHIFT = 24
PACK_MAX_TARGET = (1 << PACK_SHIFT) - 1
PACK_MAX_DELAY = 255


@numba.njit(cache=True, nogil=True)
def deliver(
    keys: npt.NDArray[np.int64],
    first_step: int,
    n_gids: int,
    source_gid_offset: int,
    n_sources: int,
    indptr: npt.NDArray[np.int64],
    targets: npt.NDArray[np.uint32],
    weights: npt.NDArray[np.float32],
    delays: npt.NDArray[np.uint16],
    delay_mode: int,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """Add every key's synaptic weights to ``buf_*[(step + delay) % n_slots, target]``.

    ``weights`` (and ``delays`` in :data:`DELAY_CONSTANT` mode) of length 1 mean "the same for
    every synapse". ``buf_*`` have shape ``(n_slots, n_local_targets)``. The inner loops are
    specialised by storage mode so that the common cases (one delay, one weight or one sign)
    are a plain gather-free scatter over the row of the arrival step.
    """
    n_slots = buf_exc.shape[0]
    const_w = weights.shape[0] == 1
    w0 = np.float64(weights[0])
    d0 = np.int64(delays[0])
    mask = np.uint32(PACK_MAX_TARGET)
    shift = np.uint32(PACK_SHIFT)
    for k in range(keys.shape[0]):
        key = keys[k]
        step_in = key // n_gids
        src = key - step_in * n_gids - source_gid_offset
        if src < 0 or src >= n_sources:
            continue
        step = first_step + step_in
        lo, hi = indptr[src], indptr[src + 1]
        if delay_mode == DELAY_CONSTANT:
            row = (step + d0) % n_slots
            if const_w:
                out = buf_exc[row] if w0 >= 0.0 else buf_inh[row]
                for j in range(lo, hi):
                    out[targets[j]] += w0
            else:
                exc, inh = buf_exc[row], buf_inh[row]
                for j in range(lo, hi):
                    w = np.float64(weights[j])
                    if w >= 0.0:
                        exc[targets[j]] += w
                    else:
                        inh[targets[j]] += w
        elif delay_mode == DELAY_PACKED:
            for j in range(lo, hi):
                packed = targets[j]
                row = (step + np.int64(packed >> shift)) % n_slots
                w = w0 if const_w else np.float64(weights[j])
                if w >= 0.0:
                    buf_exc[row, packed & mask] += w
                else:
                    buf_inh[row, packed & mask] += w
        else:
            for j in range(lo, hi):
                row = (step + np.int64(delays[j])) % n_slots
                w = w0 if const_w else np.float64(weights[j])
                if w >= 0.0:
                    buf_exc[row, targets[j]] += w
                else:
                    buf_inh[row, targets[j]] += w


def deliver_ref(
    keys: npt.NDArray[np.int64],
    first_step: int,
    n_gids: int,
    source_gid_offset: int,
    n_sources: int,
    indptr: npt.NDArray[np.int64],
    targets: npt.NDArray[np.uint32],
    weights: npt.NDArray[np.float32],
    delays: npt.NDArray[np.uint16],
    delay_mode: int,
    buf_exc: npt.NDArray[np.float64],
    buf_inh: npt.NDArray[np.float64],
) -> None:
    """Plain-Python reference of :func:`deliver` (same operations, same order)."""
    n_slots = buf_exc.shape[0]
    for key in keys.tolist():
        step_in, gid = divmod(int(key), n_gids)
        src = gid - source_gid_offset
        if not 0 <= src < n_sources:
            continue
        for j in range(int(indptr[src]), int(indptr[src + 1])):
            packed = int(targets[j])
            if delay_mode == DELAY_PACKED:
                tgt, d = packed & PACK_MAX_TARGET, packed >> PACK_SHIFT
            elif delay_mode == DELAY_SEPARATE:
                tgt, d = packed, int(delays[j])
            else:
                tgt, d = packed, int(delays[0])
            w = float(weights[0] if weights.shape[0] == 1 else weights[j])
            row = (first_step + step_in + d) % n_slots
            if w >= 0.0:
                buf_exc[row, tgt] += w
            else:
                buf_inh[row, tgt] += w


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
