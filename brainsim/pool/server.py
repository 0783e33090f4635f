"""What every rank of a pool runs: wait for a job, run it, report, wait again.

Rank 0 listens on the pool's Unix socket. A thread there answers ``hello`` and ``stop`` at once
and queues ``run`` requests; the main thread takes one job at a time from the queue, hands it to
the other ranks over a private Unix socket each, runs its own part and reports ``done`` once
every rank has finished. Idle ranks block in ``recv`` on those sockets, so a waiting pool uses no
CPU (an MPI call would spin). The sockets connect processes of one machine: a pool lives on one
node.

A job is a ``brainsim run`` argument list and a working directory; the function that runs it is
passed in (``job``), so this module knows nothing of circuits or the engine. During a job,
rank 0 watches the client's connection: a ``cancel`` message or a closed connection stops the
run at the end of the next exchange interval, as Ctrl-C stops a run started by ``mpiexec``.

A rank that fails inside a collective takes the whole pool down (``MPI_Abort``), as it takes a
``mpiexec`` run down; the client then reports the pool's log, and the next run starts ranks of
its own.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TextIO, cast

from brainsim import __version__
from brainsim.errors import PoolError
from brainsim.pool.protocol import code_fingerprint, connect, receive, send

__all__ = ["JobFunction", "serve"]

JobFunction = Callable[[list[str], TextIO, TextIO, Callable[[], bool]], int]
"""``job(argv, out, err, should_stop) -> exit code``: one run on this rank, in the job's
working directory; ``out`` and ``err`` take what a run started by ``mpiexec`` would print."""

_PEER_TIMEOUT_S = 120.0
"""How long rank 0 waits for the other ranks to connect at start-up."""


class _Group(Protocol):
    """The collectives the start-up needs (a :class:`brainsim.exchange.Communicator`)."""

    @property
    def rank(self) -> int: ...

    @property
    def size(self) -> int: ...

    def bcast(self, obj: Any, root: int = 0) -> Any: ...


def serve(
    path: Path, comm: _Group, job: JobFunction, *, idle_timeout_s: float | None = None
) -> int:
    """Serve jobs on this rank until a ``stop`` request or ``idle_timeout_s`` without a job.

    Collective: every rank of ``comm`` calls it. Returns the exit code for the process.
    """
    if comm.rank != 0:
        return _serve_peer(comm, job)
    return _Root(path, comm, job, idle_timeout_s).serve()


def _serve_peer(comm: _Group, job: JobFunction) -> int:
    address = comm.bcast(None)
    if address is None:  # rank 0 could not start the pool and says why in its own log
        return 1
    peer = connect(Path(address), timeout_s=_PEER_TIMEOUT_S)
    send(peer, {"op": "peer", "rank": comm.rank, "pid": os.getpid()})
    with peer:
        while True:
            message = receive(peer)
            if message is None or message["op"] == "exit":
                return 0
            with _in_directory(message["cwd"]):
                code = job(message["argv"], sys.stdout, sys.stderr, _never)
            send(peer, {"op": "finished", "code": code})


def _never() -> bool:
    return False


@contextlib.contextmanager
def _in_directory(path: str) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class _Root:
    """Rank 0: the listener, the queue and the job loop."""

    def __init__(
        self, path: Path, comm: _Group, job: JobFunction, idle_timeout_s: float | None
    ) -> None:
        self.path = path
        self.comm = comm
        self.job = job
        self.idle_timeout_s = idle_timeout_s or None
        self.fingerprint = code_fingerprint()
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self.jobs_done = 0
        self.busy = False
        self.pids = [os.getpid()]
        self.queue: queue.Queue[tuple[socket.socket, dict[str, Any]] | None] = queue.Queue()
        self.peers: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def serve(self) -> int:
        previous = signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            self._start()
            acceptor = threading.Thread(target=self._accept_loop, daemon=True)
            acceptor.start()
            print(f"pool of {self.comm.size} rank(s) ready at {self.path}", flush=True)
            while True:
                try:
                    item = self.queue.get(timeout=self.idle_timeout_s)
                except queue.Empty:
                    print(f"idle for {self.idle_timeout_s:g} s: stopping", flush=True)
                    break
                if item is None:
                    print("stop requested: stopping", flush=True)
                    break
                self._run(*item)
            return 0
        except PoolError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            self._close()
            signal.signal(signal.SIGTERM, previous)

    def _start(self) -> None:
        if _answers(self.path):
            self.comm.bcast(None)
            raise PoolError(f"a pool is already listening at {self.path}")
        peers_path = self.path.with_suffix(".peers")
        gate = None
        if self.comm.size > 1:
            try:
                gate = _listen(peers_path)
            finally:  # the other ranks wait in this broadcast whatever happens
                self.comm.bcast(None if gate is None else str(peers_path))
        if gate is not None:
            with gate:
                self.peers = _accept_peers(gate, self.comm.size - 1, self.pids)
            peers_path.unlink(missing_ok=True)
        self.listener = _listen(self.path)

    def _accept_loop(self) -> None:
        assert self.listener is not None
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed by _close
                return
            # A thread per connection: a client that connects and says nothing holds up no one.
            threading.Thread(target=self._greet, args=(conn,), daemon=True).start()

    def _greet(self, conn: socket.socket) -> None:
        try:
            self._first_message(conn)
        except (OSError, PoolError) as exc:
            with contextlib.suppress(OSError, PoolError):
                send(conn, {"op": "error", "message": str(exc)})
            conn.close()

    def _first_message(self, conn: socket.socket) -> None:
        conn.settimeout(10.0)  # a client that connects and says nothing is dropped
        message = receive(conn)
        conn.settimeout(None)
        if message is None:
            conn.close()
            return
        op = message["op"]
        if op == "hello":
            send(conn, self._info())
            conn.close()
        elif op == "stop":
            send(conn, {"op": "stopping", "queued": self.queue.qsize()})
            conn.close()
            self.queue.put(None)
        elif op == "run":
            problem = _bad_run_request(message, self.fingerprint)
            if problem:
                send(conn, {"op": "refused", "reason": problem})
                conn.close()
                return
            send(conn, {"op": "accepted", "ahead": self.queue.qsize() + int(self.busy)})
            self.queue.put((conn, message))
        else:
            raise PoolError(f"unknown op {op!r}: expected hello, run or stop")

    def _info(self) -> dict[str, Any]:
        return {
            "op": "info",
            "ranks": self.comm.size,
            "pids": self.pids,
            "version": __version__,
            "fingerprint": self.fingerprint,
            "started": self.started,
            "jobs_done": self.jobs_done,
            "busy": self.busy,
            "queued": self.queue.qsize(),
            "idle_timeout_s": self.idle_timeout_s,
        }

    def _run(self, conn: socket.socket, request: dict[str, Any]) -> None:
        self.busy = True
        cancelled = threading.Event()
        watcher = threading.Thread(target=_watch, args=(conn, cancelled), daemon=True)
        watcher.start()
        out = cast(TextIO, _Forward(conn, "stdout"))
        err = cast(TextIO, _Forward(conn, "stderr"))
        job = {"op": "run", "argv": request["argv"], "cwd": request["cwd"]}
        start = time.monotonic()
        try:
            for peer in self.peers:
                send(peer, job)
            with _in_directory(request["cwd"]):
                code = self.job(request["argv"], out, err, cancelled.is_set)
            for peer in self.peers:
                reply = receive(peer)
                if reply is None:
                    raise PoolError("a rank of the pool left during a job")
                code = code or int(reply["code"])
        except PoolError:
            raise
        except Exception as exc:  # a bug in a job must not end the pool silently
            print(f"error: job failed: {type(exc).__name__}: {exc}", file=err, flush=True)
            code = 1
        finally:
            self.busy = False
            self.jobs_done += 1
        print(
            f"job {self.jobs_done}: exit {code} in {time.monotonic() - start:.2f} s "
            f"({' '.join(request['argv'][:2])})",
            flush=True,
        )
        with contextlib.suppress(OSError, PoolError):
            send(conn, {"op": "done", "code": code})
        conn.close()
        watcher.join(timeout=5.0)

    def _close(self) -> None:
        for peer in self.peers:
            with contextlib.suppress(OSError, PoolError):
                send(peer, {"op": "exit"})
            peer.close()
        if self.listener is not None:
            # shutdown() wakes the acceptor thread blocked in accept().
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _answers(path: Path) -> bool:
    """Whether something accepts connections at ``path`` (a live pool, not a stale file)."""
    try:
        connect(path, timeout_s=2.0).close()
    except OSError:
        return False
    return True


def _listen(path: Path) -> socket.socket:
    """A listening socket at ``path`` (a stale file there is replaced), readable by us only."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        path.unlink(missing_ok=True)
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise PoolError(f"cannot listen at {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    sock.listen(16)
    return sock


def _accept_peers(gate: socket.socket, count: int, pids: list[int]) -> list[socket.socket]:
    """The other ranks' connections, ordered by rank; their pids are appended to ``pids``."""
    gate.settimeout(_PEER_TIMEOUT_S)
    by_rank: dict[int, socket.socket] = {}
    pid_of: dict[int, int] = {}
    try:
        while len(by_rank) < count:
            conn, _ = gate.accept()
            conn.settimeout(None)
            hello = receive(conn)
            if hello is None or hello["op"] != "peer":
                conn.close()
                continue
            by_rank[int(hello["rank"])] = conn
            pid_of[int(hello["rank"])] = int(hello["pid"])
    except TimeoutError:
        raise PoolError(
            f"only {len(by_rank)} of {count} ranks connected within {_PEER_TIMEOUT_S:g} s "
            "(a pool's ranks must share one machine)"
        ) from None
    pids += [pid_of[r] for r in sorted(by_rank)]
    return [by_rank[r] for r in sorted(by_rank)]


def _bad_run_request(message: dict[str, Any], fingerprint: str) -> str:
    """Why a ``run`` request cannot be served here ("" when it can)."""
    argv, cwd = message.get("argv"), message.get("cwd")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return "'argv' must be a list of strings"
    if not argv or argv[0] != "run":
        return "'argv' must be the arguments of 'brainsim run'"
    if not isinstance(cwd, str) or not os.path.isdir(cwd):
        return f"the working directory {cwd!r} does not exist here"
    if message.get("fingerprint") != fingerprint:
        return "this pool runs other brainsim code (edited sources or another environment)"
    return ""


def _watch(conn: socket.socket, cancelled: threading.Event) -> None:
    """Set ``cancelled`` when the client asks to cancel or goes away."""
    try:
        while True:
            message = receive(conn)
            if message is None or message["op"] == "cancel":
                break
    except (OSError, PoolError):
        pass
    cancelled.set()


class _Forward(io.TextIOBase):
    """A text stream whose writes go to the client as ``output`` messages."""

    def __init__(self, conn: socket.socket, stream: str) -> None:
        super().__init__()
        self._conn = conn
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if text:
            with self._lock, contextlib.suppress(OSError, PoolError):
                send(self._conn, {"op": "output", "stream": self._stream, "text": text})
        return len(text)

    def isatty(self) -> bool:
        return False
