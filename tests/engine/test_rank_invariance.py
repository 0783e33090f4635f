"""Same circuit and seed on 1, 2 and 3 ranks (forked, and under real mpiexec): identical spikes
and state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.engine.conftest import (
    DATA,
    Store,
    assert_bit_identical,
    brainsim_run,
    read_store,
    root_attrs,
    run_on_ranks,
)

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Store]:
    return run_on_ranks(DATA / "features.yaml", tmp_path_factory.mktemp("ranks"), (1, 2, 3))


def test_every_population_spikes(stores: dict[int, Store]) -> None:
    for pop in ("E", "I", "Z", "Y"):
        assert stores[1][f"spikes/{pop}/timestamps"].size > 20, pop


@pytest.mark.parametrize("ranks", [2, 3])
def test_arrays_identical_bit_for_bit(stores: dict[int, Store], ranks: int) -> None:
    assert_bit_identical(stores[1], stores[ranks])


@pytest.mark.parametrize("ranks", [2, 3])
def test_forked_ranks_and_mpiexec_ranks_record_the_same(
    stores: dict[int, Store], ranks: int, tmp_path: Path
) -> None:
    """The stores above come from ranks forked by ``brainsim run`` (``--launcher auto`` on
    Linux with MPICH); fresh ranks started by mpiexec record the same bytes."""
    path = tmp_path / "mpiexec.zarr"
    result = brainsim_run(DATA / "features.yaml", path, "--launcher", "mpiexec", ranks=ranks)
    assert result.returncode == 0, result.stderr
    assert root_attrs(path)["provenance"]["n_ranks"] == ranks  # type: ignore[index]
    assert_bit_identical(stores[ranks], read_store(path))


def test_spikes_sorted_and_on_grid(stores: dict[int, Store]) -> None:
    for pop in ("E", "I", "Z", "Y"):
        t = stores[1][f"spikes/{pop}/timestamps"]
        ids = stores[1][f"spikes/{pop}/node_ids"]
        order = np.lexsort((ids, t))
        assert np.array_equal(order, np.arange(t.size))
        steps = np.rint(t / 0.1)
        assert np.array_equal(t, steps * 0.1)


def test_state_reports_recorded(stores: dict[int, Store]) -> None:
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
def plastic_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Store]:
    """``data/plastic.yaml`` (STDP onto LIF delta, LIF exponential and Izhikevich targets,
    distributed delays, inhibitory STDP, power-law STDP) on 1, 2 and 3 ranks."""
    return run_on_ranks(DATA / "plastic.yaml", tmp_path_factory.mktemp("plastic"), (1, 2, 3))


@pytest.mark.parametrize("ranks", [2, 3])
def test_plastic_network_identical_bit_for_bit(
    plastic_stores: dict[int, Store], ranks: int
) -> None:
    """Spikes and every recorded weight, byte for byte."""
    assert {f"weights/{p}/data" for p in ("EE", "EI", "IE", "EZ")} <= set(plastic_stores[1])
    assert_bit_identical(plastic_stores[1], plastic_stores[ranks])


def test_plastic_weights_learn_and_stay_in_bounds(
    plastic_stores: dict[int, Store],
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
