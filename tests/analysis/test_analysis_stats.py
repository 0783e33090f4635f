"""Every statistic against hand-computed values and against the known limits of Poisson and
regular spike trains."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from brainsim.analysis import (
    SpikeTrains,
    cv_isi,
    fano_factor,
    firing_rates_hz,
    mean_cv_isi,
    population_rate,
    population_stats,
    spike_count_correlation,
)


def trains(size: int, *per_neuron: list[float]) -> SpikeTrains:
    """SpikeTrains from per-neuron lists of times (ms), sorted as a store holds them."""
    times = np.array([t for spikes in per_neuron for t in spikes], dtype=np.float64)
    ids = np.array([i for i, spikes in enumerate(per_neuron) for _ in spikes], dtype=np.int64)
    order = np.lexsort((ids, times))
    return SpikeTrains("P", times[order], ids[order], size)


def poisson(size: int, rate_hz: float, duration_ms: float, seed: int) -> SpikeTrains:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate_hz * duration_ms / 1000.0, size=size)
    ids = np.repeat(np.arange(size, dtype=np.int64), counts)
    times = rng.uniform(0.0, duration_ms, size=ids.size)
    order = np.lexsort((ids, times))
    return SpikeTrains("P", times[order], ids[order], size)


def test_rates_count_spikes_in_the_half_open_window_including_silent_neurons() -> None:
    spikes = trains(4, [100.0, 200.0, 999.0], [0.0], [], [1.0, 2.0, 3.0, 4.0, 5.0, 1000.0])
    np.testing.assert_allclose(firing_rates_hz(spikes, 0.0, 1000.0), [3.0, 1.0, 0.0, 5.0])
    np.testing.assert_allclose(firing_rates_hz(spikes, 0.0, 500.0), [4.0, 2.0, 0.0, 10.0])
    result = population_stats(spikes, 0.0, 1000.0)
    assert result.mean_rate_hz == pytest.approx(2.25)
    assert result.std_rate_hz == pytest.approx(math.sqrt(14.75 / 4))
    assert result.n_spikes == 9
    assert result.n_neurons == 4


def test_grid_times_with_rounding_error_count_as_on_the_boundary() -> None:
    # 2050 * 0.1 is 205.00000000000003 and 0.1 * 3 * 683.3333... style products land either side
    just_above, just_below = 2050 * 0.1, np.nextafter(205.0, 0.0)
    spikes = trains(2, [just_above], [just_below])
    np.testing.assert_array_equal(firing_rates_hz(spikes, 205.0, 210.0), [200.0, 200.0])
    np.testing.assert_array_equal(firing_rates_hz(spikes, 200.0, 205.0), [0.0, 0.0])


def test_cv_isi_hand_computed() -> None:
    spikes = trains(
        4,
        [0.0, 10.0, 30.0],  # ISIs 10, 20: mean 15, std 5
        [5.0, 15.0, 25.0, 35.0],  # regular: CV 0
        [1.0, 50.0],  # two spikes: excluded
        [],
    )
    cv = cv_isi(spikes, 0.0, 100.0)
    np.testing.assert_allclose(cv[:2], [1.0 / 3.0, 0.0])
    assert np.isnan(cv[2:]).all()
    mean, n = mean_cv_isi(spikes, 0.0, 100.0)
    assert (mean, n) == (pytest.approx(1.0 / 6.0), 2)
    # The window cuts neuron 0 down to two spikes, so only neuron 1 is left.
    assert mean_cv_isi(spikes, 5.0, 100.0) == (pytest.approx(0.0), 1)
    assert math.isnan(mean_cv_isi(trains(1, [1.0]), 0.0, 10.0)[0])


def test_cv_isi_of_poisson_trains_is_near_one_and_matches_scipy() -> None:
    spikes = poisson(200, 40.0, 10_000.0, seed=1)
    cv = cv_isi(spikes, 0.0, 10_000.0)
    mean, n = mean_cv_isi(spikes, 0.0, 10_000.0)
    assert n == 200
    assert mean == pytest.approx(1.0, abs=0.03)
    for node in (0, 17, 199):
        isi = np.diff(spikes.times_ms[spikes.node_ids == node])
        assert cv[node] == pytest.approx(scipy_stats.variation(isi))


def test_fano_factor_hand_computed_and_partial_bins_dropped() -> None:
    # 5 ms bins over [0, 22): counts 1, 3, 0, 4 (the spike at 21 ms is in the dropped 20-22 bin)
    spikes = trains(2, [1.0, 6.0, 7.0, 15.0, 16.0], [8.0, 17.0, 18.0, 21.0])
    histogram = population_rate(spikes, 0.0, 22.0)
    np.testing.assert_array_equal(histogram.counts, [1, 3, 0, 4])
    np.testing.assert_allclose(histogram.edges_ms, [0.0, 5.0, 10.0, 15.0, 20.0])
    assert fano_factor(spikes, 0.0, 22.0) == pytest.approx(2.5 / 2.0)
    assert fano_factor(spikes, 0.0, 20.0, bin_ms=10.0) == pytest.approx(0.0)
    assert math.isnan(fano_factor(trains(3, [], [], []), 0.0, 20.0))


def test_fano_factor_of_independent_poisson_neurons_is_near_one() -> None:
    spikes = poisson(500, 10.0, 20_000.0, seed=2)
    assert fano_factor(spikes, 0.0, 20_000.0) == pytest.approx(1.0, abs=0.1)


def test_fano_factor_of_synchronous_firing_is_large() -> None:
    # 100 neurons fire together every 50 ms: counts alternate 100, 0, ... in 5 ms bins.
    volleys = [float(t) for t in range(0, 1000, 50)]
    spikes = trains(100, *[volleys] * 100)
    counts = population_rate(spikes, 0.0, 1000.0).counts
    assert fano_factor(spikes, 0.0, 1000.0) == pytest.approx(counts.var() / counts.mean())
    assert fano_factor(spikes, 0.0, 1000.0) == pytest.approx(90.0)


def test_population_rate_is_spikes_per_neuron_per_second() -> None:
    spikes = trains(4, [0.0, 1.0], [2.0], [12.0], [])
    histogram = population_rate(spikes, 0.0, 20.0, bin_ms=10.0)
    np.testing.assert_array_equal(histogram.counts, [3, 1])
    np.testing.assert_allclose(histogram.rate_hz, [3 / (4 * 0.01), 1 / (4 * 0.01)])
    np.testing.assert_allclose(histogram.centers_ms, [5.0, 15.0])


def test_spike_count_correlation_of_identical_opposite_and_independent_trains() -> None:
    on = [float(t) for t in range(0, 1000, 10)]  # bins 0, 2, 4, ... of 5 ms
    off = [t + 5.0 for t in on]  # bins 1, 3, 5, ...
    spikes = trains(4, on, list(on), off, [])
    result = spike_count_correlation(spikes, 0.0, 1000.0, n_sample=10)
    np.testing.assert_array_equal(result.node_ids, [0, 1, 2])
    np.testing.assert_allclose(result.matrix, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-12)
    assert result.mean == pytest.approx(-1.0 / 3.0)
    independent = spike_count_correlation(poisson(60, 20.0, 20_000.0, seed=3), 0.0, 20_000.0)
    assert abs(independent.mean) < 0.01
    assert independent.node_ids.size == 60


def test_spike_count_correlation_sample_is_seeded() -> None:
    spikes = poisson(300, 20.0, 2_000.0, seed=4)
    a = spike_count_correlation(spikes, 0.0, 2_000.0, n_sample=25, seed=9)
    b = spike_count_correlation(spikes, 0.0, 2_000.0, n_sample=25, seed=9)
    c = spike_count_correlation(spikes, 0.0, 2_000.0, n_sample=25, seed=10)
    assert a.node_ids.size == 25
    np.testing.assert_array_equal(a.node_ids, b.node_ids)
    assert not np.array_equal(a.node_ids, c.node_ids)
    assert math.isnan(spike_count_correlation(trains(3, [1.0], [], []), 0.0, 10.0).mean)


def test_population_stats_to_dict_is_json_ready() -> None:
    result = population_stats(trains(2, [1.0], []), 0.0, 10.0)
    as_dict = result.to_dict()
    assert as_dict["cv_isi_mean"] is None
    assert as_dict["n_cv_neurons"] == 0
    assert as_dict["mean_rate_hz"] == pytest.approx(50.0)
    assert as_dict["population"] == "P"


@pytest.mark.parametrize(
    ("start", "stop", "bin_ms"), [(10.0, 10.0, 5.0), (5.0, 1.0, 5.0), (0.0, 10.0, 0.0)]
)
def test_bad_windows_and_bins_are_value_errors(start: float, stop: float, bin_ms: float) -> None:
    with pytest.raises(ValueError, match=r"window|bin_ms"):
        population_stats(trains(1, [1.0]), start, stop, bin_ms=bin_ms)
