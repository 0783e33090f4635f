"""The durable job store: one SQLite database (WAL) with the jobs and their append-only event log.

Every write is one transaction holding any number of (job, event) pairs, so the shell can commit
a whole batch of state changes at once (group commit). SQLite calls block, so they all run on one
dedicated thread that owns the connection; the async methods hand work to it and await the result,
and the event loop never waits on the disk.

Tables: ``jobs`` (one row per job, the latest state; columns are the fields of
:class:`services.jobs.Job`) and ``events`` (``seq, job_id, at, kind, detail``), which triggers keep
append-only. ``synchronous=FULL`` makes a commit survive a power loss, not only a server crash.

Deleting a job (``DeleteJob``, the retention policy) is the one way rows leave: one transaction
records the job in ``deletions`` (``job_id, at, reason``), then removes its row and its events
(the trigger lets events go only of a job listed there); its folder is removed after that
commit and the ``deletions`` row last (:meth:`JobStore.end_deletion`), so a server that stops in
between finds the removal still to do when it starts (:meth:`JobStore.pending_deletions`).

Schema versions: 1 (the first), 2 (retries and checkpoints: ``_ADDED_IN_2``), 3 (resource use:
``_ADDED_IN_3``; ``deletions``; the events' delete trigger). An older store is brought up to
date when it is opened, in one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from services.jobs import Job, JobState, Target

__all__ = ["EventRecord", "JobNotEndedError", "JobStore", "PageKey", "UnknownJobError"]

_T = TypeVar("_T")

SCHEMA_VERSION = 3

_ADDED_IN_2 = (
    "checkpoint_every_ms REAL",
    "max_retries INTEGER NOT NULL DEFAULT 0",
    "attempt INTEGER NOT NULL DEFAULT 1",
    "segment INTEGER NOT NULL DEFAULT 1",
    "resume_from_ms REAL",
)
"""Columns of schema 2 (retries and checkpoints); a version-1 store gets them on opening."""

_ADDED_IN_3 = (
    "cpu_s REAL NOT NULL DEFAULT 0",
    "peak_rank_memory_bytes INTEGER NOT NULL DEFAULT 0",
    "peak_memory_bytes INTEGER NOT NULL DEFAULT 0",
    "counted_runs TEXT NOT NULL DEFAULT '[]'",
    "store_bytes INTEGER",
)
"""Columns of schema 3 (resource use); older stores get them on opening."""

_TERMINAL = "('SUCCEEDED', 'FAILED', 'CANCELLED')"

_COLUMNS = tuple(f.name for f in dataclasses.fields(Job))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    target TEXT NOT NULL,
    n_ranks INTEGER NOT NULL,
    circuit_name TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    seed INTEGER NOT NULL,
    submit_time REAL NOT NULL,
    state TEXT NOT NULL,
    start_time REAL,
    end_time REAL,
    simulated_ms REAL NOT NULL,
    reason TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL,
    external_id TEXT NOT NULL,
    time_limit_s REAL,
    slurm_partition TEXT NOT NULL,
    slurm_account TEXT NOT NULL,
    checkpoint_every_ms REAL,
    max_retries INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 1,
    segment INTEGER NOT NULL DEFAULT 1,
    resume_from_ms REAL,
    cpu_s REAL NOT NULL DEFAULT 0,
    peak_rank_memory_bytes INTEGER NOT NULL DEFAULT 0,
    peak_memory_bytes INTEGER NOT NULL DEFAULT 0,
    counted_runs TEXT NOT NULL DEFAULT '[]',
    store_bytes INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, submit_time DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (state) WHERE state IN ('QUEUED', 'RUNNING');
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TABLE IF NOT EXISTS deletions (
    job_id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
WHEN OLD.job_id NOT IN (SELECT job_id FROM deletions)
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"""

_UPSERT = (
    f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    f"ON CONFLICT (job_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[1:])
)


class UnknownJobError(LookupError):
    """No job with this id (of this owner)."""


class JobNotEndedError(RuntimeError):
    """The job is queued or running."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of a job's event log."""

    seq: int
    """Position in the whole log (ascending, never reused)."""
    job_id: str
    at: float
    """When it was written (epoch s)."""
    kind: str
    """What happened: ``submitted``, ``launched``, ``started``, ``cancel_requested``,
    ``recovered``, ``retrying`` (a failed run is started again), ``continuing`` (a run that
    stopped at a checkpoint, e.g. before a Slurm time limit, is resumed) or ``finished``."""
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PageKey:
    """Where a listing continues: after this (submit_time, job_id), newest first."""

    submit_time: float
    job_id: str


def _to_row(job: Job) -> tuple[Any, ...]:
    values: list[Any] = []
    for name in _COLUMNS:
        value = getattr(job, name)
        if isinstance(value, JobState | Target):
            value = value.value
        elif isinstance(value, bool):
            value = int(value)
        elif isinstance(value, tuple):
            value = json.dumps(list(value))
        values.append(value)
    return tuple(values)


def _from_row(row: Sequence[Any]) -> Job:
    fields = dict(zip(_COLUMNS, row, strict=True))
    fields["state"] = JobState(fields["state"])
    fields["target"] = Target(fields["target"])
    fields["cancel_requested"] = bool(fields["cancel_requested"])
    fields["counted_runs"] = tuple(json.loads(fields["counted_runs"]))
    return Job(**fields)


class JobStore:
    """The SQLite job store; create with :meth:`open`, end with :meth:`close`."""

    def __init__(self, executor: ThreadPoolExecutor, connection: sqlite3.Connection) -> None:
        self._executor = executor
        self._db = connection
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> JobStore:
        """Open (creating if needed) the database at ``path``."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobstore")

        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA busy_timeout = 5000")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, 2, SCHEMA_VERSION):
                db.close()
                raise RuntimeError(
                    f"{path}: job store schema version {version}, expected {SCHEMA_VERSION}"
                )
            with db:
                db.execute("BEGIN IMMEDIATE")
                if version in (1, 2):
                    added = (*(_ADDED_IN_2 if version == 1 else ()), *_ADDED_IN_3)
                    for column in added:
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {column}")
                    # Recreated by the schema below with its exception for deleted jobs.
                    db.execute("DROP TRIGGER IF EXISTS events_no_delete")
                for statement in _SCHEMA.split(";\n"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return db

        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, connection)

    async def _call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work, self._db)

    async def close(self) -> None:
        """Close the connection and stop the store's thread (again: nothing happens)."""
        if self._closed:
            return
        self._closed = True
        await self._call(lambda db: db.close())
        self._executor.shutdown(wait=True)

    async def write(self, entries: Iterable[tuple[Job, str, Mapping[str, Any], float]]) -> None:
        """Save each job and append its ``(kind, detail)`` event at time ``at``, atomically."""
        rows = [
            (_to_row(job), (job.job_id, at, kind, json.dumps(detail)))
            for job, kind, detail, at in entries
        ]

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                for job_row, event_row in rows:
                    db.execute(_UPSERT, job_row)
                    db.execute(
                        "INSERT INTO events (job_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                        event_row,
                    )

        await self._call(write)

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or ``None``."""

        def get(db: sqlite3.Connection) -> Job | None:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,))
            found = row.fetchone()
            return None if found is None else _from_row(found)

        return await self._call(get)

    async def _jobs_where(self, condition: str, order: str) -> list[Job]:
        """The jobs whose row meets the SQL ``condition``, in the SQL ``order``."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE {condition} ORDER BY {order}"
        return await self._call(lambda db: [_from_row(r) for r in db.execute(query)])

    async def active(self) -> list[Job]:
        """Every queued or running job, oldest first."""
        return await self._jobs_where("state IN ('QUEUED', 'RUNNING')", "submit_time, job_id")

    async def list_jobs(
        self, owner: str, states: frozenset[JobState], limit: int, after: PageKey | None
    ) -> list[Job]:
        """``owner``'s jobs in ``states`` (all if empty), newest first, at most ``limit``."""
        where = ["owner = ?"]
        params: list[Any] = [owner]
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            params += sorted(s.value for s in states)
        if after is not None:
            where.append("(submit_time < ? OR (submit_time = ? AND job_id < ?))")
            params += [after.submit_time, after.submit_time, after.job_id]
        query = (
            f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE {' AND '.join(where)} "
            "ORDER BY submit_time DESC, job_id DESC LIMIT ?"
        )
        params.append(limit)
        return await self._call(lambda db: [_from_row(r) for r in db.execute(query, params)])

    async def ended(self) -> list[Job]:
        """Every job that has ended, oldest end first."""
        return await self._jobs_where(f"state IN {_TERMINAL}", "end_time, job_id")

    async def set_store_bytes(self, sizes: Mapping[str, int]) -> None:
        """Record the folder sizes of ended jobs (measured after the fact)."""

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    f"UPDATE jobs SET store_bytes = ? WHERE job_id = ? AND state IN {_TERMINAL}",
                    [(size, job_id) for job_id, size in sizes.items()],
                )

        await self._call(write)

    async def begin_deletion(self, job_id: str, owner: str | None, reason: str, at: float) -> Job:
        """Delete the job's row and events and list it in ``deletions`` (one transaction);
        returns the job as it was. :class:`UnknownJobError` if there is none (or it is not
        ``owner``'s, when given), :class:`JobNotEndedError` if it has not ended (nothing changes).
        The caller removes the job's folder, then calls :meth:`end_deletion`."""

        def begin(db: sqlite3.Connection) -> Job:
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,)
                ).fetchone()
                job = None if row is None else _from_row(row)
                if job is None or (owner is not None and job.owner != owner):
                    raise UnknownJobError(job_id)
                if not job.state.terminal:
                    raise JobNotEndedError(job_id)
                db.execute(
                    "INSERT OR REPLACE INTO deletions (job_id, at, reason) VALUES (?, ?, ?)",
                    (job_id, at, reason),
                )
                db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
                return job

        return await self._call(begin)

    async def end_deletion(self, job_id: str) -> None:
        """The job's folder is gone: forget the deletion."""

        def end(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM deletions WHERE job_id = ?", (job_id,))

        await self._call(end)

    async def pending_deletions(self) -> list[str]:
        """Jobs deleted from the store whose folders may still be there (oldest first)."""
        return await self._call(
            lambda db: [r[0] for r in db.execute("SELECT job_id FROM deletions ORDER BY at")]
        )

    async def events(self, job_id: str) -> list[EventRecord]:
        """The job's event log, in order."""

        def events(db: sqlite3.Connection) -> list[EventRecord]:
            rows = db.execute(
                "SELECT seq, job_id, at, kind, detail FROM events WHERE job_id = ? ORDER BY seq",
                (job_id,),
            )
            return [EventRecord(s, j, a, k, json.loads(d)) for s, j, a, k, d in rows]

        return await self._call(events)
