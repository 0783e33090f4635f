"""Medians, derived metrics, ratios, speed-up and rate agreement from synthetic runs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from bench.stats import (
    WEIGHT_ABS_TOLERANCE,
    median,
    rate_rows,
    rate_tolerance,
    rates_agree,
    ratios,
    speedup,
    summarize,
    synaptic_events,
    weight_rows,
    weight_tolerance,
)

CASE: dict[str, Any] = {
    "name": "net",
    "duration_ms": 500.0,
    "population_sizes": {"E": 100, "I": 50},
    "projections": [["E", 1000], ["I", 200]],
}


def run(config: str, rep: int, sim_s: float, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "case": "net",
        "config": config,
        "rep": rep,
        "ok": True,
        "error": "",
        "wall_s": sim_s + 2.0,
        "build_s": 1.0,
        "sim_s": sim_s,
        "compile_s": None,
        "peak_rss_bytes": 3000.0,
        "n_synapses": 1200,
        "n_spikes": {"E": 500, "I": 100},
    }
    found.update(extra)
    return found


def test_median_ignores_missing_values() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([None]) is None


def test_synaptic_events_are_spikes_times_mean_out_degree() -> None:
    # E: 500 spikes x 10 synapses per E neuron; I: 100 spikes x 4 per I neuron.
    assert (
        synaptic_events([("E", 1000), ("I", 200)], {"E": 100, "I": 50}, {"E": 500, "I": 100})
        == 5400
    )


def test_summary_medians_and_derived_metrics() -> None:
    runs = [run("a", 0, 2.0), run("a", 1, 4.0), run("a", 2, 3.0, peak_rss_bytes=5400.0)]
    summary = summarize(CASE, "a", runs, baseline_bytes=600.0)
    assert summary.n_ok == 3
    assert summary.sim_s == 3.0
    assert summary.rtf == 6.0  # 3 s of wall time for 0.5 s simulated
    assert summary.wall_s == 5.0
    assert summary.bytes_per_synapse == pytest.approx((3000.0 - 600.0) / 1200)
    assert summary.events_per_s == pytest.approx(5400 / 3.0)
    assert summary.rates_hz == {"E": 10.0, "I": 4.0}


def test_bytes_per_synapse_divide_by_the_synapses_built() -> None:
    # 1,150 synapses built (not the case's expected 1,200), split over two ranks.
    runs = [run("a", 0, 2.0, n_synapses=1150, n_synapses_per_rank=[600, 550])]
    summary = summarize(CASE, "a", runs, baseline_bytes=600.0)
    assert summary.n_synapses == 1150
    assert summary.n_synapses_per_rank == [600, 550]
    assert summary.bytes_per_synapse == pytest.approx((3000.0 - 600.0) / 1150)


def test_a_presimulation_is_left_out_of_the_rtf_and_the_events_not_the_rates() -> None:
    # NEST: the first 5 ms (construction) had 50 E and 10 I spikes; sim_s covers 495 ms.
    presim = {"presim_ms": 5.0, "n_spikes_presim": {"E": 50, "I": 10}}
    summary = summarize(CASE, "nest", [run("nest", 0, 2.97, **presim)], baseline_bytes=None)
    assert summary.sim_s == 2.97
    assert summary.rtf == pytest.approx(2.97 / 0.495)
    # E: 450 spikes x 10 synapses; I: 90 x 4, in 2.97 s.
    assert summary.events_per_s == pytest.approx((450 * 10 + 90 * 4) / 2.97)
    # Rates count every spike over the whole 0.5 s.
    assert summary.rates_hz == {"E": 10.0, "I": 4.0}


def test_runs_without_peak_memory_have_no_memory_figures() -> None:
    # Runs through a pool: the measured process tree is only the client.
    runs = [run("pool", rep, sim_s, peak_rss_bytes=None) for rep, sim_s in enumerate((2.0, 4.0))]
    summary = summarize(CASE, "pool", runs, baseline_bytes=600.0)
    assert (summary.n_ok, summary.sim_s, summary.wall_s) == (2, 3.0, 5.0)
    assert summary.peak_rss_bytes is None
    assert summary.bytes_per_synapse is None
    assert summary.events_per_s == pytest.approx((5400 / 2.0 + 5400 / 4.0) / 2)


def test_memory_runs_give_the_peak_and_nothing_else() -> None:
    timed = [run("a", rep, sim_s, peak_rss_bytes=2400.0) for rep, sim_s in enumerate((2.0, 4.0))]
    memory = run("a", 2, 50.0, peak_rss_bytes=3600.0, memory_run=True, n_spikes={"E": 1})
    summary = summarize(CASE, "a", [*timed, memory], baseline_bytes=600.0)
    assert (summary.n_ok, summary.n_runs) == (2, 2)
    assert (summary.sim_s, summary.wall_s) == (3.0, 5.0)
    assert summary.rates_hz == {"E": 10.0, "I": 4.0}
    assert summary.peak_rss_bytes == 3600.0
    assert summary.bytes_per_synapse == pytest.approx((3600.0 - 600.0) / 1200)
    # A failed memory run leaves the timed runs' peak, and says why.
    failed = {**memory, "ok": False, "error": "exit status 1: boom"}
    summary = summarize(CASE, "a", [*timed, failed], baseline_bytes=600.0)
    assert summary.peak_rss_bytes == 2400.0
    assert summary.errors == ["exit status 1: boom"]


def test_rates_are_means_over_realizations_and_nothing_else_comes_from_them() -> None:
    """Runs of further seeds count once each in the rates (the timed repetitions of the case's
    own seed once, as their median); times, memory and spike-count checks ignore them."""
    timed = [run("a", rep, 2.0, n_spikes={"E": 500, "I": 100}) for rep in range(3)]
    seeds = [
        run("a", 1, 90.0, seed=8, peak_rss_bytes=9e9, n_spikes={"E": 600, "I": 150}),
        run("a", 2, 90.0, seed=9, peak_rss_bytes=9e9, n_spikes={"E": 400, "I": 50}),
        {**run("a", 3, 90.0, seed=10, n_spikes={"E": 9999}), "ok": False, "error": "boom"},
    ]
    summary = summarize(CASE, "a", [*timed, *seeds], baseline_bytes=600.0)
    assert summary.n_realizations == 3
    assert summary.rates_hz == {"E": 10.0, "I": 4.0}  # (500 + 600 + 400) / 3 / (100 * 0.5 s)
    assert (summary.n_ok, summary.n_runs) == (3, 3)
    assert (summary.sim_s, summary.peak_rss_bytes) == (2.0, 3000.0)
    assert summary.spike_counts == [{"E": 500, "I": 100}] * 3
    assert summary.errors == ["boom"]
    seeds[0]["n_spikes"] = {"E": 1100, "I": 100}
    summary = summarize(CASE, "a", [*timed, *seeds], baseline_bytes=600.0)
    assert summary.rates_hz["E"] == pytest.approx((500 + 1100 + 400) / 3 / 50)
    alone = summarize(CASE, "a", timed, baseline_bytes=600.0)
    assert (alone.n_realizations, alone.rates_hz) == (1, {"E": 10.0, "I": 4.0})


def test_failed_runs_are_counted_and_explained() -> None:
    runs = [run("a", 0, 2.0), run("a", 1, 9.0, ok=False, error="exit status 1: boom")]
    summary = summarize(CASE, "a", runs, baseline_bytes=None)
    assert (summary.n_ok, summary.n_runs) == (1, 2)
    assert summary.sim_s == 2.0
    assert summary.bytes_per_synapse is None
    assert summary.errors == ["exit status 1: boom"]
    nothing = summarize(CASE, "b", runs, baseline_bytes=None)
    assert nothing.n_runs == 0
    assert nothing.sim_s is None


def test_ratios_and_speedup() -> None:
    ours = summarize(CASE, "ours", [run("ours", 0, 1.0)], baseline_bytes=0.0)
    theirs = summarize(CASE, "theirs", [run("theirs", 0, 4.0, build_s=3.0)], baseline_bytes=0.0)
    found = ratios(ours, theirs)
    assert found["sim_s"] == 0.25
    assert found["rtf"] == 0.25
    assert found["build_s"] == pytest.approx(1 / 3)
    assert found["events_per_s"] == 4.0
    assert speedup(theirs, ours) == 4.0


def test_rates_agree_relative_and_absolute() -> None:
    assert rates_agree(37.0, 37.5)
    assert not rates_agree(35.0, 37.5)
    assert rates_agree(0.9, 1.05)  # 0.15 Hz off: inside the 0.2 Hz floor
    assert not rates_agree(0.7, 1.0)


def test_rate_rows_flag_disagreement_against_nest() -> None:
    runs = [
        run("brainsim", 0, 1.0),
        run("nest", 0, 1.0),
        run("brian2", 0, 1.0, n_spikes={"E": 600, "I": 100}),
    ]
    summaries = [summarize(CASE, config, runs, None) for config in ("brainsim", "nest", "brian2")]
    rows = {row.population: row for row in rate_rows(summaries)}
    assert rows["E"].reference == "nest"
    assert rows["E"].disagreeing == ["brian2"]
    assert rows["I"].disagreeing == []
    assert rows["E"].rates_hz["brian2"] == 12.0


def _realizations(config: str, counts: list[int]) -> list[dict[str, Any]]:
    """One timed run of the case's seed and one run per further seed, E spike counts given."""
    return [
        run(config, k, 1.0, n_spikes={"E": count, "I": 100}, seed=None if k == 0 else 10 + k)
        for k, count in enumerate(counts)
    ]


def test_the_tolerance_widens_to_three_standard_errors_of_noisy_realizations() -> None:
    """A population whose rate varies much from seed to seed is not flagged for a difference
    its realizations explain; one that varies little is, at the plain 5 %."""
    noisy = _realizations("brainsim", [500, 620, 440, 560, 480])  # mean 520, 10.4 Hz
    steady = _realizations("brian2", [521, 519, 520, 522, 518])  # 10.4 Hz too
    reference = _realizations("nest", [470, 490, 480, 475, 485])  # mean 480, 9.6 Hz
    summaries = [
        summarize(CASE, config, [*noisy, *steady, *reference], None)
        for config in ("brainsim", "nest", "brian2")
    ]
    assert [s.n_realizations for s in summaries] == [5, 5, 5]
    row = next(r for r in rate_rows(summaries) if r.population == "E")
    assert row.rates_hz == {"brainsim": 10.4, "nest": 9.6, "brian2": 10.4}
    # 8 % off: the noisy one's tolerance is 3 standard errors of the difference; the steady
    # one's stays at 5 % of NEST's rate.
    assert row.disagreeing == ["brian2"]
    assert row.tolerances_hz["brian2"] == pytest.approx(0.05 * 9.6)
    sd_noisy = float(np.std([500, 620, 440, 560, 480], ddof=1)) / 50
    sd_nest = float(np.std([470, 490, 480, 475, 485], ddof=1)) / 50
    expected = 3 * math.sqrt(sd_noisy**2 / 5 + sd_nest**2 / 5)
    assert row.tolerances_hz["brainsim"] == pytest.approx(expected)
    assert rate_tolerance(9.6, expected / 3) == pytest.approx(expected)
    # With one realization nothing is known of the spread: the plain tolerance.
    alone = [summarize(CASE, c, [noisy[0], reference[0]], None) for c in ("brainsim", "nest")]
    row = next(r for r in rate_rows(alone) if r.population == "E")
    assert row.tolerances_hz["brainsim"] == pytest.approx(0.05 * 9.4)


def _weights(mean: float, sd: float, count: int = 1000) -> dict[str, Any]:
    return {"EE": {"count": count, "mean": mean, "sd": sd}}


def test_final_weights_are_means_over_realizations() -> None:
    runs = [
        run("a", 0, 2.0, weights=_weights(0.100, 0.0020)),
        run("a", 1, 2.0, weights=_weights(0.102, 0.0030)),  # timed runs: their median
        run("a", 0, 9.0, seed=2, weights=_weights(0.104, 0.0030)),
        run("a", 0, 9.0, seed=3, weights=_weights(0.106, 0.0040)),
    ]
    summary = summarize(CASE, "a", runs, baseline_bytes=600.0)
    assert summary.weights["EE"]["mean"] == pytest.approx((0.101 + 0.104 + 0.106) / 3)
    assert summary.weights["EE"]["sd"] == pytest.approx((0.0025 + 0.0030 + 0.0040) / 3)
    assert summary.weight_spread["EE"]["mean"] == pytest.approx(
        float(np.std([0.101, 0.104, 0.106], ddof=1))
    )
    assert summary.weight_realizations == {"EE": 3}
    assert summary.n_plastic_synapses == 1000
    # A case without plastic projections has none.
    plain = summarize(CASE, "a", [run("a", 0, 2.0)], baseline_bytes=600.0)
    assert (plain.weights, plain.n_plastic_synapses) == ({}, None)


def test_weight_tolerance_follows_the_rates_rule_with_a_floor_of_the_mean_weight() -> None:
    assert weight_tolerance(0.1, 0.1) == pytest.approx(0.005)  # 5 % of the value
    assert weight_tolerance(0.002, 0.1) == pytest.approx(1e-4)  # 5 % of a spread
    assert weight_tolerance(1e-6, 0.1) == pytest.approx(WEIGHT_ABS_TOLERANCE * 0.1)  # the floor
    assert weight_tolerance(0.002, 0.1, standard_error=0.001) == pytest.approx(0.003)
    assert weight_tolerance(-1.0, -1.0) == pytest.approx(0.05)  # inhibitory weights


def test_weight_rows_check_mean_and_sd_against_nest() -> None:
    runs = [
        run("brainsim", 0, 2.0, weights=_weights(0.1002, 0.0026)),
        run("nest", 0, 9.0, weights=_weights(0.1000, 0.0030)),  # sd 13 % higher
        run("brian2", 0, 9.0),  # no plastic synapses (not translated): no weights
    ]
    found = [summarize(CASE, config, runs, 600.0) for config in ("brainsim", "nest", "brian2")]
    mean, sd = weight_rows(found)
    assert (mean.case, mean.projection, mean.statistic, mean.reference) == (
        "net",
        "EE",
        "mean",
        "nest",
    )
    assert mean.values == {"brainsim": 0.1002, "nest": 0.1000}
    assert mean.disagreeing == []
    assert mean.tolerances["brainsim"] == pytest.approx(0.005)
    assert sd.statistic == "sd"
    assert sd.disagreeing == ["brainsim"]
    assert sd.tolerances["brainsim"] == pytest.approx(1.5e-4)
    assert sd.realizations == {"brainsim": 1, "nest": 1}
