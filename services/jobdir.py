"""Where a job's files live under the server's data root, and reading what the simulator left there.

Layout (nothing a client sends becomes part of a path; job ids are checked against
:data:`JOB_ID_PATTERN` before they name a folder)::

    <data_root>/jobs.sqlite3                 the job store
    <data_root>/server.lock                  held by the one server using this data root
    <data_root>/incoming/submit-*/           submissions being checked (see below)
    <data_root>/deleting/<job_id>/           folders of deleted jobs being removed
                                             (:mod:`services.deletion`)
    <data_root>/jobs/<job_id>/circuit.yaml   the submitted document, as received
                             recording.zarr  the recording (written by the simulator)
                             stdout.log      progress lines (JSON) and other output
                             stderr.log      errors
                             launch.json     local launcher: pid and start time of mpiexec
                             job.sbatch      Slurm launcher: the rendered batch script
                             artifacts/      compiled artefacts of neuromorphic targets
                             .cache/         results made for downloads (the zipped recording)
                             <attachments>   the files the circuit names (SubmitJob attachments)

Attachments are the one exception to the rule above: their paths come from the client, so they
are checked first (:func:`attachment_path_problem`: relative, normalized, never one of the
names above nor inside one) and written by :func:`write_files`, which creates every folder and
file itself and follows no symbolic link. A submission is assembled in a fresh folder under
``incoming/`` (the attachments, then ``circuit.yaml``) where the circuit is validated against
its files, and becomes the job's folder by one ``rename``: a job's folder is complete or absent,
and a refused or ``validate_only`` submission leaves nothing. ``incoming/`` is emptied when a
server starts (:meth:`DataRoot.clear_incoming`: leftovers of a crash).

The recording's status is read from the root ``zarr.json`` of the store (Zarr v3 keeps a group's
attributes there), so the service needs no zarr import to reconcile jobs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "JOB_FILES",
    "JOB_ID_PATTERN",
    "MAX_PATH_CHARS",
    "MAX_PATH_PART_BYTES",
    "DataRoot",
    "JobDir",
    "RecordingStatus",
    "attachment_path_problem",
    "checkpoint_time_ms",
    "ended_at",
    "read_recording_status",
    "remove_tree",
    "write_files",
]

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{12}")
"""Server-assigned job ids: 12 lowercase hex digits."""

_CIRCUIT = "circuit.yaml"
_RECORDING = "recording.zarr"
_STDOUT = "stdout.log"
_STDERR = "stderr.log"
_LAUNCH_INFO = "launch.json"
_BATCH_SCRIPT = "job.sbatch"
_ARTIFACTS = "artifacts"
_CACHE = ".cache"
_CREDENTIALS = "credentials.json"

JOB_FILES = frozenset(
    {
        _CIRCUIT,
        _RECORDING,
        _STDOUT,
        _STDERR,
        _LAUNCH_INFO,
        _BATCH_SCRIPT,
        _ARTIFACTS,
        _CACHE,
        _CREDENTIALS,
    }
)
"""The names the service and the simulator use in a job's folder (no attachment may)."""

MAX_PATH_CHARS = 1024
"""Longest attachment path, in characters."""
MAX_PATH_PART_BYTES = 255
"""Longest name of one folder or file of an attachment path, in bytes (UTF-8): the file
systems' limit."""

_FILE_MODE = 0o640
_FOLDER_MODE = 0o750


@dataclass(frozen=True, slots=True)
class JobDir:
    """The files of one job."""

    path: Path

    @property
    def circuit(self) -> Path:
        return self.path / _CIRCUIT

    @property
    def recording(self) -> Path:
        return self.path / _RECORDING

    @property
    def stdout(self) -> Path:
        return self.path / _STDOUT

    @property
    def stderr(self) -> Path:
        return self.path / _STDERR

    @property
    def launch_info(self) -> Path:
        return self.path / _LAUNCH_INFO

    @property
    def batch_script(self) -> Path:
        return self.path / _BATCH_SCRIPT

    @property
    def artifacts(self) -> Path:
        """Compiled artefacts of neuromorphic targets (any files below it are downloadable)."""
        return self.path / _ARTIFACTS

    @property
    def credentials(self) -> Path:
        """A remote target's credentials while the job is active (mode 0600, never served,
        removed when the job ends): the EBRAINS token and collab."""
        return self.path / _CREDENTIALS

    @property
    def cache(self) -> Path:
        """What the service makes from a job's results when they are first downloaded."""
        return self.path / _CACHE


@dataclass(frozen=True, slots=True)
class DataRoot:
    """The one folder the server writes to; every job folder is inside it."""

    path: Path
    """Absolute, resolved."""
    uri_base: str = ""
    """Prefix of recording URIs instead of ``file://<path>`` (e.g. where clients mount it)."""

    @classmethod
    def create(cls, path: Path, uri_base: str = "") -> DataRoot:
        """Make the folder (and ``jobs/``, ``incoming/``) if needed; resolve symbolic links once,
        here."""
        resolved = path.expanduser().resolve()
        (resolved / "jobs").mkdir(parents=True, exist_ok=True)
        (resolved / "incoming").mkdir(mode=0o700, exist_ok=True)
        return cls(resolved, uri_base.rstrip("/"))

    @property
    def database(self) -> Path:
        return self.path / "jobs.sqlite3"

    @property
    def incoming(self) -> Path:
        """Where submissions are assembled before they become a job's folder."""
        return self.path / "incoming"

    def new_submission(self) -> Path:
        """A fresh, empty, private folder under :attr:`incoming` (on the file system of
        ``jobs/``, so that ``rename`` can make it a job's folder)."""
        return Path(tempfile.mkdtemp(prefix="submit-", dir=self.incoming))

    def clear_incoming(self) -> None:
        """Remove what submissions of an earlier server left under :attr:`incoming` (only while
        no submission of this server is under way: at start, holding the data root's lock)."""
        with os.scandir(self.incoming) as entries:
            for entry in entries:
                remove_tree(Path(entry.path))

    def job(self, job_id: str) -> JobDir:
        """The folder of ``job_id``; ``ValueError`` for anything that is not a job id."""
        if not JOB_ID_PATTERN.fullmatch(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return JobDir(self.path / "jobs" / job_id)

    def recording_uri(self, job_id: str) -> str:
        """Where clients find the job's recording."""
        recording = self.job(job_id).recording
        if self.uri_base:
            return f"{self.uri_base}/{recording.relative_to(self.path).as_posix()}"
        return recording.as_uri()


def attachment_path_problem(path: str) -> str | None:
    """What is wrong with ``path`` as the place of an attached file in a job's folder
    (``None``: nothing).

    It must be relative and normalized, with ``/`` between folders: no leading ``/``, no ``.``,
    ``..`` or empty part, no backslash, NUL or other control character, at most
    :data:`MAX_PATH_CHARS` characters and :data:`MAX_PATH_PART_BYTES` bytes per part, and its first
    part must not be one of :data:`JOB_FILES`.
    """
    if not path:
        return "is empty"
    if len(path) > MAX_PATH_CHARS:
        return f"is {len(path)} characters long, at most {MAX_PATH_CHARS} allowed"
    if "\0" in path:
        return "contains a NUL character"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return f"contains a control character: {path!r}"
    if "\\" in path:
        return f"contains a backslash: separate folders with '/', got {path!r}"
    if path.startswith("/"):
        return f"must be relative to the circuit's folder, got the absolute path {path!r}"
    parts = path.split("/")
    if ".." in parts:
        return f"must not contain '..' (it would lead out of the job's folder): {path!r}"
    if "." in parts or "" in parts:
        return f"must be normalized (no '.' or empty parts, no trailing '/'): {path!r}"
    if any(len(part.encode("utf-8")) > MAX_PATH_PART_BYTES for part in parts):
        return f"has a part longer than {MAX_PATH_PART_BYTES} bytes"
    if parts[0] in JOB_FILES:
        return f"{parts[0]!r} is the server's own file in the job's folder; choose another name"
    return None


def write_files(folder: Path, files: Iterable[tuple[str, bytes]]) -> None:
    """Write each ``(relative path, content)`` under ``folder``, creating the folders between.

    The paths must have passed :func:`attachment_path_problem` and be distinct, none inside
    another. Every folder and file is created here and opened without following symbolic links
    (``O_NOFOLLOW``, relative to the folder above it), and files are created exclusively
    (``O_EXCL``): nothing is written outside ``folder`` or over what is there, whatever the
    names; ``OSError`` otherwise (``ValueError`` for an absolute path or a ``.``, ``..`` or
    empty part). Files are flushed to disk (``fsync``) before this returns.
    """
    root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for relative, content in files:
            *folders, name = parts = relative.split("/")
            if any(part in ("", ".", "..") for part in parts):  # checked before; never trusted
                raise ValueError(f"not a normalized relative path: {relative!r}")
            parent = root
            try:
                for part in folders:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, _FOLDER_MODE, dir_fd=parent)
                    opened = os.open(
                        part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent
                    )
                    if parent != root:
                        os.close(parent)
                    parent = opened
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(name, flags, _FILE_MODE, dir_fd=parent)
                try:
                    view = memoryview(content)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
            finally:
                if parent != root:
                    os.close(parent)
    finally:
        os.close(root)


def remove_tree(path: Path) -> None:
    """Remove a folder and everything in it (links themselves, never what they point to);
    nothing happens if it does not exist."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)


@dataclass(frozen=True, slots=True)
class RecordingStatus:
    """The ``brainsim`` root attributes the service cares about."""

    status: str
    """``running``, ``complete``, ``failed`` or ``cancelled``."""
    simulated_ms: float
    """Simulated time written so far, in ms."""
    end_time: float | None = None
    """When the run closed the store (``provenance.end_time``), epoch s; ``None`` while it
    runs, or if the run died without closing it."""


def _epoch(iso: object) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def read_recording_status(store: Path) -> RecordingStatus | None:
    """The status written in a recording store, or ``None`` if there is no readable one."""
    try:
        meta = json.loads((store / "zarr.json").read_text(encoding="utf-8"))
        attrs = meta["attributes"]["brainsim"]
        provenance = attrs.get("provenance") or {}
        return RecordingStatus(
            str(attrs["status"]),
            float(attrs.get("simulated_ms", 0.0)),
            _epoch(provenance.get("end_time")) if isinstance(provenance, dict) else None,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def ended_at(job_dir: JobDir, earliest: float, now: float) -> float:
    """When a job that ended unobserved (while no server followed it) most likely ended: the
    end time its recording gives, else when its output files (logs, the recording's root
    metadata) last changed, else ``now``; never before ``earliest`` nor after ``now``."""
    recorded = read_recording_status(job_dir.recording)
    moment = recorded.end_time if recorded is not None else None
    if moment is None:
        times = []
        for path in (job_dir.stdout, job_dir.stderr, job_dir.recording / "zarr.json"):
            with contextlib.suppress(OSError):
                times.append(path.stat().st_mtime)
        moment = max(times, default=now)
    return min(max(moment, earliest), now)


def checkpoint_time_ms(store: Path) -> float | None:
    """The simulated time of the store's last complete checkpoint (``None``: none, or no
    store). Imports the recording package (zarr) only when the store has a checkpoint folder."""
    if not any((store / name).is_dir() for name in _CHECKPOINT_FOLDERS):
        return None
    from brainsim.recording.checkpoint import latest_checkpoint

    found = latest_checkpoint(store)
    return None if found is None else found.time_ms


_CHECKPOINT_FOLDERS = ("checkpoint", "checkpoint.next", "checkpoint.old")
"""Where :func:`brainsim.recording.checkpoint.latest_checkpoint` looks in a store."""
