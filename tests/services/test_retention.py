"""The retention policy (issue 19): which ended jobs go (too old; beyond a user's total size,
oldest first), never an active one; its configuration and errors; real servers that sweep at
start-up and periodically, logging each deletion with its reason."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.config import ConfigError, RetentionConfig, load_config
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.jobs import Job, JobState, Target
from services.retention import select_expired
from services.usage import folder_bytes
from tests.services.conftest import BOB, FINAL, ServerThread, wait_for, wait_for_progress
from tests.services.test_local_jobs import LONG_MS

DAY_S = 86_400.0


def _job(job_id: str, owner: str, end_time: float | None, size: int | None, **changes: Any) -> Job:
    return Job(
        job_id=job_id,
        owner=owner,
        target=Target.LOCAL,
        n_ranks=1,
        circuit_name="tiny",
        duration_ms=100.0,
        seed=1,
        submit_time=0.0,
        state=JobState.SUCCEEDED if end_time is not None else JobState.RUNNING,
        start_time=0.0,
        end_time=end_time,
        store_bytes=size,
        **changes,
    )


def test_old_jobs_go_and_active_ones_never() -> None:
    now = 100 * DAY_S
    jobs = [
        _job("a", "alice", now - 3 * DAY_S, 10),
        _job("b", "alice", now - 1 * DAY_S, 10),
        _job("c", "bob", now - 2.5 * DAY_S, 10),
        _job("d", "bob", None, 10**12),  # running for ages, huge
    ]
    expired = select_expired(jobs, RetentionConfig(max_age_days=2.0), now)
    assert [e.job.job_id for e in expired] == ["a", "c"]
    assert "ended 3.00 days ago (retention.max_age_days: 2)" in expired[0].reason
    assert select_expired(jobs, RetentionConfig(), now) == []


def test_over_a_users_total_their_first_ended_jobs_go_until_under_it() -> None:
    jobs = [
        _job("a3", "alice", 30.0, 400),
        _job("a1", "alice", 10.0, 300),
        _job("a2", "alice", 20.0, 300),
        _job("b1", "bob", 5.0, 900),  # bob alone is within the limit
        _job("a4", "alice", None, 10**9),  # running: neither deleted nor counted
    ]
    assert select_expired(jobs, RetentionConfig(max_bytes_per_user=1000), 100.0) == []
    expired = select_expired(jobs, RetentionConfig(max_bytes_per_user=999), 100.0)
    assert [e.job.job_id for e in expired] == ["a1"]
    assert expired[0].reason == (
        "alice's ended jobs took 1000 bytes, more than retention.max_bytes_per_user (999); "
        "this one ended first"
    )
    tighter = select_expired(jobs, RetentionConfig(max_bytes_per_user=500), 100.0)
    assert [e.job.job_id for e in tighter] == ["b1", "a1", "a2"]
    # Age first, then size among what is left; each job once.
    policy = RetentionConfig(max_age_days=85 / DAY_S, max_bytes_per_user=500)
    both = select_expired(jobs, policy, 100.0)
    assert [e.job.job_id for e in both] == ["b1", "a1", "a2"]
    assert "days ago" in both[0].reason
    assert "max_bytes_per_user" in both[2].reason


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({"max_age_days": 0}, "retention.max_age_days must be > 0 days (or null: keep), found 0.0"),
        ({"max_age_days": -1.5}, "retention.max_age_days must be > 0"),
        ({"max_age_days": "week"}, "retention.max_age_days: expected float, found 'week'"),
        ({"max_bytes_per_user": -1}, "retention.max_bytes_per_user must be >= 0"),
        ({"max_bytes_per_user": 1.5}, "retention.max_bytes_per_user: expected int, found 1.5"),
        ({"sweep_every_s": 0}, "retention.sweep_every_s must be > 0 s, found 0.0"),
        ({"keep": True}, "retention.keep: unknown key (expected one of max_age_days, "),
    ],
)
def test_bad_retention_settings_are_refused(
    tmp_path: Path, retention: dict[str, Any], message: str
) -> None:
    document = {"data_root": tmp_path, "insecure_no_auth": True, "retention": retention}
    try:
        problems = load_config(None, document).problems()
    except ConfigError as exc:
        problems = str(exc).splitlines()
    assert any(message in problem for problem in problems), problems


def test_the_defaults_keep_everything(tmp_path: Path) -> None:
    config = load_config(None, {"data_root": tmp_path, "insecure_no_auth": True})
    assert config.retention == RetentionConfig(None, None, 600.0)
    assert not config.retention.active
    assert config.problems() == []
    example = load_config(Path(__file__).resolve().parents[2] / "deploy" / "server.example.yaml")
    assert example.retention == config.retention  # the example shows every key's default


def test_a_server_deletes_jobs_once_they_are_old_but_never_a_running_one(
    make_server: Callable[..., ServerThread], tiny_circuit: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.retention")
    server = make_server(retention={"max_age_days": 1.5 / DAY_S, "sweep_every_s": 0.3})
    with server.client() as client:
        running = client.submit(tiny_circuit, duration_ms=LONG_MS)
        ended = client.submit(tiny_circuit)
        wait_for(client, ended.job_id, FINAL)
        wait_for_progress(client, running.job_id)
        deadline = time.monotonic() + 30
        while ended.job_id in {job.job_id for job in client.list_jobs()}:
            assert time.monotonic() < deadline, "the old job was not deleted"
            time.sleep(0.1)
        with pytest.raises(grpc.RpcError) as caught:
            client.get(ended.job_id)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert not (server.config.data_root / "jobs" / ended.job_id).exists()
        time.sleep(2.0)  # several sweeps while it runs longer than the age limit
        assert client.get(running.job_id).state == pb.JOB_STATE_RUNNING
        assert (server.config.data_root / "jobs" / running.job_id / "recording.zarr").is_dir()
        client.cancel(running.job_id)
        wait_for(client, running.job_id, FINAL)
    messages = [r.getMessage() for r in caplog.records if r.name == "services.retention"]
    deleted = [m for m in messages if f"deleted job {ended.job_id} of alice" in m]
    assert len(deleted) == 1, messages
    assert "retention.max_age_days" in deleted[0]
    assert "bytes freed" in deleted[0]
    assert not any(running.job_id in m for m in messages)


def test_a_server_keeps_each_user_under_the_size_limit_from_its_start(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    """Three ended jobs of alice, one of bob; the next server starts with a limit that only
    alice's two newest fit: her oldest goes at start-up, the rest stays. One job's size was
    never recorded (as for jobs that ended before sizes were): the sweep measures it."""
    first = make_server()
    with first.client() as alice, first.client(BOB) as bob:
        jobs = []
        for client in (alice, alice, bob, alice):
            job = client.submit(tiny_circuit)
            jobs.append(wait_for(client, job.job_id, FINAL))
    first.stop()
    data_root = first.config.data_root.resolve()
    oldest, second, bobs, newest = jobs
    sizes = {job.job_id: folder_bytes(data_root / "jobs" / job.job_id) for job in jobs}
    assert [job.usage.store_bytes for job in jobs] == [sizes[job.job_id] for job in jobs]
    with sqlite3.connect(data_root / "jobs.sqlite3") as db:
        db.execute("UPDATE jobs SET store_bytes = NULL WHERE job_id = ?", (second.job_id,))
    limit = sizes[second.job_id] + sizes[newest.job_id]
    make_server(data_root=data_root, retention={"max_bytes_per_user": limit})
    deadline = time.monotonic() + 30
    while (data_root / "jobs" / oldest.job_id).exists():
        assert time.monotonic() < deadline, "alice's oldest job was not deleted"
        time.sleep(0.05)
    for job in (second, bobs, newest):
        assert (data_root / "jobs" / job.job_id).is_dir()
    with sqlite3.connect(data_root / "jobs.sqlite3") as db:
        left = {row[0]: row[1] for row in db.execute("SELECT job_id, store_bytes FROM jobs")}
    assert left == {job.job_id: sizes[job.job_id] for job in (second, bobs, newest)}
