"""RESULTS.md rendering, merging of results documents, number formatting and the RTF plot."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bench.report import (
    bytes_per_plastic_synapse,
    fmt,
    merge,
    plastic_targets,
    plot_rtf,
    render_markdown,
    skipped_note,
    summaries,
    targets,
    warm_up_failed_note,
)
from tests.bench.conftest import result_run


def test_fmt() -> None:
    assert fmt(None) == "–"
    assert fmt(0.0) == "0"
    assert fmt(12.345) == "12.3"
    assert fmt(1234.5) == "1,234"
    assert fmt(0.1234) == "0.123"
    assert fmt(4.4e7) == "4.40e+07"


def test_markdown_has_machine_tables_ratios_rates_and_notes(
    results_document: dict[str, Any],
) -> None:
    text = render_markdown(results_document)
    assert "Test CPU, 2 cores, 24.0 GiB memory" in text
    assert "1-minute load average between 1.5 and 2.5 on 2 cores" in text
    assert "python -m bench all" in text
    assert (
        "| brunel | brainsim | 0.500 | 2.00 | 2.00 | 0.125 | 3.50 | 100 | 4.19 | 1.85e+08 | 1/1 |"
        in text
    )
    assert "| brunel | nest | 0.250 | 0.167 | 0.233 | 1.00 |" in text
    assert "| brunel | 3.80 | 2.00 | 1.90 | yes |" in text
    assert "| brunel | E | 1 | 37.0 | 37.0 | 37.5 | 30.0 | 1.88 | DISAGREE: brian2 |" in text
    assert "- microcircuit: nest skipped: needs about 30 GiB" in text


def test_targets_use_the_constant_weight_limit(results_document: dict[str, Any]) -> None:
    rows = {label: (value, met) for label, value, met in targets(results_document)}
    assert rows["simulation >= 4x faster than NEST (NEST RTF / brainsim RTF)"] == (
        "brunel: 6.00",
        "yes",
    )
    assert rows["construction >= 3x faster than NEST (NEST build / brainsim build)"][1] == "yes"
    # (100 - 60) MiB over 1e7 synapses is 4.19 bytes: above 4 for constant weights.
    assert rows["bytes per synapse <= 4 (constant weights) or 8 (varying)"] == (
        "brunel: 4.19",
        "no",
    )
    label = "2 ranks >= 1.7x faster than 1 rank on the Brunel case (12,500 neurons)"
    assert rows[label] == ("brunel: 1.90", "yes")


def test_bytes_per_synapse_and_the_synapse_table_use_the_built_counts(
    results_document: dict[str, Any],
) -> None:
    # brainsim built 8,000,000 synapses on its two ranks (the case expects 10,000,000).
    ours = results_document["runs"][0]
    ours.update(n_synapses=8_000_000, n_synapses_per_rank=[4_100_000, 3_900_000])
    (summary,) = [s for s in summaries(results_document) if s.config == "brainsim"]
    assert summary.bytes_per_synapse == 40 * 2**20 / 8_000_000
    text = render_markdown(results_document)
    assert "| brunel | brainsim | 0.500 | 2.00 | 2.00 | 0.125 | 3.50 | 100 | 5.24 |" in text
    section = text.split("## Synapses built", 1)[1].split("\n## ", 1)[0]
    assert "| case | expected | brainsim | brainsim-1rank | nest | brian2 |" in section
    assert (
        "| brunel | 10,000,000 | 8,000,000 (4,100,000 + 3,900,000) | 10,000,000 | 10,000,000 "
        "| 10,000,000 |" in section
    )
    rows = {label: value for label, value, _ in targets(results_document)}
    assert rows["bytes per synapse <= 4 (constant weights) or 8 (varying)"] == "brunel: 5.24"


def test_simulation_ratios_compare_real_time_factors(results_document: dict[str, Any]) -> None:
    # NEST's 12 s simulate the second less a first 100 ms counted in its construction.
    results_document["runs"][2]["presim_ms"] = 100.0
    label = "simulation >= 4x faster than NEST (NEST RTF / brainsim RTF)"
    rows = {label: value for label, value, _ in targets(results_document)}
    assert rows[label] == "brunel: 6.67"  # (12 s / 0.9 s) / (2 s / 1 s)
    ratios = render_markdown(results_document).split("## Ratios brainsim / reference", 1)[1]
    assert "| case | reference | build | RTF | whole process |" in ratios
    assert "| brunel | nest | 0.250 | 0.150 | 0.233 | 1.00 |" in ratios


def with_pool_runs(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with a run of brunel through a pool: 2.75 s whole, no peak memory."""
    found = copy.deepcopy(document)
    pooled = result_run("brunel", "brainsim-pool", 2.0, 0.5, 37_000)
    pooled.update(wall_s=2.75, peak_rss_bytes=None)
    found["runs"].insert(0, pooled)
    return found


def test_pool_runs_have_a_row_without_memory_and_their_own_comparison(
    results_document: dict[str, Any],
) -> None:
    text = render_markdown(with_pool_runs(results_document))
    # After brainsim on fresh ranks, before one rank, whatever the order of the runs.
    assert text.index("| brunel | brainsim |") < text.index("| brunel | brainsim-pool |")
    assert text.index("| brunel | brainsim-pool |") < text.index("| brunel | brainsim-1rank |")
    assert (
        "| brunel | brainsim-pool | 0.500 | 2.00 | 2.00 | 0.125 | 2.75 | – | – | 1.85e+08 | 1/1 |"
        in text
    )
    section = text.split("## Whole process: fresh ranks and a pool", 1)[1].split("\n## ", 1)[0]
    assert (
        "| case | brainsim fresh ranks (s) | brainsim through a pool (s) | NEST (s) "
        "| fresh / NEST | pool / NEST |" in section
    )
    # NEST: 2 + 12 + 1 = 15 s whole; fresh ranks 3.5 s, the pool 2.75 s.
    assert "| brunel | 3.50 | 2.75 | 15.0 | 0.233 | 0.183 |" in section
    # The ratio table stays brainsim on fresh ranks against the references.
    ratios = text.split("## Ratios brainsim / reference", 1)[1].split("\n## ", 1)[0]
    assert "brainsim-pool" not in ratios
    assert "| brunel | nest | 0.250 | 0.167 | 0.233 | 1.00 |" in ratios


def test_the_whole_process_section_without_pool_runs(results_document: dict[str, Any]) -> None:
    text = render_markdown(results_document)
    section = text.split("## Whole process: fresh ranks and a pool", 1)[1].split("\n## ", 1)[0]
    assert "| brunel | 3.50 | – | 15.0 | 0.233 | – |" in section
    del results_document["runs"][2]  # NEST's: no row
    text = render_markdown(results_document)
    section = text.split("## Whole process: fresh ranks and a pool", 1)[1].split("\n## ", 1)[0]
    assert "| brunel |" not in section


def test_whole_process_targets_on_fresh_ranks_and_through_a_pool(
    results_document: dict[str, Any],
) -> None:
    fresh = "whole process <= 0.5x NEST's (brainsim / NEST)"
    pool = "whole process through a pool of resident ranks <= 0.5x NEST's (brainsim-pool / NEST)"
    rows = {label: (value, met) for label, value, met in targets(results_document)}
    assert rows[fresh] == ("brunel: 0.233", "yes")
    assert rows[pool] == ("not measured", "–")
    document = with_pool_runs(results_document)
    document["runs"][0]["wall_s"] = 9.0  # the pool run over half of NEST's 15 s
    labels = [label for label, _, _ in targets(document)]
    assert labels.index(pool) == labels.index(fresh) + 1
    rows = {label: (value, met) for label, value, met in targets(document)}
    assert rows[fresh] == ("brunel: 0.233", "yes")
    assert rows[pool] == ("brunel: 0.600", "no")
    assert f"| {pool} | brunel: 0.600 | no |" in render_markdown(document)


def test_merge_replaces_runs_per_case_and_configuration(
    results_document: dict[str, Any],
) -> None:
    first = results_document
    second = copy.deepcopy(first)
    second["runs"] = [result_run("brunel", "brainsim", 1.0, 0.5, 37_000)]
    second["command"] = "python -m bench brunel --simulators brainsim"
    merged = merge([first, second])
    configs = [(run["config"], run["sim_s"]) for run in merged["runs"]]
    assert configs == [("brainsim-1rank", 3.8), ("nest", 12.0), ("brian2", 6.0), ("brainsim", 1.0)]
    assert merged["commands"] == [
        "python -m bench all",
        "python -m bench brunel --simulators brainsim",
    ]
    # The tables list brainsim first whatever the order of the runs; the commit is that of the
    # brainsim runs kept.
    first["versions"]["brainsim-commit"], second["versions"]["brainsim-commit"] = "old", "new"
    merged = merge([second, first])
    text = render_markdown(merged)
    assert text.index("| brunel | brainsim |") < text.index("| brunel | nest |")
    assert "brainsim-commit old" in text
    assert "new" not in text.split("brainsim-commit", 1)[1].split(",", 1)[0]


def test_merge_drops_the_notes_of_replaced_runs(results_document: dict[str, Any]) -> None:
    """A warm-up failure or a skip of (case, configuration) is history once a later document's
    runs of that pair replace the runs it belonged to; notes about other pairs stay."""
    first = copy.deepcopy(results_document)
    first["notes"] = [
        warm_up_failed_note("brunel", "brainsim", "too many arguments"),
        skipped_note("brunel", "brian2", "not installed"),
        warm_up_failed_note("brunel", "brainsim-1rank", "out of memory"),
        "a note of the user's",
    ]
    second = copy.deepcopy(results_document)
    second["runs"] = [result_run("brunel", "brainsim", 1.0, 0.5, 37_000)]
    second["notes"] = []
    merged = merge([first, second])
    assert merged["notes"] == [
        skipped_note("brunel", "brian2", "not installed"),
        warm_up_failed_note("brunel", "brainsim-1rank", "out of memory"),
        "a note of the user's",
    ]
    text = render_markdown(merged)
    assert "too many arguments" not in text
    assert "out of memory" in text


def test_plot_writes_a_png(tmp_path: Path, results_document: dict[str, Any]) -> None:
    path = tmp_path / "rtf.png"
    plot_rtf(results_document, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_rates_target_counts_brainsim_s_populations_against_nest(
    results_document: dict[str, Any],
) -> None:
    label = "population rates agree with NEST's (means over realizations, see the rates table)"
    rows = {name: (value, met) for name, value, met in targets(results_document)}
    assert rows[label] == ("brunel: 1/1", "yes")  # Brian2's 30 Hz does not count here
    document = copy.deepcopy(results_document)
    document["runs"][0]["n_spikes"] = {"E": 33_000}  # 33 Hz against NEST's 37.5
    rows = {name: (value, met) for name, value, met in targets(document)}
    assert rows[label] == ("brunel: 0/1 (not E)", "no")
    document["runs"] = [run for run in document["runs"] if run["config"] != "nest"]
    rows = {name: (value, met) for name, value, met in targets(document)}
    assert rows[label] == ("not measured", "–")


def test_merged_runs_keep_the_baseline_of_their_own_run(
    results_document: dict[str, Any],
) -> None:
    """Bytes per synapse subtract the baseline measured in the same run as the case's runs,
    not a later document's (baselines differ by several MiB from run to run)."""
    first = copy.deepcopy(results_document)
    second = copy.deepcopy(results_document)
    second["cases"] = {"other": {**first["cases"]["brunel"], "name": "other"}}
    second["runs"] = [result_run("other", "brainsim", 2.0, 0.5, 37_000)]
    second["baselines"] = {"brainsim": first["baselines"]["brainsim"] + 50 * 2**20}
    alone = {(s.case, s.config): s for s in summaries(first)}
    for merged in (merge([first, second]), merge([second, first])):
        found = {(s.case, s.config): s for s in summaries(merged)}
        mine = found[("brunel", "brainsim")]
        assert mine.bytes_per_synapse == alone[("brunel", "brainsim")].bytes_per_synapse
        other = found[("other", "brainsim")]
        assert other.bytes_per_synapse is not None
        assert other.bytes_per_synapse < mine.bytes_per_synapse  # its baseline is 50 MiB more
    # A merged document merged again keeps them.
    again = merge([merge([first, second]), copy.deepcopy(second)])
    found = {(s.case, s.config): s for s in summaries(again)}
    assert found[("brunel", "brainsim")].bytes_per_synapse == mine.bytes_per_synapse


def with_plastic_case(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with a plastic case: 10 M synapses, 6 M of them plastic, brunel its static
    twin (brainsim's 40 MiB over 1e7 synapses there: 4.19 bytes per synapse)."""
    found = copy.deepcopy(document)
    found["cases"]["brunel_stdp"] = {
        **found["cases"]["brunel"],
        "name": "brunel_stdp",
        "varying_weights": True,
        "static_twin": "brunel",
        "plastic": {"EE": {"model": "stdp", "expected_synapses": 6_000_000, "initial_weight": 0.1}},
    }
    runs = {
        "brainsim": (result_run("brunel_stdp", "brainsim", 4.0, 0.5, 37_000), 0.1002, 0.0026),
        "nest": (result_run("brunel_stdp", "nest", 40.0, 3.0, 37_500), 0.1000, 0.0027),
    }
    for record, mean, sd in runs.values():
        record["weights"] = {"EE": {"count": 6_000_000, "mean": mean, "sd": sd}}
        found["runs"].append(record)
    ours = found["runs"][-2]
    ours["peak_rss_bytes"] = 60 * 2**20 + 64_000_000  # 64 MB over the baseline
    found["runs"][-1]["peak_rss_bytes"] = 80 * 2**20 + 1_000_000_000
    return found


def test_bytes_per_plastic_synapse_price_static_synapses_at_the_twin_s_cost(
    results_document: dict[str, Any],
) -> None:
    document = with_plastic_case(results_document)
    found = {(s.case, s.config): s for s in summaries(document)}
    # 64 MB over the baseline, less 4 M static synapses at brunel's 4.19 bytes, over 6 M.
    twin = 40 * 2**20 / 10_000_000
    expected = (64_000_000 - twin * 4_000_000) / 6_000_000
    measured = bytes_per_plastic_synapse(document, found, "brunel_stdp")
    assert measured is not None
    assert measured[0] == pytest.approx(expected)
    assert measured[1] == "brunel"
    assert bytes_per_plastic_synapse(document, found, "brunel") is None  # no plastic synapses
    # Without the twin's runs everything is charged to the plastic synapses: an upper bound.
    alone = copy.deepcopy(document)
    alone["runs"] = [run for run in alone["runs"] if run["case"] != "brunel"]
    found = {(s.case, s.config): s for s in summaries(alone)}
    value, twin_name = bytes_per_plastic_synapse(alone, found, "brunel_stdp")  # type: ignore[misc]
    assert (value, twin_name) == (pytest.approx(64_000_000 / 6_000_000), None)


def test_plastic_targets_and_tables(results_document: dict[str, Any]) -> None:
    document = with_plastic_case(results_document)
    rows = {label: (value, met) for label, value, met in plastic_targets(document)}
    assert rows["simulation >= 5x faster than NEST (NEST RTF / brainsim RTF)"] == (
        "brunel_stdp: 10.0",
        "yes",
    )
    assert rows["construction >= 3x faster than NEST (NEST build / brainsim build)"] == (
        "brunel_stdp: 6.00",
        "yes",
    )
    ratio = (60 * 2**20 + 64_000_000) / (80 * 2**20 + 1_000_000_000)
    label = "peak memory <= 1/3 of NEST's (brainsim peak RSS / NEST peak RSS)"
    assert rows[label] == (f"brunel_stdp: {fmt(ratio)}", "yes")
    assert rows["final weights (mean, sd) agree with NEST's (see the weights table)"] == (
        "brunel_stdp: 2/2",
        "yes",
    )
    label = "bytes per plastic synapse <= 8 (one delay; static synapses at the twin's cost)"
    assert rows[label] == ("brunel_stdp: 7.87 (brunel)", "yes")
    text = render_markdown(document)
    section = text.split("## Final weights of plastic projections", 1)[1].split("\n## ", 1)[0]
    assert (
        "| case | projection | statistic | seeds | initial | brainsim | brainsim-1rank | nest "
        "| brian2 | ± brainsim | agree |" in section
    )
    assert "| brunel_stdp | EE | mean | 1 | 0.100 | 0.100 | – | 0.100 | – | 5.00e-03 | yes |" in (
        section
    )
    assert "| brunel_stdp | EE | sd | 1 | 0 | 2.60e-03 | – | 2.70e-03 | – | 1.35e-04 | yes |" in (
        section
    )
    memory = text.split("## Plastic synapses: memory", 1)[1].split("\n## ", 1)[0]
    assert "| brunel_stdp | 6,000,000 | 10,000,000 | 6.40 | brunel: 4.19 | 7.87 |" in memory
    assert "## Targets of the plastic cases" in text
    # The weights disagree once brainsim's spread is 10 % off NEST's.
    document["runs"][-2]["weights"]["EE"]["sd"] = 0.00297
    rows = {label: (value, met) for label, value, met in plastic_targets(document)}
    assert rows["final weights (mean, sd) agree with NEST's (see the weights table)"] == (
        "brunel_stdp: 1/2 (not EE sd)",
        "no",
    )
    assert "| brunel_stdp | EE | sd | 1 | 0 | 2.97e-03 | – | 2.70e-03 | – | 1.35e-04 | " in (
        render_markdown(document)
    )


def test_no_plastic_sections_without_plastic_cases(results_document: dict[str, Any]) -> None:
    text = render_markdown(results_document)
    assert "## Final weights of plastic projections" not in text
    assert "## Targets of the plastic cases" not in text
