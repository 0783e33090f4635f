"""Figures are written in the format the extension names and actually show data; the raster
shows a fixed sample of each population with its rate."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from brainsim.analysis import SpikeTrains, open_recording
from brainsim.analysis.plots import (
    RASTER_NEURONS,
    plot_raster,
    plot_rate_histogram,
    plot_traces,
    raster_figure,
    raster_sample,
)


def ink(png: Path) -> float:
    """Fraction of pixels that are not white."""
    pixels = matplotlib.image.imread(png)[..., :3]
    return float((pixels.min(axis=-1) < 0.95).mean())


def test_raster_png_shows_spikes_of_every_population(poisson_store: Path, tmp_path: Path) -> None:
    recording = open_recording(poisson_store)
    out = plot_raster(recording, tmp_path / "raster.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    crowded = ink(out)
    sparse = ink(plot_raster(recording, tmp_path / "short.png", t_start_ms=0.0, t_stop_ms=5.0))
    assert crowded > 0.02
    # fewer spikes, less ink: the raster really draws the spikes
    assert crowded > sparse * 1.5


def test_raster_svg(poisson_store: Path, tmp_path: Path) -> None:
    out = plot_raster(open_recording(poisson_store), tmp_path / "raster.svg", max_neurons=10)
    text = out.read_text()
    assert text.lstrip().startswith("<?xml")
    assert "<svg" in text
    # The spikes are embedded as one raster image so that big rasters keep SVGs small.
    assert "<image" in text


def test_traces_and_rate_histogram(poisson_store: Path, tmp_path: Path) -> None:
    recording = open_recording(poisson_store)
    traces = plot_traces(recording, tmp_path / "v.png", "E", "v", node_ids=[0, 9])
    histogram = plot_rate_histogram(recording, tmp_path / "rates.pdf")
    assert ink(traces) > 0.01
    assert histogram.read_bytes()[:5] == b"%PDF-"
    assert histogram.stat().st_size > 5000


def test_unknown_extension_is_refused(poisson_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.png"):
        plot_raster(open_recording(poisson_store), tmp_path / "raster.jpg")
    assert not list(tmp_path.iterdir())


def test_ink_detects_an_empty_figure(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    matplotlib.image.imsave(blank, np.ones((10, 10, 3)))
    assert ink(blank) == 0.0


# --- the raster's sample of neurons and its rates (matplotlib artists, not pixels) -------------


def raster_artists(figure: Figure, population: str) -> tuple[Line2D, Text]:
    """The spikes (Line2D) and the rate label (Text) a raster drew for ``population``."""
    raster = figure.axes[0]
    lines = [a for a in raster.lines if a.get_gid() == f"spikes:{population}"]
    texts = [a for a in raster.texts if a.get_gid() == f"rate:{population}"]
    assert len(lines) == 1
    assert len(texts) == 1
    return lines[0], texts[0]


def expected_points(
    spikes: SpikeTrains, sample: np.ndarray, offset: int, start: float, stop: float
) -> set[tuple[float, float]]:
    """(time, row) of every spike of a sampled neuron in [start, stop), independently of the
    plotting code: row ``offset + k`` is ``sample[k]``."""
    in_window = (spikes.times_ms >= start - 1e-6) & (spikes.times_ms < stop - 1e-6)
    row = {int(node): offset + k for k, node in enumerate(sample)}
    return {
        (float(t), float(row[int(n)]))
        for t, n in zip(spikes.times_ms[in_window], spikes.node_ids[in_window], strict=True)
        if int(n) in row
    }


def drawn_points(line: Line2D) -> list[tuple[float, float]]:
    x, y = (np.asarray(d, dtype=np.float64) for d in line.get_data())
    return list(zip(x.tolist(), y.tolist(), strict=True))


def test_raster_sample_is_evenly_spaced_node_ids() -> None:
    np.testing.assert_array_equal(raster_sample(10_000, 100), np.arange(100) * 100)
    # floor(i * 20 / 7): spread over the whole range, first neuron included
    assert raster_sample(20, 7).tolist() == [0, 2, 5, 8, 11, 14, 17]
    for size, n in [(12_500, 100), (101, 100), (7, 3), (10**9, 1000)]:
        sample = raster_sample(size, n)
        assert sample.dtype == np.int64
        assert sample.size == n
        assert np.all(np.diff(sample) >= size // n)  # distinct, sorted, evenly spaced
        assert sample[0] == 0
        assert sample[-1] >= size - 1 - -(-size // n)  # reaches the last stride
        assert sample[-1] < size
    # small populations and None: every neuron
    np.testing.assert_array_equal(raster_sample(80, 100), np.arange(80))
    np.testing.assert_array_equal(raster_sample(100, 100), np.arange(100))
    np.testing.assert_array_equal(raster_sample(12_500, None), np.arange(12_500))
    assert raster_sample(0, 100).size == 0
    with pytest.raises(ValueError, match="max_neurons must be >= 1"):
        raster_sample(100, 0)


@pytest.mark.parametrize("window", [(None, None), (100.0, 312.5)])
def test_raster_artists_hold_exactly_the_sampled_neurons_spikes(
    poisson_store: Path, window: tuple[float | None, float | None]
) -> None:
    recording = open_recording(poisson_store)
    start, stop = recording.window(*window)
    figure = raster_figure(recording, t_start_ms=window[0], t_stop_ms=window[1], max_neurons=7)
    offset = 0
    for population in ("E", "I"):
        spikes = recording.spikes(population)
        sample = raster_sample(spikes.population_size, 7)
        line, _ = raster_artists(figure, population)
        points = drawn_points(line)
        assert len(points) == len(set(points))  # no spike drawn twice
        assert set(points) == expected_points(spikes, sample, offset, start, stop)
        assert points  # the sample fires, so the check above is not vacuous
        offset += sample.size
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["E\n7 of 80", "I\n7 of 20"]
    assert figure.axes[0].get_ylim() == (-0.5, 13.5)


def test_raster_sample_is_the_same_on_every_call(poisson_store: Path) -> None:
    recording = open_recording(poisson_store)
    first, again = (raster_figure(recording, max_neurons=9) for _ in range(2))
    other = raster_figure(open_recording(poisson_store), max_neurons=9)
    for population in ("E", "I"):
        reference = drawn_points(raster_artists(first, population)[0])
        assert drawn_points(raster_artists(again, population)[0]) == reference
        assert drawn_points(raster_artists(other, population)[0]) == reference


@pytest.mark.parametrize("max_neurons", [RASTER_NEURONS, 80, None])
def test_small_populations_are_plotted_whole(poisson_store: Path, max_neurons: int | None) -> None:
    recording = open_recording(poisson_store)  # E: 80 neurons, I: 20
    figure = raster_figure(recording, max_neurons=max_neurons)
    offset = 0
    for population in ("E", "I"):
        spikes = recording.spikes(population)
        line, _ = raster_artists(figure, population)
        every = np.arange(spikes.population_size)
        expected = expected_points(spikes, every, offset, 0.0, recording.simulated_ms)
        assert set(drawn_points(line)) == expected
        assert len(drawn_points(line)) == spikes.n_spikes  # every spike of the run
        offset += spikes.population_size
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["E\nall 80", "I\nall 20"]


@pytest.mark.parametrize(("window", "max_neurons"), [((None, None), 5), ((50.0, 260.0), None)])
def test_raster_shows_the_population_rate_as_computed(
    poisson_store: Path, window: tuple[float | None, float | None], max_neurons: int | None
) -> None:
    recording = open_recording(poisson_store)
    stats = recording.stats(*window)
    figure = raster_figure(
        recording, t_start_ms=window[0], t_stop_ms=window[1], max_neurons=max_neurons
    )
    legend = [t.get_text() for t in figure.axes[1].get_legend().get_texts()]
    for population in ("E", "I"):
        _, text = raster_artists(figure, population)
        # the mean over every neuron of the population, not over the sample shown
        rate = stats[population].mean_rate_hz
        assert text.get_text() == f"{rate:.3g} Hz"
        assert float(text.get_text().removesuffix(" Hz")) == pytest.approx(rate, rel=5e-3)
        assert f"{population} (mean {rate:.3g} Hz)" in legend
    # the labels sit beside their bands, right of the axes
    e_text, i_text = (raster_artists(figure, p)[1] for p in ("E", "I"))
    assert e_text.get_position()[0] > 1.0
    assert e_text.get_position()[1] < i_text.get_position()[1]


def test_plot_raster_saves_the_sampled_figure(poisson_store: Path, tmp_path: Path) -> None:
    recording = open_recording(poisson_store)
    few = ink(plot_raster(recording, tmp_path / "few.png", max_neurons=2))
    many = ink(plot_raster(recording, tmp_path / "many.png", max_neurons=None))
    assert 0 < few < many
