"""DeleteJob (issue 19): an ended job's folder and record go, and nothing else; a job that has
not ended is refused; others' jobs are NOT_FOUND; a deletion interrupted by a stop is finished
by the next server; ``brainsim delete``. Real servers on loopback, real mpiexec."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.client import JobClient
from services.config import load_config
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.jobs import JobState
from services.store import JobNotEndedError, JobStore, UnknownJobError
from services.usage import folder_bytes
from tests.services.conftest import (
    ALICE,
    BOB,
    FINAL,
    TINY,
    CliRun,
    ServerThread,
    kill_leftover_jobs,
    processes_mentioning,
    wait_for,
    wait_for_progress,
    write_tokens,
)
from tests.services.test_local_jobs import LONG_MS
from tests.services.test_store import make_job


def job_dir(server: ServerThread, job_id: str) -> Path:
    return server.config.data_root.resolve() / "jobs" / job_id


def rows(data_root: Path, job_id: str) -> tuple[int, int, int]:
    """(job rows, events, pending deletions) of ``job_id`` in the store."""
    with sqlite3.connect(data_root / "jobs.sqlite3") as db:
        return tuple(  # type: ignore[return-value]
            db.execute(f"SELECT count(*) FROM {table} WHERE job_id = ?", (job_id,)).fetchone()[0]
            for table in ("jobs", "events", "deletions")
        )


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()  # type: ignore[no-any-return]


def test_an_ended_job_is_deleted_with_its_folder_and_record(
    server: ServerThread, tiny_circuit: str
) -> None:
    with server.client() as client:
        kept = client.submit(tiny_circuit)
        job = client.submit(tiny_circuit)
        for submitted in (kept, job):
            assert wait_for(client, submitted.job_id, FINAL).state == pb.JOB_STATE_SUCCEEDED
        folder = job_dir(server, job.job_id)
        assert (folder / "recording.zarr" / "zarr.json").is_file()
        size = folder_bytes(folder)
        assert rows(server.config.data_root, job.job_id)[:2] != (0, 0)
        assert client.delete(job.job_id) == size > 0
        assert not folder.exists()
        assert not any((server.config.data_root / "deleting").iterdir())
        assert rows(server.config.data_root, job.job_id) == (0, 0, 0)
        assert code_of(lambda: client.get(job.job_id)) == grpc.StatusCode.NOT_FOUND
        assert code_of(lambda: list(client.watch(job.job_id))) == grpc.StatusCode.NOT_FOUND
        assert code_of(lambda: client.delete(job.job_id)) == grpc.StatusCode.NOT_FOUND
        assert [j.job_id for j in client.list_jobs()] == [kept.job_id]
        # The other job is untouched.
        assert client.get(kept.job_id).state == pb.JOB_STATE_SUCCEEDED
        assert (job_dir(server, kept.job_id) / "recording.zarr").is_dir()


def test_a_job_that_has_not_ended_is_refused_and_others_jobs_are_not_found(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(local={"max_concurrent_jobs": 1, "poll_interval_s": 0.1})
    with server.client() as client, server.client(BOB) as bob:
        running = client.submit(tiny_circuit, duration_ms=LONG_MS)
        queued = client.submit(tiny_circuit)
        wait_for_progress(client, running.job_id)
        assert client.get(queued.job_id).state == pb.JOB_STATE_QUEUED
        for job in (running, queued):
            with pytest.raises(grpc.RpcError) as caught:
                client.delete(job.job_id)
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "cancel it first" in caught.value.details()
            assert job_dir(server, job.job_id).is_dir()
            assert code_of(lambda j=job: bob.delete(j.job_id)) == grpc.StatusCode.NOT_FOUND
        for bad in ("", "0123", "ABCDEF012345", "../../etc"):
            assert code_of(lambda b=bad: client.delete(b)) == grpc.StatusCode.INVALID_ARGUMENT
        for job in (running, queued):
            client.cancel(job.job_id)
            assert wait_for(client, job.job_id, FINAL).state == pb.JOB_STATE_CANCELLED
            assert client.delete(job.job_id) >= 0
            assert not job_dir(server, job.job_id).exists()
        assert list(client.list_jobs()) == []


def delete_when_allowed(client: JobClient, job_id: str, timeout: float = 120.0) -> int:
    """Call DeleteJob as fast as possible until it is no longer refused; the bytes freed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.delete(job_id)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
        assert time.monotonic() < deadline, f"job {job_id} was never deletable"


@pytest.mark.parametrize("ending", ["succeeds", "cancelled"])
def test_a_deletion_racing_the_end_of_a_job_waits_for_it(
    server: ServerThread, tiny_circuit: str, caplog: pytest.LogCaptureFixture, ending: str
) -> None:
    """DeleteJob hammered while the job runs and ends: refused until the job's end is durable,
    by which time its processes are gone and its recording settled (a cancelled job's store
    is rewritten by the service before the end is written); nothing fails in the server."""
    caplog.set_level(logging.WARNING)
    with server.client() as client:
        duration = 2_000.0 if ending == "succeeds" else LONG_MS
        job = client.submit(tiny_circuit, duration_ms=duration)
        folder = job_dir(server, job.job_id)
        if ending == "cancelled":
            wait_for_progress(client, job.job_id)
            client.cancel(job.job_id)
        assert delete_when_allowed(client, job.job_id) > 0
        assert processes_mentioning(str(folder)) == []
        assert not folder.exists()
        assert code_of(lambda: client.get(job.job_id)) == grpc.StatusCode.NOT_FOUND
    assert rows(server.config.data_root, job.job_id) == (0, 0, 0)
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []


def test_the_store_deletes_only_ended_jobs_of_their_owner(tmp_path: Path) -> None:
    """The store's own guard (the servicer's check could be overtaken): a job RUNNING in the
    store (also one waiting for a retry or the next link of a chain: RUNNING without an
    external id) is never deleted; the event log stays append-only for every other job."""

    async def scenario() -> None:
        store = await JobStore.open(tmp_path / "jobs.sqlite3")
        pending_retry = make_job("a" * 12, 1.0, state=JobState.RUNNING, start_time=2.0, segment=2)
        ended = make_job("b" * 12, 1.0, state=JobState.FAILED, end_time=3.0)
        await store.write([(pending_retry, "retrying", {}, 2.0), (ended, "finished", {}, 3.0)])
        with pytest.raises(JobNotEndedError):
            await store.begin_deletion(pending_retry.job_id, None, "test", 4.0)
        with pytest.raises(UnknownJobError):
            await store.begin_deletion(ended.job_id, "bob", "test", 4.0)
        with pytest.raises(UnknownJobError):
            await store.begin_deletion("c" * 12, None, "test", 4.0)
        assert await store.get(pending_retry.job_id) == pending_retry
        gone = await store.begin_deletion(ended.job_id, "alice", "by alice", 4.0)
        assert gone == ended
        assert await store.get(ended.job_id) is None
        assert await store.events(ended.job_id) == []
        assert await store.pending_deletions() == [ended.job_id]
        await store.end_deletion(ended.job_id)
        assert await store.pending_deletions() == []
        assert len(await store.events(pending_retry.job_id)) == 1
        await store.close()

    asyncio.run(scenario())
    with (
        sqlite3.connect(tmp_path / "jobs.sqlite3") as db,
        pytest.raises(sqlite3.IntegrityError, match="append-only"),
    ):
        db.execute("DELETE FROM events")


@pytest.mark.parametrize("moved", [False, True], ids=["before-rename", "after-rename"])
def test_a_deletion_interrupted_by_a_stop_is_finished_by_the_next_server(
    make_server: Callable[..., ServerThread], tiny_circuit: str, moved: bool
) -> None:
    """The record went (step 1) but the server stopped before the folder did: the next server
    removes it (whether or not it had been moved to ``deleting/``) and forgets the deletion."""
    first = make_server()
    with first.client() as client:
        job = client.submit(tiny_circuit)
        kept = client.submit(tiny_circuit)
        for submitted in (job, kept):
            wait_for(client, submitted.job_id, FINAL)
    first.stop()
    data_root = first.config.data_root.resolve()
    folder = data_root / "jobs" / job.job_id

    async def first_step() -> None:
        store = await JobStore.open(data_root / "jobs.sqlite3")
        await store.begin_deletion(job.job_id, "alice", "deleted by alice", 5.0)
        await store.close()

    asyncio.run(first_step())
    if moved:
        (data_root / "deleting").mkdir(exist_ok=True)
        shutil.move(folder, data_root / "deleting" / job.job_id)
    second = make_server(data_root=data_root)
    with second.client() as client:
        assert code_of(lambda: client.get(job.job_id)) == grpc.StatusCode.NOT_FOUND
        assert client.get(kept.job_id).state == pb.JOB_STATE_SUCCEEDED
    assert not folder.exists()
    assert not (data_root / "deleting" / job.job_id).exists()
    assert rows(data_root, job.job_id) == (0, 0, 0)
    assert (data_root / "jobs" / kept.job_id / "recording.zarr").is_dir()


def test_a_version_2_store_can_delete_after_the_upgrade(tmp_path: Path) -> None:
    """Opening a schema-2 store adds the columns of resource use (defaults: nothing counted)
    and replaces the events' delete trigger by the one that lets deleted jobs' events go."""
    path = tmp_path / "jobs.sqlite3"

    async def create() -> None:
        store = await JobStore.open(path)
        await store.write([(make_job("d" * 12, 1.0, state=JobState.SUCCEEDED, end_time=2.0),
                            "finished", {}, 2.0)])  # fmt: skip
        await store.close()

    asyncio.run(create())
    with sqlite3.connect(path) as db:  # back to what schema 2 had
        for column in ("cpu_s", "peak_rank_memory_bytes", "peak_memory_bytes", "counted_runs",
                       "store_bytes"):  # fmt: skip
            db.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
        db.execute("DROP TABLE deletions")
        db.execute("DROP TRIGGER events_no_delete")
        db.execute(
            "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
            "BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END"
        )
        db.execute("PRAGMA user_version = 2")

    async def upgrade() -> None:
        store = await JobStore.open(path)
        job = await store.get("d" * 12)
        assert job is not None
        assert (job.cpu_s, job.peak_memory_bytes, job.counted_runs, job.store_bytes) == (
            0.0, 0, (), None,
        )  # fmt: skip
        counted = dataclasses.replace(job, cpu_s=1.5, counted_runs=("r1",), store_bytes=10)
        await store.write([(counted, "finished", {}, 3.0)])
        assert await store.get(job.job_id) == counted
        await store.begin_deletion(job.job_id, None, "test", 4.0)
        await store.end_deletion(job.job_id)
        assert await store.events(job.job_id) == []
        await store.close()

    asyncio.run(upgrade())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3


def test_brainsim_delete(
    server: ServerThread, tiny_circuit: str, cli: Callable[..., CliRun]
) -> None:
    run = cli(server)
    with server.client() as client:
        first = client.submit(tiny_circuit)
        second = client.submit(tiny_circuit)
        for job in (first, second):
            wait_for(client, job.job_id, FINAL)
    code, out, err = run("delete", first.job_id, "0" * 12, second.job_id)
    assert code == 1
    assert f"job {first.job_id}: deleted (" in out
    assert f"job {second.job_id}: deleted (" in out
    assert f"error: job {'0' * 12}: NOT_FOUND" in err
    code, out, _ = run("jobs")
    assert first.job_id not in out
    assert second.job_id not in out


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@pytest.fixture(scope="module")
def shared_jobs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerThread, dict[str, tuple[str, str]]]]:
    """A server with ended jobs of alice and bob and a running one of alice: id -> (owner,
    what). The server must log no error meanwhile."""
    folder = tmp_path_factory.mktemp("delete-fuzz")
    config = load_config(
        None,
        {
            "listen": "127.0.0.1:0",
            "data_root": folder / "data",
            "token_file": write_tokens(folder),
            "local": {"max_concurrent_jobs": 2, "poll_interval_s": 0.1},
        },
    )
    errors = _ErrorRecords()
    logging.getLogger("services").addHandler(errors)
    server = ServerThread(config)
    jobs: dict[str, tuple[str, str]] = {}
    try:
        with server.client() as alice, server.client(BOB) as bob:
            text = TINY.read_text(encoding="utf-8")
            running = alice.submit(text, duration_ms=LONG_MS)
            jobs[running.job_id] = ("alice", "running")
            for client, owner in ((alice, "alice"), (alice, "alice"), (bob, "bob")):
                job = client.submit(text)
                wait_for(client, job.job_id, FINAL)
                jobs[job.job_id] = (owner, "ended")
            wait_for_progress(alice, running.job_id)
        yield server, jobs
        assert errors.records == []
    finally:
        server.stop()
        logging.getLogger("services").removeHandler(errors)
        kill_leftover_jobs(config.data_root)


def delete_answer(client: JobClient, job_id: str) -> tuple[grpc.StatusCode | None, int]:
    """(status code, 0) of a refused DeleteJob, (None, bytes freed) of one that deleted."""
    try:
        return None, client.delete(job_id)
    except grpc.RpcError as error:
        return error.code(), 0


_TOKENS = {ALICE: "alice", BOB: "bob", "": None, "not-a-token": None}
_PROPER = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
}


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), token=st.sampled_from(sorted(_TOKENS)))
def test_delete_job_answers_every_request_properly(
    shared_jobs: tuple[ServerThread, dict[str, tuple[str, str]]],
    data: st.DataObject,
    token: str,
) -> None:
    """Fuzzed ids (real ones of both users, ended or running, random, malformed) and tokens:
    every answer is a documented one, and only the owner's ended job is ever deleted."""
    server, jobs = shared_jobs
    job_id = data.draw(
        st.one_of(
            st.sampled_from(sorted(jobs)),
            st.text(alphabet="0123456789abcdef", min_size=12, max_size=12),
            st.text(max_size=30),
        )
    )
    user = _TOKENS[token]
    owner, what = jobs.get(job_id, (None, None))
    with server.client(token or None) as client:
        code, freed = delete_answer(client, job_id)
    if code is not None:
        assert code in _PROPER
        if user is None:
            assert code == grpc.StatusCode.UNAUTHENTICATED
        elif owner == user:
            assert (what, code) in {
                ("running", grpc.StatusCode.FAILED_PRECONDITION),
                ("deleted", grpc.StatusCode.NOT_FOUND),
            }
        return
    assert (owner, what) == (user, "ended")
    assert freed > 0
    jobs[job_id] = (owner, "deleted")
    assert not (server.config.data_root / "jobs" / job_id).exists()


def test_after_the_fuzzing_only_the_running_job_is_left(
    shared_jobs: tuple[ServerThread, dict[str, tuple[str, str]]],
) -> None:
    server, jobs = shared_jobs
    with server.client() as alice, server.client(BOB) as bob:
        left = [job.job_id for job in alice.list_jobs()] + [job.job_id for job in bob.list_jobs()]
        for job_id, (_, what) in jobs.items():
            if what == "ended":  # not drawn with its owner's token: delete it now
                (alice if jobs[job_id][0] == "alice" else bob).delete(job_id)
        running = [job_id for job_id, (_, what) in jobs.items() if what == "running"]
        assert set(running) <= set(left)
        assert [job.job_id for job in alice.list_jobs()] == running
        assert list(bob.list_jobs()) == []
        alice.cancel(running[0])
        wait_for(alice, running[0], FINAL)
