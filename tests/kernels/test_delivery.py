"""Spike delivery: kernel equals its reference, and lands every weight where and when it should."""

from __future__ import annotations

import numpy as np
import pytest

from brainsim.kernels.delivery import (
    DELAY_CONSTANT,
    DELAY_DENSE,
    DELAY_NARROW,
    DELAY_NARROW_BYTE,
    DELAY_NARROW_SEPARATE,
    DELAY_PACKED,
    DELAY_SEPARATE,
    PACK_SHIFT,
    PREFETCH_AHEAD,
    deliver_all,
    deliver_all_ref,
    encode_spikes,
)

LONGEST_DELAY = 314
"""The longest delay of :func:`_plan` in steps; the engine's ring buffers have as many rows."""


def _projection(rng: np.random.Generator, n_src: int, n_tgt: int, mode: int, const_w: bool):
    # A dense projection's rows hold every target in order (and store none of them).
    counts = np.full(n_src, n_tgt) if mode == DELAY_DENSE else rng.integers(0, 8, n_src)
    indptr = np.zeros(n_src + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    targets = rng.integers(0, n_tgt, nnz).astype(np.uint32)
    if mode == DELAY_DENSE:
        targets = targets[:0]
    steps = rng.integers(1, 15, nnz)
    delays = np.zeros(0, dtype=np.uint16)
    if mode == DELAY_PACKED:
        targets = targets | (steps.astype(np.uint32) << np.uint32(PACK_SHIFT))
    elif mode in (DELAY_SEPARATE, DELAY_NARROW_SEPARATE):
        delays = (steps + 300).astype(np.uint16)  # beyond one byte, as these modes are for
    elif mode == DELAY_NARROW_BYTE:
        delays = steps.astype(np.uint8)
    weights = np.zeros(0, np.float32) if const_w else rng.normal(0, 1, nnz).astype(np.float32)
    return indptr, targets, weights, delays


def _plan(rng: np.random.Generator):
    """Two source populations (gids 0-29 and 30-49) onto two target column blocks; narrow
    projections' targets go to ``targets16``, the others' to ``targets``."""
    bounds = np.array([0, 30, 50], dtype=np.int64)
    # (source pop, gid offset, n_src, mode, const weight, delay, column offset, split)
    specs = [
        (0, 0, 30, DELAY_CONSTANT, 0.25, 7, 0, 0),
        (0, 0, 30, DELAY_PACKED, None, 0, 12, 1),
        (1, 30, 20, DELAY_SEPARATE, None, 0, 0, 0),
        (1, 30, 20, DELAY_CONSTANT, -1.5, 3, 12, 1),
        (0, 0, 30, DELAY_CONSTANT, None, 4, 12, 1),
        (1, 30, 20, DELAY_PACKED, -0.5, 0, 0, 0),
        (0, 0, 30, DELAY_NARROW, -0.75, 2, 12, 1),
        (1, 30, 20, DELAY_NARROW, None, 5, 0, 0),
        (1, 30, 20, DELAY_NARROW, None, 6, 12, 1),
        (0, 0, 30, DELAY_NARROW_BYTE, None, 0, 12, 1),
        (1, 30, 20, DELAY_NARROW_BYTE, 0.5, 0, 0, 0),
        (0, 0, 30, DELAY_NARROW_SEPARATE, -0.25, 0, 0, 0),
        (0, 0, 30, DELAY_DENSE, None, 3, 12, 1),
        (1, 30, 20, DELAY_DENSE, 0.75, 8, 0, 0),
        (1, 30, 20, DELAY_DENSE, -0.5, 2, 12, 1),
    ]
    parts = [_projection(rng, n, 12, mode, w is not None) for _, _, n, mode, w, *_ in specs]
    source_index = np.array([s[0] for s in specs])
    by_source = np.argsort(source_index, kind="stable").astype(np.int64)
    by_source_ptr = np.array([0, 7, 15], dtype=np.int64)
    narrow = [s[3] in (DELAY_NARROW, DELAY_NARROW_BYTE, DELAY_NARROW_SEPARATE) for s in specs]
    byte = [s[3] == DELAY_NARROW_BYTE for s in specs]
    # Each array's parts end to end; a projection's row points into the ones it uses.
    arrays: dict[str, list[np.ndarray]] = {
        "indptrs": [], "targets": [], "targets16": [], "weights": [], "delays": [], "delays8": []
    }  # fmt: skip

    def place(name: str, values: np.ndarray) -> int:
        start = sum(a.shape[0] for a in arrays[name])
        arrays[name].append(values)
        return start if values.shape[0] else -1

    rows = []
    for q, ((_, off, _, mode, _, d, col, split), (indptr, targets, weights, delays)) in enumerate(
        zip(specs, parts, strict=True)
    ):
        at_iptr = place("indptrs", indptr)
        at_syn = place("targets16" if narrow[q] else "targets", targets)
        at_syn = max(at_syn, 0)
        at_w = place("weights", weights)
        at_d = place("delays8" if byte[q] else "delays", delays)
        rows.append([off, mode, d, col, split, at_iptr, at_syn, at_w, at_d])
    const_w = np.array([0.0 if s[4] is None else s[4] for s in specs])
    dtypes = {"indptrs": np.int64, "targets": np.uint32, "targets16": np.uint16,
              "weights": np.float32, "delays": np.uint16, "delays8": np.uint8}  # fmt: skip
    flat = {name: np.concatenate(parts).astype(dtypes[name]) for name, parts in arrays.items()}
    return (bounds, by_source_ptr, by_source, np.array(rows, dtype=np.int64), const_w,
            flat["indptrs"], flat["targets"], flat["targets16"], flat["weights"], flat["delays"],
            flat["delays8"])  # fmt: skip


@pytest.mark.parametrize("n_slots", [LONGEST_DELAY, LONGEST_DELAY + 6])
def test_kernel_equals_reference_for_every_storage_mode(n_slots: int) -> None:
    # More keys than the prefetch distances, so that rows are prefetched, and keys near the end
    # of the list, whose prefetches would point past it.
    rng = np.random.default_rng(7)
    plan = _plan(rng)
    n_gids = 50
    keys = np.sort(rng.integers(0, 3 * n_gids, 80)).astype(np.int64)
    assert keys.shape[0] > 2 * PREFETCH_AHEAD
    assert int(plan[-2].max()) == LONGEST_DELAY  # a delay as long as the ring lands in it
    a_exc, a_inh = np.zeros((n_slots, 24)), np.zeros((n_slots, 24))
    b_exc, b_inh = a_exc.copy(), a_inh.copy()
    deliver_all(keys, 5, n_gids, *plan, a_exc, a_inh)
    deliver_all_ref(keys, 5, n_gids, *plan, b_exc, b_inh)
    assert np.array_equal(a_exc, b_exc)
    assert np.array_equal(a_inh, b_inh)
    assert a_inh.sum() < 0
    # Only split projections (columns 12..23) may write inhibitory input.
    assert not a_inh[:, :12].any()
    assert (a_exc[:, :12] < 0).any()


def _single(split: int, weight: float) -> tuple[np.ndarray, np.ndarray]:
    # Source 2 of a population at gid 10 has synapses to targets 0 and 3 with delays 4 and 9.
    indptr = np.array([0, 0, 0, 2, 2], dtype=np.int64)
    meta = np.array([[10, DELAY_SEPARATE, 0, 5, split, 0, 0, -1, 0]], dtype=np.int64)
    exc, inh = np.zeros((12, 10)), np.zeros((12, 10))
    n_gids = 50
    key = np.array([2 * n_gids + 12], dtype=np.int64)  # step 2 of the interval starting at 6
    deliver_all(
        key, 6, n_gids, np.array([0, 10, 14, 50]), np.array([0, 0, 1, 1]), np.array([0]),
        meta, np.array([weight]), indptr, np.array([0, 3], np.uint32), np.zeros(0, np.uint16),
        np.zeros(0, np.float32), np.array([4, 9], np.uint16), np.zeros(0, np.uint8), exc, inh,
    )  # fmt: skip
    return exc, inh


def test_single_spike_lands_at_step_plus_delay_in_its_column() -> None:
    exc, inh = _single(split=1, weight=-1.5)
    assert inh[(6 + 2 + 4) % 12, 5 + 0] == -1.5
    assert inh[(6 + 2 + 9) % 12, 5 + 3] == -1.5
    assert np.count_nonzero(inh) == 2
    assert not exc.any()
    exc, inh = _single(split=0, weight=-1.5)
    assert exc[(6 + 2 + 4) % 12, 5] == -1.5
    assert not inh.any()


def test_encode_spikes_appends_keys() -> None:
    keys = np.zeros(10, dtype=np.int64)
    n = encode_spikes(keys, 0, np.array([1, 4, 0], dtype=np.int64), 2, 100)
    n = encode_spikes(keys, n, np.array([3], dtype=np.int64), 1, 200)
    assert n == 3
    assert list(keys[:3]) == [101, 104, 203]
