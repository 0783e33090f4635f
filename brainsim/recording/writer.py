"""Write one run's recording into a Zarr store from every rank, one writer per chunk (RECORDING.md).

A flush is collective and runs in five phases:

1. Every rank already holds the global spikes (``add_spikes`` receives the same arrays on every
   rank); the ranks agree on how many report samples exist (one ``allgather`` of each rank's
   highest sample).
2. State rows travel to the owner of their chunk (one ``gather`` per owning rank).
3. Each rank writes the chunks it owns. Chunk ``c`` of stream ``k`` (spike populations first,
   then reports, in ``RunInfo`` order) belongs to rank ``(c + k) % n_ranks``; nobody else ever
   touches it, and a later flush that extends a partial chunk rewrites it whole, from memory,
   through the same owner. The writes go *beyond* the published array shape through handles
   that carry the new shape in memory only.
4. An allreduce (the barrier; it also carries "my writes failed"), then rank 0 alone publishes
   the new array shapes and ``simulated_ms`` in the root attributes.
5. A second allreduce, so that when ``flush`` returns on any rank the data is readable.

Between flushes, spikes are written behind: as soon as a population's buffer holds a complete
chunk, its owner writes it (beyond the published shape, as in phase 3) and every rank drops it, so
a rank holds at most one partial chunk per population however long the flush interval. This needs
no communication, because every rank has the same spikes; a failed write is reported by the next
flush, collectively.

Publishing shapes after the chunks exist (rather than resizing first) means a reader that looks
mid-flush sees the previous, complete state and never a region of fill values; zarr's local
store replaces each chunk file atomically, so a rewritten partial chunk is never read torn.

Spike times are stored as ``step * dt_ms`` evaluated in float64 (one rounding of the exact
product), so equal steps give bit-identical times whatever the rank count.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
import zarr
from zarr.core.sync import sync
from zarr.errors import ZarrUserWarning

from brainsim.errors import RecordingError, RecordingExistsError
from brainsim.recording.base import Collectives, FinalStatus, ReportSpec, RunInfo
from brainsim.recording.layout import (
    DEFAULT_REPORT_CHUNK_BYTES,
    DEFAULT_REPORT_COMPRESSION,
    DEFAULT_SPIKE_CHUNK,
    DEFAULT_SPIKE_COMPRESSION,
    FORMAT,
    ROOT_KEY,
    compressors,
    report_chunks,
    report_path,
    spikes_path,
)
from brainsim.recording.paths import check_writable

__all__ = ["ZarrRecorder", "check_writable", "mark_store_failed"]

_log = logging.getLogger(__name__)

_FINAL_STATUSES: tuple[FinalStatus, ...] = ("complete", "failed", "cancelled")


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


def _concurrently(calls: list[Coroutine[Any, Any, Any]]) -> None:
    """Await ``calls`` together in one round trip into zarr's event loop.

    Each synchronous zarr call (``Array.__setitem__``, ``Array.resize``) is a round trip of
    its own and encodes or writes alone; gathered, the codecs and file writes overlap.
    """
    if not calls:
        return

    async def together() -> None:
        await asyncio.gather(*calls)

    sync(together())


class _Writes:
    """The whole-chunk writes of a flush, performed concurrently in batches of at most
    :data:`_BATCH_BYTES`."""

    def __init__(self) -> None:
        self._pending: list[tuple[zarr.Array[Any], slice, npt.NDArray[Any]]] = []
        self._bytes = 0

    def add(self, array: zarr.Array[Any], selection: slice, values: npt.NDArray[Any]) -> None:
        self._pending.append((array, selection, values))
        self._bytes += values.nbytes
        if self._bytes >= _BATCH_BYTES:
            self.run()

    def run(self) -> None:
        """Write everything added so far."""
        pending, self._pending, self._bytes = self._pending, [], 0
        _concurrently([a.async_array.setitem(sel, v) for a, sel, v in pending])


def _with_shape(array: zarr.Array[Any], shape: tuple[int, ...]) -> zarr.Array[Any]:
    """A handle on ``array`` that believes in ``shape`` without writing any metadata.

    Owners write their chunks through it before rank 0 publishes the shape (phase 3).
    """
    async_array = zarr.AsyncArray(
        metadata=array.metadata.update_shape(shape),
        store_path=array.store_path,
        config=array.config,
    )
    return zarr.Array(async_array)


def mark_store_failed(path: str | os.PathLike[str], reason: str) -> bool:
    """Set status ``failed`` and ``reason`` in the store at ``path`` if it says ``running``.

    Not collective and safe on an error path: it never raises (a store that cannot be marked
    is logged) and returns whether it changed the store. Launchers use it when a run died
    without closing its store.
    """
    try:
        store = Path(path)
        if not (store / "zarr.json").is_file():
            return False
        root = zarr.open_group(store=str(store), mode="r+", zarr_format=3)
        doc = root.attrs.get(ROOT_KEY)
        if not isinstance(doc, Mapping) or doc.get("status") != "running":
            return False
        provenance = dict(cast(Mapping[str, Any], doc.get("provenance") or {}))
        provenance["end_time"] = _utc_now()
        root.attrs[ROOT_KEY] = {
            **doc,
            "status": "failed",
            "reason": reason,
            "provenance": provenance,
        }
    except Exception:
        _log.exception("could not mark the recording at %s as failed", path)
        return False
    return True


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
    timestamps: zarr.Array[Any]
    node_ids: zarr.Array[Any]
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


@dataclass(slots=True)
class _ReportStream:
    """Writer state of one report: this rank's unflushed rows and, on an owner, a partial chunk."""

    spec: ReportSpec
    index: int
    ordinal: int
    data: zarr.Array[Any]
    time: zarr.Array[Any]
    col_of: npt.NDArray[np.int64]
    """Position in ``spec.node_ids`` -> column of ``rows`` (-1: not one of this rank's nodes)."""
    positions: npt.NDArray[np.int64]
    """Column of ``rows`` -> position in ``spec.node_ids``; the first ``n_local`` are in use."""
    rows: npt.NDArray[np.float32]
    """Unflushed samples: row ``i`` is sample ``flushed + i``; NaN where nothing was added."""
    n_local: int = 0
    flushed: int = 0
    end: int = 0
    """One past the highest sample index this rank added (``flushed`` when none)."""
    partial: npt.NDArray[np.float32] | None = None
    """On its owner: the block (chunk rows x padded columns) of the last, partial chunk."""

    @property
    def n_nodes(self) -> int:
        return int(self.spec.node_ids.size)


class ZarrRecorder:
    """The :class:`~brainsim.recording.base.Recorder` that writes RECORDING.md's Zarr layout.

    ``path`` is the store directory; every rank passes the same path and its ``comm``.
    ``flush_interval_ms`` is the promised bound on simulated time between ``flush`` calls (the
    engine decides when to flush; every call writes). ``spike_chunk``
    (spikes per chunk), ``report_chunk_bytes`` (target uncompressed bytes per report chunk),
    ``spike_compression`` and ``report_compression`` (each one of ``layout.COMPRESSIONS``)
    change only the storage, never the content; the defaults are the measured choices.
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
        spike_compression: str = DEFAULT_SPIKE_COMPRESSION,
        report_compression: str = DEFAULT_REPORT_COMPRESSION,
    ) -> None:
        if not flush_interval_ms > 0:
            raise ValueError(f"flush_interval_ms must be > 0, got {flush_interval_ms}")
        if spike_chunk < 1 or report_chunk_bytes < 4:
            raise ValueError("spike_chunk and report_chunk_bytes must be positive")
        compressors(spike_compression, 8)
        compressors(report_compression, 4)
        self._path = Path(path)
        self._comm = comm
        self._overwrite = overwrite
        self._flush_interval_ms = float(flush_interval_ms)
        self._spike_chunk = int(spike_chunk)
        self._report_chunk_bytes = int(report_chunk_bytes)
        self._spike_compression = spike_compression
        self._report_compression = report_compression
        self._info: RunInfo | None = None
        self._spikes: dict[str, _SpikeStream] = {}
        self._reports: list[_ReportStream] = []
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
        root = zarr.open_group(store=str(self._path), mode="r+", zarr_format=3)
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
        for index, spec in enumerate(info.reports):
            group = report_path(spec.population, spec.variable)
            data = _array(root, f"{group}/data")
            n_nodes = int(spec.node_ids.size)
            self._reports.append(
                _ReportStream(
                    spec=spec,
                    index=index,
                    ordinal=len(info.spike_populations) + index,
                    data=data,
                    time=_array(root, f"{group}/time"),
                    col_of=np.full(n_nodes, -1, dtype=np.int64),
                    positions=np.empty(0, dtype=np.int64),
                    rows=np.full((0, 0), np.nan, dtype=np.float32),
                )
            )

    def _create(self, info: RunInfo) -> None:
        """Rank 0: check the path, build groups and arrays, then write the root metadata last.

        The root attributes come last so that a crash half-way leaves a store the reader
        reports as half written rather than one that looks valid.
        """
        check_writable(self._path, overwrite=self._overwrite)
        if self._path.is_dir() and any(self._path.iterdir()):
            shutil.rmtree(self._path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        root = zarr.create_group(store=str(self._path), zarr_format=3)
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
            group.create_array(
                "data",
                shape=(0, n_nodes),
                chunks=(rows, cols),
                dtype=np.float32,
                fill_value=np.nan,
                compressors=compressors(self._report_compression, 4),
                dimension_names=["time", "node_ids"],
                attributes={"units": spec.units},
            )
            group.create_array(
                "time",
                shape=(0,),
                chunks=(rows,),
                dtype=np.float64,
                fill_value=np.nan,
                compressors=compressors(self._report_compression, 8),
                dimension_names=["time"],
                attributes={"units": "ms"},
            )
            node_ids = group.create_array(
                "node_ids",
                shape=(n_nodes,),
                chunks=(max(1, n_nodes),),
                dtype=np.int64,
                fill_value=-1,
                compressors=compressors(self._report_compression, 8),
                dimension_names=["node_ids"],
            )
            node_ids[:] = np.asarray(spec.node_ids, dtype=np.int64)
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
        n = values.shape[0]
        if not 0 <= report < len(self._reports):
            raise RecordingError(f"report {report} does not exist ({len(self._reports)} reports)")
        stream = self._reports[report]
        first_row = first_sample - stream.flushed
        for sample_index in (first_sample, first_sample + n - 1):
            if sample_index < stream.flushed or sample_index >= stream.spec.n_samples:
                raise RecordingError(
                    f"report {report}: sample {sample_index} is outside the unflushed range "
                    f"[{stream.flushed}, {stream.spec.n_samples})"
                )
        if positions.size:
            if positions[0] < 0 or positions[-1] >= stream.n_nodes:
                raise RecordingError(
                    f"report {report}: positions must be ascending within [0, {stream.n_nodes})"
                )
            cols = stream.col_of[positions]
            if cols.min() < 0:
                _add_columns(stream, positions[cols < 0])
                cols = stream.col_of[positions]
            if first_row + n > stream.rows.shape[0]:
                _add_rows(stream, first_row + n)
            stream.rows[first_row : first_row + n, cols] = values
        stream.end = max(stream.end, first_sample + n)

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
        ends = self._comm.allgather([r.end for r in self._reports])
        new_ends = [max(rank_ends[i] for rank_ends in ends) for i in range(len(self._reports))]
        received = self._route_rows(new_ends)
        error: BaseException | None = None
        partials: list[npt.NDArray[np.float32] | None] = []
        try:
            writes = _Writes()
            for spikes in self._spikes.values():
                self._add_spike_writes(spikes, spikes.base + spikes.buffer.size, writes)
            for stream, new_end in zip(self._reports, new_ends, strict=True):
                partials.append(self._write_report(stream, new_end, received, writes))
            writes.run()
        except Exception as exc:
            error = exc
        if self._write_error is not None:
            error, self._write_error = self._write_error, None
        self._raise_if_any_failed(error, "writing its chunks")
        if self._comm.rank == 0:
            try:
                self._publish(new_ends, finish)
            except Exception as exc:
                error = exc
        self._raise_if_any_failed(error, "publishing the array shapes")
        for spikes in self._spikes.values():
            spikes.published = spikes.base + spikes.buffer.size
            spikes.drop_complete_chunks()
        for stream, new_end, partial in zip(self._reports, new_ends, partials, strict=True):
            stream.rows[: stream.end - stream.flushed, : stream.n_local] = np.nan
            stream.flushed = stream.end = new_end
            stream.partial = partial

    def _route_rows(self, new_ends: list[int]) -> dict[tuple[int, int], list[_Rows]]:
        """Phase 2: send this rank's unflushed rows to each chunk's owner; return what it got."""
        size = self._comm.size
        outgoing: dict[int, list[_Rows]] = {}
        for index, (stream, new_end) in enumerate(zip(self._reports, new_ends, strict=True)):
            per_chunk = int(stream.data.chunks[0])
            for chunk in range(stream.flushed // per_chunk, -(-new_end // per_chunk)):
                owner = (chunk + stream.ordinal) % size
                rows = outgoing.setdefault(owner, [])
                first = max(chunk * per_chunk, stream.flushed)
                last = min((chunk + 1) * per_chunk, new_end)
                if stream.n_local and first - stream.flushed < stream.rows.shape[0]:
                    block = stream.rows[
                        first - stream.flushed : last - stream.flushed, : stream.n_local
                    ]
                    rows.append(
                        _Rows(index, chunk, first, stream.positions[: stream.n_local], block)
                    )
        received: dict[tuple[int, int], list[_Rows]] = {}
        for owner in sorted(outgoing):
            gathered = self._comm.gather(outgoing[owner], root=owner)
            if gathered is not None and owner == self._comm.rank:
                for rank_rows in gathered:
                    for rows in rank_rows:
                        received.setdefault((rows.report, rows.chunk), []).append(rows)
        return received

    def _add_spike_writes(self, spikes: _SpikeStream, total: int, writes: _Writes) -> None:
        """Phase 3 for one population: add the writes of the chunks this rank owns among the
        buffered ones, up to stream position ``total``.

        Every chunk is written whole (the tail padded with the fill values), so zarr never
        reads a chunk back to merge a partial write.
        """
        assert self._info is not None
        size = spikes.chunk
        start = spikes.base
        if total <= start or total <= spikes.published:
            return
        padded = (_round_up(total, size),)
        timestamps = _with_shape(spikes.timestamps, padded)
        node_ids = _with_shape(spikes.node_ids, padded)
        for chunk in range(start // size, padded[0] // size):
            if (chunk + spikes.ordinal) % self._comm.size != self._comm.rank:
                continue
            lo = chunk * size
            n = min(size, total - lo)
            times = np.full(size, np.nan, dtype=np.float64)
            ids = np.full(size, -1, dtype=np.int64)
            times[:n] = spikes.buffer.steps[lo - start : lo - start + n] * self._info.dt_ms
            ids[:n] = spikes.buffer.ids[lo - start : lo - start + n]
            writes.add(timestamps, slice(lo, lo + size), times)
            writes.add(node_ids, slice(lo, lo + size), ids)

    def _write_report(
        self,
        stream: _ReportStream,
        new_end: int,
        received: dict[tuple[int, int], list[_Rows]],
        writes: _Writes,
    ) -> npt.NDArray[np.float32] | None:
        """Phase 3 for one report: assemble the chunks this rank owns; append their writes.

        A chunk is assembled as a full ``rows x padded columns`` block (NaN where nothing is
        known yet) and written whole, so zarr never reads it back. Returns the block of the
        last chunk if it is partial and this rank owns it (kept so the next flush can extend
        and rewrite it from memory), else ``None``.
        """
        if new_end == stream.flushed:
            return stream.partial
        rows, cols = stream.data.chunks
        spec = stream.spec
        padded_rows = _round_up(new_end, rows)
        padded_cols = _round_up(stream.n_nodes, cols)
        data = _with_shape(stream.data, (padded_rows, padded_cols))
        times = _with_shape(stream.time, (padded_rows,))
        partial_chunk = stream.flushed // rows
        new_partial: npt.NDArray[np.float32] | None = None
        for chunk in range(partial_chunk, padded_rows // rows):
            if (chunk + stream.ordinal) % self._comm.size != self._comm.rank:
                continue
            lo = chunk * rows
            if chunk == partial_chunk and stream.partial is not None:
                block = stream.partial.copy()
            else:
                block = np.full((rows, padded_cols), np.nan, dtype=np.float32)
            for part in received.get((stream.index, chunk), []):
                first = part.first - lo
                block[first : first + part.values.shape[0], part.positions] = part.values
            n = min(rows, new_end - lo)
            stamps = np.full(rows, np.nan, dtype=np.float64)
            stamps[:n] = spec.start_ms + np.arange(lo, lo + n, dtype=np.float64) * spec.interval_ms
            if padded_cols:
                writes.add(data, slice(lo, lo + rows), block)
            writes.add(times, slice(lo, lo + rows), stamps)
            if n < rows:
                new_partial = block
        return new_partial

    def _publish(
        self, new_ends: list[int], finish: Callable[[dict[str, Any]], None] | None
    ) -> None:
        """Phase 4, rank 0: grow the published shapes, then record the progress (and
        ``finish``)."""
        resizes: list[tuple[zarr.Array[Any], tuple[int, ...]]] = []
        for spikes in self._spikes.values():
            total = spikes.base + spikes.buffer.size
            if total != spikes.published:
                resizes += [(spikes.timestamps, (total,)), (spikes.node_ids, (total,))]
        for stream, new_end in zip(self._reports, new_ends, strict=True):
            if new_end != stream.flushed:
                resizes += [(stream.data, (new_end, stream.n_nodes)), (stream.time, (new_end,))]
        # Each AsyncArray takes its new metadata in place, so the sync handles see it too.
        _concurrently([array.async_array.resize(shape) for array, shape in resizes])
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
                raise RecordingError(
                    f"rank {self._comm.rank} failed {phase} in {self._path}: {error}"
                ) from error
            raise RecordingError(f"another rank failed {phase} in {self._path}")

    # ------------------------------------------------------------------ close

    def close(
        self,
        status: FinalStatus,
        *,
        build_s: float,
        sim_s: float | None = None,
        reason: str | None = None,
    ) -> None:
        """Final flush, then rank 0 writes the final status and timings. Collective.

        The provenance gets ``wall_s`` (from opening the store to this final write, which it
        includes), ``build_s`` and, when given, ``sim_s``.

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
        flush_error: RecordingError | None = None
        try:
            self._flush(_finisher(status, reason, build_s, sim_s, self._opened_at))
        except RecordingError as exc:
            flush_error = exc
            status, reason = "failed", f"{reason + '; ' if reason else ''}{exc}"
        error: BaseException | None = None
        if self._comm.rank == 0:
            try:
                if flush_error is not None:
                    self._update_root(_finisher(status, reason, build_s, sim_s, self._opened_at))
                with warnings.catch_warnings():
                    # Consolidated metadata is outside the v3 spec; it is only a cache that lets
                    # ``xarray.open_zarr(store, group=...)`` open a finished store without warning.
                    warnings.simplefilter("ignore", ZarrUserWarning)
                    zarr.consolidate_metadata(str(self._path))
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
        root = zarr.open_group(store=str(self._path), mode="r+", zarr_format=3)
        doc = dict(cast(Mapping[str, Any], root.attrs[ROOT_KEY]))
        change(doc)
        root.attrs[ROOT_KEY] = doc


@dataclass(frozen=True, slots=True)
class _Rows:
    """Rows from ``first`` of one report chunk, from one rank; column j is ``positions[j]``."""

    report: int
    chunk: int
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
    if problems:
        raise RecordingError("cannot record this run:\n  " + "\n  ".join(problems))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _array(root: zarr.Group, path: str) -> zarr.Array[Any]:
    node = root[path]
    if not isinstance(node, zarr.Array):
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


def _add_columns(stream: _ReportStream, new_positions: npt.NDArray[np.int64]) -> None:
    """Give each position seen for the first time a column of ``stream.rows``."""
    new = np.unique(new_positions)
    need = stream.n_local + new.size
    if need > stream.positions.size:
        capacity = max(need, 2 * stream.positions.size)
        positions = np.empty(capacity, dtype=np.int64)
        positions[: stream.n_local] = stream.positions[: stream.n_local]
        stream.positions = positions
        rows = np.full((stream.rows.shape[0], capacity), np.nan, dtype=np.float32)
        rows[:, : stream.n_local] = stream.rows[:, : stream.n_local]
        stream.rows = rows
    stream.positions[stream.n_local : need] = new
    stream.col_of[new] = np.arange(stream.n_local, need, dtype=np.int64)
    stream.n_local = need


def _add_rows(stream: _ReportStream, n_rows: int) -> None:
    """Grow ``stream.rows`` to at least ``n_rows`` rows (doubling, NaN-filled)."""
    capacity = max(n_rows, 2 * stream.rows.shape[0], 64)
    rows = np.full((capacity, stream.rows.shape[1]), np.nan, dtype=np.float32)
    rows[: stream.rows.shape[0]] = stream.rows
    stream.rows = rows


def _finisher(
    status: FinalStatus,
    reason: str | None,
    build_s: float,
    sim_s: float | None,
    opened_at: float,
) -> Callable[[dict[str, Any]], None]:
    """The root-document change that closes a run (a ``failed`` mark by any rank wins);
    ``wall_s`` is taken when it is applied, from ``opened_at`` (``time.perf_counter``)."""

    def finish(doc: dict[str, Any]) -> None:
        final = "failed" if doc.get("status") == "failed" else status
        reasons = [r for r in (doc.get("reason"), reason) if r]
        doc["status"] = final
        doc["reason"] = "; ".join(dict.fromkeys(reasons)) or None
        provenance = dict(doc.get("provenance") or {})
        wall_s = round(time.perf_counter() - opened_at, 6)
        provenance.update(end_time=_utc_now(), wall_s=wall_s, build_s=build_s)
        if sim_s is not None:
            provenance["sim_s"] = round(sim_s, 6)
        doc["provenance"] = provenance

    return finish
