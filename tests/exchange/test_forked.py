"""Ranks forked from one process that serves as their MPI process manager
(:mod:`brainsim.exchange.forked`): the PMI-1 answers, MPI's collectives in forked ranks, and
what happens when a rank fails, aborts, is killed or is signalled."""

from __future__ import annotations

import ast
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from brainsim.engine.launch import ONE_HOST_MPI_SETTINGS, one_host_environment
from brainsim.exchange.forked import PmiServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = [sys.executable, "-m", "tests.exchange.forked_ranks"]


class _Client:
    """One rank's end of the PMI socket, speaking the protocol line by line."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(5)
        self._buffer = b""

    def ask(self, line: str) -> dict[str, str]:
        self.sock.sendall(line.encode() + b"\n")
        return self.answer()

    def answer(self) -> dict[str, str]:
        while b"\n" not in self._buffer:
            data = self.sock.recv(4096)
            assert data, "the server closed the connection"
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return dict(word.split("=", 1) for word in line.decode().split())


@pytest.fixture
def serving() -> Iterator[Callable[[int], tuple[PmiServer, list[_Client], threading.Thread]]]:
    """Starts a :class:`PmiServer` for ``n`` ranks in a thread; closes every socket after."""
    opened: list[socket.socket] = []

    def start(n: int) -> tuple[PmiServer, list[_Client], threading.Thread]:
        pairs = [socket.socketpair() for _ in range(n)]
        opened.extend(sock for pair in pairs for sock in pair)
        server = PmiServer([ours for ours, _ in pairs], "kvs_test")
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        return server, [_Client(theirs) for _, theirs in pairs], thread

    yield start
    for sock in opened:
        sock.close()


Serving = Callable[[int], tuple[PmiServer, list[_Client], threading.Thread]]


def test_the_pmi_server_answers_what_mpich_asks_on_one_machine(serving: Serving) -> None:
    server, (a, b, c), thread = serving(3)
    assert a.ask("cmd=init pmi_version=1 pmi_subversion=1") == {
        "cmd": "response_to_init", "rc": "0", "pmi_version": "1", "pmi_subversion": "1"
    }  # fmt: skip
    assert a.ask("cmd=get_maxes")["vallen_max"] == "1024"
    assert a.ask("cmd=get_appnum") == {"cmd": "appnum", "rc": "0", "appnum": "0"}
    assert b.ask("cmd=get_my_kvsname")["kvsname"] == "kvs_test"
    assert c.ask("cmd=get_universe_size")["size"] == "3"
    # Every rank on one node, three processes per node.
    mapping = a.ask("cmd=get kvsname=kvs_test key=PMI_process_mapping")
    assert (mapping["rc"], mapping["value"]) == ("0", "(vector,(0,1,3))")
    # A key nobody put is refused, as mpiexec refuses it; a put key is seen by every rank.
    assert a.ask("cmd=get kvsname=kvs_test key=PMI_hwloc_xmlfile") == {
        "cmd": "get_result", "rc": "1"
    }  # fmt: skip
    assert b.ask("cmd=put kvsname=kvs_test key=card-1 value=shm=a=b") == {
        "cmd": "put_result", "rc": "0"
    }  # fmt: skip
    assert c.ask("cmd=get kvsname=kvs_test key=card-1")["value"] == "shm=a=b"
    # The barrier answers nobody before the last rank is in, then everyone.
    for client in (a, b):
        client.sock.sendall(b"cmd=barrier_in\n")
    a.sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        a.answer()
    a.sock.settimeout(5)
    c.sock.sendall(b"cmd=barrier_in\n")
    assert [x.answer()["cmd"] for x in (a, b, c)] == ["barrier_out"] * 3
    for client in (a, b, c):
        assert client.ask("cmd=finalize") == {"cmd": "finalize_ack", "rc": "0"}
        client.sock.close()
    thread.join(5)
    assert not thread.is_alive()
    assert server.failure is None
    assert server.finalized == [True, True, True]


def test_a_rank_gone_before_finalize_or_aborting_stops_the_serving(serving: Serving) -> None:
    server, (a, b), thread = serving(2)
    a.ask("cmd=init pmi_version=1 pmi_subversion=1")
    b.sock.close()  # a crash: no finalize
    thread.join(5)
    assert server.failure == "rank 1 ended before MPI_Finalize"
    assert server.closed == [False, True]

    server, (a, b), thread = serving(2)
    b.sock.sendall(b"cmd=abort exitcode=9 message=bad\n")
    thread.join(5)
    assert (server.abort_code, server.failure) == (9, "rank 1 called MPI_Abort (exit code 9)")

    server, (a, b), thread = serving(2)  # a request it cannot serve (a spawn) is no hang
    a.sock.sendall(b"mcmd=spawn\n")
    thread.join(5)
    assert server.failure is not None
    assert "--launcher mpiexec" in server.failure


def _script(scenario: str, n_ranks: int = 2) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SCRIPT, scenario, str(n_ranks)],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip


def _ending(result: subprocess.CompletedProcess[str]) -> tuple[int, list[bool]]:
    """The parent's ``exit <code> finalized <flags>`` line."""
    last = result.stdout.strip().splitlines()[-1].split(" ", 3)
    assert (last[0], last[2]) == ("exit", "finalized"), result.stdout + result.stderr
    return int(last[1]), ast.literal_eval(last[3])


def test_mpich_can_be_started_in_forked_ranks_here_unless_mpi_has_started() -> None:
    assert _script("unavailable", 1).stdout.strip() == "None"
    started = _script("started", 1)
    assert started.stdout.strip() == "True MPI has already started in this process", started.stderr


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_every_collective_works_between_forked_ranks(ranks: int) -> None:
    """The checks ``mpi_collectives.py`` runs under mpiexec, on forked ranks: the object
    collectives and the native allgather(v) that compiled code calls."""
    result = _script("collectives", ranks)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "ok"
    assert _ending(result) == (0, [True] * ranks)


@pytest.mark.mpi
def test_forked_ranks_know_their_place() -> None:
    result = _script("environment", 3)
    assert result.returncode == 0, result.stderr
    seen_line, _ = result.stdout.splitlines()[0].rsplit(" ", 1)
    seen = ast.literal_eval(seen_line)
    assert [rank for rank, _, _ in seen] == ["0", "1", "2"]
    assert len({parent for _, _, parent in seen}) == 1  # all children of the one process


@pytest.mark.mpi
def test_the_run_ends_with_the_first_failing_ranks_code() -> None:
    assert _ending(_script("exit_codes")) == (7, [True, True])


@pytest.mark.mpi
def test_a_rank_that_raises_takes_the_others_down() -> None:
    """Rank 1 raises while rank 0 waits for it in a barrier: rank 1's traceback is shown, the
    parent stops rank 0 (which would wait for ever) and says which rank failed and how."""
    result = _script("raises")
    assert "RuntimeError: rank 1 fails" in result.stderr
    assert "rank 1 exited with code 3 before MPI_Finalize" in result.stderr
    assert _ending(result) == (3, [False, False])


@pytest.mark.mpi
def test_a_killed_rank_takes_the_others_down() -> None:
    result = _script("killed")
    assert "rank 1 was ended by SIGKILL before MPI_Finalize" in result.stderr
    assert _ending(result) == (3, [False, False])  # failed_code: the run failed


@pytest.mark.mpi
def test_mpi_abort_ends_every_rank_with_its_code() -> None:
    result = _script("aborts", 3)
    assert "rank 1 called MPI_Abort (exit code 5)" in result.stderr
    assert _ending(result) == (5, [False, False, False])


@pytest.mark.mpi
def test_signals_to_the_parent_reach_every_rank() -> None:
    with subprocess.Popen(
        [*SCRIPT, "signals", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGUSR1)  # to the parent alone
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert out.splitlines()[0] == "[True, True, True]", err
    assert out.splitlines()[-1] == "exit 0 finalized [True, True, True]"


def test_one_machine_runs_load_ucx_without_its_memory_hooks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("UCX_MEM_EVENTS", raising=False)
    assert one_host_environment()["UCX_MEM_EVENTS"] == "no"
    assert ONE_HOST_MPI_SETTINGS == {"UCX_MEM_EVENTS": "no"}
    monkeypatch.setenv("UCX_MEM_EVENTS", "yes")  # what the user says stays
    assert one_host_environment()["UCX_MEM_EVENTS"] == "yes"
    assert one_host_environment()["PATH"] == os.environ["PATH"]


def test_the_mpiexec_to_fall_back_on_can_be_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``$BRAINSIM_MPIEXEC`` (the job service sets its configured one) names the mpiexec that
    ``brainsim run`` starts where it does not fork; a name that is not there is a clear error."""
    from brainsim.engine.launch import MPIEXEC_VARIABLE, find_mpiexec
    from brainsim.errors import EngineError

    fake = tmp_path / "my-mpiexec"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv(MPIEXEC_VARIABLE, str(fake))
    assert find_mpiexec() == str(fake)
    monkeypatch.setenv(MPIEXEC_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(EngineError, match="BRAINSIM_MPIEXEC names"):
        find_mpiexec()
    monkeypatch.delenv(MPIEXEC_VARIABLE)
    assert Path(find_mpiexec()).name == "mpiexec"
