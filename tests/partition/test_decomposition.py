"""The block decomposition covers every gid exactly once, balanced, for any rank count."""

from __future__ import annotations

import numpy as np
import pytest

from brainsim.partition import block_decomposition


@pytest.mark.parametrize("n_ranks", [1, 2, 3, 7])
def test_every_gid_owned_by_exactly_one_rank(n_ranks: int) -> None:
    dec = block_decomposition(["E", "I", "X"], [10, 3, 1], n_ranks)
    owned = np.concatenate([dec.local_gids(p, r) for r in range(n_ranks) for p in dec.names])
    assert np.array_equal(np.sort(owned), np.arange(14))
    for r in range(n_ranks):
        for p in dec.names:
            gids = dec.local_gids(p, r)
            assert np.all(dec.owner(gids) == r)


def test_blocks_are_balanced_and_contiguous() -> None:
    dec = block_decomposition(["E", "I"], [10, 5], 3)
    assert [dec.local_range("E", r) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]
    assert [dec.local_range("I", r) for r in range(3)] == [(0, 2), (2, 4), (4, 5)]
    assert dec.n_gids == 15
    assert list(dec.population_of(np.array([0, 9, 10, 14]))) == [0, 0, 1, 1]


def test_rejects_zero_ranks() -> None:
    with pytest.raises(ValueError, match="n_ranks"):
        block_decomposition(["E"], [4], 0)
