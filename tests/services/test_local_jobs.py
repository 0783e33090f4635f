"""Local jobs end to end: real ranks, watching, recordings, queueing, cancel, failures."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import zarr

from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.launchers import procs
from tests.services.conftest import (
    FINAL,
    ServerThread,
    no_processes_left,
    wait_for,
    wait_for_progress,
)

LONG_MS = 600_000.0
"""A duration no test waits for: such jobs are cancelled or stopped."""


def store_path(job: pb.Job) -> Path:
    parsed = urlparse(job.recording_uri)
    assert parsed.scheme == "file"
    return Path(unquote(parsed.path))


@pytest.mark.mpi
def test_submit_watch_to_completion_and_read_the_spikes(
    server: ServerThread, tiny_circuit: str
) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, n_ranks=2)
        updates = list(client.watch(job.job_id))
    kinds = [u.WhichOneof("update") for u in updates]
    assert kinds[0] == "job"
    states = [u.job.state for u in updates if u.WhichOneof("update") == "job"]
    assert states[-1] == pb.JOB_STATE_SUCCEEDED, updates[-1]
    assert pb.JOB_STATE_RUNNING in states
    progress = [u.progress.simulated_ms for u in updates if u.WhichOneof("update") == "progress"]
    assert progress, "no progress was streamed"
    assert progress == sorted(progress)
    assert progress[-1] == pytest.approx(100.0)
    assert kinds[-1] == "job"

    final = updates[-1].job
    assert final.simulated_ms == 100.0
    assert final.end_time.ToNanoseconds() >= final.start_time.ToNanoseconds() > 0
    assert final.external_id.isdigit()
    path = store_path(final)
    assert path.parent.parent == server.config.data_root.resolve() / "jobs"

    # Plain zarr, no brainsim: the recording is complete and has spikes of both populations.
    root = zarr.open_group(str(path), mode="r")
    assert root.attrs["brainsim"]["status"] == "complete"
    for population, size in (("E", 80), ("I", 20)):
        times = np.asarray(root[f"spikes/{population}/timestamps"][:])
        ids = np.asarray(root[f"spikes/{population}/node_ids"][:])
        assert times.size > 0
        assert times.size == ids.size
        assert np.all(np.diff(times) >= 0)
        assert ids.min() >= 0
        assert ids.max() < size
        assert times.max() < 100.0


def test_jobs_beyond_the_concurrency_limit_wait_in_order(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(local={"max_concurrent_jobs": 1, "poll_interval_s": 0.1})
    with server.client() as client:
        first = client.submit(tiny_circuit, duration_ms=300.0)
        second = client.submit(tiny_circuit)
        wait_for(client, first.job_id, (pb.JOB_STATE_RUNNING, *FINAL))
        assert client.get(second.job_id).state == pb.JOB_STATE_QUEUED
        done_first = wait_for(client, first.job_id, FINAL)
        done_second = wait_for(client, second.job_id, FINAL)
    assert done_first.state == done_second.state == pb.JOB_STATE_SUCCEEDED
    assert done_second.start_time.ToNanoseconds() >= done_first.end_time.ToNanoseconds()


@pytest.mark.mpi
def test_cancel_a_running_job_leaves_no_process(server: ServerThread, tiny_circuit: str) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, n_ranks=2, duration_ms=LONG_MS)
        wait_for_progress(client, job.job_id)
        job_dir = server.config.data_root.resolve() / "jobs" / job.job_id
        pgid = int(job.external_id or client.get(job.job_id).external_id)
        ranks = [pid for pid, _ in no_processes_left(str(job_dir), timeout=0)]
        assert len(ranks) >= 3, "expected brainsim run and its two ranks"

        answer = client.cancel(job.job_id)
        assert answer.cancel_requested
        assert answer.state == pb.JOB_STATE_RUNNING
        final = wait_for(client, job.job_id, FINAL, timeout=60)
    assert final.state == pb.JOB_STATE_CANCELLED
    assert final.failure_reason == "cancelled by alice"
    assert not final.cancel_requested
    assert no_processes_left(str(job_dir)) == []
    assert procs.group_members(pgid) == []
    root = zarr.open_group(str(store_path(final)), mode="r")
    assert root.attrs["brainsim"]["status"] == "cancelled"


def test_cancel_of_a_queued_job_never_starts_it(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(local={"max_concurrent_jobs": 0})
    with server.client() as client:
        job = client.submit(tiny_circuit)
        answer = client.cancel(job.job_id)
    assert answer.state == pb.JOB_STATE_CANCELLED
    job_dir = server.config.data_root / "jobs" / job.job_id
    assert sorted(p.name for p in job_dir.iterdir()) == ["circuit.yaml"]
    assert (job_dir / "circuit.yaml").read_text() == tiny_circuit


def test_time_limit_stops_a_local_job(server: ServerThread, tiny_circuit: str) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, duration_ms=LONG_MS, time_limit_s=3)
        final = wait_for(client, job.job_id, FINAL, timeout=60)
    assert final.state == pb.JOB_STATE_FAILED
    assert "time limit of 3 s" in final.failure_reason
    assert no_processes_left(job.job_id) == []


def test_a_simulator_that_cannot_start_fails_with_its_error(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(local={"python": "/nonexistent/python3"})
    with server.client() as client:
        job = client.submit(tiny_circuit)
        final = wait_for(client, job.job_id, FINAL, timeout=60)
        logs = [u.log.text for u in client.watch(job.job_id) if u.WhichOneof("update") == "log"]
    assert final.state == pb.JOB_STATE_FAILED
    assert final.failure_reason == "launch failed: /nonexistent/python3 not found"
    assert logs == []  # the job had ended: a late watcher gets the final state only
    assert not (server.config.data_root / "jobs" / job.job_id / "launch.json").exists()


def test_watchers_get_log_lines(server: ServerThread, tiny_circuit: str) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit)
        started = time.monotonic()
        logs = [
            (u.log.stream, u.log.text)
            for u in client.watch(job.job_id)
            if u.WhichOneof("update") == "log"
        ]
        assert time.monotonic() - started < 120
    started = f"started brainsim run --ranks 1 (pid {client_pid(server, job)})"
    assert (pb.LOG_STREAM_SERVICE, started) in logs


def client_pid(server: ServerThread, job: pb.Job) -> int:
    info = server.config.data_root / "jobs" / job.job_id / "launch.json"
    return int(json.loads(info.read_text())["pid"])
