"""Alpha synapses on 1 and 2 ranks (real mpiexec): bit-identical spikes and state."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.conftest import DATA, Store, assert_bit_identical, run_on_ranks

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Store]:
    return run_on_ranks(DATA / "alpha.yaml", tmp_path_factory.mktemp("alpha-ranks"), (1, 2))


def test_the_circuit_is_active(stores: dict[int, Store]) -> None:
    for population in ("A", "B", "D"):
        assert stores[1][f"spikes/{population}/timestamps"].size > 50, population
    assert np.min(stores[1]["report/A/i_syn_in/data"]) < -10.0
    assert np.max(stores[1]["report/A/i_syn_ex/data"]) > 10.0


def test_one_and_two_ranks_are_bit_identical(stores: dict[int, Store]) -> None:
    assert_bit_identical(stores[1], stores[2])
