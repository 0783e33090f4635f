"""The Slurm target on a real single-node cluster: run, cancel, failures, restart."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr

from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.usage import folder_bytes
from tests.services.conftest import (
    FINAL,
    ServerProcess,
    ServerThread,
    no_processes_left,
    wait_for,
    wait_for_progress,
    write_tokens,
)
from tests.services.test_local_jobs import store_path

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]

SLURM = {"poll_interval_s": 0.5, "default_time_limit_s": 600.0}


def slurm_state(slurm_id: str) -> str:
    result = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", slurm_id, "-o", "%T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def slurm_server(make_server: Callable[..., ServerThread]) -> ServerThread:
    return make_server(slurm=SLURM)


def test_a_slurm_job_runs_to_completion(slurm_server: ServerThread, tiny_circuit: str) -> None:
    with slurm_server.client() as client:
        job = client.submit(tiny_circuit, n_ranks=2, target=pb.TARGET_SLURM, time_limit_s=300)
        updates = list(client.watch(job.job_id))
    final = updates[-1].job
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert final.external_id.isdigit()
    assert slurm_state(final.external_id) == "COMPLETED"
    progress = [u.progress.simulated_ms for u in updates if u.WhichOneof("update") == "progress"]
    assert progress
    assert progress[-1] == pytest.approx(100.0)
    logs = [u.log.text for u in updates if u.WhichOneof("update") == "log"]
    assert f"submitted to Slurm as job {final.external_id}" in logs

    job_dir = store_path(final).parent
    script = (job_dir / "job.sbatch").read_text()
    assert "-m brainsim run" in script
    assert str(job_dir) in script
    root = zarr.open_group(str(store_path(final)), mode="r")
    assert root.attrs["brainsim"]["status"] == "complete"
    assert root.attrs["brainsim"]["provenance"]["n_ranks"] == 2
    assert np.asarray(root["spikes/E/timestamps"][:]).size > 0
    # Resource use comes from the ranks themselves, as for local jobs.
    (run,) = root.attrs["brainsim"]["provenance"]["runs"]
    usage = final.usage
    cpu_s = usage.cpu_time.seconds + usage.cpu_time.nanos / 1e9
    assert cpu_s == pytest.approx(run["cpu_s"], abs=1e-6)
    assert cpu_s > 0
    assert usage.peak_memory_bytes == run["sum_rank_rss_bytes"]
    assert usage.peak_memory_bytes > usage.peak_rank_memory_bytes > 50 * 2**20
    assert usage.store_bytes == folder_bytes(job_dir)


def test_cancel_a_running_slurm_job(slurm_server: ServerThread, tiny_circuit: str) -> None:
    with slurm_server.client() as client:
        job = client.submit(tiny_circuit, target=pb.TARGET_SLURM, duration_ms=600_000.0)
        running = wait_for_progress(client, job.job_id)
        assert client.cancel(job.job_id).cancel_requested
        final = wait_for(client, job.job_id, FINAL, timeout=60)
    assert final.state == pb.JOB_STATE_CANCELLED
    assert final.failure_reason == "cancelled by alice"
    assert slurm_state(running.external_id) == "CANCELLED"
    assert no_processes_left(job.job_id, timeout=30) == []


def test_sbatch_refusing_a_job_fails_it_with_slurms_reason(
    slurm_server: ServerThread, tiny_circuit: str
) -> None:
    with slurm_server.client() as client:
        job = client.submit(tiny_circuit, target=pb.TARGET_SLURM, partition="nosuchpartition")
        final = wait_for(client, job.job_id, FINAL, timeout=60)
    assert final.state == pb.JOB_STATE_FAILED
    assert final.failure_reason.startswith("launch failed:")
    assert "partition" in final.failure_reason.lower()


def test_slurm_jobs_are_polled_again_after_a_restart(tmp_path: Path, tiny_circuit: str) -> None:
    data_root, tokens = tmp_path / "data", write_tokens(tmp_path)
    first = ServerProcess(data_root, tokens, "--slurm")
    try:
        with first.client() as client:
            job = client.submit(tiny_circuit, target=pb.TARGET_SLURM, duration_ms=2000.0)
            wait_for(client, job.job_id, (pb.JOB_STATE_RUNNING, *FINAL), timeout=120)
    finally:
        first.kill()
    second = ServerProcess(data_root, tokens, "--slurm")
    try:
        with second.client() as client:
            final = wait_for(client, job.job_id, FINAL, timeout=180)
    finally:
        second.terminate()
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert final.simulated_ms == 2000.0
