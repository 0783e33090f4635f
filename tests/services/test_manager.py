"""The async shell around the state machine: persistence before effects, watchers, recovery.

A recording launcher stands in for mpiexec/Slurm here (those run for real in the other tests);
it lets each test decide exactly when a job is launched and how it ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from services.config import LocalConfig
from services.jobdir import DataRoot
from services.jobs import Job, JobState, LogStream, Target
from services.launchers import LocalLauncher, procs
from services.machine import Exited, Launched, Started
from services.manager import JobManager, LogEntry, ProgressUpdate, Subscription
from services.store import JobStore


class RecordingLauncher:
    """Remembers what the manager asked for; reports nothing by itself."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @property
    def target(self) -> Target:
        return Target.LOCAL

    def unavailable_reason(self) -> str | None:
        return None

    async def launch(self, job: Job) -> None:
        self.calls.append(("launch", job.job_id))

    async def kill(self, job: Job) -> None:
        self.calls.append(("kill", job.job_id))

    async def locate(self, job: Job) -> str | None:
        self.calls.append(("locate", job.job_id))
        return "4321" if job.job_id.endswith("1") else None

    async def adopt(self, job: Job) -> None:
        self.calls.append(("adopt", job.job_id))

    async def close(self) -> None:
        self.calls.append(("close", ""))


def make_job(job_id: str, submit_time: float = 1.0) -> Job:
    return Job(job_id, "alice", Target.LOCAL, 1, "tiny", 100.0, 1, submit_time)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait for ``condition`` (the actor persists on a thread, so events take real time)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def test_subscription_drops_old_progress_and_logs_but_never_states() -> None:
    async def scenario() -> list[object]:
        subscription = Subscription(limit=3)
        job = make_job("000000000001")
        subscription.push(job)
        subscription.push(ProgressUpdate(1.0, 100.0, 0.1))
        subscription.push(LogEntry(1.0, LogStream.STDOUT, "a"))
        subscription.push(LogEntry(2.0, LogStream.STDOUT, "b"))
        subscription.push(job)
        assert subscription.dropped == 2
        return [await subscription.get() for _ in range(3)]

    items = asyncio.run(scenario())
    assert items == [
        make_job("000000000001"),
        LogEntry(2.0, LogStream.STDOUT, "b"),
        make_job("000000000001"),
    ]


def test_manager_persists_then_launches_and_follows_events(tmp_path: Path) -> None:
    async def scenario() -> None:
        data_root = DataRoot.create(tmp_path)
        store = await JobStore.open(data_root.database)
        manager = JobManager(store, data_root, max_local_jobs=1, clock=lambda: 50.0)
        launcher = RecordingLauncher()
        manager.add_launcher(launcher)
        await manager.start()
        first, second = make_job("aaaaaaaaaaa0", 1.0), make_job("aaaaaaaaaaa2", 2.0)
        watcher = manager.subscribe(first.job_id)
        assert manager.reserve("alice", limit=2)
        assert manager.reserve("alice", limit=2)
        assert not manager.reserve("alice", limit=2)  # two places held already
        await manager.submit(first, "circuit text")
        await manager.submit(second, "circuit text")
        assert manager.active_count("alice") == 2  # each place became its job, none twice
        # Acknowledged means durable, and only the first job got the slot.
        assert (await store.get(first.job_id)) == first
        assert (data_root.job(first.job_id).circuit).read_text() == "circuit text"
        await until(lambda: bool(launcher.calls))
        await asyncio.sleep(0.1)  # nothing more may happen
        assert launcher.calls == [("launch", first.job_id)]

        manager.emit(Launched(first.job_id, "77", 51.0))
        manager.emit(Started(first.job_id, 51.0))
        manager.log(first.job_id, LogStream.STDERR, "warming up")
        await manager.cancel(first.job_id, "alice")
        await until(lambda: launcher.calls[-1] == ("kill", first.job_id))
        manager.emit(Exited(first.job_id, JobState.FAILED, "killed", 52.0))
        await until(lambda: launcher.calls[-1] == ("launch", second.job_id))
        stored = await store.get(first.job_id)
        assert stored is not None
        assert stored.state is JobState.CANCELLED  # the slot then went to the next job
        assert [e.kind for e in await store.events(first.job_id)] == [
            "submitted",
            "launched",
            "started",
            "cancel_requested",
            "finished",
        ]
        updates = []
        while True:
            update = await watcher.get()
            updates.append(update)
            if isinstance(update, Job) and update.state.terminal:
                break
        states = [u.state for u in updates if isinstance(u, Job)]
        assert states[0] is JobState.QUEUED
        assert states[-1] is JobState.CANCELLED
        assert LogEntry(50.0, LogStream.STDERR, "warming up") in updates
        await manager.close()
        await store.close()

    asyncio.run(scenario())


def test_recovery_locates_unrecorded_launches(tmp_path: Path) -> None:
    async def scenario() -> None:
        data_root = DataRoot.create(tmp_path)
        store = await JobStore.open(data_root.database)
        await store.write(
            [(make_job(f"bbbbbbbbbbb{i}", float(i)), "submitted", {}, 0.0) for i in (1, 2)]
        )
        manager = JobManager(store, data_root, max_local_jobs=1)
        launcher = RecordingLauncher()
        manager.add_launcher(launcher)
        await manager.start()
        await until(lambda: len(launcher.calls) == 3)
        # Job 1 was launched before the crash (found by locate): adopted, holding the slot.
        # Job 2 never was: it waits for the slot.
        assert launcher.calls == [
            ("locate", "bbbbbbbbbbb1"),
            ("locate", "bbbbbbbbbbb2"),
            ("adopt", "bbbbbbbbbbb1"),
        ]
        adopted = manager.active_job("bbbbbbbbbbb1")
        assert adopted is not None
        assert adopted.external_id == "4321"
        await manager.close()
        await store.close()

    asyncio.run(scenario())


def test_a_cancel_requested_before_a_crash_is_carried_out_after_restart(tmp_path: Path) -> None:
    """The job's process is adopted and killed at once; the job ends CANCELLED."""
    data_root = DataRoot.create(tmp_path)
    job = dataclasses.replace(
        make_job("cccccccccccc"),
        state=JobState.RUNNING,
        start_time=1.0,
        cancel_requested=True,
        reason="cancelled by alice",
    )
    job_dir = data_root.job(job.job_id)
    job_dir.path.mkdir()
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        info = {"pid": process.pid, "start_ticks": procs.start_ticks(process.pid), "argv": []}
        job_dir.launch_info.write_text(json.dumps(info))
        job = dataclasses.replace(job, external_id=str(process.pid))

        async def scenario() -> Job | None:
            store = await JobStore.open(data_root.database)
            await store.write([(job, "cancel_requested", {}, 2.0)])
            manager = JobManager(store, data_root, max_local_jobs=1)
            manager.add_launcher(
                LocalLauncher(LocalConfig(poll_interval_s=0.05), data_root, manager)
            )
            await manager.start()
            await until(lambda: manager.active_job(job.job_id) is None)
            final = await store.get(job.job_id)
            await manager.close()
            await store.close()
            return final

        final = asyncio.run(scenario())
        assert process.wait(10) == -signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert final is not None
    assert final.state is JobState.CANCELLED
    assert final.reason == "cancelled by alice"
