"""A Slurm job longer than its time limit finishes as a chain of Slurm jobs, on the real
single-node cluster: each gets USR1 before its limit (``--signal=B:USR1@S``), checkpoints and
stops (exit 75), the next one resumes; the recording equals an uninterrupted run's."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from services.gen.brainsim.v1 import job_service_pb2 as pb
from tests.services.conftest import (
    FINAL,
    TINY,
    ServerProcess,
    ServerThread,
    wait_for,
    write_tokens,
)
from tests.services.test_local_jobs import store_path
from tests.services.test_retries import Baseline, Watcher, events, finished
from tests.stores import assert_same_recording

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]

DURATION_MS = 600_000.0
"""80 s (idle machine) to 5 minutes (busy) of wall time on one rank here: more than one Slurm
job of 1 minute, whose checkpoint signal comes 20 s (test server) or 30 s (``--slurm``
defaults: 300 s, at most half the limit) before the limit, in practice 15 to 45 s after the
start. (300,000 ms, 40 s on an idle machine, sometimes ended before the signal came.)"""


def sacct_states(slurm_ids: list[str]) -> dict[str, str]:
    result = subprocess.run(
        ["sacct", "-c", "-n", "-P", "-j", ",".join(slurm_ids), "-o", "JobID,State,ExitCode"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    found = {}
    for line in result.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 3:
            found[parts[0]] = f"{parts[1]} {parts[2]}"
    return found


def test_a_job_longer_than_its_time_limit_finishes_as_a_chain(
    make_server: Callable[..., ServerThread], tmp_path: Path, uninterrupted: Baseline
) -> None:
    server = make_server(
        slurm={"poll_interval_s": 0.5, "default_time_limit_s": 600.0, "checkpoint_signal_s": 20}
    )
    reference = tmp_path / "uninterrupted.zarr"
    started = time.monotonic()
    baseline = uninterrupted(TINY, reference, DURATION_MS)
    with server.client() as client:
        job = client.submit(
            TINY.read_text(encoding="utf-8"),
            target=pb.TARGET_SLURM,
            duration_ms=DURATION_MS,
            time_limit_s=60,
            checkpoint_every_ms=10_000.0,
            # Slurm may send the signal so early (up to a minute) that it finds a rank still
            # starting, before it handles SIGUSR1: that run dies and is retried.
            max_retries=2,
        )
        watcher = Watcher(client.watch(job.job_id))
        final = wait_for(client, job.job_id, FINAL, timeout=900)
        watcher.done()
    wall_s = time.monotonic() - started
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert final.segment >= 2, final
    log = events(server.config.data_root, job.job_id)
    slurm_ids = [str(e.detail["external_id"]) for e in log if e.kind == "launched"]
    continuing = [e for e in log if e.kind == "continuing"]
    retrying = [e for e in log if e.kind == "retrying"]
    assert len(slurm_ids) == final.segment
    assert continuing, [e.kind for e in log]  # a chain: at least one link continued
    assert len(continuing) + len(retrying) == final.segment - 1
    assert final.attempt == 1 + len(retrying)  # a link of the chain uses no attempt
    states = sacct_states(slurm_ids)
    # Each link that continued stopped at its checkpoint (exit 75); the last one completed.
    endings = [e.kind for e in log if e.kind in ("continuing", "retrying", "finished")]
    for slurm_id, ending in zip(slurm_ids, endings, strict=True):
        if ending == "continuing":
            assert states.get(slurm_id, "").startswith("FAILED 75:"), states
    assert states.get(slurm_ids[-1], "").startswith("COMPLETED"), states
    resumes = [line for line in watcher.logs() if line.startswith("run ") and "resuming" in line]
    assert len(resumes) == len(continuing), watcher.logs()
    script = (store_path(final).parent / "job.sbatch").read_text()
    assert "-m brainsim resume" in script  # the last link's script
    assert_same_recording(finished(baseline, reference), store_path(final))
    print(f"chain of {final.segment} Slurm jobs {slurm_ids} {states}; {wall_s:.0f} s in all")


def test_a_chain_continues_after_a_server_restart(tmp_path: Path, uninterrupted: Baseline) -> None:
    """The server is killed during the first link; that link checkpoints and ends while no
    server runs; the next server finds it ended ``checkpointed`` and submits the rest."""
    data_root, tokens = tmp_path / "data", write_tokens(tmp_path)
    reference = tmp_path / "uninterrupted.zarr"
    baseline = uninterrupted(TINY, reference, DURATION_MS)
    first = ServerProcess(data_root, tokens, "--slurm")
    try:
        with first.client() as client:
            job = client.submit(
                TINY.read_text(encoding="utf-8"),
                target=pb.TARGET_SLURM,
                duration_ms=DURATION_MS,
                time_limit_s=60,
                checkpoint_every_ms=10_000.0,
                max_retries=2,  # as above: a signal before the ranks handle it
            )
            running = wait_for(client, job.job_id, (pb.JOB_STATE_RUNNING, *FINAL), timeout=120)
    finally:
        first.kill()
    deadline = time.monotonic() + 120
    while sacct_states([running.external_id]).get(running.external_id) is None:
        assert time.monotonic() < deadline, "the first link did not end"
        time.sleep(1)
    second = ServerProcess(data_root, tokens, "--slurm")
    try:
        with second.client() as client:
            final = wait_for(client, job.job_id, FINAL, timeout=600)
    finally:
        second.terminate()
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert final.segment >= 2
    log = events(data_root, job.job_id)
    kinds = [e.kind for e in log]
    assert kinds.index("recovered") < kinds.index("continuing"), kinds
    assert_same_recording(finished(baseline, reference), store_path(final))
