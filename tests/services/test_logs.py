"""GetJobLogs on a real loopback server with real jobs: pages of stdout.log and stderr.log that
add up to the files, complete lines only while a job runs, the service's own lines from the
event log, cursors that are refused, other users' jobs, and ``brainsim logs``."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.gen.brainsim.v1 import job_service_pb2_grpc as pb_grpc
from services.jobs import Job, LogStream, Target
from services.logs import LONG_LINE_BYTES, PAGE_BYTES, event_lines, file_page, service_page
from services.machine import continue_message, retry_message
from services.store import EventRecord
from tests.services.conftest import ALICE, BOB, FINAL, CliRun, ServerThread, wait_for
from tests.services.test_api import field_violations, rpc_error

STDERR_TEXT = (
    "first line\n"
    "\n"
    "a line with a carriage return\r\n"
    "unicode: \u00e9\u00e8 \u2713 \U0001f9e0\n" + "x" * 5000 + "\n"
    "the last line has no line break"
)
"""What the tests write into an ended job's stderr.log: an empty line, a CR, wide characters, a
long line, and a last line without its line break."""


def stub_of(server: ServerThread, token: str = ALICE) -> tuple[pb_grpc.JobServiceStub, Any]:
    channel = grpc.insecure_channel(server.address)
    return pb_grpc.JobServiceStub(channel), (("authorization", f"Bearer {token}"),)


def get_logs(
    server: ServerThread,
    job_id: str,
    stream: int = pb.LOG_STREAM_STDOUT,
    cursor: str = "",
    max_lines: int = 0,
    token: str = ALICE,
) -> pb.GetJobLogsResponse:
    stub, metadata = stub_of(server, token)
    request = pb.GetJobLogsRequest(job_id=job_id, stream=stream, cursor=cursor, max_lines=max_lines)
    response: pb.GetJobLogsResponse = stub.GetJobLogs(request, metadata=metadata, timeout=30)
    return response


def all_pages(
    server: ServerThread, job_id: str, stream: int, max_lines: int
) -> tuple[list[pb.GetJobLogsResponse], str]:
    """Every page until ``complete``; (the pages, the last cursor)."""
    pages, cursor = [], ""
    for _ in range(10_000):
        page = get_logs(server, job_id, stream, cursor, max_lines)
        pages.append(page)
        cursor = page.next_cursor
        if page.complete:
            return pages, cursor
        assert page.lines, "a page without lines before the end"
    raise AssertionError("no end")


def text_of(pages: list[pb.GetJobLogsResponse]) -> str:
    return "".join(line.text + "\n" for page in pages for line in page.lines)


@pytest.fixture
def done(server: ServerThread, tiny_circuit: str) -> tuple[ServerThread, str, Path]:
    """The server and a finished tiny job; (server, job id, job folder)."""
    with server.client() as client:
        job = client.submit(tiny_circuit)
        final = wait_for(client, job.job_id, FINAL)
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    return server, job.job_id, server.config.data_root.resolve() / "jobs" / job.job_id


@pytest.fixture
def held(make_server: Callable[..., ServerThread]) -> ServerThread:
    """A server that queues local jobs but never starts them (no local slots)."""
    return make_server(local={"max_concurrent_jobs": 0})


# --- the output files ---------------------------------------------------------------------------


def test_small_pages_add_up_to_the_stdout_file(done: tuple[ServerThread, str, Path]) -> None:
    server, job_id, job_dir = done
    content = (job_dir / "stdout.log").read_text()
    assert content.count("\n") >= 4, content  # progress reports: several pages of 3
    pages, cursor = all_pages(server, job_id, pb.LOG_STREAM_STDOUT, 3)
    assert len(pages) > 1
    assert all(len(page.lines) <= 3 for page in pages)
    assert text_of(pages) == content  # the lines as written, progress reports too
    assert all(line.stream == pb.LOG_STREAM_STDOUT for p in pages for line in p.lines)
    assert not any(line.HasField("time") for p in pages for line in p.lines)
    # The default stream is stdout; one page of the default size holds it all.
    (whole,) = all_pages(server, job_id, pb.LOG_STREAM_UNSPECIFIED, 0)[0]
    assert text_of([whole]) == content
    # After the end: an empty page, complete.
    after = get_logs(server, job_id, pb.LOG_STREAM_STDOUT, cursor)
    assert (list(after.lines), after.complete, after.next_cursor) == ([], True, cursor)


def test_pages_of_stderr_with_odd_lines_and_a_last_line_without_a_break(
    done: tuple[ServerThread, str, Path],
) -> None:
    server, job_id, job_dir = done
    (job_dir / "stderr.log").write_text(STDERR_TEXT, encoding="utf-8")
    for max_lines in (1, 2, 1000):
        pages, _ = all_pages(server, job_id, pb.LOG_STREAM_STDERR, max_lines)
        # The job has ended: the last line counts although it has no line break.
        assert text_of(pages) == STDERR_TEXT + "\n"
        texts = [line.text for page in pages for line in page.lines]
        assert texts[1] == ""
        assert texts[2] == "a line with a carriage return\r"
        assert texts[4] == "x" * 5000
        assert texts[-1] == "the last line has no line break"


def test_a_running_jobs_partial_last_line_waits_for_its_line_break(held: ServerThread) -> None:
    with held.client() as client:
        job = client.submit("apiVersion: brainsim/v1\n" + _TINY_TAIL)
    job_dir = held.config.data_root.resolve() / "jobs" / job.job_id

    empty = get_logs(held, job.job_id)  # queued, nothing written yet
    assert (list(empty.lines), empty.complete) == ([], False)

    (job_dir / "stdout.log").write_bytes(b"one\ntwo\nthr")
    page = get_logs(held, job.job_id, cursor=empty.next_cursor)
    assert [line.text for line in page.lines] == ["one", "two"]
    assert not page.complete
    again = get_logs(held, job.job_id, cursor=page.next_cursor)
    assert (list(again.lines), again.complete) == ([], False)

    with (job_dir / "stdout.log").open("ab") as fh:
        fh.write(b"ee\nfou")
    page = get_logs(held, job.job_id, cursor=again.next_cursor)
    assert [line.text for line in page.lines] == ["three"]
    assert not page.complete

    with held.client() as client:
        client.cancel(job.job_id)
        assert wait_for(client, job.job_id, FINAL).state == pb.JOB_STATE_CANCELLED
    page = get_logs(held, job.job_id, cursor=page.next_cursor)  # ended: the rest is all
    assert [line.text for line in page.lines] == ["fou"]
    assert page.complete


def test_long_lines_come_in_pieces_and_a_page_stays_small(tmp_path: Path) -> None:
    """Pure (no server): a page holds about PAGE_BYTES of text, a longer line is cut."""
    path = tmp_path / "stdout.log"
    long_line = "a" * (LONG_LINE_BYTES * 5 // 2)
    path.write_text(long_line + "\n" + "b\n" * 3)
    pieces, cursor = [], ""
    while True:
        page = file_page("0123456789ab", LogStream.STDOUT, path, cursor, 1000, ended=True)
        assert sum(len(line.text) for line in page.lines) <= PAGE_BYTES + LONG_LINE_BYTES
        pieces.append([line.text for line in page.lines])
        cursor = page.next_cursor
        if page.complete:
            break
    texts = [text for page_texts in pieces for text in page_texts]
    assert [len(text) for text in texts] == [
        LONG_LINE_BYTES,
        LONG_LINE_BYTES,
        LONG_LINE_BYTES // 2,
        1,
        1,
        1,
    ]
    assert "".join(texts[:3]) == long_line
    assert len(pieces) >= 2


# --- the service's lines ------------------------------------------------------------------------


def test_the_service_lines_tell_the_jobs_story_with_times(
    done: tuple[ServerThread, str, Path],
) -> None:
    server, job_id, _ = done
    (page,) = all_pages(server, job_id, pb.LOG_STREAM_SERVICE, 0)[0]
    assert page.complete
    texts = [line.text for line in page.lines]
    assert texts[0] == "submitted by alice: 1 rank(s), local"
    assert texts[1].startswith("launched brainsim run --ranks 1 (pid ")
    assert "running" in texts
    assert texts[-1] == "finished: SUCCEEDED"
    times = [line.time.ToNanoseconds() for line in page.lines]
    assert all(t > 0 for t in times)
    assert times == sorted(times)
    assert all(line.stream == pb.LOG_STREAM_SERVICE for line in page.lines)
    # One line per page: the same lines.
    pages, _ = all_pages(server, job_id, pb.LOG_STREAM_SERVICE, 1)
    assert [line.text for p in pages for line in p.lines] == texts


def test_a_cancelled_jobs_service_lines_say_who_cancelled_it(held: ServerThread) -> None:
    with held.client() as client:
        job = client.submit("apiVersion: brainsim/v1\n" + _TINY_TAIL)
        client.cancel(job.job_id)
        wait_for(client, job.job_id, FINAL)
    page = get_logs(held, job.job_id, pb.LOG_STREAM_SERVICE)
    assert [line.text for line in page.lines] == [
        "submitted by alice: 1 rank(s), local",
        "finished: CANCELLED: cancelled by alice",
    ]
    assert page.complete


def test_retries_chains_and_unknown_events_in_words() -> None:
    """The lines of the events a real run rarely produces (pure: no server)."""
    job = Job("0123456789ab", "alice", Target.SLURM, 2, "c", 100.0, 1, 0.0, max_retries=2)
    reason = "mpiexec exited with status 9\nstderr ends with:\n  Killed"
    events = [
        EventRecord(1, job.job_id, 1.0, "launched", {"external_id": "77", "at": 1.0}),
        EventRecord(
            2,
            job.job_id,
            2.0,
            "retrying",
            {"attempt": 2, "of": 3, "segment": 2, "resume_from_ms": 40.0, "reason": reason},
        ),
        EventRecord(3, job.job_id, 3.0, "continuing", {"segment": 3, "resume_from_ms": 80.0}),
        EventRecord(4, job.job_id, 4.0, "recovered", {"external_id": "78"}),
        EventRecord(5, job.job_id, 5.0, "finished", {"state": "FAILED", "reason": reason}),
        EventRecord(6, job.job_id, 6.0, "archived", {"where": "tape"}),
        EventRecord(7, job.job_id, 7.0, "retrying", {"attempt": "?"}),
    ]
    lines = [text for event in events for text in event_lines(event, job)]
    assert lines == [
        "launched Slurm job 77",
        retry_message(2, 3, 40.0, reason),  # what WatchJob said when it happened
        continue_message(3, 80.0),
        "server restarted; following Slurm job 78",
        "finished: FAILED: mpiexec exited with status 9",
        "stderr ends with:",
        "  Killed",
        'archived: {"where": "tape"}',
        'retrying: {"attempt": "?"}',
    ]
    assert lines[1] == "attempt 2 of 3: resuming from 40 ms after: mpiexec exited with status 9"
    page = service_page(job, events, "", 4, ended=True)
    assert [line.text for line in page.lines] == lines[:4]
    assert [line.time for line in page.lines] == [1.0, 2.0, 3.0, 4.0]
    assert not page.complete
    rest = service_page(job, events, page.next_cursor, 4, ended=True)
    assert [line.text for line in rest.lines] == lines[4:8]
    assert not rest.complete  # one line is left
    last = service_page(job, events, rest.next_cursor, 4, ended=True)
    assert ([line.text for line in last.lines], last.complete) == (lines[8:], True)


# --- refusals -----------------------------------------------------------------------------------


def test_garbled_and_foreign_cursors_are_invalid(done: tuple[ServerThread, str, Path]) -> None:
    server, job_id, _ = done
    stdout_cursor = get_logs(server, job_id, pb.LOG_STREAM_STDOUT, max_lines=1).next_cursor
    with server.client() as client:
        other = client.submit("apiVersion: brainsim/v1\n" + _TINY_TAIL)
        wait_for(client, other.job_id, FINAL)
    other_cursor = get_logs(server, other.job_id, max_lines=1).next_cursor

    def forged(document: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()

    refused = {
        "###": "not a cursor this server gave",
        "bm90IGpzb24=": "not a cursor this server gave",  # base64 of "not json"
        forged({"v": 1, "job": job_id, "stream": "stdout", "at": [-5]}): "not a cursor",
        forged({"v": 1, "job": job_id, "stream": "stdout", "at": [10**9]}): "past the end",
        forged({"v": 1, "job": job_id, "stream": "stdout", "at": [True]}): "not a cursor",
        forged([1, 2, 3]): "not a cursor",
        other_cursor: "another job",
    }
    for cursor, said in refused.items():
        error = rpc_error(lambda c=cursor: get_logs(server, job_id, cursor=c))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, cursor
        assert said in field_violations(error)["cursor"], (cursor, field_violations(error))
    for stream in (pb.LOG_STREAM_STDERR, pb.LOG_STREAM_SERVICE):
        error = rpc_error(lambda s=stream: get_logs(server, job_id, s, stdout_cursor))
        assert "'stdout' log" in field_violations(error)["cursor"]

    error = rpc_error(lambda: get_logs(server, job_id, max_lines=-1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error)) == {"max_lines"}
    error = rpc_error(lambda: get_logs(server, job_id, stream=9))
    assert set(field_violations(error)) == {"stream"}


def test_other_users_jobs_are_not_found_and_bad_ids_invalid(
    done: tuple[ServerThread, str, Path],
) -> None:
    server, job_id, _ = done
    error = rpc_error(lambda: get_logs(server, job_id, token=BOB))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    for bad in ("", "XYZ", job_id + "0"):
        error = rpc_error(lambda b=bad: get_logs(server, b))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "job_id" in field_violations(error)
    error = rpc_error(lambda: get_logs(server, job_id, token="no-such-token"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


# --- brainsim logs ------------------------------------------------------------------------------


def test_cli_logs_prints_each_stream(
    done: tuple[ServerThread, str, Path], cli: Callable[[ServerThread], CliRun]
) -> None:
    server, job_id, job_dir = done
    (job_dir / "stderr.log").write_text(STDERR_TEXT, encoding="utf-8")
    run = cli(server)
    code, out, err = run("logs", job_id)
    assert (code, err) == (0, "")
    assert out == (job_dir / "stdout.log").read_text()
    code, out, err = run("logs", job_id, "--stderr")
    assert (code, out) == (0, STDERR_TEXT + "\n")
    code, out, err = run("logs", job_id, "--service")
    assert code == 0
    last = out.splitlines()[-1]
    assert last.endswith("  finished: SUCCEEDED")
    assert last[:4].isdigit()  # the time first: 2026-12-03 06:45:45
    code, out, err = run("logs", "0123456789ab")
    assert code == 1
    assert err.startswith("error: NOT_FOUND: job '0123456789ab' not found")


def test_cli_logs_follow_waits_until_the_job_ends(
    server: ServerThread, tiny_circuit: str, cli: Callable[[ServerThread], CliRun]
) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, duration_ms=2000.0)
    result: dict[str, Any] = {}
    run = cli(server)

    def follow() -> None:
        result["answer"] = run("logs", job.job_id, "--follow")

    follower = threading.Thread(target=follow)
    follower.start()
    follower.join(120)
    assert not follower.is_alive()
    code, out, _ = result["answer"]
    with server.client() as client:
        assert client.get(job.job_id).state == pb.JOB_STATE_SUCCEEDED
    job_dir = server.config.data_root.resolve() / "jobs" / job.job_id
    assert code == 0
    assert out == (job_dir / "stdout.log").read_text()
    assert '"simulated_ms": 2000.0' in out


_TINY_TAIL = """name: small
simulation: {dt_ms: 0.1, duration_ms: 10.0, seed: 1}
populations:
  E: {size: 4, model: lif}
recordings: {spikes: all}
"""
"""A minimal circuit after its apiVersion line."""
