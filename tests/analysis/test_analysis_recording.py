"""open_recording (also as brainsim.open_recording): the analysis view of a store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from analysis_synthetic import N_STEPS, SIZES, V_NODES, poisson_steps, voltage

import brainsim
from brainsim.analysis import Recording, open_recording, population_stats
from brainsim.errors import RecordingFormatError


def test_brainsim_open_recording_is_the_analysis_function(poisson_store: Path) -> None:
    assert brainsim.open_recording is open_recording
    recording = brainsim.open_recording(poisson_store)
    assert isinstance(recording, Recording)
    assert recording.status == "complete"
    assert recording.circuit == {"name": "poisson"}
    assert recording.provenance["backend"] == "test"
    assert recording.populations["I"].gid_offset == SIZES["E"]


def test_spikes_and_report_hold_what_was_recorded(poisson_store: Path) -> None:
    recording = open_recording(poisson_store)
    steps, ids = poisson_steps("I")
    spikes = recording.spikes("I")
    np.testing.assert_array_equal(spikes.node_ids, ids)
    np.testing.assert_array_equal(spikes.times_ms, steps * 0.1)
    v = recording.report("E", "v")
    np.testing.assert_array_equal(v["node_ids"].values, V_NODES)
    np.testing.assert_array_equal(v.isel(time=7).values, voltage(7))


def test_stats_default_to_the_simulated_window(poisson_store: Path) -> None:
    recording = open_recording(poisson_store)
    assert recording.window() == (0.0, N_STEPS * 0.1)
    stats = recording.stats()
    assert list(stats) == ["E", "I"]
    expected = population_stats(recording.spikes("E"), 0.0, N_STEPS * 0.1)
    assert stats["E"] == expected
    assert stats["I"].mean_rate_hz == pytest.approx(50.0, rel=0.15)
    steady = recording.stats(100.0, 400.0, bin_ms=10.0)["E"]
    assert (steady.t_start_ms, steady.t_stop_ms, steady.bin_ms) == (100.0, 400.0, 10.0)
    with pytest.raises(ValueError, match="empty analysis window"):
        recording.window(400.0, 100.0)


def test_open_recording_of_a_bad_path_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingFormatError, match="no such file"):
        open_recording(tmp_path / "nothing.zarr")
