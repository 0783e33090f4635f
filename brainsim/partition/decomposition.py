"""Domain decomposition: which rank owns which neurons, computed identically on every rank.

Every population is split into ``n_ranks`` contiguous blocks whose sizes differ by at most one
(rank ``r`` owns local indices ``[bounds[p, r], bounds[p, r + 1])`` of population ``p``). Splitting
each population, rather than the gid range as a whole, gives every rank a share of every cell type
and so balances the work of heterogeneous circuits. The decomposition is plain data; the balancer
that produces it is a separate function (:func:`block_decomposition`), as in Arbor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Decomposition", "block_decomposition"]


@dataclass(frozen=True, slots=True)
class Decomposition:
    """Immutable map between gids and (rank, population, local index).

    ``names[p]`` is population ``p``, ``gid_offsets[p]`` its first gid, ``bounds[p]`` the
    ``n_ranks + 1`` block boundaries in population-local indices.
    """

    names: tuple[str, ...]
    gid_offsets: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    bounds: npt.NDArray[np.int64]
    n_ranks: int

    @property
    def n_gids(self) -> int:
        """Total number of neurons."""
        return int(self.sizes.sum())

    def index(self, population: str) -> int:
        """Position of ``population`` in :attr:`names`."""
        return self.names.index(population)

    def local_range(self, population: str, rank: int) -> tuple[int, int]:
        """Population-local ``[lo, hi)`` owned by ``rank``."""
        p = self.index(population)
        return int(self.bounds[p, rank]), int(self.bounds[p, rank + 1])

    def local_gids(self, population: str, rank: int) -> npt.NDArray[np.int64]:
        """The gids of ``population`` owned by ``rank``, ascending."""
        lo, hi = self.local_range(population, rank)
        off = int(self.gid_offsets[self.index(population)])
        return np.arange(off + lo, off + hi, dtype=np.int64)

    def population_of(self, gids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Population index of each gid."""
        return np.searchsorted(self.gid_offsets, gids, side="right").astype(np.int64) - 1

    def owner(self, gids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Rank owning each gid."""
        pops = self.population_of(gids)
        local = gids - self.gid_offsets[pops]
        out = np.empty(gids.shape, dtype=np.int64)
        for p in range(len(self.names)):
            sel = pops == p
            out[sel] = np.searchsorted(self.bounds[p], local[sel], side="right") - 1
        return out


def block_decomposition(names: Sequence[str], sizes: Sequence[int], n_ranks: int) -> Decomposition:
    """Split every population into ``n_ranks`` near-equal contiguous blocks.

    The first ``size % n_ranks`` ranks get one neuron more. A rank may own no neuron of a small
    population; that is valid.
    """
    if n_ranks < 1:
        raise ValueError(f"n_ranks must be >= 1, got {n_ranks}")
    size_arr = np.asarray(sizes, dtype=np.int64)
    offsets = np.zeros(len(size_arr), dtype=np.int64)
    if len(size_arr) > 1:
        np.cumsum(size_arr[:-1], out=offsets[1:])
    bounds = np.zeros((len(size_arr), n_ranks + 1), dtype=np.int64)
    ranks = np.arange(n_ranks + 1, dtype=np.int64)
    for p, n in enumerate(size_arr):
        base, extra = divmod(int(n), n_ranks)
        bounds[p] = ranks * base + np.minimum(ranks, extra)
    return Decomposition(tuple(names), offsets, size_arr, bounds, n_ranks)
