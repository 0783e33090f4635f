"""A second process that compiles kernels into numba's cache while this one works.

numba compiles one function at a time per process (its compiler lock serialises threads), and
a cold run's first step waits for about 60 functions (construction's kernels, the step loop's
parts, the weight recordings' kernels). A :class:`CompileHelper` is a child process that
compiles the kernels it is given, each for an exact signature, into numba's on-disk cache; this
process loads them from there when it reaches them instead of compiling them itself. The run
hands it what it can name ahead: before construction the parts of the loop variant it expects
from the circuit (and the sampling kernel construction calls), after construction any part
the built variant adds and the weight recordings' kernels, while it compiles construction's
kernels, then whatever the helper has not started, then the loop itself.

Nothing depends on the helper for correctness: a kernel it has not compiled (it failed, was
slow, or was given the wrong types) is compiled here as before, and a helper that dies is
noted and ignored. Kernels travel as ``(module, name, signature)``; numba's types pickle (its
cache index stores them so).

Either process may take a job the other has not started: each claims a job by creating its
file in a shared folder (``O_EXCL``, so exactly one of them gets it) before compiling it. The
helper takes its jobs in the order submitted; this process, when it has nothing else to do,
takes the next one the helper has not started (:meth:`CompileHelper.steal`), so that neither
waits while the other has a queue.

The child runs ``python -m brainsim.kernels.compiler CLAIMS``: it reads one job per line on
stdin (base64 of the pickle) and, for each one it claims, answers ``done N`` or
``failed N: reason`` on stdout (``taken N`` for one claimed here); it exits at the end of
stdin.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import inspect
import os
import pickle
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "COMPILED_BY_HELPERS",
    "DISABLE_ENV",
    "CompileHelper",
    "Job",
    "compile_job",
    "job",
    "main",
    "signature",
    "spare_cores",
]

DISABLE_ENV = "BRAINSIM_COMPILE_HELPER"
"""Set to ``0`` to compile everything in the run's own processes."""

COMPILED_BY_HELPERS: list[str] = []
"""``module.name`` of every job a helper of this process compiled, in order (for the progress
display, which counts this process's own compilations and those added here since)."""

Job = tuple[str, str, tuple[Any, ...]]
"""A kernel to compile: its module, its name there, the numba types of its arguments."""


def signature(dispatcher: Any, args: Sequence[Any]) -> tuple[Any, ...]:
    """The numba types a call of ``dispatcher`` with ``args`` (values) is compiled for: theirs,
    then ``Omitted(default)`` for each parameter left to its default, as numba folds them."""
    from numba.core import types

    params = list(inspect.signature(dispatcher.py_func).parameters.values())
    given = tuple(dispatcher.typeof_pyval(a) for a in args)
    omitted = tuple(types.Omitted(p.default) for p in params[len(args) :])  # type: ignore[no-untyped-call]
    return given + omitted


def job(dispatcher: Any, args: Sequence[Any]) -> Job:
    """The job that compiles ``dispatcher`` as a call with ``args`` would."""
    return dispatcher.py_func.__module__, dispatcher.py_func.__name__, signature(dispatcher, args)


def spare_cores() -> int:
    """Cores this process may use beyond its own (0 on a single core)."""
    try:
        return max(0, len(os.sched_getaffinity(0)) - 1)
    except AttributeError:  # not on Linux
        return max(0, (os.cpu_count() or 1) - 1)


class CompileHelper:
    """A child process compiling jobs into numba's cache (see the module docstring).

    Jobs run in the order submitted. :meth:`steal` compiles here those the child has not
    claimed yet, in that order; :meth:`wait` blocks until given jobs are done (or failed, or
    the child died); :meth:`close` ends the child once its jobs are done (or kills it when
    told not to wait)."""

    def __init__(self) -> None:
        self._next = 0
        self._pending: dict[Job, int] = {}
        self._finished: dict[int, bool] = {}
        self._buffer = b""
        self.failures: list[str] = []
        """``module.name: reason`` of each job the child could not compile."""
        self.compiled: list[str] = []
        """``module.name`` of each job the child compiled."""
        self.stolen: list[str] = []
        """``module.name`` of each of its jobs compiled here instead."""
        self._claims = Path(tempfile.mkdtemp(prefix="brainsim-compile-"))
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", "brainsim.kernels.compiler", str(self._claims)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, DISABLE_ENV: "0"},
            )
        except OSError:
            shutil.rmtree(self._claims, ignore_errors=True)
            raise

    @classmethod
    def start(cls) -> CompileHelper | None:
        """A helper, unless :data:`DISABLE_ENV` is ``0``, this is the only core, or the
        child cannot be started."""
        if os.environ.get(DISABLE_ENV, "1") == "0" or spare_cores() == 0:
            return None
        try:
            return cls()
        except OSError:
            return None

    def has(self, j: Job) -> bool:
        """Whether ``j`` was submitted to this helper."""
        return j in self._pending

    def submit(self, jobs: Iterable[Job]) -> list[Job]:
        """Queue ``jobs`` (those not already queued); return the ones queued now."""
        proc = self._proc
        queued: list[Job] = []
        if proc is None or proc.stdin is None:
            return queued
        for j in jobs:
            if j in self._pending:
                continue
            try:
                line = base64.b64encode(pickle.dumps(j)) + b"\n"
                proc.stdin.write(line)
                proc.stdin.flush()
            except (OSError, pickle.PicklingError, AttributeError, TypeError):
                break
            self._pending[j] = self._next
            self._next += 1
            queued.append(j)
        return queued

    def steal(self, jobs: Iterable[Job]) -> None:
        """Compile here each of ``jobs`` (submitted ones) that the child has not claimed, in
        the order submitted (the child's next job first, so that it goes on with the later
        ones meanwhile); an error is left to the call that needs the kernel."""
        for j in sorted((j for j in jobs if j in self._pending), key=self._pending.__getitem__):
            n = self._pending[j]
            if n in self._finished or not _claim(self._claims, n):
                continue
            self._finished[n] = True
            self.stolen.append(".".join(j[:2]))
            with contextlib.suppress(Exception):
                compile_job(j)

    def wait(self, jobs: Iterable[Job] | None = None, timeout_s: float = 600.0) -> bool:
        """Block until ``jobs`` (all submitted ones when None) are done or failed; return
        whether all of them were compiled. A dead child or the timeout ends the wait."""
        wanted = {self._pending[j] for j in (self._pending if jobs is None else jobs)
                  if j in self._pending}  # fmt: skip
        deadline = time.monotonic() + timeout_s
        proc = self._proc
        while proc is not None and proc.stdout is not None:
            if wanted <= self._finished.keys():
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:  # the child is gone
                break
            self._read(chunk)
        return all(self._finished.get(n, False) for n in wanted)

    def _read(self, chunk: bytes) -> None:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        names = {n: j for j, n in self._pending.items()}
        for raw in lines:
            word, _, rest = raw.decode("utf-8", "replace").partition(" ")
            number, _, reason = rest.partition(": ")
            with contextlib.suppress(ValueError):
                n = int(number)
                label = ".".join(names[n][:2]) if n in names else number
                if word == "taken":
                    continue  # stolen: marked finished then
                self._finished[n] = word == "done"
                if word == "done":
                    self.compiled.append(label)
                    COMPILED_BY_HELPERS.append(label)
                else:
                    self.failures.append(f"{label}: {reason}")

    def close(self, wait: bool = True, timeout_s: float = 600.0) -> None:
        """End the child: after its queued jobs when ``wait``, else at once."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        if wait:
            self.wait(timeout_s=timeout_s)
        self._proc = None
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(self._claims, ignore_errors=True)


def _claim(claims: Path, n: int) -> bool:
    """Claim job ``n`` for this process: True for exactly one of the processes that try."""
    try:
        os.close(os.open(claims / str(n), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except OSError:  # claimed already, or the folder is gone (the parent closed)
        return False
    return True


def compile_job(j: Job) -> None:
    """Compile ``j`` in this process (or load it from numba's cache)."""
    module, name, sig = j
    if not module.startswith("brainsim.kernels."):
        raise ValueError(f"not a brainsim kernel: {module}")
    dispatcher = getattr(importlib.import_module(module), name)
    dispatcher.compile(sig)


def main(argv: Sequence[str] | None = None) -> int:
    """The child: claim and compile each job read from stdin, answer on stdout."""
    claims = Path((sys.argv[1:] if argv is None else argv)[0])
    out = sys.stdout.buffer
    for n, raw in enumerate(sys.stdin.buffer):
        if not _claim(claims, n):
            out.write(f"taken {n}\n".encode())
        else:
            try:
                compile_job(pickle.loads(base64.b64decode(raw)))  # noqa: S301 (the parent's pipe)
                out.write(f"done {n}\n".encode())
            except Exception as exc:
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                out.write(f"failed {n}: {reason}\n".encode())
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
