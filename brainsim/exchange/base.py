"""The communication interfaces the engine and the recorder are written against.

``Communicator`` is the small set of collectives brainsim needs (barrier, object
gathers); ``SpikeExchanger`` provides the one hot-path collective, which compiled code calls
directly: every rank contributes the spike keys it produced in an exchange interval and
receives everyone's.
Two implementations exist: :mod:`brainsim.exchange.local` (one process) and
:mod:`brainsim.exchange.mpi` (mpi4py, the only MPI user in the core).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Communicator", "NativeExchange", "SpikeExchanger", "collective_prototypes"]


@runtime_checkable
class Communicator(Protocol):
    """Collectives over the ranks of one run; every method is collective unless noted."""

    @property
    def rank(self) -> int:
        """This process's rank, 0-based (not collective)."""
        ...

    @property
    def size(self) -> int:
        """Number of ranks in the run (not collective)."""
        ...

    def barrier(self) -> None:
        """Wait until every rank has arrived."""

    def bcast(self, obj: Any, root: int = 0) -> Any:
        """Return ``obj`` from ``root`` on every rank (picklable objects)."""

    def allgather(self, obj: Any) -> list[Any]:
        """Return the list of every rank's ``obj``, in rank order."""

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        """Return every rank's ``obj`` in rank order on ``root``; ``None`` elsewhere."""

    def any(self, flag: bool) -> bool:
        """Logical OR of ``flag`` over all ranks (used to stop every rank when one fails)."""
        ...


def collective_prototypes(handle: type[Any]) -> tuple[Any, Any]:
    """ctypes prototypes of ``MPI_Allgather`` and ``MPI_Allgatherv`` for an MPI whose datatype
    and communicator handles have the C type ``handle`` (``int`` in MPICH, a pointer in Open MPI).
    Buffers and count arrays are passed as addresses."""
    ptr, count = ctypes.c_void_p, ctypes.c_int
    gather = ctypes.CFUNCTYPE(ctypes.c_int, ptr, count, handle, ptr, count, handle, handle)
    gatherv = ctypes.CFUNCTYPE(ctypes.c_int, ptr, count, handle, ptr, ptr, ptr, handle, handle)
    return gather, gatherv


@dataclass(frozen=True, slots=True)
class NativeExchange:
    """What compiled code needs to exchange spikes without returning to Python.

    ``allgather`` and ``allgatherv`` are ctypes function pointers with the signatures of
    ``MPI_Allgather`` and ``MPI_Allgatherv`` (:func:`collective_prototypes`); numba calls them
    from the step loop (:func:`brainsim.kernels.loop.run_intervals`) with the ``comm`` and
    ``int64_type`` handles. With one rank they are never called.
    """

    n_ranks: int
    allgather: Any
    allgatherv: Any
    comm: int
    int64_type: int


@runtime_checkable
class SpikeExchanger(Protocol):
    """Provides the spike exchange of the step loop.

    Every exchange interval, every rank contributes the int64 keys of the spikes it produced
    (``step_in_interval * n_gids + gid``, so that sorting orders spikes by time, then by source
    gid) and receives everyone's; the loop runs in compiled code, so the exchanger hands it
    native collectives.
    """

    def native(self) -> NativeExchange:
        """The native collectives over this exchanger's ranks."""
        ...
