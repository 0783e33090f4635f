"""Same circuit and seed on 1, 2 and 3 ranks (real mpiexec): identical spikes and state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.engine.conftest import DATA, brainsim_run, read_store, root_attrs

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, np.ndarray]]:
    base = tmp_path_factory.mktemp("ranks")
    out = {}
    for ranks in (1, 2, 3):
        path = base / f"r{ranks}.zarr"
        result = brainsim_run(DATA / "features.yaml", path, ranks=ranks)
        assert result.returncode == 0, result.stderr
        attrs = root_attrs(path)
        assert attrs["status"] == "complete"
        assert attrs["provenance"]["n_ranks"] == ranks  # type: ignore[index]
        out[ranks] = read_store(path)
    return out


def test_every_population_spikes(stores: dict[int, dict[str, np.ndarray]]) -> None:
    for pop in ("E", "I", "Z", "Y"):
        assert stores[1][f"spikes/{pop}/timestamps"].size > 20, pop


@pytest.mark.parametrize("ranks", [2, 3])
def test_arrays_identical_bit_for_bit(stores: dict[int, dict[str, np.ndarray]], ranks: int) -> None:
    one, many = stores[1], stores[ranks]
    assert sorted(one) == sorted(many)
    for name, arr in one.items():
        other = many[name]
        assert arr.dtype == other.dtype, name
        assert arr.shape == other.shape, name
        assert np.array_equal(arr.view(np.uint8), other.view(np.uint8)), name


def test_spikes_sorted_and_on_grid(stores: dict[int, dict[str, np.ndarray]]) -> None:
    for pop in ("E", "I", "Z", "Y"):
        t = stores[1][f"spikes/{pop}/timestamps"]
        ids = stores[1][f"spikes/{pop}/node_ids"]
        order = np.lexsort((ids, t))
        assert np.array_equal(order, np.arange(t.size))
        steps = np.rint(t / 0.1)
        assert np.array_equal(t, steps * 0.1)


def test_state_reports_recorded(stores: dict[int, dict[str, np.ndarray]]) -> None:
    v = stores[1]["report/E/v/data"]
    assert v.shape == (2000, 20)
    assert np.all(np.isfinite(v))
    assert stores[1]["report/I/i_syn_in/data"].shape == (200, 4)
    assert stores[1]["report/Z/u/data"].shape == (400, 8)
    assert np.array_equal(stores[1]["report/Z/v/node_ids"], np.arange(1, 37, 5))


def test_a_different_seed_changes_the_spikes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    for path, seed in ((a, "1"), (b, "2")):
        result = brainsim_run(DATA / "features.yaml", path, "--seed", seed, "--duration-ms", "50")
        assert result.returncode == 0, result.stderr
    ta, tb = read_store(a)["spikes/E/timestamps"], read_store(b)["spikes/E/timestamps"]
    assert not (ta.shape == tb.shape and np.array_equal(ta, tb))


@pytest.fixture(scope="module")
def plastic_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, np.ndarray]]:
    """``data/plastic.yaml`` (STDP onto LIF delta, LIF exponential and Izhikevich targets,
    distributed delays, inhibitory STDP, power-law STDP) on 1, 2 and 3 ranks."""
    base = tmp_path_factory.mktemp("plastic")
    out = {}
    for ranks in (1, 2, 3):
        path = base / f"r{ranks}.zarr"
        result = brainsim_run(DATA / "plastic.yaml", path, ranks=ranks)
        assert result.returncode == 0, result.stderr
        assert root_attrs(path)["status"] == "complete"
        out[ranks] = read_store(path)
    return out


@pytest.mark.parametrize("ranks", [2, 3])
def test_plastic_network_identical_bit_for_bit(
    plastic_stores: dict[int, dict[str, np.ndarray]], ranks: int
) -> None:
    """Spikes and every recorded weight, byte for byte."""
    one, many = plastic_stores[1], plastic_stores[ranks]
    assert sorted(one) == sorted(many)
    assert {f"weights/{p}/data" for p in ("EE", "EI", "IE", "EZ")} <= set(one)
    for name, arr in one.items():
        other = many[name]
        assert arr.dtype == other.dtype, name
        assert arr.shape == other.shape, name
        assert np.array_equal(arr.view(np.uint8), other.view(np.uint8)), name


def test_plastic_weights_learn_and_stay_in_bounds(
    plastic_stores: dict[int, dict[str, np.ndarray]],
) -> None:
    store = plastic_stores[1]
    for pop in ("E", "I", "Z"):
        assert store[f"spikes/{pop}/timestamps"].size > 50, pop
    ee = store["weights/EE/data"]
    assert np.array_equal(store["weights/EE/time"], np.arange(0.0, 301.0, 25.0))
    assert ee.shape == (13, 160 * 40)
    assert np.all((ee >= 0.0) & (ee <= 0.5))  # stdp keeps weights in [0, w_max]
    assert np.mean(ee[-1] != ee[0]) > 0.9  # nearly every synapse changed
    # Snapshots are ordered by target, then source.
    target, source = store["weights/EE/target"], store["weights/EE/source"]
    assert np.all(np.diff(target) >= 0)
    same = np.diff(target) == 0
    assert np.all(np.diff(source)[same] >= 0)
    assert np.array_equal(np.bincount(target, minlength=160), np.full(160, 40))
    assert store["weights/EI/time"].tolist() == [0.0, 150.0, 300.0]
    # Unasked projections record their final weights only.
    assert store["weights/IE/time"].tolist() == [300.0]
    ie = store["weights/IE/data"]
    assert np.all((ie >= -1.0) & (ie <= 0.0))  # inhibitory STDP: [w_max, 0]
    assert np.any(ie != -0.3)
    ez = store["weights/EZ/data"]
    assert ez.shape == (4, 200)  # the first 200 synapses, at 0, 100, 200, 300 ms
    assert np.all(ez >= 0.0)
    assert np.any(ez[-1] != ez[0])
