"""Single-process communicator and exchanger: the run has exactly one rank."""

from __future__ import annotations

import ctypes
from typing import Any

from brainsim.exchange.base import NativeExchange, collective_prototypes

__all__ = ["LocalCommunicator", "LocalExchanger"]


class LocalCommunicator:
    """A communicator of one rank; every collective is the identity."""

    @property
    def rank(self) -> int:
        return 0

    @property
    def size(self) -> int:
        return 1

    def barrier(self) -> None:
        return None

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        return [obj]

    def any(self, flag: bool) -> bool:
        return bool(flag)


def _never_called(*_args: object) -> int:  # pragma: no cover - one rank never exchanges
    raise AssertionError("a one-rank run has no collective to call")


_GATHER, _GATHERV = collective_prototypes(ctypes.c_int32)


class LocalExchanger:
    """Exchanger for one rank: the local keys are all the keys, so nothing is called."""

    def __init__(self) -> None:
        # Placeholders of the native signature (the loop's compiled code is the same for one
        # and several ranks); they must stay referenced while the loop may see them.
        self._native = NativeExchange(
            n_ranks=1,
            allgather=_GATHER(_never_called),
            allgatherv=_GATHERV(_never_called),
            comm=0,
            int64_type=0,
        )

    def native(self) -> NativeExchange:
        return self._native
