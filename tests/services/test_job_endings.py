"""How jobs end, as a user sees it (issue 18): a killed rank fails the job at once with the
reason in words and the end of the output, the recording says what the job says (read with
plain zarr), and WatchJob sends each state once and in order. Real server, real mpiexec."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import numpy as np
import pytest
import zarr

from services.gen.brainsim.v1 import job_service_pb2 as pb
from tests.services.conftest import (
    FINAL,
    ServerThread,
    job_ranks,
    no_processes_left,
    processes_mentioning,
    wait_for,
    wait_for_progress,
)
from tests.services.test_local_jobs import LONG_MS, store_path

pytestmark = pytest.mark.mpi


def brainsim_attrs(job: pb.Job) -> dict[str, object]:
    root = zarr.open_group(str(store_path(job)), mode="r")
    attrs = root.attrs["brainsim"]
    assert isinstance(attrs, dict)
    return attrs


def test_a_killed_rank_fails_the_job_and_its_store_says_so(
    server: ServerThread, tiny_circuit: str
) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, n_ranks=2, duration_ms=LONG_MS)
        wait_for_progress(client, job.job_id)
        job_dir = server.config.data_root.resolve() / "jobs" / job.job_id
        ranks = job_ranks(job_dir)
        assert len(ranks) == 2, processes_mentioning(str(job_dir))
        os.kill(ranks[1], signal.SIGKILL)
        killed = time.monotonic()
        final = wait_for(client, job.job_id, FINAL, timeout=30)
        noticed_s = time.monotonic() - killed
    assert final.state == pb.JOB_STATE_FAILED
    assert noticed_s < 10, noticed_s
    reason = final.failure_reason
    # In words, with the signal's name, then the end of the output (not progress lines).
    assert reason.splitlines()[0] == (
        "brainsim exited with status 1: rank 1 was ended by signal 9, SIGKILL (Killed)"
    )
    assert "stderr ends with:" in reason
    assert "rank 1 was ended by SIGKILL before MPI_Finalize" in reason
    assert '{"event"' not in reason
    assert no_processes_left(str(job_dir)) == []

    # Plain zarr: the store no longer says running, and says why (as brainsim run, which saw
    # the rank end, wrote it), and keeps what it held.
    attrs = brainsim_attrs(final)
    assert attrs["status"] == "failed"
    assert attrs["reason"] == (
        "rank 1 was ended by SIGKILL before MPI_Finalize; the other ranks were stopped"
    )
    provenance = attrs["provenance"]
    assert isinstance(provenance, dict)
    assert provenance["end_time"] is not None
    root = zarr.open_group(str(store_path(final)), mode="r")
    times = np.asarray(root["spikes/E/timestamps"][:])
    assert times.size == 0 or times.max() < LONG_MS


def test_a_cancelled_store_says_who_cancelled(server: ServerThread, tiny_circuit: str) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, duration_ms=LONG_MS)
        wait_for_progress(client, job.job_id)
        client.cancel(job.job_id)
        final = wait_for(client, job.job_id, FINAL, timeout=60)
    assert final.state == pb.JOB_STATE_CANCELLED
    assert final.failure_reason == "cancelled by alice"
    attrs = brainsim_attrs(final)
    assert attrs["status"] == "cancelled"
    assert attrs["reason"] == "cancelled by alice"


def test_a_job_stopped_at_its_time_limit_has_a_failed_store(
    server: ServerThread, tiny_circuit: str
) -> None:
    """The time limit's SIGTERM makes the simulator record ``cancelled``; the job fails, so
    the store says failed, with the job's reason first."""
    with server.client() as client:
        # The limit leaves the simulator time to start (and open its store) on a busy machine.
        job = client.submit(tiny_circuit, duration_ms=LONG_MS, time_limit_s=8)
        wait_for_progress(client, job.job_id)
        final = wait_for(client, job.job_id, FINAL, timeout=60)
    assert final.state == pb.JOB_STATE_FAILED
    attrs = brainsim_attrs(final)
    assert attrs["status"] == "failed"
    assert isinstance(attrs["reason"], str)
    assert attrs["reason"].startswith("stopped at the time limit of 8 s")


def test_watchers_get_each_state_once_and_the_launch_line_after_running(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(local={"max_concurrent_jobs": 1, "poll_interval_s": 0.1})
    with server.client() as client:
        # A job that holds the one slot, so that the watched job is surely QUEUED at first.
        blocker = client.submit(tiny_circuit, duration_ms=LONG_MS)
        job = client.submit(tiny_circuit)
        stream = client.watch(job.job_id)
        updates = [next(stream)]
        client.cancel(blocker.job_id)
        updates += list(stream)
    kinds = [u.WhichOneof("update") for u in updates]
    states = [u.job.state for u in updates if u.WhichOneof("update") == "job"]
    assert states == [pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING, pb.JOB_STATE_SUCCEEDED], updates
    running = next(i for i, u in enumerate(updates) if u.job.state == pb.JOB_STATE_RUNNING)
    launch_line = next(
        i for i, u in enumerate(updates) if u.log.text.startswith("started brainsim run --ranks 1")
    )
    assert kinds[running] == "job"
    assert launch_line > running
    assert kinds[-1] == "job"
