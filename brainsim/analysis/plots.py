"""Figures of a recording: spike raster with population rate, state traces, rate histograms,
and the confusion matrix of a decoder.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global backend state, safe
in servers and threads) and saved in the format the file extension names (PNG, SVG or PDF).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from brainsim.analysis.recording import Recording
from brainsim.analysis.stats import firing_rates_hz, population_rate

__all__ = [
    "FIGURE_FORMATS",
    "plot_confusion_matrix",
    "plot_raster",
    "plot_rate_histogram",
    "plot_traces",
]

FIGURE_FORMATS = (".png", ".svg", ".pdf")
_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown")


def _figure_path(path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    if out.suffix.lower() not in FIGURE_FORMATS:
        raise ValueError(f"figure file {out} must end in one of {FIGURE_FORMATS}")
    return out


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
    return path


def plot_raster(
    recording: Recording,
    path: str | os.PathLike[str],
    *,
    t_start_ms: float | None = None,
    t_stop_ms: float | None = None,
    bin_ms: float = 5.0,
    max_neurons: int = 500,
) -> Path:
    """Raster of every spike population (one colour each) above their population rates.

    Shows neurons ``0 .. max_neurons - 1`` of each population (a raster of thousands of rows
    is unreadable; the rate panel uses every neuron). Rows of later populations are stacked
    above earlier ones.
    """
    out = _figure_path(path)
    start, stop = recording.window(t_start_ms, t_stop_ms)
    figure = Figure(figsize=(10, 6), layout="constrained")
    raster, rates = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    offset = 0
    ticks, labels = [], []
    for index, population in enumerate(recording.spike_populations):
        colour = _COLOURS[index % len(_COLOURS)]
        spikes = recording.spikes(population)
        shown = min(spikes.population_size, max_neurons)
        keep = (spikes.node_ids < shown) & (spikes.times_ms >= start) & (spikes.times_ms < stop)
        raster.plot(
            spikes.times_ms[keep],
            spikes.node_ids[keep] + offset,
            linestyle="none",
            marker="|",
            markersize=2,
            color=colour,
            rasterized=True,
        )
        ticks.append(offset + shown / 2)
        labels.append(population)
        offset += shown
        psth = population_rate(spikes, start, stop, bin_ms=bin_ms)
        rates.stairs(psth.rate_hz, psth.edges_ms, color=colour, label=population)
    raster.set_yticks(ticks, labels)
    raster.set_ylim(-0.5, max(offset, 1) - 0.5)
    raster.set_ylabel("population (neuron)")
    raster.set_title(f"{recording.path.name}: spikes ({recording.status})")
    rates.set_xlim(start, stop)
    rates.set_xlabel("time (ms)")
    rates.set_ylabel(f"rate (Hz, {bin_ms:g} ms bins)")
    if recording.spike_populations:
        rates.legend(loc="upper right", fontsize="small")
    return _save(figure, out)


def plot_traces(
    recording: Recording,
    path: str | os.PathLike[str],
    population: str,
    variable: str = "v",
    *,
    node_ids: Sequence[int] | None = None,
    max_traces: int = 5,
    t_start_ms: float | None = None,
    t_stop_ms: float | None = None,
) -> Path:
    """State traces (e.g. membrane voltage) of ``node_ids`` (default: the first few recorded)."""
    out = _figure_path(path)
    start, stop = recording.window(t_start_ms, t_stop_ms)
    report = recording.report(population, variable)
    chosen = report["node_ids"].values[:max_traces] if node_ids is None else np.asarray(node_ids)
    window = report.sel(time=slice(start, stop), node_ids=chosen)
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots()
    for node in window["node_ids"].values:
        trace = window.sel(node_ids=node)
        axes.plot(trace["time"].values, trace.values, linewidth=0.8, label=f"{population} {node}")
    axes.set_xlabel("time (ms)")
    axes.set_ylabel(f"{variable} ({report.attrs.get('units', '?')})")
    axes.set_title(f"{recording.path.name}: {population}/{variable}")
    if window.sizes["node_ids"]:
        axes.legend(loc="upper right", fontsize="small")
    return _save(figure, out)


def plot_rate_histogram(
    recording: Recording,
    path: str | os.PathLike[str],
    *,
    t_start_ms: float | None = None,
    t_stop_ms: float | None = None,
    bins: int = 30,
) -> Path:
    """Distribution of per-neuron firing rates in the window, one outline per population."""
    out = _figure_path(path)
    start, stop = recording.window(t_start_ms, t_stop_ms)
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    for index, population in enumerate(recording.spike_populations):
        rates = firing_rates_hz(recording.spikes(population), start, stop)
        axes.hist(
            rates,
            bins=bins,
            histtype="step",
            linewidth=1.5,
            color=_COLOURS[index % len(_COLOURS)],
            label=f"{population} (mean {rates.mean():.2f} Hz)",
        )
    axes.set_xlabel(f"firing rate (Hz), {start:g}-{stop:g} ms")
    axes.set_ylabel("neurons")
    if recording.spike_populations:
        axes.legend(fontsize="small")
    return _save(figure, out)


def plot_confusion_matrix(
    confusion: npt.ArrayLike,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """A confusion matrix as a heat map with the count in each cell: rows are true labels,
    columns decoded ones; a last column ``none`` (samples without an answer) is shown when the
    matrix has one more column than rows, as :func:`brainsim.analysis.confusion_matrix` gives."""
    out = _figure_path(path)
    matrix = np.asarray(confusion)
    n_rows, n_columns = matrix.shape if matrix.ndim == 2 else (0, 0)
    if matrix.ndim != 2 or n_columns not in (n_rows, n_rows + 1):
        raise ValueError(
            f"a confusion matrix is [n, n] or [n, n + 1] (no answer), got shape {matrix.shape}"
        )
    size = 2.5 + 0.5 * max(n_columns, 5)
    figure = Figure(figsize=(size, size * 0.9), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues", vmin=0, aspect="equal")
    bar = figure.colorbar(image, ax=axes, shrink=0.8, label="samples")
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    rows = [str(label) for label in range(n_rows)]
    axes.set_xticks(range(n_columns), rows + ["none"] * (n_columns - n_rows))
    axes.set_yticks(range(n_rows), rows)
    if n_columns <= 30:
        threshold = matrix.max(initial=0) / 2
        for (row, column), count in np.ndenumerate(matrix):
            colour = "white" if count > threshold else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    axes.set_xlabel("decoded label")
    axes.set_ylabel("true label")
    correct = int(np.trace(matrix[:, :n_rows]))
    total = int(matrix.sum())
    score = f"{correct} of {total} correct" + (f" ({correct / total:.1%})" if total else "")
    axes.set_title(f"{title}\n{score}" if title else score, fontsize="medium")
    return _save(figure, out)
