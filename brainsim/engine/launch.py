"""Start a multi-rank run with ``mpiexec`` and wait for it, leaving no process behind.

The child gets its own process group so that a signal to the parent (Ctrl-C, a job service's
cancel) reaches every rank, and a failed child whose store still says ``running`` is marked
failed, so readers never wait on a run that is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

from brainsim.errors import EngineError

__all__ = [
    "MPIEXEC_VARIABLE",
    "ONE_HOST_MPI_SETTINGS",
    "find_mpiexec",
    "launched_rank",
    "launched_ranks",
    "mpiexec_command",
    "one_host_environment",
    "run_child",
    "under_mpi_launcher",
]

ONE_HOST_MPI_SETTINGS = {"UCX_MEM_EVENTS": "no"}
"""Environment for MPI ranks that all run on this machine, where the environment does not set
these itself. UCX (the ``mpich`` wheel's network module) patches the process's memory calls as
its library loads, for its cache of RDMA memory registrations and its detection of GPU
memory: 45 ms of every rank's start-up (timed loading mpi4py), for ranks that talk through
shared memory and send host arrays. Launches across machines (Slurm's, a user's ``mpiexec``)
are left as they are."""

_RANK_COUNT_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE")
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MPI_LOCALRANKID", "PMIX_RANK")


def _launcher_value(names: Sequence[str]) -> int | None:
    """The first of the environment variables ``names`` that holds a whole number, if any."""
    for name in names:
        raw = os.environ.get(name, "")
        if raw.isdigit():
            return int(raw)
    return None


def launched_ranks() -> int:
    """Number of ranks an MPI launcher started this process with (1 when not under MPI)."""
    count = _launcher_value(_RANK_COUNT_VARIABLES)
    return 1 if count is None else count


def launched_rank() -> int:
    """This process's rank as its MPI launcher numbered it (0 when not under MPI), known
    without initialising MPI."""
    rank = _launcher_value(_RANK_VARIABLES)
    return 0 if rank is None else rank


def under_mpi_launcher() -> bool:
    """Whether an MPI launcher started this process (``mpiexec -n 1`` included)."""
    return _launcher_value(_RANK_COUNT_VARIABLES) is not None


MPIEXEC_VARIABLE = "BRAINSIM_MPIEXEC"
"""Names the ``mpiexec`` to start ranks with (the job service sets its configured one)."""


def find_mpiexec() -> str:
    """``$BRAINSIM_MPIEXEC``, else the ``mpiexec`` of this Python environment (the ``mpich``
    wheel's), else the PATH's."""
    named = os.environ.get(MPIEXEC_VARIABLE)
    if named:
        found = shutil.which(named)
        if found is None:
            raise EngineError(f"mpiexec not found: ${MPIEXEC_VARIABLE} names {named!r}")
        return found
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(local, os.X_OK):
        return local
    found = shutil.which("mpiexec")
    if found is None:
        raise EngineError("mpiexec not found: install the 'mpich' package or an MPI")
    return found


def mpiexec_command(ranks: int, args: Sequence[str]) -> list[str]:
    """``mpiexec -n ranks args...``."""
    return [find_mpiexec(), "-n", str(ranks), *args]


def one_host_environment() -> dict[str, str]:
    """This process's environment with :data:`ONE_HOST_MPI_SETTINGS` where it lacks them."""
    return {**ONE_HOST_MPI_SETTINGS, **os.environ}


def run_child(
    command: Sequence[str], store: str, *, capture_stderr: bool = True
) -> tuple[int, str]:
    """Run ``command`` in a new process group; forward SIGINT/SIGTERM/SIGUSR1; return (code,
    stderr).

    With ``capture_stderr`` the child's stderr is collected and returned (and not shown);
    otherwise it goes to this process's stderr and ``""`` is returned.
    """
    proc = subprocess.Popen(
        list(command),
        stderr=subprocess.PIPE if capture_stderr else None,
        text=True,
        start_new_session=True,
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)

    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    previous = {s: signal.signal(s, forward) for s in forwarded}
    try:
        _, err = proc.communicate()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    code = proc.returncode
    if code != 0:
        from brainsim.recording.writer import mark_store_failed  # numpy: only when needed

        reason = (err or "").strip().splitlines()[-1:] or [f"exit code {code}"]
        mark_store_failed(store, reason[0])
    return code, err or ""
