"""Where a job's files live under the server's data root, and reading what the simulator left there.

Layout (nothing a client sends becomes part of a path; job ids are checked against
:data:`JOB_ID_PATTERN` before they name a folder)::

    <data_root>/jobs.sqlite3                 the job store
    <data_root>/server.lock                  held by the one server using this data root
    <data_root>/jobs/<job_id>/circuit.yaml   the submitted document, as received
                             recording.zarr  the recording (written by the simulator)
                             stdout.log      progress lines (JSON) and other output
                             stderr.log      errors
                             launch.json     local launcher: pid and start time of mpiexec
                             job.sbatch      Slurm launcher: the rendered batch script

The recording's status is read from the root ``zarr.json`` of the store (Zarr v3 keeps a group's
attributes there), so the service needs no zarr import to reconcile jobs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JOB_ID_PATTERN", "DataRoot", "JobDir", "RecordingStatus", "read_recording_status"]

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{12}")
"""Server-assigned job ids: 12 lowercase hex digits."""


@dataclass(frozen=True, slots=True)
class JobDir:
    """The files of one job."""

    path: Path

    @property
    def circuit(self) -> Path:
        return self.path / "circuit.yaml"

    @property
    def recording(self) -> Path:
        return self.path / "recording.zarr"

    @property
    def stdout(self) -> Path:
        return self.path / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.path / "stderr.log"

    @property
    def launch_info(self) -> Path:
        return self.path / "launch.json"

    @property
    def batch_script(self) -> Path:
        return self.path / "job.sbatch"


@dataclass(frozen=True, slots=True)
class DataRoot:
    """The one folder the server writes to; every job folder is inside it."""

    path: Path
    """Absolute, resolved."""
    uri_base: str = ""
    """Prefix of recording URIs instead of ``file://<path>`` (e.g. where clients mount it)."""

    @classmethod
    def create(cls, path: Path, uri_base: str = "") -> DataRoot:
        """Make the folder (and ``jobs/``) if needed; resolve symbolic links once, here."""
        resolved = path.expanduser().resolve()
        (resolved / "jobs").mkdir(parents=True, exist_ok=True)
        return cls(resolved, uri_base.rstrip("/"))

    @property
    def database(self) -> Path:
        return self.path / "jobs.sqlite3"

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


@dataclass(frozen=True, slots=True)
class RecordingStatus:
    """The ``brainsim`` root attributes the service cares about."""

    status: str
    """``running``, ``complete``, ``failed`` or ``cancelled``."""
    simulated_ms: float
    """Simulated time written so far, in ms."""


def read_recording_status(store: Path) -> RecordingStatus | None:
    """The status written in a recording store, or ``None`` if there is no readable one."""
    try:
        meta = json.loads((store / "zarr.json").read_text(encoding="utf-8"))
        attrs = meta["attributes"]["brainsim"]
        return RecordingStatus(str(attrs["status"]), float(attrs.get("simulated_ms", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
