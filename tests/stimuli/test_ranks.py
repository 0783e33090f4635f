"""Rate, latency, population, delta and spike-train stimuli read from files, on 1, 2 and 3 ranks
(real mpiexec): identical spikes, state and recorded presentations, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.conftest import Store, assert_bit_identical, run_on_ranks
from tests.stimuli.conftest import write_circuit

pytestmark = pytest.mark.mpi


def _document() -> dict[str, object]:
    lif = {"tau_m_ms": 10.0, "v_th_mV": 15.0, "v_reset_mV": 0.0, "e_l_mV": 0.0, "t_ref_ms": 2.0}
    return {
        "apiVersion": "brainsim/v1",
        "name": "encoders-ranks",
        "simulation": {"dt_ms": 0.1, "duration_ms": 120.0, "seed": 5},
        "populations": {
            "A": {"size": 30, "model": "lif", "params": lif},
            "B": {"size": 25, "model": "lif", "params": {**lif, "synapse": "exponential"}},
        },
        "projections": {
            "AB": {
                "source": "A",
                "target": "B",
                "connectivity": {"rule": "fixed_indegree", "indegree": 6},
                "weight": 300.0,
                "delay_ms": 0.5,
            },
            "BA": {
                "source": "B",
                "target": "A",
                "connectivity": {"rule": "pairwise_bernoulli", "p": 0.2},
                "weight": -2.0,
                "delay_ms": 1.0,
            },
        },
        "stimuli": {
            # 40 targets over both populations, reading 40 of the file's 45 columns.
            "pixels": {
                "type": "rate",
                "targets": [
                    {"population": "A", "node_ids": {"first": 20}},
                    {"population": "B", "node_ids": {"range": {"start": 5}}},
                ],
                "data": "pixels.npy",
                "features": list(range(5, 45)),
                "present_ms": 15.0,
                "rest_ms": 5.0,
                "order": [3, 1, 3, 0, 2, 1],
                "max_rate_hz": 400.0,
                "weight": {"uniform": {"low": 5.0, "high": 10.0}},
            },
            "counts": {
                "type": "rate",
                "targets": ["B"],
                "data": "pixels.npy",
                "features": list(range(25)),
                "present_ms": 30.0,
                "mode": "poisson",
                "max_rate_hz": 300.0,
                "weight": 200.0,
                "delay_ms": 0.3,
            },
            "onset": {
                "type": "latency",
                "targets": ["A"],
                "data": "onset.csv",
                "start_ms": 10.0,
                "present_ms": 20.0,
                "tau_ms": 4.0,
                "normalize": True,
                "weight": 16.0,
                "delay_ms": 0.7,
            },
            # 5 features x 3 neurons over both populations.
            "petals": {
                "type": "population",
                "targets": [
                    {"population": "A", "node_ids": {"range": {"start": 20}}},
                    {"population": "B", "node_ids": {"first": 5}},
                ],
                "data": "pixels.npy",
                "features": [7, 0, 44, 3, 3],
                "start_ms": 4.0,
                "present_ms": 10.0,
                "rest_ms": 2.5,
                "order": [1, 2, 0, 3, 1, 1, 2, 0, 3, 2],
                "n_neurons_per_feature": 3,
                "low": 0.1,
                "high": 0.9,
                "sigma": 0.2,
                "max_rate_hz": 300.0,
                "weight": 30.0,
                "delay_ms": 0.4,
            },
            # Rises drive every other B neuron, falls 13 A neurons; late rows fall off the end.
            "sensor": {
                "type": "delta",
                "targets": [{"population": "B", "node_ids": {"range": {"step": 2}}}],
                "targets_off": [{"population": "A", "node_ids": list(range(1, 27, 2))}],
                "data": "series.csv",
                "start_ms": 3.0,
                "step_ms": 1.5,
                "threshold": 0.3,
                "off_spikes": True,
                "weight": {"uniform": {"low": 10.0, "high": 20.0}},
                "delay_ms": 0.2,
            },
            "replay": {
                "type": "spike_trains",
                "targets": ["B", {"population": "A", "node_ids": [0, 29]}],
                "data": {"file": "trains.npz"},
                "weight": 400.0,
            },
        },
        "recordings": {
            "spikes": "all",
            "state": [
                {"population": "A", "variables": ["v"], "node_ids": [0, 7, 21, 29]},
                {"population": "B", "variables": ["i_syn_ex"], "interval_ms": 0.5},
            ],
        },
    }


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Store]:
    directory = tmp_path_factory.mktemp("encoders")
    rng = np.random.default_rng(8)
    np.save(directory / "pixels.npy", rng.random((4, 45)))
    np.savetxt(directory / "onset.csv", rng.random((5, 30)), delimiter=",")
    np.savetxt(directory / "series.csv", rng.normal(0.0, 0.3, (80, 13)).cumsum(0), delimiter=",")
    node_ids = rng.integers(0, 27, 200)
    np.savez(directory / "trains.npz", node_ids=node_ids, times=rng.random(200) * 120.0)
    circuit = write_circuit(directory, _document())
    return run_on_ranks(circuit, directory, (1, 2, 3))


def test_every_population_spikes(stores: dict[int, Store]) -> None:
    for population in ("A", "B"):
        assert stores[1][f"spikes/{population}/timestamps"].size > 50, population


@pytest.mark.parametrize("ranks", [2, 3])
def test_arrays_identical_bit_for_bit(stores: dict[int, Store], ranks: int) -> None:
    assert_bit_identical(stores[1], stores[ranks])


def test_presentations_of_the_sample_stimuli_are_recorded(stores: dict[int, Store]) -> None:
    store = stores[1]
    assert sorted(name for name in store if name.startswith("stimuli/")) == [
        f"stimuli/{name}/{array}"
        for name in ("counts", "onset", "petals", "pixels")
        for array in ("sample_index", "sample_onsets_ms")
    ]
    # 4 + 12.5 k ms for the ten presentations (all begin before 120 ms).
    assert np.array_equal(
        store["stimuli/petals/sample_onsets_ms"], (40 + 125 * np.arange(10)) * 0.1
    )
    assert store["stimuli/petals/sample_index"].tolist() == [1, 2, 0, 3, 1, 1, 2, 0, 3, 2]
