"""``brainsim analyze STORE``: per-population summary of a recording (table or JSON) and figures."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from brainsim.analysis.plots import plot_raster, plot_rate_histogram, plot_traces
from brainsim.analysis.recording import Recording, open_recording
from brainsim.analysis.stats import PopulationStats
from brainsim.errors import BrainsimError

__all__ = ["analyze_main"]

EXIT_ERROR = 2


def analyze_main(
    store: str,
    *,
    plot: str | None,
    as_json: bool,
    t_start_ms: float | None,
    t_stop_ms: float | None,
) -> int:
    """Print the summary of ``store`` (table, or JSON with ``as_json``); return the exit code.

    With ``plot`` (``out.png``/``.svg``/``.pdf``) it writes the raster to that file, the rate
    histogram beside it (``out.rates.png``) and one trace figure per report
    (``out.<population>-<variable>.png``). Errors go to stderr with exit code 2.
    """
    try:
        recording = open_recording(store)
        start, stop = recording.window(t_start_ms, t_stop_ms)
        stats = recording.stats(start, stop)
        figures = [] if plot is None else _write_figures(recording, Path(plot), start, stop)
    except (BrainsimError, ValueError) as exc:
        print(f"brainsim analyze: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if as_json:
        print(json.dumps(_summary(recording, stats, start, stop, figures), indent=2))
    else:
        print(_table(recording, stats, start, stop))
        for figure in figures:
            print(f"wrote {figure}")
    return 0


def _write_figures(recording: Recording, plot: Path, start: float, stop: float) -> list[Path]:
    def beside(tag: str) -> Path:
        return plot.with_name(f"{plot.stem}.{tag}{plot.suffix}")

    written = [
        plot_raster(recording, plot, t_start_ms=start, t_stop_ms=stop),
        plot_rate_histogram(recording, beside("rates"), t_start_ms=start, t_stop_ms=stop),
    ]
    written.extend(
        plot_traces(
            recording,
            beside(f"{population}-{variable}"),
            population,
            variable,
            t_start_ms=start,
            t_stop_ms=stop,
        )
        for population, variable in recording.reports
    )
    return written


def _summary(
    recording: Recording,
    stats: dict[str, PopulationStats],
    start: float,
    stop: float,
    figures: list[Path],
) -> dict[str, Any]:
    return {
        "store": str(recording.path),
        "status": recording.status,
        "reason": recording.reason,
        "simulated_ms": recording.simulated_ms,
        "duration_ms": recording.duration_ms,
        "window_ms": [start, stop],
        "populations": {name: s.to_dict() for name, s in stats.items()},
        "reports": [f"{p}/{v}" for p, v in recording.reports],
        "figures": [str(f) for f in figures],
    }


def _number(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _table(
    recording: Recording, stats: dict[str, PopulationStats], start: float, stop: float
) -> str:
    status = recording.status + (f" ({recording.reason})" if recording.reason else "")
    lines = [
        f"{recording.path}: {status}, {recording.simulated_ms:g} of "
        f"{recording.duration_ms:g} ms simulated; window {start:g}-{stop:g} ms",
        f"{'population':<12}{'neurons':>10}{'spikes':>12}{'rate (Hz)':>11}{'CV ISI':>9}"
        f"{'Fano':>10}",
    ]
    lines.extend(
        f"{name:<12}{s.n_neurons:>10}{s.n_spikes:>12}{_number(s.mean_rate_hz, 3):>11}"
        f"{_number(s.cv_isi_mean, 3):>9}{_number(s.fano_factor, 2):>10}"
        for name, s in stats.items()
    )
    if not stats:
        lines.append("(no spike populations recorded)")
    return "\n".join(lines)
