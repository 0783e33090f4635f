"""MPI communicator and spike exchanger (mpi4py); the only module of the core that imports MPI."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from mpi4py import MPI

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
    """Allgatherv of spike keys with reusable buffers (no allocation once warmed up)."""

    def __init__(self, comm: MpiCommunicator) -> None:
        self._comm = comm.comm
        size = comm.size
        self._count = np.zeros(1, dtype=np.int64)
        self._counts = np.zeros(size, dtype=np.int64)
        self._displs = np.zeros(size, dtype=np.int64)
        self._recv = np.empty(1024, dtype=np.int64)

    def exchange(self, local_keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        self._count[0] = local_keys.size
        self._comm.Allgather(self._count, self._counts)
        total = int(self._counts.sum())
        if total > self._recv.size:
            self._recv = np.empty(max(total, 2 * self._recv.size), dtype=np.int64)
        self._displs[0] = 0
        np.cumsum(self._counts[:-1], out=self._displs[1:])
        recv = self._recv[:total]
        self._comm.Allgatherv(
            np.ascontiguousarray(local_keys), [recv, self._counts, self._displs, MPI.INT64_T]
        )
        recv.sort()
        return recv


def world() -> MpiCommunicator:
    """The communicator of every rank this process was started with."""
    return MpiCommunicator()
