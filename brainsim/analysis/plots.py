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
from brainsim.analysis.stats import _in_window, firing_rates_hz, population_rate

__all__ = [
    "FIGURE_FORMATS",
    "RASTER_NEURONS",
    "plot_confusion_matrix",
    "plot_raster",
    "plot_rate_histogram",
    "plot_traces",
    "raster_figure",
    "raster_sample",
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


RASTER_NEURONS = 100
"""Neurons per population in a raster by default: rows stay readable (NEST's and Brian2's
examples record about 50-100 neurons of a population for their raster plots)."""


def raster_sample(population_size: int, max_neurons: int | None) -> npt.NDArray[np.int64]:
    """The node ids a raster shows of a population: all of them when ``max_neurons`` is None
    or at least ``population_size``, else ``n = max_neurons`` evenly spaced ones,
    ``floor(i * population_size / n)`` for ``i = 0 .. n - 1`` (neuron 0 and every
    ``population_size / n``-th after it).

    Evenly spaced ids rather than a random sample: the same ids on every call, machine and
    numpy version, easy to name ("every 100th neuron"), and spread over the whole id range, so
    a population whose ids carry structure (groups driven by different inputs, a stimulus on
    the first neurons) shows all of it, where the first ``n`` neurons would show one part.
    """
    if max_neurons is not None and max_neurons < 1:
        raise ValueError(f"max_neurons must be >= 1 or None (all), got {max_neurons}")
    size = max(int(population_size), 0)
    if max_neurons is None or max_neurons >= size:
        return np.arange(size, dtype=np.int64)
    return (np.arange(max_neurons, dtype=np.int64) * size) // max_neurons


def _format_rate(rate_hz: float) -> str:
    """A rate as the raster shows it: three significant digits, e.g. ``8.47 Hz``."""
    return f"{rate_hz:.3g} Hz"


def raster_figure(
    recording: Recording,
    *,
    t_start_ms: float | None = None,
    t_stop_ms: float | None = None,
    bin_ms: float = 5.0,
    max_neurons: int | None = RASTER_NEURONS,
) -> Figure:
    """The figure :func:`plot_raster` saves (for inspection or further drawing).

    Each spike population is one ``Line2D`` of ``|`` markers with gid ``spikes:<population>``
    (x: spike time in ms, y: its row), one ``Text`` with gid ``rate:<population>`` right of its
    band giving the population's mean rate, and one PSTH (``StepPatch``) in the lower panel.
    """
    start, stop = recording.window(t_start_ms, t_stop_ms)
    figure = Figure(figsize=(10, 6), layout="constrained")
    raster, rates = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    populations = recording.spike_populations
    samples = [
        raster_sample(recording.populations[population].size, max_neurons)
        for population in populations
    ]
    n_rows = sum(sample.size for sample in samples)
    # About 4 inches of raster: markers as tall as a row, within readable limits.
    markersize = float(np.clip(0.8 * 4 * 72 / max(n_rows, 1), 0.5, 6.0))
    offset = 0
    ticks, labels = [], []
    for index, (population, sample) in enumerate(zip(populations, samples, strict=True)):
        colour = _COLOURS[index % len(_COLOURS)]
        spikes = recording.spikes(population)
        times, ids = _in_window(spikes, start, stop)
        row_of = np.full(spikes.population_size, -1, dtype=np.int64)
        row_of[sample] = np.arange(sample.size, dtype=np.int64)
        rows = row_of[ids]
        keep = rows >= 0
        raster.plot(
            times[keep],
            rows[keep] + offset,
            linestyle="none",
            marker="|",
            markersize=markersize,
            color=colour,
            rasterized=True,
            gid=f"spikes:{population}",
        )
        mean_rate = float(firing_rates_hz(spikes, start, stop).mean())
        raster.text(
            1.01,
            offset + sample.size / 2 - 0.5,
            _format_rate(mean_rate),
            transform=raster.get_yaxis_transform(),
            ha="left",
            va="center",
            color=colour,
            fontsize="small",
            gid=f"rate:{population}",
        )
        if offset:
            raster.axhline(offset - 0.5, color="0.75", linewidth=0.5)
        ticks.append(offset + sample.size / 2 - 0.5)
        shown = "all" if sample.size == spikes.population_size else f"{sample.size:,} of"
        labels.append(f"{population}\n{shown} {spikes.population_size:,}")
        offset += sample.size
        psth = population_rate(spikes, start, stop, bin_ms=bin_ms)
        rates.stairs(
            psth.rate_hz,
            psth.edges_ms,
            color=colour,
            label=f"{population} (mean {_format_rate(mean_rate)})",
        )
    raster.set_yticks(ticks, labels, multialignment="center")
    raster.set_ylim(-0.5, max(offset, 1) - 0.5)
    raster.set_ylabel("population (neurons shown)")
    raster.set_title(f"{recording.path.name}: spikes ({recording.status}); mean rates at right")
    rates.set_xlim(start, stop)
    rates.set_xlabel("time (ms)")
    rates.set_ylabel(f"rate (Hz, {bin_ms:g} ms bins)")
    if populations:
        rates.legend(loc="upper right", fontsize="small")
    return figure


def plot_raster(
    recording: Recording,
    path: str | os.PathLike[str],
    *,
    t_start_ms: float | None = None,
    t_stop_ms: float | None = None,
    bin_ms: float = 5.0,
    max_neurons: int | None = RASTER_NEURONS,
) -> Path:
    """Raster of every spike population (one colour each) above their population rates.

    Shows a sample of ``max_neurons`` neurons of each population (:func:`raster_sample`:
    evenly spaced node ids, the same on every call; a population of at most ``max_neurons``
    neurons, or ``max_neurons=None``, is shown whole), its rows stacked above the earlier
    populations', with the population's mean rate in the window (over all its neurons, as
    :func:`brainsim.analysis.firing_rates_hz` computes it) at the right of its band. The rate
    panel beneath, the PSTH, counts every neuron.
    """
    out = _figure_path(path)
    figure = raster_figure(
        recording,
        t_start_ms=t_start_ms,
        t_stop_ms=t_stop_ms,
        bin_ms=bin_ms,
        max_neurons=max_neurons,
    )
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
