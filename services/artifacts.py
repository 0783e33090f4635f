"""A job's results as files to download (``ListArtifacts``, ``DownloadArtifact``): their names,
safe opening inside the job's folder, and the zipped recording.

Names (nothing else is an artefact; any other name is :class:`ArtifactNotFoundError`):

==================================  ============================================================
``recording.zarr.zip``              the Zarr v3 store as one zip (stored, not compressed: the
                                    chunks are), once the job has ended; opens with
                                    ``zarr.storage.ZipStore``
``circuit.yaml``                    the circuit as submitted
``circuit.normalized.json``         the normalized document the run used (defaults filled in,
                                    the job's duration and seed; the recording's root
                                    attributes hold the same)
``stdout.log``, ``stderr.log``      the output of every run of the job (they append)
``attachments/<path>``              a file sent with the circuit (stored next to it)
``artifacts/<path>``                a file below the job folder's ``artifacts/`` (compiled
                                    artefacts of neuromorphic targets)
==================================  ============================================================

Attachments are the files of the job's folder outside :data:`services.jobdir.JOB_FILES` (no
attachment may use those names). Every file is opened component by component without following
symbolic links (``O_NOFOLLOW`` relative to the folder above) and must be a regular file, so no
name, however spelled (``..``, absolute, a link inside the folder pointing out), reads anything
outside the job's folder.

The zip and the normalized circuit are made on first request, in ``.cache/`` of the job's
folder, written to a temporary file there and renamed into place (a reader never sees half of
one; a crash leaves a temporary file that the next zip removes). Zipping runs on a worker
thread, never on the event loop, and at most once per job at a time: concurrent downloads of a
recording wait for the one zip under way (one future per job, kept on the event loop's
thread). Entries are sorted and carry a fixed date, so a zip made again from the same store
has the same bytes (a download resumed across a rebuilt cache still fits together).

SHA-256 sums of whole artefacts are kept in memory, keyed by file identity, size and
modification time, so that resuming a large download does not read its first part again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import json
import logging
import mimetypes
import os
import stat
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from services.jobdir import JOB_FILES, DataRoot, JobDir, attachment_path_problem
from services.jobs import Job

__all__ = [
    "ARTIFACTS_PREFIX",
    "ATTACHMENTS_PREFIX",
    "CHUNK_BYTES",
    "NORMALIZED_CIRCUIT",
    "RECORDING_ZIP",
    "ArtifactError",
    "ArtifactInfo",
    "ArtifactNotFoundError",
    "ArtifactNotReadyError",
    "Download",
    "JobResults",
    "OffsetOutOfRangeError",
    "zip_store",
]

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
"""The most data of one ``DownloadArtifactResponse``."""
RECORDING_ZIP = "recording.zarr.zip"
NORMALIZED_CIRCUIT = "circuit.normalized.json"
ATTACHMENTS_PREFIX = "attachments/"
ARTIFACTS_PREFIX = "artifacts/"
_CIRCUIT = "circuit.yaml"
_STDOUT = "stdout.log"
_STDERR = "stderr.log"
_TEMPORARY_SUFFIX = ".tmp"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_HASHES_KEPT = 256
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class ArtifactError(Exception):
    """A download that cannot be served; the message says why, in words."""


class ArtifactNotFoundError(ArtifactError):
    """No artefact of that name (NOT_FOUND)."""


class ArtifactNotReadyError(ArtifactError):
    """The recording of a job that has not ended (FAILED_PRECONDITION)."""


class OffsetOutOfRangeError(ArtifactError):
    """An offset past the end of the artefact (OUT_OF_RANGE)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """One entry of ``ListArtifacts``."""

    name: str
    size_bytes: int
    """-1: made when first downloaded (the zipped recording)."""
    media_type: str
    description: str


# --- names and safe opening ---------------------------------------------------------------------


def _parts_below(relative: str) -> list[str] | None:
    """The parts of a relative, normalized path below a folder (``None``: not one)."""
    parts = relative.split("/")
    if not relative or "\0" in relative or any(p in ("", ".", "..") for p in parts):
        return None
    return parts


def _parts_of(name: str) -> list[str] | None:
    """Where artefact ``name`` lies in the job's folder, as path parts (``None``: nowhere)."""
    if name in (_CIRCUIT, _STDOUT, _STDERR):
        return [name]
    if name.startswith(ATTACHMENTS_PREFIX):
        relative = name.removeprefix(ATTACHMENTS_PREFIX)
        return None if attachment_path_problem(relative) is not None else relative.split("/")
    if name.startswith(ARTIFACTS_PREFIX):
        parts = _parts_below(name.removeprefix(ARTIFACTS_PREFIX))
        return None if parts is None else [ARTIFACTS_PREFIX.rstrip("/"), *parts]
    return None


def _open_below(folder: Path, parts: Sequence[str]) -> int:
    """A descriptor of the regular file ``folder/parts...``, reached without following any
    symbolic link; :class:`ArtifactNotFoundError` if there is none."""
    try:
        current = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        raise ArtifactNotFoundError("the job's folder is gone") from None
    try:
        for part in parts[:-1]:
            opened = os.open(part, _OPEN_FLAGS | os.O_DIRECTORY, dir_fd=current)
            os.close(current)
            current = opened
        fd = os.open(parts[-1], _OPEN_FLAGS, dir_fd=current)
    except OSError:  # ENOENT, ENOTDIR, ELOOP (a link), EACCES
        raise ArtifactNotFoundError("no such file in the job's folder") from None
    finally:
        os.close(current)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArtifactNotFoundError("not a file")
    return fd


def _regular_files(folder: Path, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, int]]:
    """``(relative path, size)`` of every regular file below ``folder`` (links are neither
    followed nor listed), sorted; top-level names in ``skip`` are left out."""
    found: list[tuple[str, int]] = []
    stack = [(folder, "")]
    while stack:
        where, prefix = stack.pop()
        try:
            entries = list(os.scandir(where))
        except OSError:
            continue
        for entry in entries:
            if not prefix and entry.name in skip:
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), f"{prefix}{entry.name}/"))
                elif entry.is_file(follow_symlinks=False):
                    found.append((prefix + entry.name, entry.stat(follow_symlinks=False).st_size))
    return iter(sorted(found))


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def _size(path: Path) -> int | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _media_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


# --- made on first request ----------------------------------------------------------------------


def _write_atomically(target: Path, write: Any) -> None:
    """``write(path)`` into a temporary file beside ``target``, flushed, then renamed to it."""
    target.parent.mkdir(mode=0o750, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f"{target.name}.", suffix=_TEMPORARY_SUFFIX, dir=target.parent
    )
    os.close(fd)
    temporary = Path(name)
    try:
        write(temporary)
        with temporary.open("rb") as fh:
            os.fsync(fh.fileno())
        temporary.chmod(0o640)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def zip_store(store: Path, target: Path) -> None:
    """Write the Zarr store folder ``store`` as the zip ``target`` (atomically): every regular
    file, by its path inside the store, sorted, uncompressed, with a fixed date."""

    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for relative, size in _regular_files(store):
                entry = zipfile.ZipInfo(relative, date_time=_ZIP_DATE)
                entry.external_attr = 0o644 << 16
                entry.file_size = size  # lets zipfile choose Zip64 for members over 2 GiB
                with (store / relative).open("rb") as source, archive.open(entry, "w") as sink:
                    while block := source.read(CHUNK_BYTES):
                        sink.write(block)

    for stale in target.parent.glob(f"{target.name}.*{_TEMPORARY_SUFFIX}"):
        stale.unlink(missing_ok=True)  # left by a zip that a crash interrupted
    _write_atomically(target, write)


def _ensure_zip(job_dir: JobDir) -> None:
    target = job_dir.cache / RECORDING_ZIP
    if _size(target) is None:
        zip_store(job_dir.recording, target)


def _numpy_to_json(value: Any) -> Any:
    """A numpy scalar or array in the document as JSON's types (``json.dumps``' ``default``)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _ensure_normalized(job_dir: JobDir, job: Job) -> None:
    """Write the normalized circuit of ``job`` into the cache (once; two writers at once write
    the same bytes, and the rename makes either whole)."""
    target = job_dir.cache / NORMALIZED_CIRCUIT
    if _size(target) is not None:
        return
    from brainsim.circuit import parse_circuit
    from brainsim.circuit.overrides import with_overrides

    text = job_dir.circuit.read_text(encoding="utf-8")
    circuit = parse_circuit(text, base_dir=str(job_dir.path), memory_limit_bytes=0)
    circuit = with_overrides(circuit, duration_ms=job.duration_ms, seed=job.seed)
    content = json.dumps(circuit.document, indent=2, default=_numpy_to_json) + "\n"
    _write_atomically(target, lambda path: path.write_text(content, encoding="utf-8"))


# --- downloads ----------------------------------------------------------------------------------


class _Hashes:
    """SHA-256 of whole files, keyed by (device, inode, size, modification time)."""

    def __init__(self) -> None:
        self._known: collections.OrderedDict[tuple[int, int, int, int], str] = (
            collections.OrderedDict()
        )

    def get(self, key: tuple[int, int, int, int]) -> str | None:
        return self._known.get(key)

    def put(self, key: tuple[int, int, int, int], digest: str) -> None:
        self._known[key] = digest
        self._known.move_to_end(key)
        while len(self._known) > _HASHES_KEPT:
            self._known.popitem(last=False)


def _hash_prefix(fd: int, length: int) -> Any:
    hasher = hashlib.sha256()
    position = 0
    while position < length:
        block = os.pread(fd, min(CHUNK_BYTES, length - position), position)
        if not block:
            raise OSError(f"the file ended at byte {position}, before {length}")
        hasher.update(block)
        position += len(block)
    return hasher


class Download:
    """One artefact opened for download: :attr:`size` fixed when opened (a log that grows
    meanwhile is sent as it was), chunks from :attr:`offset`. Call :meth:`close` when done."""

    def __init__(self, fd: int, offset: int, hashes: _Hashes) -> None:
        info = os.fstat(fd)
        self._fd = fd
        self._hashes = hashes
        self._key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        self.size = info.st_size
        self.offset = offset
        if offset > self.size:
            self.close()
            raise OffsetOutOfRangeError(f"offset {offset} is past the end ({self.size} bytes)")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    async def chunks(self) -> AsyncIterator[tuple[int, bytes, str]]:
        """``(offset, data, sha256)``: at most :data:`CHUNK_BYTES` each, the SHA-256 of the
        whole artefact in the last one only (one empty chunk when ``offset == size``)."""
        known = self._hashes.get(self._key)
        hasher = None
        if known is None:
            hasher = await asyncio.to_thread(_hash_prefix, self._fd, self.offset)
        position = self.offset
        while True:
            length = min(CHUNK_BYTES, self.size - position)
            data = await asyncio.to_thread(os.pread, self._fd, length, position) if length else b""
            if len(data) != length:
                raise OSError(f"the file ended at byte {position + len(data)}, before {self.size}")
            last = position + length >= self.size
            digest = ""
            if hasher is not None:
                hasher.update(data)
                if last:
                    digest = hasher.hexdigest()
                    self._hashes.put(self._key, digest)
            elif last:
                digest = known or ""
            yield position, data, digest
            position += length
            if last:
                return


class JobResults:
    """The artefacts of jobs under one data root (one per server: it holds the zips under way
    and the known hashes)."""

    def __init__(self, data_root: DataRoot) -> None:
        self._data_root = data_root
        self._zipping: dict[str, asyncio.Future[None]] = {}
        self._hashes = _Hashes()

    async def _recording_zip(self, job: Job) -> None:
        """Make the job's zipped recording unless it is there; one zip per job at a time."""
        pending = self._zipping.get(job.job_id)
        if pending is None:
            job_dir = self._data_root.job(job.job_id)
            pending = asyncio.ensure_future(asyncio.to_thread(_ensure_zip, job_dir))
            self._zipping[job.job_id] = pending

            def done(future: asyncio.Future[None]) -> None:
                if self._zipping.get(job.job_id) is future:
                    del self._zipping[job.job_id]
                if not future.cancelled() and future.exception() is not None:
                    log.error(
                        "job %s: zipping the recording failed: %r", job.job_id, future.exception()
                    )

            pending.add_done_callback(done)
        # A caller that goes away does not stop the zip: the next one uses it.
        await asyncio.shield(pending)

    def _listing(self, job: Job) -> list[ArtifactInfo]:
        job_dir = self._data_root.job(job.job_id)
        found: list[ArtifactInfo] = []
        if job.state.terminal and _is_real_dir(job_dir.recording):
            size = _size(job_dir.cache / RECORDING_ZIP)
            found.append(
                ArtifactInfo(
                    RECORDING_ZIP,
                    -1 if size is None else size,
                    "application/zip",
                    "the recording: the Zarr v3 store as one zip (zarr.storage.ZipStore opens it)",
                )
            )
        size = _size(job_dir.circuit)
        if size is not None:
            found.append(
                ArtifactInfo(_CIRCUIT, size, "application/yaml", "the circuit as submitted")
            )
        try:
            _ensure_normalized(job_dir, job)
        except Exception as exc:  # a circuit this version cannot read: list the rest
            log.warning("job %s: no normalized circuit: %r", job.job_id, exc)
        size = _size(job_dir.cache / NORMALIZED_CIRCUIT)
        if size is not None:
            found.append(
                ArtifactInfo(
                    NORMALIZED_CIRCUIT,
                    size,
                    "application/json",
                    "the circuit as the run used it: defaults filled in, the job's duration "
                    "and seed",
                )
            )
        for name, what in ((_STDOUT, "standard output"), (_STDERR, "standard error")):
            size = _size(job_dir.path / name)
            if size is not None:
                found.append(
                    ArtifactInfo(name, size, "text/plain", f"the simulator's {what} (every run)")
                )
        for relative, size in _regular_files(job_dir.path, JOB_FILES):
            found.append(
                ArtifactInfo(
                    ATTACHMENTS_PREFIX + relative,
                    size,
                    _media_type(relative),
                    "a file attached to the circuit",
                )
            )
        if _is_real_dir(job_dir.artifacts):
            for relative, size in _regular_files(job_dir.artifacts):
                found.append(
                    ArtifactInfo(
                        ARTIFACTS_PREFIX + relative,
                        size,
                        _media_type(relative),
                        "a compiled artefact of the target",
                    )
                )
        return found

    async def list(self, job: Job) -> list[ArtifactInfo]:
        """What ``job`` offers, in a fixed order (the recording only once the job has ended)."""
        return await asyncio.to_thread(self._listing, job)

    async def open(self, job: Job, name: str, offset: int) -> Download:
        """Artefact ``name`` of ``job`` from byte ``offset`` (>= 0), made first if needed."""
        job_dir = self._data_root.job(job.job_id)
        if name == RECORDING_ZIP:
            if not job.state.terminal:
                raise ArtifactNotReadyError(
                    f"job {job.job_id} has not ended: its recording is zipped for download once "
                    f"it has (while it runs, read it at its recording URI)"
                )
            if not await asyncio.to_thread(_is_real_dir, job_dir.recording):
                raise ArtifactNotFoundError(f"job {job.job_id} has no recording (no run wrote one)")
            await self._recording_zip(job)
            parts = [job_dir.cache.name, RECORDING_ZIP]
        elif name == NORMALIZED_CIRCUIT:
            try:
                await asyncio.to_thread(_ensure_normalized, job_dir, job)
            except Exception as exc:
                log.warning("job %s: no normalized circuit: %r", job.job_id, exc)
                raise ArtifactNotFoundError(
                    f"job {job.job_id}: the circuit cannot be normalized by this server"
                ) from None
            parts = [job_dir.cache.name, NORMALIZED_CIRCUIT]
        else:
            found = _parts_of(name)
            if found is None:
                raise ArtifactNotFoundError(f"job {job.job_id} has no artefact {name!r}")
            parts = found
        try:
            fd = await asyncio.to_thread(_open_below, job_dir.path, parts)
        except ArtifactNotFoundError:
            raise ArtifactNotFoundError(f"job {job.job_id} has no artefact {name!r}") from None
        return Download(fd, offset, self._hashes)
