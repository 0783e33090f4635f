"""Tests of per-neuron / per-synapse value draws from the circuit format's distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from brainsim.kernels import rng, sample

SEED = 12345
STREAM = rng.stream_id("populations.E.v_init_mV")
INF = math.inf
N = 100_000


def _draw(
    kind: int,
    p0: float,
    p1: float,
    low: float = -INF,
    high: float = INF,
    redraw: bool = True,
    keys: np.ndarray | None = None,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    keys = np.arange(N, dtype=np.int64) if keys is None else keys
    indices = np.zeros(keys.size, dtype=np.int64) if indices is None else indices
    out = np.empty(keys.size)
    sample.sample_values(kind, p0, p1, low, high, redraw, SEED, STREAM, keys, indices, out)
    return out


def _assert_p_value_ok(p_value: float) -> None:
    # Fixed seeds make these deterministic; 1e-3 only tolerates an unlucky-but-valid draw.
    assert p_value > 1e-3, f"goodness-of-fit p = {p_value:.2e}"


@pytest.mark.parametrize(
    ("kind", "p0", "p1", "low", "high", "redraw"),
    [
        (sample.CONSTANT, 2.5, 0.0, -INF, INF, True),
        (sample.UNIFORM, -70.0, -50.0, -INF, INF, True),
        (sample.NORMAL, -65.0, 5.0, -70.0, -60.0, True),
        (sample.NORMAL, -65.0, 5.0, -70.0, -60.0, False),
        (sample.LOGNORMAL, 0.0, 1.0, 0.5, 3.0, True),
        (sample.LOGNORMAL, 0.0, 1.0, 0.5, 3.0, False),
        (sample.NORMAL, 0.0, 1.0, 30.0, 40.0, True),  # gives up: NaN
    ],
)
def test_kernel_equals_reference(
    kind: int, p0: float, p1: float, low: float, high: float, redraw: bool
) -> None:
    keys = np.array([0, 1, 2, 77, 2**32 - 1, 5, 5], dtype=np.int64)
    indices = np.array([0, 0, 3, 0, 9, 0, 1], dtype=np.int64)
    got = _draw(kind, p0, p1, low, high, redraw, keys, indices)
    ref = sample.sample_values_ref(kind, p0, p1, low, high, redraw, SEED, STREAM, keys, indices)
    assert np.array_equal(got, ref, equal_nan=True)


def test_constant_is_the_constant() -> None:
    assert np.all(_draw(sample.CONSTANT, 3.25, 99.0) == 3.25)


def test_uniform_moments_and_shape() -> None:
    x = _draw(sample.UNIFORM, -70.0, -50.0)
    assert x.min() >= -70.0
    assert x.max() < -50.0
    assert abs(x.mean() + 60.0) < 5 * 20.0 / math.sqrt(12 * N)
    _assert_p_value_ok(stats.kstest(x, stats.uniform(-70.0, 20.0).cdf).pvalue)


def test_normal_moments_and_shape() -> None:
    x = _draw(sample.NORMAL, -65.0, 5.0)
    assert abs(x.mean() + 65.0) < 5 * 5.0 / math.sqrt(N)
    assert abs(x.std() - 5.0) < 5 * 5.0 / math.sqrt(2 * N)
    _assert_p_value_ok(stats.kstest(x, stats.norm(-65.0, 5.0).cdf).pvalue)


def test_lognormal_is_exp_of_normal() -> None:
    mu, sigma = 0.5, 0.25
    x = _draw(sample.LOGNORMAL, mu, sigma)
    assert x.min() > 0.0
    expected_mean = math.exp(mu + sigma**2 / 2)
    assert abs(x.mean() - expected_mean) < 0.01 * expected_mean
    _assert_p_value_ok(stats.kstest(np.log(x), stats.norm(mu, sigma).cdf).pvalue)
    z = _draw(sample.NORMAL, 0.0, 1.0)
    assert np.array_equal(x, [math.exp(mu + sigma * zi) for zi in z.tolist()])


def test_redraw_truncates_without_piling_mass_at_the_bounds() -> None:
    low, high = -1.0, 0.5
    x = _draw(sample.NORMAL, 0.0, 1.0, low, high, redraw=True)
    assert x.min() >= low
    assert x.max() <= high
    assert not np.any((x == low) | (x == high))
    truncated = stats.truncnorm(low, high, loc=0.0, scale=1.0)
    _assert_p_value_ok(stats.kstest(x, truncated.cdf).pvalue)


def test_clip_piles_the_outside_mass_on_the_bounds() -> None:
    low, high = -1.0, 0.5
    x = _draw(sample.NORMAL, 0.0, 1.0, low, high, redraw=False)
    assert x.min() == low
    assert x.max() == high
    at_low = np.mean(x == low)
    at_high = np.mean(x == high)
    tol = 5 * math.sqrt(0.25 / N)
    assert abs(at_low - stats.norm.cdf(low)) < tol
    assert abs(at_high - stats.norm.sf(high)) < tol
    inside = (x > low) & (x < high)
    unbounded = _draw(sample.NORMAL, 0.0, 1.0)
    # clipping never changes a value that was inside the bounds
    assert np.array_equal(x[inside], unbounded[inside])


def test_lognormal_redraw_respects_bounds() -> None:
    x = _draw(sample.LOGNORMAL, 0.0, 1.0, 0.5, 3.0, redraw=True)
    assert x.min() >= 0.5
    assert x.max() <= 3.0


def test_redraw_gives_nan_when_the_bounds_hold_no_mass() -> None:
    x = _draw(sample.NORMAL, 0.0, 1.0, 30.0, 40.0, keys=np.arange(20, dtype=np.int64))
    assert np.all(np.isnan(x))


def test_constant_outside_redraw_bounds_is_nan_and_clip_clips_it() -> None:
    keys = np.arange(5, dtype=np.int64)
    assert np.all(np.isnan(_draw(sample.CONSTANT, 5.0, 0.0, 0.0, 1.0, True, keys)))
    assert np.all(_draw(sample.CONSTANT, 5.0, 0.0, 0.0, 1.0, False, keys) == 1.0)


def test_unknown_kind_is_nan() -> None:
    x = _draw(99, 0.0, 1.0, keys=np.arange(3, dtype=np.int64))
    assert np.all(np.isnan(x))


def test_draws_are_rank_independent() -> None:
    keys = np.arange(100, dtype=np.int64)
    whole = _draw(sample.NORMAL, 0.0, 1.0, -1.0, 1.0, True, keys)
    first = _draw(sample.NORMAL, 0.0, 1.0, -1.0, 1.0, True, keys[:50])
    second = _draw(sample.NORMAL, 0.0, 1.0, -1.0, 1.0, True, keys[50:])
    assert np.array_equal(whole, np.concatenate([first, second]))
    shuffled = np.random.default_rng(0).permutation(100).astype(np.int64)
    assert np.array_equal(
        whole[shuffled], _draw(sample.NORMAL, 0.0, 1.0, -1.0, 1.0, True, shuffled)
    )


def test_per_synapse_draws_are_keyed_by_target_and_index() -> None:
    # synapses 0..3 of target 10 and 0..1 of target 11, then target 11's drawn on their own
    keys = np.array([10, 10, 10, 10, 11, 11], dtype=np.int64)
    indices = np.array([0, 1, 2, 3, 0, 1], dtype=np.int64)
    x = _draw(sample.UNIFORM, 0.0, 1.0, keys=keys, indices=indices)
    assert np.unique(x).size == x.size
    alone = _draw(sample.UNIFORM, 0.0, 1.0, keys=keys[4:], indices=indices[4:])
    assert np.array_equal(x[4:], alone)


def test_stream_and_seed_change_the_values() -> None:
    keys = np.arange(100, dtype=np.int64)
    idx = np.zeros(100, dtype=np.int64)
    a = np.empty(100)
    b = np.empty(100)
    c = np.empty(100)
    sample.sample_values(sample.NORMAL, 0.0, 1.0, -INF, INF, True, SEED, STREAM, keys, idx, a)
    sample.sample_values(sample.NORMAL, 0.0, 1.0, -INF, INF, True, SEED, STREAM + 1, keys, idx, b)
    sample.sample_values(sample.NORMAL, 0.0, 1.0, -INF, INF, True, SEED + 1, STREAM, keys, idx, c)
    assert not np.any(a == b)
    assert not np.any(a == c)


def test_sample_rows_keys_each_entry_by_row_and_position() -> None:
    indptr = np.array([0, 3, 3, 7, 8], dtype=np.int64)
    rows = np.repeat(np.arange(4), np.diff(indptr))
    keys = (rows + 500).astype(np.int64)
    positions = (np.arange(8) - indptr[rows]).astype(np.int64)
    for kind, p0, p1, low, high, redraw in [
        (sample.NORMAL, 1.0, 2.0, 0.0, 3.0, True),
        (sample.UNIFORM, -1.0, 1.0, -np.inf, np.inf, True),
        (sample.LOGNORMAL, 0.0, 1.0, 0.0, 2.0, False),
    ]:
        by_rows = np.empty(8)
        sample.sample_rows(kind, p0, p1, low, high, redraw, 9, 4, indptr, 500, by_rows)
        by_keys = np.empty(8)
        sample.sample_values(kind, p0, p1, low, high, redraw, 9, 4, keys, positions, by_keys)
        assert np.array_equal(by_rows, by_keys)
