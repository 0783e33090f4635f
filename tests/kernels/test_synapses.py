"""CSR transposition: the counting sort equals a stable argsort, and keys follow the rows."""

from __future__ import annotations

import numpy as np

from brainsim.kernels.synapses import by_source, by_source_ref, pack_delays, row_keys


def test_by_source_equals_stable_argsort() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 12, 50)
    indptr = np.zeros(51, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    sources = rng.integers(0, 30, int(indptr[-1])).astype(np.int64)
    got = by_source(indptr, sources, 30)
    want = by_source_ref(indptr, sources, 30)
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)
    src_indptr, perm, tgt = got
    # Each source's synapses are in ascending target order (the delivery order).
    for s in range(30):
        assert np.all(np.diff(tgt[src_indptr[s] : src_indptr[s + 1]].astype(np.int64)) >= 0)
    assert np.array_equal(np.sort(perm), np.arange(indptr[-1]))


def test_row_keys() -> None:
    indptr = np.array([0, 2, 2, 5], dtype=np.int64)
    gids, pos = row_keys(indptr, 100)
    assert list(gids) == [100, 100, 102, 102, 102]
    assert list(pos) == [0, 1, 0, 1, 2]


def test_pack_delays() -> None:
    packed = pack_delays(np.array([5, 7], dtype=np.uint32), np.array([3, 255]), 24)
    assert list(packed & 0xFFFFFF) == [5, 7]
    assert list(packed >> 24) == [3, 255]
