"""MPI communicator and spike exchanger (mpi4py); the only module of the core that imports MPI."""

from __future__ import annotations

import ctypes
from typing import Any

from mpi4py import MPI

from brainsim.errors import EngineError
from brainsim.exchange.base import NativeExchange, collective_prototypes

__all__ = ["MpiCommunicator", "MpiExchanger", "world"]


class MpiCommunicator:
    """Collectives over an MPI communicator (``COMM_WORLD`` by default)."""

    def __init__(self, comm: Any = None) -> None:
        self._comm = MPI.COMM_WORLD if comm is None else comm

    @property
    def comm(self) -> Any:
        """The wrapped mpi4py communicator."""
        return self._comm

    @property
    def rank(self) -> int:
        return int(self._comm.Get_rank())

    @property
    def size(self) -> int:
        return int(self._comm.Get_size())

    def barrier(self) -> None:
        self._comm.Barrier()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self._comm.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        return list(self._comm.allgather(obj))

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        out = self._comm.gather(obj, root=root)
        return None if out is None else list(out)

    def any(self, flag: bool) -> bool:
        return bool(self._comm.allreduce(bool(flag), op=MPI.LOR))

    def abort(self, code: int = 1) -> None:
        """Terminate every rank of the run (used when one rank fails and others may hang)."""
        self._comm.Abort(code)


class MpiExchanger:
    """The MPI library's own ``MPI_Allgather`` / ``MPI_Allgatherv``, for compiled code.

    The functions are looked up in the MPI library mpi4py was loaded with (through mpi4py's
    extension module, whose dependencies include it), and the communicator and ``MPI_INT64_T``
    handles come from mpi4py, so any MPI that mpi4py runs on works (MPICH's integer handles and
    Open MPI's pointer handles alike).
    """

    def __init__(self, comm: MpiCommunicator) -> None:
        handle = ctypes.c_int32 if MPI._sizeof(MPI.Comm) == 4 else ctypes.c_int64
        gather, gatherv = collective_prototypes(handle)
        library = ctypes.CDLL(MPI.__file__)
        try:
            allgather = gather(("MPI_Allgather", library))
            allgatherv = gatherv(("MPI_Allgatherv", library))
        except AttributeError as exc:  # pragma: no cover - mpi4py always links libmpi
            raise EngineError(f"cannot find the MPI collectives in {MPI.__file__}: {exc}") from exc
        self._native = NativeExchange(
            n_ranks=comm.size,
            allgather=allgather,
            allgatherv=allgatherv,
            comm=int(MPI._handleof(comm.comm)),
            int64_type=int(MPI._handleof(MPI.INT64_T)),
        )

    def native(self) -> NativeExchange:
        return self._native


def world() -> MpiCommunicator:
    """The communicator of every rank this process was started with."""
    return MpiCommunicator()
