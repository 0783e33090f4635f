"""The communication interfaces the engine and the recorder are written against.

``Communicator`` is the small set of collectives brainsim needs (barrier, object
gathers); ``SpikeExchanger`` is the one hot-path collective: every rank
contributes the spike keys it produced in an exchange interval and receives everyone's.
Two implementations exist: :mod:`brainsim.exchange.local` (one process) and
:mod:`brainsim.exchange.mpi` (mpi4py, the only MPI user in the core).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["Communicator", "SpikeExchanger"]


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


@runtime_checkable
class SpikeExchanger(Protocol):
    """Exchanges the spikes of one interval between ranks.

    Keys are int64 values chosen by the engine (it encodes ``step_in_interval * n_gids + gid``
    so that sorting the keys orders spikes by time, then by source gid). The returned array is
    the keys of all ranks, sorted ascending, and is only valid until the next call: exchangers
    reuse their buffers so the step loop allocates nothing.
    """

    def exchange(self, local_keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Return every rank's keys of this interval, sorted ascending."""
        ...
