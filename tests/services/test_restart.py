"""Restarting the server loses nothing: queued jobs still run, running local jobs are adopted or
reconciled from their recording, and the event log says what happened."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest
import zarr

from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.launchers import procs
from services.store import JobStore
from tests.services.conftest import (
    FINAL,
    ServerProcess,
    no_processes_left,
    wait_for,
    wait_for_progress,
    write_tokens,
)

pytestmark = [pytest.mark.mpi, pytest.mark.slow]


def event_kinds(data_root: Path, job_id: str) -> list[str]:
    async def read() -> list[str]:
        store = await JobStore.open(data_root / "jobs.sqlite3")
        try:
            return [event.kind for event in await store.events(job_id)]
        finally:
            await store.close()

    return asyncio.run(read())


def wait_until_gone(pid: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while procs.is_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.1)


def test_kill_the_server_mid_job_and_restart(tmp_path: Path, tiny_circuit: str) -> None:
    data_root, tokens = tmp_path / "data", write_tokens(tmp_path)
    first = ServerProcess(data_root, tokens, "--max-local-jobs", "1")
    try:
        with first.client() as client:
            # Long enough (about a second of simulation) to outlive the first server.
            running = client.submit(tiny_circuit, n_ranks=2, duration_ms=20_000.0)
            queued = client.submit(tiny_circuit)
            wait_for_progress(client, running.job_id)
            assert client.get(queued.job_id).state == pb.JOB_STATE_QUEUED
            pid = int(client.get(running.job_id).external_id)
    finally:
        first.kill()
    # The job does not depend on the server: it keeps running while none is there.
    assert procs.is_alive(pid)

    second = ServerProcess(data_root, tokens, "--max-local-jobs", "1")
    try:
        with second.client() as client:
            done = wait_for(client, running.job_id, FINAL)
            after = wait_for(client, queued.job_id, FINAL)
    finally:
        assert second.terminate() == 0
    assert done.state == pb.JOB_STATE_SUCCEEDED, done.failure_reason
    assert done.simulated_ms == 20_000.0
    assert after.state == pb.JOB_STATE_SUCCEEDED, after.failure_reason
    assert after.start_time.ToNanoseconds() >= done.end_time.ToNanoseconds()
    assert event_kinds(data_root, running.job_id) == [
        "submitted",
        "launched",
        "started",
        "recovered",
        "finished",
    ]
    assert "recovered" in event_kinds(data_root, queued.job_id)


def test_a_job_that_ended_while_no_server_ran_is_reconciled(
    tmp_path: Path, tiny_circuit: str
) -> None:
    data_root, tokens = tmp_path / "data", write_tokens(tmp_path)
    first = ServerProcess(data_root, tokens, "--max-local-jobs", "2")
    try:
        with first.client() as client:
            # Long enough (several seconds of simulation) to be seen running, and to end only
            # after the server is gone.
            finished = client.submit(tiny_circuit, duration_ms=150_000.0)
            lost = client.submit(tiny_circuit, duration_ms=600_000.0)
            wait_for_progress(client, finished.job_id)
            wait_for_progress(client, lost.job_id)
            finished_pid = int(client.get(finished.job_id).external_id)
            lost_pid = int(client.get(lost.job_id).external_id)
    finally:
        first.kill()
    wait_until_gone(finished_pid)
    # Something outside the service kills the other job hard: its recording stays "running".
    os.killpg(lost_pid, signal.SIGKILL)
    assert no_processes_left(lost.job_id) == []

    time.sleep(1.0)  # so that a restart time taken for an end time would show
    restarted = time.time()
    second = ServerProcess(data_root, tokens)
    try:
        with second.client() as client:
            done = wait_for(client, finished.job_id, FINAL, timeout=30)
            failed = wait_for(client, lost.job_id, FINAL, timeout=30)
    finally:
        second.terminate()
    assert done.state == pb.JOB_STATE_SUCCEEDED
    assert failed.state == pb.JOB_STATE_FAILED
    assert "ended while the server was down" in failed.failure_reason
    assert "'running'" in failed.failure_reason

    # The jobs ended before the restart: their end times are the true ones, not the restart's.
    assert "recovered" in event_kinds(data_root, done.job_id)  # it ended while no server ran
    completed = zarr.open_group(str(data_root / "jobs" / done.job_id / "recording.zarr"), mode="r")
    recorded_end = datetime.fromisoformat(completed.attrs["brainsim"]["provenance"]["end_time"])
    assert done.end_time.ToMicroseconds() == pytest.approx(recorded_end.timestamp() * 1e6, abs=1000)
    assert done.end_time.ToNanoseconds() / 1e9 < restarted
    assert failed.end_time.ToNanoseconds() / 1e9 < restarted
    # The killed job's store says what the job says, not "running".
    killed = zarr.open_group(str(data_root / "jobs" / lost.job_id / "recording.zarr"), mode="r")
    assert killed.attrs["brainsim"]["status"] == "failed"
    assert killed.attrs["brainsim"]["reason"] == failed.failure_reason


def test_a_job_adopted_after_a_clean_restart_can_be_cancelled(
    tmp_path: Path, tiny_circuit: str
) -> None:
    data_root, tokens = tmp_path / "data", write_tokens(tmp_path)
    first = ServerProcess(data_root, tokens, "--max-local-jobs", "1")
    try:
        with first.client() as client:
            job = client.submit(tiny_circuit, duration_ms=600_000.0)
            wait_for_progress(client, job.job_id)
    finally:
        first.terminate()  # a clean shutdown also leaves the job running
    second = ServerProcess(data_root, tokens, "--max-local-jobs", "1")
    try:
        with second.client() as client:
            assert client.get(job.job_id).state == pb.JOB_STATE_RUNNING
            client.cancel(job.job_id)
            final = wait_for(client, job.job_id, FINAL, timeout=60)
    finally:
        second.terminate()
    assert final.state == pb.JOB_STATE_CANCELLED
    assert no_processes_left(job.job_id) == []
