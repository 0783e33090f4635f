"""The pure-Python STDP reference equals NEST 3.10, and equals the closed form where there is one.

NEST side: ``nest_stdp.py`` in the reference interpreter (two parrots, the plastic synapse on
receptor 1). Protocol after NEST's own STDP tests: Poisson pre and post trains on the time grid,
followed by hand-placed coincidences that sit exactly on the window boundaries, for both delays
NEST's tests use with a 0.1 ms step (1.0 ms and one step), and for additive, multiplicative and
intermediate weight dependence.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.plasticity.conftest import nest_defaults, run_nest
from tests.plasticity.stdp_reference import (
    DEFAULTS,
    NEST_MODELS,
    STDP_EPS_MS,
    TAU_MINUS_DEFAULT_MS,
    post_traces,
    stdp_weights,
)

DT_MS = 0.1
RATE_HZ = 20.0
POISSON_MS = 5000.0
TAU_MINUS_MS = 33.7
"""Not NEST's default, so a reference or script that ignored ``tau_minus`` would fail."""

RULE_PARAMS: dict[str, dict[str, float]] = {
    "stdp": {"tau_plus": 16.8, "lambda": 0.005, "alpha": 1.1, "Wmax": 10.0},
    "stdp_pl": {"tau_plus": 16.8, "lambda": 0.05, "alpha": 1.1},
}
"""Non-default parameters per rule; the weight dependence ``mu`` is set per case."""

INITIAL_WEIGHT = 5.0


def _on_grid(step: int) -> float:
    """Time of grid step ``step`` as the shortest decimal, as a user would write it."""
    return round(step * DT_MS, 10)


def poisson_times_ms(rng: np.random.Generator, duration_ms: float) -> list[float]:
    """A Poisson train at :data:`RATE_HZ` on the ``DT_MS`` grid (at most one spike per step)."""
    n_steps = round(duration_ms / DT_MS)
    fired = np.flatnonzero(rng.random(n_steps) < RATE_HZ * DT_MS * 1e-3)
    return [_on_grid(int(step) + 1) for step in fired]


def coincidences_ms(start_ms: float, delay_ms: float) -> tuple[list[float], list[float]]:
    """Hand-placed pre and post times whose deliveries coincide exactly, from ``start_ms`` on.

    Each feature is here because a random train on a grid rarely has it:
    post ``d`` after pre; pre and post at the same time; post exactly at ``t_pre - d`` (upper
    window edge, and the next pre's lower edge); two post spikes and two pre spikes at the same
    times; a post spike whose delivery coincides with the next pre spike.
    """
    d = delay_ms
    pre = [1.0, 5.0, 9.0 + d, 12.0, 16.0, 16.0, 20.0, 20.0 + 2 * d]
    post = [1.0 + d, 5.0, 9.0, 15.0, 15.0, 20.0 + d]
    return (
        [round(start_ms + t, 10) for t in pre],
        [round(start_ms + t, 10) for t in post],
    )


def _count_close(times_a: list[float], times_b: list[float], shift_ms: float) -> int:
    """How many pairs (a, b) have ``b == a + shift_ms`` within NEST's epsilon."""
    return sum(1 for a in times_a for b in times_b if abs(b - (a + shift_ms)) < STDP_EPS_MS)


def protocol(seed: int, delay_ms: float) -> tuple[list[float], list[float], float]:
    """Generator times (pre, post) of the whole protocol and the simulated time."""
    rng = np.random.default_rng(seed)
    pre = poisson_times_ms(rng, POISSON_MS)
    post = poisson_times_ms(rng, POISSON_MS)
    start_ms = POISSON_MS + 5.0
    hand_pre, hand_post = coincidences_ms(start_ms, delay_ms)
    return pre + hand_pre, post + hand_post, start_ms + 30.0


CASES = [
    pytest.param(rule, mu, delay_ms, id=f"{NEST_MODELS[rule]}-mu{mu}-d{delay_ms}")
    for rule in ("stdp", "stdp_pl")
    for mu in (0.0, 0.4, 1.0)
    for delay_ms in (1.0, DT_MS)
]


def _mu_params(rule: str, mu: float) -> dict[str, float]:
    if rule == "stdp":
        return {**RULE_PARAMS[rule], "mu_plus": mu, "mu_minus": mu}
    return {**RULE_PARAMS[rule], "mu": mu}


@pytest.mark.parametrize("delay_ms", [1.0, DT_MS])
def test_protocol_hits_every_boundary(delay_ms: float) -> None:
    """The hand-placed block really puts events on the window edges (or it tests nothing)."""
    pre, post, _ = protocol(seed=1, delay_ms=delay_ms)
    assert _count_close(pre, post, -delay_ms) >= 1  # post exactly at t_pre - d
    assert _count_close(pre, post, 0.0) >= 1  # pre and post at the same time
    assert _count_close(pre, post, delay_ms) >= 2  # post d after pre
    assert len(set(pre)) < len(pre)
    assert len(set(post)) < len(post)


@pytest.mark.parametrize(("rule", "mu", "delay_ms"), CASES)
def test_reference_equals_nest(nest_python: Path, rule: str, mu: float, delay_ms: float) -> None:
    """Weight after every pre spike, NEST vs reference, to 1e-9 relative."""
    params = _mu_params(rule, mu)
    pre, post, sim_time_ms = protocol(seed=round(100 * mu + 10 * delay_ms), delay_ms=delay_ms)
    spec: dict[str, Any] = {
        "dt_ms": DT_MS,
        "delay_ms": delay_ms,
        "model": NEST_MODELS[rule],
        "params": params,
        "tau_minus_ms": TAU_MINUS_MS,
        "weight": INITIAL_WEIGHT,
        "pre_times_ms": pre,
        "post_times_ms": post,
        "sim_time_ms": sim_time_ms,
    }
    nest = run_nest(nest_python, spec)

    # A generator time t is a parrot spike at t + dt (the generator connection's delay).
    np.testing.assert_allclose(nest["pre_spikes_ms"], np.array(pre) + DT_MS, rtol=0, atol=1e-9)
    np.testing.assert_allclose(nest["post_spikes_ms"], np.array(post) + DT_MS, rtol=0, atol=1e-9)
    # Every pre spike went through the synapse before the end, each logged at its spike time.
    assert nest["weight_times_ms"] == nest["pre_spikes_ms"]

    expected = stdp_weights(
        nest["pre_spikes_ms"],
        nest["post_spikes_ms"],
        delay_ms,
        INITIAL_WEIGHT,
        rule,
        params,
        TAU_MINUS_MS,
    )
    np.testing.assert_allclose(nest["weights"], expected, rtol=1e-9, atol=1e-12)
    assert nest["final_weight"] == nest["weights"][-1]

    # The comparison has teeth: the weights moved, and a delay off by one step is detected.
    assert max(abs(w - INITIAL_WEIGHT) for w in nest["weights"]) > 0.05 * INITIAL_WEIGHT
    off_by_one = stdp_weights(
        nest["pre_spikes_ms"],
        nest["post_spikes_ms"],
        delay_ms + DT_MS,
        INITIAL_WEIGHT,
        rule,
        params,
        TAU_MINUS_MS,
    )
    assert not np.allclose(nest["weights"], off_by_one, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("rule", "params", "bound"),
    [
        pytest.param(
            "stdp", {"lambda": 0.05, "alpha": 0.001, "Wmax": 10.0}, "Wmax", id="stdp-Wmax"
        ),
        pytest.param("stdp", {"lambda": 0.05, "alpha": 1.0, "Wmax": 10.0}, "zero", id="stdp-zero"),
        pytest.param(
            "stdp_pl", {"lambda": 0.5, "alpha": 2.0, "mu": 0.0}, "zero", id="stdp_pl-zero"
        ),
    ],
)
def test_clipped_weights_equal_nest(
    nest_python: Path, rule: str, params: dict[str, float], bound: str
) -> None:
    """Where the weight runs into its bounds, NEST and the reference still agree.

    The protocol above stays inside the bounds; these additive runs are pushed against them
    (almost no depression: pinned just under Wmax; strong depression: exact zeros).
    """
    if rule == "stdp":
        params = {**params, "mu_plus": 0.0, "mu_minus": 0.0}
    pre, post, sim_time_ms = protocol(seed=3, delay_ms=1.0)
    spec: dict[str, Any] = {
        "dt_ms": DT_MS,
        "delay_ms": 1.0,
        "model": NEST_MODELS[rule],
        "params": params,
        "tau_minus_ms": TAU_MINUS_MS,
        "weight": INITIAL_WEIGHT,
        "pre_times_ms": pre,
        "post_times_ms": post,
        "sim_time_ms": sim_time_ms,
    }
    nest = run_nest(nest_python, spec)
    expected = stdp_weights(
        nest["pre_spikes_ms"],
        nest["post_spikes_ms"],
        1.0,
        INITIAL_WEIGHT,
        rule,
        params,
        TAU_MINUS_MS,
    )
    np.testing.assert_allclose(nest["weights"], expected, rtol=1e-9, atol=1e-12)
    if bound == "Wmax":
        assert 0.999 * params["Wmax"] < max(nest["weights"]) <= params["Wmax"]
    else:
        assert nest["weights"].count(0.0) > 0


def test_reference_defaults_are_nests(nest_python: Path) -> None:
    """The reference's defaults (used when a parameter is omitted) are NEST 3.10's."""
    found = nest_defaults(nest_python)
    for rule, model in NEST_MODELS.items():
        assert {key: found[model][key] for key in DEFAULTS[rule]} == DEFAULTS[rule]
        assert found[model]["weight"] == 1.0
        assert found[model]["Kplus"] == 0.0
    assert found["parrot_neuron"]["tau_minus"] == TAU_MINUS_DEFAULT_MS


def test_defaults_reach_nest_unchanged(nest_python: Path) -> None:
    """With no parameters at all, NEST and the reference still agree (defaults on both sides)."""
    rng = np.random.default_rng(7)
    pre, post = poisson_times_ms(rng, 1000.0), poisson_times_ms(rng, 1000.0)
    for rule, model in NEST_MODELS.items():
        spec: dict[str, Any] = {
            "dt_ms": DT_MS,
            "delay_ms": 1.0,
            "model": model,
            "params": {},
            "tau_minus_ms": TAU_MINUS_DEFAULT_MS,
            "weight": 50.0,
            "pre_times_ms": pre,
            "post_times_ms": post,
            "sim_time_ms": 1010.0,
        }
        nest = run_nest(nest_python, spec)
        expected = stdp_weights(nest["pre_spikes_ms"], nest["post_spikes_ms"], 1.0, 50.0, rule)
        np.testing.assert_allclose(nest["weights"], expected, rtol=1e-9, atol=1e-12)


# Closed forms of the reference alone: one pre-post pair, then a pre spike that collects it.

T_PRE_MS, T_POST_MS, T_NEXT_MS, D_MS = 10.0, 15.0, 40.0, 1.0
"""Pre at 10, post at 15 (reaching the synapse at 16), pre at 40 that facilitates and depresses."""


def _pair_traces(tau_plus: float) -> tuple[float, float]:
    """K+ seen by the post spike's delivery, K- seen by the second pre spike's update."""
    k_plus = math.exp(-(T_POST_MS + D_MS - T_PRE_MS) / tau_plus)
    k_minus = math.exp(-(T_NEXT_MS - D_MS - T_POST_MS) / TAU_MINUS_MS)
    return k_plus, k_minus


@pytest.mark.parametrize("mu", [0.0, 1.0])
def test_stdp_pair_closed_form(mu: float) -> None:
    """Additive (mu 0) and multiplicative (mu 1) ``stdp``: one facilitation, one depression."""
    p = {"tau_plus": 16.8, "lambda": 0.01, "alpha": 0.9, "Wmax": 10.0, "mu_plus": mu}
    p["mu_minus"] = mu
    w0, w_max, lam, alpha = 4.0, p["Wmax"], p["lambda"], p["alpha"]
    k_plus, k_minus = _pair_traces(p["tau_plus"])
    if mu == 0.0:
        after_post = w0 + w_max * lam * k_plus
        expected = after_post - w_max * alpha * lam * k_minus
    else:
        after_post = w0 + lam * (w_max - w0) * k_plus
        expected = after_post * (1.0 - alpha * lam * k_minus)
    weights = stdp_weights([T_PRE_MS, T_NEXT_MS], [T_POST_MS], D_MS, w0, "stdp", p, TAU_MINUS_MS)
    assert weights[0] == pytest.approx(w0, rel=1e-15)  # no post spike before it: K- is 0
    assert weights[1] == pytest.approx(expected, rel=1e-12)
    assert weights[1] != pytest.approx(w0, rel=1e-3)


def test_stdp_pl_pair_closed_form() -> None:
    """``stdp_pl``: power-law facilitation, multiplicative depression."""
    p = {"tau_plus": 16.8, "lambda": 0.05, "alpha": 1.2, "mu": 0.4}
    w0 = 4.0
    k_plus, k_minus = _pair_traces(p["tau_plus"])
    after_post = w0 + p["lambda"] * w0 ** p["mu"] * k_plus
    expected = after_post * (1.0 - p["lambda"] * p["alpha"] * k_minus)
    weights = stdp_weights([T_PRE_MS, T_NEXT_MS], [T_POST_MS], D_MS, w0, "stdp_pl", p, TAU_MINUS_MS)
    assert weights == pytest.approx([w0, expected], rel=1e-12)


def test_post_exactly_at_window_end_facilitates_once_and_is_not_in_k_minus() -> None:
    """Post at ``t_pre - d``: facilitation at that pre spike, no depression by it there; the
    next pre spike neither facilitates with it again nor misses it in K-."""
    p = {"tau_plus": 20.0, "lambda": 0.01, "alpha": 1.0, "Wmax": 10.0, "mu_plus": 0.0}
    p["mu_minus"] = 0.0
    w0 = 5.0
    weights = stdp_weights([10.0, 20.0, 30.0], [19.0], 1.0, w0, "stdp", p, TAU_MINUS_MS)
    facilitated = w0 + 10.0 * 0.01 * math.exp(-(20.0 - 10.0) / 20.0)
    depressed = facilitated - 10.0 * 0.01 * math.exp(-(29.0 - 19.0) / TAU_MINUS_MS)
    assert weights == pytest.approx([w0, facilitated, depressed], rel=1e-12)


def test_simultaneous_pre_and_post_pair_causally_through_the_delay() -> None:
    """Pre and post at the same time: the post spike reaches the synapse ``d`` later, so it is
    a post-after-pre pair (facilitation at the next pre spike), not a depression now."""
    p = {"tau_plus": 20.0, "lambda": 0.01, "alpha": 1.0, "Wmax": 10.0, "mu_plus": 0.0}
    p["mu_minus"] = 0.0
    w0 = 5.0
    weights = stdp_weights([10.0, 50.0], [10.0], 1.0, w0, "stdp", p, TAU_MINUS_MS)
    facilitated = w0 + 0.1 * math.exp(-1.0 / 20.0)
    depressed = facilitated - 0.1 * math.exp(-(49.0 - 10.0) / TAU_MINUS_MS)
    assert weights == pytest.approx([w0, depressed], rel=1e-12)


def test_weight_is_clipped() -> None:
    """``stdp`` keeps the weight in [0, Wmax]; ``stdp_pl`` floors it at 0 (and has no ceiling)."""
    strong = {"lambda": 2.0, "alpha": 1.0, "Wmax": 10.0, "mu_plus": 0.0, "mu_minus": 0.0}
    # The post spike's K- has vanished by the second pre spike (tau_minus 1 us): pure facilitation.
    assert stdp_weights([10.0, 30.0], [10.5], 1.0, 9.0, "stdp", strong, 1e-3) == [9.0, 10.0]
    assert stdp_weights([10.0], [5.0], 1.0, 1.0, "stdp", strong, TAU_MINUS_MS) == [0.0]
    assert stdp_weights([10.0], [5.0], 1.0, 1.0, "stdp_pl", {"lambda": 2.0}, 1e3) == [0.0]
    grown = stdp_weights([10.0, 30.0], [10.5], 1.0, 9.0, "stdp_pl", {"lambda": 2.0}, 1e-3)
    assert grown[-1] > 10.0


def test_post_traces_accumulate_and_decay() -> None:
    """K- after each post spike; equal times add 1 each."""
    traces = post_traces([1.0, 1.0, 21.0], 20.0)
    assert traces == pytest.approx([1.0, 2.0, 2.0 * math.exp(-1.0) + 1.0], rel=1e-15)


@pytest.mark.parametrize(
    ("pre", "post", "rule", "params", "message"),
    [
        ([2.0, 1.0], [], "stdp", {}, r"pre_ms\[1\]"),
        ([1.0], [3.0, 2.0], "stdp", {}, r"post_ms\[1\]"),
        ([1.0], [], "stdp", {"mu": 0.4}, "unknown stdp parameters"),
        ([1.0], [], "hebb", {}, "rule must be one of"),
    ],
)
def test_bad_input_is_refused(
    pre: list[float], post: list[float], rule: str, params: dict[str, float], message: str
) -> None:
    """A silent default or a reordered train would give plausible but wrong weights."""
    with pytest.raises(ValueError, match=message):
        stdp_weights(pre, post, 1.0, 1.0, rule, params)
