"""Alpha synapses on 1 and 2 ranks (real mpiexec): bit-identical spikes and state."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.conftest import DATA, brainsim_run, read_store, root_attrs

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, np.ndarray]]:
    base = tmp_path_factory.mktemp("alpha-ranks")
    out = {}
    for ranks in (1, 2):
        path = base / f"r{ranks}.zarr"
        result = brainsim_run(DATA / "alpha.yaml", path, ranks=ranks)
        assert result.returncode == 0, result.stderr
        assert root_attrs(path)["status"] == "complete"
        out[ranks] = read_store(path)
    return out


def test_the_circuit_is_active(stores: dict[int, dict[str, np.ndarray]]) -> None:
    for population in ("A", "B", "D"):
        assert stores[1][f"spikes/{population}/timestamps"].size > 50, population
    assert np.min(stores[1]["report/A/i_syn_in/data"]) < -10.0
    assert np.max(stores[1]["report/A/i_syn_ex/data"]) > 10.0


def test_one_and_two_ranks_are_bit_identical(stores: dict[int, dict[str, np.ndarray]]) -> None:
    one, two = stores[1], stores[2]
    assert sorted(one) == sorted(two)
    for name, array in one.items():
        assert array.dtype == two[name].dtype, name
        assert array.shape == two[name].shape, name
        assert np.array_equal(array.view(np.uint8), two[name].view(np.uint8)), name
