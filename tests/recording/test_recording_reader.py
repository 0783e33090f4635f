"""open_store: metadata, spikes, reports and stimulus presentations of a store, and a clear
error for every bad path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import recording_synthetic as synthetic
import zarr

from brainsim.errors import RecordingError, RecordingFormatError
from brainsim.exchange import LocalCommunicator
from brainsim.recording import (
    PopulationInfo,
    RecordingStore,
    SpikeTrains,
    StimulusSpec,
    ZarrRecorder,
    open_store,
)


def test_metadata_of_a_complete_store(complete_store: Path) -> None:
    store = open_store(complete_store)
    assert isinstance(store, RecordingStore)
    assert store.status == "complete"
    assert store.reason is None
    assert store.simulated_ms == pytest.approx(synthetic.STORE_STEPS * synthetic.DT_MS)
    assert store.dt_ms == synthetic.DT_MS
    assert store.seed == synthetic.SEED
    assert store.circuit["name"] == "synthetic"
    assert store.provenance["n_ranks"] == 1
    assert store.populations["I"] == PopulationInfo(size=13, model="lif", gid_offset=40)
    assert store.spike_populations == ("E", "I")
    assert store.reports == (("E", "v"), ("I", "u"))
    assert store.weight_projections == ("EE", "IE", "II")
    assert store.stimulus_names == ("pixels", "unseen")


def test_spikes_are_numpy_arrays_in_store_order(
    complete_store: Path, expected: dict[str, np.ndarray]
) -> None:
    spikes = open_store(complete_store).spikes("I")
    assert isinstance(spikes, SpikeTrains)
    assert spikes.population_size == 13
    assert spikes.n_spikes == expected["spikes/I/timestamps"].size > 1000
    np.testing.assert_array_equal(spikes.times_ms, expected["spikes/I/timestamps"])
    np.testing.assert_array_equal(spikes.node_ids, expected["spikes/I/node_ids"])


def test_report_is_a_labelled_dataarray(
    complete_store: Path, expected: dict[str, np.ndarray]
) -> None:
    v = open_store(complete_store).report("E", "v")
    assert v.name == "v"
    assert v.dims == ("time", "node_ids")
    assert v.attrs["units"] == "mV"
    assert v.attrs["interval_ms"] == 0.2
    assert v.attrs["population"] == "E"
    np.testing.assert_array_equal(v.values, expected["report/E/v/data"])
    np.testing.assert_array_equal(v["time"].values, expected["report/E/v/time"])
    trace = v.sel(node_ids=9).values
    np.testing.assert_array_equal(trace, expected["report/E/v/data"][:, 3])


def test_stimulus_presentations_are_what_was_written(complete_store: Path) -> None:
    store = open_store(complete_store)
    for name, kind, present_ms, rest_ms, onsets, samples in synthetic.STIMULI:
        shown = store.stimulus_presentations(name)
        assert isinstance(shown, StimulusSpec)
        assert (shown.name, shown.type, shown.present_ms, shown.rest_ms) == (
            name,
            kind,
            present_ms,
            rest_ms,
        )
        assert shown.onsets_ms.dtype == np.float64
        assert shown.sample_index.dtype == np.int64
        np.testing.assert_array_equal(shown.onsets_ms, onsets)
        np.testing.assert_array_equal(shown.sample_index, samples)
    with pytest.raises(RecordingError, match="recorded: \\['pixels', 'unseen'\\]"):
        store.stimulus_presentations("digits")


def test_unknown_population_or_report_is_a_recording_error(complete_store: Path) -> None:
    store = open_store(complete_store)
    with pytest.raises(RecordingError, match="recorded: \\['E', 'I'\\]"):
        store.spikes("X")
    with pytest.raises(RecordingError, match="E/v"):
        store.report("E", "w")


def test_a_running_store_opens_and_shows_progress(tmp_path: Path) -> None:
    path = tmp_path / "live.zarr"
    recorder = ZarrRecorder(path, LocalCommunicator())
    recorder.open(synthetic.run_info(30))
    recorder.add_spikes("E", np.array([1, 2], np.int64), np.array([5, 6], np.int64))
    recorder.flush(0.3)
    store = open_store(path)
    assert (store.status, store.simulated_ms) == ("running", 0.3)
    assert store.spikes("E").node_ids.tolist() == [5, 6]
    assert store.report("E", "v").shape == (0, 14)
    recorder.close("complete", build_s=0.0)
    assert open_store(path).status == "complete"


def test_a_store_with_the_writers_temporary_files_opens(tmp_path: Path) -> None:
    # While a run replaces a metadata document, zarr's local store keeps the new one in a
    # ``zarr.<hex>.partial`` file beside it; a reader listing the groups at that moment sees it
    # (warnings are errors in this suite, as they were in the server that met this).
    path = tmp_path / "live.zarr"
    recorder = ZarrRecorder(path, LocalCommunicator())
    recorder.open(synthetic.run_info(30))
    recorder.add_spikes("E", np.array([1, 2], np.int64), np.array([5, 6], np.int64))
    recorder.flush(0.3)
    for folder in (path, path / "spikes", path / "report" / "E"):
        (folder / "zarr.0123456789abcdef.partial").write_text("{")
    store = open_store(path)
    assert "E" in store.spike_populations
    assert ("E", "v") in store.reports
    assert store.spikes("E").node_ids.tolist() == [5, 6]
    recorder.close("complete", build_s=0.0)


def _plain_group(path: Path, attributes: dict[str, object] | None = None) -> zarr.Group:
    return zarr.create_group(store=str(path), zarr_format=3, attributes=attributes or {})


def _doc(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "format": "brainsim-recording/1",
        "status": "complete",
        "reason": None,
        "simulated_ms": 1.0,
        "dt_ms": 0.1,
        "duration_ms": 1.0,
        "seed": 1,
        "circuit": {},
        "circuit_sha256": "",
        "populations": {},
        "provenance": {},
    }
    doc.update(changes)
    return {key: value for key, value in doc.items() if value != "DROP"}


def _make_missing(path: Path) -> None:
    del path


def _make_file(path: Path) -> None:
    path.write_text("hello")


def _make_folder(path: Path) -> None:
    path.mkdir()
    (path / "data.csv").write_text("1,2")


def _make_foreign(path: Path) -> None:
    _plain_group(path, {"title": "someone else's data"})


def _make_half_written(path: Path) -> None:
    _plain_group(path).create_group("spikes/E")


def _make_being_created(path: Path) -> None:
    """A store caught while the writer creates it: the root has no attributes yet, and zarr's
    temporary file of a write in progress lies beside zarr.json."""
    _plain_group(path)
    (path / "zarr.0123456789abcdef0123456789abcdef.partial").write_bytes(b"{")


def _make_newer(path: Path) -> None:
    _plain_group(path, {"brainsim": _doc(format="brainsim-recording/2")})


def _make_other_format(path: Path) -> None:
    _plain_group(path, {"brainsim": _doc(format="sonata")})


def _make_truncated_doc(path: Path) -> None:
    _plain_group(path, {"brainsim": _doc(populations="DROP", provenance="DROP")})


def _make_malformed_doc(path: Path) -> None:
    _plain_group(path, {"brainsim": _doc(populations={"E": {"size": "many"}})})


def _make_broken_json(path: Path) -> None:
    path.mkdir()
    (path / "zarr.json").write_text("{not json")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_make_missing, "no such file or directory"),
        (_make_file, "is a file, not a recording"),
        (_make_folder, "not a Zarr v3 store"),
        (_make_broken_json, "not a readable Zarr v3 group"),
        (_make_foreign, "not a brainsim recording \\(no 'brainsim' attributes\\)"),
        (_make_half_written, "half-written recording: it has groups but no root metadata"),
        (_make_being_created, "a recording being created or a half-written one"),
        (_make_newer, "unknown format version 'brainsim-recording/2'"),
        (_make_other_format, "not a brainsim recording \\(format 'sonata'"),
        (_make_truncated_doc, "half-written recording: the root metadata lacks"),
        (_make_malformed_doc, "root metadata is malformed"),
    ],
)
def test_every_bad_path_gets_a_clear_format_error(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "store.zarr"
    make(path)
    with pytest.raises(RecordingFormatError, match=message) as caught:
        open_store(path)
    assert str(path) in str(caught.value)
    assert caught.value.__cause__ is None


def test_a_store_caught_between_two_shape_updates_reads_as_the_common_prefix(
    complete_store: Path, tmp_path: Path, expected: dict[str, np.ndarray]
) -> None:
    # What a reader sees when rank 0 has grown timestamps/data but not yet node_ids/time.
    copy = tmp_path / "between.zarr"
    shutil.copytree(complete_store, copy)
    (copy / "zarr.json").write_text(
        json.dumps({**json.loads((copy / "zarr.json").read_text()), "consolidated_metadata": None})
    )
    root = zarr.open_group(str(copy), mode="r+", use_consolidated=False)
    n_spikes = expected["spikes/E/node_ids"].size
    n_samples = expected["report/E/v/time"].size
    root["spikes/E/node_ids"].resize((n_spikes - 5,))
    root["report/E/v/time"].resize((n_samples - 3,))
    store = open_store(copy)
    spikes = store.spikes("E")
    np.testing.assert_array_equal(spikes.node_ids, expected["spikes/E/node_ids"][:-5])
    np.testing.assert_array_equal(spikes.times_ms, expected["spikes/E/timestamps"][:-5])
    v = store.report("E", "v")
    assert v.shape == (n_samples - 3, 14)
    np.testing.assert_array_equal(v["time"].values, expected["report/E/v/time"][:-3])
    np.testing.assert_array_equal(v.values, expected["report/E/v/data"][:-3])
