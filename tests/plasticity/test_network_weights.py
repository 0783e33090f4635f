"""Every plastic synapse of a recurrent network against the event-driven reference.

The protocol tests (test_engine_stdp.py) pin one synapse; here a whole network runs
(``tests/engine/data/plastic.yaml``: Guetig STDP from E onto exponential-synapse LIF neurons;
inhibitory STDP with a negative ``w_max`` on an ``all_to_all`` projection onto E, whose neurons
fire at about 100 Hz, so their post-spike rings grow and are pruned), and the final weight of
every synapse of the projections with one delay is recomputed by the reference from the
recorded spike trains of its two neurons. The weight is float32, rounded once per presynaptic
spike, hence the tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import brainsim
from brainsim.circuit import load_circuit
from brainsim.models import SYNAPSE_MODELS
from tests.plasticity.stdp_reference import stdp_weights

CIRCUIT = Path(__file__).resolve().parents[1] / "engine" / "data" / "plastic.yaml"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("network") / "plastic.zarr"
    brainsim.run(CIRCUIT, out)
    return zarr.open_group(out, mode="r")


def _trains(store: Any, population: str, size: int) -> list[list[float]]:
    times = np.asarray(store[f"spikes/{population}/timestamps"][:])
    ids = np.asarray(store[f"spikes/{population}/node_ids"][:])
    return [times[ids == i].tolist() for i in range(size)]


@pytest.mark.parametrize(("name", "busy_targets"), [("EI", False), ("IE", True)])
def test_final_weights_equal_the_reference(store: Any, name: str, busy_targets: bool) -> None:
    circuit = load_circuit(CIRCUIT)
    projection = circuit.projections[name]
    model = SYNAPSE_MODELS[projection.synapse.model]
    params = {
        model.parameter(key).nest_name: value
        for key, value in projection.synapse.params.items()
        if key != "tau_minus_ms"
    }
    assert isinstance(projection.delay_ms, float)
    pre = _trains(store, projection.source, circuit.populations[projection.source].size)
    post = _trains(store, projection.target, circuit.populations[projection.target].size)
    group = store[f"weights/{name}"]
    sources, targets = np.asarray(group["source"][:]), np.asarray(group["target"][:])
    data = np.asarray(group["data"][:])
    initial = data[0] if data.shape[0] > 1 else np.full(data.shape[1], projection.weight)
    expected = np.array(
        [
            (stdp_weights(pre[s], post[t], projection.delay_ms, float(w0), "stdp", params,
                          projection.synapse.params["tau_minus_ms"]) or [float(w0)])[-1]
            for s, t, w0 in zip(sources, targets, initial, strict=True)
        ]
    )  # fmt: skip
    w_max = abs(projection.synapse.params["w_max"])
    np.testing.assert_allclose(data[-1], expected, rtol=1e-5, atol=1e-6 * w_max)
    assert np.mean(np.abs(data[-1] - initial) > 1e-3 * w_max) > 0.5  # they learned
    if busy_targets:  # E fires ~100 Hz: its post-spike rings grew past their first length
        assert max(len(train) for train in post) > 16


def test_writing_weights_is_timed_apart_from_the_simulation(store: Any) -> None:
    # Like NEST's reading of weights after Simulate, writing synapse ids and snapshots is not
    # simulation: the provenance has it as weights_s, outside sim_s.
    provenance = store.attrs["brainsim"]["provenance"]
    assert provenance["weights_s"] > 0.0
    assert provenance["sim_s"] > 0.0
    parts = provenance["build_s"] + provenance["sim_s"] + provenance["weights_s"]
    assert parts <= provenance["wall_s"]
