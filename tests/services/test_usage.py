"""Job.usage (issue 19): what a job's runs used, from the runs its recording lists, summed over
the runs of a job, with the size of its folder; ``brainsim status JOB`` shows it. Real servers
on loopback, real mpiexec; the counting itself through the state machine."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zarr

from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.jobs import Job, JobState, Target
from services.machine import Checkpointed, Exited, Launch, ServiceState, Submitted, handle
from services.usage import FolderSizes, RunUse, folder_bytes, read_recorded_runs
from tests.services.conftest import FINAL, CliRun, ServerThread, wait_for
from tests.services.test_local_jobs import store_path

MB = 2**20


def seconds(duration: Any) -> float:
    return float(duration.seconds + duration.nanos / 1e9)


def recorded_runs(job: pb.Job) -> list[dict[str, Any]]:
    provenance = zarr.open_group(str(store_path(job)), mode="r").attrs["brainsim"]["provenance"]
    return list(provenance["runs"])


def test_a_local_job_reports_what_it_used(
    server: ServerThread, tiny_circuit: str, cli: Callable[..., CliRun]
) -> None:
    with server.client() as client:
        queued = client.submit(tiny_circuit, n_ranks=2)
        assert not queued.HasField("usage")  # unset before the first run starts
        job = wait_for(client, queued.job_id, FINAL)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.failure_reason
    usage = job.usage
    assert seconds(usage.cpu_time) > 0.1
    assert usage.peak_rank_memory_bytes > 50 * MB  # a Python process with numpy and numba
    assert usage.peak_memory_bytes >= usage.peak_rank_memory_bytes  # two ranks: the sum
    assert usage.peak_memory_bytes > 1.5 * usage.peak_rank_memory_bytes
    wall_s = seconds(job.end_time) - seconds(job.start_time)
    assert seconds(usage.wall_time) == pytest.approx(wall_s, abs=1e-6)
    folder = store_path(job).parent
    assert usage.store_bytes == folder_bytes(folder) > 0
    (run,) = recorded_runs(job)
    assert (run["status"], run["n_ranks"]) == ("complete", 2)
    assert seconds(usage.cpu_time) == pytest.approx(run["cpu_s"], abs=1e-6)
    assert usage.peak_memory_bytes == run["sum_rank_rss_bytes"]
    assert usage.peak_rank_memory_bytes == run["max_rank_rss_bytes"]
    code, out, _ = cli(server)("status", job.job_id)
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("usage:"))
    assert " CPU " in line
    assert "MiB" in line
    assert "folder" in line


def wait_for_checkpoint_file(store: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not (store / "checkpoint" / "zarr.json").exists():
        assert time.monotonic() < deadline, f"no checkpoint in {store}"
        time.sleep(0.05)


def test_a_job_of_two_runs_sums_them(server: ServerThread, tiny_circuit: str) -> None:
    """A run stopped at a checkpoint by SIGUSR1 (as Slurm sends before a time limit) and the
    run that continues it: the job counts both, each once."""
    with server.client() as client:
        job = client.submit(tiny_circuit, duration_ms=120_000.0, checkpoint_every_ms=5_000.0)
        store = server.config.data_root.resolve() / "jobs" / job.job_id / "recording.zarr"
        wait_for_checkpoint_file(store)
        running = client.get(job.job_id)
        assert running.HasField("usage")
        assert running.usage.store_bytes > 0  # measured while it runs
        os.kill(int(running.external_id), signal.SIGUSR1)  # mpiexec passes it to the ranks
        final = wait_for(client, job.job_id, FINAL, timeout=300)
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert final.segment == 2
    runs = recorded_runs(final)
    assert [r["status"] for r in runs] == ["checkpointed", "complete"]
    assert seconds(final.usage.cpu_time) == pytest.approx(sum(r["cpu_s"] for r in runs), abs=1e-5)
    assert final.usage.peak_memory_bytes == max(r["sum_rank_rss_bytes"] for r in runs)
    assert final.usage.peak_rank_memory_bytes == max(r["max_rank_rss_bytes"] for r in runs)
    assert final.usage.store_bytes == folder_bytes(store.parent)
    assert read_recorded_runs(store)[0].run_id == runs[0]["id"]


def _job(**changes: Any) -> Job:
    return Job(
        job_id="0123456789ab",
        owner="alice",
        target=Target.SLURM,
        n_ranks=2,
        circuit_name="tiny",
        duration_ms=100.0,
        seed=1,
        submit_time=0.0,
        max_retries=2,
        **changes,
    )


def test_runs_are_counted_once_each_across_retries_and_new_stores() -> None:
    """A checkpointed run, then a run that fails without closing its store (no entry), then a
    retry from the beginning that replaces the store (its list starts again): the job counts
    r1 and r2 once each, never the one that left no entry."""
    r1 = RunUse("r1", 10.0, 100 * MB, 180 * MB)
    r2 = RunUse("r2", 5.0, 120 * MB, 150 * MB)
    state, _ = handle(ServiceState(max_local_jobs=1), Submitted(_job()))
    state, actions = handle(state, Checkpointed("0123456789ab", 40.0, 1.0, runs=(r1,)))
    assert any(isinstance(a, Launch) for a in actions)
    state, _ = handle(
        state, Exited("0123456789ab", JobState.FAILED, "killed", 2.0, retryable=True, runs=(r1,))
    )
    assert state.active["0123456789ab"].cpu_s == 10.0
    state, actions = handle(state, Exited("0123456789ab", JobState.SUCCEEDED, "", 3.0, runs=(r2,)))
    ended = next(a.job for a in actions if hasattr(a, "job") and a.job.state.terminal)
    assert ended.cpu_s == 15.0
    assert ended.peak_rank_memory_bytes == 120 * MB
    assert ended.peak_memory_bytes == 180 * MB
    assert ended.counted_runs == ("r1", "r2")


def test_folder_bytes_is_what_du_counts(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    (folder / "recording.zarr" / "c").mkdir(parents=True)
    (folder / "stdout.log").write_bytes(b"x" * 10_000)
    (folder / "recording.zarr" / "c" / "0").write_bytes(b"y" * 70_000)
    os.link(folder / "stdout.log", folder / "again.log")  # one inode, counted once
    (folder / "link").symlink_to(tmp_path)  # the link itself, not what it points to
    du = subprocess.run(
        ["du", "-s", "-B1", str(folder)], capture_output=True, text=True, check=True
    )
    assert folder_bytes(folder) == int(du.stdout.split()[0]) > 80_000
    assert folder_bytes(tmp_path / "missing") == 0


def test_folder_sizes_are_measured_at_most_every_max_age(tmp_path: Path) -> None:
    """A fresh size as it is; a stale one as it is while it is measured again; none: waits."""
    now = [0.0]
    sizes = FolderSizes(30.0, clock=lambda: now[0])

    async def scenario(folder: Path) -> None:
        (folder / "a").write_bytes(b"x" * 10_000)
        first = await sizes.size("j", folder)
        assert first == folder_bytes(folder)
        (folder / "b").write_bytes(b"y" * 100_000)
        now[0] = 29.0
        assert await sizes.size("j", folder) == first
        now[0] = 31.0
        assert await sizes.size("j", folder) == first  # stale: shown while measured again
        for _ in range(100):
            await asyncio.sleep(0.01)
            if await sizes.size("j", folder) != first:
                break
        assert await sizes.size("j", folder) == folder_bytes(folder) > first
        sizes.forget(["j"])
        (folder / "b").unlink()
        assert await sizes.size("j", folder) == first  # forgotten: measured at once
        await sizes.close()

    asyncio.run(scenario(tmp_path))
