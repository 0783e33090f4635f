"""Run under mpiexec: checks every collective of MpiCommunicator and MpiExchanger, prints 'ok'."""

from __future__ import annotations

import numpy as np

from brainsim.exchange.mpi import MpiExchanger, world


def main() -> None:
    comm = world()
    rank, size = comm.rank, comm.size
    assert comm.bcast({"x": 7} if rank == 0 else None) == {"x": 7}
    assert comm.allgather(rank * 10) == [r * 10 for r in range(size)]
    gathered = comm.gather(rank, root=0)
    assert gathered == (list(range(size)) if rank == 0 else None)
    assert comm.any(rank == size - 1) is True
    assert comm.any(False) is False
    exchanger = MpiExchanger(comm)
    rng = np.random.default_rng(rank)
    for round_ in range(50):
        # Uneven, sometimes empty contributions that grow past the initial buffer.
        n = int(rng.integers(0, 3000)) if round_ % 7 else 0
        keys = rng.integers(0, 10**9, n).astype(np.int64)
        everyone = comm.allgather(keys)
        got = exchanger.exchange(keys.copy())
        assert np.array_equal(got, np.sort(np.concatenate(everyone)))
    comm.barrier()
    if rank == 0:
        print("ok")


if __name__ == "__main__":
    main()
