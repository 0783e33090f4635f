"""ZarrRecorder on one rank, checked through plain zarr and xarray (the format is the contract)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import recording_synthetic as synthetic
import xarray as xr
import zarr

from brainsim.errors import RecordingError, RecordingExistsError
from brainsim.exchange import LocalCommunicator
from brainsim.recording import (
    FORMAT,
    PopulationInfo,
    Recorder,
    ReportSpec,
    RunInfo,
    StimulusSpec,
    ZarrRecorder,
    check_writable,
    mark_store_failed,
)
from brainsim.recording.layout import COMPRESSIONS


def tiny_info(*, n_samples: int = 10, node_ids: tuple[int, ...] = (0, 2, 3)) -> RunInfo:
    return RunInfo(
        circuit_document={"name": "tiny"},
        circuit_sha256="ab" * 32,
        seed=7,
        dt_ms=0.1,
        duration_ms=n_samples * 0.1,
        populations={"E": PopulationInfo(size=4, model="lif", gid_offset=0)},
        spike_populations=("E",),
        reports=(
            ReportSpec(
                population="E",
                variable="v",
                units="mV",
                interval_ms=0.1,
                node_ids=np.array(node_ids, dtype=np.int64),
                n_samples=n_samples,
            ),
        ),
    )


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def brainsim_attrs(store: Path) -> dict:
    return dict(zarr.open_group(str(store), mode="r").attrs["brainsim"])


def test_zarr_recorder_has_every_method_of_the_recorder_protocol() -> None:
    for name in (
        "open",
        "add_spikes",
        "add_state",
        "add_state_block",
        "write_weight_ids",
        "write_weights",
        "flush",
        "close",
        "mark_failed",
        "position",
    ):
        expected_params = list(inspect.signature(getattr(Recorder, name)).parameters)
        assert list(inspect.signature(getattr(ZarrRecorder, name)).parameters) == expected_params
    assert ZarrRecorder(Path("unused.zarr"), LocalCommunicator()).flush_interval_ms == 100.0


def test_complete_store_holds_exactly_the_recorded_content(
    complete_store: Path, expected: dict[str, np.ndarray]
) -> None:
    root = zarr.open_group(str(complete_store), mode="r")
    for path, values in expected.items():
        stored = root[path][...]
        assert stored.dtype == values.dtype, path
        np.testing.assert_array_equal(stored, values, err_msg=path)
    # Spike times are step * dt_ms exactly, not accumulated sums.
    steps = np.rint(root["spikes/E/timestamps"][...] / synthetic.DT_MS).astype(np.int64)
    np.testing.assert_array_equal(root["spikes/E/timestamps"][...], steps * synthetic.DT_MS)


def test_layout_attributes_and_dimension_names_follow_recording_md(complete_store: Path) -> None:
    root = zarr.open_group(str(complete_store), mode="r")
    assert dict(root["spikes/E"].attrs) == {
        "sorting": "by_time",
        "units": "ms",
        "population_size": 40,
    }
    assert root["spikes/I"].attrs["population_size"] == 13
    assert dict(root["report/E/v"].attrs) == {"units": "mV", "interval_ms": 0.2, "start_ms": 0.0}
    assert root["report/I/u"].attrs["units"] == "pA"
    data = root["report/E/v/data"]
    assert data.dtype == np.float32
    assert data.metadata.dimension_names == ("time", "node_ids")
    assert root["report/E/v/time"].metadata.dimension_names == ("time",)
    assert root["report/E/v/node_ids"].metadata.dimension_names == ("node_ids",)
    assert root["spikes/E/timestamps"].dtype == np.float64
    assert root["spikes/E/node_ids"].dtype == np.int64
    assert dict(root["stimuli/pixels"].attrs) == {"type": "rate", "present_ms": 5.0, "rest_ms": 1.0}
    assert dict(root["stimuli/unseen"].attrs) == {
        "type": "latency",
        "present_ms": 2.0,
        "rest_ms": 0.0,
    }
    for stimulus in ("pixels", "unseen"):
        onsets = root[f"stimuli/{stimulus}/sample_onsets_ms"]
        shown = root[f"stimuli/{stimulus}/sample_index"]
        assert (onsets.dtype, shown.dtype) == (np.float64, np.int64)
        assert onsets.metadata.dimension_names == shown.metadata.dimension_names == ("sample",)
        assert onsets.attrs["units"] == "ms"
    assert root["stimuli/unseen/sample_index"].shape == (0,)


def test_root_metadata_describes_the_run(complete_store: Path) -> None:
    doc = brainsim_attrs(complete_store)
    assert doc["format"] == FORMAT == "brainsim-recording/1"
    assert doc["status"] == "complete"
    assert doc["reason"] is None
    assert doc["simulated_ms"] == pytest.approx(synthetic.STORE_STEPS * synthetic.DT_MS)
    assert doc["dt_ms"] == synthetic.DT_MS
    assert doc["duration_ms"] == pytest.approx(synthetic.STORE_STEPS * synthetic.DT_MS)
    assert doc["seed"] == synthetic.SEED
    assert doc["circuit"] == {"name": "synthetic", "populations": ["E", "I"]}
    assert doc["circuit_sha256"] == "0" * 64
    assert doc["populations"] == {
        "E": {"size": 40, "model": "lif", "gid_offset": 0},
        "I": {"size": 13, "model": "lif", "gid_offset": 40},
    }
    provenance = doc["provenance"]
    assert provenance["backend"] == "synthetic"
    assert provenance["n_ranks"] == 1
    assert provenance["build_s"] == 0.25
    assert provenance["sim_s"] == 0.5
    assert provenance["n_synapses"] == 1000
    assert provenance["n_synapses_per_rank"] == [1000]
    (run,) = provenance["runs"]
    assert len(run.pop("id")) == 16
    assert run == {
        "status": "complete",
        "n_ranks": 1,
        "end_time": provenance["end_time"],
        "wall_s": provenance["wall_s"],
        "cpu_s": 1.5,
        "max_rank_rss_bytes": 100 * 2**20,
        "sum_rank_rss_bytes": 100 * 2**20,
    }
    assert provenance["wall_s"] > 0
    assert provenance["start_time"] <= provenance["end_time"]
    assert provenance["end_time"].endswith("+00:00")


def test_xarray_opens_a_report_with_both_coordinates(
    complete_store: Path, expected: dict[str, np.ndarray]
) -> None:
    # The exact call RECORDING.md documents; a finished store opens without any warning.
    dataset = xr.open_zarr(complete_store, group="report/E/v")
    assert dataset["data"].dims == ("time", "node_ids")
    np.testing.assert_array_equal(dataset["time"].values, expected["report/E/v/time"])
    np.testing.assert_array_equal(dataset["node_ids"].values, expected["report/E/v/node_ids"])
    np.testing.assert_array_equal(dataset["data"].values, expected["report/E/v/data"])
    spikes = xr.open_zarr(complete_store, group="spikes/I")
    assert spikes["timestamps"].dims == ("spikes",)


def test_default_compression_is_blosc_zstd_for_spikes_and_lz4_for_reports(
    complete_store: Path,
) -> None:
    root = zarr.open_group(str(complete_store), mode="r")
    for path, cname in (("spikes/E/timestamps", "zstd"), ("report/E/v/data", "lz4")):
        blosc = root[path].metadata.to_dict()["codecs"][-1]
        assert blosc["name"] == "blosc"
        assert blosc["configuration"]["cname"] == cname
        assert blosc["configuration"]["shuffle"] == "shuffle"


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_stores_the_same_content(
    tmp_path: Path, compression: str, expected: dict[str, np.ndarray]
) -> None:
    store = tmp_path / "c.zarr"
    synthetic.run(store, synthetic.STORE_STEPS, LocalCommunicator(), compression=compression)
    root = zarr.open_group(str(store), mode="r")
    for path, values in expected.items():
        np.testing.assert_array_equal(root[path][...], values, err_msg=path)


def test_flushed_data_is_readable_while_running(tmp_path: Path) -> None:
    store = tmp_path / "live.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator(), spike_chunk=4, report_chunk_bytes=24)
    recorder.open(tiny_info())
    recorder.add_spikes("E", i64(0, 0, 3, 5, 5, 5), i64(1, 2, 0, 0, 1, 3))
    for sample in range(3):
        recorder.add_state(0, sample, i64(0, 1, 2), np.full(3, sample, np.float32))
    recorder.flush(0.6)
    root = zarr.open_group(str(store), mode="r")
    doc = root.attrs["brainsim"]
    assert (doc["status"], doc["simulated_ms"]) == ("running", 0.6)
    np.testing.assert_array_equal(root["spikes/E/node_ids"][...], i64(1, 2, 0, 0, 1, 3))
    np.testing.assert_array_equal(
        root["spikes/E/timestamps"][...], np.array([0, 0, 3, 5, 5, 5]) * 0.1
    )
    assert root["report/E/v/data"].shape == (3, 3)
    live = xr.open_zarr(store, group="report/E/v", consolidated=False)
    np.testing.assert_array_equal(live["time"].values, np.arange(3) * 0.1)
    # A second flush extends the partial chunks written by the first.
    recorder.add_spikes("E", i64(6, 7), i64(2, 2))
    recorder.add_state(0, 3, i64(0, 1, 2), np.full(3, 3, np.float32))
    recorder.flush(0.8)
    root = zarr.open_group(str(store), mode="r")
    np.testing.assert_array_equal(root["spikes/E/node_ids"][...], i64(1, 2, 0, 0, 1, 3, 2, 2))
    np.testing.assert_array_equal(root["report/E/v/data"][:, 0], np.arange(4, dtype=np.float32))
    recorder.close("complete", build_s=0.0)


def test_values_never_added_are_nan(tmp_path: Path) -> None:
    store = tmp_path / "gaps.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(tiny_info(n_samples=3))
    recorder.add_state(0, 0, i64(0, 2), np.array([1.0, 3.0], np.float32))
    recorder.add_state(0, 2, i64(1), np.array([5.0], np.float32))
    recorder.close("complete", build_s=0.0)
    data = zarr.open_group(str(store), mode="r")["report/E/v/data"][...]
    np.testing.assert_array_equal(
        data, np.array([[1, np.nan, 3], [np.nan] * 3, [np.nan, 5, np.nan]], np.float32)
    )


def test_a_population_without_spikes_gives_empty_arrays(tmp_path: Path) -> None:
    store = tmp_path / "quiet.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(tiny_info())
    recorder.close("complete", build_s=0.0)
    root = zarr.open_group(str(store), mode="r")
    assert root["spikes/E/timestamps"].shape == (0,)
    assert root["report/E/v/data"].shape == (0, 3)
    assert root.attrs["brainsim"]["simulated_ms"] == pytest.approx(1.0)


def test_an_existing_store_is_never_overwritten_unless_asked(complete_store: Path) -> None:
    before = brainsim_attrs(complete_store)
    recorder = ZarrRecorder(complete_store, LocalCommunicator())
    with pytest.raises(RecordingExistsError, match="overwrite=True"):
        recorder.open(tiny_info())
    assert brainsim_attrs(complete_store) == before


def test_overwrite_replaces_an_existing_store(tmp_path: Path) -> None:
    store = tmp_path / "again.zarr"
    first = ZarrRecorder(store, LocalCommunicator())
    first.open(tiny_info())
    first.add_spikes("E", i64(1), i64(1))
    first.close("complete", build_s=0.0)
    second = ZarrRecorder(store, LocalCommunicator(), overwrite=True)
    second.open(tiny_info(node_ids=(1,)))
    second.close("cancelled", build_s=0.0, reason="user")
    root = zarr.open_group(str(store), mode="r")
    assert root["spikes/E/timestamps"].shape == (0,)
    assert root["report/E/v/node_ids"][...].tolist() == [1]
    assert root.attrs["brainsim"]["status"] == "cancelled"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_path_that_is_not_a_store_is_refused_even_with_overwrite(
    tmp_path: Path, overwrite: bool
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    a_file = tmp_path / "file.zarr"
    a_file.write_text("not a store")
    for path in (folder, a_file):
        with pytest.raises(RecordingExistsError, match="refus"):
            ZarrRecorder(path, LocalCommunicator(), overwrite=overwrite).open(tiny_info())
    assert (folder / "notes.txt").read_text() == "keep me"
    assert a_file.read_text() == "not a store"


def test_an_empty_directory_is_used(tmp_path: Path) -> None:
    store = tmp_path / "empty.zarr"
    store.mkdir()
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(tiny_info())
    recorder.close("complete", build_s=0.0)
    assert brainsim_attrs(store)["status"] == "complete"


def test_close_records_cancelled_and_failed_with_reason(tmp_path: Path) -> None:
    for status in ("cancelled", "failed"):
        store = tmp_path / f"{status}.zarr"
        recorder = ZarrRecorder(store, LocalCommunicator())
        recorder.open(tiny_info())
        recorder.add_spikes("E", i64(2), i64(3))
        recorder.flush(0.3)
        recorder.add_spikes("E", i64(4), i64(0))
        recorder.close(status, build_s=1.5, reason=f"{status} on purpose")  # type: ignore[arg-type]
        doc = brainsim_attrs(store)
        assert (doc["status"], doc["reason"]) == (status, f"{status} on purpose")
        assert doc["simulated_ms"] == pytest.approx(0.3)
        assert doc["provenance"]["build_s"] == 1.5
        assert "n_synapses" not in doc["provenance"]  # none given, none recorded
        # close flushed what was added after the last flush
        assert zarr.open_group(str(store), mode="r")["spikes/E/node_ids"][...].tolist() == [3, 0]


def test_mark_failed_is_kept_by_a_later_close(tmp_path: Path) -> None:
    store = tmp_path / "failed.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(tiny_info())
    recorder.add_spikes("E", i64(1), i64(2))
    recorder.flush(0.2)
    recorder.mark_failed("rank 0 ran out of memory")
    doc = brainsim_attrs(store)
    assert (doc["status"], doc["reason"]) == ("failed", "rank 0 ran out of memory")
    assert doc["provenance"]["end_time"] is not None
    recorder.flush(0.4)
    recorder.close("complete", build_s=0.0)
    doc = brainsim_attrs(store)
    assert (doc["status"], doc["reason"]) == ("failed", "rank 0 ran out of memory")
    assert doc["simulated_ms"] == pytest.approx(1.0)


def test_mark_failed_without_a_store_does_not_raise(tmp_path: Path) -> None:
    ZarrRecorder(tmp_path / "never.zarr", LocalCommunicator()).mark_failed("early")
    assert not (tmp_path / "never.zarr").exists()


def test_a_failed_write_raises_and_leaves_a_store_saying_failed(tmp_path: Path) -> None:
    store = tmp_path / "broken.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(tiny_info())
    # A file where the chunk directory must go makes the chunk write fail for real.
    (store / "spikes" / "E" / "timestamps" / "c").write_text("in the way")
    recorder.add_spikes("E", i64(1), i64(2))
    with pytest.raises(RecordingError, match="rank 0 failed writing its chunks"):
        recorder.flush(0.2)
    with pytest.raises(RecordingError):
        recorder.close("complete", build_s=0.0)
    doc = brainsim_attrs(store)
    assert doc["status"] == "failed"
    assert "writing its chunks" in doc["reason"]


def test_complete_spike_chunks_are_written_behind_before_any_flush(tmp_path: Path) -> None:
    store = tmp_path / "behind.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator(), spike_chunk=4)
    recorder.open(tiny_info(n_samples=100))
    steps, ids = np.repeat(i64(0, 1, 2, 3, 4), 2), np.tile(i64(0, 3), 5)
    chunks = store / "spikes" / "E" / "node_ids" / "c"
    recorder.add_spikes("E", steps[:3], ids[:3])
    assert not chunks.exists()
    recorder.add_spikes("E", steps[3:], ids[3:])
    # Ten spikes: the two complete chunks are on disk, the partial third waits for a flush,
    # and nothing is published yet.
    assert sorted(path.name for path in chunks.iterdir()) == ["0", "1"]
    assert zarr.open_group(str(store), mode="r")["spikes/E/node_ids"].shape == (0,)
    recorder.add_spikes("E", i64(6), i64(1))
    recorder.flush(0.7)
    root = zarr.open_group(str(store), mode="r")
    np.testing.assert_array_equal(root["spikes/E/node_ids"][...], np.append(ids, 1))
    np.testing.assert_array_equal(root["spikes/E/timestamps"][...], np.append(steps, 6) * 0.1)
    # The published partial chunk is completed behind, then the close publishes it.
    recorder.add_spikes("E", i64(7, 8, 9), i64(0, 0, 0))
    assert sorted(path.name for path in chunks.iterdir()) == ["0", "1", "2"]
    recorder.close("complete", build_s=0.0)
    root = zarr.open_group(str(store), mode="r")
    np.testing.assert_array_equal(root["spikes/E/node_ids"][...], np.append(ids, [1, 0, 0, 0]))


def test_a_failed_write_behind_is_raised_by_the_next_flush(tmp_path: Path) -> None:
    store = tmp_path / "behind_broken.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator(), spike_chunk=2)
    recorder.open(tiny_info())
    (store / "spikes" / "E" / "timestamps" / "c").write_text("in the way")
    recorder.add_spikes("E", i64(1, 1, 2), i64(0, 2, 1))  # one complete chunk, written behind
    with pytest.raises(RecordingError, match="rank 0 failed writing its chunks"):
        recorder.flush(0.3)
    with pytest.raises(RecordingError):
        recorder.close("complete", build_s=0.0)
    assert brainsim_attrs(store)["status"] == "failed"


@pytest.mark.parametrize(
    ("steps", "ids", "message"),
    [
        (i64(3, 2), i64(0, 0), "not sorted"),
        (i64(2, 2), i64(1, 0), "not sorted"),
        (i64(2, 2), i64(1, 1), "not sorted"),
        (i64(2), i64(4), "outside"),
        (i64(2), i64(-1), "outside"),
    ],
)
def test_spikes_out_of_order_or_range_are_rejected_at_flush(
    tmp_path: Path, steps: np.ndarray, ids: np.ndarray, message: str
) -> None:
    recorder = ZarrRecorder(tmp_path / "bad.zarr", LocalCommunicator())
    recorder.open(tiny_info())
    recorder.add_spikes("E", steps, ids)
    with pytest.raises(RecordingError, match=message):
        recorder.flush(0.5)


def test_spikes_going_back_in_time_across_flushes_are_rejected(tmp_path: Path) -> None:
    recorder = ZarrRecorder(tmp_path / "back.zarr", LocalCommunicator())
    recorder.open(tiny_info())
    recorder.add_spikes("E", i64(5), i64(1))
    recorder.flush(0.6)
    recorder.add_spikes("E", i64(4), i64(2))
    with pytest.raises(RecordingError, match="back in time"):
        recorder.flush(0.8)


def test_misuse_is_reported(tmp_path: Path) -> None:
    recorder = ZarrRecorder(tmp_path / "misuse.zarr", LocalCommunicator())
    with pytest.raises(RecordingError, match="not open"):
        recorder.flush(0.0)
    recorder.open(tiny_info())
    with pytest.raises(RecordingError, match="already open"):
        recorder.open(tiny_info())
    with pytest.raises(RecordingError, match="'I' is not recorded"):
        recorder.add_spikes("I", i64(1), i64(1))
    with pytest.raises(RecordingError, match="report 1 does not exist"):
        recorder.add_state(1, 0, i64(0), np.zeros(1, np.float32))
    with pytest.raises(RecordingError, match="positions"):
        recorder.add_state(0, 0, i64(3), np.zeros(1, np.float32))
    recorder.add_state(0, 0, i64(0), np.zeros(1, np.float32))
    recorder.flush(0.1)
    with pytest.raises(RecordingError, match="outside the unflushed range"):
        recorder.add_state(0, 0, i64(0), np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="status"):
        recorder.close("done", build_s=0.0)  # type: ignore[arg-type]


def test_a_run_description_the_store_cannot_hold_is_rejected(tmp_path: Path) -> None:
    info = tiny_info()
    bad = RunInfo(
        circuit_document={},
        circuit_sha256="",
        seed=0,
        dt_ms=0.1,
        duration_ms=1.0,
        populations={"E": PopulationInfo(4, "lif", 0), "a/b": PopulationInfo(1, "lif", 4)},
        spike_populations=("E", "X"),
        reports=(*info.reports, info.reports[0]),
        stimuli=(
            StimulusSpec("in/put", "rate", 1.0, 0.0, np.zeros(2), np.zeros(3, dtype=np.int64)),
        ),
    )
    with pytest.raises(RecordingError) as caught:
        ZarrRecorder(tmp_path / "x.zarr", LocalCommunicator()).open(bad)
    text = str(caught.value)
    assert "'a/b'" in text
    assert "'X'" in text
    assert "recorded twice" in text
    assert "stimulus name must be non-empty and without '/'" in text
    assert "onsets_ms and sample_index must be 1-D of equal length" in text
    assert not (tmp_path / "x.zarr").exists()


def test_circuit_document_is_stored_as_plain_json(tmp_path: Path) -> None:
    store = tmp_path / "doc.zarr"
    info = tiny_info()
    document = {"populations": ({"name": "E", "size": np.int64(4)},), "dt": np.float64(0.1)}
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(
        RunInfo(**{**{f: getattr(info, f) for f in info.__slots__}, "circuit_document": document})
    )
    recorder.close("complete", build_s=0.0)
    text = (store / "zarr.json").read_text()
    assert json.loads(text)["attributes"]["brainsim"]["circuit"] == {
        "populations": [{"name": "E", "size": 4}],
        "dt": 0.1,
    }


def test_check_writable_refuses_like_open_but_changes_nothing(
    complete_store: Path, tmp_path: Path
) -> None:
    check_writable(tmp_path / "new.zarr")
    (tmp_path / "empty").mkdir()
    check_writable(tmp_path / "empty")
    with pytest.raises(RecordingExistsError, match="overwrite"):
        check_writable(complete_store)
    before = sorted(p.name for p in complete_store.iterdir())
    check_writable(complete_store, overwrite=True)
    assert sorted(p.name for p in complete_store.iterdir()) == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("a")
    with pytest.raises(RecordingExistsError, match="not a Zarr store"):
        check_writable(tmp_path / "mine", overwrite=True)


def test_mark_store_failed_changes_only_a_running_store(
    complete_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "died.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(tiny_info())
    assert mark_store_failed(store, "mpiexec exited with 137")
    doc = brainsim_attrs(store)
    assert (doc["status"], doc["reason"]) == ("failed", "mpiexec exited with 137")
    assert not mark_store_failed(store, "again")
    assert brainsim_attrs(store)["reason"] == "mpiexec exited with 137"
    before = brainsim_attrs(complete_store)
    assert not mark_store_failed(complete_store, "late")
    assert brainsim_attrs(complete_store) == before
    assert not mark_store_failed(tmp_path / "missing.zarr", "never started")
    assert not (tmp_path / "missing.zarr").exists()
