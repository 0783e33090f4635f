"""Turn measured runs into the benchmark's metrics: medians, ratios, speed-up, rate agreement.

Definitions (per case and simulator configuration, medians over the successful repetitions):

- construction time ``build_s``: each simulator's own clock around network construction;
- real-time factor ``rtf = sim_s / simulated seconds`` (wall seconds per simulated second);
- whole-process time ``wall_s``: the command from start to exit, measured from outside;
- peak memory: peak RSS of the run's process tree (:mod:`bench.measure`); none for runs
  through a pool, whose ranks are not in the run's tree (their bytes per synapse are none too);
- bytes per synapse: ``(peak RSS - baseline peak RSS) / synapses``, the baseline being the
  same configuration running the 100-neuron circuit (start-up, libraries, JIT code, buffers);
- synaptic events per second: ``sum over projections of spikes(source) * synapses / size(source)``
  (spikes times mean out-degree) divided by ``sim_s``.

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
    "RateRow",
    "Summary",
    "difference_standard_error",
    "median",
    "rate_rows",
    "rate_tolerance",
    "rates_agree",
    "ratios",
    "speedup",
    "summarize",
    "synaptic_events",
]

RATE_REL_TOLERANCE = 0.05
"""Relative rate tolerance (tests/engine/test_brunel.py compares brainsim with NEST at 5%)."""

RATE_ABS_TOLERANCE_HZ = 0.2
"""Absolute floor of the rate tolerance, for populations firing below a few Hz."""

RATE_STANDARD_ERRORS = 3.0
"""Standard errors of the difference of two means over realizations below which rates are not
flagged (a two-sided test at about 0.3 % false alarms per population)."""

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
    rates_hz: dict[str, float] = field(default_factory=dict)
    """Mean rate of each population over :attr:`n_realizations` realizations (seeds)."""
    n_realizations: int = 0
    rate_sd_hz: dict[str, float] = field(default_factory=dict)
    """Standard deviation of each population's rate over the realizations (with two or more)."""
    spike_counts: list[dict[str, int]] = field(default_factory=list)
    """Spike counts of every successful run (brainsim's must not depend on the rank count)."""
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
    events = median(
        synaptic_events(projections, sizes, run["n_spikes"]) / run["sim_s"]
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
    return Summary(
        case=case["name"],
        config=config,
        n_ok=len(ok),
        n_runs=len(mine),
        build_s=median(run["build_s"] for run in ok),
        sim_s=sim_s,
        rtf=None if sim_s is None else sim_s / duration_s,
        wall_s=median(run["wall_s"] for run in ok),
        compile_s=median(run.get("compile_s") for run in ok),
        write_s=median(run.get("write_s") for run in ok),
        peak_rss_bytes=peak,
        bytes_per_synapse=bytes_per_synapse,
        events_per_s=events,
        n_synapses=synapses,
        rates_hz=rates,
        rate_sd_hz=spread,
        n_realizations=len(counts),
        spike_counts=[dict(run["n_spikes"]) for run in ok],
        errors=errors,
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
