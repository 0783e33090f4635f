"""The client side of a pool: run a job there, start, stop and list pools.

Light on purpose: ``brainsim run`` imports it before it knows whether a pool will take the job,
and the whole point of a pool is that the client starts in a few tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from brainsim.errors import PoolError
from brainsim.pool.protocol import (
    code_fingerprint,
    connect,
    log_path,
    pool_dir,
    receive,
    send,
    socket_path,
)

__all__ = ["hello", "list_pools", "run_in_pool", "start_pool", "stop_pool"]

_START_TIMEOUT_S = 900.0
"""How long ``start_pool`` waits for a new pool (a cold numba cache compiles for minutes)."""
_STOP_TIMEOUT_S = 30.0


def hello(path: Path, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The pool's ``info`` at ``path``, or ``None`` when nothing (or no pool) answers there."""
    try:
        with connect(path, timeout_s, keep_timeout=True) as sock:
            send(sock, {"op": "hello"})
            reply = receive(sock)
    except (OSError, PoolError):
        return None
    if reply is None or reply["op"] != "info":
        return None
    reply["socket"] = str(path)
    return reply


def run_in_pool(
    ranks: int, argv: list[str], *, out: str, overwrite: bool, quiet: bool
) -> int | None:
    """Run ``brainsim run`` arguments ``argv`` in the pool of ``ranks`` ranks.

    Returns the run's exit code, or ``None`` when no pool of that size is running (or it runs
    other code, which is said on stderr unless ``quiet``): the caller then starts ranks itself.
    SIGINT and SIGTERM cancel the run, as they do a run started by ``mpiexec``. Raises
    :class:`~brainsim.errors.PoolError` when the pool's ranks end during the run (the store is
    then marked failed).
    """
    try:
        path = socket_path(ranks)
    except PoolError:
        return None
    if not path.exists():
        return None
    from brainsim.recording.paths import check_writable

    check_writable(out, overwrite=overwrite)
    try:
        sock = connect(path, timeout_s=5.0)
    except OSError:
        return None  # a stale socket: its pool is gone
    with sock:
        request = {"op": "run", "argv": argv, "cwd": os.getcwd()}
        request["fingerprint"] = code_fingerprint()
        try:
            send(sock, request)
            reply = receive(sock)
        except (OSError, PoolError):
            return None
        if reply is None or reply["op"] in ("refused", "error"):
            if reply is not None and not quiet:
                reason = reply.get("reason") or reply.get("message")
                print(f"note: not using the pool at {path}: {reason}", file=sys.stderr)
            return None
        if reply.get("ahead") and not quiet:
            print(f"waiting for the pool: {reply['ahead']} job(s) ahead", file=sys.stderr)
        with _cancel_on_signals(sock):
            return _follow(sock, out, log_path(ranks, path.parent))


def _follow(sock: socket.socket, out: str, log: Path) -> int:
    """Copy the job's output to ours until ``done``; its exit code."""
    while True:
        try:
            message = receive(sock)
        except (OSError, PoolError):
            message = None
        if message is None:
            reason = f"the pool's ranks ended during the run; see {log}"
            from brainsim.recording.writer import mark_store_failed  # zarr: only when needed

            mark_store_failed(out, reason)
            raise PoolError(reason)
        if message["op"] == "output":
            stream = sys.stderr if message.get("stream") == "stderr" else sys.stdout
            stream.write(str(message.get("text", "")))
            stream.flush()
        elif message["op"] == "done":
            return int(message["code"])


@contextlib.contextmanager
def _cancel_on_signals(sock: socket.socket) -> Iterator[None]:
    def cancel(_signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(OSError, PoolError):
            send(sock, {"op": "cancel"})

    previous = {s: signal.signal(s, cancel) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def start_pool(ranks: int, *, idle_timeout_s: float) -> tuple[dict[str, Any], bool]:
    """Start the pool of ``ranks`` ranks unless it runs; ``(info, started)``.

    Waits until the pool answers (its ranks have loaded the engine). Raises
    :class:`~brainsim.errors.PoolError` with the end of the pool's log when it does not start.
    """
    from brainsim.engine.launch import mpiexec_command

    directory = pool_dir(create=True)
    path = socket_path(ranks, directory)
    info = hello(path)
    if info is not None:
        return info, False
    serve = [sys.executable, "-m", "brainsim", "pool", "serve", "--socket", str(path)]
    serve += ["--idle-timeout-s", repr(idle_timeout_s)]
    command = serve if ranks == 1 else mpiexec_command(ranks, serve)
    log = log_path(ranks, directory)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        code = proc.poll()
        info = hello(path)
        if info is not None:
            return info, True
        if code is not None:
            raise PoolError(f"the pool's ranks exited with code {code}: {_tail(log)}")
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    raise PoolError(f"the pool did not answer within {_START_TIMEOUT_S:g} s: {_tail(log)}")


def stop_pool(ranks: int) -> dict[str, Any] | None:
    """Ask the pool of ``ranks`` ranks to stop once its queued jobs are done.

    Returns its last ``info`` (``None`` when none was running). Waits up to 30 s for it to
    go; one still busy after that stops when its jobs end.
    """
    path = socket_path(ranks)
    info = hello(path)
    if info is None:
        _remove_if_stale(path)
        return None
    with connect(path, timeout_s=5.0, keep_timeout=True) as sock:
        send(sock, {"op": "stop"})
        receive(sock)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    info["stopped"] = not path.exists()
    return info


def list_pools() -> list[dict[str, Any]]:
    """``info`` of every pool of this user that answers; stale sockets are removed."""
    directory = pool_dir()
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("pool-*.sock")):
        info = hello(path)
        if info is None:
            _remove_if_stale(path)
            continue
        info["current_code"] = info["fingerprint"] == code_fingerprint()
        found.append(info)
    return found


def _remove_if_stale(path: Path) -> None:
    """Remove ``path`` if nothing listens there any more (a pool that was killed)."""
    try:
        connect(path, timeout_s=2.0).close()
    except ConnectionRefusedError:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(cannot read {log})"
    return " | ".join(text[-lines:]) or f"(nothing in {log})"
