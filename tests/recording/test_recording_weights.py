"""Weight snapshots on one rank: the layout through plain zarr and xarray, the reader, partial
and failed runs, and every misuse the recorder refuses (the MPI tests cover several ranks)."""

from __future__ import annotations

from collections.abc import Callable
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


def ids_of(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    return SOURCES[lo:hi], TARGETS[lo:hi]


def values_of(snapshot_index: int) -> Callable[[int, int], np.ndarray]:
    return lambda lo, hi: snapshot(snapshot_index)[lo:hi]


def nothing(lo: int, hi: int) -> np.ndarray:
    raise AssertionError(f"a rank without synapses was asked for columns {lo} .. {hi - 1}")


def recorder_with_ids(store: Path, **options: int) -> ZarrRecorder:
    recorder = ZarrRecorder(store, LocalCommunicator(), **options)  # type: ignore[arg-type]
    recorder.open(weights_info())
    recorder.write_weight_ids(0, 0, 5, ids_of)
    recorder.write_weight_ids(1, 0, 0, nothing)  # type: ignore[arg-type]
    return recorder


@pytest.fixture(scope="module")
def plastic_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Snapshots at 0, 1 and 2 ms and the final one at 3 ms, flushed in between; chunks of two
    weights, so the five synapses of a snapshot take three chunks, the last one padded."""
    store = tmp_path_factory.mktemp("plastic") / "run.zarr"
    recorder = recorder_with_ids(store, weight_chunk=2)
    for k, time_ms in enumerate((0.0, 1.0, 2.0, 3.0)):
        recorder.write_weights(0, k, time_ms, values_of(k))
        if k == 1:
            recorder.flush(1.0)
    recorder.write_weights(1, 0, 3.0, nothing)
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


def test_weight_arrays_appear_with_their_synapses_and_snapshots_when_written(
    tmp_path: Path,
) -> None:
    store = tmp_path / "ids.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(weights_info())
    # The synapses are not known yet, so neither is their number: no arrays yet.
    assert "weights" not in zarr.open_group(str(store), mode="r")
    assert open_store(store).weight_projections == ()
    recorder.write_weight_ids(0, 0, 5, ids_of)
    root = zarr.open_group(str(store), mode="r")
    assert root["weights/EE/data"].shape == (0, 5)
    np.testing.assert_array_equal(root["weights/EE/target"][...], TARGETS)
    assert open_store(store).weights("EE").shape == (0, 5)
    assert xr.open_zarr(store, group="weights/EE", consolidated=False)["data"].shape == (0, 5)
    # A snapshot is published, like a state sample, by the next flush.
    recorder.write_weights(0, 0, 0.0, values_of(0))
    assert open_store(store).weights("EE").shape == (0, 5)
    recorder.flush(0.5)
    np.testing.assert_array_equal(open_store(store).weights("EE").values, [snapshot(0)])
    recorder.write_weight_ids(1, 0, 0, nothing)  # type: ignore[arg-type]
    recorder.close("complete", build_s=0.0)


def test_a_cancelled_run_keeps_every_snapshot_it_took(tmp_path: Path) -> None:
    store = tmp_path / "cancelled.zarr"
    recorder = recorder_with_ids(store)
    recorder.write_weights(0, 0, 0.0, values_of(0))
    recorder.flush(0.5)
    recorder.write_weights(0, 1, 1.0, values_of(1))
    recorder.close("cancelled", build_s=0.0, reason="user")
    weights = open_store(store).weights("EE")
    assert weights["time"].values.tolist() == [0.0, 1.0]
    np.testing.assert_array_equal(weights.values, [snapshot(0), snapshot(1)])


@pytest.mark.parametrize("weight_chunk", [5, 40])  # a snapshot a chunk; 8 snapshots a chunk
def test_a_run_that_dies_keeps_the_flushed_snapshots(tmp_path: Path, weight_chunk: int) -> None:
    store = tmp_path / "died.zarr"
    recorder = recorder_with_ids(store, weight_chunk=weight_chunk)
    recorder.write_weights(0, 0, 0.0, values_of(0))
    recorder.flush(0.5)
    recorder.write_weights(0, 1, 1.0, values_of(1))
    recorder.mark_failed("killed")  # and the process is gone: no flush, no close
    opened = open_store(store)
    assert opened.status == "failed"
    np.testing.assert_array_equal(opened.weights("EE").values, [snapshot(0)])


def test_snapshots_that_share_a_chunk_rewrite_it_whole(tmp_path: Path) -> None:
    # Chunks of 3 snapshots x 5 synapses: the owner keeps the block of the current row of
    # chunks, writes it whole at each flush and when it is complete; a new row of chunks
    # starts from NaN.
    store = tmp_path / "narrow.zarr"
    info = replace(
        weights_info(), weights=(WeightSpec("EE", "stdp", "mV", max_snapshots=7, interval_ms=1.0),)
    )
    recorder = ZarrRecorder(store, LocalCommunicator(), weight_chunk=15)
    recorder.open(info)
    recorder.write_weight_ids(0, 0, 5, ids_of)
    assert zarr.open_group(str(store), mode="r")["weights/EE/data"].chunks == (3, 5)
    for k in range(5):
        recorder.write_weights(0, k, float(k), values_of(k))
        recorder.flush(k + 0.5)
        data = zarr.open_group(str(store), mode="r")["weights/EE/data"]
        np.testing.assert_array_equal(data[...], [snapshot(j) for j in range(k + 1)])
    recorder.write_weights(0, 5, 5.0, values_of(5))
    recorder.write_weights(0, 6, 6.0, values_of(6))  # completes the third row of chunks
    recorder.close("complete", build_s=0.0)
    weights = open_store(store).weights("EE")
    np.testing.assert_array_equal(weights.values, [snapshot(j) for j in range(7)])
    assert weights["time"].values.tolist() == [float(j) for j in range(7)]


def test_a_snapshot_is_read_a_chunk_at_a_time(tmp_path: Path) -> None:
    # However many synapses a rank has, it is asked for one chunk's columns at a time: it never
    # holds its whole snapshot (or its ids) in the recording's order.
    n = 1000
    asked: list[tuple[int, int]] = []

    def values(lo: int, hi: int) -> np.ndarray:
        asked.append((lo, hi))
        return np.arange(lo, hi, dtype=np.float32)

    def ids(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        asked.append((lo, hi))
        return np.zeros(hi - lo, np.int64), np.arange(lo, hi, dtype=np.int64) // 10

    store = tmp_path / "chunked.zarr"
    info = replace(
        weights_info(), weights=(WeightSpec("EE", "stdp", "mV", max_snapshots=1, interval_ms=None),)
    )
    recorder = ZarrRecorder(store, LocalCommunicator(), weight_chunk=64)
    recorder.open(info)
    recorder.write_weight_ids(0, 0, n, ids)
    recorder.write_weights(0, 0, 3.0, values)
    recorder.close("complete", build_s=0.0)
    chunks = [(lo, min(lo + 64, n)) for lo in range(0, n, 64)]
    assert asked == chunks + chunks
    weights = open_store(store).weights("EE")
    np.testing.assert_array_equal(weights.values, [np.arange(n, dtype=np.float32)])
    np.testing.assert_array_equal(weights["target"].values, np.arange(n) // 10)


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
    ("sources", "targets", "message"),
    [
        (i64(0), TARGETS, r"gave sources of int64\[1\], not 5 integers"),
        (SOURCES.astype(np.float64), TARGETS, r"gave sources of float64\[5\], not 5 integers"),
        (i64(3, -1, 2, 2, 1), TARGETS, "sources must be node ids >= 0"),
        (SOURCES, i64(0, 1, 1, 1, -2), "targets must be node ids >= 0"),
        (i64(3, 0, 2, 1, 1), TARGETS, r"ordered by target, then source; column 3 \(target 1, "),
        (SOURCES, i64(0, 1, 1, 0, 2), r"ordered by target, then source; column 3 \(target 0, "),
    ],
)
def test_bad_synapse_ids_fail_and_leave_no_synapses(
    tmp_path: Path, sources: np.ndarray, targets: np.ndarray, message: str
) -> None:
    store = tmp_path / "ids.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(weights_info())
    with pytest.raises(RecordingError, match=f"failed writing the synapse ids.*{message}"):
        recorder.write_weight_ids(0, 0, 5, lambda lo, hi: (sources[lo:hi], targets[lo:hi]))
    recorder.close("failed", build_s=0.0)
    assert zarr.open_group(str(store), mode="r")["weights/EE/source"].shape == (0,)


def test_misused_weight_calls_are_refused(tmp_path: Path) -> None:
    recorder = ZarrRecorder(tmp_path / "misuse.zarr", LocalCommunicator())
    recorder.open(weights_info())
    with pytest.raises(RecordingError, match="weight recording 2 does not exist \\(2 recorded\\)"):
        recorder.write_weight_ids(2, 0, 5, ids_of)
    with pytest.raises(RecordingError, match="write_weight_ids must come first"):
        recorder.write_weights(0, 0, 0.0, values_of(0))
    recorder.write_weight_ids(0, 0, 5, ids_of)
    with pytest.raises(RecordingError, match="already called"):
        recorder.write_weight_ids(0, 0, 5, ids_of)
    with pytest.raises(RecordingError, match="snapshot 1 is out of order; the next one is 0"):
        recorder.write_weights(0, 1, 0.0, values_of(0))
    with pytest.raises(RecordingError, match="snapshot 0 has the time nan ms"):
        recorder.write_weights(0, 0, float("nan"), values_of(0))
    with pytest.raises(RecordingError, match=r"values\(0, 5\) gave float64\[5\], not float32\[5\]"):
        recorder.write_weights(0, 0, 0.0, lambda lo, hi: np.zeros(hi - lo))
    with pytest.raises(RecordingError, match=r"values\(0, 5\) gave float32\[4\]"):
        recorder.write_weights(0, 0, 0.0, lambda lo, hi: f32(1, 2, 3, 4))
    recorder.write_weights(0, 0, 0.0, values_of(0))
    with pytest.raises(RecordingError, match=r"snapshot 1 at 0\.0 ms is not later than snapshot 0"):
        recorder.write_weights(0, 1, 0.0, values_of(1))
    for k in (1, 2, 3):
        recorder.write_weights(0, k, float(k), values_of(k))
    with pytest.raises(RecordingError, match="snapshot 4 is beyond the 4 snapshots"):
        recorder.write_weights(0, 4, 4.0, values_of(0))
    recorder.close("complete", build_s=0.0)
    # The refused calls changed nothing.
    weights = open_store(tmp_path / "misuse.zarr").weights("EE")
    np.testing.assert_array_equal(weights.values, [snapshot(k) for k in range(4)])


@pytest.mark.parametrize(
    ("first", "count", "message"),
    [
        (2, 5, r"the ranks gave 5 synapses, so their columns must be 0 \.\. 4, but rank 0 gave "
         r"columns 2 \.\. 6"),
        (-1, 5, r"but rank 0 gave columns -1 \.\. 3"),
    ],
)  # fmt: skip
def test_synapse_columns_that_do_not_tile_are_refused(
    tmp_path: Path, first: int, count: int, message: str
) -> None:
    store = tmp_path / "gap.zarr"
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(weights_info())
    with pytest.raises(RecordingError, match=message):
        recorder.write_weight_ids(0, first, count, ids_of)
    recorder.close("failed", build_s=0.0)
    assert open_store(store).status == "failed"
    assert "weights" not in zarr.open_group(str(store), mode="r")
