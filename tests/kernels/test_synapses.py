"""CSR transposition in two passes: counting, then scattering block by block, equals a stable
argsort of the whole projection; delays packed, separate or dropped; rounding of delays."""

from __future__ import annotations

import numpy as np
import pytest

from brainsim.kernels.delivery import (
    DELAY_CONSTANT,
    DELAY_NARROW,
    DELAY_NARROW_BYTE,
    DELAY_NARROW_SEPARATE,
    DELAY_PACKED,
    DELAY_SEPARATE,
    PACK_MAX_TARGET,
    PACK_SHIFT,
)
from brainsim.kernels.synapses import (
    count_sources,
    delay_steps,
    scatter_by_source,
    scatter_by_source_ref,
)

N_SOURCES = 30


def _projection(seed: int, n_targets: int = 50) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 12, n_targets)
    indptr = np.zeros(n_targets + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    sources = rng.integers(0, N_SOURCES, int(indptr[-1])).astype(np.int64)
    weights = rng.normal(1.5, 0.7, sources.shape[0])
    steps = rng.integers(1, 40, sources.shape[0]).astype(np.int64)
    return indptr, sources, weights, steps


def _two_pass(
    indptr: np.ndarray, sources: np.ndarray, weights: np.ndarray, steps: np.ndarray,
    mode: int, block: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:  # fmt: skip
    """Count, then scatter ``block`` targets at a time (as construction does)."""
    n_targets = indptr.shape[0] - 1
    blocks = [(b, min(b + block, n_targets)) for b in range(0, n_targets, block)]
    counts = np.zeros(N_SOURCES + 1, dtype=np.int64)
    for lo, hi in blocks:
        count_sources(sources[indptr[lo] : indptr[hi]], counts[1:])
    src_indptr = np.cumsum(counts)
    n = int(src_indptr[-1])
    narrow = mode in (DELAY_NARROW, DELAY_NARROW_BYTE, DELAY_NARROW_SEPARATE)
    targets = np.empty(n, dtype=np.uint16 if narrow else np.uint32)
    out_w = np.empty(n if weights.shape[0] else 0, dtype=np.float32)
    apart = mode in (DELAY_SEPARATE, DELAY_NARROW_SEPARATE, DELAY_NARROW_BYTE)
    out_d = np.empty(n if apart else 0, dtype=np.uint8 if mode == DELAY_NARROW_BYTE else np.uint16)
    cursor = src_indptr[:-1].copy()
    d_range = (1 << 62, 0)
    for lo, hi in blocks:
        part = slice(indptr[lo], indptr[hi])
        found = scatter_by_source(
            indptr[lo : hi + 1] - indptr[lo], sources[part], lo, cursor,
            weights[part] if weights.shape[0] else weights,
            steps[part] if steps.shape[0] else steps, mode, targets, out_w, out_d,
        )  # fmt: skip
        d_range = (min(d_range[0], found[0]), max(d_range[1], found[1]))
    return src_indptr, targets, out_w, out_d, d_range


@pytest.mark.parametrize("block", [1, 7, 50])
@pytest.mark.parametrize(
    "mode",
    [DELAY_CONSTANT, DELAY_PACKED, DELAY_SEPARATE, DELAY_NARROW, DELAY_NARROW_BYTE,
     DELAY_NARROW_SEPARATE],
)  # fmt: skip
def test_two_passes_in_blocks_equal_a_stable_argsort(mode: int, block: int) -> None:
    indptr, sources, weights, steps = _projection(3)
    one_delay = mode in (DELAY_CONSTANT, DELAY_NARROW)
    src_indptr, targets, out_w, out_d, d_range = _two_pass(
        indptr, sources, weights, steps[:0] if one_delay else steps, mode, block
    )
    want_ptr, want_t, want_w, want_d = scatter_by_source_ref(indptr, sources, N_SOURCES,
                                                             weights, steps)  # fmt: skip
    assert np.array_equal(src_indptr, want_ptr)
    assert np.array_equal(out_w, want_w)
    if mode == DELAY_PACKED:
        assert np.array_equal(targets & PACK_MAX_TARGET, want_t)
        assert np.array_equal(targets >> PACK_SHIFT, want_d)
    else:
        assert np.array_equal(targets, want_t)
    if mode in (DELAY_SEPARATE, DELAY_NARROW_BYTE, DELAY_NARROW_SEPARATE):
        assert np.array_equal(out_d, want_d)
    if one_delay:
        assert d_range == (1 << 62, 0)
    else:
        assert d_range == (steps.min(), steps.max())
    # Each source's synapses are in ascending target order (the delivery order).
    local = targets.astype(np.int64) & PACK_MAX_TARGET
    for s in range(N_SOURCES):
        assert np.all(np.diff(local[src_indptr[s] : src_indptr[s + 1]].astype(np.int64)) >= 0)


def test_constant_weights_write_no_weights() -> None:
    indptr, sources, weights, steps = _projection(4)
    _, targets, out_w, _, _ = _two_pass(indptr, sources, weights[:0], steps[:0], DELAY_CONSTANT, 9)
    assert out_w.shape == (0,)
    assert np.array_equal(targets, scatter_by_source_ref(indptr, sources, N_SOURCES,
                                                         weights, steps)[1])  # fmt: skip


@pytest.mark.parametrize("mode", [DELAY_PACKED, DELAY_NARROW_BYTE])
def test_a_delay_too_long_for_a_byte_stops_the_block(mode: int) -> None:
    indptr, sources, weights, steps = _projection(5)
    steps[steps.shape[0] // 2] = 256
    *_, d_range = _two_pass(indptr, sources, weights, steps, mode, 50)
    assert d_range[1] == 256


def test_delay_steps_round_to_even_and_never_below_one() -> None:
    values = np.random.default_rng(5).normal(1.5, 0.7, 1000)
    want = np.maximum(np.rint(values / 0.1), 1).astype(np.int64)
    assert np.array_equal(delay_steps(values, 0.1), want)
    ties = np.array([0.75, 1.25, 1.75, -3.0])  # exact halves of dt = 0.5
    assert list(delay_steps(ties, 0.5)) == [2, 2, 4, 1]
