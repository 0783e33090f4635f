"""analyze_main: the summary table, JSON, figures, and exit code 2 with a message on errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brainsim.analysis import open_recording
from brainsim.analysis.cli import analyze_main


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
