"""Pools of resident ranks, started for real: runs through a pool match runs on fresh ranks,
bad input and vanished clients leave the pool serving, and pools stop when asked or idle."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from brainsim.engine.launch import find_mpiexec
from brainsim.errors import PoolError
from brainsim.pool.protocol import code_fingerprint, receive, send, socket_path
from tests.engine.conftest import (
    ROOT,
    assert_cancelled_mid_run,
    brainsim_run,
    interrupt_long_run,
    read_store,
    root_attrs,
    start_long_run,
)

TINY = ROOT / "circuits" / "tiny.yaml"

pytestmark = pytest.mark.mpi


def brainsim(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "brainsim", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def pools() -> list[dict[str, Any]]:
    result = brainsim("pool", "status", "--json")
    assert result.returncode == 0, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def pool_of(ranks: int) -> dict[str, Any]:
    (info,) = [p for p in pools() if p["ranks"] == ranks]
    return info


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition: Any, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def pool2() -> Iterator[dict[str, Any]]:
    """A pool of 2 ranks for the module; it must stop, and its ranks end, when asked."""
    started = brainsim("pool", "start", "--ranks", "2")
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout
    info = pool_of(2)
    try:
        yield info
    finally:
        stopped = brainsim("pool", "stop", "--ranks", "2")
        assert stopped.returncode == 0, stopped.stderr
        assert "stopped" in stopped.stdout
        assert wait_until(lambda: not any(alive(p) for p in info["pids"]))
        assert not Path(info["socket"]).exists()


def test_a_started_pool_is_listed_idle_and_a_second_start_finds_it(
    pool2: dict[str, Any],
) -> None:
    assert len(pool2["pids"]) == 2
    assert all(alive(p) for p in pool2["pids"])
    assert pool2["current_code"]
    assert not pool2["busy"]
    again = brainsim("pool", "start", "--ranks", "2")
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert pool_of(2)["pids"] == pool2["pids"]
    text = brainsim("pool", "status")
    assert "2 rank(s): idle" in text.stdout


def test_idle_ranks_use_no_cpu(pool2: dict[str, Any]) -> None:
    """Waiting ranks block in recv (an MPI call would spin at 100 % of a core)."""

    def cpu_ticks() -> int:
        total = 0
        for pid in pool2["pids"]:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    before = cpu_ticks()
    time.sleep(1.0)
    assert cpu_ticks() - before <= 5  # clock ticks (1/100 s each), both ranks together


def test_a_run_through_the_pool_is_the_run_on_fresh_ranks(
    pool2: dict[str, Any], tmp_path: Path
) -> None:
    done = pool_of(2)["jobs_done"]
    pooled, fresh = tmp_path / "pooled.zarr", tmp_path / "fresh.zarr"
    result = brainsim_run(TINY, pooled, "--seed", "7", ranks=2)
    assert result.returncode == 0, result.stderr
    assert pool_of(2)["jobs_done"] == done + 1
    result = brainsim_run(TINY, fresh, "--seed", "7", "--no-pool", ranks=2)
    assert result.returncode == 0, result.stderr
    assert pool_of(2)["jobs_done"] == done + 1
    a, b = read_store(pooled), read_store(fresh)
    assert a.keys() == b.keys()
    assert len(a) > 4
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert a["spikes/E/node_ids"].size > 100
    attrs = root_attrs(pooled)
    assert attrs["status"] == "complete"
    assert attrs["provenance"]["n_ranks"] == 2  # type: ignore[index]


def test_relative_paths_are_the_clients(pool2: dict[str, Any], tmp_path: Path) -> None:
    """The pool runs the job in the client's working directory."""
    (tmp_path / "c.yaml").write_text(TINY.read_text())
    result = subprocess.run(
        [sys.executable, "-m", "brainsim", "run", "c.yaml", "--out", "r.zarr", "--ranks", "2",
         "--progress", "json", "--duration-ms", "20"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0] == {"event": "started", "n_ranks": 2, "duration_ms": 20.0}
    assert events[-1] == {"event": "finished", "status": "complete"}
    assert root_attrs(tmp_path / "r.zarr")["status"] == "complete"


def test_other_rank_counts_start_their_own_ranks(pool2: dict[str, Any], tmp_path: Path) -> None:
    """A 3-rank run does not go to the 2-rank pool, and records the same spikes."""
    done = pool_of(2)["jobs_done"]
    pooled, three = tmp_path / "pooled.zarr", tmp_path / "three.zarr"
    assert brainsim_run(TINY, pooled, ranks=2).returncode == 0
    result = brainsim_run(TINY, three, ranks=3)
    assert result.returncode == 0, result.stderr
    assert pool_of(2)["jobs_done"] == done + 1
    assert root_attrs(three)["provenance"]["n_ranks"] == 3  # type: ignore[index]
    a, b = read_store(pooled), read_store(three)
    for name in ("spikes/E/node_ids", "spikes/E/timestamps", "spikes/I/node_ids"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_bad_input_is_reported_and_the_pool_keeps_serving(
    pool2: dict[str, Any], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("dt_ms: 0.1", "dt_ms: -0.1"))
    result = brainsim_run(bad, tmp_path / "never.zarr", ranks=2)
    assert result.returncode == 2
    assert "simulation.dt_ms" in result.stderr
    assert not (tmp_path / "never.zarr").exists()

    result = brainsim_run(TINY, tmp_path / "x.zarr", "--param", "nope", ranks=2)
    assert result.returncode == 2
    assert "--param" in result.stderr

    result = brainsim_run(tmp_path / "missing.yaml", tmp_path / "m.zarr", ranks=2)
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr

    existing = tmp_path / "existing.zarr"
    assert brainsim_run(TINY, existing, "--duration-ms", "5", ranks=2).returncode == 0
    result = brainsim_run(TINY, existing, ranks=2)
    assert result.returncode == 2
    assert "already holds a recording" in result.stderr

    ok = brainsim_run(TINY, tmp_path / "ok.zarr", ranks=2)
    assert ok.returncode == 0, ok.stderr
    assert pool_of(2)["pids"] == pool2["pids"]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_client_cancels_the_pooled_run(
    pool2: dict[str, Any], tmp_path: Path, how: signal.Signals
) -> None:
    out = tmp_path / "cancel.zarr"

    def signal_client(proc: subprocess.Popen[str]) -> None:
        assert pool_of(2)["busy"]
        proc.send_signal(how)

    assert interrupt_long_run(out, signal_client)[0] == 130
    assert_cancelled_mid_run(out)
    assert not pool_of(2)["busy"]


def test_a_killed_client_cancels_its_run_and_frees_the_pool(
    pool2: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "orphan.zarr"
    with start_long_run(out) as proc:
        proc.kill()
        proc.communicate()
    assert wait_until(lambda: not pool_of(2)["busy"])
    assert root_attrs(out)["status"] == "cancelled"
    assert brainsim_run(TINY, tmp_path / "next.zarr", ranks=2).returncode == 0


def test_queued_runs_wait_their_turn(pool2: dict[str, Any], tmp_path: Path) -> None:
    first = start_long_run(tmp_path / "first.zarr")
    try:
        second = subprocess.Popen(
            [sys.executable, "-m", "brainsim", "run", str(TINY), "--out",
             str(tmp_path / "second.zarr"), "--ranks", "2", "--progress", "plain"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert wait_until(lambda: pool_of(2)["queued"] == 1)
        assert second.poll() is None
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 130
        out, err = second.communicate(timeout=120)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert second.returncode == 0, err
    assert "waiting for the pool: 1 job(s) ahead" in err
    assert "complete in" in out


def _raw(path: Path, payload: bytes) -> dict[str, Any] | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(payload)
        return receive(sock)


def _frame(obj: object) -> bytes:
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


def test_malformed_requests_get_errors_and_the_pool_survives(pool2: dict[str, Any]) -> None:
    path = Path(pool2["socket"])
    huge = _raw(path, struct.pack(">I", 1 << 30))
    assert huge is not None
    assert huge["op"] == "error"
    assert "limit" in huge["message"]
    garbage = _raw(path, struct.pack(">I", 5) + b"\xff{]x!")
    assert garbage is not None
    assert garbage["op"] == "error"
    assert "JSON" in garbage["message"]
    not_object = _raw(path, _frame([1, 2]))
    assert not_object is not None
    assert "'op'" in not_object["message"]
    unknown = _raw(path, _frame({"op": "format_disk"}))
    assert unknown is not None
    assert "unknown op 'format_disk'" in unknown["message"]
    run: dict[str, Any] = {"op": "run", "argv": ["run", str(TINY)], "cwd": os.getcwd()}
    stale = _raw(path, _frame({**run, "fingerprint": "0" * 64}))
    assert stale is not None
    assert stale["op"] == "refused"
    assert "other brainsim code" in stale["reason"]
    bad_requests: list[tuple[dict[str, Any], str]] = [
        ({"argv": "run x"}, "list of strings"),
        ({"argv": ["analyze", "x"]}, "'brainsim run'"),
        ({"cwd": "/nonexistent/dir"}, "does not exist"),
    ]
    for bad, why in bad_requests:
        reply = _raw(path, _frame({**run, "fingerprint": code_fingerprint(), **bad}))
        assert reply is not None
        assert reply["op"] == "refused"
        assert why in reply["reason"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # connects, says nothing
        sock.connect(str(path))
        start = time.monotonic()
        assert pool_of(2)["pids"] == pool2["pids"]
        assert time.monotonic() - start < 5.0  # not held up by the silent client
    assert pool_of(2)["pids"] == pool2["pids"]


def test_framing_round_trip_and_limits() -> None:
    left, right = socket.socketpair()
    with left, right:
        send(left, {"op": "output", "text": "é" * 10})
        assert receive(right) == {"op": "output", "text": "é" * 10}
        left.sendall(struct.pack(">I", 10) + b"{}")
        left.shutdown(socket.SHUT_WR)
        with pytest.raises(PoolError, match="closed after 2 of 10 bytes"):
            receive(right)
        assert receive(right) is None
    with socket.socket(socket.AF_UNIX) as unused, pytest.raises(PoolError, match="limit"):
        send(unused, {"op": "output", "text": "x" * (1 << 20)})


@pytest.fixture
def own_pool_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A pool directory of the test's own (short: socket paths have a length limit)."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="bsq-"))
    previous = os.environ["BRAINSIM_POOL_DIR"]
    os.environ["BRAINSIM_POOL_DIR"] = str(directory)
    try:
        yield directory
    finally:
        brainsim("pool", "stop")
        os.environ["BRAINSIM_POOL_DIR"] = previous
        subprocess.run(["rm", "-rf", str(directory)], check=False)


def test_a_stale_socket_is_ignored_and_cleaned_up(own_pool_dir: Path, tmp_path: Path) -> None:
    stale = own_pool_dir / "pool-2.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(stale))  # and closed without unlinking: a killed pool leaves this
    result = brainsim_run(TINY, tmp_path / "cold.zarr", ranks=2)
    assert result.returncode == 0, result.stderr
    assert pools() == []
    assert not stale.exists()


def test_an_idle_pool_stops_by_itself(own_pool_dir: Path, tmp_path: Path) -> None:
    """... and ranks that an MPI launcher started, even one of them, never use a pool."""
    started = brainsim("pool", "start", "--ranks", "1", "--idle-timeout-s", "6")
    assert started.returncode == 0, started.stderr
    (info,) = pools()
    assert info["ranks"] == 1
    assert info["idle_timeout_s"] == 6.0
    assert brainsim_run(TINY, tmp_path / "one.zarr", ranks=1).returncode == 0
    assert pools()[0]["jobs_done"] == 1
    launched = subprocess.run(
        [find_mpiexec(), "-n", "1", sys.executable, "-m", "brainsim", "run", str(TINY), "--out",
         str(tmp_path / "mpi.zarr"), "--progress", "none"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    assert pools()[0]["jobs_done"] == 1
    assert wait_until(lambda: not socket_path(1, own_pool_dir).exists(), 30)
    assert wait_until(lambda: not alive(info["pids"][0]), 10)
    log = (own_pool_dir / "pool-1.log").read_text()
    assert "idle for 6 s: stopping" in log
    assert brainsim("pool", "stop").stdout.strip() == "no pool is running"


def test_a_pool_dir_others_may_write_is_refused(own_pool_dir: Path, tmp_path: Path) -> None:
    own_pool_dir.chmod(0o777)
    try:
        result = brainsim("pool", "start", "--ranks", "2")
        assert result.returncode == 2
        assert "others may write" in result.stderr
        assert "BRAINSIM_POOL_DIR" in result.stderr
        # A run ignores such a directory and starts its own ranks.
        assert brainsim_run(TINY, tmp_path / "t.zarr", ranks=2).returncode == 0
    finally:
        own_pool_dir.chmod(0o700)


def test_a_pool_that_cannot_start_says_why(own_pool_dir: Path) -> None:
    blocker = own_pool_dir / "pool-2.sock"
    blocker.mkdir()  # a directory where the socket must go
    (blocker / "x").touch()
    result = brainsim("pool", "start", "--ranks", "2")
    assert result.returncode == 2
    assert "exited with code" in result.stderr
    assert "cannot listen" in result.stderr


def test_the_fingerprint_does_not_depend_on_the_interpreters_name() -> None:
    """``python -m brainsim pool start`` then ``brainsim run`` (whose script may name
    ``python3.11``) must agree: the names of one interpreter give one fingerprint."""
    bindir = Path(sys.executable).parent
    major, minor = sys.version_info[:2]
    names = [
        n for n in (f"python{major}.{minor}", f"python{major}", "python") if (bindir / n).exists()
    ]
    assert len(names) >= 2
    script = "from brainsim.pool.protocol import code_fingerprint; print(code_fingerprint())"
    prints = {
        subprocess.run(
            [str(bindir / n), "-c", script], capture_output=True, text=True, check=True
        ).stdout
        for n in names
    }
    assert len(prints) == 1
    assert len(prints.pop().strip()) == 64


def test_a_killed_rank_ends_the_pool_and_fails_the_run(own_pool_dir: Path, tmp_path: Path) -> None:
    """As with a run on fresh ranks, a rank that dies takes the others down: the client says
    where the pool's log is, the store is marked failed, and the next run starts fresh ranks."""
    started = brainsim("pool", "start", "--ranks", "2")
    assert started.returncode == 0, started.stderr
    (info,) = pools()
    out = tmp_path / "killed.zarr"
    code, err = interrupt_long_run(out, lambda _: os.kill(info["pids"][1], signal.SIGKILL))
    assert code == 1
    assert "the pool's ranks ended during the run" in err
    assert str(own_pool_dir / "pool-2.log") in err
    assert root_attrs(out)["status"] == "failed"
    assert wait_until(lambda: not any(alive(p) for p in info["pids"]), 30)
    assert pools() == []
    assert brainsim_run(TINY, tmp_path / "after.zarr", ranks=2).returncode == 0
