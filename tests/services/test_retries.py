"""Retries and checkpoints of jobs (issue 18, "The service"), with the real server on loopback
and real ranks: a rank killed after the first checkpoint is resumed on attempt 2 and the
recording equals an uninterrupted run's; without a checkpoint the retry starts again from the
beginning; attempts run out with the last reason; a retry pending while the server is down
happens after the restart; SubmitJob checks the new fields with field paths."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import zarr

from brainsim.recording.checkpoint import latest_checkpoint
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.store import EventRecord, JobStore
from tests.services.conftest import (
    FINAL,
    ROOT,
    ServerProcess,
    ServerThread,
    job_ranks,
    processes_mentioning,
    wait_for,
    wait_for_progress,
    write_tokens,
)
from tests.services.test_api import field_violations
from tests.services.test_local_jobs import LONG_MS, store_path
from tests.stores import assert_same_recording, recorded_arrays

CIRCUIT = ROOT / "tests" / "engine" / "data" / "checkpoint.yaml"
"""Plastic, stimulated, recording spikes, states and weights: every kind of state a checkpoint
carries."""
DURATION_MS = 6000.0
EVERY_MS = 500.0

Baseline = Callable[[Path, Path, float], subprocess.Popen[str]]
"""The ``uninterrupted`` fixture: starts the reference run."""


def circuit_text() -> str:
    return CIRCUIT.read_text(encoding="utf-8")


def finished(proc: subprocess.Popen[str], store: Path) -> dict[str, np.ndarray[Any, Any]]:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return recorded_arrays(store)


def wait_for_ranks(job_dir: Path, count: int, avoid: set[int], timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in job_ranks(job_dir, " -m brainsim ") if p not in avoid]
        if len(pids) >= count:
            return pids
        assert time.monotonic() < deadline, processes_mentioning(str(job_dir))
        time.sleep(0.05)


def wait_for_checkpoint(store: Path, at_least_ms: float, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while True:
        found = latest_checkpoint(store) if store.exists() else None
        if found is not None and found.time_ms >= at_least_ms:
            return found.time_ms
        assert time.monotonic() < deadline, f"no checkpoint at {at_least_ms} ms in {store}"
        time.sleep(0.02)


class Watcher:
    """Collects a job's WatchJob stream on a thread."""

    def __init__(self, stream: Iterator[pb.WatchJobResponse]) -> None:
        self.updates: list[pb.WatchJobResponse] = []
        self._thread = threading.Thread(target=lambda: self.updates.extend(stream), daemon=True)
        self._thread.start()

    def done(self, timeout: float = 60.0) -> list[pb.WatchJobResponse]:
        self._thread.join(timeout)
        assert not self._thread.is_alive()
        return self.updates

    def logs(self) -> list[str]:
        return [u.log.text for u in self.updates if u.WhichOneof("update") == "log"]


def events(data_root: Path, job_id: str) -> list[EventRecord]:
    async def read() -> list[EventRecord]:
        store = await JobStore.open(data_root / "jobs.sqlite3")
        try:
            return await store.events(job_id)
        finally:
            await store.close()

    return asyncio.run(read())


# --- SubmitJob checks ------------------------------------------------------------------------


def submit_error(server: ServerThread, circuit: str, **fields: Any) -> grpc.RpcError:
    with server.client() as client, pytest.raises(grpc.RpcError) as caught:
        client.submit(circuit, **fields)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    return error


@pytest.mark.parametrize("every", [0.0, -5.0, float("nan"), float("inf"), 0.05])
def test_checkpoint_intervals_are_checked_with_the_field(
    server: ServerThread, tiny_circuit: str, every: float
) -> None:
    violations = field_violations(submit_error(server, tiny_circuit, checkpoint_every_ms=every))
    assert set(violations) == {"checkpoint_every_ms"}, violations
    if every == 0.05:  # positive but under the circuit's dt (0.1 ms)
        assert "dt_ms (0.1)" in violations["checkpoint_every_ms"]


@pytest.mark.parametrize("retries", [-1, 11, 2**31 - 1])
def test_retries_are_bounded(server: ServerThread, tiny_circuit: str, retries: int) -> None:
    violations = field_violations(submit_error(server, tiny_circuit, max_retries=retries))
    assert violations == {"max_retries": f"must be 0 to 10, got {retries}"}


def test_the_job_shows_what_was_asked(server: ServerThread, tiny_circuit: str) -> None:
    with server.client() as client:
        job = client.submit(
            tiny_circuit, checkpoint_every_ms=0.1, max_retries=10, validate_only=True
        )
        plain = client.submit(tiny_circuit, validate_only=True)
    assert job.checkpoint_every_ms == 0.1
    assert job.max_retries == 10
    assert (job.attempt, job.segment) == (1, 1)
    assert not plain.HasField("checkpoint_every_ms")
    assert plain.max_retries == 0


# --- retries with real ranks ---------------------------------------------------------------------


@pytest.mark.mpi
@pytest.mark.slow
def test_a_killed_rank_is_resumed_from_its_checkpoint_and_equals_an_uninterrupted_run(
    server: ServerThread, tmp_path: Path, uninterrupted: Baseline
) -> None:
    reference = tmp_path / "uninterrupted.zarr"
    baseline = uninterrupted(CIRCUIT, reference, DURATION_MS)
    with server.client() as client:
        job = client.submit(
            circuit_text(),
            n_ranks=2,
            duration_ms=DURATION_MS,
            checkpoint_every_ms=EVERY_MS,
            max_retries=2,
        )
        watcher = Watcher(client.watch(job.job_id))
        job_dir = server.config.data_root.resolve() / "jobs" / job.job_id
        store = job_dir / "recording.zarr"
        checkpoint_ms = wait_for_checkpoint(store, EVERY_MS)
        ranks = wait_for_ranks(job_dir, 2, set())
        os.kill(ranks[1], signal.SIGKILL)
        final = wait_for(client, job.job_id, FINAL, timeout=300)
        updates = watcher.done()
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert (final.attempt, final.segment, final.max_retries) == (2, 2, 2)
    assert final.simulated_ms == DURATION_MS
    retry = [line for line in watcher.logs() if line.startswith("attempt 2 of 3: ")]
    assert len(retry) == 1, watcher.logs()
    # The checkpoint it resumed from is the one seen before the kill or a later one.
    resumed_ms = float(retry[0].split("resuming from ")[1].split(" ms")[0])
    assert resumed_ms >= checkpoint_ms
    assert retry[0].endswith(
        "ms after: brainsim exited with status 1: rank 1 was ended by signal 9, SIGKILL (Killed)"
    ), retry[0]
    # WatchJob sends the job again when attempt 2 starts (same state, new attempt).
    jobs = [u.job for u in updates if u.WhichOneof("update") == "job"]
    shown = [(j.state, j.attempt) for j in jobs]
    # (The stream may begin while the job is still QUEUED or already RUNNING.)
    assert shown[-3:] == [
        (pb.JOB_STATE_RUNNING, 1),
        (pb.JOB_STATE_RUNNING, 2),
        (pb.JOB_STATE_SUCCEEDED, 2),
    ], shown
    kinds = [e.kind for e in events(server.config.data_root, job.job_id)]
    assert kinds.count("retrying") == 1, kinds
    assert kinds.count("launched") == 2, kinds
    retrying = next(e for e in events(server.config.data_root, job.job_id) if e.kind == "retrying")
    assert retrying.detail["attempt"] == 2
    assert retrying.detail["resume_from_ms"] == resumed_ms
    assert zarr.open_group(str(store), mode="r").attrs["brainsim"]["status"] == "complete"
    assert_same_recording(finished(baseline, reference), store_path(final))


@pytest.mark.mpi
@pytest.mark.slow
def test_without_a_checkpoint_a_retry_starts_again_and_attempts_run_out(
    server: ServerThread, tiny_circuit: str
) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, n_ranks=2, duration_ms=LONG_MS, max_retries=1)
        watcher = Watcher(client.watch(job.job_id))
        wait_for_progress(client, job.job_id)
        job_dir = server.config.data_root.resolve() / "jobs" / job.job_id
        first = wait_for_ranks(job_dir, 2, set())
        os.kill(first[1], signal.SIGKILL)
        # Attempt 2 runs (from the beginning: --overwrite) ...
        deadline = time.monotonic() + 60
        while client.get(job.job_id).attempt != 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = wait_for_ranks(job_dir, 2, set(first))
        os.kill(second[0], signal.SIGKILL)
        final = wait_for(client, job.job_id, FINAL, timeout=60)
        watcher.done()
    assert final.state == pb.JOB_STATE_FAILED
    assert final.attempt == 2
    assert final.segment == 2
    assert final.failure_reason.startswith(
        "attempt 2 of 2 failed (no retries left): brainsim exited with status 1: rank 0 was "
        "ended by signal 9"
    ), final.failure_reason
    assert any(
        line.startswith("attempt 2 of 2: starting again from the beginning (no checkpoint)")
        for line in watcher.logs()
    ), watcher.logs()
    kinds = [e.kind for e in events(server.config.data_root, job.job_id)]
    assert kinds.count("retrying") == 1, kinds
    assert kinds[-1] == "finished", kinds


@pytest.mark.mpi
@pytest.mark.slow
def test_a_retry_due_while_the_server_is_down_happens_after_the_restart(
    tmp_path: Path, uninterrupted: Baseline
) -> None:
    """The rank dies while no server follows the job: the next server adopts it, finds it
    ended without completing, and resumes it from its checkpoint (the state is in SQLite)."""
    data_root, tokens = tmp_path / "data", write_tokens(tmp_path)
    reference = tmp_path / "uninterrupted.zarr"
    baseline = uninterrupted(CIRCUIT, reference, DURATION_MS)
    first = ServerProcess(data_root, tokens)
    try:
        with first.client() as client:
            job = client.submit(
                circuit_text(),
                n_ranks=2,
                duration_ms=DURATION_MS,
                checkpoint_every_ms=EVERY_MS,
                max_retries=1,
            )
            job_dir = data_root.resolve() / "jobs" / job.job_id
            wait_for_checkpoint(job_dir / "recording.zarr", EVERY_MS)
            ranks = wait_for_ranks(job_dir, 2, set())
    finally:
        first.kill()
    os.kill(ranks[1], signal.SIGKILL)
    second = ServerProcess(data_root, tokens)
    try:
        with second.client() as client:
            final = wait_for(client, job.job_id, FINAL, timeout=300)
    finally:
        second.terminate()
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert final.attempt == 2
    kinds = [e.kind for e in events(data_root, job.job_id)]
    assert "recovered" in kinds, kinds
    assert "retrying" in kinds, kinds
    assert_same_recording(finished(baseline, reference), store_path(final))
