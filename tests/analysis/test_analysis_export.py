"""Export to NWB (read back with pynwb) and to Neo; skipped without the ``nwb`` extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brainsim.analysis import open_recording
from brainsim.analysis.export import to_neo, to_nwb

pynwb = pytest.importorskip("pynwb")
neo = pytest.importorskip("neo")
quantities = pytest.importorskip("quantities")


def test_nwb_units_table_holds_every_spike(poisson_store: Path, tmp_path: Path) -> None:
    recording = open_recording(poisson_store)
    path = to_nwb(recording, tmp_path / "run.nwb")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        units = nwbfile.units.to_dataframe()
        assert nwbfile.session_start_time.isoformat() == "2024-05-01T12:00:00+00:00"
    for population in recording.spike_populations:
        spikes = recording.spikes(population)
        table = units[units["population"] == population]
        assert table["node_id"].tolist() == np.unique(spikes.node_ids).tolist()
        offset = recording.populations[population].gid_offset
        assert (table["gid"] - table["node_id"] == offset).all()
        for node_id, times_s in zip(table["node_id"], table["spike_times"], strict=True):
            expected_ms = spikes.times_ms[spikes.node_ids == node_id]
            np.testing.assert_array_equal(np.asarray(times_s), expected_ms / 1000.0)
    total = sum(recording.spikes(p).n_spikes for p in recording.spike_populations)
    assert sum(len(t) for t in units["spike_times"]) == total


def test_nwb_refuses_an_existing_file(poisson_store: Path, tmp_path: Path) -> None:
    existing = tmp_path / "run.nwb"
    existing.write_text("keep")
    with pytest.raises(FileExistsError):
        to_nwb(open_recording(poisson_store), existing)
    assert existing.read_text() == "keep"


def test_neo_block_has_a_train_per_neuron_in_ms(poisson_store: Path) -> None:
    recording = open_recording(poisson_store)
    block = to_neo(recording)
    trains = block.segments[0].spiketrains
    assert len(trains) == sum(recording.populations[p].size for p in recording.spike_populations)
    assert [g.name for g in block.groups] == ["E", "I"]
    i_trains = block.groups[1].spiketrains
    spikes = recording.spikes("I")
    for node, train in enumerate(i_trains):
        assert train.units == quantities.ms
        assert train.annotations == {"population": "I", "node_id": node}
        np.testing.assert_array_equal(train.magnitude, spikes.times_ms[spikes.node_ids == node])
        assert float(train.t_stop) == recording.simulated_ms


def test_neo_trains_are_linked_as_appending_them_would(poisson_store: Path) -> None:
    """to_neo hands neo whole lists (appending one by one is quadratic): every train still
    knows its segment, and the groups hold the segment's own train objects, in order."""
    block = to_neo(open_recording(poisson_store))
    segment = block.segments[0]
    trains = list(segment.spiketrains)
    assert all(train.segment is segment for train in trains)
    grouped = [train for group in block.groups for train in group.spiketrains]
    assert len(grouped) == len(trains)
    assert all(a is b for a, b in zip(grouped, trains, strict=True))
    assert [t.name for t in block.groups[1].spiketrains[:2]] == ["I[0]", "I[1]"]
    with pytest.raises(ValueError, match="already contained"):
        segment.spiketrains.append(trains[0])  # still neo's checked list
