"""The SQLite job store: durable upserts, append-only event log, listing and paging."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from services.jobs import Job, JobState, Target
from services.store import JobStore, PageKey


def make_job(job_id: str, submit_time: float, owner: str = "alice", **changes: object) -> Job:
    job = Job(
        job_id=job_id,
        owner=owner,
        target=Target.SLURM,
        n_ranks=3,
        circuit_name="tiny",
        duration_ms=50.0,
        seed=2**62,
        submit_time=submit_time,
    )
    return dataclasses.replace(job, **changes)


async def _roundtrip(path: Path) -> None:
    store = await JobStore.open(path)
    first = make_job("a" * 12, 1.0, time_limit_s=90.0, slurm_partition="debug")
    await store.write([(first, "submitted", {"n_ranks": 3}, 1.0)])
    running = dataclasses.replace(
        first, state=JobState.RUNNING, start_time=2.0, external_id="55", cancel_requested=True
    )
    await store.write([(running, "started", {}, 2.0)])
    await store.close()

    reopened = await JobStore.open(path)
    assert await reopened.get(first.job_id) == running
    assert await reopened.get("b" * 12) is None
    assert await reopened.active() == [running]
    events = await reopened.events(first.job_id)
    assert [(e.kind, e.detail, e.at) for e in events] == [
        ("submitted", {"n_ranks": 3}, 1.0),
        ("started", {}, 2.0),
    ]
    assert events[0].seq < events[1].seq
    await reopened.close()


def test_jobs_and_events_survive_reopening(tmp_path: Path) -> None:
    asyncio.run(_roundtrip(tmp_path / "jobs.sqlite3"))


def test_database_is_in_wal_mode_and_the_event_log_is_append_only(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"

    async def create() -> None:
        store = await JobStore.open(path)
        await store.write([(make_job("c" * 12, 1.0), "submitted", {}, 1.0)])
        await store.close()

    asyncio.run(create())
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE events SET kind = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM events")
    db.close()


def test_a_failed_batch_writes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await JobStore.open(tmp_path / "jobs.sqlite3")
        good = make_job("d" * 12, 1.0)
        unstorable = make_job("e" * 12, 1.0, seed=2**64)  # beyond SQLite's INTEGER
        with pytest.raises(OverflowError):
            await store.write([(good, "submitted", {}, 1.0), (unstorable, "submitted", {}, 1.0)])
        assert await store.get(good.job_id) is None
        assert await store.events(good.job_id) == []
        await store.close()

    asyncio.run(scenario())


def test_listing_is_per_owner_newest_first_filtered_and_paged(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await JobStore.open(tmp_path / "jobs.sqlite3")
        jobs = [
            make_job(
                f"{i:012x}", float(i // 2), state=JobState.SUCCEEDED if i % 3 else JobState.QUEUED
            )
            for i in range(10)
        ]
        other = make_job("f" * 12, 100.0, owner="bob")
        await store.write([(job, "submitted", {}, 0.0) for job in [*jobs, other]])
        newest_first = sorted(jobs, key=lambda j: (j.submit_time, j.job_id), reverse=True)

        listed = await store.list_jobs("alice", frozenset(), 100, None)
        assert listed == newest_first
        queued = await store.list_jobs("alice", frozenset({JobState.QUEUED}), 100, None)
        assert [j.job_id for j in queued] == [
            j.job_id for j in newest_first if j.state is JobState.QUEUED
        ]

        pages: list[Job] = []
        after = None
        while True:
            page = await store.list_jobs("alice", frozenset(), 3, after)
            pages += page
            if len(page) < 3:
                break
            after = PageKey(page[-1].submit_time, page[-1].job_id)
        assert pages == newest_first  # ties in submit_time are split by job id, none lost
        assert await store.list_jobs("bob", frozenset(), 10, None) == [other]
        await store.close()

    asyncio.run(scenario())
