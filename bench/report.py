"""Render a benchmark results document as markdown (bench/RESULTS.md) and as an RTF plot.

The results document is the JSON that :mod:`bench.suite` writes (``format:
brainsim-bench/1``): options, machine, versions, the cases' sizes, baseline memory and every
run. Everything shown here is computed from it by :mod:`bench.stats`, so a table can be
re-rendered, or several documents merged (:func:`merge`), without running anything again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.stats import (
    RATE_ABS_TOLERANCE_HZ,
    RATE_REL_TOLERANCE,
    RATE_STANDARD_ERRORS,
    WEIGHT_ABS_TOLERANCE,
    Summary,
    rate_rows,
    ratios,
    speedup,
    summarize,
    weight_rows,
)

__all__ = [
    "bytes_per_plastic_synapse",
    "fmt",
    "merge",
    "plastic_targets",
    "plot_rtf",
    "render_markdown",
    "summaries",
    "targets",
]

REFERENCES = ("nest", "brian2")
OURS = "brainsim"
POOL = "brainsim-pool"
ONE_RANK = "brainsim-1rank"
_MIB = 2**20


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (thousands separated), ``–`` when missing."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10 ** (digits + 2) or magnitude < 10 ** -(digits - 1):
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - len(str(int(magnitude))))
    if magnitude < 1:
        decimals = digits
    return f"{value:,.{decimals}f}"


def warm_up_failed_note(case: str, config: str, failure: str) -> str:
    """The note of a run whose warm-up (the JIT cache, the reference's compilation) failed."""
    return f"{case}: warm-up of {config} failed: {failure}"


def skipped_note(case: str, config: str, reason: str) -> str:
    """The note of a configuration the suite did not run for a case."""
    return f"{case}: {config} skipped: {reason}"


def _about(note: str, pairs: set[tuple[str, str]]) -> bool:
    """Whether ``note`` is a warm-up or skip note of one of ``pairs`` (case, configuration)."""
    return any(
        note.startswith(warm_up_failed_note(case, config, ""))
        or note.startswith(skipped_note(case, config, ""))
        for case, config in pairs
    )


def merge(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One document from several: a later document's runs of a (case, configuration) replace
    earlier runs of that pair, so one simulator can be re-run for a case and merged in, and
    the earlier warm-up and skip notes of that pair go with them."""
    merged: dict[str, Any] = {key: value for key, value in documents[-1].items() if key != "runs"}
    merged["cases"], merged["runs"], merged["baselines"] = {}, [], {}
    merged["notes"], merged["load"], merged["commands"] = [], [], []
    origin: dict[int, int] = {}  # id of a merged run -> index of the document it came from
    for index, document in enumerate(documents):
        replaced = {(run["case"], run["config"]) for run in document["runs"]}
        merged["runs"] = [r for r in merged["runs"] if (r["case"], r["config"]) not in replaced]
        merged["notes"] = [n for n in merged["notes"] if not _about(n, replaced)]
        # Bytes per synapse subtract the baseline measured in the same run as the case's runs:
        # each run keeps its own document's (baselines differ by several MiB between runs).
        baselines = document.get("baselines", {})
        for run in document["runs"]:
            kept = {"baseline_bytes": baselines.get(run["config"]), **run}
            origin[id(kept)] = index
            merged["runs"].append(kept)
        merged["cases"].update(document["cases"])
        merged["baselines"].update(document.get("baselines", {}))
        merged["notes"] += document.get("notes", [])
        merged["load"] += document.get("load", [])
        merged["commands"] += [document.get("command", "")]
    merged["started"] = documents[0].get("started")
    # The commits of the brainsim runs that are kept (not those replaced by a later document).
    sources = {origin[id(run)] for run in merged["runs"] if run["config"].startswith("brainsim")}
    commits = [
        d.get("versions", {}).get("brainsim-commit", "not recorded")
        for index, d in enumerate(documents)
        if index in sources
    ]
    merged["versions"] = dict(merged.get("versions", {}))
    merged["versions"]["brainsim-commit"] = " / ".join(dict.fromkeys(commits))
    return merged


def _config_order(config: str) -> int:
    """brainsim's configurations first, then the references (the order of the tables)."""
    order = (OURS, POOL, ONE_RANK, "nest", "brian2")
    return order.index(config) if config in order else len(order)


def summaries(document: Mapping[str, Any]) -> list[Summary]:
    """A :class:`~bench.stats.Summary` for every case and configuration that has runs."""
    configs = sorted(dict.fromkeys(run["config"] for run in document["runs"]), key=_config_order)
    found = []
    for case in document["cases"].values():
        for config in configs:
            mine = [
                r for r in document["runs"] if r["case"] == case["name"] and r["config"] == config
            ]
            if mine:
                # A merged document's runs carry the baseline of the run they came from.
                baseline = next(
                    (r["baseline_bytes"] for r in mine if "baseline_bytes" in r),
                    document.get("baselines", {}).get(config),
                )
                found.append(summarize(case, config, document["runs"], baseline))
    return found


def _index(found: Sequence[Summary]) -> dict[tuple[str, str], Summary]:
    return {(s.case, s.config): s for s in found}


def _target_row(
    label: str, values: Sequence[tuple[str, float | None]], ok: Callable[[float], bool]
) -> tuple[str, str, str]:
    """A target's row (target, measured value per case, met?) from its cases' values; a case
    without a value is left out, and a target without any is "not measured"."""
    present = [(case, value) for case, value in values if value is not None]
    if not present:
        return (label, "not measured", "–")
    text = ", ".join(f"{case}: {fmt(value)}" for case, value in present)
    return (label, text, "yes" if all(ok(value) for _, value in present) else "no")


def _ratio(
    found: Mapping[tuple[str, str], Summary],
    case: str,
    metric: str,
    reference: str,
    config: str = OURS,
) -> float | None:
    """``config``'s ``metric`` over ``reference``'s on ``case`` (None: one was not measured)."""
    ours, theirs = found.get((case, config)), found.get((case, reference))
    return None if ours is None or theirs is None else ratios(ours, theirs)[metric]


def _inverse(value: float | None) -> float | None:
    return None if not value else 1.0 / value


def targets(document: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The issue's targets, each as (target, measured value, met?) over all measured cases."""
    found = _index(summaries(document))
    cases = list(document["cases"])

    def speedup_of(reference: str, metric: str) -> list[tuple[str, float | None]]:
        return [(c, _inverse(_ratio(found, c, metric, reference))) for c in cases]

    # Real-time factors, not simulation seconds: NEST's simulation phase is its duration less
    # the first min-delay slice, which its construction includes.
    return [
        _target_row(
            "simulation >= 4x faster than NEST (NEST RTF / brainsim RTF)",
            speedup_of("nest", "rtf"),
            lambda v: v >= 4.0,
        ),
        _target_row(
            "simulation faster than Brian2 (Brian2 RTF / brainsim RTF)",
            speedup_of("brian2", "rtf"),
            lambda v: v > 1.0,
        ),
        _target_row(
            "construction >= 3x faster than NEST (NEST build / brainsim build)",
            speedup_of("nest", "build_s"),
            lambda v: v >= 3.0,
        ),
        _bytes_target(document, found),
        _target_row(
            "2 ranks >= 1.7x faster than 1 rank on the Brunel case (12,500 neurons)",
            [
                (c, speedup(found[(c, ONE_RANK)], found[(c, OURS)]))
                for c in cases
                if c == "brunel" and (c, ONE_RANK) in found and (c, OURS) in found
            ],
            lambda v: v >= 1.7,
        ),
        _target_row(
            "whole process <= 0.5x NEST's (brainsim / NEST)",
            [(c, _ratio(found, c, "wall_s", "nest")) for c in cases],
            lambda v: v <= 0.5,
        ),
        _target_row(
            "whole process through a pool of resident ranks <= 0.5x NEST's (brainsim-pool / NEST)",
            [(c, _ratio(found, c, "wall_s", "nest", POOL)) for c in cases],
            lambda v: v <= 0.5,
        ),
        _rates_target(found),
    ]


def _plastic_cases(document: Mapping[str, Any]) -> list[str]:
    """The cases with plastic projections."""
    return [name for name, case in document["cases"].items() if case.get("plastic")]


def bytes_per_plastic_synapse(
    document: Mapping[str, Any], found: Mapping[tuple[str, str], Summary], case: str
) -> tuple[float, str | None] | None:
    """brainsim's peak bytes per plastic synapse of ``case`` and the static twin that priced
    its static synapses (None: no twin measured, the figure charges everything to the plastic
    synapses and is an upper bound); None when not measured.

    The case's memory over the baseline, ``bytes_per_synapse * n_synapses``, less its static
    synapses at the twin's bytes per synapse (a case whose static synapses are stored alike),
    divided by the plastic synapses built: like bytes per synapse, it charges neurons, buffers
    and the recording to the synapses, in proportion.
    """
    ours = found.get((case, OURS))
    if ours is None or ours.bytes_per_synapse is None or not ours.n_synapses:
        return None
    plastic = ours.n_plastic_synapses
    if not plastic:
        return None
    twin_name = document["cases"][case].get("static_twin")
    twin = found.get((twin_name, OURS)) if twin_name else None
    static_cost = 0.0
    if twin is not None and twin.bytes_per_synapse is not None:
        static_cost = twin.bytes_per_synapse
    else:
        twin_name = None
    over_baseline = ours.bytes_per_synapse * ours.n_synapses
    return (over_baseline - static_cost * (ours.n_synapses - plastic)) / plastic, twin_name


def plastic_targets(document: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The targets of the plastic cases (2 ranks against NEST on 2 threads), each as (target,
    measured value, met?)."""
    found = _index(summaries(document))
    cases = _plastic_cases(document)
    return [
        _target_row(
            "simulation >= 5x faster than NEST (NEST RTF / brainsim RTF)",
            [(c, _inverse(_ratio(found, c, "rtf", "nest"))) for c in cases],
            lambda v: v >= 5.0,
        ),
        _target_row(
            "construction >= 3x faster than NEST (NEST build / brainsim build)",
            [(c, _inverse(_ratio(found, c, "build_s", "nest"))) for c in cases],
            lambda v: v >= 3.0,
        ),
        _target_row(
            "peak memory <= 1/3 of NEST's (brainsim peak RSS / NEST peak RSS)",
            [(c, _ratio(found, c, "peak_rss_bytes", "nest")) for c in cases],
            lambda v: v <= 1.0 / 3.0,
        ),
        _weights_target(found, cases),
        _plastic_bytes_target(document, found, cases),
    ]


def _weights_target(
    found: Mapping[tuple[str, str], Summary], cases: Sequence[str]
) -> tuple[str, str, str]:
    """The row of the weight target: brainsim's final-weight statistics against NEST's."""
    label = "final weights (mean, sd) agree with NEST's (see the weights table)"
    checked = [
        row
        for row in weight_rows(list(found.values()), preferred_references=("nest",))
        if row.case in cases and row.reference == "nest" and row.values.get(OURS) is not None
    ]
    if not checked:
        return (label, "not measured", "–")
    parts = []
    for case in dict.fromkeys(row.case for row in checked):
        rows = [row for row in checked if row.case == case]
        bad = [f"{row.projection} {row.statistic}" for row in rows if OURS in row.disagreeing]
        agreeing = len(rows) - len(bad)
        parts.append(
            f"{case}: {agreeing}/{len(rows)}" + (f" (not {', '.join(bad)})" if bad else "")
        )
    met = all(OURS not in row.disagreeing for row in checked)
    return (label, ", ".join(parts), "yes" if met else "no")


def _plastic_bytes_target(
    document: Mapping[str, Any],
    found: Mapping[tuple[str, str], Summary],
    cases: Sequence[str],
) -> tuple[str, str, str]:
    """Bytes per plastic synapse (one delay) against 8."""
    label = "bytes per plastic synapse <= 8 (one delay; static synapses at the twin's cost)"
    parts, met = [], True
    for case in cases:
        measured = bytes_per_plastic_synapse(document, found, case)
        if measured is None:
            continue
        value, twin = measured
        parts.append(
            f"{case}: {fmt(value)}" + (f" ({twin})" if twin else " (upper bound: no twin)")
        )
        met = met and value <= 8.0
    if not parts:
        return label, "not measured", "–"
    return label, ", ".join(parts), "yes" if met else "no"


def _rates_target(found: Mapping[tuple[str, str], Summary]) -> tuple[str, str, str]:
    """The row of the rate target: brainsim's populations against NEST's, per case."""
    label = "population rates agree with NEST's (means over realizations, see the rates table)"
    checked = [
        row
        for row in rate_rows(list(found.values()), preferred_references=("nest",))
        if row.reference == "nest" and row.rates_hz.get(OURS) is not None
    ]
    if not checked:
        return (label, "not measured", "–")
    cases = list(dict.fromkeys(row.case for row in checked))
    parts = []
    for case in cases:
        rows = [row for row in checked if row.case == case]
        bad = [row.population for row in rows if OURS in row.disagreeing]
        agreeing = len(rows) - len(bad)
        parts.append(
            f"{case}: {agreeing}/{len(rows)}" + (f" (not {', '.join(bad)})" if bad else "")
        )
    met = all(OURS not in row.disagreeing for row in checked)
    return (label, ", ".join(parts), "yes" if met else "no")


def _bytes_target(
    document: Mapping[str, Any], found: Mapping[tuple[str, str], Summary]
) -> tuple[str, str, str]:
    """Bytes per synapse against 4 (constant weights) or 8 (per-synapse weights)."""
    label = "bytes per synapse <= 4 (constant weights) or 8 (varying)"
    measured = []
    for name, case in document["cases"].items():
        summary = found.get((name, OURS))
        if summary is not None and summary.bytes_per_synapse is not None:
            limit = 8.0 if case.get("varying_weights", True) else 4.0
            measured.append((name, summary.bytes_per_synapse, limit))
    if not measured:
        return label, "not measured", "–"
    text = ", ".join(f"{name}: {fmt(value)}" for name, value, _ in measured)
    met = all(value <= limit for _, value, limit in measured)
    return label, text, "yes" if met else "no"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _mib(value: float | None) -> str:
    return fmt(None if value is None else value / _MIB)


def _over(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, None where either is missing."""
    return None if value is None or not reference else value / reference


def _whole_process_rows(
    document: Mapping[str, Any], index: Mapping[tuple[str, str], Summary]
) -> list[list[str]]:
    """Per case with brainsim and NEST: whole-process times on fresh ranks, through a pool and
    of NEST, and both brainsim times over NEST's."""
    rows = []
    for case in document["cases"]:
        fresh, nest = index.get((case, OURS)), index.get((case, "nest"))
        if fresh is None or nest is None:
            continue
        pool = index.get((case, POOL))
        pooled = None if pool is None else pool.wall_s
        rows.append(
            [
                case,
                fmt(fresh.wall_s),
                fmt(pooled),
                fmt(nest.wall_s),
                fmt(_over(fresh.wall_s, nest.wall_s)),
                fmt(_over(pooled, nest.wall_s)),
            ]
        )
    return rows


def render_markdown(document: Mapping[str, Any]) -> str:
    """The whole RESULTS.md text for a results document."""
    found = summaries(document)
    index = _index(found)
    machine = document["machine"]
    lines = [
        "# Benchmarks: brainsim vs NEST and Brian2",
        "",
        "Generated by `python -m bench` from the results JSON; definitions and method in",
        "[docs/benchmarks.md](../docs/benchmarks.md). Ratios are brainsim (2 ranks) / reference:",
        "below 1 is better for times and memory, above 1 for synaptic events per second.",
        "",
        "## Run",
        "",
        f"- Date (UTC): {document.get('started', '?')} to {document.get('finished', '?')}",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, "
        f"{fmt(machine['memory_bytes'] / 2**30)} GiB memory; {machine.get('os', '')}",
        f"- Load: {_load_text(document)}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(document["versions"].items())),
        f"- Repetitions: {document['options']['reps']} per configuration, alternating "
        "simulators within each repetition; medians shown.",
        "- Commands:",
        "",
        "```bash",
        *[
            command
            for command in document.get("commands", [document.get("command", "")])
            if command
        ],
        "```",
        "",
        "## Per case",
        "",
    ]
    header = [
        "case",
        "simulator",
        "build (s)",
        "sim (s)",
        "RTF",
        "final write (s)",
        "whole process (s)",
        "peak RSS (MiB)",
        "bytes/synapse",
        "synaptic events/s",
        "runs ok",
    ]
    rows = [
        [
            s.case,
            s.config,
            fmt(s.build_s),
            fmt(s.sim_s),
            fmt(s.rtf),
            fmt(s.write_s),
            fmt(s.wall_s),
            _mib(s.peak_rss_bytes),
            fmt(s.bytes_per_synapse),
            fmt(s.events_per_s),
            f"{s.n_ok}/{s.n_runs}",
        ]
        for s in found
    ]
    lines += _table(header, rows)
    lines += ["", "## Ratios brainsim / reference", ""]
    ratio_rows = []
    for case in document["cases"]:
        for reference in REFERENCES:
            ours, theirs = index.get((case, OURS)), index.get((case, reference))
            if ours is None or theirs is None or not ours.n_ok or not theirs.n_ok:
                continue
            found_ratios = ratios(ours, theirs)
            ratio_rows.append(
                [
                    case,
                    reference,
                    *(
                        fmt(found_ratios[metric])
                        for metric in (
                            "build_s",
                            "rtf",
                            "wall_s",
                            "peak_rss_bytes",
                            "bytes_per_synapse",
                            "events_per_s",
                        )
                    ),
                ]
            )
    lines += _table(
        [
            "case",
            "reference",
            "build",
            "RTF",
            "whole process",
            "peak RSS",
            "bytes/synapse",
            "events/s",
        ],
        ratio_rows,
    )
    lines += [
        "",
        "## Whole process: fresh ranks and a pool",
        "",
        "brainsim's whole process when each run starts its ranks (`--no-pool`) and when it goes",
        "to a pool of as many resident ranks (`brainsim pool start`, once), against NEST's.",
        "",
    ]
    lines += _table(
        [
            "case",
            "brainsim fresh ranks (s)",
            "brainsim through a pool (s)",
            "NEST (s)",
            "fresh / NEST",
            "pool / NEST",
        ],
        _whole_process_rows(document, index),
    )
    lines += [
        "",
        "## Synapses built",
        "",
        "The synapses each simulator built (brainsim: summed over its ranks, each rank's in",
        "brackets; NEST: `num_connections` before devices are connected; Brian2: its synapses'",
        "`N`), medians over the timed runs, next to the circuit's expected count. Bytes per",
        "synapse divide by these.",
        "",
    ]
    configs = list(dict.fromkeys(s.config for s in found))
    lines += _table(["case", "expected", *configs], _synapse_rows(document, index, configs))
    lines += ["", "## brainsim strong scaling (1 -> 2 ranks)", ""]
    scaling_rows = []
    for case in document["cases"]:
        one, two = index.get((case, ONE_RANK)), index.get((case, OURS))
        if one is None or two is None:
            continue
        identical = "yes" if _same_counts(one, two) else "no"
        scaling_rows.append(
            [case, fmt(one.sim_s), fmt(two.sim_s), fmt(speedup(one, two)), identical]
        )
    lines += _table(
        ["case", "sim 1 rank (s)", "sim 2 ranks (s)", "speed-up", "same spike counts"],
        scaling_rows,
    )
    lines += [
        "",
        "## Population rates (Hz)",
        "",
        "Means over the realizations counted in `seeds` (the case's own seed and the next "
        "ones; one realization's rates vary by several per cent in the smaller networks). "
        f"Checked against NEST (else Brian2): agreement within "
        f"{RATE_REL_TOLERANCE:.0%}, {RATE_ABS_TOLERANCE_HZ} Hz or "
        f"{RATE_STANDARD_ERRORS:g} standard errors of the difference of the means "
        "(from the rates' spread over the realizations), whichever is largest; "
        "`± brainsim` is the tolerance brainsim's rate was checked with.",
        "",
    ]
    realizations: dict[str, set[int]] = {s.case: set() for s in found}
    for summary in found:
        if summary.n_ok:
            realizations[summary.case].add(summary.n_realizations)
    rate_table = [
        [
            row.case,
            row.population,
            "–" if not realizations[row.case] else _span(realizations[row.case]),
            *(fmt(row.rates_hz.get(config)) for config in configs),
            fmt(row.tolerances_hz.get(OURS)),
            "–"
            if row.reference is None
            else ("DISAGREE: " + ", ".join(row.disagreeing) if row.disagreeing else "yes"),
        ]
        for row in rate_rows(found)
    ]
    lines += _table(["case", "population", "seeds", *configs, "± brainsim", "agree"], rate_table)
    lines += _plastic_lines(document, index, found, configs)
    lines += ["", "## Targets (issue 6)", ""]
    lines += _table(["target", "measured", "met"], [list(row) for row in targets(document)])
    if _plastic_cases(document):
        lines += [
            "",
            "## Targets of the plastic cases",
            "",
            "brainsim on 2 ranks against NEST on 2 threads, on the cases with plastic synapses.",
            "",
        ]
        lines += _table(
            ["target", "measured", "met"], [list(row) for row in plastic_targets(document)]
        )
    notes = list(dict.fromkeys(document.get("notes", [])))
    errors = [f"{s.case} / {s.config}: {error}" for s in found for error in s.errors]
    if notes or errors:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in [*notes, *errors]]
    return "\n".join(lines) + "\n"


def _plastic_lines(
    document: Mapping[str, Any],
    index: Mapping[tuple[str, str], Summary],
    found: Sequence[Summary],
    configs: Sequence[str],
) -> list[str]:
    """The final-weights table and the plastic synapses' memory table (none without plastic
    cases)."""
    cases = _plastic_cases(document)
    if not cases:
        return []
    lines = [
        "",
        "## Final weights of plastic projections",
        "",
        "Mean and standard deviation of each plastic projection's weights at the end of the run,",
        "each the mean over the realizations counted in `seeds`, next to the initial weight.",
        f"Checked against NEST (else Brian2) as rates are: within {RATE_REL_TOLERANCE:.0%} of "
        f"the reference's value, {WEIGHT_ABS_TOLERANCE:g} times its mean weight or "
        f"{RATE_STANDARD_ERRORS:g} standard errors of the difference of the means, whichever "
        "is largest; `± brainsim` is the tolerance brainsim's value was checked with.",
        "",
    ]
    rows = []
    for row in weight_rows(found):
        initial = document["cases"][row.case].get("plastic", {}).get(row.projection, {})
        seeds = {n for n in row.realizations.values() if n}
        rows.append(
            [
                row.case,
                row.projection,
                row.statistic,
                _span(seeds) if seeds else "–",
                _initial(initial.get("initial_weight"), row.statistic),
                *(fmt(row.values.get(config)) for config in configs),
                fmt(row.tolerances.get(OURS)),
                "–"
                if row.reference is None
                else ("DISAGREE: " + ", ".join(row.disagreeing) if row.disagreeing else "yes"),
            ]
        )
    lines += _table(
        ["case", "projection", "statistic", "seeds", "initial", *configs, "± brainsim", "agree"],
        rows,
    )
    lines += [
        "",
        "## Plastic synapses: memory",
        "",
        "brainsim's bytes per plastic synapse: the case's peak memory over the baseline, less",
        "its static synapses at the bytes per synapse of its static twin (a case whose static",
        "synapses are stored alike), divided by the plastic synapses built. Without the twin's",
        "figure it charges everything to the plastic synapses (an upper bound).",
        "",
    ]
    memory_rows = []
    for case in cases:
        ours, nest = index.get((case, OURS)), index.get((case, "nest"))
        if ours is None:
            continue
        measured = bytes_per_plastic_synapse(document, index, case)
        twin = document["cases"][case].get("static_twin")
        twin_summary = index.get((twin, OURS)) if twin else None
        memory_rows.append(
            [
                case,
                _count(ours.n_plastic_synapses),
                _count(ours.n_synapses),
                fmt(ours.bytes_per_synapse),
                f"{twin}: {fmt(twin_summary.bytes_per_synapse)}" if twin_summary else "–",
                "–" if measured is None else fmt(measured[0]),
                fmt(None if nest is None else nest.bytes_per_synapse),
                fmt(_over(ours.peak_rss_bytes, None if nest is None else nest.peak_rss_bytes)),
            ]
        )
    lines += _table(
        [
            "case",
            "plastic synapses",
            "all synapses",
            "brainsim bytes/synapse",
            "static twin bytes/synapse",
            "brainsim bytes/plastic synapse",
            "NEST bytes/synapse",
            "peak RSS brainsim / NEST",
        ],
        memory_rows,
    )
    return lines


def _initial(weight: float | None, statistic: str) -> str:
    """The initial value of a weight statistic: the constant initial weight (its sd 0), ``–``
    for drawn initial weights."""
    if weight is None:
        return "–"
    return fmt(weight) if statistic == "mean" else "0"


def _count(value: float | None) -> str:
    return "–" if value is None else f"{round(value):,}"


def _synapse_rows(
    document: Mapping[str, Any],
    index: Mapping[tuple[str, str], Summary],
    configs: Sequence[str],
) -> list[list[str]]:
    """Per case: the expected synapse count and each configuration's built count (brainsim's
    per rank too, where it ran on several)."""
    rows = []
    for name, case in document["cases"].items():
        cells = [name, _count(sum(count for _, count in case["projections"]))]
        for config in configs:
            summary = index.get((name, config))
            text = _count(None if summary is None else summary.n_synapses)
            per_rank = None if summary is None else summary.n_synapses_per_rank
            if per_rank is not None and len(per_rank) > 1:
                text += " (" + " + ".join(_count(n) for n in per_rank) + ")"
            cells.append(text)
        rows.append(cells)
    return rows


def _span(values: set[int]) -> str:
    """``5``, or ``4-5`` where configurations have different numbers of realizations."""
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def _same_counts(one: Summary, two: Summary) -> bool:
    counts = one.spike_counts + two.spike_counts
    return bool(counts) and all(count == counts[0] for count in counts)


def _load_text(document: Mapping[str, Any]) -> str:
    loads = [sample["load_1min"] for sample in document.get("load", [])]
    if not loads:
        return "not recorded"
    return (
        f"1-minute load average between {fmt(min(loads), 2)} and {fmt(max(loads), 2)} "
        f"on {document['machine']['cores']} cores ({len(loads)} samples, one before and after "
        "each case); the machine was shared with other work"
    )


def plot_rtf(document: Mapping[str, Any], path: Path) -> None:
    """Bar chart of the real-time factor per case and configuration (log scale) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = [s for s in summaries(document) if s.rtf is not None]
    cases = list(dict.fromkeys(s.case for s in found))
    configs = list(dict.fromkeys(s.config for s in found))
    index = _index(found)
    width = 0.8 / max(1, len(configs))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.6 * len(cases) + 2), 4.5))
    for position, config in enumerate(configs):
        xs = [i + (position - (len(configs) - 1) / 2) * width for i in range(len(cases))]
        heights = [
            index[(case, config)].get("rtf") or 0.0 if (case, config) in index else 0.0
            for case in cases
        ]
        axes.bar(xs, heights, width=width, label=config)
    axes.set_xticks(range(len(cases)), cases, rotation=15)
    axes.set_yscale("log")
    axes.set_ylabel("real-time factor (wall s per simulated s)")
    axes.set_title(f"Simulation phase, {document['machine']['cores']} cores (lower is faster)")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
