"""Write one run's recording into a Zarr store from every rank, one writer per chunk (RECORDING.md).

Besides spikes, a store holds state reports: dense arrays ``data[sample, column]`` (a column per
recorded neuron) with a ``time`` coordinate, to which each rank adds rows for its own columns.

A flush is collective and runs in five phases:

1. Every rank already holds the global spikes (``add_spikes`` receives the same arrays on every
   rank); one ``allgather`` makes the ranks agree on how many rows each report has.
2. Rows travel to the owner of their chunk (one ``gather`` per owning rank).
3. Each rank writes the chunks it owns. Stream ``k`` counts spike populations first, then
   reports, then weights, in ``RunInfo`` order. Spike chunk ``c`` belongs to rank
   ``(c + k) % n_ranks``; chunk ``(r, c)`` of a dense array with ``n_c`` column chunks to
   rank ``(r * n_c + c + k) % n_ranks``; chunk ``t`` of its ``time`` to ``(t + k) % n_ranks``
   (every rank knows every time, so times travel nowhere). Nobody else ever touches a chunk,
   and a later flush that extends a partial chunk rewrites it whole, from memory, through the
   same owner. The writes go *beyond* the published array shape through handles that carry
   the new shape in memory only.
4. An allreduce (the barrier; it also carries "my writes failed"), then rank 0 alone publishes
   the new array shapes and ``simulated_ms`` in the root attributes.
5. A second allreduce, so that when ``flush`` returns on any rank the data is readable.

Between flushes, spikes are written behind: as soon as a population's buffer holds a complete
chunk, its owner writes it (beyond the published shape, as in phase 3) and every rank drops it, so
a rank holds at most one partial chunk per population however long the flush interval. This needs
no communication, because every rank has the same spikes; a failed write is reported by the next
flush, collectively.

Weight recordings (``data[snapshot, synapse]``, ``time``, ``source``, ``target``) are not
buffered: a weight snapshot can be as large as the network, so each one goes to the chunks'
owners when it is taken, in one collective call, a column chunk at a time: every rank computes
its part of the chunk (a function of a column range that the engine provides), the chunk's
owner gathers the parts and writes the chunk if its rows are complete (a chunk that later
snapshots still fill stays with its owner until then, and is written at each flush). No rank
ever holds more than a chunk of weights, whatever the number of synapses and ranks; snapshots
are published by the flush.
The store is opened before the network exists, so a weight recording's
arrays are created (by rank 0, before a barrier) when the ranks give their synapse ranges and
ids (``write_weight_ids``), and ``data`` keeps zero columns until ``source`` and ``target``
are written and published with it, so the synapse dimension always agrees across the three.

The presentations of data-driven stimuli (``stimuli/<name>``) are a pure function of the
circuit: rank 0 writes them whole when it creates the store.

Publishing shapes after the chunks exist (rather than resizing first) means a reader that looks
mid-flush sees the previous, complete state and never a region of fill values; each chunk file
is replaced atomically, so a rewritten partial chunk is never read torn.

The files are written by :mod:`brainsim.recording.zarr_local`, byte for byte what zarr-python
writes for the same calls, without importing zarr-python (0.14-0.25 s of every rank's start);
readers use zarr-python.

Spike times are stored as ``step * dt_ms`` evaluated in float64 (one rounding of the exact
product), so equal steps give bit-identical times whatever the rank count.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, cast

import numpy as np
import numpy.typing as npt

from brainsim.errors import RecordingError, RecordingExistsError, RecordingWriteError
from brainsim.recording import zarr_local
from brainsim.recording.base import (
    Collectives,
    FinalStatus,
    IdsOf,
    RankResources,
    RecorderPosition,
    ReportSpec,
    RunInfo,
    StimulusSpec,
    ValuesOf,
    WeightSpec,
)
from brainsim.recording.layout import (
    DEFAULT_REPORT_CHUNK_BYTES,
    DEFAULT_REPORT_COMPRESSION,
    DEFAULT_SPIKE_CHUNK,
    DEFAULT_SPIKE_COMPRESSION,
    DEFAULT_WEIGHT_CHUNK,
    FORMAT,
    ROOT_KEY,
    compressors,
    report_chunks,
    report_path,
    spikes_path,
    stimulus_path,
    weight_chunks,
    weights_path,
)
from brainsim.recording.paths import check_writable

__all__ = ["ZarrRecorder", "check_writable", "mark_store_failed", "settle_store"]

_log = logging.getLogger(__name__)

_FINAL_STATUSES: tuple[FinalStatus, ...] = ("complete", "failed", "cancelled", "checkpointed")

_PRESENTATION_CHUNK: Final = 1 << 17
"""Presentations per chunk of a stimulus' ``sample_onsets_ms``/``sample_index`` (1 MiB)."""


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _jsonable(obj: Any) -> Any:
    """``obj`` in plain JSON types: mappings to dicts, sequences to lists, numpy to Python."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


_BATCH_BYTES: Final = 8 << 20
"""Bound on the chunk values a flush holds for one batch of concurrent writes (4 spike chunks
of both arrays; larger batches wrote no faster on local disk and raised the peak memory of a
flush with many populations)."""


class _Writes:
    """The whole-chunk writes of a flush, performed concurrently in batches of at most
    :data:`_BATCH_BYTES`."""

    def __init__(self) -> None:
        self._pending: list[tuple[zarr_local.Array, tuple[int, ...], npt.NDArray[Any]]] = []
        self._bytes = 0

    def add(
        self, array: zarr_local.Array, selection: tuple[slice, ...], values: npt.NDArray[Any]
    ) -> None:
        self._pending += array.chunk_writes(selection, values)
        self._bytes += values.nbytes
        if self._bytes >= _BATCH_BYTES:
            self.run()

    def run(self) -> None:
        """Write everything added so far."""
        pending, self._pending, self._bytes = self._pending, [], 0
        if pending:
            zarr_local.write_all(pending)


def _rewrite_root(
    path: str | os.PathLike[str],
    change: Callable[[Mapping[str, Any]], dict[str, Any] | None],
    what: str,
) -> bool:
    """Replace the root document of the store at ``path`` by ``change(document)`` (``None``:
    leave it). Not collective; never raises (a store that cannot be changed is logged, as
    ``what``); returns whether it changed the store."""
    try:
        store = Path(path)
        if not (store / "zarr.json").is_file():
            return False
        root = zarr_local.open_group(store)
        doc = root.attrs.get(ROOT_KEY)
        if not isinstance(doc, Mapping):
            return False
        new = change(doc)
        if new is None:
            return False
        root.attrs[ROOT_KEY] = new
    except Exception:
        _log.exception("could not %s in %s", what, path)
        return False
    return True


def _ended(doc: Mapping[str, Any], end_time: str | None) -> dict[str, Any]:
    """The provenance of ``doc`` with the run's ``end_time`` (else now)."""
    provenance = dict(cast(Mapping[str, Any], doc.get("provenance") or {}))
    provenance["end_time"] = end_time or _utc_now()
    return provenance


def mark_store_failed(path: str | os.PathLike[str], reason: str) -> bool:
    """Set status ``failed`` and ``reason`` in the store at ``path`` if it says ``running``.

    Not collective and safe on an error path: it never raises (a store that cannot be marked
    is logged) and returns whether it changed the store. Launchers use it when a run died
    without closing its store.
    """

    def fail(doc: Mapping[str, Any]) -> dict[str, Any] | None:
        if doc.get("status") != "running":
            return None
        return {**doc, "status": "failed", "reason": reason, "provenance": _ended(doc, None)}

    return _rewrite_root(path, fail, "mark the recording as failed")


def settle_store(
    path: str | os.PathLike[str],
    status: Literal["failed", "cancelled"],
    reason: str,
    *,
    end_time: str | None = None,
) -> bool:
    """Make the store at ``path`` say that its run ended ``status`` for ``reason``: what a
    launcher found out about a run after its processes were gone (the job service calls it
    for every failed or cancelled job). Not collective; never raises; returns whether it
    changed the store.

    * ``running`` (the run died without closing its store): ``status``, ``reason`` and the
      provenance's ``end_time`` (``end_time``, UTC ISO 8601, else now);
    * another final status (``cancelled`` by the SIGTERM of a time limit that the launcher
      counts as a failure; ``complete`` or ``failed`` under a job that ended otherwise):
      ``status`` and ``reason``, followed by the run's own reason if it had one;
    * ``status`` already, without a reason: ``reason``;
    * ``status`` with a reason of its own: unchanged (the run's account is kept);
    * ``checkpointed``: unchanged (the run stopped at a checkpoint and can be resumed).

    Everything else (the data, ``simulated_ms``, the rest of the provenance) stays as it is.
    """

    def settle(doc: Mapping[str, Any]) -> dict[str, Any] | None:
        recorded, own_reason = doc.get("status"), doc.get("reason")
        if (recorded == status and own_reason) or recorded == "checkpointed":
            return None
        new: dict[str, Any] = {**doc, "status": status, "reason": reason}
        if recorded not in (status, "running") and own_reason:
            new["reason"] = f"{reason}; the run had recorded {recorded}: {own_reason}"
        if recorded == "running":
            new["provenance"] = _ended(doc, end_time)
        return new

    return _rewrite_root(path, settle, "record the end of the run")


def _grown(values: npt.NDArray[np.int64], capacity: int) -> npt.NDArray[np.int64]:
    out = np.empty(capacity, dtype=np.int64)
    out[: values.size] = values
    return out


class _SpikeBuffer:
    """Growable (step, node id) columns: the unpublished tail of one population's spikes."""

    __slots__ = ("ids", "size", "steps")

    def __init__(self) -> None:
        self.steps = np.empty(4096, dtype=np.int64)
        self.ids = np.empty(4096, dtype=np.int64)
        self.size = 0

    def append(self, steps: npt.NDArray[np.int64], ids: npt.NDArray[np.int64]) -> None:
        end = self.size + steps.size
        if end > self.steps.size:
            capacity = max(end, 2 * self.steps.size)
            self.steps = _grown(self.steps[: self.size], capacity)
            self.ids = _grown(self.ids[: self.size], capacity)
        self.steps[self.size : end] = steps
        self.ids[self.size : end] = ids
        self.size = end

    def drop_front(self, count: int) -> None:
        keep = self.size - count
        self.steps[:keep] = self.steps[count : self.size]
        self.ids[:keep] = self.ids[count : self.size]
        self.size = keep


@dataclass(slots=True)
class _SpikeStream:
    """Writer state of one population's spikes (mutable, private to the recorder)."""

    population: str
    ordinal: int
    population_size: int
    timestamps: zarr_local.Array
    node_ids: zarr_local.Array
    chunk: int
    buffer: _SpikeBuffer = field(default_factory=_SpikeBuffer)
    base: int = 0
    """Position of the buffer's first spike in the stream (a multiple of ``chunk``, at most
    ``published // chunk * chunk`` below ``published`` or past it after a write-behind)."""
    published: int = 0
    """Spikes in the published shape."""
    checked: int = 0
    """Buffer entries already checked for order and range."""
    last_step: int = -1
    last_id: int = -1

    def drop_complete_chunks(self) -> None:
        """Drop the buffer's complete chunks (all checked and written); ``base`` follows."""
        complete = self.buffer.size // self.chunk * self.chunk
        self.buffer.drop_front(complete)
        self.base += complete
        self.checked = self.buffer.size


class _Chunked:
    """Chunk geometry and ownership of a dense ``data[row, column]`` array: a state report's
    or a weight recording's (the same rule places both, see the module docstring)."""

    __slots__ = ()
    ordinal: int
    n_columns: int

    def data_array(self) -> zarr_local.Array:
        raise NotImplementedError

    @property
    def chunk_shape(self) -> tuple[int, int]:
        rows, cols = self.data_array().chunks
        return int(rows), int(cols)

    @property
    def n_column_chunks(self) -> int:
        return -(-self.n_columns // self.chunk_shape[1])

    def owner(self, row_chunk: int, column_chunk: int, n_ranks: int) -> int:
        """The rank that writes data chunk ``(row_chunk, column_chunk)`` (and, of a weight
        recording, for row chunk 0, chunk ``column_chunk`` of ``source`` and ``target``)."""
        return (row_chunk * self.n_column_chunks + column_chunk + self.ordinal) % n_ranks


@dataclass(slots=True)
class _DenseStream(_Chunked):
    """Writer state of one state report: a dense float32 array ``data[sample, column]`` (a
    column per recorded neuron) and its ``time``.

    Every rank keeps the rows it added since the last flush, for its own columns; the owner of
    a chunk in the last row of chunks keeps that chunk's block while the row is partial.
    """

    name: str
    """The group path, for messages (``report/E/v``)."""
    ordinal: int
    data: zarr_local.Array
    time: zarr_local.Array
    max_rows: int
    n_columns: int
    """The columns of ``data``."""
    stamps: Callable[[int, int], npt.NDArray[np.float64]]
    """The times (ms) of rows ``[lo, hi)``, the same on every rank."""
    published_columns: int
    """Columns in the published shape of ``data``."""
    positions: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    """This rank's columns, strictly ascending: column ``j`` of ``rows`` is ``positions[j]``."""
    rows: npt.NDArray[np.float32] = field(default_factory=lambda: np.empty((0, 0), np.float32))
    """Unflushed rows: row ``i`` is row ``flushed + i``; NaN where nothing was added."""
    flushed: int = 0
    end: int = 0
    """One past the highest row this rank added (``flushed`` when none)."""
    partial: dict[int, npt.NDArray[np.float32]] = field(default_factory=dict)
    """On an owner: column chunk -> its block (chunk rows x chunk columns) in the last row of
    chunks, while that row is partial."""

    def arrays(self) -> tuple[zarr_local.Array, zarr_local.Array]:
        """``data`` and ``time``."""
        return self.data, self.time

    def data_array(self) -> zarr_local.Array:
        return self.data

    def column_bounds(self) -> npt.NDArray[np.intp]:
        """``positions[bounds[c]:bounds[c + 1]]`` are this rank's columns in column chunk
        ``c``."""
        edges = np.arange(self.n_column_chunks + 1, dtype=np.int64) * self.chunk_shape[1]
        return np.searchsorted(self.positions, edges)


@dataclass(slots=True)
class _WeightStream(_Chunked):
    """Writer state of one projection's weights. Snapshots go to the chunks' owners as they are
    taken (:meth:`ZarrRecorder.write_weights`), so nothing is buffered but the blocks this rank
    owns in a row of chunks that later snapshots still fill (projections narrower than a
    chunk)."""

    spec: WeightSpec
    name: str
    """The group path, for messages (``weights/EE``)."""
    ordinal: int
    times: npt.NDArray[np.float64]
    """Snapshot times (ms); every rank has every one, since every rank writes every snapshot."""
    first: int = 0
    count: int = 0
    """This rank's columns: ``first .. first + count - 1``."""
    n_columns: int = 0
    snapshots: int = 0
    """Snapshots taken."""
    published: int = 0
    """Snapshots in the published shape."""
    data: zarr_local.Array | None = None
    time: zarr_local.Array | None = None
    source: zarr_local.Array | None = None
    target: zarr_local.Array | None = None
    """``None`` until :meth:`ZarrRecorder.write_weight_ids` created them."""
    partial: dict[int, npt.NDArray[np.float32]] = field(default_factory=dict)
    """On an owner: column chunk -> its block in the current row of chunks, while later
    snapshots will still add rows to it."""
    resumed: bool = False
    """Reopened from a checkpoint: the ids are written, ``write_weight_ids`` takes this rank's
    columns only."""

    def arrays(
        self,
    ) -> tuple[zarr_local.Array, zarr_local.Array, zarr_local.Array, zarr_local.Array]:
        """``data``, ``time``, ``source`` and ``target``."""
        if self.data is None or self.time is None or self.source is None or self.target is None:
            raise RecordingError(f"{self.name}: write_weight_ids must come first")
        return self.data, self.time, self.source, self.target

    def data_array(self) -> zarr_local.Array:
        return self.arrays()[0]

    def padded_shape(self, n_snapshots: int) -> tuple[int, int]:
        """The shape of ``data`` in whole chunks, with ``n_snapshots`` snapshots."""
        n_rows, width = self.chunk_shape
        return _round_up(n_snapshots, n_rows), _round_up(self.n_columns, width)


class ZarrRecorder:
    """The :class:`~brainsim.recording.base.Recorder` that writes RECORDING.md's Zarr layout.

    ``path`` is the store directory; every rank passes the same path and its ``comm``.
    ``flush_interval_ms`` is the promised bound on simulated time between ``flush`` calls (the
    engine decides when to flush; every call writes). ``spike_chunk``
    (spikes per chunk), ``report_chunk_bytes`` (target uncompressed bytes per report chunk),
    ``weight_chunk`` (synapses per chunk of a weight snapshot), ``spike_compression`` and
    ``report_compression`` (each one of ``layout.COMPRESSIONS``; the latter also compresses
    weights) change only the storage, never the content; the defaults are the measured choices.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        comm: Collectives,
        *,
        overwrite: bool = False,
        flush_interval_ms: float = 100.0,
        spike_chunk: int = DEFAULT_SPIKE_CHUNK,
        report_chunk_bytes: int = DEFAULT_REPORT_CHUNK_BYTES,
        weight_chunk: int = DEFAULT_WEIGHT_CHUNK,
        spike_compression: str = DEFAULT_SPIKE_COMPRESSION,
        report_compression: str = DEFAULT_REPORT_COMPRESSION,
    ) -> None:
        if not flush_interval_ms > 0:
            raise ValueError(f"flush_interval_ms must be > 0, got {flush_interval_ms}")
        if spike_chunk < 1 or report_chunk_bytes < 4 or weight_chunk < 1:
            raise ValueError("spike_chunk, report_chunk_bytes and weight_chunk must be positive")
        compressors(spike_compression, 8)
        compressors(report_compression, 4)
        self._path = Path(path)
        self._comm = comm
        self._overwrite = overwrite
        self._flush_interval_ms = float(flush_interval_ms)
        self._spike_chunk = int(spike_chunk)
        self._report_chunk_bytes = int(report_chunk_bytes)
        self._weight_chunk = int(weight_chunk)
        self._spike_compression = spike_compression
        self._report_compression = report_compression
        self._info: RunInfo | None = None
        self._spikes: dict[str, _SpikeStream] = {}
        self._reports: list[_DenseStream] = []
        self._weights: list[_WeightStream] = []
        self._simulated_ms = 0.0
        self._opened_at = 0.0
        self._closed = False
        self._write_error: Exception | None = None
        """A failed write-behind, raised by the next flush on every rank."""

    @property
    def path(self) -> Path:
        """The store directory."""
        return self._path

    @property
    def flush_interval_ms(self) -> float:
        """Simulated time the engine may run between two ``flush`` calls."""
        return self._flush_interval_ms

    # ------------------------------------------------------------------ open

    def open(self, info: RunInfo) -> None:
        """Create the store on rank 0 (refusing an existing path), then open it everywhere."""
        if self._info is not None:
            raise RecordingError("this recorder is already open")
        _check_info(info)
        rank = self._comm.rank
        failure: tuple[bool, str] | None = None
        if rank == 0:
            try:
                self._create(info)
            except RecordingExistsError as exc:
                failure = (True, str(exc))
            except Exception as exc:
                failure = (False, f"could not create the recording at {self._path}: {exc}")
        failure = self._comm.bcast(failure, root=0)
        if failure is not None:
            exists, message = failure
            raise (RecordingExistsError if exists else RecordingError)(message)
        self._attach(info)

    def _attach(self, info: RunInfo) -> None:
        """Every rank: the writer state of an open store's arrays, nothing written yet."""
        root = zarr_local.open_group(self._path)
        self._info = info
        self._opened_at = time.perf_counter()
        for ordinal, population in enumerate(info.spike_populations):
            group = spikes_path(population)
            self._spikes[population] = _SpikeStream(
                population=population,
                ordinal=ordinal,
                population_size=info.populations[population].size,
                timestamps=_array(root, f"{group}/timestamps"),
                node_ids=_array(root, f"{group}/node_ids"),
                chunk=self._spike_chunk,
            )
        n_spikes = len(info.spike_populations)
        for index, spec in enumerate(info.reports):
            group = report_path(spec.population, spec.variable)
            self._reports.append(
                _DenseStream(
                    name=group,
                    ordinal=n_spikes + index,
                    data=_array(root, f"{group}/data"),
                    time=_array(root, f"{group}/time"),
                    max_rows=spec.n_samples,
                    n_columns=int(spec.node_ids.size),
                    stamps=functools.partial(_sample_times, spec),
                    published_columns=int(spec.node_ids.size),
                )
            )
        for index, weights in enumerate(info.weights):
            self._weights.append(
                _WeightStream(
                    spec=weights,
                    name=weights_path(weights.projection),  # created by write_weight_ids
                    ordinal=n_spikes + len(info.reports) + index,
                    times=np.full(weights.max_snapshots, np.nan, dtype=np.float64),
                )
            )

    def position(self) -> RecorderPosition:
        """What the last flush published (a checkpoint right after a flush keeps it)."""
        return RecorderPosition(
            {name: stream.published for name, stream in self._spikes.items()},
            tuple(stream.flushed for stream in self._reports),
            tuple(stream.published for stream in self._weights),
        )

    def reopen(
        self,
        info: RunInfo,
        position: RecorderPosition,
        simulated_ms: float,
        resumed: Mapping[str, Any],
    ) -> None:
        """Open the existing store of ``info``'s run to continue it from a checkpoint whose
        recorder position is ``position``, taken at ``simulated_ms``; collective.

        Rank 0 drops what was recorded after the position (a run that went on past its last
        checkpoint before it stopped), marks the store running again and appends ``resumed``
        to the provenance's ``resumed`` list. Every rank then takes up the writer state a run
        has right after a flush at that position, on this run's ranks: the tail of a spike
        chunk and the blocks of partial chunk rows that this rank now owns are read back, so
        later writes rewrite those chunks whole, as a run that never stopped does.
        """
        if self._info is not None:
            raise RecordingError("this recorder is already open")
        _check_info(info)
        error: BaseException | None = None
        if self._comm.rank == 0:
            try:
                self._truncate(info, position, simulated_ms, resumed)
            except Exception as exc:
                error = exc
        self._raise_if_any_failed(error, "reopening the recording")
        self._attach(info)
        self._simulated_ms = float(simulated_ms)
        dt_ms = info.dt_ms
        size, rank = self._comm.size, self._comm.rank
        for name, stream in self._spikes.items():
            n = int(position.spikes.get(name, 0))
            stream.base = n // stream.chunk * stream.chunk
            stream.published = n
            if n > stream.base:
                times = np.asarray(stream.timestamps[stream.base : n], dtype=np.float64)
                ids = np.asarray(stream.node_ids[stream.base : n], dtype=np.int64)
                stream.buffer.append(np.rint(times / dt_ms).astype(np.int64), ids)
            stream.checked = stream.buffer.size
            if n:
                last_time = np.asarray(stream.timestamps[n - 1 : n], dtype=np.float64)
                last_id = np.asarray(stream.node_ids[n - 1 : n], dtype=np.int64)
                stream.last_step = int(np.rint(last_time[0] / dt_ms))
                stream.last_id = int(last_id[0])
        for report, rows in zip(self._reports, position.reports, strict=True):
            report.flushed = report.end = int(rows)
            report.partial = _owned_partial(report, int(rows), size, rank)
        root = zarr_local.open_group(self._path)
        for weights, snapshots in zip(self._weights, position.weights, strict=True):
            if weights_path(weights.spec.projection) not in root:
                continue  # write_weight_ids creates it
            group = weights.name
            weights.data = _array(root, f"{group}/data")
            weights.time = _array(root, f"{group}/time")
            weights.source = _array(root, f"{group}/source")
            weights.target = _array(root, f"{group}/target")
            weights.n_columns = int(weights.source.shape[0])
            weights.snapshots = weights.published = int(snapshots)
            weights.times[:snapshots] = np.asarray(weights.time[:snapshots], dtype=np.float64)
            weights.partial = _owned_partial(weights, int(snapshots), size, rank)
            weights.resumed = True

    def _truncate(
        self,
        info: RunInfo,
        position: RecorderPosition,
        simulated_ms: float,
        resumed: Mapping[str, Any],
    ) -> None:
        """Rank 0 of :meth:`reopen`: the arrays cut to ``position``, the root running again."""
        root = zarr_local.open_group(self._path)
        doc: dict[str, Any] = dict(cast(Mapping[str, Any], root.attrs.get(ROOT_KEY) or {}))
        recorded = resumed.get("circuit_sha256", info.circuit_sha256)
        if doc.get("circuit_sha256") != recorded:
            raise RecordingError(
                f"{self._path} records another circuit (sha256 {doc.get('circuit_sha256')}), "
                f"not the one being resumed ({recorded})"
            )
        if float(doc.get("duration_ms", info.duration_ms)) != info.duration_ms:
            # Extended to a later end: the circuit, its hash and the presentations change.
            doc.update(
                duration_ms=info.duration_ms,
                circuit=_jsonable(info.circuit_document),
                circuit_sha256=info.circuit_sha256,
            )
            for stimulus in info.stimuli:
                del root[stimulus_path(stimulus.name)]
                _create_presentations(root, stimulus, self._spike_compression)
        resizes: list[tuple[zarr_local.Array, tuple[int, ...]]] = []
        for population in info.spike_populations:
            n = int(position.spikes.get(population, 0))
            group = spikes_path(population)
            resizes += [(_array(root, f"{group}/timestamps"), (n,))]
            resizes += [(_array(root, f"{group}/node_ids"), (n,))]
        for spec, rows in zip(info.reports, position.reports, strict=True):
            group = report_path(spec.population, spec.variable)
            data = _array(root, f"{group}/data")
            resizes += [
                (data, (int(rows), int(data.shape[1]))),
                (_array(root, f"{group}/time"), (int(rows),)),
            ]
        for recorded, snapshots in zip(info.weights, position.weights, strict=True):
            group = weights_path(recorded.projection)
            if group not in root:
                continue
            data = _array(root, f"{group}/data")
            resizes += [(data, (int(snapshots), int(data.shape[1])))]
            resizes += [(_array(root, f"{group}/time"), (int(snapshots),))]
        for array, shape in resizes:
            array.resize(shape)
        provenance: dict[str, Any] = dict(doc.get("provenance") or {})
        provenance["resumed"] = [*(provenance.get("resumed") or []), _jsonable(dict(resumed))]
        provenance["n_ranks"] = self._comm.size
        provenance.update({"end_time": None, "wall_s": None, "sim_s": None})
        doc.update(
            status="running", reason=None, simulated_ms=float(simulated_ms), provenance=provenance
        )
        root.attrs[ROOT_KEY] = doc

    def _create(self, info: RunInfo) -> None:
        """Rank 0: check the path, build groups and arrays, then write the root metadata last.

        The root attributes come last so that a crash half-way leaves a store the reader
        reports as half written rather than one that looks valid.
        """
        check_writable(self._path, overwrite=self._overwrite)
        if self._path.is_dir() and any(self._path.iterdir()):
            shutil.rmtree(self._path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        root = zarr_local.create_group(self._path)
        for population in info.spike_populations:
            group = root.create_group(
                spikes_path(population),
                attributes={
                    "sorting": "by_time",
                    "units": "ms",
                    "population_size": info.populations[population].size,
                },
            )
            for name, dtype, fill, attributes in (
                ("timestamps", np.float64, np.nan, {"units": "ms"}),
                ("node_ids", np.int64, -1, {}),
            ):
                group.create_array(
                    name,
                    shape=(0,),
                    chunks=(self._spike_chunk,),
                    dtype=dtype,
                    fill_value=fill,
                    compressors=compressors(self._spike_compression, 8),
                    dimension_names=["spikes"],
                    attributes=dict(attributes),
                )
        compression = self._report_compression
        for spec in info.reports:
            n_nodes = int(spec.node_ids.size)
            rows, cols = report_chunks(n_nodes, spec.n_samples, self._report_chunk_bytes)
            group = root.create_group(
                report_path(spec.population, spec.variable),
                attributes={
                    "units": spec.units,
                    "interval_ms": spec.interval_ms,
                    "start_ms": spec.start_ms,
                },
            )
            _create_dense_arrays(
                group, (0, n_nodes), (rows, cols), rows, spec.units, "node_ids", compression
            )
            node_ids = _create_ids_array(group, "node_ids", n_nodes, max(1, n_nodes), compression)
            node_ids[:] = np.asarray(spec.node_ids, dtype=np.int64)
        for stimulus in info.stimuli:
            _create_presentations(root, stimulus, self._spike_compression)
        provenance = _jsonable(info.provenance)
        provenance.setdefault("n_ranks", self._comm.size)
        provenance.setdefault("start_time", _utc_now())
        provenance.update({"end_time": None, "wall_s": None, "build_s": None, "sim_s": None})
        root.attrs[ROOT_KEY] = {
            "format": FORMAT,
            "status": "running",
            "reason": None,
            "simulated_ms": 0.0,
            "dt_ms": info.dt_ms,
            "duration_ms": info.duration_ms,
            "seed": info.seed,
            "circuit_sha256": info.circuit_sha256,
            "populations": {
                name: {"size": p.size, "model": p.model, "gid_offset": p.gid_offset}
                for name, p in info.populations.items()
            },
            "provenance": provenance,
            "circuit": _jsonable(info.circuit_document),
        }

    # ------------------------------------------------------------------ adding

    def add_spikes(
        self, population: str, steps: npt.NDArray[np.int64], node_ids: npt.NDArray[np.int64]
    ) -> None:
        """Append one interval's global spikes of ``population`` (sorted by step, then id)."""
        stream = self._spikes.get(population)
        if stream is None:
            raise RecordingError(
                f"population {population!r} is not recorded; recorded: {sorted(self._spikes)}"
            )
        if steps.shape != node_ids.shape or steps.ndim != 1:
            raise RecordingError(
                f"spikes of {population!r}: steps {steps.shape} and node_ids {node_ids.shape} "
                "must be 1-D and of equal length"
            )
        if steps.size:
            stream.buffer.append(steps, node_ids)
            if stream.buffer.size >= stream.chunk:
                self._write_behind(stream)

    def _write_behind(self, spikes: _SpikeStream) -> None:
        """Write the buffer's complete chunks that this rank owns, and drop every complete
        chunk from the buffer (see the module docstring). Not collective."""
        _check_order(spikes)
        complete = spikes.buffer.size // spikes.chunk * spikes.chunk
        if self._write_error is None:
            try:
                writes = _Writes()
                self._add_spike_writes(spikes, spikes.base + complete, writes)
                writes.run()
            except Exception as exc:
                self._write_error = exc
        spikes.drop_complete_chunks()

    def add_state(
        self,
        report: int,
        sample_index: int,
        positions: npt.NDArray[np.int64],
        values: npt.NDArray[np.float32],
    ) -> None:
        """Keep this rank's ``values`` (at ``positions``) of one sample of ``report``."""
        self.add_state_block(report, sample_index, positions, values[np.newaxis, :])

    def add_state_block(
        self,
        report: int,
        first_sample: int,
        positions: npt.NDArray[np.int64],
        values: npt.NDArray[np.float32],
    ) -> None:
        """Keep this rank's ``values[r]`` as sample ``first_sample + r`` of ``report``."""
        if not 0 <= report < len(self._reports):
            raise RecordingError(f"report {report} does not exist ({len(self._reports)} reports)")
        _put_rows(self._reports[report], first_sample, positions, values)

    def write_weight_ids(self, index: int, first: int, count: int, ids: IdsOf) -> None:
        """Create the arrays of ``info.weights[index]`` (rank 0, then a barrier) and write its
        ``source`` and ``target``, each chunk by its owner; collective (see
        :meth:`~brainsim.recording.base.Recorder.write_weight_ids`)."""
        self._require_open()
        stream = self._weight_stream(index)
        if stream.data is not None and not stream.resumed:
            raise RecordingError(f"{stream.name}: write_weight_ids was already called")
        ranges = self._comm.allgather((int(first), int(count)))
        n_columns = _tiled(stream.name, ranges)
        if stream.resumed:
            if n_columns != stream.n_columns:
                raise RecordingError(
                    f"{stream.name}: the resumed run has {n_columns} synapses, the store "
                    f"{stream.n_columns}"
                )
            stream.first, stream.count, stream.resumed = int(first), int(count), False
            return
        error: BaseException | None = None
        if self._comm.rank == 0:
            try:
                root = zarr_local.open_group(self._path)
                self._create_weight_arrays(root, stream.spec, n_columns)
            except Exception as exc:
                error = exc
        self._raise_if_any_failed(error, "creating the weight arrays")
        root = zarr_local.open_group(self._path)
        group = stream.name
        stream.data = _array(root, f"{group}/data")
        stream.time = _array(root, f"{group}/time")
        stream.source = _array(root, f"{group}/source")
        stream.target = _array(root, f"{group}/target")
        stream.first, stream.count, stream.n_columns = int(first), int(count), n_columns
        _, _, source_array, target_array = stream.arrays()
        width = stream.chunk_shape[1]
        padded = (_round_up(n_columns, width),)
        source, target = source_array.with_shape(padded), target_array.with_shape(padded)

        def part(lo: int, hi: int) -> npt.NDArray[np.integer[Any]]:
            sources, targets = ids(lo, hi)
            return np.stack([_node_ids(stream.name, "sources", sources, hi - lo),
                             _node_ids(stream.name, "targets", targets, hi - lo)])  # fmt: skip

        def write(column_chunk: int, parts: list[tuple[int, npt.NDArray[np.integer[Any]]]]) -> None:
            left = column_chunk * width
            both = np.empty((2, width), dtype=np.int64)
            both[:, n_columns - left :] = -1  # the last chunk's padding
            for lo, pair in parts:
                both[:, lo - left : lo - left + pair.shape[1]] = pair
            _check_synapses(
                stream.name, left, both[0, : n_columns - left], both[1, : n_columns - left]
            )
            writes.add(source, (slice(left, left + width),), both[0])
            writes.add(target, (slice(left, left + width),), both[1])

        writes = _Writes()
        error = self._to_owners(stream, 0, part, write, writes)
        self._raise_if_any_failed(error, "writing the synapse ids")
        if self._comm.rank == 0:
            try:
                source_array.resize((n_columns,))
                target_array.resize((n_columns,))
                stream.arrays()[0].resize((0, n_columns))
            except Exception as exc:
                error = exc
        self._raise_if_any_failed(error, "publishing the synapse ids")

    def write_weights(self, index: int, snapshot: int, time_ms: float, values: ValuesOf) -> None:
        """Take snapshot ``snapshot`` of ``info.weights[index]``, taken at ``time_ms``: every
        rank's part of each chunk goes to its owner; collective (see
        :meth:`~brainsim.recording.base.Recorder.write_weights`).

        An owner writes a chunk (whole) as soon as its rows are complete: at once for a
        projection at least a chunk wide (one snapshot a chunk row), so no rank keeps a wide
        snapshot. A chunk that later snapshots still fill (a narrower projection) stays with its
        owner, who writes it at each flush until it is complete. Like state samples, snapshots
        are published by the next ``flush`` (or ``close``).
        """
        self._require_open()
        stream = self._weight_stream(index)
        data_array, _, _, _ = stream.arrays()
        every = self._comm.allgather((int(snapshot), float(time_ms)))
        _check_snapshot(stream, every)
        n_rows, width = stream.chunk_shape
        row_chunk, row = divmod(snapshot, n_rows)
        if row == 0:
            stream.partial = {}
        stream.times[snapshot] = time_ms
        data: list[zarr_local.Array] = []

        def part(lo: int, hi: int) -> npt.NDArray[np.float32]:
            got = np.asarray(values(lo, hi))
            if got.shape != (hi - lo,) or got.dtype != np.float32:
                raise RecordingError(
                    f"{stream.name}: values({lo}, {hi}) gave {got.dtype}{list(got.shape)}, "
                    f"not float32[{hi - lo}]"
                )
            return got

        def write(column_chunk: int, parts: list[tuple[int, npt.NDArray[np.float32]]]) -> None:
            left = column_chunk * width
            block = stream.partial.get(column_chunk)
            if block is None:
                block = np.full((n_rows, width), np.nan, dtype=np.float32)
            for lo, got in parts:
                block[row, lo - left : lo - left + got.size] = got
            if row + 1 < n_rows:
                stream.partial[column_chunk] = block
                return
            stream.partial.pop(column_chunk, None)
            if not data:
                data.append(data_array.with_shape(stream.padded_shape(snapshot + 1)))
            rows = slice(row_chunk * n_rows, (row_chunk + 1) * n_rows)
            writes.add(data[0], (rows, slice(left, left + width)), block)

        writes = _Writes()
        error = self._to_owners(stream, row_chunk, part, write, writes)
        self._raise_if_any_failed(error, f"writing snapshot {snapshot} of {stream.name}")
        stream.snapshots = snapshot + 1

    def _add_weight_writes(self, stream: _WeightStream, writes: _Writes) -> None:
        """Phase 3 for one weight recording: the chunks this rank keeps (rows of a chunk that
        later snapshots will still fill) and its ``time`` chunks, up to the last snapshot."""
        if stream.snapshots == stream.published:
            return
        data_array, time_array, _, _ = stream.arrays()
        n_rows, width = stream.chunk_shape
        if stream.partial:
            data = data_array.with_shape(stream.padded_shape(stream.snapshots))
            first = (stream.snapshots - 1) // n_rows * n_rows
            for column_chunk, block in stream.partial.items():
                left = column_chunk * width
                writes.add(data, (slice(first, first + n_rows), slice(left, left + width)), block)
        per_chunk = int(time_array.chunks[0])
        padded = _round_up(stream.snapshots, per_chunk)
        times = time_array.with_shape((padded,))
        for time_chunk in range(stream.published // per_chunk, padded // per_chunk):
            if (time_chunk + stream.ordinal) % self._comm.size != self._comm.rank:
                continue
            lo = time_chunk * per_chunk
            stamps = np.full(per_chunk, np.nan, dtype=np.float64)
            n = min(per_chunk, stream.snapshots - lo)
            stamps[:n] = stream.times[lo : lo + n]
            writes.add(times, (slice(lo, lo + per_chunk),), stamps)

    def _to_owners(
        self,
        stream: _WeightStream,
        row_chunk: int,
        part: Callable[[int, int], npt.NDArray[Any]],
        write: Callable[[int, list[tuple[int, npt.NDArray[Any]]]], None],
        writes: _Writes,
    ) -> BaseException | None:
        """Send this rank's parts of the column chunks of row chunk ``row_chunk`` to their
        owners, and have ``write`` add the writes of the chunks this rank owns; collective.

        ``part(lo, hi)`` gives this rank's values of local columns ``lo .. hi - 1`` (a
        trailing axis of ``hi - lo``); ``write(chunk, parts)`` gets every rank's parts of a
        chunk as ``(first global column, values)``. One chunk at a time, gathered by its owner
        alone: a rank holds at most one chunk's values, however many synapses and ranks there
        are (measured: four chunks at a time raised the peak memory of a 2-rank Brunel with
        STDP by 16 MB per rank and wrote no faster). Returns this rank's first error (after
        which it sends nothing, but keeps the collectives matched), for the caller's barrier.
        """
        size, rank = self._comm.size, self._comm.rank
        width = stream.chunk_shape[1]
        mine_lo, mine_hi = stream.first, stream.first + stream.count
        error: BaseException | None = None
        for chunk in range(stream.n_column_chunks):
            owner = stream.owner(row_chunk, chunk, size)
            outgoing: list[tuple[int, npt.NDArray[Any]]] = []
            lo, hi = max(chunk * width, mine_lo), min((chunk + 1) * width, mine_hi)
            if error is None and hi > lo:
                try:
                    outgoing.append((lo, part(lo - mine_lo, hi - mine_lo)))
                except Exception as exc:
                    error = exc
                    outgoing = []
            gathered = self._comm.gather(outgoing, root=owner)
            if gathered is not None and owner == rank and error is None:
                try:
                    write(chunk, [piece for pieces in gathered for piece in pieces])
                    writes.run()
                except Exception as exc:
                    error = exc
        return error

    def _weight_stream(self, index: int) -> _WeightStream:
        if not 0 <= index < len(self._weights):
            raise RecordingError(
                f"weight recording {index} does not exist ({len(self._weights)} recorded)"
            )
        return self._weights[index]

    # ------------------------------------------------------------------ flush

    def flush(self, simulated_ms: float) -> None:
        """Write everything added so far and publish it with ``simulated_ms``. Collective."""
        self._require_open()
        self._simulated_ms = max(self._simulated_ms, float(simulated_ms))
        self._flush()

    def _flush(self, finish: Callable[[dict[str, Any]], None] | None = None) -> None:
        """The collective flush; rank 0 applies ``finish`` to the root document along with
        the progress (one metadata write)."""
        for spikes in self._spikes.values():
            _check_order(spikes)
        new_ends = [max(ends) for ends in zip(*self._comm.allgather(
            [stream.end for stream in self._reports]), strict=True)]  # fmt: skip
        new_columns = [stream.n_columns for stream in self._reports]
        rows = self._route(new_ends)
        error: BaseException | None = None
        partials: list[dict[int, npt.NDArray[np.float32]]] = []
        try:
            writes = _Writes()
            for spikes in self._spikes.values():
                self._add_spike_writes(spikes, spikes.base + spikes.buffer.size, writes)
            for index, (stream, new_end) in enumerate(zip(self._reports, new_ends, strict=True)):
                partials.append(self._write_dense(index, stream, new_end, rows, writes))
            for weights in self._weights:
                self._add_weight_writes(weights, writes)
            writes.run()
        except Exception as exc:
            error = exc
        if self._write_error is not None:
            error, self._write_error = self._write_error, None
        self._raise_if_any_failed(error, "writing its chunks")
        if self._comm.rank == 0:
            try:
                self._publish(new_ends, new_columns, finish)
            except Exception as exc:
                error = exc
        self._raise_if_any_failed(error, "publishing the array shapes")
        for spikes in self._spikes.values():
            spikes.published = spikes.base + spikes.buffer.size
            spikes.drop_complete_chunks()
        for stream, new_end, columns, partial in zip(
            self._reports, new_ends, new_columns, partials, strict=True
        ):
            stream.rows[: stream.end - stream.flushed] = np.nan
            stream.flushed = stream.end = new_end
            stream.published_columns = columns
            stream.partial = partial
        for weights in self._weights:
            weights.published = weights.snapshots

    def _create_weight_arrays(
        self, root: zarr_local.Group, spec: WeightSpec, n_synapses: int
    ) -> None:
        """Rank 0: the group of one weight recording and its arrays, all empty.

        ``data`` keeps zero columns until ``source`` and ``target`` are written and published
        with it, so that the three always agree on the synapse dimension.
        """
        chunks, time_chunk = weight_chunks(n_synapses, spec.max_snapshots, self._weight_chunk)
        group = root.create_group(
            weights_path(spec.projection),
            attributes={"units": spec.units, "interval_ms": spec.interval_ms, "model": spec.model},
        )
        compression = self._report_compression
        _create_dense_arrays(
            group,
            (0, 0),
            chunks,
            time_chunk,
            spec.units,
            "synapse",
            compression,
            coordinates="source target",
        )
        for name in ("source", "target"):
            _create_ids_array(group, name, 0, chunks[1], compression, dimension="synapse")

    def _route(self, new_ends: list[int]) -> dict[tuple[int, int, int], list[_Rows]]:
        """Phase 2: send this rank's unflushed rows to the owners of their chunks; return
        what this rank received, keyed by (stream, row chunk, column chunk)."""
        size = self._comm.size
        outgoing: dict[int, list[_Rows]] = {}
        for index, (stream, new_end) in enumerate(zip(self._reports, new_ends, strict=True)):
            if new_end == stream.flushed:
                continue
            n_rows, _ = stream.chunk_shape
            bounds = stream.column_bounds()
            for row_chunk in range(stream.flushed // n_rows, -(-new_end // n_rows)):
                first = max(row_chunk * n_rows, stream.flushed)
                last = min((row_chunk + 1) * n_rows, new_end)
                block = stream.rows[first - stream.flushed : last - stream.flushed]
                for column_chunk in range(stream.n_column_chunks):
                    parts = outgoing.setdefault(stream.owner(row_chunk, column_chunk, size), [])
                    lo, hi = bounds[column_chunk], bounds[column_chunk + 1]
                    if hi > lo and block.shape[0]:
                        parts.append(
                            _Rows(
                                index,
                                row_chunk,
                                column_chunk,
                                first,
                                stream.positions[lo:hi],
                                block[:, lo:hi],
                            )
                        )
        rows: dict[tuple[int, int, int], list[_Rows]] = {}
        for owner in sorted(outgoing):
            gathered = self._comm.gather(outgoing[owner], root=owner)
            if gathered is not None and owner == self._comm.rank:
                for rank_parts in gathered:
                    for part in rank_parts:
                        key = (part.stream, part.row_chunk, part.column_chunk)
                        rows.setdefault(key, []).append(part)
        return rows

    def _add_spike_writes(self, spikes: _SpikeStream, total: int, writes: _Writes) -> None:
        """Phase 3 for one population: add the writes of the chunks this rank owns among the
        buffered ones, up to stream position ``total``.

        Every chunk is written whole (the tail padded with the fill values), so no chunk is
        read back to merge a partial write.
        """
        assert self._info is not None
        size = spikes.chunk
        start = spikes.base
        if total <= start or total <= spikes.published:
            return
        padded = (_round_up(total, size),)
        timestamps = spikes.timestamps.with_shape(padded)
        node_ids = spikes.node_ids.with_shape(padded)
        for chunk in range(start // size, padded[0] // size):
            if (chunk + spikes.ordinal) % self._comm.size != self._comm.rank:
                continue
            lo = chunk * size
            n = min(size, total - lo)
            times = np.full(size, np.nan, dtype=np.float64)
            ids = np.full(size, -1, dtype=np.int64)
            times[:n] = spikes.buffer.steps[lo - start : lo - start + n] * self._info.dt_ms
            ids[:n] = spikes.buffer.ids[lo - start : lo - start + n]
            writes.add(timestamps, (slice(lo, lo + size),), times)
            writes.add(node_ids, (slice(lo, lo + size),), ids)

    def _write_dense(
        self,
        index: int,
        stream: _DenseStream,
        new_end: int,
        received: dict[tuple[int, int, int], list[_Rows]],
        writes: _Writes,
    ) -> dict[int, npt.NDArray[np.float32]]:
        """Phase 3 for one dense array: assemble the data chunks this rank owns, and its
        ``time`` chunks; append their writes.

        A data chunk is assembled as a full block (NaN where nothing is known yet) and written
        whole, so it is never read back. Returns the blocks this rank owns in the last row
        of chunks if that row is partial (kept so the next flush can extend and rewrite them
        from memory).
        """
        if new_end == stream.flushed:
            return stream.partial
        data_array, time_array = stream.arrays()
        n_rows, n_cols = stream.chunk_shape
        size, rank = self._comm.size, self._comm.rank
        padded_rows = _round_up(new_end, n_rows)
        data = data_array.with_shape((padded_rows, stream.n_column_chunks * n_cols))
        partial_row = stream.flushed // n_rows
        new_partial: dict[int, npt.NDArray[np.float32]] = {}
        for row_chunk in range(partial_row, padded_rows // n_rows):
            lo = row_chunk * n_rows
            for column_chunk in range(stream.n_column_chunks):
                if stream.owner(row_chunk, column_chunk, size) != rank:
                    continue
                kept = stream.partial.get(column_chunk) if row_chunk == partial_row else None
                if kept is not None:
                    block = kept.copy()
                else:
                    block = np.full((n_rows, n_cols), np.nan, dtype=np.float32)
                left = column_chunk * n_cols
                for part in received.get((index, row_chunk, column_chunk), []):
                    first = part.first - lo
                    block[first : first + part.values.shape[0], part.positions - left] = part.values
                writes.add(data, (slice(lo, lo + n_rows), slice(left, left + n_cols)), block)
                if new_end - lo < n_rows:
                    new_partial[column_chunk] = block
        per_chunk = int(time_array.chunks[0])
        padded_times = _round_up(new_end, per_chunk)
        times = time_array.with_shape((padded_times,))
        for time_chunk in range(stream.flushed // per_chunk, padded_times // per_chunk):
            if (time_chunk + stream.ordinal) % size != rank:
                continue
            lo = time_chunk * per_chunk
            n = min(per_chunk, new_end - lo)
            stamps = np.full(per_chunk, np.nan, dtype=np.float64)
            stamps[:n] = stream.stamps(lo, lo + n)
            writes.add(times, (slice(lo, lo + per_chunk),), stamps)
        return new_partial

    def _publish(
        self,
        new_ends: list[int],
        new_columns: list[int],
        finish: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        """Phase 4, rank 0: grow the published shapes, then record the progress (and
        ``finish``)."""
        resizes: list[tuple[zarr_local.Array, tuple[int, ...]]] = []
        for spikes in self._spikes.values():
            total = spikes.base + spikes.buffer.size
            if total != spikes.published:
                resizes += [(spikes.timestamps, (total,)), (spikes.node_ids, (total,))]
        for stream, new_end, columns in zip(self._reports, new_ends, new_columns, strict=True):
            if (new_end, columns) != (stream.flushed, stream.published_columns):
                data, time = stream.arrays()
                resizes.append((data, (new_end, columns)))
                if new_end != stream.flushed:
                    resizes.append((time, (new_end,)))
        for weights in self._weights:
            if weights.snapshots != weights.published:
                data, time, _, _ = weights.arrays()
                resizes += [(data, (weights.snapshots, weights.n_columns))]
                resizes += [(time, (weights.snapshots,))]
        # Each handle takes its new shape in place, so the streams' handles see it too.
        for array, shape in resizes:
            array.resize(shape)
        simulated_ms = self._simulated_ms

        def progress(doc: dict[str, Any]) -> None:
            doc["simulated_ms"] = max(float(doc.get("simulated_ms", 0.0)), simulated_ms)
            if finish is not None:
                finish(doc)

        self._update_root(progress)

    def _raise_if_any_failed(self, error: BaseException | None, phase: str) -> None:
        """Collective: every rank raises if any rank failed ``phase`` (doubles as a barrier)."""
        if self._comm.any(error is not None):
            if error is not None:
                raise RecordingWriteError(
                    f"rank {self._comm.rank} failed {phase} in {self._path}: {error}"
                ) from error
            raise RecordingWriteError(f"another rank failed {phase} in {self._path}")

    # ------------------------------------------------------------------ close

    def close(
        self,
        status: FinalStatus,
        *,
        build_s: float,
        sim_s: float | None = None,
        n_synapses: int | None = None,
        reason: str | None = None,
        weights_s: float | None = None,
        checkpoint_s: float | None = None,
        resources: RankResources | None = None,
    ) -> None:
        """Final flush, then rank 0 writes the final status and timings. Collective.

        The provenance gets ``wall_s`` (from opening the store to this final write, which it
        includes), ``build_s`` and, when given, ``sim_s``, ``weights_s`` and ``checkpoint_s``.
        ``n_synapses``
        is the number of synapses this rank built; when every rank gives it, the provenance
        gets ``n_synapses_per_rank`` (in rank order) and their sum ``n_synapses``.
        ``resources`` is what this rank's process used; when every rank gives it, the run
        appends its entry to the provenance's ``runs`` list (:func:`_run_entry`), which a
        resumed run continues.

        A ``complete`` run has simulated its whole duration, so ``simulated_ms`` becomes
        ``duration_ms``. If a rank marked the store failed (``mark_failed``) the status stays
        ``failed`` whatever ``status`` says. If the final flush fails the store is marked
        failed with the error and the error is raised after the status is written.
        """
        if status not in _FINAL_STATUSES:
            raise ValueError(f"status must be one of {_FINAL_STATUSES}, got {status!r}")
        if self._info is None or self._closed:
            return
        self._closed = True
        if status == "complete":
            self._simulated_ms = max(self._simulated_ms, self._info.duration_ms)
        # Every rank gathers, whatever it passed, so the collectives stay matched.
        gathered = self._comm.gather((n_synapses, resources))
        per_rank = None
        used: list[RankResources] | None = None
        if gathered is not None:
            synapses = [n for n, _ in gathered]
            per_rank = None if None in synapses else [int(n) for n in synapses]
            given = [r for _, r in gathered if r is not None]
            used = given if len(given) == len(gathered) else None
        timings = {
            "build_s": build_s,
            "sim_s": sim_s,
            "weights_s": weights_s,
            "checkpoint_s": checkpoint_s,
        }
        run = None if used is None else (secrets.token_hex(8), used)
        finish = _finisher(status, reason, timings, self._opened_at, per_rank, run)
        flush_error: RecordingError | None = None
        try:
            self._flush(finish)
        except RecordingError as exc:
            flush_error = exc
            status, reason = "failed", f"{reason + '; ' if reason else ''}{exc}"
        error: BaseException | None = None
        if self._comm.rank == 0:
            try:
                if flush_error is not None:
                    self._update_root(
                        _finisher(status, reason, timings, self._opened_at, per_rank, run)
                    )
                # Consolidated metadata is outside the v3 spec; it is only a cache that lets
                # ``xarray.open_zarr(store, group=...)`` open a finished store without warning.
                zarr_local.consolidate_metadata(self._path)
            except Exception as exc:
                error = exc
        self._raise_if_any_failed(error, "writing the final status")
        if flush_error is not None:
            raise flush_error

    def mark_failed(self, reason: str) -> None:
        """Set status ``failed`` and ``reason`` without any collective call; never raises.

        Only a store whose status is still ``running`` changes (see :func:`mark_store_failed`).
        """
        mark_store_failed(self._path, reason)

    # ------------------------------------------------------------------ helpers

    def _require_open(self) -> None:
        if self._info is None:
            raise RecordingError("the recorder is not open")
        if self._closed:
            raise RecordingError("the recorder is closed")

    def _update_root(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Rank 0: re-read the root document, apply ``change``, write it back.

        Re-reading keeps a ``failed`` status that another rank wrote with ``mark_failed``.
        """
        root = zarr_local.open_group(self._path)
        doc = dict(cast(Mapping[str, Any], root.attrs[ROOT_KEY]))
        change(doc)
        root.attrs[ROOT_KEY] = doc


def _owned_partial(
    stream: _Chunked, n_rows_written: int, size: int, rank: int
) -> dict[int, npt.NDArray[np.float32]]:
    """The blocks of ``stream``'s partial last row of chunks (``n_rows_written`` rows written,
    not a multiple of the chunk's rows) that ``rank`` of ``size`` owns, read back from the
    store (NaN past the written rows and columns); none when the last row is complete."""
    n_rows, width = stream.chunk_shape
    row_chunk, filled = divmod(n_rows_written, n_rows)
    if not filled:
        return {}
    data = stream.data_array()
    n_columns = int(data.shape[1])
    blocks: dict[int, npt.NDArray[np.float32]] = {}
    for column_chunk in range(stream.n_column_chunks):
        if stream.owner(row_chunk, column_chunk, size) != rank:
            continue
        left = column_chunk * width
        right = min(left + width, n_columns)
        block = np.full((n_rows, width), np.nan, dtype=np.float32)
        if right > left:
            first = row_chunk * n_rows
            block[:filled, : right - left] = data[first : first + filled, left:right]
        blocks[column_chunk] = block
    return blocks


@dataclass(frozen=True, slots=True)
class _Rows:
    """Rows from ``first`` of one chunk of dense stream ``stream``, from one rank; column
    ``j`` of ``values`` is column ``positions[j]`` of the array."""

    stream: int
    row_chunk: int
    column_chunk: int
    first: int
    positions: npt.NDArray[np.int64]
    values: npt.NDArray[np.float32]


def _check_info(info: RunInfo) -> None:
    """Reject a run description the store could not represent (the same on every rank)."""
    problems: list[str] = []
    if not info.dt_ms > 0:
        problems.append(f"dt_ms must be > 0, got {info.dt_ms}")
    names = list(info.populations)
    problems.extend(
        f"population name {name!r} must be non-empty and without '/'"
        for name in names
        if not name or "/" in name
    )
    if len(set(info.spike_populations)) != len(info.spike_populations):
        problems.append(f"spike_populations has duplicates: {info.spike_populations}")
    problems.extend(
        f"spike population {name!r} is not in populations {names}"
        for name in info.spike_populations
        if name not in info.populations
    )
    seen: set[tuple[str, str]] = set()
    for index, spec in enumerate(info.reports):
        where = f"reports[{index}] ({spec.population}/{spec.variable})"
        if spec.population not in info.populations:
            problems.append(f"{where}: population is not in populations {names}")
            continue
        if not spec.variable or "/" in spec.variable:
            problems.append(f"{where}: variable must be non-empty and without '/'")
        if (spec.population, spec.variable) in seen:
            problems.append(f"{where}: recorded twice")
        seen.add((spec.population, spec.variable))
        ids = np.asarray(spec.node_ids)
        size = info.populations[spec.population].size
        if ids.ndim != 1 or (ids.size and (ids[0] < 0 or ids[-1] >= size)):
            problems.append(f"{where}: node_ids must be 1-D within [0, {size})")
        elif ids.size > 1 and not bool(np.all(np.diff(ids) > 0)):
            problems.append(f"{where}: node_ids must be strictly ascending")
        if spec.n_samples < 0 or not spec.interval_ms > 0:
            problems.append(f"{where}: needs n_samples >= 0 and interval_ms > 0")
    projections: set[str] = set()
    for index, weights in enumerate(info.weights):
        where = f"weights[{index}] ({weights.projection})"
        problems += _name_problems(where, "projection", weights.projection, projections)
        if not weights.model or not weights.units:
            problems.append(f"{where}: needs a model and units")
        if weights.max_snapshots < 0:
            problems.append(f"{where}: needs max_snapshots >= 0")
        if weights.interval_ms is not None and not weights.interval_ms > 0:
            problems.append(f"{where}: interval_ms must be > 0 or None")
    stimuli: set[str] = set()
    for index, stimulus in enumerate(info.stimuli):
        where = f"stimuli[{index}] ({stimulus.name})"
        problems += _name_problems(where, "stimulus", stimulus.name, stimuli)
        onsets, samples = np.asarray(stimulus.onsets_ms), np.asarray(stimulus.sample_index)
        if onsets.ndim != 1 or onsets.shape != samples.shape:
            problems.append(f"{where}: onsets_ms and sample_index must be 1-D of equal length")
    if problems:
        raise RecordingError("cannot record this run:\n  " + "\n  ".join(problems))


def _name_problems(where: str, kind: str, name: str, seen: set[str]) -> list[str]:
    """What is wrong with ``name`` as a group name among those ``seen`` (which it joins)."""
    problems = []
    if not name or "/" in name:
        problems.append(f"{where}: {kind} name must be non-empty and without '/'")
    if name in seen:
        problems.append(f"{where}: recorded twice")
    seen.add(name)
    return problems


def _create_dense_arrays(
    group: zarr_local.Group,
    shape: tuple[int, int],
    chunks: tuple[int, int],
    time_chunk: int,
    units: str,
    column_dimension: str,
    compression: str,
    *,
    coordinates: str | None = None,
) -> None:
    """Create ``data`` (float32, dims ``time`` and ``column_dimension``) and ``time`` (ms).

    ``coordinates`` names the non-index coordinates of ``data`` (CF's ``coordinates``
    attribute, which xarray follows).
    """
    attributes: dict[str, Any] = {"units": units}
    if coordinates is not None:
        attributes["coordinates"] = coordinates
    group.create_array(
        "data",
        shape=shape,
        chunks=chunks,
        dtype=np.float32,
        fill_value=np.nan,
        compressors=compressors(compression, 4),
        dimension_names=["time", column_dimension],
        attributes=attributes,
    )
    group.create_array(
        "time",
        shape=(0,),
        chunks=(time_chunk,),
        dtype=np.float64,
        fill_value=np.nan,
        compressors=compressors(compression, 8),
        dimension_names=["time"],
        attributes={"units": "ms"},
    )


def _create_presentations(root: zarr_local.Group, spec: StimulusSpec, compression: str) -> None:
    """``stimuli/<name>``: when each sample was shown (``sample_onsets_ms``, float64 ms) and
    which data row it was (``sample_index``, int64), along the dimension ``sample``, in one
    chunk up to 128Ki presentations; written whole by rank 0 when the store is created."""
    group = root.create_group(
        stimulus_path(spec.name),
        attributes={"type": spec.type, "present_ms": spec.present_ms, "rest_ms": spec.rest_ms},
    )
    n_shown = int(np.asarray(spec.onsets_ms).size)
    arrays: tuple[tuple[str, npt.NDArray[Any], float, dict[str, Any]], ...] = (
        ("sample_onsets_ms", np.asarray(spec.onsets_ms, dtype=np.float64), np.nan, {"units": "ms"}),
        ("sample_index", np.asarray(spec.sample_index, dtype=np.int64), -1, {}),
    )
    for name, values, fill, attributes in arrays:
        array = group.create_array(
            name,
            shape=(n_shown,),
            chunks=(max(1, min(n_shown, _PRESENTATION_CHUNK)),),
            dtype=values.dtype,
            fill_value=fill,
            compressors=compressors(compression, 8),
            dimension_names=["sample"],
            attributes=attributes,
        )
        if n_shown:
            array[:] = values


def _create_ids_array(
    group: zarr_local.Group,
    name: str,
    size: int,
    chunk: int,
    compression: str,
    *,
    dimension: str | None = None,
) -> zarr_local.Array:
    """Create a 1-D int64 array of node ids (fill -1) along ``dimension`` (default: ``name``)."""
    return group.create_array(
        name,
        shape=(size,),
        chunks=(chunk,),
        dtype=np.int64,
        fill_value=-1,
        compressors=compressors(compression, 8),
        dimension_names=[dimension or name],
    )


def _sample_times(spec: ReportSpec, lo: int, hi: int) -> npt.NDArray[np.float64]:
    """Times (ms) of report samples ``[lo, hi)``: ``start_ms + k * interval_ms``."""
    return spec.start_ms + np.arange(lo, hi, dtype=np.float64) * spec.interval_ms


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _array(root: zarr_local.Group, path: str) -> zarr_local.Array:
    node = root[path]
    if not isinstance(node, zarr_local.Array):
        raise RecordingError(f"{path} in the store is not an array")
    return node


def _check_order(spikes: _SpikeStream) -> None:
    """Reject unchecked buffered spikes that break (step, node id) order or the id range.

    Checked once per flush over the new spikes (vectorised) rather than per ``add_spikes``
    call, which the engine makes every exchange interval.
    """
    end = spikes.buffer.size
    if spikes.checked == end:
        return
    steps = spikes.buffer.steps[spikes.checked : end]
    ids = spikes.buffer.ids[spikes.checked : end]
    d_step = np.diff(steps, prepend=spikes.last_step)
    d_id = np.diff(ids, prepend=spikes.last_id)
    if not bool(np.all((d_step > 0) | ((d_step == 0) & (d_id > 0)))):
        raise RecordingError(
            f"spikes of {spikes.population!r} are not sorted by (step, node id) without "
            "duplicates, or go back in time"
        )
    if int(ids.min()) < 0 or int(ids.max()) >= spikes.population_size:
        raise RecordingError(
            f"spikes of {spikes.population!r} have node ids outside [0, {spikes.population_size})"
        )
    spikes.checked = end
    spikes.last_step = int(steps[-1])
    spikes.last_id = int(ids[-1])


def _put_rows(
    stream: _DenseStream,
    first: int,
    positions: npt.NDArray[np.int64],
    values: npt.NDArray[np.float32],
) -> None:
    """Keep ``values[r, j]`` as row ``first + r``, column ``positions[j]`` of ``stream``; a
    position this rank never used gets a column of its own (reports learn their columns from
    the samples)."""
    if positions.ndim != 1 or values.ndim != 2 or values.shape[1] != positions.size:
        raise RecordingError(
            f"{stream.name}: values of shape {values.shape} do not fit {positions.shape} positions"
        )
    n = values.shape[0]
    if not n:
        return
    for row in (first, first + n - 1):
        if row < stream.flushed or row >= stream.max_rows:
            raise RecordingError(
                f"{stream.name}: sample {row} is outside the unflushed range "
                f"[{stream.flushed}, {stream.max_rows})"
            )
    if positions.size:
        if positions.min() < 0 or positions.max() >= stream.n_columns:
            raise RecordingError(f"{stream.name}: positions must be within [0, {stream.n_columns})")
        columns = _columns(stream, positions)
        first_row = first - stream.flushed
        if first_row + n > stream.rows.shape[0]:
            _add_rows(stream, first_row + n)
        stream.rows[first_row : first_row + n, columns] = values
    stream.end = max(stream.end, first + n)


def _columns(
    stream: _DenseStream, positions: npt.NDArray[np.int64]
) -> slice | npt.NDArray[np.intp]:
    """The columns of ``stream.rows`` that hold ``positions`` (see :func:`_put_rows`)."""
    known = stream.positions
    if positions.size == known.size and np.array_equal(positions, known):
        return slice(None)
    columns = np.searchsorted(known, positions)
    if bool(np.all(columns < known.size)) and np.array_equal(known[columns], positions):
        return columns
    merged = np.union1d(known, positions)
    rows = np.full((stream.rows.shape[0], merged.size), np.nan, dtype=np.float32)
    rows[:, np.searchsorted(merged, known)] = stream.rows
    stream.positions, stream.rows = merged, rows
    return np.searchsorted(merged, positions)


def _add_rows(stream: _DenseStream, n_rows: int) -> None:
    """Grow ``stream.rows`` to at least ``n_rows`` rows (doubling, but never past the rows
    the stream can still take; NaN-filled)."""
    capacity = max(n_rows, min(2 * stream.rows.shape[0], stream.max_rows - stream.flushed))
    rows = np.full((capacity, stream.rows.shape[1]), np.nan, dtype=np.float32)
    rows[: stream.rows.shape[0]] = stream.rows
    stream.rows = rows


def _tiled(name: str, ranges: list[tuple[int, int]]) -> int:
    """The number of columns of the ranks' ``(first, count)`` ranges; raise (the same on every
    rank) unless they tile ``0 .. n - 1``."""
    n_columns = sum(count for _, count in ranges)
    for rank, (first, count) in enumerate(ranges):
        if count < 0 or first < 0 or first + count > n_columns:
            raise RecordingError(
                f"{name}: the ranks gave {n_columns} synapses, so their columns must be 0 .. "
                f"{n_columns - 1}, but rank {rank} gave columns {first} .. {first + count - 1}"
            )
    end = 0
    for first, count in sorted(r for r in ranges if r[1] > 0):
        if first != end:
            what = "overlap at" if first < end else "leave out"
            raise RecordingError(
                f"{name}: the ranks' synapse columns {what} column {min(first, end)} "
                f"(their (first, count) by rank: {ranges})"
            )
        end = first + count
    return n_columns


def _node_ids(name: str, what: str, ids: npt.NDArray[Any], n: int) -> npt.NDArray[np.integer[Any]]:
    """``ids``, checked: ``n`` node ids (integers, none negative)."""
    got = np.asarray(ids)
    if got.shape != (n,) or not np.issubdtype(got.dtype, np.integer):
        raise RecordingError(
            f"{name}: the synapse ids gave {what} of {got.dtype}{list(got.shape)}, not {n} integers"
        )
    if n and got.min() < 0:
        raise RecordingError(f"{name}: {what} must be node ids >= 0")
    return got


def _check_synapses(
    name: str, left: int, sources: npt.NDArray[np.int64], targets: npt.NDArray[np.int64]
) -> None:
    """Raise unless the synapses from column ``left`` are ordered by target, then source.

    One pass over ``(target, source)`` packed into one integer (node ids are below 2**31, as
    populations are): the order holds where the packed keys never decrease.
    """
    keys = (targets << 32) | sources
    disorder = np.flatnonzero(keys[1:] < keys[:-1])
    if disorder.size:
        j = int(disorder[0])
        raise RecordingError(
            f"{name}: synapses must be ordered by target, then source; column {left + j + 1} "
            f"(target {targets[j + 1]}, source {sources[j + 1]}) follows column {left + j} "
            f"(target {targets[j]}, source {sources[j]})"
        )


def _check_snapshot(stream: _WeightStream, every: list[tuple[int, float]]) -> None:
    """Raise (the same on every rank) unless the ranks' ``(snapshot, time_ms)`` agree and
    continue the stream: the next snapshot, at a finite time later than the last one."""
    snapshot, time_ms = every[0]
    name = stream.name
    if any(pair != every[0] for pair in every):
        listed = "; ".join(f"rank {r}: {pair}" for r, pair in enumerate(every))
        raise RecordingError(
            f"{name}: the ranks disagree on the snapshot (every rank must write every snapshot "
            f"with the same time; (snapshot, ms)): {listed}"
        )
    if snapshot != stream.snapshots:
        raise RecordingError(
            f"{name}: snapshot {snapshot} is out of order; the next one is {stream.snapshots}"
        )
    if snapshot >= stream.spec.max_snapshots:
        raise RecordingError(
            f"{name}: snapshot {snapshot} is beyond the {stream.spec.max_snapshots} snapshots "
            "the recording can take"
        )
    if not math.isfinite(time_ms):
        raise RecordingError(f"{name}: snapshot {snapshot} has the time {time_ms} ms")
    if snapshot and not time_ms > stream.times[snapshot - 1]:
        raise RecordingError(
            f"{name}: snapshot {snapshot} at {time_ms} ms is not later than snapshot "
            f"{snapshot - 1} at {stream.times[snapshot - 1]} ms"
        )


def _few(values: npt.NDArray[Any], limit: int = 5) -> str:
    """``values`` for a message: the first ``limit`` and how many there are."""
    shown = ", ".join(str(v) for v in values[:limit].tolist())
    return f"[{shown}]" if values.size <= limit else f"[{shown}, ...] ({values.size} in all)"


def _finisher(
    status: FinalStatus,
    reason: str | None,
    timings: Mapping[str, float | None],
    opened_at: float,
    synapses_per_rank: list[int] | None = None,
    run: tuple[str, list[RankResources]] | None = None,
) -> Callable[[dict[str, Any]], None]:
    """The root-document change that closes a run (a ``failed`` mark by any rank wins);
    ``wall_s`` is taken when it is applied, from ``opened_at`` (``time.perf_counter``), and
    the ``timings`` given (not None) join it (``build_s`` always). With ``run`` (the run's id
    and every rank's resources), the run's entry is appended to the provenance's ``runs``."""

    def finish(doc: dict[str, Any]) -> None:
        final = "failed" if doc.get("status") == "failed" else status
        reasons = [r for r in (doc.get("reason"), reason) if r]
        doc["status"] = final
        doc["reason"] = "; ".join(dict.fromkeys(reasons)) or None
        provenance = dict(doc.get("provenance") or {})
        wall_s = round(time.perf_counter() - opened_at, 6)
        provenance.update(end_time=_utc_now(), wall_s=wall_s, build_s=timings["build_s"])
        for name in ("sim_s", "weights_s", "checkpoint_s"):
            value = timings.get(name)
            if value is not None:
                provenance[name] = round(value, 6)
        if synapses_per_rank is not None:
            provenance["n_synapses"] = sum(synapses_per_rank)
            provenance["n_synapses_per_rank"] = synapses_per_rank
        if run is not None:
            run_id, resources = run
            entry = _run_entry(run_id, final, provenance, resources)
            # The same run's entry once, should the final write be applied twice.
            runs = provenance.get("runs") or []
            earlier = [r for r in runs if not (isinstance(r, Mapping) and r.get("id") == run_id)]
            provenance["runs"] = [*earlier, entry]
        doc["provenance"] = provenance

    return finish


def _run_entry(
    run_id: str, status: str, provenance: Mapping[str, Any], resources: list[RankResources]
) -> dict[str, Any]:
    """One run's entry of the provenance's ``runs``: its id (random, so that a reader can
    count each run once), final status, ranks, end and wall-clock time, and what its ranks'
    processes used: ``cpu_s`` (user + system, summed over ranks), ``max_rank_rss_bytes`` (the
    largest peak resident set of one rank) and ``sum_rank_rss_bytes`` (the ranks' peaks
    summed: a bound on the run's memory at any moment)."""
    peaks = [r.peak_rss_bytes for r in resources]
    return {
        "id": run_id,
        "status": status,
        "n_ranks": len(resources),
        "end_time": provenance.get("end_time"),
        "wall_s": provenance.get("wall_s"),
        "cpu_s": round(sum(r.cpu_s for r in resources), 6),
        "max_rank_rss_bytes": max(peaks),
        "sum_rank_rss_bytes": sum(peaks),
    }
