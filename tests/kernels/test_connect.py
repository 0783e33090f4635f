"""Tests of the connection-rule samplers: exact properties, degree statistics, rank independence.

The statistical tests follow NEST's approach: chi-squared tests of degree distributions and of the
source counts against the distribution each rule promises. Seeds are fixed, so every test is
deterministic; a p-value threshold of 1e-3 only tolerates an unlucky but valid draw.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from brainsim.kernels import connect, rng

SEED = 4242
STREAM = rng.stream_id("projections.EE.connectivity")
Csr = tuple[np.ndarray, np.ndarray]


def _gids(n: int, offset: int = 0) -> np.ndarray:
    return np.arange(offset, offset + n, dtype=np.int64)


def _rows(indptr: np.ndarray, sources: np.ndarray) -> list[np.ndarray]:
    return [sources[indptr[i] : indptr[i + 1]] for i in range(indptr.size - 1)]


def _chi2_p(observed: np.ndarray, expected: np.ndarray, min_expected: float = 5.0) -> float:
    """Chi-squared p-value, pooling the bins that expect fewer than ``min_expected`` counts."""
    observed = np.asarray(observed, dtype=float)
    expected = np.asarray(expected, dtype=float)
    keep = expected >= min_expected
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] < min_expected:  # fold a small pooled bin into the last kept one
        obs[-2] += obs[-1]
        exp[-2] += exp[-1]
        obs, exp = obs[:-1], exp[:-1]
    assert obs.size >= 5, "too few samples for a chi-squared test"
    exp *= obs.sum() / exp.sum()
    return float(stats.chisquare(obs, exp).pvalue)


def _assert_p_value_ok(p_value: float) -> None:
    assert p_value > 1e-3, f"goodness-of-fit p = {p_value:.2e}"


def _degree_test(degrees: np.ndarray, pmf: Callable[[np.ndarray], np.ndarray]) -> None:
    support = np.arange(degrees.max() + 30)
    observed = np.bincount(degrees, minlength=support.size)[: support.size]
    _assert_p_value_ok(_chi2_p(observed, degrees.size * pmf(support)))


def _assert_split_invariant(build: Callable[[np.ndarray], Csr], targets: np.ndarray) -> None:
    """Building all targets at once equals concatenating two calls over a split."""
    indptr, sources = build(targets)
    for k in (1, targets.size // 3, targets.size - 1):
        ip_a, src_a = build(targets[:k])
        ip_b, src_b = build(targets[k:])
        assert np.array_equal(sources, np.concatenate([src_a, src_b]))
        assert np.array_equal(indptr, np.concatenate([ip_a, ip_a[-1] + ip_b[1:]]))


def _assert_no_autapses(indptr: np.ndarray, sources: np.ndarray, targets_local: np.ndarray) -> None:
    for t, row in zip(targets_local, _rows(indptr, sources), strict=True):
        assert t not in row


def _assert_no_multapses(indptr: np.ndarray, sources: np.ndarray) -> None:
    for row in _rows(indptr, sources):
        assert np.unique(row).size == row.size


# --------------------------------------------------------------------------------------------
# all_to_all
# --------------------------------------------------------------------------------------------


def test_all_to_all_connects_every_pair() -> None:
    indptr, sources = connect.all_to_all(_gids(4, 100), 3, 0, True)
    assert indptr.tolist() == [0, 3, 6, 9, 12]
    assert sources.tolist() == [0, 1, 2] * 4


def test_all_to_all_skips_autapses_when_asked() -> None:
    # source population gids 10..14, targets 12..16: targets 12, 13, 14 are also sources
    indptr, sources = connect.all_to_all(_gids(5, 12), 5, 10, False)
    assert np.diff(indptr).tolist() == [4, 4, 4, 5, 5]
    assert _rows(indptr, sources)[0].tolist() == [0, 1, 3, 4]
    _assert_no_autapses(indptr[:4], sources, np.array([2, 3, 4]))


# --------------------------------------------------------------------------------------------
# fixed_indegree
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_source", "indegree", "multapses"),
    [(100, 20, True), (100, 20, False), (100, 80, False), (100, 99, False)],
)
def test_fixed_indegree_is_exact_and_uniform(n_source: int, indegree: int, multapses: bool) -> None:
    # one population as source and target, no autapses: a target's eligible sources are the
    # n_source - 1 others; six streams give six independent builds of the same targets
    targets = _gids(n_source)
    rows = []
    for stream in range(6):
        indptr, sources = connect.fixed_indegree(
            SEED, stream, targets, n_source, 0, indegree, False, multapses
        )
        assert np.all(np.diff(indptr) == indegree)
        assert sources.min() >= 0
        assert sources.max() < n_source
        _assert_no_autapses(indptr, sources, np.arange(n_source))
        if not multapses:
            _assert_no_multapses(indptr, sources)
        rows.append(sources.reshape(n_source, indegree))
    drawn = np.concatenate(rows)
    # in the frame of its target (source - target mod n) every row must be uniform on 1..n-1
    relative = (drawn - np.tile(np.arange(n_source), 6)[:, None]) % n_source
    counts = np.bincount(relative.ravel(), minlength=n_source)
    assert counts[0] == 0
    _assert_p_value_ok(stats.chisquare(counts[1:]).pvalue)
    _assert_p_value_ok(stats.chisquare(np.bincount(drawn.ravel(), minlength=n_source)).pvalue)


def test_fixed_indegree_with_multapses_repeats_sources() -> None:
    indptr, sources = connect.fixed_indegree(SEED, STREAM, _gids(50), 10, 1000, 30, True, True)
    rows = _rows(indptr, sources)
    assert all(np.unique(r).size < r.size for r in rows)


def test_fixed_indegree_allows_autapses_when_asked() -> None:
    indptr, sources = connect.fixed_indegree(SEED, STREAM, _gids(200), 20, 0, 10, True, False)
    rows = _rows(indptr, sources)
    assert sum(int(t in r) for t, r in zip(range(20), rows, strict=False)) > 0


@pytest.mark.parametrize(("indegree", "multapses"), [(5, True), (5, False), (45, False)])
def test_fixed_indegree_is_rank_independent(indegree: int, multapses: bool) -> None:
    def build(targets: np.ndarray) -> Csr:
        return connect.fixed_indegree(SEED, STREAM, targets, 50, 0, indegree, False, multapses)

    _assert_split_invariant(build, _gids(40))


def test_fixed_indegree_depends_on_seed_and_stream() -> None:
    a = connect.fixed_indegree(SEED, STREAM, _gids(10), 1000, 0, 5, True, True)[1]
    b = connect.fixed_indegree(SEED + 1, STREAM, _gids(10), 1000, 0, 5, True, True)[1]
    c = connect.fixed_indegree(SEED, STREAM + 1, _gids(10), 1000, 0, 5, True, True)[1]
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fixed_indegree_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError, match="more distinct"):
        connect.fixed_indegree(SEED, STREAM, _gids(3), 10, 0, 10, False, False)
    with pytest.raises(ValueError, match="indegree must be"):
        connect.fixed_indegree(SEED, STREAM, _gids(3), 10, 0, -1, True, True)
    with pytest.raises(ValueError, match="no eligible partner"):
        connect.fixed_indegree(SEED, STREAM, _gids(1), 1, 0, 1, False, True)


# --------------------------------------------------------------------------------------------
# pairwise_bernoulli
# --------------------------------------------------------------------------------------------


def test_pairwise_bernoulli_degrees_are_binomial() -> None:
    n_source, n_targets, p = 300, 3000, 0.05
    indptr, sources = connect.pairwise_bernoulli(
        SEED, STREAM, _gids(n_targets), n_source, 0, p, False
    )
    indegree = np.diff(indptr)
    # targets 0..299 exclude themselves (299 eligible), the rest see all 300 sources
    _degree_test(indegree[n_source:], stats.binom(n_source, p).pmf)
    _degree_test(indegree[:n_source], stats.binom(n_source - 1, p).pmf)
    total_pairs = n_targets * n_source - n_source
    assert abs(sources.size - p * total_pairs) < 5 * np.sqrt(total_pairs * p * (1 - p))
    _assert_p_value_ok(stats.chisquare(np.bincount(sources, minlength=n_source)).pvalue)
    _assert_no_autapses(indptr[: n_source + 1], sources, np.arange(n_source))
    for row in _rows(indptr, sources):
        assert np.all(np.diff(row) > 0)


def test_pairwise_bernoulli_pairs_are_independent() -> None:
    # P(s and s+1 both connected) must be p**2: geometric skipping must not correlate neighbours
    n_source, n_targets, p = 50, 4000, 0.3
    indptr, sources = connect.pairwise_bernoulli(
        SEED, STREAM, _gids(n_targets), n_source, 10**6, p, True
    )
    adjacency = np.zeros((n_targets, n_source), dtype=bool)
    adjacency[np.repeat(np.arange(n_targets), np.diff(indptr)), sources] = True
    both = (adjacency[:, :-1] & adjacency[:, 1:]).mean()
    n_pairs = n_targets * (n_source - 1)
    assert abs(both - p * p) < 5 * np.sqrt(p * p * (1 - p * p) / n_pairs)


@pytest.mark.parametrize("autapses", [True, False])
def test_pairwise_bernoulli_extremes(autapses: bool) -> None:
    targets = _gids(7, 3)
    empty = connect.pairwise_bernoulli(SEED, STREAM, targets, 10, 0, 0.0, autapses)
    assert empty[1].size == 0
    assert np.all(empty[0] == 0)
    full = connect.pairwise_bernoulli(SEED, STREAM, targets, 10, 0, 1.0, autapses)
    expected = connect.all_to_all(targets, 10, 0, autapses)
    assert np.array_equal(full[0], expected[0])
    assert np.array_equal(full[1], expected[1])


def test_pairwise_bernoulli_is_rank_independent() -> None:
    def build(targets: np.ndarray) -> Csr:
        return connect.pairwise_bernoulli(SEED, STREAM, targets, 80, 0, 0.1, False)

    _assert_split_invariant(build, _gids(60))


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_pairwise_bernoulli_rejects_bad_probability(p: float) -> None:
    with pytest.raises(ValueError, match="p must be"):
        connect.pairwise_bernoulli(SEED, STREAM, _gids(3), 10, 0, p, True)


def test_pairwise_bernoulli_grows_past_its_first_guess() -> None:
    # one target with p = 0.5 over many sources overflows the initial capacity estimate
    # (expected + 6 sd + 16) only by chance; many small rows exercise the per-row growth
    indptr, sources = connect.pairwise_bernoulli(SEED, STREAM, _gids(1), 100_000, 0, 0.5, True)
    assert indptr[-1] == sources.size
    assert abs(sources.size - 50_000) < 5 * np.sqrt(25_000)


# --------------------------------------------------------------------------------------------
# fixed_outdegree
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("multapses", [True, False])
def test_fixed_outdegree_is_exact_with_binomial_indegrees(multapses: bool) -> None:
    n_source, n_target, outdegree = 20_000, 1000, 10
    indptr, sources = connect.fixed_outdegree_local(
        SEED, STREAM, n_source, 0, n_target, 0, outdegree, False, multapses, 0, n_target
    )
    assert np.all(np.bincount(sources, minlength=n_source) == outdegree)
    _assert_no_autapses(indptr, sources, np.arange(n_target))
    for row in _rows(indptr, sources):
        assert np.all(np.diff(row) >= 0)
    if not multapses:
        _assert_no_multapses(indptr, sources)
    # sources >= n_target can reach every target: each of them hits a given target with
    # probability outdegree / n_target (no multapses) or binomially (multapses)
    far = sources >= n_target
    targets = np.repeat(np.arange(n_target), np.diff(indptr))
    indegree_far = np.bincount(targets[far], minlength=n_target)
    n_far = n_source - n_target
    if multapses:
        pmf = stats.binom(n_far * outdegree, 1 / n_target).pmf
    else:
        pmf = stats.binom(n_far, outdegree / n_target).pmf
    _degree_test(indegree_far, pmf)


def test_fixed_outdegree_local_ranges_partition_the_full_build() -> None:
    args = (SEED, STREAM, 300, 500, 90, 0, 7, True, False)
    full_ip, full_src = connect.fixed_outdegree_local(*args, 0, 90)
    parts = [
        connect.fixed_outdegree_local(*args, lo, hi) for lo, hi in [(0, 31), (31, 32), (32, 90)]
    ]
    assert np.array_equal(full_src, np.concatenate([p[1] for p in parts]))
    degrees = np.concatenate([np.diff(p[0]) for p in parts])
    assert np.array_equal(np.diff(full_ip), degrees)
    assert connect.fixed_outdegree_local(*args, 40, 40)[1].size == 0


def test_fixed_outdegree_rejects_bad_ranges() -> None:
    with pytest.raises(ValueError, match="target_lo"):
        connect.fixed_outdegree_local(SEED, STREAM, 10, 0, 10, 0, 2, True, True, 5, 11)
    with pytest.raises(ValueError, match="more distinct"):
        connect.fixed_outdegree_local(SEED, STREAM, 10, 0, 10, 0, 10, False, False, 0, 10)


# --------------------------------------------------------------------------------------------
# fixed_total_number
# --------------------------------------------------------------------------------------------


def test_fixed_total_number_counts_are_multinomial() -> None:
    n_total, n_targets = 20_000, 2_000
    counts = connect.fixed_total_number_counts(SEED, STREAM, n_total, n_targets)
    assert counts.sum() == n_total
    assert counts.min() >= 0
    _degree_test(counts, stats.binom(n_total, 1 / n_targets).pmf)
    again = connect.fixed_total_number_counts(SEED, STREAM, n_total, n_targets)
    assert np.array_equal(counts, again)


def test_fixed_total_number_counts_without_multapses_are_hypergeometric() -> None:
    n_targets, eligible, n_total = 2_000, 12, 15_000
    counts = connect.fixed_total_number_counts(SEED, STREAM, n_total, n_targets, eligible)
    assert counts.sum() == n_total
    assert counts.max() <= eligible
    _degree_test(counts, stats.hypergeom(n_targets * eligible, eligible, n_total).pmf)


def test_fixed_total_number_counts_edge_cases() -> None:
    assert connect.fixed_total_number_counts(SEED, STREAM, 0, 5).tolist() == [0] * 5
    assert connect.fixed_total_number_counts(SEED, STREAM, 9, 1).tolist() == [9]
    assert connect.fixed_total_number_counts(SEED, STREAM, 12, 4, 3).tolist() == [3] * 4
    assert connect.fixed_total_number_counts(SEED, STREAM, 0, 0).size == 0
    with pytest.raises(ValueError, match="distinct eligible pairs"):
        connect.fixed_total_number_counts(SEED, STREAM, 13, 4, 3)
    with pytest.raises(ValueError, match="no targets"):
        connect.fixed_total_number_counts(SEED, STREAM, 1, 0)


@pytest.mark.parametrize("multapses", [True, False])
def test_fixed_total_number_builds_exactly_n_uniform_pairs(multapses: bool) -> None:
    n_source, n_targets, n_total = 40, 500, 8_000
    eligible = -1 if multapses else n_source - 1
    counts = connect.fixed_total_number_counts(SEED, STREAM, n_total, n_targets, eligible)
    indptr, sources = connect.fixed_total_number(
        SEED, STREAM, _gids(n_targets), counts, n_source, 0, False, multapses
    )
    assert indptr[-1] == sources.size == n_total
    assert np.array_equal(np.diff(indptr), counts)
    _assert_no_autapses(indptr[: n_source + 1], sources, np.arange(n_source))
    if not multapses:
        _assert_no_multapses(indptr, sources)
    _assert_p_value_ok(
        stats.chisquare(np.bincount(sources[indptr[n_source] :], minlength=n_source)).pvalue
    )


def test_fixed_total_number_is_rank_independent() -> None:
    targets = _gids(50, 7)
    counts = connect.fixed_total_number_counts(SEED, STREAM, 600, targets.size)
    lookup = dict(zip(targets.tolist(), counts.tolist(), strict=True))

    def build(part: np.ndarray) -> Csr:
        part_counts = np.array([lookup[t] for t in part.tolist()], dtype=np.int64)
        return connect.fixed_total_number(SEED, STREAM, part, part_counts, 30, 0, True, False)

    _assert_split_invariant(build, targets)


# --------------------------------------------------------------------------------------------
# count samplers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "p"),
    [
        (20, 0.3),
        (1000, 0.004),
        (200, 0.5),
        (1000, 0.2),
        (50_000, 0.001),
        (1000, 0.93),
        (10**9, 1e-5),
    ],
)
def test_binomial_follows_the_binomial_pmf(n: int, p: float) -> None:
    draws = np.array([connect.binomial(SEED, STREAM, key, 3, n, p) for key in range(200_000)])
    assert draws.min() >= 0
    assert draws.max() <= n
    dist = stats.binom(n, p)
    # bins lo..hi, the two outer ones holding the tails
    lo, hi = int(dist.ppf(1e-6)), int(dist.isf(1e-6)) + 1
    support = np.arange(lo, hi + 1)
    expected = dist.pmf(support)
    expected[0] = dist.cdf(lo)
    expected[-1] = dist.sf(hi - 1)
    observed = np.bincount(np.clip(draws, lo, hi) - lo, minlength=support.size)
    _assert_p_value_ok(_chi2_p(observed, draws.size * expected))


def test_binomial_degenerate_cases() -> None:
    assert connect.binomial(SEED, STREAM, 0, 0, 0, 0.5) == 0
    assert connect.binomial(SEED, STREAM, 0, 0, 10, 0.0) == 0
    assert connect.binomial(SEED, STREAM, 0, 0, 10, 1.0) == 10


@pytest.mark.parametrize(
    ("good", "bad", "draws"), [(12, 100, 30), (500, 500, 400), (5, 5, 10), (10_000, 20_000, 5_000)]
)
def test_hypergeometric_follows_its_pmf(good: int, bad: int, draws: int) -> None:
    values = np.array(
        [connect.hypergeometric(SEED, STREAM, key, 1, good, bad, draws) for key in range(20_000)]
    )
    dist = stats.hypergeom(good + bad, good, draws)
    support = np.arange(max(0, draws - bad), min(good, draws) + 1)
    observed = np.bincount(values - support[0], minlength=support.size)
    assert observed.size == support.size
    if support.size == 1:
        return
    _assert_p_value_ok(_chi2_p(observed, values.size * dist.pmf(support)))
