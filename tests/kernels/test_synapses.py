"""CSR transposition: the counting sort equals a stable argsort; delay packing."""

from __future__ import annotations

import numpy as np

from brainsim.kernels.synapses import (
    by_source,
    by_source_ref,
    pack_delays,
    permuted_delay_steps,
    permuted_weights,
)


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


def test_pack_delays() -> None:
    packed = pack_delays(np.array([5, 7], dtype=np.uint32), np.array([3, 255]), 24)
    assert list(packed & 0xFFFFFF) == [5, 7]
    assert list(packed >> 24) == [3, 255]


def test_permuted_values_equal_numpy() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(1.5, 0.7, 1000)
    perm = rng.permutation(1000).astype(np.int64)
    assert np.array_equal(permuted_weights(values, perm), values.astype(np.float32)[perm])
    want = np.maximum(np.rint(values / 0.1), 1).astype(np.int64)[perm]
    assert np.array_equal(permuted_delay_steps(values, perm, 0.1), want)
    # Ties round to even like numpy, and nothing goes below one step.
    ties = np.array([0.75, 1.25, 1.75, -3.0])  # exact halves of dt = 0.5
    assert list(permuted_delay_steps(ties, np.arange(4), 0.5)) == [2, 2, 4, 1]
