"""Spike delivery: kernel equals its reference, and lands every weight where and when it should."""

from __future__ import annotations

import numpy as np
import pytest

from brainsim.kernels.delivery import (
    DELAY_CONSTANT,
    DELAY_PACKED,
    DELAY_SEPARATE,
    PACK_SHIFT,
    deliver,
    deliver_ref,
    encode_spikes,
)


def _random_projection(rng: np.random.Generator, mode: int, const_w: bool):
    n_src, n_tgt, n_slots = 40, 30, 20
    counts = rng.integers(0, 8, n_src)
    indptr = np.zeros(n_src + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    targets = rng.integers(0, n_tgt, nnz).astype(np.uint32)
    delays_steps = rng.integers(1, 15, nnz)
    if mode == DELAY_PACKED:
        targets = targets | (delays_steps.astype(np.uint32) << np.uint32(PACK_SHIFT))
        delays = np.zeros(1, dtype=np.uint16)
    elif mode == DELAY_SEPARATE:
        delays = delays_steps.astype(np.uint16)
    else:
        delays = np.array([7], dtype=np.uint16)
    weights = (
        np.array([0.25], dtype=np.float32) if const_w else rng.normal(0, 1, nnz).astype(np.float32)
    )
    return n_src, n_tgt, n_slots, indptr, targets, weights, delays


@pytest.mark.parametrize("mode", [DELAY_CONSTANT, DELAY_PACKED, DELAY_SEPARATE])
@pytest.mark.parametrize("const_w", [True, False])
def test_kernel_equals_reference(mode: int, const_w: bool) -> None:
    rng = np.random.default_rng(7)
    n_src, n_tgt, n_slots, indptr, targets, weights, delays = _random_projection(rng, mode, const_w)
    n_gids, offset = 100, 20
    keys = np.sort(rng.integers(0, 3 * n_gids, 60)).astype(np.int64)
    a_exc = np.zeros((n_slots, n_tgt))
    a_inh = np.zeros((n_slots, n_tgt))
    b_exc, b_inh = a_exc.copy(), a_inh.copy()
    args = (keys, 5, n_gids, offset, n_src, indptr, targets, weights, delays, mode)
    deliver(*args, a_exc, a_inh)
    deliver_ref(*args, b_exc, b_inh)
    assert np.array_equal(a_exc, b_exc)
    assert np.array_equal(a_inh, b_inh)
    assert a_exc.sum() > 0
    if not const_w:
        assert a_inh.sum() < 0


def test_single_spike_lands_at_step_plus_delay() -> None:
    # Source 2 (gid 12) has synapses to targets 0 and 3 with delays 4 and 9 steps.
    indptr = np.array([0, 0, 0, 2, 2], dtype=np.int64)
    targets = np.array([0, 3], dtype=np.uint32)
    delays = np.array([4, 9], dtype=np.uint16)
    weights = np.array([0.5, -1.5], dtype=np.float32)
    exc = np.zeros((12, 5))
    inh = np.zeros((12, 5))
    n_gids = 50
    key = np.array([2 * n_gids + 12], dtype=np.int64)  # step 2 of the interval starting at 6
    deliver(key, 6, n_gids, 10, 4, indptr, targets, weights, delays, DELAY_SEPARATE, exc, inh)
    assert exc[(6 + 2 + 4) % 12, 0] == 0.5
    assert inh[(6 + 2 + 9) % 12, 3] == -1.5
    assert np.count_nonzero(exc) == 1
    assert np.count_nonzero(inh) == 1


def test_keys_outside_the_source_range_are_ignored() -> None:
    indptr = np.array([0, 1], dtype=np.int64)
    targets = np.array([0], dtype=np.uint32)
    buf = np.zeros((3, 1))
    keys = np.array([0, 2, 9], dtype=np.int64)  # gids 0, 2 and 9 (n_gids 10); source is gid 1
    deliver(keys, 0, 10, 1, 1, indptr, targets, np.ones(1, np.float32),
            np.ones(1, np.uint16), DELAY_CONSTANT, buf, buf)  # fmt: skip
    assert not buf.any()


def test_encode_spikes_appends_keys() -> None:
    keys = np.zeros(10, dtype=np.int64)
    n = encode_spikes(keys, 0, np.array([1, 4, 0], dtype=np.int64), 2, 100)
    n = encode_spikes(keys, n, np.array([3], dtype=np.int64), 1, 200)
    assert n == 3
    assert list(keys[:3]) == [101, 104, 203]
