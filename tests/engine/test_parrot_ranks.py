"""Parrot populations on 1, 2 and 3 ranks (real mpiexec): bit-identical spikes and weights.

``data/parrot.yaml``: Poisson trains repeated by parrots, STDP from the parrots onto LIF
neurons and from those onto more parrots; every rank count splits each population
differently, so a parrot's spikes, and the plastic weights they drive, may not depend on
where it lives.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.conftest import DATA, Store, assert_bit_identical, run_on_ranks

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Store]:
    return run_on_ranks(DATA / "parrot.yaml", tmp_path_factory.mktemp("parrot"), (1, 2, 3))


def test_the_circuit_is_active_and_learns(stores: dict[int, Store]) -> None:
    one = stores[1]
    for population in ("P", "L", "Q"):
        assert one[f"spikes/{population}/timestamps"].size > 500, population
    for projection in ("PL", "LQ"):
        weights = one[f"weights/{projection}/data"]
        assert weights.shape[0] == 7  # 0, every 50 ms, and the end (300 ms)
        assert np.mean(weights[-1] != weights[0]) > 0.9, projection


def test_the_parrots_repeat_the_spike_trains(stores: dict[int, Store]) -> None:
    # Beside the Poisson spikes of the same neurons: the spike-source array's times 20 (twice:
    # one spike), 100 and 150 ms with delay 1 ms, and the encoder's trains (5 and 40 ms to node
    # 0, 77.7 ms to node 2) with delay dt.
    times, ids = stores[1]["spikes/P/timestamps"], stores[1]["spikes/P/node_ids"]

    def of(node: int) -> list[float]:
        return np.round(times[ids == node], 10).tolist()

    for node in (0, 41, 79):
        assert {21.0, 101.0, 151.0} <= set(of(node)), node
        assert of(node).count(21.0) == 1
    assert {5.1, 40.1} <= set(of(0))
    assert 77.8 in of(2)


@pytest.mark.parametrize("ranks", [2, 3])
def test_spikes_and_weights_are_bit_identical(stores: dict[int, Store], ranks: int) -> None:
    assert_bit_identical(stores[1], stores[ranks])
    assert any(name.startswith("weights/") for name in stores[ranks])
