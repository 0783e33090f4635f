"""Collectives and spike exchange: the local implementation, and MPI under real mpiexec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numba
import pytest

from brainsim.engine.launch import find_mpiexec
from brainsim.exchange import Communicator, LocalCommunicator, LocalExchanger, SpikeExchanger

SCRIPT = Path(__file__).with_name("mpi_collectives.py")


def test_local_implementations_follow_the_protocols() -> None:
    comm = LocalCommunicator()
    assert isinstance(comm, Communicator)
    assert isinstance(LocalExchanger(), SpikeExchanger)
    assert (comm.rank, comm.size) == (0, 1)
    assert comm.allgather(3) == [3]
    assert comm.gather("x") == ["x"]
    assert comm.any(True)
    assert not comm.any(False)
    native = LocalExchanger().native()
    assert native.n_ranks == 1
    # The compiled loop calls these through their ctypes signature (never, with one rank).
    assert isinstance(numba.typeof(native.allgather), numba.types.ExternalFunctionPointer)
    assert len(numba.typeof(native.allgatherv).sig.args) == 8


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_mpi_collectives(ranks: int) -> None:
    result = subprocess.run(
        [find_mpiexec(), "-n", str(ranks), sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
