"""``python -m bench``: argument checks and re-rendering saved results (no simulator runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main, parser
from bench.suite import Options, configurations, predict_peak_bytes


def test_report_from_json_writes_markdown_and_plot(
    tmp_path: Path, results_document: dict[str, Any]
) -> None:
    source = tmp_path / "2026-01-01T000000.json"
    source.write_text(json.dumps(results_document), encoding="utf-8")
    markdown, plot = tmp_path / "RESULTS.md", tmp_path / "rtf.png"
    status = main(
        [
            "--report-from",
            str(source),
            "--results-md",
            str(markdown),
            "--plot",
            str(plot),
            "--note",
            "engine changed between repetitions",
        ]
    )
    assert status == 0
    text = markdown.read_text(encoding="utf-8")
    assert "| brunel | nest |" in text
    assert "- engine changed between repetitions" in text
    assert plot.stat().st_size > 0


@pytest.mark.parametrize(
    "argv", [["--simulators", "brainsim,neuron"], ["hodgkin"], ["brunel", "--reps", "0"]]
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_defaults() -> None:
    args = parser().parse_args(["all"])
    assert args.cases == ["all"]
    assert args.simulators == "brainsim,nest,brian2"
    assert args.reps is None


def test_configurations_alternate_brainsim_ranks_and_references() -> None:
    simulators = ("brainsim", "nest", "brian2")
    found = [(c.name, c.workers, c.pool) for c in configurations(simulators, 2, True, True)]
    assert found == [
        ("brainsim", 2, False),
        ("brainsim-1rank", 1, False),
        ("brainsim-pool", 2, True),
        ("nest", 2, False),
        ("brian2", 2, False),
    ]
    without_pool = [c.name for c in configurations(simulators, 2, True, False)]
    assert without_pool == ["brainsim", "brainsim-1rank", "nest", "brian2"]
    assert [c.name for c in configurations(("brainsim",), 1, True, False)] == ["brainsim"]
    one_core = [(c.name, c.workers) for c in configurations(("brainsim",), 1, True, True)]
    assert one_core == [("brainsim", 1), ("brainsim-pool", 1)]
    # No pool configuration without brainsim.
    assert [c.name for c in configurations(("nest",), 2, True, True)] == ["nest"]


def test_no_pool_reaches_the_suite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[Options] = []

    class Stop(Exception):
        pass

    def run_suite(options: Options, root: Path) -> None:
        seen.append(options)
        raise Stop

    monkeypatch.setattr("bench.cli.run_suite", run_suite)
    for extra in ([], ["--no-pool"]):
        with pytest.raises(Stop):
            main(["brunel", "--out-dir", str(tmp_path), *extra])
    assert [options.pool for options in seen] == [True, False]


def test_memory_prediction_prefers_measured_cost() -> None:
    assert predict_peak_bytes("nest", 1_000_000, 1e8, None) == 1e8 + 80.0 * 1_000_000
    assert predict_peak_bytes("nest", 1_000_000, 1e8, 50.0) == pytest.approx(1e8 + 55.0 * 1e6)
