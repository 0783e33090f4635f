"""Turn measured runs into the benchmark's metrics: medians, ratios, speed-up, rate agreement.

Definitions (per case and simulator configuration, medians over the successful repetitions):

- construction time ``build_s``: each simulator's own clock around network construction;
- real-time factor ``rtf = sim_s / simulated seconds`` (wall seconds per simulated second),
  over the simulated time ``sim_s`` covers: the whole duration, less NEST's first short
  ``Simulate`` (``presim_ms``), which is part of its construction;
- whole-process time ``wall_s``: the command from start to exit, measured from outside;
- peak memory: peak RSS of the run's process tree (:mod:`bench.measure`); none for runs
  through a pool, whose ranks are not in the run's tree (their bytes per synapse are none too);
- bytes per synapse: ``(peak RSS - baseline peak RSS) / synapses``, the baseline being the
  same configuration running the 100-neuron circuit (start-up, libraries, JIT code, buffers),
  the synapses those the simulator built (brainsim: summed over its ranks);
- synaptic events per second: ``sum over projections of spikes(source) * synapses / size(source)``
  (spikes times mean out-degree) divided by ``sim_s``, counting the spikes of the span
  ``sim_s`` covers (NEST's first ``presim_ms`` excluded).

Population rates count the spikes of the whole duration for every simulator.

Final weights (plastic projections): each run reports the count, mean and standard deviation
of every plastic projection's weights at the end of the run; a configuration's ``mean`` and
``sd`` of a projection are the means of those over the realizations, as rates are, and they
agree with the reference's within :func:`weight_tolerance`: the rates' rule (5 % of the
reference value or 3 standard errors of the difference over realizations, whichever is larger)
with a floor of :data:`WEIGHT_ABS_TOLERANCE` times the reference's mean weight in place of the
rates' 0.2 Hz.

Ratios are brainsim (2 ranks) / reference for every metric, so < 1 is better for times and
memory and > 1 is better for events per second. Population rates agree when they differ by at
most :data:`RATE_REL_TOLERANCE` of the reference rate (the tolerance of brainsim's Brunel
test against NEST) or :data:`RATE_ABS_TOLERANCE_HZ`, whichever is larger.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "METRICS",
    "RATE_ABS_TOLERANCE_HZ",
    "RATE_REL_TOLERANCE",
    "RATE_STANDARD_ERRORS",
    "WEIGHT_ABS_TOLERANCE",
    "RateRow",
    "Summary",
    "WeightRow",
    "difference_standard_error",
    "median",
    "rate_rows",
    "rate_tolerance",
    "rates_agree",
    "ratios",
    "speedup",
    "summarize",
    "synaptic_events",
    "timed_ms",
    "timed_spikes",
    "weight_rows",
    "weight_tolerance",
]

RATE_REL_TOLERANCE = 0.05
"""Relative rate tolerance (tests/engine/test_brunel.py compares brainsim with NEST at 5%)."""

RATE_ABS_TOLERANCE_HZ = 0.2
"""Absolute floor of the rate tolerance, for populations firing below a few Hz."""

RATE_STANDARD_ERRORS = 3.0
"""Standard errors of the difference of two means over realizations below which rates are not
flagged (a two-sided test at about 0.3 % false alarms per population)."""

WEIGHT_ABS_TOLERANCE = 0.001
"""Floor of the weight tolerance as a fraction of the reference's mean final weight, as the
rates' 0.2 Hz is theirs: for a statistic near 0 (the spread of weights that barely moved), whose
5 % would be a vanishing tolerance; float32 storage and NEST's sampling of large projections
err far less than this (docs/benchmarks.md)."""

WEIGHT_STATISTICS: tuple[str, ...] = ("mean", "sd")
"""The statistics of a plastic projection's final weights that are compared."""

METRICS: tuple[str, ...] = (
    "build_s",
    "sim_s",
    "rtf",
    "wall_s",
    "peak_rss_bytes",
    "bytes_per_synapse",
    "events_per_s",
)
"""The metrics of :class:`Summary` that :func:`ratios` compares."""


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not ``None`` (``None`` when there are none)."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def synaptic_events(
    projections: Sequence[tuple[str, int]], sizes: Mapping[str, int], n_spikes: Mapping[str, int]
) -> float:
    """Synaptic events a run delivered: spikes of each source times its mean out-degree."""
    return sum(n_spikes.get(source, 0) * count / sizes[source] for source, count in projections)


@dataclass(frozen=True, slots=True)
class Summary:
    """Medians of one case on one configuration."""

    case: str
    config: str
    n_ok: int
    n_runs: int
    build_s: float | None = None
    sim_s: float | None = None
    rtf: float | None = None
    wall_s: float | None = None
    compile_s: float | None = None
    write_s: float | None = None
    peak_rss_bytes: float | None = None
    bytes_per_synapse: float | None = None
    events_per_s: float | None = None
    n_synapses: float | None = None
    """Synapses built (median over the runs; brainsim: summed over ranks)."""
    n_synapses_per_rank: list[int] | None = None
    """brainsim only: the synapses each rank built."""
    rates_hz: dict[str, float] = field(default_factory=dict)
    """Mean rate of each population over :attr:`n_realizations` realizations (seeds)."""
    n_realizations: int = 0
    rate_sd_hz: dict[str, float] = field(default_factory=dict)
    """Standard deviation of each population's rate over the realizations (with two or more)."""
    spike_counts: list[dict[str, int]] = field(default_factory=list)
    """Spike counts of every successful run (brainsim's must not depend on the rank count)."""
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per plastic projection, ``mean`` and ``sd`` of its final weights, each the mean over
    the realizations (``weight_realizations``) of one realization's value."""
    weight_spread: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per plastic projection, the standard deviation over realizations of ``mean`` and ``sd``
    (with two or more realizations)."""
    weight_realizations: dict[str, int] = field(default_factory=dict)
    """Per plastic projection, the realizations its weight statistics are means over."""
    n_plastic_synapses: float | None = None
    """Plastic synapses built (median over the timed runs of the sum of the plastic
    projections' weight counts); None without plastic projections."""
    errors: list[str] = field(default_factory=list)

    def get(self, metric: str) -> float | None:
        """A metric by name."""
        value = getattr(self, metric)
        return None if value is None else float(value)


def summarize(
    case: Mapping[str, Any],
    config: str,
    runs: Sequence[Mapping[str, Any]],
    baseline_bytes: float | None,
) -> Summary:
    """Medians of ``runs`` (dicts of :class:`~bench.runners.RunResult`) of one case and config.

    ``case`` holds ``name``, ``duration_ms``, ``population_sizes`` and ``projections``.
    """
    every = [run for run in runs if run["case"] == case["name"] and run["config"] == config]
    errors = sorted({run["error"] for run in every if not run["ok"] and run["error"]})
    # Memory runs (sampled every 10 ms) give the peak memory when there are any; runs of other
    # realizations (other seeds) only their rates; the timed runs give everything else.
    realizations = [run for run in every if run.get("seed") is not None and run["ok"]]
    mine = [run for run in every if not run.get("memory_run") and run.get("seed") is None]
    ok = [run for run in mine if run["ok"]]
    if not ok:
        return Summary(case["name"], config, 0, len(mine), errors=errors)
    for_memory = [run for run in every if run.get("memory_run") and run["ok"]] or ok
    duration_s = case["duration_ms"] / 1000.0
    sizes = case["population_sizes"]
    projections = [tuple(item) for item in case["projections"]]
    peak = median(run["peak_rss_bytes"] for run in for_memory)
    synapses = median(run["n_synapses"] for run in ok)
    bytes_per_synapse = None
    if peak is not None and baseline_bytes is not None and synapses:
        bytes_per_synapse = (peak - baseline_bytes) / synapses
    sim_s = median(run["sim_s"] for run in ok)
    rtf = median(
        run["sim_s"] * 1000.0 / span
        for run in ok
        if run["sim_s"] is not None and (span := timed_ms(run, case["duration_ms"])) > 0
    )
    events = median(
        synaptic_events(projections, sizes, timed_spikes(run)) / run["sim_s"]
        for run in ok
        if run["sim_s"]
    )
    # One count per realization: the timed runs' (the median of their repetitions) and each
    # further seed's; the rate is their mean.
    counts = [
        {name: statistics.median(run["n_spikes"].get(name, 0) for run in ok) for name in sizes},
        *({name: run["n_spikes"].get(name, 0) for name in sizes} for run in realizations),
    ]
    rates = {
        name: statistics.fmean(count[name] for count in counts) / (size * duration_s)
        for name, size in sizes.items()
    }
    spread = {
        name: statistics.stdev(count[name] for count in counts) / (size * duration_s)
        for name, size in sizes.items()
        if len(counts) > 1
    }
    weights, weight_spread, weight_realizations = _weights(ok, realizations)
    plastic = [sum(w["count"] for w in run["weights"].values()) for run in ok if run.get("weights")]
    return Summary(
        case=case["name"],
        config=config,
        n_ok=len(ok),
        n_runs=len(mine),
        build_s=median(run["build_s"] for run in ok),
        sim_s=sim_s,
        rtf=rtf,
        wall_s=median(run["wall_s"] for run in ok),
        compile_s=median(run.get("compile_s") for run in ok),
        write_s=median(run.get("write_s") for run in ok),
        peak_rss_bytes=peak,
        bytes_per_synapse=bytes_per_synapse,
        events_per_s=events,
        n_synapses=synapses,
        n_synapses_per_rank=_per_rank(ok),
        rates_hz=rates,
        rate_sd_hz=spread,
        n_realizations=len(counts),
        spike_counts=[dict(run["n_spikes"]) for run in ok],
        weights=weights,
        weight_spread=weight_spread,
        weight_realizations=weight_realizations,
        n_plastic_synapses=median(plastic),
        errors=errors,
    )


def _weights(
    ok: Sequence[Mapping[str, Any]], realizations: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]], dict[str, int]]:
    """Mean and spread over realizations of each plastic projection's final-weight statistics:
    one value per realization, the timed runs' (their median) and each further seed's."""
    means: dict[str, dict[str, float]] = {}
    spread: dict[str, dict[str, float]] = {}
    found: dict[str, int] = {}
    projections = dict.fromkeys(name for run in ok for name in run.get("weights", {}))
    for name in projections:
        per_statistic: dict[str, list[float]] = {}
        for statistic in WEIGHT_STATISTICS:
            timed = median(run.get("weights", {}).get(name, {}).get(statistic) for run in ok)
            values = [] if timed is None else [timed]
            values += [
                float(value)
                for run in realizations
                if (value := run.get("weights", {}).get(name, {}).get(statistic)) is not None
            ]
            if values:
                per_statistic[statistic] = values
        if not per_statistic:
            continue
        means[name] = {key: statistics.fmean(values) for key, values in per_statistic.items()}
        spread[name] = {
            key: statistics.stdev(values)
            for key, values in per_statistic.items()
            if len(values) > 1
        }
        found[name] = min(len(values) for values in per_statistic.values())
    return means, spread, found


def timed_ms(run: Mapping[str, Any], duration_ms: float) -> float:
    """Simulated time (ms) a run's ``sim_s`` covers: the duration less its ``presim_ms``."""
    return duration_ms - (run.get("presim_ms") or 0.0)


def timed_spikes(run: Mapping[str, Any]) -> dict[str, int]:
    """Spikes per population in the span ``sim_s`` covers (a run's ``n_spikes`` less those of
    its ``presim_ms``)."""
    before = run.get("n_spikes_presim") or {}
    return {name: count - before.get(name, 0) for name, count in run["n_spikes"].items()}


def _per_rank(runs: Sequence[Mapping[str, Any]]) -> list[int] | None:
    """The synapses per rank of the first run that has them (the same for every run of a
    case: construction depends on the seed and the rank count only)."""
    return next(
        (list(run["n_synapses_per_rank"]) for run in runs if run.get("n_synapses_per_rank")),
        None,
    )


def ratios(ours: Summary, reference: Summary) -> dict[str, float | None]:
    """``ours / reference`` for every metric in :data:`METRICS` (``None`` where one is missing)."""
    found: dict[str, float | None] = {}
    for metric in METRICS:
        mine, theirs = ours.get(metric), reference.get(metric)
        found[metric] = None if mine is None or not theirs else mine / theirs
    return found


def speedup(one_rank: Summary, more_ranks: Summary) -> float | None:
    """Simulation-phase speed-up ``sim_s(1 rank) / sim_s(N ranks)``."""
    if one_rank.sim_s is None or not more_ranks.sim_s:
        return None
    return one_rank.sim_s / more_ranks.sim_s


def rate_tolerance(reference_hz: float, standard_error_hz: float = 0.0) -> float:
    """How far a rate may be from the reference rate (Hz).

    ``standard_error_hz`` is the standard error of the difference of the two means over
    realizations; the tolerance is never below :data:`RATE_STANDARD_ERRORS` of it, so that
    populations whose rates vary much from one realization to the next are not flagged for
    what their realizations alone can explain.
    """
    return max(
        RATE_REL_TOLERANCE * reference_hz,
        RATE_ABS_TOLERANCE_HZ,
        RATE_STANDARD_ERRORS * standard_error_hz,
    )


def rates_agree(rate_hz: float, reference_hz: float, standard_error_hz: float = 0.0) -> bool:
    """Whether a population rate is within :func:`rate_tolerance` of the reference rate."""
    return abs(rate_hz - reference_hz) <= rate_tolerance(reference_hz, standard_error_hz)


def difference_standard_error(one: Summary, two: Summary, population: str) -> float:
    """Standard error of the difference of two summaries' mean rates of ``population`` (0 when
    either has a single realization: nothing is known of its spread)."""
    spread = []
    for summary in (one, two):
        sd = summary.rate_sd_hz.get(population)
        if sd is None or summary.n_realizations < 2:
            return 0.0
        spread.append(sd * sd / summary.n_realizations)
    return math.sqrt(sum(spread))


@dataclass(frozen=True, slots=True)
class RateRow:
    """One population's mean rate on every configuration, checked against the reference."""

    case: str
    population: str
    rates_hz: dict[str, float | None]
    reference: str | None
    disagreeing: list[str]
    """Configurations whose rate is outside the tolerance of the reference's."""
    tolerances_hz: dict[str, float] = field(default_factory=dict)
    """The tolerance each configuration's rate was checked with (:func:`rate_tolerance`)."""


def rate_rows(
    summaries: Sequence[Summary], preferred_references: Sequence[str] = ("nest", "brian2")
) -> list[RateRow]:
    """Population rates side by side for each case, against NEST (else Brian2, else none)."""
    rows = []
    cases = list(dict.fromkeys(summary.case for summary in summaries))
    for case in cases:
        mine = {s.config: s for s in summaries if s.case == case and s.n_ok}
        reference = next((name for name in preferred_references if name in mine), None)
        populations = list(dict.fromkeys(p for s in mine.values() for p in s.rates_hz))
        for population in populations:
            rates = {config: s.rates_hz.get(population) for config, s in mine.items()}
            disagreeing = []
            tolerances = {}
            reference_rate = None if reference is None else rates[reference]
            if reference is not None and reference_rate is not None:
                for config, rate in rates.items():
                    if rate is None:
                        continue
                    error = difference_standard_error(mine[config], mine[reference], population)
                    tolerances[config] = rate_tolerance(reference_rate, error)
                    if not rates_agree(rate, reference_rate, error):
                        disagreeing.append(config)
            rows.append(RateRow(case, population, rates, reference, disagreeing, tolerances))
    return rows


def weight_tolerance(
    reference_value: float, reference_mean: float, standard_error: float = 0.0
) -> float:
    """How far a statistic of the final weights may be from the reference's: the largest of
    :data:`RATE_REL_TOLERANCE` of the reference's value, :data:`WEIGHT_ABS_TOLERANCE` of the
    reference's mean weight, and :data:`RATE_STANDARD_ERRORS` standard errors of the difference
    of the two means over realizations."""
    return max(
        RATE_REL_TOLERANCE * abs(reference_value),
        WEIGHT_ABS_TOLERANCE * abs(reference_mean),
        RATE_STANDARD_ERRORS * standard_error,
    )


def _weight_standard_error(one: Summary, two: Summary, projection: str, statistic: str) -> float:
    """Standard error of the difference of two summaries' means of a weight statistic (0 when
    either has a single realization)."""
    spread = []
    for summary in (one, two):
        sd = summary.weight_spread.get(projection, {}).get(statistic)
        n = summary.weight_realizations.get(projection, 0)
        if sd is None or n < 2:
            return 0.0
        spread.append(sd * sd / n)
    return math.sqrt(sum(spread))


@dataclass(frozen=True, slots=True)
class WeightRow:
    """One statistic (``mean`` or ``sd``) of a plastic projection's final weights on every
    configuration, checked against the reference."""

    case: str
    projection: str
    statistic: str
    values: dict[str, float | None]
    reference: str | None
    disagreeing: list[str]
    tolerances: dict[str, float] = field(default_factory=dict)
    realizations: dict[str, int] = field(default_factory=dict)
    """Realizations each configuration's value is a mean over."""


def weight_rows(
    summaries: Sequence[Summary], preferred_references: Sequence[str] = ("nest", "brian2")
) -> list[WeightRow]:
    """The final weights' mean and sd of every plastic projection side by side, against NEST
    (else Brian2, else none)."""
    rows = []
    for case in dict.fromkeys(summary.case for summary in summaries):
        mine = {s.config: s for s in summaries if s.case == case and s.n_ok and s.weights}
        reference = next((name for name in preferred_references if name in mine), None)
        projections = dict.fromkeys(p for s in mine.values() for p in s.weights)
        for projection in projections:
            theirs = None if reference is None else mine[reference].weights.get(projection)
            for statistic in WEIGHT_STATISTICS:
                values = {
                    config: s.weights.get(projection, {}).get(statistic)
                    for config, s in mine.items()
                }
                disagreeing, tolerances = [], {}
                target = None if theirs is None else theirs.get(statistic)
                if reference is not None and theirs is not None and target is not None:
                    for config, value in values.items():
                        if value is None:
                            continue
                        error = _weight_standard_error(
                            mine[config], mine[reference], projection, statistic
                        )
                        tolerances[config] = weight_tolerance(target, theirs["mean"], error)
                        if abs(value - target) > tolerances[config]:
                            disagreeing.append(config)
                realizations = {
                    config: s.weight_realizations.get(projection, 0) for config, s in mine.items()
                }
                rows.append(
                    WeightRow(
                        case,
                        projection,
                        statistic,
                        values,
                        reference,
                        disagreeing,
                        tolerances,
                        realizations,
                    )
                )
    return rows
