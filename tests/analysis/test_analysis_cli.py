"""brainsim analyze: the summary table, JSON, figures (--raster-neurons), decoding (--decode), and
exit code 2 with a message on errors."""

from __future__ import annotations

import json
from pathlib import Path

import analysis_decoding
import numpy as np
import pytest
from test_analysis_plots import ink

import brainsim.analysis.cli as analysis_cli
import brainsim.cli as brainsim_cli
from brainsim.analysis import open_recording
from brainsim.analysis.cli import analyze_main
from brainsim.analysis.plots import RASTER_NEURONS, plot_raster
from brainsim.cli import main


def test_table_lists_every_population(
    poisson_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = analyze_main(
        str(poisson_store), plot=None, as_json=False, t_start_ms=None, t_stop_ms=None
    )
    assert code == 0
    out = capsys.readouterr().out
    stats = open_recording(poisson_store).stats()
    header, *rows = out.splitlines()[1:]
    assert header.split()[:3] == ["population", "neurons", "spikes"]
    assert [row.split()[0] for row in rows] == ["E", "I"]
    e_row = rows[0].split()
    assert e_row[1:4] == ["80", str(stats["E"].n_spikes), f"{stats['E'].mean_rate_hz:.3f}"]
    assert "complete" in out.splitlines()[0]


def test_json_summary_with_window_and_figures(
    poisson_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "fig" / "run.png"
    code = analyze_main(
        str(poisson_store), plot=str(plot), as_json=True, t_start_ms=100.0, t_stop_ms=300.0
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "complete"
    assert summary["window_ms"] == [100.0, 300.0]
    expected = open_recording(poisson_store).stats(100.0, 300.0)
    assert summary["populations"]["I"] == expected["I"].to_dict()
    figures = [Path(f) for f in summary["figures"]]
    assert figures == [plot, tmp_path / "fig" / "run.rates.png", tmp_path / "fig" / "run.E-v.png"]
    assert all(f.stat().st_size > 5000 for f in figures)


@pytest.mark.parametrize(
    ("store", "window", "message"),
    [
        ("missing.zarr", (None, None), "no such file or directory"),
        ("POISSON", (300.0, 100.0), "empty analysis window"),
    ],
)
def test_errors_print_a_message_and_exit_2(
    poisson_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    store: str,
    window: tuple[float | None, float | None],
    message: str,
) -> None:
    path = str(poisson_store) if store == "POISSON" else str(tmp_path / store)
    code = analyze_main(path, plot=None, as_json=True, t_start_ms=window[0], t_stop_ms=window[1])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.startswith("brainsim analyze: error:")
    assert message in captured.err
    assert "Traceback" not in captured.err


# --- brainsim analyze STORE --decode STIMULUS (through the command line's main) ---------------


@pytest.fixture
def decode_files(tmp_path: Path) -> dict[str, Path]:
    """labels.npy (one class per data row) and groups.json of the decoding run."""
    labels = tmp_path / "labels.npy"
    np.save(labels, analysis_decoding.LABELS)
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({str(c): ids for c, ids in analysis_decoding.GROUPS.items()}))
    return {"labels": labels, "groups": groups}


def test_decode_by_rate_over_groups_prints_accuracy_and_confusion(
    decoding_store: Path, decode_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["analyze", str(decoding_store), "--decode", "pixels", "--population", "OutR",
            "--labels", str(decode_files["labels"]), "--groups", str(decode_files["groups"]),
            "--lag-ms", "4"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "OutR decoding stimulus pixels by rate" in lines[0]
    assert "1 presentation(s) past the end of the run left out" in lines[0]
    assert lines[1] == "tested on 11 presentation(s)"
    assert lines[2] == "accuracy 1.000 (11 of 11 correct, 0 without an answer)"
    table = [line.split() for line in lines[4:]]
    # Classes shown: 0 1 2 2 0 1 1 2 0 0 2 (the twelfth presentation is left out).
    assert table == [["0", "1", "2", "none"], ["0", "4", "0", "0", "0"],
                     ["1", "0", "3", "0", "0"], ["2", "0", "0", "4", "0"]]  # fmt: skip


def test_decode_by_assignment_as_json_with_a_figure(
    decoding_store: Path,
    decode_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plot = tmp_path / "fig" / "confusion.png"
    argv = ["analyze", str(decoding_store), "--decode", "pixels", "--population", "InR",
            "--labels", str(decode_files["labels"]), "--method", "assign", "--train", "6",
            "--lag-ms", "2", "--plot", str(plot), "--json"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "assign"
    assert (summary["n_train"], summary["n_test"], summary["accuracy"]) == (6, 5, 1.0)
    assert (summary["n_presentations"], summary["n_left_out"]) == (11, 1)
    assert summary["assignments"] == [0] * 4 + [1] * 4 + [2] * 4
    assert np.array(summary["confusion"])[:, :3].trace() == 5
    assert summary["figures"] == [str(plot)]
    assert ink(plot) > 0.05


def test_decode_by_latency_neuron_by_neuron_reports_ties_as_no_answer(
    decoding_store: Path, decode_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["analyze", str(decoding_store), "--decode", "onset", "--population", "InL",
            "--labels", str(decode_files["labels"]), "--method", "latency",
            "--train-fraction", "0.5"]  # fmt: skip
    assert main(argv) == 2
    assert "needs no training samples" in capsys.readouterr().err
    assert main([*argv[:-2], "--lag-ms", "1"]) == 0
    assert "accuracy 0.000 (0 of 11 correct, 11 without an answer)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "labels", "message"),
    [
        (["--decode", "digits", "--population", "InR"], ..., "recorded: ['onset', 'pixels']"),
        (["--decode", "pixels", "--population", "Nope"], ..., "no spikes of population 'Nope'"),
        (["--decode", "pixels", "--population", "InR"], "missing.npy", "cannot read labels"),
        (["--decode", "pixels", "--population", "InR"], [0, -1, 2, 0, 1, 2], "must be >= 0"),
        (["--decode", "pixels", "--population", "InR"], [0.5, 1, 2, 0, 1, 2], "whole numbers"),
        (["--decode", "pixels", "--population", "InR"], [[0, 1, 2]], "must be a 1-D array"),
        (["--decode", "pixels", "--population", "InR"], [0, 1, 2], "there are 3 labels"),
        (["--decode", "pixels", "--population", "InR", "--groups", "BAD"], ..., "not JSON"),
        (
            ["--decode", "pixels", "--population", "InR", "--method", "assign", "--train", "11"],
            ...,
            "leaves no training or no test",
        ),
        (["--decode", "pixels", "--population", "InR", "--t-start-ms", "5"], ..., "do not apply"),
        (["--decode", "pixels"], None, "--decode needs --population and --labels"),
        (["--population", "InR"], ..., "--population --labels: only with --decode"),
    ],
)
def test_decode_errors_exit_2_with_a_message(
    decoding_store: Path,
    decode_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    labels: object,
    message: str,
) -> None:
    """``labels``: ``...`` the run's labels, ``None`` none given, a name a missing file, else
    the array to save."""
    argv = ["analyze", str(decoding_store), *extra]
    if labels is ...:
        argv += ["--labels", str(decode_files["labels"])]
    elif isinstance(labels, str):
        argv += ["--labels", str(tmp_path / labels)]
    elif labels is not None:
        np.save(tmp_path / "bad.npy", np.array(labels))
        argv += ["--labels", str(tmp_path / "bad.npy")]
    if "BAD" in argv:
        (tmp_path / "bad.json").write_text("{0: [1]")
        argv[argv.index("BAD")] = str(tmp_path / "bad.json")
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("brainsim analyze: error:")
    assert message in captured.err
    assert "Traceback" not in captured.err


# --- brainsim analyze --plot --raster-neurons N|all -------------------------------------------


@pytest.mark.parametrize(
    ("extra", "max_neurons"),
    [([], 100), (["--raster-neurons", "7"], 7), (["--raster-neurons", "all"], None)],
)
def test_raster_neurons_reach_the_raster(
    poisson_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    max_neurons: int | None,
) -> None:
    asked: list[int | None] = []

    def raster(*args: object, max_neurons: int | None, **kwargs: object) -> Path:
        asked.append(max_neurons)
        return plot_raster(*args, max_neurons=max_neurons, **kwargs)

    monkeypatch.setattr(analysis_cli, "plot_raster", raster)
    plot = tmp_path / "run.png"
    assert main(["analyze", str(poisson_store), "--plot", str(plot), *extra]) == 0
    assert asked == [max_neurons]
    assert f"wrote {plot}" in capsys.readouterr().out
    assert ink(plot) > 0.01


def test_the_command_line_default_is_the_plotting_default() -> None:
    assert brainsim_cli.RASTER_NEURONS == RASTER_NEURONS == 100


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--raster-neurons", "0"], "must be >= 1"),
        (["--raster-neurons", "some"], "expected a whole number"),
        (["--raster-neurons", "5"], "--raster-neurons: only with --plot"),
        (["--raster-neurons", "5", "--plot", "x.png", "--decode", "s"], "without --decode"),
    ],
)
def test_raster_neurons_refusals_exit_2(
    poisson_store: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    try:
        code = main(["analyze", str(poisson_store), *extra])
    except SystemExit as exc:  # argparse refuses the value itself
        code = int(exc.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err
