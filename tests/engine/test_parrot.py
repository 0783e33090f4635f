"""``model: parrot`` through the engine: NEST 3.10's ``parrot_neuron``, closed forms, validation,
plastic projections from and onto parrots.

- Conformance: parrots fed by spike trains of weight 1 with several delays, at most one spike
  arriving per step, spike exactly when NEST's ``parrot_neuron`` does (NEST run by
  ``nest_parrot_neuron.py`` in the reference interpreter); the two documented differences
  (several spikes in one step, weights <= 0) are shown against NEST too.
- Closed forms: a parrot fires in a step iff the summed weight arriving in it is > 0.
- Validation: current stimuli, state recordings, parameters and initial state of a parrot are
  errors with their field paths.
- STDP from parrots onto parrots follows the event-driven reference of NEST's rule
  (tests/plasticity/stdp_reference.py): the parrots' spikes are the rule's pre and post spikes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import brainsim
from brainsim.circuit import estimate_resources, parse_circuit
from brainsim.circuit.resources import BYTES_PER_NEURON
from brainsim.engine import build_network
from brainsim.errors import CircuitError
from brainsim.exchange import LocalCommunicator
from brainsim.models import NEURON_MODELS
from tests.engine.conftest import read_store
from tests.plasticity.stdp_reference import stdp_weights
from tests.reference import run_reference_script

NEST_SCRIPT = Path(__file__).with_name("nest_parrot_neuron.py")
DT_MS = 0.1
PARROT = NEURON_MODELS["parrot"].variant({})


def _circuit(
    n_parrots: int, inputs: list[dict[str, Any]], duration_ms: float, **extra: Any
) -> dict[str, Any]:
    """``n_parrots`` parrots (population ``P``), one spike-source array per input."""
    return {
        "apiVersion": "brainsim/v1",
        "name": "parrots",
        "simulation": {"dt_ms": DT_MS, "duration_ms": duration_ms, "seed": 1},
        "populations": {"P": {"size": n_parrots, "model": "parrot"}},
        "stimuli": {
            f"in{k}": {"type": "spike_source_array",
                       "targets": [{"population": "P", "node_ids": entry["targets"]}],
                       "spike_times_ms": entry["times_ms"], "weight": entry["weight"],
                       "delay_ms": entry["delay_ms"]}
            for k, entry in enumerate(inputs)
        },
        "recordings": {"spikes": "all"},
        **extra,
    }  # fmt: skip


def _brainsim_spikes(
    n_parrots: int, inputs: list[dict[str, Any]], duration_ms: float, out: Path
) -> list[list[float]]:
    """Each parrot's spike times from a run of :func:`_circuit`."""
    brainsim.run(_circuit(n_parrots, inputs, duration_ms), out)
    store = read_store(out)
    times, ids = store["spikes/P/timestamps"], store["spikes/P/node_ids"]
    return [sorted(times[ids == i].tolist()) for i in range(n_parrots)]


def _steps(times_ms: list[float]) -> list[int]:
    return np.rint(np.asarray(times_ms) / DT_MS).astype(int).tolist()


# --- conformance with NEST -----------------------------------------------------------------------

DURATION_MS = 200.0
TARGETS = ([0, 1, 2], [1, 3], [2, 3, 5], [5])
DELAYS_MS = (0.1, 1.0, 2.5, 0.7)
N_PARROTS = 6
"""Parrot 4 gets no input; 5 gets two inputs whose spikes never share a step."""


def _trains() -> list[dict[str, Any]]:
    """Spike trains of weight 1 on the grid whose spikes reach each parrot in distinct steps:
    every output step is drawn once, then each input's times are those steps less its delay."""
    rng = np.random.default_rng(17)
    count = 70
    out_steps = rng.choice(np.arange(30, round((DURATION_MS - 5.0) / DT_MS)), count * 4, False)
    trains = []
    for k, (targets, delay) in enumerate(zip(TARGETS, DELAYS_MS, strict=True)):
        steps = np.sort(out_steps[k * count : (k + 1) * count]) - round(delay / DT_MS)
        trains.append({"times_ms": (steps * DT_MS).round(10).tolist(), "weight": 1.0,
                       "delay_ms": delay, "targets": targets})  # fmt: skip
    return trains


def _nest_spikes(nest_python: Path, inputs: list[dict[str, Any]]) -> list[list[float]]:
    spec = {"dt_ms": DT_MS, "duration_ms": DURATION_MS, "n_parrots": N_PARROTS, "inputs": inputs}
    spikes: list[list[float]] = run_reference_script(nest_python, NEST_SCRIPT, spec)["spikes_ms"]
    return spikes


def test_parrots_spike_exactly_when_nest_parrots_do(nest_python: Path, tmp_path: Path) -> None:
    trains = _trains()
    nest = _nest_spikes(nest_python, trains)
    ours = _brainsim_spikes(N_PARROTS, trains, DURATION_MS, tmp_path / "p.zarr")
    for parrot in range(N_PARROTS):
        assert _steps(ours[parrot]) == _steps(nest[parrot]), parrot
        np.testing.assert_allclose(ours[parrot], nest[parrot], rtol=0, atol=1e-9)
    # Each parrot repeats its inputs' times, each delayed by its delay (t + d).
    for parrot in range(N_PARROTS):
        want = sorted(
            step + round(train["delay_ms"] / DT_MS)
            for train in trains
            if parrot in train["targets"]
            for step in _steps(train["times_ms"])
        )
        assert _steps(ours[parrot]) == want, parrot
    assert ours[4] == []
    assert len(ours[5]) == len(ours[3]) == 140


def test_the_documented_differences_from_nest(nest_python: Path, tmp_path: Path) -> None:
    # Parrot 0: two spikes arriving in one step (and one alone); parrot 1: an input of weight
    # -1 and one of weight 0. NEST repeats every spike, as multiplicity, whatever its weight;
    # here the step fires once, and only a positive sum fires.
    inputs = [
        {"times_ms": [5.0, 5.0, 9.0], "weight": 1.0, "delay_ms": 1.0, "targets": [0]},
        {"times_ms": [5.0, 7.0], "weight": -1.0, "delay_ms": 1.0, "targets": [1]},
        {"times_ms": [8.0], "weight": 0.0, "delay_ms": 1.0, "targets": [1]},
    ]
    spec = {"dt_ms": DT_MS, "duration_ms": 20.0, "n_parrots": 2, "inputs": inputs}
    nest = run_reference_script(nest_python, NEST_SCRIPT, spec)["spikes_ms"]
    assert _steps(nest[0]) == [60, 60, 100]
    assert _steps(nest[1]) == [60, 80, 90]
    ours = _brainsim_spikes(2, inputs, 20.0, tmp_path / "d.zarr")
    assert _steps(ours[0]) == [60, 100]
    assert ours[1] == []


# --- closed forms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "fires"),
    [
        ((1.0,), True),
        ((0.25,), True),
        ((0.0,), False),
        ((-1.0,), False),
        ((1.0, 1.0), True),  # one spike, not two
        ((2.0, -1.0), True),
        ((1.0, -1.0), False),
        ((-3.0, 1.0, 1.0), False),
    ],
)
def test_a_step_fires_once_iff_its_summed_weight_is_positive(
    tmp_path: Path, weights: tuple[float, ...], fires: bool
) -> None:
    # Each input sends one spike at 3 ms with delay 0.5 ms, all arriving in one step (the step
    # ending at 3.5 ms); the parrot spikes there once, or never.
    inputs = [{"times_ms": [3.0], "weight": w, "delay_ms": 0.5, "targets": [0]} for w in weights]
    ours = _brainsim_spikes(1, inputs, 10.0, tmp_path / "c.zarr")
    assert ours[0] == ([3.5] if fires else [])


# --- validation and tables ----------------------------------------------------------------------


def _invalid(document: dict[str, Any]) -> str:
    with pytest.raises(CircuitError) as raised:
        parse_circuit(document)
    return str(raised.value)


@pytest.mark.parametrize(
    "stimulus",
    [
        {"type": "dc", "amplitude_pA": 100.0},
        {"type": "noise", "mean_pA": 0.0, "std_pA": 10.0},
    ],
)
def test_current_stimuli_onto_parrots_are_refused(stimulus: dict[str, Any]) -> None:
    document = _circuit(1, [], 10.0)
    document["populations"]["L"] = {"size": 2, "model": "lif"}
    document["stimuli"] = {"I": {**stimulus, "targets": ["L", {"population": "P"}]}}
    message = _invalid(document)
    assert (
        f"stimuli.I.targets[1]: a {stimulus['type']} stimulus injects a current, and parrot "
        "population P takes spikes only" in message
    )
    assert "targets[0]" not in message  # the LIF target is fine
    document["stimuli"]["I"]["targets"] = ["L"]
    parse_circuit(document)


def test_parrots_have_no_state_to_record_parameters_or_initial_values() -> None:
    document = _circuit(1, [], 10.0)
    document["recordings"]["state"] = [{"population": "P", "variables": ["v"]}]
    assert (
        "recordings.state[0].variables[0]: parrot population P has no variable 'v'; valid: none"
        in _invalid(document)
    )
    document = _circuit(1, [], 10.0)
    document["populations"]["P"]["params"] = {"i_e_pA": 1.0}
    document["populations"]["P"]["initial"] = {"v_mV": 0.0}
    message = _invalid(document)
    assert "populations.P.params.i_e_pA: unknown key 'i_e_pA'; valid keys: none" in message
    assert "populations.P.initial.v_mV: unknown key 'v_mV'; valid keys: none" in message


def test_a_rank_of_parrots_has_no_table_rows_and_the_estimate_counts_none() -> None:
    assert PARROT.state == ()
    assert PARROT.param_rows == ()
    assert PARROT.table_bytes == 0
    assert not PARROT.takes_current
    circuit = parse_circuit(_circuit(7, [], 10.0))
    network = build_network(circuit, LocalCommunicator())
    assert network.neurons.state.shape == (0, 7)
    assert network.neurons.params.shape == (0, 7)
    assert not network.neurons.i_base_pA.any()
    # 48 bytes per neuron and a ring buffer of two slots (delay dt), no table rows.
    assert estimate_resources(circuit).bytes_total == 7 * (BYTES_PER_NEURON + 2 * 8)


# --- plastic projections from and onto parrots ---------------------------------------------------

STDP = {"model": "stdp", "tau_plus_ms": 16.8, "tau_minus_ms": 33.7, "lambda": 0.02,
        "alpha": 1.1, "mu_plus": 0.0, "mu_minus": 0.0, "w_max": -10.0}  # fmt: skip
"""Inhibitory additive STDP (weights in [w_max, 0]): the plastic input never makes the
postsynaptic parrot fire, so both parrots fire exactly when their trains say."""


def test_stdp_between_parrots_follows_the_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(23)
    n_steps = 10_000
    pre_steps, post_steps = (
        np.sort(rng.choice(np.arange(10, n_steps - 100), 150, replace=False)) for _ in range(2)
    )
    delay_ms = 1.0
    # Parrot P repeats the pre train, parrot Q the post train, each one step later; the post
    # train's weight of 1e5 keeps Q's sum positive whatever the plastic input.
    document = _circuit(1, [], n_steps * DT_MS)
    document["populations"]["Q"] = {"size": 1, "model": "parrot"}
    document["stimuli"] = {
        name: {"type": "spike_source_array", "targets": [target],
               "spike_times_ms": (steps * DT_MS).round(10).tolist(), "weight": weight,
               "delay_ms": DT_MS}
        for name, target, steps, weight in (("pre", "P", pre_steps, 1.0),
                                            ("post", "Q", post_steps, 1e5))
    }  # fmt: skip
    document["projections"] = {
        "PQ": {"source": "P", "target": "Q", "connectivity": {"rule": "one_to_one"},
               "weight": -5.0, "delay_ms": delay_ms, "synapse": STDP},
    }  # fmt: skip
    document["recordings"]["weights"] = [{"projection": "PQ", "interval_ms": DT_MS}]
    out = tmp_path / "stdp.zarr"
    brainsim.run(document, out)
    store = read_store(out)
    pre_ms = ((pre_steps + 1) * DT_MS).round(10).tolist()
    post_ms = ((post_steps + 1) * DT_MS).round(10).tolist()
    np.testing.assert_allclose(store["spikes/P/timestamps"], pre_ms, rtol=0, atol=1e-9)
    np.testing.assert_allclose(store["spikes/Q/timestamps"], post_ms, rtol=0, atol=1e-9)
    weights = store["weights/PQ/data"][:, 0]
    after_pre = weights[[round(t / DT_MS) for t in pre_ms]]
    nest_names = {"tau_plus": 16.8, "lambda": 0.02, "alpha": 1.1, "mu_plus": 0.0,
                  "mu_minus": 0.0, "Wmax": -10.0}  # fmt: skip
    reference = stdp_weights(pre_ms, post_ms, delay_ms, -5.0, "stdp", nest_names, 33.7)
    np.testing.assert_allclose(after_pre, reference, rtol=1e-6, atol=0)
    assert np.max(np.abs(after_pre + 5.0)) > 0.5  # the weight moved
    # Weights onto a parrot are dimensionless, and the recording says so.
    assert zarr.open_group(str(out), mode="r")["weights/PQ"].attrs["units"] == "1"
