"""The Poisson drive kernel equals its reference and has the right statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from brainsim.kernels.stimuli import (
    poisson_cdf_tables,
    poisson_drive,
    poisson_drive_ref,
)


def _drive_args(
    lam: np.ndarray,
    weight: np.ndarray,
    *,
    stream: int = 11,
    delay: int = 2,
    lo: int = 1,
    hi: int = 40,
) -> tuple:
    """Kernel arguments (after the seed) for one stimulus onto ``lam.size`` neurons."""
    n = lam.shape[0]
    gids = np.arange(100, 100 + n, dtype=np.int64)
    idx = np.arange(n, dtype=np.int64)[::-1].copy()
    table_of, cdf, guide = poisson_cdf_tables(lam)
    segments = np.array([[0, n, stream, delay, lo, hi]], dtype=np.int64)
    return segments, gids, idx, lam, table_of, cdf, guide, weight


def _cache(n: int) -> tuple[np.ndarray, np.ndarray]:
    """An empty word cache for ``n`` targets (kernel arguments after the buffers)."""
    return np.zeros((n, 4), dtype=np.uint32), np.full(n, -1, dtype=np.int64)


def _drive(seed: int, *args: object) -> None:
    """The kernel with a fresh word cache, as one call of the step loop sees it at the start."""
    poisson_drive(seed, *args, *_cache(len(args[1])))  # type: ignore[arg-type]


def test_one_step_per_call_with_a_kept_cache_equals_one_call() -> None:
    """The loop of a circuit that exchanges every step calls the kernel once per step; the
    words kept between calls give exactly what one call over all steps gives."""
    rng = np.random.default_rng(4)
    lam = np.concatenate([rng.uniform(0, 3, 30), [25.0]])
    args = _drive_args(lam, rng.normal(0, 1, lam.shape[0]), delay=1, lo=0, hi=45)
    whole = [np.zeros((50, lam.shape[0])) for _ in range(2)]
    _drive(5, *args, 0, 50, *whole)
    steps = [np.zeros((50, lam.shape[0])) for _ in range(2)]
    cache = _cache(lam.shape[0])
    for step in range(50):
        poisson_drive(5, *args, step, 1, *steps, *cache)
    assert np.array_equal(whole[0], steps[0])
    assert np.array_equal(whole[1], steps[1])
    assert (cache[1] >= 0).any()  # the cache was used


def _part(args: tuple, sl: slice) -> tuple:
    segments, gids, idx, lam, table_of, cdf, guide, weight = args
    part = segments.copy()
    part[0, :2] = (0, sl.stop - sl.start)
    return part, gids[sl], idx[sl], lam[sl], table_of[sl], cdf, guide, weight[sl]


@pytest.mark.parametrize("first_step", [0, 3, 17])
def test_poisson_drive_equals_reference(first_step: int) -> None:
    rng = np.random.default_rng(1)
    lam = np.concatenate([rng.uniform(0, 3, 20), [0.0, 12.5, 40.0]])
    weight = rng.normal(0, 1, lam.shape[0])
    args = _drive_args(lam, weight)
    a = [np.zeros((9, lam.shape[0])) for _ in range(2)]
    b = [np.zeros((9, lam.shape[0])) for _ in range(2)]
    _drive(7, *args, first_step, 7, *a)
    poisson_drive_ref(7, *args, first_step, 7, *b)
    assert np.array_equal(a[0], b[0])
    assert np.array_equal(a[1], b[1])
    assert a[0].sum() > 0
    assert a[1].sum() < 0


def test_poisson_drive_respects_the_generation_window() -> None:
    lam = np.full(50, 5.0)
    args = _drive_args(lam, np.ones(50), delay=3, lo=2, hi=5)
    buf = np.zeros((10, 50))
    # Steps 0..9 with delay 3: generation steps -3..6; only 2 <= g < 5 may draw (steps 5, 6, 7).
    _drive(1, *args, 0, 10, buf, buf)
    assert np.all(buf[[0, 1, 2, 3, 4, 8, 9]] == 0)
    assert np.all(buf[[5, 6, 7]].sum(axis=1) > 0)


@pytest.mark.parametrize("lam", [0.3, 2.0, 7.5, 25.0])
def test_poisson_counts_follow_the_poisson_law(lam: float) -> None:
    n, steps = 400, 250
    args = _drive_args(np.full(n, lam), np.ones(n), stream=5, delay=0, lo=0, hi=steps)
    buf = np.zeros((steps, n))
    _drive(3, *args, 0, steps, buf, buf)
    counts = buf.ravel().astype(np.int64)
    assert abs(counts.mean() - lam) < 4 * np.sqrt(lam / counts.size)
    top = int(stats.poisson.ppf(0.999, lam))
    observed = np.bincount(np.minimum(counts, top), minlength=top + 1)
    expected = stats.poisson.pmf(np.arange(top + 1), lam) * counts.size
    expected[-1] = stats.poisson.sf(top - 1, lam) * counts.size
    keep = expected > 5
    chi2 = (((observed - expected) ** 2) / expected)[keep].sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3


def test_poisson_drive_is_independent_of_how_targets_are_split() -> None:
    args = _drive_args(np.full(30, 2.0), np.ones(30), stream=9, delay=1, lo=0, hi=99)
    whole = np.zeros((6, 30))
    _drive(9, *args, 0, 6, whole, whole)
    parts = np.zeros((6, 30))
    for sl in (slice(0, 11), slice(11, 30)):
        _drive(9, *_part(args, sl), 0, 6, parts, parts)
    assert np.array_equal(whole, parts)


def test_two_segments_equal_two_calls() -> None:
    one = _drive_args(np.full(20, 1.5), np.ones(20), stream=3, delay=1, lo=0, hi=30)
    two = _drive_args(np.full(10, 4.0), -np.ones(10), stream=4, delay=2, lo=5, hi=30)
    apart = [np.zeros((40, 20)) for _ in range(2)]
    _drive(8, *one, 0, 40, *apart)
    _drive(8, *two, 0, 40, *apart)
    seg = np.array([[0, 20, 3, 1, 0, 30], [20, 30, 4, 2, 5, 30]], dtype=np.int64)
    tables = poisson_cdf_tables(np.concatenate([one[3], two[3]]))
    together = [np.zeros((40, 20)) for _ in range(2)]
    _drive(8, seg, np.concatenate([one[1], two[1]]), np.concatenate([one[2], two[2]]),
                  np.concatenate([one[3], two[3]]), *tables, np.concatenate([one[7], two[7]]),
                  0, 40, *together)  # fmt: skip
    assert np.array_equal(apart[0], together[0])
    assert np.array_equal(apart[1], together[1])
    assert apart[1].sum() < 0


def test_streams_make_stimuli_independent() -> None:
    one = _drive_args(np.full(40, 2.0), np.ones(40), stream=1, delay=0, lo=0, hi=50)
    two = _drive_args(np.full(40, 2.0), np.ones(40), stream=2, delay=0, lo=0, hi=50)
    a, b = np.zeros((50, 40)), np.zeros((50, 40))
    _drive(4, *one, 0, 50, a, a)
    _drive(4, *two, 0, 50, b, b)
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.05


def test_guide_table_starts_every_search_at_or_below_the_answer() -> None:
    lam = np.array([0.05, 1.0, 2.0, 9.9])
    _, cdf, guide = poisson_cdf_tables(lam)
    words = np.random.default_rng(0).integers(0, 2**32, 20000, dtype=np.uint64)
    for t in range(lam.shape[0]):
        u = words * 2.0**-32
        full = np.searchsorted(cdf[t], u, side="right")  # the sequential search from 0
        start = guide[t, (words >> 22).astype(np.int64)]
        assert np.all(start <= full)
        # For most draws the guide already is the answer.
        assert np.mean(start == full) > 0.95
