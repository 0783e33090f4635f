"""The initial state a rank's populations start from, as the step loop sees it at step 0."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from brainsim.circuit import parse_circuit
from brainsim.engine import build_network
from brainsim.engine.populations import LocalPopulation
from brainsim.exchange import LocalCommunicator


def _izhikevich(params: dict[str, Any], initial: dict[str, Any]) -> LocalPopulation:
    """The single-rank population ``P`` of 500 Izhikevich neurons, built but not advanced."""
    doc = {
        "apiVersion": "brainsim/v1",
        "name": "initial-state",
        "simulation": {"dt_ms": 0.1, "duration_ms": 1.0, "seed": 11},
        "populations": {
            "P": {
                "size": 500,
                "model": "izhikevich",
                "random_variables": {"r": {"uniform": {"low": 0.0, "high": 1.0}}},
                "params": params,
                "initial": initial,
            }
        },
    }
    network = build_network(parse_circuit(doc), LocalCommunicator())
    pop = network.populations["P"]
    assert np.shares_memory(pop.state["u"], network.neurons.state)  # what the step loop reads
    return pop


RANDOM_B = {"uniform": {"low": 0.15, "high": 0.3}}


@pytest.mark.parametrize(
    ("params", "initial"),
    [
        ({"b": RANDOM_B}, {"v_mV": {"normal": {"mean": -65.0, "std": 5.0}}}),
        ({"b": {"expr": "0.25 - 0.05 * r"}}, {"v_mV": {"expr": "-70 + 10 * r"}}),
        ({"b": RANDOM_B, "c_mV": {"uniform": {"low": -70.0, "high": -50.0}}}, {}),
    ],
    ids=["drawn", "expressions", "v-defaults-to-c"],
)
def test_default_u_is_b_times_each_neurons_initial_v(
    params: dict[str, Any], initial: dict[str, Any]
) -> None:
    pop = _izhikevich(params, initial)
    b, v, u = pop.params["b"], pop.state["v"], pop.state["u"]
    assert np.unique(b).size == pop.n
    assert np.unique(v).size == pop.n
    if not initial:
        np.testing.assert_array_equal(v, pop.params["c_mV"])
    # b * v of the same neuron, not b * c_mV (which differs from v unless v defaults to c).
    np.testing.assert_array_equal(u, b * v)


def test_explicit_initial_u_wins() -> None:
    pop = _izhikevich({"b": RANDOM_B}, {"v_mV": -70.0, "u": {"expr": "-10 - r"}})
    assert np.all(pop.state["v"] == -70.0)
    assert np.all((pop.state["u"] > -11.0) & (pop.state["u"] <= -10.0))
    assert not np.allclose(pop.state["u"], pop.params["b"] * pop.state["v"])
