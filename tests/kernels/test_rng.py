"""Tests of the Philox4x32-10 generator and the keyed draws built on it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from brainsim.kernels import rng

SEED = 20240917
STREAM = rng.stream_id("tests.kernels.rng")

# Random123 kat_vectors, philox4x32 with 10 rounds: (counter, key, expected output).
KAT_VECTORS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def _random_keys(n: int, seed: int) -> list[tuple[int, int, int, int, int]]:
    """Random (seed, stream, gid, index, sub) tuples spanning the full width of every field."""
    gen = np.random.default_rng(seed)
    return [
        (
            int(gen.integers(0, 2**32)),
            int(gen.integers(0, 2**32)),
            int(gen.integers(0, 2**32)),
            int(gen.integers(0, 2**63)),
            int(gen.integers(0, 2**20)),
        )
        for _ in range(n)
    ]


def _assert_p_value_ok(p_value: float) -> None:
    # Fixed seeds make every statistical test deterministic; 1e-3 leaves room for the one
    # unlucky-but-valid draw while still failing any real bias at these sample sizes.
    assert p_value > 1e-3, f"goodness-of-fit p = {p_value:.2e}"


# --------------------------------------------------------------------------------------------
# Philox4x32-10 itself
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("counter", "key", "expected"), KAT_VECTORS)
def test_philox_matches_random123_known_answers(
    counter: tuple[int, ...], key: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    got = rng.philox4x32(*counter, *key)
    assert tuple(int(w) for w in got) == expected
    assert rng.philox4x32_ref(*counter, *key) == expected


def test_philox_kernel_equals_reference_on_random_inputs() -> None:
    gen = np.random.default_rng(1)
    for _ in range(300):
        words = [int(x) for x in gen.integers(0, 2**32, size=6)]
        assert tuple(int(w) for w in rng.philox4x32(*words)) == rng.philox4x32_ref(*words)


def test_philox_words_follow_the_keying_convention() -> None:
    index = 0x0123456789ABCDEF
    got = rng.philox_words(7, 9, 42, index, 3)
    expected = rng.philox4x32_ref(0x89ABCDEF, 0x01234567, 42, 3, 7, 9)
    assert tuple(int(w) for w in got) == expected
    assert rng.philox_words_ref(7, 9, 42, index, 3) == expected


def test_the_high_word_of_the_index_is_used() -> None:
    low = rng.philox_words(1, 2, 3, 5, 0)
    high = rng.philox_words(1, 2, 3, 5 + 2**32, 0)
    assert tuple(low) != tuple(high)


def test_numpy_philox_is_a_different_generator() -> None:
    # numpy's Philox is the 4x64 variant, so its raw stream cannot match Philox4x32: there is no
    # cross-check beyond the known-answer vectors. Pin that, so a future numpy 4x32 is noticed.
    bit_gen = np.random.Philox(key=np.array([0, 0], dtype=np.uint64))
    assert bit_gen.state["state"]["counter"].dtype == np.uint64
    assert bit_gen.state["state"]["counter"].shape == (4,)


def test_stream_id_is_crc32_of_utf8() -> None:
    assert rng.stream_id("123456789") == 0xCBF43926  # the published CRC-32 check value
    assert rng.stream_id("") == 0
    assert rng.stream_id("projections.EE.weight") != rng.stream_id("projections.EI.weight")
    assert 0 <= rng.stream_id("populations.Ä.v_init_mV") < 2**32


# --------------------------------------------------------------------------------------------
# Kernels equal their references exactly
# --------------------------------------------------------------------------------------------


def test_uniform_and_normal_equal_their_references() -> None:
    for key in _random_keys(200, 2):
        assert rng.uniform01(*key) == rng.uniform01_ref(*key)
        assert rng.uniform_pair(*key) == rng.uniform_pair_ref(*key)
        assert rng.normal(*key) == rng.normal_ref(*key)
        assert rng.normal(*key[:4]) == rng.normal_ref(*key[:4])


def test_below_equals_reference_including_rejections() -> None:
    # n close to 2**32 rejects about a third of the words, so the retry path runs.
    for i, key in enumerate(_random_keys(200, 3)):
        n = [1, 2, 7, 1250, 10_000, 2**31 + 1, 3_000_000_000, 2**32 - 1][i % 8]
        value = rng.below(*key, n)
        assert value == rng.below_ref(*key, n)
        assert 0 <= value < n


def test_poisson_equals_reference_in_both_regimes() -> None:
    lams = [0.0, 1e-3, 0.5, 2.0, 9.99, 10.0, 10.5, 37.0, 1e3, 1e6]
    for i, key in enumerate(_random_keys(200, 4)):
        lam = lams[i % len(lams)]
        assert rng.poisson(*key[:4], lam) == rng.poisson_ref(*key[:4], lam)


def test_uniform_pair_first_value_is_uniform01() -> None:
    for key in _random_keys(20, 5):
        assert rng.uniform_pair(*key)[0] == rng.uniform01(*key)


def test_fill_functions_equal_scalar_draws() -> None:
    gids = np.array([0, 1, 5, 2**32 - 1, 123_456], dtype=np.int64)
    lam = np.array([0.0, 0.3, 4.0, 12.0, 250.0])
    uni = np.empty(gids.size)
    nor = np.empty(gids.size)
    poi64 = np.empty(gids.size, dtype=np.int64)
    poi32 = np.empty(gids.size, dtype=np.int32)
    rng.fill_uniform(SEED, STREAM, gids, 17, uni)
    rng.fill_normal(SEED, STREAM, gids, 17, nor)
    rng.fill_poisson(SEED, STREAM, gids, 17, lam, poi64)
    rng.fill_poisson(SEED, STREAM, gids, 17, lam, poi32)
    for i, gid in enumerate(gids.tolist()):
        assert uni[i] == rng.uniform01_ref(SEED, STREAM, gid, 17, 0)
        assert nor[i] == rng.normal_ref(SEED, STREAM, gid, 17)
        assert poi64[i] == poi32[i] == rng.poisson_ref(SEED, STREAM, gid, 17, float(lam[i]))


# --------------------------------------------------------------------------------------------
# Edge cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lam", [-1.0, math.inf, math.nan])
def test_poisson_flags_invalid_means(lam: float) -> None:
    assert rng.poisson(SEED, STREAM, 0, 0, lam) == -1
    assert rng.poisson_ref(SEED, STREAM, 0, 0, lam) == -1


def test_poisson_of_zero_mean_is_zero() -> None:
    assert rng.poisson(SEED, STREAM, 3, 4, 0.0) == 0


@pytest.mark.parametrize("n", [0, -5, 2**32])
def test_below_flags_invalid_ranges(n: int) -> None:
    assert rng.below(SEED, STREAM, 0, 0, 0, n) == -1


def test_below_one_is_always_zero() -> None:
    assert all(rng.below(SEED, STREAM, g, 0, 0, 1) == 0 for g in range(50))


def test_lemire_rejects_exactly_the_biased_low_products() -> None:
    n = 3_000_000_000
    threshold = 2**32 % n
    # word * n mod 2**32 == 0 for word 0: below the threshold, rejected
    assert not rng.lemire_trial(np.uint32(0), n)[0]
    # the largest word gives the largest accepted value
    accepted, value = rng.lemire_trial(np.uint32(2**32 - 1), n)
    assert accepted
    assert value == ((2**32 - 1) * n) >> 32
    assert threshold > 0


def test_uniform_extremes_stay_in_the_half_open_interval() -> None:
    top = np.uint32(0xFFFFFFFF)
    zero = np.uint32(0)
    assert rng.uniform_from_words(zero, zero) == 0.0
    assert rng.uniform_from_words(top, top) == 1.0 - 2.0**-53


# --------------------------------------------------------------------------------------------
# Distributions
# --------------------------------------------------------------------------------------------

N_SAMPLES = 200_000
GIDS = np.arange(N_SAMPLES, dtype=np.int64)


def test_uniform_is_uniform() -> None:
    out = np.empty(N_SAMPLES)
    rng.fill_uniform(SEED, STREAM, GIDS, 0, out)
    assert out.min() >= 0.0
    assert out.max() < 1.0
    assert abs(out.mean() - 0.5) < 5 * math.sqrt(1 / 12 / N_SAMPLES)
    _assert_p_value_ok(stats.kstest(out, "uniform").pvalue)


def test_uniform_pair_components_are_uniform_and_uncorrelated() -> None:
    pairs = np.array([rng.uniform_pair(SEED, STREAM, g, 1, 0) for g in range(20_000)])
    _assert_p_value_ok(stats.kstest(pairs[:, 1], "uniform").pvalue)
    assert abs(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) < 5 / math.sqrt(20_000)


def test_normal_is_standard_normal() -> None:
    out = np.empty(N_SAMPLES)
    rng.fill_normal(SEED, STREAM, GIDS, 0, out)
    tol = 5 / math.sqrt(N_SAMPLES)
    assert abs(out.mean()) < tol
    assert abs(out.std() - 1.0) < tol
    assert abs(stats.skew(out)) < 5 * math.sqrt(6 / N_SAMPLES)
    _assert_p_value_ok(stats.kstest(out, "norm").pvalue)


def _normal4_samples(n_keys: int) -> np.ndarray:
    return np.array([rng.normal4(SEED, STREAM, g, 3) for g in range(n_keys)])


def test_normal4_equals_its_reference_on_every_path() -> None:
    # 4,000 lanes: about 48 take the slow path (wedges, and the tail about twice).
    lanes = 0
    for g in range(1000):
        got = rng.normal4(SEED, STREAM, g, 11)
        assert got == rng.normal4_ref(SEED, STREAM, g, 11), g
        lanes += sum(abs(z) >= rng._ZIG_X[1] for z in got)
    assert lanes > 0  # the tail was exercised


def test_ziggurat_layers_have_equal_area_and_close_at_zero() -> None:
    x, f = rng._ZIG_X, rng._ZIG_F
    areas = x[1:-1] * (f[2:] - f[1:-1])  # layers 1 .. 127
    assert np.allclose(areas, rng._ZIG_V, rtol=1e-9)
    assert x[0] * f[1] == pytest.approx(rng._ZIG_V)  # the base strip, tail included
    assert x[-1] == 0.0
    assert 0.0 < x[-2] < 0.3


def test_normal4_is_standard_normal_in_every_lane() -> None:
    out = _normal4_samples(N_SAMPLES // 4)
    tol = 5 / math.sqrt(out.shape[0])
    for lane in range(4):
        z = out[:, lane]
        assert abs(z.mean()) < tol
        assert abs(z.std() - 1.0) < tol
        _assert_p_value_ok(stats.kstest(z, "norm").pvalue)
    flat = out.ravel()
    _assert_p_value_ok(stats.kstest(flat, "norm").pvalue)
    assert abs(stats.skew(flat)) < 5 * math.sqrt(6 / flat.size)
    assert abs(stats.kurtosis(flat)) < 5 * math.sqrt(24 / flat.size)
    # The tail beyond R (its own sampler) holds the normal's share of the mass.
    beyond = np.mean(np.abs(flat) > rng._ZIG_X[1])
    expected = 2 * stats.norm.sf(rng._ZIG_X[1])
    assert abs(beyond - expected) < 5 * math.sqrt(expected / flat.size)
    # The lanes of one call are independent of each other.
    corr = np.corrcoef(out.T)
    assert np.all(np.abs(corr[np.triu_indices(4, 1)]) < 5 / math.sqrt(out.shape[0]))


@pytest.mark.parametrize("lam", [0.05, 1.0, 3.7, 9.99, 10.0, 25.0, 400.0, 1e5])
def test_poisson_counts_follow_the_poisson_pmf(lam: float) -> None:
    n = 100_000
    out = np.empty(n, dtype=np.int64)
    rng.fill_poisson(SEED, STREAM, GIDS[:n], 3, np.full(n, lam), out)
    assert out.min() >= 0
    tol = 5 * math.sqrt(lam / n)
    assert abs(out.mean() - lam) < tol
    # chi-squared over bins that each expect at least 20 counts; the tails are pooled
    dist = stats.poisson(lam)
    lo, hi = int(dist.ppf(1e-4)), int(dist.isf(1e-4))
    edges = np.arange(lo, hi + 1)
    expected = n * dist.pmf(edges)
    observed = np.array([(out == k).sum() for k in edges], dtype=float)
    expected[0] += n * dist.cdf(lo - 1)
    observed[0] += (out < lo).sum()
    expected[-1] += n * dist.sf(hi)
    observed[-1] += (out > hi).sum()
    keep = expected >= 20
    merged_exp = np.append(expected[keep], expected[~keep].sum())
    merged_obs = np.append(observed[keep], observed[~keep].sum())
    if merged_exp[-1] == 0:
        merged_exp, merged_obs = merged_exp[:-1], merged_obs[:-1]
    chi2 = ((merged_obs - merged_exp) ** 2 / merged_exp).sum()
    _assert_p_value_ok(stats.chi2.sf(chi2, merged_exp.size - 1))


@pytest.mark.parametrize("n", [7, 1000, 3_000_000_000])
def test_below_is_uniform(n: int) -> None:
    draws = np.array([rng.below(SEED, STREAM, g, 0, 0, n) for g in range(50_000)])
    assert draws.min() >= 0
    assert draws.max() < n
    bins = min(n, 20)
    counts = np.bincount(draws * bins // n, minlength=bins)
    _assert_p_value_ok(stats.chisquare(counts).pvalue)


# --------------------------------------------------------------------------------------------
# Independence and determinism
# --------------------------------------------------------------------------------------------


def _uniforms(stream: int, index: int, gids: np.ndarray) -> np.ndarray:
    out = np.empty(gids.size)
    rng.fill_uniform(SEED, stream, gids, index, out)
    return out


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((STREAM, 0, 0), (STREAM, 0, 1)),  # neighbouring gids
        ((STREAM, 0, 0), (STREAM + 1, 0, 0)),  # neighbouring streams
        ((STREAM, 0, 0), (STREAM, 1, 0)),  # neighbouring indices (time steps)
        ((STREAM, 0, 0), (STREAM, 2**32, 0)),  # indices that differ in the high word only
    ],
)
def test_draws_are_uncorrelated_across_gid_stream_and_index(
    a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    n = 100_000
    base = np.arange(n, dtype=np.int64) * 2
    x = _uniforms(a[0], a[1], base + a[2])
    y = _uniforms(b[0], b[1], base + b[2])
    assert abs(np.corrcoef(x, y)[0, 1]) < 5 / math.sqrt(n)
    assert not np.array_equal(x, y)


def test_draws_do_not_depend_on_call_order() -> None:
    gids = np.arange(1000, dtype=np.int64)
    forward = np.array([rng.normal(SEED, STREAM, g, 9) for g in gids])
    backward = np.array([rng.normal(SEED, STREAM, g, 9) for g in gids[::-1]])[::-1]
    filled = np.empty(gids.size)
    rng.fill_normal(SEED, STREAM, gids[::-1].copy(), 9, filled)
    assert np.array_equal(forward, backward)
    assert np.array_equal(forward, filled[::-1])


def test_seed_changes_every_draw_family() -> None:
    gids = np.arange(100, dtype=np.int64)
    a = _uniforms(STREAM, 0, gids)
    out = np.empty(100)
    rng.fill_uniform(SEED + 1, STREAM, gids, 0, out)
    assert not np.any(a == out)
