"""Run as a program: forks ranks with :func:`brainsim.exchange.forked.run_forked` and runs one
scenario in them (the first argument; the second is the rank count). Rank 0's lines and the
parent's last line (``exit <code> finalized <flags>``) go to stdout; the tests read them.

A program of its own because the parent must import mpi4py without starting MPI, which the
pytest process must not be left with.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from brainsim.exchange.forked import fork_unavailable, run_forked

FAILED = 3


def collectives() -> int:
    from tests.exchange.mpi_collectives import main

    main()  # every collective of MpiCommunicator and MpiExchanger; rank 0 prints "ok"
    return 0


def environment() -> int:
    from brainsim.exchange.mpi import world

    comm = world()
    seen = comm.gather((os.environ["PMI_RANK"], os.environ.get("UCX_MEM_EVENTS"), os.getppid()))
    if comm.rank == 0:
        print(seen, os.getpid())
    return 0


def exit_codes() -> int:
    from brainsim.exchange.mpi import world

    comm = world()
    comm.barrier()
    return 7 if comm.rank == 1 else 0


def raises() -> int:
    from brainsim.exchange.mpi import world

    comm = world()
    if comm.rank == 1:
        raise RuntimeError("rank 1 fails")
    comm.barrier()  # rank 0 waits here for ever: the parent must stop it
    return 0


def killed() -> int:
    from brainsim.exchange.mpi import world

    comm = world()
    if comm.rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    comm.barrier()
    return 0


def aborts() -> int:
    from brainsim.exchange.mpi import world

    comm = world()
    if comm.rank == 1:
        comm.abort(5)
    comm.barrier()
    return 0


FLAGS: dict[str, int] = {}


def signals() -> int:
    """Each rank reports the SIGUSR1 that the test sends to the parent."""
    from brainsim.exchange.mpi import world

    comm = world()
    comm.barrier()
    if comm.rank == 0:
        print("ready", flush=True)
    deadline = time.monotonic() + 30
    while "usr1" not in FLAGS and time.monotonic() < deadline:
        time.sleep(0.01)
    got = comm.allgather("usr1" in FLAGS)
    if comm.rank == 0:
        print(got)
    return 0


def main() -> int:
    scenario, n_ranks = sys.argv[1], int(sys.argv[2])
    if scenario == "unavailable":
        print(fork_unavailable())
        return 0
    if scenario == "started":  # a process in which MPI has started must not fork ranks
        from mpi4py import MPI

        print(MPI.Is_initialized(), fork_unavailable())
        return 0
    signal.signal(signal.SIGUSR1, lambda *_: FLAGS.__setitem__("usr1", 1))
    body = globals()[scenario]
    ended = run_forked(n_ranks, body, failed_code=FAILED)
    print("exit", ended.code, "finalized", [e.finalized for e in ended.ranks], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
