"""The ranks of a run on this machine, forked from one process that serves as their MPI
process manager: ``brainsim run --ranks N`` without ``mpiexec``.

Under ``mpiexec`` every rank is a fresh interpreter that imports numpy, numba and the engine and
loads the compiled kernels on its own: about 0.4 s of CPU per rank, paid N times over on a
machine whose cores the ranks share. Here one process does that once, then forks the ranks, which
inherit all of it (copy-on-write), and starts MPI in each of them the way MPICH's ``mpiexec``
would: the ranks' MPI library asks its process manager for what it needs over a socket named in
``PMI_FD`` (PMI version 1, the "simple PMI" wire protocol of MPICH-family libraries: one line of
``key=value`` words per request and per answer), and this module's :class:`PmiServer` answers.
On one machine MPICH needs little: its name for the job's key-value space, the process mapping
(every rank on one node), a few lookups it may be refused, and barriers; its ranks then talk
through shared memory exactly as under ``mpiexec``, so the collectives and the results are the
same (the tests compare the recordings byte for byte).

The process manager's duties are kept: a rank that ends before ``MPI_Finalize`` (a crash, a
signal) or calls ``MPI_Abort`` takes the others down with it, since they may wait for it in a
collective forever; SIGINT, SIGTERM and SIGUSR1 sent to the parent reach every rank; the exit
status says which rank failed and how.

Only this module initialises MPI for forked ranks; the parent never does (a process in which
MPI has started must not fork), so it imports mpi4py with automatic initialisation off.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType, ModuleType
from typing import Any

__all__ = [
    "FORWARDED_SIGNALS",
    "ForkedRun",
    "PmiServer",
    "RankEnd",
    "fork_unavailable",
    "run_forked",
]

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
"""Signals the parent passes on to every rank (stop, stop, checkpoint and stop)."""

_MPICH_FAMILY = ("MPICH",)
"""Words of ``MPI_Get_library_version`` that name a library speaking the simple PMI protocol
(MPICH and the libraries built from it print ``MPICH Version``)."""


def _mpi_module() -> ModuleType:
    """mpi4py's ``MPI`` module, imported without starting MPI when this process imports it
    first (mpi4py starts MPI at import by default)."""
    loaded = sys.modules.get("mpi4py.MPI")
    if loaded is not None:
        return loaded
    import mpi4py

    initialize, finalize = mpi4py.rc.initialize, mpi4py.rc.finalize
    mpi4py.rc.initialize = False  # the forked ranks start it; the parent never does
    mpi4py.rc.finalize = False  # the ranks end it themselves, before they exit
    try:
        from mpi4py import MPI
    finally:
        mpi4py.rc.initialize, mpi4py.rc.finalize = initialize, finalize
    return MPI


def fork_unavailable() -> str | None:
    """Why this process cannot fork MPI ranks (``None`` when it can): no ``fork``, mpi4py
    missing, MPI already started here, or an MPI library that is not MPICH's family.

    It loads the MPI library (without starting it), which the ranks would load anyway."""
    if not hasattr(os, "fork"):
        return "this platform cannot fork"
    try:
        mpi = _mpi_module()
    except ImportError as exc:
        return f"mpi4py cannot be imported: {exc}"
    if mpi.Is_initialized():
        return "MPI has already started in this process"
    version = str(mpi.Get_library_version())
    if not any(word in version for word in _MPICH_FAMILY):
        first = version.strip().splitlines()[0] if version.strip() else "unknown"
        return f"the MPI library is not MPICH's family ({first})"
    return None


@dataclass(frozen=True, slots=True)
class RankEnd:
    """How one forked rank ended."""

    rank: int
    status: int
    """Its exit code, or minus the signal's number when a signal ended it."""
    finalized: bool
    """Whether it called ``MPI_Finalize`` (a rank that did not may have left others waiting)."""


@dataclass(frozen=True, slots=True)
class ForkedRun:
    """How a run on forked ranks ended."""

    code: int
    """The run's exit code (see :func:`run_forked`)."""
    ranks: list[RankEnd]
    failure: str | None
    """What stopped the ranks early, in words (``None`` when each ended by itself)."""


class PmiServer:
    """Answers the PMI-1 requests of ``n_ranks`` ranks on one machine, one socket per rank.

    Requests are lines of space-separated ``key=value`` words led by ``cmd=``; answers likewise.
    :meth:`serve` returns when every rank has closed its socket, or at once when one closed it
    without finalising or asked to abort (see :attr:`failure`).
    """

    def __init__(self, sockets: Sequence[socket.socket], kvsname: str) -> None:
        self._sockets = list(sockets)
        self._kvsname = kvsname
        n = len(self._sockets)
        self._values: dict[str, str] = {"PMI_process_mapping": f"(vector,(0,1,{n}))"}
        self._pending = [b""] * n
        self._in_barrier: list[int] = []
        self.finalized = [False] * n
        self.closed = [False] * n
        self.failure: str | None = None
        """Why serving stopped early: a rank's abort or its early end, in words."""
        self.abort_code: int | None = None
        """The exit code a rank asked ``MPI_Abort`` for."""

    def serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            for rank, sock in enumerate(self._sockets):
                selector.register(sock, selectors.EVENT_READ, rank)
            while not self._done():
                for key, _ in selector.select():
                    rank = int(key.data)
                    try:
                        data = self._sockets[rank].recv(65536)
                    except ConnectionError:
                        data = b""
                    if not data:
                        selector.unregister(self._sockets[rank])
                        self._closed(rank)
                    else:
                        self._received(rank, data)
                    if self._done():
                        break

    def _done(self) -> bool:
        return all(self.closed) or self.failure is not None

    def _closed(self, rank: int) -> None:
        self.closed[rank] = True
        if not self.finalized[rank] and self.failure is None:
            self.failure = f"rank {rank} ended before MPI_Finalize"

    def _received(self, rank: int, data: bytes) -> None:
        self._pending[rank] += data
        while b"\n" in self._pending[rank] and self.failure is None:
            line, self._pending[rank] = self._pending[rank].split(b"\n", 1)
            words = dict(
                word.split("=", 1) for word in line.decode(errors="replace").split() if "=" in word
            )
            self._answer(rank, words)

    def _send(self, rank: int, **words: object) -> None:
        line = " ".join(f"{key}={value}" for key, value in words.items()) + "\n"
        with contextlib.suppress(OSError):  # a rank that is gone is noticed by its EOF
            self._sockets[rank].sendall(line.encode())

    def _answer(self, rank: int, words: dict[str, str]) -> None:
        command = words.get("cmd", "")
        if command == "init":
            self._send(rank, cmd="response_to_init", rc=0, pmi_version=1, pmi_subversion=1)
        elif command == "get_maxes":
            self._send(rank, cmd="maxes", rc=0, kvsname_max=256, keylen_max=64, vallen_max=1024)
        elif command == "get_appnum":
            self._send(rank, cmd="appnum", rc=0, appnum=0)
        elif command == "get_my_kvsname":
            self._send(rank, cmd="my_kvsname", rc=0, kvsname=self._kvsname)
        elif command == "get_universe_size":
            self._send(rank, cmd="universe_size", rc=0, size=len(self._sockets))
        elif command == "put":
            self._values[words.get("key", "")] = words.get("value", "")
            self._send(rank, cmd="put_result", rc=0)
        elif command == "get":
            value = self._values.get(words.get("key", ""))
            if value is None:  # refused as mpiexec refuses it: the library does without
                self._send(rank, cmd="get_result", rc=1)
            else:
                self._send(rank, cmd="get_result", rc=0, value=value)
        elif command == "barrier_in":
            self._in_barrier.append(rank)
            if len(self._in_barrier) == len(self._sockets):
                for waiting in self._in_barrier:
                    self._send(waiting, cmd="barrier_out")
                self._in_barrier = []
        elif command == "finalize":
            self.finalized[rank] = True
            self._send(rank, cmd="finalize_ack", rc=0)
        elif command == "abort":
            code = words.get("exitcode", "1")
            self.abort_code = int(code) if code.lstrip("-").isdigit() else 1
            self.failure = f"rank {rank} called MPI_Abort (exit code {self.abort_code})"
        else:
            self.failure = (
                f"rank {rank} asked for something a forked run cannot do "
                f"(PMI request {command or words!r}); run it with --launcher mpiexec"
            )


def run_forked(
    n_ranks: int,
    rank_main: Callable[[], int],
    *,
    failed_code: int,
    err: Any = None,
) -> ForkedRun:
    """Fork ``n_ranks`` ranks of this process, start MPI in each and run ``rank_main`` there;
    return the run's exit code, how each rank ended and what stopped them early.

    In a rank, ``rank_main`` runs with MPI started (``MPI.COMM_WORLD`` has ``n_ranks`` ranks,
    and the launcher variables ``PMI_RANK``/``PMI_SIZE`` say so); its return value is the rank's
    exit code, an exception prints its traceback and makes it ``failed_code``; the rank then
    ends MPI and exits without the interpreter's teardown (what it wrote is closed by then, and
    the parent's exit handlers are the parent's). The signal handlers in place when this is
    called are the ranks' own; the parent forwards :data:`FORWARDED_SIGNALS` to them.

    The exit code is that of the first rank that failed (an abort's code; ``failed_code`` for a
    rank that a signal ended), else rank 0's. A failure is reported on ``err`` (default
    stderr), naming the rank and how it ended.
    """
    if n_ranks < 1:
        raise ValueError(f"n_ranks must be positive, got {n_ranks}")
    err = sys.stderr if err is None else err
    mpi = _mpi_module()
    kvsname = f"brainsim_{os.getpid()}_{time.time_ns()}"
    parent_ends: list[socket.socket] = []
    pids: list[int] = []
    parent = os.getpid()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # what is buffered here would be written again by every rank
    with _signals_blocked() as mask:
        try:
            for rank in range(n_ranks):
                ours, theirs = socket.socketpair()
                with warnings.catch_warnings():
                    # Python 3.12+ warns about forking a process with other threads: here only
                    # OpenBLAS's idle workers, which its own fork handlers take care of.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:  # the rank: never returns
                    ours.close()
                    for other in parent_ends:
                        other.close()
                    _rank(mpi, rank, n_ranks, theirs, rank_main, failed_code, mask, parent)
                theirs.close()
                parent_ends.append(ours)
                pids.append(pid)
        except BaseException:
            _kill(pids)
            _reap(pids)
            raise
        previous = {s: signal.signal(s, _forwarder(pids)) for s in FORWARDED_SIGNALS}
    try:
        server = PmiServer(parent_ends, kvsname)
        server.serve()
        if server.failure is not None:
            _kill([pid for rank, pid in enumerate(pids) if not server.closed[rank]])
        statuses = _reap(pids)
    finally:
        with _signals_blocked():
            for s, handler in previous.items():
                signal.signal(s, handler)
        for sock in parent_ends:
            sock.close()
    ends = [RankEnd(r, statuses[r], server.finalized[r]) for r in range(n_ranks)]
    failure = None
    if server.failure is not None:
        failure = f"{_failure_words(server, ends)}; the other ranks were stopped"
        print(f"error: {failure}", file=err, flush=True)
    return ForkedRun(_exit_code(ends, server, failed_code), ends, failure)


def _rank(
    mpi: ModuleType,
    rank: int,
    n_ranks: int,
    sock: socket.socket,
    rank_main: Callable[[], int],
    failed_code: int,
    mask: set[int],
    parent: int,
) -> None:
    """The forked rank ``rank``: start MPI, run ``rank_main``, end MPI, exit; ``mask`` is
    the signal mask to run with, ``parent`` the forking process's pid."""
    code = failed_code
    try:
        _end_with_parent(parent)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.environ.update(
            PMI_FD=str(sock.fileno()),
            PMI_RANK=str(rank),
            PMI_SIZE=str(n_ranks),
            MPI_LOCALNRANKS=str(n_ranks),
            MPI_LOCALRANKID=str(rank),
        )
        mpi.Init()
        code = rank_main()
        _flush()
        mpi.Finalize()
        # MPICH says ``finalize`` to its process manager only from an exit handler, which a
        # rank ending with os._exit skips: say it here, so the parent knows this end was clean.
        sock.sendall(b"cmd=finalize\n")
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
        code = failed_code
    finally:
        _flush()
        os._exit(code)


_PR_SET_PDEATHSIG = 1


def _end_with_parent(parent: int) -> None:
    """Have the kernel send this rank SIGTERM (stop: the run ends ``cancelled``) when the
    forking process ends, as the ranks under a killed ``mpiexec`` are stopped; if it has
    already ended, stop now. Linux only; elsewhere nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it ended before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


@contextlib.contextmanager
def _signals_blocked() -> Iterator[set[int]]:
    """Hold :data:`FORWARDED_SIGNALS` back while ranks are forked (one arriving between a
    fork and the parent's forwarding handlers is delivered to those handlers afterwards);
    yields the mask from before."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    try:
        yield {int(s) for s in previous}
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _forwarder(pids: Sequence[int]) -> Callable[[int, FrameType | None], None]:
    def forward(signum: int, _frame: FrameType | None) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    return forward


def _kill(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _reap(pids: Sequence[int]) -> list[int]:
    """Wait for every pid; their exit codes (minus the signal's number for a signal)."""
    statuses = []
    for pid in pids:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = 0
            except InterruptedError:  # pragma: no cover - PEP 475 retries waitpid
                continue
            break
        statuses.append(os.waitstatus_to_exitcode(status))
    return statuses


def _exit_code(ends: Sequence[RankEnd], server: PmiServer, failed_code: int) -> int:
    """The run's exit code: an abort's, else that of the rank that ended first without
    finalising (``failed_code`` when a signal ended it, or when it exited with 0), else the
    first nonzero code in rank order (every rank of a run ends with the same status)."""
    if server.abort_code is not None:
        return server.abort_code if server.abort_code > 0 else failed_code
    culprit = _culprit(ends, server)
    if culprit is not None:
        return culprit.status if culprit.status > 0 else failed_code
    for end in ends:
        if end.status != 0:
            return end.status if end.status > 0 else failed_code
    return 0


def _culprit(ends: Sequence[RankEnd], server: PmiServer) -> RankEnd | None:
    """The rank whose early end stopped the run, if one did: one that closed its socket
    without finalising (the ranks stopped because of it had not closed theirs); the lowest
    such rank should several have ended at once."""
    if server.failure is None:
        return None
    for end in ends:
        if server.closed[end.rank] and not end.finalized:
            return end
    return None


def _failure_words(server: PmiServer, ends: Sequence[RankEnd]) -> str:
    culprit = _culprit(ends, server)
    if server.abort_code is not None or culprit is None:
        return str(server.failure)
    if culprit.status < 0:
        try:
            name = signal.Signals(-culprit.status).name
        except ValueError:  # a signal Python has no name for
            name = f"signal {-culprit.status}"
        return f"rank {culprit.rank} was ended by {name} before MPI_Finalize"
    return f"rank {culprit.rank} exited with code {culprit.status} before MPI_Finalize"
