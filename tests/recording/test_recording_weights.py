"""Weight snapshots on one rank: the layout through plain zarr and xarray, the reader, partial
and failed runs, and every misuse the recorder refuses (the MPI tests cover several ranks)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from brainsim.errors import RecordingError
from brainsim.exchange import LocalCommunicator
from brainsim.recording import (
    PopulationInfo,
    ReportSpec,
    RunInfo,
    WeightSpec,
    ZarrRecorder,
    open_store,
)

SOURCES = np.array([3, 0, 2, 2, 1], dtype=np.int64)
TARGETS = np.array([0, 1, 1, 1, 2], dtype=np.int64)
"""Five EE synapses ordered by target, then source (a multapse 2 -> 1 included)."""
ALL = np.arange(5, dtype=np.int64)


def weights_info(*weights: WeightSpec, reports: tuple[ReportSpec, ...] = ()) -> RunInfo:
    return RunInfo(
        circuit_document={"name": "plastic"},
        circuit_sha256="cd" * 32,
        seed=5,
        dt_ms=0.5,
        duration_ms=3.0,
        populations={
            "E": PopulationInfo(size=4, model="lif", gid_offset=0),
            "I": PopulationInfo(size=2, model="lif", gid_offset=4),
        },
        spike_populations=(),
        reports=reports,
        weights=weights
        or (
            WeightSpec("EE", "stdp", "mV", max_snapshots=4, interval_ms=1.0),
            WeightSpec("IE", "stdp", "pA", max_snapshots=1, interval_ms=None),
        ),
    )


def f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def snapshot(snapshot: int) -> np.ndarray:
    return (1.0 + snapshot + 0.1 * ALL).astype(np.float32)


def recorder_with_ids(store: Path, **options: int) -> ZarrRecorder:
    recorder = ZarrRecorder(store, LocalCommunicator(), **options)  # type: ignore[arg-type]
    recorder.open(weights_info())
    recorder.add_weight_ids(0, ALL, SOURCES, TARGETS)
    recorder.add_weight_ids(1, i64(), i64(), i64())
    return recorder


@pytest.fixture(scope="module")
def plastic_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Snapshots at 0, 1 and 2 ms and the final one at 3 ms, flushed in between; chunks of two
    weights, so the five synapses of a snapshot take three chunks, the last one padded."""
    store = tmp_path_factory.mktemp("plastic") / "run.zarr"
    recorder = recorder_with_ids(store, weight_chunk=2)
    for k, time_ms in enumerate((0.0, 1.0, 2.0, 3.0)):
        recorder.add_weights(0, k, time_ms, ALL, snapshot(k))
        if k == 1:
            recorder.flush(1.0)
    recorder.add_weights(1, 0, 3.0, i64(), f32())
    recorder.close("complete", build_s=0.0)
    return store


def test_plain_zarr_reads_the_layout_of_recording_md(plastic_store: Path) -> None:
    root = zarr.open_group(str(plastic_store), mode="r")
    group = root["weights/EE"]
    assert dict(group.attrs) == {"units": "mV", "interval_ms": 1.0, "model": "stdp"}
    assert dict(root["weights/IE"].attrs) == {"units": "pA", "interval_ms": None, "model": "stdp"}
    data = group["data"]
    assert (data.dtype, data.shape, data.chunks) == (np.float32, (4, 5), (1, 2))
    assert data.metadata.dimension_names == ("time", "synapse")
    assert dict(data.attrs) == {"units": "mV", "coordinates": "source target"}
    np.testing.assert_array_equal(data[...], np.stack([snapshot(k) for k in range(4)]))
    time = group["time"]
    assert (time.dtype, time.metadata.dimension_names) == (np.float64, ("time",))
    assert time[...].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert time.attrs["units"] == "ms"
    for name, ids in (("source", SOURCES), ("target", TARGETS)):
        array = group[name]
        assert (array.dtype, array.chunks) == (np.int64, (2,))
        assert array.metadata.dimension_names == ("synapse",)
        np.testing.assert_array_equal(array[...], ids)
    # One chunk file per snapshot and pair of synapses.
    chunks = plastic_store / "weights" / "EE" / "data" / "c"
    assert sorted(str(p.relative_to(chunks)) for p in chunks.glob("*/*")) == [
        f"{row}/{col}" for row in range(4) for col in range(3)
    ]


def test_xarray_opens_weights_with_source_and_target_coordinates(plastic_store: Path) -> None:
    # The call docs/recording.md shows; a finished store opens without any warning.
    dataset = xr.open_zarr(plastic_store, group="weights/EE")
    weights = dataset["data"]
    assert weights.dims == ("time", "synapse")
    np.testing.assert_array_equal(weights["source"].values, SOURCES)
    np.testing.assert_array_equal(weights["target"].values, TARGETS)
    np.testing.assert_array_equal(weights["time"].values, [0.0, 1.0, 2.0, 3.0])
    final = weights.isel(time=-1)
    onto_1 = final.where(final.target == 1, drop=True)
    np.testing.assert_array_equal(onto_1.values, snapshot(3)[1:4])
    np.testing.assert_array_equal(onto_1["source"].values, [0, 2, 2])
    assert xr.open_zarr(plastic_store, group="weights/IE")["data"].shape == (1, 0)


def test_the_reader_gives_weights_as_a_labelled_dataarray(plastic_store: Path) -> None:
    store = open_store(plastic_store)
    assert store.weight_projections == ("EE", "IE")
    weights = store.weights("EE")
    assert weights.name == "weight"
    assert weights.dims == ("time", "synapse")
    assert weights.attrs == {
        "units": "mV",
        "interval_ms": 1.0,
        "model": "stdp",
        "projection": "EE",
    }
    assert weights["time"].attrs == {"units": "ms"}
    np.testing.assert_array_equal(weights.values, np.stack([snapshot(k) for k in range(4)]))
    np.testing.assert_array_equal(weights["target"].values, TARGETS)
    final_only = store.weights("IE")
    assert final_only.shape == (1, 0)
    assert final_only["time"].values.tolist() == [3.0]
    assert final_only.attrs["interval_ms"] is None


def test_an_unknown_projection_names_the_recorded_ones(plastic_store: Path) -> None:
    with pytest.raises(RecordingError, match=r"no weights of projection 'II'.*\['EE', 'IE'\]"):
        open_store(plastic_store).weights("II")


def test_a_store_without_weights_lists_none(tmp_path: Path) -> None:
    store = tmp_path / "static.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(replace(weights_info(), weights=()))
    recorder.close("complete", build_s=0.0)
    assert open_store(store).weight_projections == ()
    assert "weights" not in zarr.open_group(str(store), mode="r")


def test_weight_arrays_appear_at_the_first_flush_with_their_synapses(tmp_path: Path) -> None:
    store = tmp_path / "ids.zarr"
    recorder = recorder_with_ids(store)
    # The synapses are not flushed yet, so their number is not known: no arrays yet.
    assert "weights" not in zarr.open_group(str(store), mode="r")
    assert open_store(store).weight_projections == ()
    recorder.flush(0.5)
    root = zarr.open_group(str(store), mode="r")
    assert root["weights/EE/data"].shape == (0, 5)
    np.testing.assert_array_equal(root["weights/EE/target"][...], TARGETS)
    assert open_store(store).weights("EE").shape == (0, 5)
    assert xr.open_zarr(store, group="weights/EE", consolidated=False)["data"].shape == (0, 5)
    recorder.add_weights(0, 0, 0.0, ALL, snapshot(0))
    recorder.flush(1.0)
    np.testing.assert_array_equal(open_store(store).weights("EE").values, [snapshot(0)])
    recorder.close("complete", build_s=0.0)


def test_a_cancelled_run_publishes_every_snapshot_it_took(tmp_path: Path) -> None:
    store = tmp_path / "cancelled.zarr"
    recorder = recorder_with_ids(store)
    recorder.add_weights(0, 0, 0.0, ALL, snapshot(0))
    recorder.flush(0.5)
    recorder.add_weights(0, 1, 1.0, ALL, snapshot(1))
    recorder.close("cancelled", build_s=0.0, reason="user")
    weights = open_store(store).weights("EE")
    assert weights["time"].values.tolist() == [0.0, 1.0]
    np.testing.assert_array_equal(weights.values, [snapshot(0), snapshot(1)])


def test_a_run_that_dies_keeps_the_flushed_snapshots(tmp_path: Path) -> None:
    store = tmp_path / "died.zarr"
    recorder = recorder_with_ids(store)
    recorder.add_weights(0, 0, 0.0, ALL, snapshot(0))
    recorder.flush(0.5)
    recorder.add_weights(0, 1, 1.0, ALL, snapshot(1))
    recorder.mark_failed("killed")  # and the process is gone: no close
    opened = open_store(store)
    assert opened.status == "failed"
    np.testing.assert_array_equal(opened.weights("EE").values, [snapshot(0)])


def test_weights_never_added_are_nan(tmp_path: Path) -> None:
    store = tmp_path / "gaps.zarr"
    recorder = recorder_with_ids(store)
    recorder.add_weights(0, 0, 0.0, i64(1, 3), f32(7.0, 8.0))
    recorder.close("complete", build_s=0.0)
    np.testing.assert_array_equal(
        open_store(store).weights("EE").values, [f32(np.nan, 7.0, np.nan, 8.0, np.nan)]
    )


def test_a_wide_report_across_column_chunks_and_flushes(tmp_path: Path) -> None:
    # 600 nodes take three column chunks of 256; three samples per chunk row, and flushes that
    # fall inside chunk rows, so owners keep and extend one partial block per column chunk.
    store = tmp_path / "wide.zarr"
    nodes = np.arange(600, dtype=np.int64)
    report = ReportSpec("E", "v", "mV", 0.5, nodes, n_samples=7)
    info = replace(
        weights_info(),
        reports=(report,),
        populations={"E": PopulationInfo(600, "lif", 0), "I": PopulationInfo(2, "lif", 600)},
    )
    recorder = ZarrRecorder(store, LocalCommunicator(), report_chunk_bytes=3 * 4 * 256)
    recorder.open(info)
    values = np.arange(7 * 600, dtype=np.float32).reshape(7, 600)
    evens, odds = nodes[::2], nodes[1::2]
    for sample in range(7):
        recorder.add_state(0, sample, odds, values[sample, odds])  # columns learnt out of order
        recorder.add_state(0, sample, evens, values[sample, evens])
        if sample in (1, 3, 4):
            recorder.flush(sample * 0.5)
    recorder.close("complete", build_s=0.0)
    data = zarr.open_group(str(store), mode="r")["report/E/v/data"]
    assert data.chunks == (3, 256)
    np.testing.assert_array_equal(data[...], values)


def test_a_bad_weight_recording_is_refused_with_every_problem(tmp_path: Path) -> None:
    info = weights_info(
        WeightSpec("EE", "stdp", "mV", max_snapshots=2, interval_ms=0.0),
        WeightSpec("EE", "", "mV", max_snapshots=1, interval_ms=None),
        WeightSpec("a/b", "stdp", "mV", max_snapshots=-1, interval_ms=None),
    )
    with pytest.raises(RecordingError) as caught:
        ZarrRecorder(tmp_path / "bad.zarr", LocalCommunicator()).open(info)
    text = str(caught.value)
    for problem in (
        "weights[0] (EE): interval_ms must be > 0 or None",
        "weights[1] (EE): recorded twice",
        "weights[1] (EE): needs a model and units",
        "weights[2] (a/b): projection name must be non-empty and without '/'",
        "weights[2] (a/b): needs max_snapshots >= 0",
    ):
        assert problem in text
    assert not (tmp_path / "bad.zarr").exists()


@pytest.mark.parametrize(
    ("positions", "sources", "targets", "message"),
    [
        (i64(0, 1), i64(0), i64(0, 1), "1-D integer arrays of equal length"),
        (ALL.astype(np.float64), SOURCES, TARGETS, "1-D integer arrays"),
        (i64(0, 2, 1, 3, 4), SOURCES, TARGETS, "strictly ascending and >= 0"),
        (i64(0, 1, 1, 3, 4), SOURCES, TARGETS, "strictly ascending"),
        (i64(-1, 0, 1, 2, 3), SOURCES, TARGETS, "strictly ascending and >= 0"),
        (ALL, i64(3, -1, 2, 2, 1), TARGETS, "node ids >= 0"),
    ],
)
def test_bad_synapse_ids_are_refused(
    tmp_path: Path, positions: np.ndarray, sources: np.ndarray, targets: np.ndarray, message: str
) -> None:
    recorder = ZarrRecorder(tmp_path / "ids.zarr", LocalCommunicator())
    recorder.open(weights_info())
    with pytest.raises(RecordingError, match=f"weights/EE: .*{message}"):
        recorder.add_weight_ids(0, positions, sources, targets)


def test_misused_weight_calls_are_refused(tmp_path: Path) -> None:
    recorder = ZarrRecorder(tmp_path / "misuse.zarr", LocalCommunicator())
    recorder.open(weights_info())
    with pytest.raises(RecordingError, match="weight recording 2 does not exist \\(2 recorded\\)"):
        recorder.add_weight_ids(2, ALL, SOURCES, TARGETS)
    with pytest.raises(RecordingError, match="add_weight_ids must come before add_weights"):
        recorder.add_weights(0, 0, 0.0, ALL, snapshot(0))
    recorder.add_weight_ids(0, i64(0, 2, 4), SOURCES[::2], TARGETS[::2])
    with pytest.raises(RecordingError, match="already called"):
        recorder.add_weight_ids(0, ALL, SOURCES, TARGETS)
    with pytest.raises(RecordingError, match="snapshot 1 is out of order; the next one is 0"):
        recorder.add_weights(0, 1, 0.0, i64(0), f32(1.0))
    with pytest.raises(RecordingError, match="positions \\[1, 3\\] are not among this rank's"):
        recorder.add_weights(0, 0, 0.0, i64(1, 2, 3), f32(1, 2, 3))
    with pytest.raises(RecordingError, match="positions \\[5\\] are not among this rank's"):
        recorder.add_weights(0, 0, 0.0, i64(5), f32(1))
    with pytest.raises(RecordingError, match="do not fit"):
        recorder.add_weights(0, 0, 0.0, i64(0, 2), f32(1))
    with pytest.raises(RecordingError, match="values must be 1-D"):
        recorder.add_weights(0, 0, 0.0, i64(0), np.zeros((1, 1), np.float32))
    with pytest.raises(RecordingError, match="snapshot 0 has the time nan ms"):
        recorder.add_weights(0, 0, float("nan"), i64(0), f32(1))
    recorder.add_weights(0, 0, 0.0, i64(0, 2, 4), f32(1, 2, 3))
    with pytest.raises(RecordingError, match=r"snapshot 1 at 0\.0 ms is not later than snapshot 0"):
        recorder.add_weights(0, 1, 0.0, i64(0), f32(1))
    recorder.add_weights(0, 1, 1.0, i64(0), f32(1))
    recorder.add_weights(0, 2, 2.0, i64(), f32())
    recorder.add_weights(0, 3, 3.0, i64(), f32())
    with pytest.raises(
        RecordingError, match="snapshot 4 is outside the unflushed range \\[0, 4\\)"
    ):
        recorder.add_weights(0, 4, 4.0, i64(), f32())


def test_synapse_columns_beyond_the_synapses_given_fail_the_flush(tmp_path: Path) -> None:
    store = tmp_path / "gap.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(weights_info())
    recorder.add_weight_ids(0, i64(0, 1, 2, 7), SOURCES[:4], TARGETS[:4])
    recorder.add_weight_ids(1, i64(), i64(), i64())
    with pytest.raises(
        RecordingError,
        match=r"weights/EE: the ranks gave 4 synapses, so their columns must be 0 \.\. 3, "
        r"but rank 0 gave column 7",
    ):
        recorder.flush(0.5)
    with pytest.raises(RecordingError):
        recorder.close("complete", build_s=0.0)
    assert open_store(store).status == "failed"


def test_synapses_out_of_order_fail_the_flush(tmp_path: Path) -> None:
    recorder = ZarrRecorder(tmp_path / "order.zarr", LocalCommunicator())
    recorder.open(weights_info())
    recorder.add_weight_ids(0, ALL, i64(3, 2, 0, 2, 1), TARGETS)
    with pytest.raises(
        RecordingError,
        match="ordered by target, then source; column 2 \\(target 1, source 0\\) follows "
        "column 1 \\(target 1, source 2\\)",
    ):
        recorder.flush(0.5)
