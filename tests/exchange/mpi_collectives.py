"""Run under mpiexec: checks every collective of MpiCommunicator and the native collectives of
MpiExchanger (called from compiled code, as the step loop calls them); prints 'ok'."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from brainsim.exchange import LocalExchanger
from brainsim.exchange.mpi import MpiExchanger, world


@numba.njit
def _exchange(
    keys: np.ndarray, allgather: Any, allgatherv: Any, comm: int, int64_type: int, size: int
) -> tuple[int, np.ndarray]:
    counts = np.zeros(size + 1, dtype=np.int64)
    counts[size] = keys.shape[0]
    rc = allgather(counts[size:].ctypes.data, 1, int64_type, counts.ctypes.data, 1, int64_type,
                   comm)  # fmt: skip
    counts32 = counts[:size].astype(np.int32)
    displs32 = np.zeros(size, dtype=np.int32)
    for r in range(1, size):
        displs32[r] = displs32[r - 1] + counts32[r - 1]
    recv = np.empty(counts[:size].sum(), dtype=np.int64)
    rc |= allgatherv(keys.ctypes.data, keys.shape[0], int64_type, recv.ctypes.data,
                     counts32.ctypes.data, displs32.ctypes.data, int64_type, comm)  # fmt: skip
    return rc, recv


def main() -> None:
    comm = world()
    rank, size = comm.rank, comm.size
    assert comm.bcast({"x": 7} if rank == 0 else None) == {"x": 7}
    assert comm.allgather(rank * 10) == [r * 10 for r in range(size)]
    gathered = comm.gather(rank, root=0)
    assert gathered == (list(range(size)) if rank == 0 else None)
    assert comm.any(rank == size - 1) is True
    assert comm.any(False) is False
    native = MpiExchanger(comm).native()
    assert native.n_ranks == size
    # With MPICH's integer handles, one compiled loop serves one rank and several.
    assert numba.typeof(native.allgather) == numba.typeof(LocalExchanger().native().allgather)
    rng = np.random.default_rng(rank)
    for round_ in range(50):
        # Uneven, sometimes empty contributions, some large.
        n = int(rng.integers(0, 3000)) if round_ % 7 else 0
        keys = rng.integers(-(10**12), 10**12, n).astype(np.int64)
        everyone = comm.allgather(keys)
        rc, got = _exchange(keys, native.allgather, native.allgatherv, native.comm,
                            native.int64_type, size)  # fmt: skip
        assert rc == 0
        assert np.array_equal(got, np.concatenate(everyone)), round_  # in rank order
    comm.barrier()
    if rank == 0:
        print("ok")


if __name__ == "__main__":
    main()
