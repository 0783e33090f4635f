"""Single-process communicator and exchanger: the run has exactly one rank."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

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


class LocalExchanger:
    """Exchanger for one rank: the local keys are all the keys (sorted in place)."""

    def exchange(self, local_keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        local_keys.sort()
        return local_keys
