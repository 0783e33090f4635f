"""Figures are written in the format the extension names and actually show data."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from brainsim.analysis import open_recording
from brainsim.analysis.plots import plot_raster, plot_rate_histogram, plot_traces


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
