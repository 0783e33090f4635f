"""brainsim's plastic synapses against NEST 3.10 and the event-driven reference.

NEST's protocol for ``stdp_synapse`` (and ``stdp_pl_synapse_hom``): a presynaptic and a
postsynaptic neuron forced to spike at given times (20 Hz Poisson trains on the grid, then
hand-placed coincidences on the window edges), one plastic synapse between them, delays of one
step and of 1 ms. brainsim forces its neurons with ``spike_source_array`` inputs far above a
threshold the plastic synapse itself can never reach, records the weight every step, and reads
the store with plain zarr. The weight after each pre spike (the snapshot at that spike's time)
must equal NEST's weight-recorder entry and the reference, within 1e-6 relative: the weight is
stored as float32, one rounding per pre spike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import brainsim
from brainsim.models import SYNAPSE_MODELS
from tests.plasticity.conftest import run_nest
from tests.plasticity.stdp_reference import NEST_MODELS, stdp_weights
from tests.plasticity.test_reference import DT_MS, coincidences_ms, poisson_times_ms

POISSON_MS = 2000.0
TAU_MINUS_MS = 33.7
INITIAL_WEIGHT = 5.0
FORCED = {
    "tau_m_ms": 10.0, "v_th_mV": 1e4, "v_reset_mV": 0.0, "e_l_mV": 0.0, "t_ref_ms": 0.0,
    "synapse": "delta",
}  # fmt: skip
"""A neuron that fires exactly when forced: no plastic input (at most ``w_max``) reaches 1e4 mV."""

BRAINSIM_RULES = {"stdp": "stdp", "stdp_pl": "stdp_power_law"}


def _protocol(seed: int, delay_ms: float) -> tuple[list[float], list[float], float]:
    """Forced spike times (pre, post; at most one per step each) and the run's duration."""
    rng = np.random.default_rng(seed)
    pre, post = poisson_times_ms(rng, POISSON_MS), poisson_times_ms(rng, POISSON_MS)
    hand_pre, hand_post = coincidences_ms(POISSON_MS + 5.0, delay_ms)
    return (
        sorted(set(pre + hand_pre)),
        sorted(set(post + hand_post)),
        POISSON_MS + 40.0,
    )


def _params(rule: str, mu: float) -> dict[str, float]:
    """Non-default brainsim parameters of the rule (``mu`` for the weight dependence)."""
    if rule == "stdp":
        return {"tau_plus_ms": 16.8, "tau_minus_ms": TAU_MINUS_MS, "lambda": 0.005,
                "alpha": 1.1, "mu_plus": mu, "mu_minus": mu, "w_max": 10.0}  # fmt: skip
    return {"tau_plus_ms": 16.8, "tau_minus_ms": TAU_MINUS_MS, "lambda": 0.05, "alpha": 1.1,
            "mu": mu}  # fmt: skip


def _nest_params(rule: str, params: dict[str, float]) -> dict[str, float]:
    """The same parameters under NEST's names (from the model declaration), less tau_minus."""
    model = SYNAPSE_MODELS[BRAINSIM_RULES[rule]]
    return {
        model.parameter(name).nest_name: value
        for name, value in params.items()
        if name != "tau_minus_ms"
    }


def circuit(
    pre_ms: list[float], post_ms: list[float], duration_ms: float, delay_ms: float,
    synapse: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Two forced neurons and one plastic synapse, weights recorded every step.

    A ``spike_source_array`` time ``t`` with delay ``dt`` makes its neuron spike at
    ``t + dt`` (as a NEST parrot behind a one-step connection), so both simulators are driven
    by the same times.
    """

    def forced(times: list[float], population: str) -> dict[str, Any]:
        return {"type": "spike_source_array", "targets": [population],
                "spike_times_ms": [round(t - DT_MS, 10) for t in times], "weight": 1e5,
                "delay_ms": DT_MS}  # fmt: skip

    return {
        "apiVersion": "brainsim/v1",
        "name": "stdp-protocol",
        "simulation": {"dt_ms": DT_MS, "duration_ms": duration_ms, "seed": 1},
        "populations": {
            "pre": {"size": 1, "model": "lif", "params": FORCED},
            "post": {"size": 1, "model": "lif", "params": FORCED},
        },
        "stimuli": {"pre_drive": forced(pre_ms, "pre"), "post_drive": forced(post_ms, "post")},
        "projections": {
            "syn": {
                "source": "pre",
                "target": "post",
                "connectivity": {"rule": "one_to_one"},
                "weight": INITIAL_WEIGHT,
                "delay_ms": delay_ms,
                "synapse": synapse,
            },
        },
        "recordings": {"spikes": "all", "weights": [{"projection": "syn", "interval_ms": DT_MS}]},
    }


def run_protocol(
    tmp_path: Path, rule: str, params: dict[str, float], delay_ms: float, seed: int
) -> tuple[list[float], list[float], float, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Run the protocol in brainsim; (pre, post, duration, snapshot times, weights)."""
    pre, post, duration_ms = _protocol(seed, delay_ms)
    synapse = {"model": BRAINSIM_RULES[rule], **params}
    out = tmp_path / f"{rule}.zarr"
    brainsim.run(circuit(pre, post, duration_ms, delay_ms, synapse), out)
    root = zarr.open_group(out, mode="r")
    for name, times in (("pre", pre), ("post", post)):
        recorded = np.asarray(root[f"spikes/{name}/timestamps"][:])
        np.testing.assert_allclose(recorded, times, rtol=0, atol=1e-9)  # forced exactly
    group = root["weights/syn"]
    assert list(group["source"][:]) == [0]
    assert list(group["target"][:]) == [0]
    return pre, post, duration_ms, np.asarray(group["time"][:]), np.asarray(group["data"][:, 0])


CASES = [
    pytest.param(rule, mu, delay_ms, id=f"{BRAINSIM_RULES[rule]}-mu{mu}-d{delay_ms}")
    for rule in ("stdp", "stdp_pl")
    for mu in (0.0, 0.4, 1.0)
    for delay_ms in (1.0, DT_MS)
]


@pytest.mark.parametrize(("rule", "mu", "delay_ms"), CASES)
def test_weights_after_every_pre_spike_equal_nest_and_reference(
    tmp_path: Path, nest_python: Path, rule: str, mu: float, delay_ms: float
) -> None:
    params = _params(rule, mu)
    pre, post, duration_ms, times, weights = run_protocol(
        tmp_path, rule, params, delay_ms, seed=round(7 + 100 * mu + 10 * delay_ms)
    )
    n_steps = round(duration_ms / DT_MS)
    np.testing.assert_allclose(times, np.arange(n_steps + 1) * DT_MS, rtol=0, atol=1e-9)
    after_pre = weights[[round(t / DT_MS) for t in pre]]

    nest = run_nest(
        nest_python,
        {
            "dt_ms": DT_MS, "delay_ms": delay_ms, "model": NEST_MODELS[rule],
            "params": _nest_params(rule, params), "tau_minus_ms": TAU_MINUS_MS,
            "weight": INITIAL_WEIGHT, "pre_times_ms": [round(t - DT_MS, 10) for t in pre],
            "post_times_ms": [round(t - DT_MS, 10) for t in post], "sim_time_ms": duration_ms,
        },
    )  # fmt: skip
    np.testing.assert_allclose(nest["weight_times_ms"], pre, rtol=0, atol=1e-9)
    np.testing.assert_allclose(after_pre, nest["weights"], rtol=1e-6, atol=0)

    reference = stdp_weights(
        pre, post, delay_ms, INITIAL_WEIGHT, rule, _nest_params(rule, params), TAU_MINUS_MS
    )
    np.testing.assert_allclose(after_pre, reference, rtol=1e-6, atol=0)
    # The weights moved: a static synapse would fail this comparison.
    assert np.max(np.abs(after_pre - INITIAL_WEIGHT)) > 0.05 * INITIAL_WEIGHT
    # Between pre spikes the weight holds still (updates happen only when a pre spike arrives).
    changed = np.flatnonzero(np.diff(weights)) + 1
    assert set(changed) <= {round(t / DT_MS) for t in pre}
