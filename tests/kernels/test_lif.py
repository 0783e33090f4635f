"""LIF kernels: analytic rates, closed-form trajectories and PSPs, refractoriness, golden traces.

Every synapse kind (delta, exponential, alpha) runs the shared tests here; the alpha synapse's
own propagators, PSPs and NEST comparison are in ``test_lif_alpha.py``.

Regenerate the pinned traces (only after a deliberate numerical change) with
``python -m tests.kernels.test_lif`` from the repository root.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest

from brainsim.kernels.lif import (
    lif_alpha_propagators,
    lif_alpha_step,
    lif_alpha_step_ref,
    lif_delta_step,
    lif_delta_step_ref,
    lif_exp_step,
    lif_exp_step_ref,
    lif_propagators,
    refractory_steps,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Synapse = Literal["delta", "exponential", "alpha"]
SYNAPSES: tuple[Synapse, ...] = ("delta", "exponential", "alpha")
CURRENT_SYNAPSES: tuple[Synapse, ...] = ("exponential", "alpha")

DT_MS = 0.1
GOLDEN_PATH = Path(__file__).parent / "golden" / "lif.json"
NEST_DEFAULTS = {
    "tau_m_ms": 10.0,
    "c_m_pF": 250.0,
    "e_l_mV": -70.0,
    "v_th_mV": -55.0,
    "v_reset_mV": -70.0,
    "t_ref_ms": 2.0,
    "tau_syn_ex_ms": 2.0,
    "tau_syn_in_ms": 2.0,
}
KERNELS: dict[tuple[Synapse, bool], Callable[..., int]] = {
    ("delta", False): lif_delta_step,
    ("delta", True): lif_delta_step_ref,
    ("exponential", False): lif_exp_step,
    ("exponential", True): lif_exp_step_ref,
    ("alpha", False): lif_alpha_step,
    ("alpha", True): lif_alpha_step_ref,
}


@dataclass(frozen=True)
class Cells:
    """Parameters of a heterogeneous test population, each a float64 array of length ``n``."""

    tau_m_ms: FloatArray
    c_m_pF: FloatArray
    e_l_mV: FloatArray
    v_th_mV: FloatArray
    v_reset_mV: FloatArray
    t_ref_ms: FloatArray
    tau_syn_ex_ms: FloatArray
    tau_syn_in_ms: FloatArray

    @property
    def n(self) -> int:
        return int(self.tau_m_ms.size)


def cells(n: int, **overrides: npt.ArrayLike) -> Cells:
    """NEST's iaf_psc_* defaults, overridden per parameter by scalars or length-``n`` arrays."""
    params = {**NEST_DEFAULTS, **overrides}
    return Cells(**{k: np.array(np.broadcast_to(params[k], n), dtype=np.float64) for k in params})


@dataclass(frozen=True)
class Trace:
    """State at t_0 .. t_{n_steps} (rows) for every neuron (columns), and the emitted spikes."""

    v_mV: FloatArray
    i_ex_pA: FloatArray
    i_in_pA: FloatArray
    x_ex_pA_ms: FloatArray
    """The alpha currents' drives (zero for the other kinds)."""
    x_in_pA_ms: FloatArray
    refr: IntArray
    spikes: list[tuple[int, int]]
    """``(grid index k + 1, lid)`` of each spike emitted in step ``k``, i.e. at ``(k + 1) dt``."""

    def spike_indices(self, lid: int) -> IntArray:
        return np.array([k for k, i in self.spikes if i == lid], dtype=np.int64)


def per_step(value: npt.ArrayLike, n_steps: int, n: int) -> FloatArray:
    """A scalar, a per-neuron vector or an (n_steps, n) array as a contiguous (n_steps, n) array."""
    return np.array(np.broadcast_to(value, (n_steps, n)), dtype=np.float64)


def simulate(
    c: Cells,
    synapse: Synapse,
    n_steps: int,
    *,
    i_ext_pA: npt.ArrayLike = 0.0,
    in_mV: npt.ArrayLike = 0.0,
    in_ex_pA: npt.ArrayLike = 0.0,
    in_in_pA: npt.ArrayLike = 0.0,
    v0_mV: npt.ArrayLike | None = None,
    refr0: npt.ArrayLike = 0,
    reference: bool = False,
) -> Trace:
    """Run the kernel (or its numpy reference) for ``n_steps`` steps of ``DT_MS``."""
    n = c.n
    prop_args = (c.tau_m_ms, c.c_m_pF, c.tau_syn_ex_ms, c.tau_syn_in_ms, DT_MS)
    prop, alpha = lif_propagators(*prop_args), lif_alpha_propagators(*prop_args)
    t_ref_steps = refractory_steps(c.t_ref_ms, DT_MS)
    i_ext, d_in = per_step(i_ext_pA, n_steps, n), per_step(in_mV, n_steps, n)
    ex_in, in_in = per_step(in_ex_pA, n_steps, n), per_step(in_in_pA, n_steps, n)
    v = c.e_l_mV.copy() if v0_mV is None else np.array(np.broadcast_to(v0_mV, n), dtype=float)
    i_ex, i_in, x_ex, x_in = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    refr = np.array(np.broadcast_to(refr0, n), dtype=np.int64)
    out = np.full(n, -1, dtype=np.int64)
    state = (v, i_ex, i_in, x_ex, x_in, refr)
    rows = [tuple(a.copy() for a in state)]
    spikes: list[tuple[int, int]] = []
    step = KERNELS[synapse, reference]
    # the tails of the kernels' argument lists, in their order
    props = (prop.p_mm, prop.p_me, prop.p_ex, prop.p_in, prop.p_mex, prop.p_min)
    cell_args = (c.e_l_mV, c.v_th_mV, c.v_reset_mV, t_ref_steps, out)
    alpha_rows = (prop.p_mm, prop.p_me, c.e_l_mV, c.v_th_mV, c.v_reset_mV, *props[2:],
                  alpha.p_21ex, alpha.p_21in, alpha.p_31ex, alpha.p_31in, alpha.psc_ex,
                  alpha.psc_in, t_ref_steps, out)  # fmt: skip
    for k in range(n_steps):
        if synapse == "delta":
            count = step(v, refr, d_in[k], i_ext[k], prop.p_mm, prop.p_me, *cell_args)
        elif synapse == "exponential":
            count = step(v, i_ex, i_in, refr, ex_in[k], in_in[k], i_ext[k], *props, *cell_args)
        else:
            count = step(v, i_ex, i_in, x_ex, x_in, refr, ex_in[k], in_in[k], i_ext[k],
                         *alpha_rows)  # fmt: skip
        spikes.extend((k + 1, int(lid)) for lid in out[:count])
        rows.append(tuple(a.copy() for a in state))
    v_t, i_ex_t, i_in_t, x_ex_t, x_in_t, refr_t = (
        np.stack(column) for column in zip(*rows, strict=True)
    )
    return Trace(v_t, i_ex_t, i_in_t, x_ex_t, x_in_t, refr_t, spikes)


def exact_current_to_voltage(tau_m_ms: float, tau_s_ms: float, c_m_pF: float, t_ms: float) -> float:
    """V(t) (mV) after a unit current (pA) at t = 0 decaying with tau_s, evaluated in 50 digits.

    ``tau_m tau_s / (C_m (tau_s - tau_m)) (exp(-t/tau_s) - exp(-t/tau_m))``, or its limit
    ``t / C_m exp(-t/tau)`` when the time constants are equal.
    """
    with localcontext() as ctx:
        ctx.prec = 50
        tm, ts, cm, t = (Decimal(x) for x in (tau_m_ms, tau_s_ms, c_m_pF, t_ms))
        if tm == ts:
            return float(t / cm * (-t / tm).exp())
        return float(tm * ts / (cm * (ts - tm)) * ((-t / ts).exp() - (-t / tm).exp()))


# --- propagators -------------------------------------------------------------------------------

TAU_PAIRS = [
    (10.0, 2.0),
    (10.0, 0.5),
    (2.0, 10.0),
    (10.0, 10.0),
    (10.0, 10.0 * (1 + 1e-5)),
    (10.0, 10.0 * (1 - 1e-9)),
    (10.0, 10.0 * (1 + 1e-13)),
    (10.0, math.nextafter(10.0, 11.0)),
    (0.05, 100.0),
]


@pytest.mark.parametrize(("tau_m_ms", "tau_s_ms"), TAU_PAIRS)
def test_propagators_equal_their_exact_values(tau_m_ms: float, tau_s_ms: float) -> None:
    c_m_pF, dt = 250.0, DT_MS
    p = lif_propagators(tau_m_ms, c_m_pF, tau_s_ms, 3.0, dt)
    assert p.p_mex.shape == (1,)
    with localcontext() as ctx:
        ctx.prec = 50
        tm, h, cm = Decimal(tau_m_ms), Decimal(dt), Decimal(c_m_pF)
        p_mm = float((-h / tm).exp())
        p_me = float(tm / cm * (1 - (-h / tm).exp()))
        p_ex = float((-h / Decimal(tau_s_ms)).exp())
    assert p.p_mm[0] == pytest.approx(p_mm, rel=4e-16, abs=0)
    assert p.p_me[0] == pytest.approx(p_me, rel=4e-16, abs=0)
    assert p.p_ex[0] == pytest.approx(p_ex, rel=4e-16, abs=0)
    exact = exact_current_to_voltage(tau_m_ms, tau_s_ms, c_m_pF, dt)
    assert p.p_mex[0] == pytest.approx(exact, rel=1e-15, abs=0)
    exact_in = exact_current_to_voltage(tau_m_ms, 3.0, c_m_pF, dt)
    assert p.p_min[0] == pytest.approx(exact_in, rel=1e-15, abs=0)


def test_current_propagator_is_continuous_through_equal_time_constants() -> None:
    # approaching tau_s -> tau_m from both sides, p_mex must converge to the limit form linearly
    # in the relative difference (the naive formula loses every digit here).
    eps = np.array([1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1e-14])
    tau_s = np.concatenate([10.0 * (1 + eps), 10.0 * (1 - eps)])
    p = lif_propagators(10.0, 250.0, tau_s, 2.0, DT_MS).p_mex
    limit = lif_propagators(10.0, 250.0, 10.0, 2.0, DT_MS).p_mex[0]
    assert limit == pytest.approx(DT_MS / 250.0 * math.exp(-DT_MS / 10.0), rel=1e-15)
    rel_diff = np.abs(p - limit) / limit
    assert np.all(rel_diff <= 0.01 * np.concatenate([eps, eps]) + 4e-16)
    # p_mex grows with tau_s (a slower current pushes longer), so it approaches the limit from
    # above and below, monotonically while the differences are still above rounding
    resolved = eps >= 1e-10
    above, below = p[: eps.size][resolved], p[eps.size :][resolved]
    assert np.all(above > limit)
    assert np.all(below < limit)
    assert np.all(np.diff(above) < 0)
    assert np.all(np.diff(below) > 0)


def test_propagators_broadcast_heterogeneous_parameters() -> None:
    tau_m = np.array([5.0, 10.0, 20.0])
    p = lif_propagators(tau_m, 250.0, np.array([2.0, 10.0, 1.0]), 3.0, DT_MS)
    for field in ("p_mm", "p_me", "p_ex", "p_in", "p_mex", "p_min"):
        array = getattr(p, field)
        assert array.shape == (3,)
        assert array.dtype == np.float64
        assert array.flags.c_contiguous
    assert np.array_equal(p.p_mm, np.exp(-DT_MS / tau_m))
    assert p.p_mex[1] == lif_propagators(10.0, 250.0, 10.0, 3.0, DT_MS).p_mex[0]


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0.0, 250.0, 2.0, 2.0, 0.1), "tau_m_ms"),
        ((10.0, -1.0, 2.0, 2.0, 0.1), "c_m_pF"),
        ((10.0, 250.0, np.array([2.0, np.nan]), 2.0, 0.1), "tau_syn_ex_ms"),
        ((10.0, 250.0, 2.0, np.inf, 0.1), "tau_syn_in_ms"),
        ((10.0, 250.0, 2.0, 2.0, 0.0), "dt_ms"),
    ],
)
def test_propagators_reject_nonpositive_parameters(args: tuple[Any, ...], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be finite and > 0"):
        lif_propagators(*args)


def test_refractory_steps_round_to_the_nearest_step() -> None:
    steps = refractory_steps([0.0, 0.1, 2.0, 2.04, 2.06, 0.3], 0.1)
    assert steps.dtype == np.int64
    assert steps.tolist() == [0, 1, 20, 20, 21, 3]
    with pytest.raises(ValueError, match="t_ref_ms must be finite and >= 0"):
        refractory_steps([-0.1], 0.1)


# --- dynamics against closed forms -----------------------------------------------------------


@pytest.mark.parametrize("synapse", SYNAPSES)
@pytest.mark.parametrize(
    ("tau_m_ms", "c_m_pF", "v_reset_mV", "t_ref_ms"),
    [(10.0, 250.0, -70.0, 2.0), (20.0, 500.0, -65.0, 3.0)],
)
def test_dc_driven_isi_is_the_analytic_isi_rounded_up_to_the_grid(
    synapse: Synapse, tau_m_ms: float, c_m_pF: float, v_reset_mV: float, t_ref_ms: float
) -> None:
    # ISI = t_ref + tau_m ln((R I - (V_reset - E_L)) / (R I - (V_th - E_L))); on the grid the
    # crossing is detected at the first step end at or after it, so the simulated ISI is
    # t_ref + ceil(T / dt) dt: within one step of (and never below) the analytic ISI.
    currents_pA = np.array([376.0, 390.0, 420.0, 500.0, 700.0, 1200.0, 3000.0])
    n = currents_pA.size
    c = cells(n, tau_m_ms=tau_m_ms, c_m_pF=c_m_pF, v_reset_mV=v_reset_mV, t_ref_ms=t_ref_ms)
    r_i_mV = tau_m_ms / c_m_pF * currents_pA
    e_l, v_th = NEST_DEFAULTS["e_l_mV"], NEST_DEFAULTS["v_th_mV"]
    t_free_ms = tau_m_ms * np.log((r_i_mV - (v_reset_mV - e_l)) / (r_i_mV - (v_th - e_l)))
    isi_analytic_ms = t_ref_ms + t_free_ms
    fraction = t_free_ms / DT_MS - np.floor(t_free_ms / DT_MS)
    assert np.all((fraction > 1e-6) & (fraction < 1 - 1e-6)), "crossing too close to the grid"
    expected_steps = round(t_ref_ms / DT_MS) + np.ceil(t_free_ms / DT_MS).astype(int)

    trace = simulate(c, synapse, 12_000, i_ext_pA=currents_pA)
    for lid in range(n):
        isi_steps = np.diff(trace.spike_indices(lid))
        assert isi_steps.size >= 4
        assert np.all(isi_steps == expected_steps[lid])
        isi_ms = isi_steps[0] * DT_MS
        assert 0.0 <= isi_ms - isi_analytic_ms[lid] <= DT_MS
        assert 1000.0 / isi_ms == pytest.approx(1000.0 / isi_analytic_ms[lid], rel=DT_MS / isi_ms)


@pytest.mark.parametrize("synapse", SYNAPSES)
def test_no_spikes_below_rheobase(synapse: Synapse) -> None:
    # R I = 14.99 mV < V_th - E_L = 15 mV: the membrane approaches but never reaches threshold
    trace = simulate(cells(1), synapse, 5_000, i_ext_pA=374.75)
    assert trace.spikes == []
    assert trace.v_mV[-1, 0] == pytest.approx(-55.01, abs=1e-6)


@pytest.mark.parametrize("synapse", SYNAPSES)
def test_subthreshold_step_response_matches_closed_form(synapse: Synapse) -> None:
    tau_m = np.array([5.0, 10.0, 10.0, 33.0])
    c_m = np.array([100.0, 250.0, 250.0, 700.0])
    currents_pA = np.array([250.0, 100.0, -300.0, 300.0])
    e_l = np.array([-65.0, -70.0, -70.0, -60.0])
    n_steps = 3_000
    trace = simulate(
        cells(4, tau_m_ms=tau_m, c_m_pF=c_m, e_l_mV=e_l, v_th_mV=-40.0),
        synapse,
        n_steps,
        i_ext_pA=currents_pA,
    )
    t_ms = DT_MS * np.arange(n_steps + 1)[:, None]
    closed = e_l + tau_m / c_m * currents_pA * -np.expm1(-t_ms / tau_m)
    assert trace.spikes == []
    np.testing.assert_allclose(trace.v_mV, closed, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("tau_m_ms", "tau_s_ms"), [(10.0, 2.0), (10.0, 10.0), (10.0, 10.000001), (5.0, 20.0)]
)
def test_exponential_psp_matches_difference_of_exponentials(
    tau_m_ms: float, tau_s_ms: float
) -> None:
    # weights arriving in step 0 set I_syn(t_1) = w and leave V(t_1) = E_L; for t >= t_1 the PSP is
    # w tau_m tau_s / (C_m (tau_s - tau_m)) (exp(-s/tau_s) - exp(-s/tau_m)), s = t - t_1
    # (w s / C_m exp(-s / tau) when tau_m == tau_s); neuron 0 receives it excitatory, 1 inhibitory.
    n_steps, w_pA = 400, 1000.0
    c = cells(2, tau_m_ms=tau_m_ms, tau_syn_ex_ms=tau_s_ms, tau_syn_in_ms=tau_s_ms, v_th_mV=0.0)
    in_ex, in_in = np.zeros((n_steps, 2)), np.zeros((n_steps, 2))
    in_ex[0, 0], in_in[0, 1] = w_pA, -w_pA
    trace = simulate(c, "exponential", n_steps, in_ex_pA=in_ex, in_in_pA=in_in)
    psp = np.array(
        [exact_current_to_voltage(tau_m_ms, tau_s_ms, 250.0, k * DT_MS) for k in range(n_steps)]
    )
    assert trace.v_mV[1, 0] == -70.0
    assert np.max(w_pA * psp) > 0.5
    np.testing.assert_allclose(trace.v_mV[1:, 0], -70.0 + w_pA * psp, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.v_mV[1:, 1], -70.0 - w_pA * psp, rtol=0, atol=1e-12)
    decay = np.exp(-DT_MS * np.arange(n_steps) / tau_s_ms)
    np.testing.assert_allclose(trace.i_ex_pA[1:, 0], w_pA * decay, rtol=1e-12, atol=0)
    np.testing.assert_allclose(trace.i_in_pA[1:, 1], -w_pA * decay, rtol=1e-12, atol=0)


def test_delta_input_jumps_in_the_same_step_then_decays() -> None:
    n_steps = 200
    in_mV = np.zeros((n_steps, 1))
    in_mV[0, 0] = 2.5
    trace = simulate(cells(1), "delta", n_steps, in_mV=in_mV)
    expected = -70.0 + 2.5 * np.exp(-DT_MS * np.arange(n_steps) / 10.0)
    np.testing.assert_allclose(trace.v_mV[1:, 0], expected, rtol=0, atol=1e-12)


# --- refractoriness and spike output -----------------------------------------------------------


@pytest.mark.parametrize("synapse", SYNAPSES)
@pytest.mark.parametrize("t_ref_ms", [0.0, 0.1, 2.0, 2.5])
def test_membrane_is_held_for_exactly_t_ref_steps(synapse: Synapse, t_ref_ms: float) -> None:
    t_ref_steps = round(t_ref_ms / DT_MS)
    trace = simulate(cells(1, t_ref_ms=t_ref_ms), synapse, 300, i_ext_pA=2500.0)
    first, second = trace.spike_indices(0)[:2]
    v, refr = trace.v_mV[:, 0], trace.refr[:, 0]
    # reset value at the spike time, then one more held value per refractory step
    assert np.all(v[first : first + t_ref_steps + 1] == -70.0)
    assert v[first + t_ref_steps + 1] > -70.0
    assert refr[first : first + t_ref_steps + 1].tolist() == list(range(t_ref_steps, -1, -1))
    assert np.all(refr[:first] == 0)
    # the free trajectory after the refractory period repeats the one from rest
    assert second - first == first + t_ref_steps


def test_delta_input_is_discarded_while_refractory() -> None:
    # starts above threshold, so it fires in step 0; 1 mV arrives in every step
    trace = simulate(cells(1), "delta", 30, in_mV=1.0, v0_mV=-50.0)
    assert trace.spike_indices(0).tolist() == [1]
    assert np.all(trace.v_mV[1:22, 0] == -70.0)
    assert trace.v_mV[22, 0] == -69.0


@pytest.mark.parametrize("synapse", CURRENT_SYNAPSES)
def test_synaptic_currents_keep_integrating_while_refractory(synapse: Synapse) -> None:
    # neuron 0 fires in step 0 and is refractory, neuron 1 is not: their currents are identical
    in_ex = np.where(np.arange(50) % 3 == 0, 40.0, 0.0)[:, None]
    trace = simulate(
        cells(2), synapse, 50, in_ex_pA=in_ex, in_in_pA=-15.0, v0_mV=np.array([-50.0, -70.0])
    )
    assert trace.spike_indices(0).tolist() == [1]
    assert np.all(trace.v_mV[1:22, 0] == -70.0)
    for current in (trace.i_ex_pA, trace.i_in_pA, trace.x_ex_pA_ms, trace.x_in_pA_ms):
        assert np.array_equal(current[:, 0], current[:, 1])
    assert trace.i_ex_pA[21, 0] > 0.0
    assert trace.i_in_pA[21, 0] < 0.0


@pytest.mark.parametrize(("synapse", "reference"), list(KERNELS))
def test_spike_indices_are_written_in_ascending_order(synapse: Synapse, reference: bool) -> None:
    # neurons 1, 4, 5, 9 start above threshold; 5 is refractory, so only 1, 4, 9 fire
    v0 = np.full(10, -60.0)
    v0[[1, 4, 5, 9]] = -40.0
    refr0 = np.zeros(10, dtype=np.int64)
    refr0[5] = 3
    trace = simulate(cells(10), synapse, 1, v0_mV=v0, refr0=refr0, reference=reference)
    assert trace.spikes == [(1, 1), (1, 4), (1, 9)]
    assert trace.v_mV[1, 5] == -40.0
    assert trace.refr[1].tolist() == [0, 20, 0, 0, 20, 2, 0, 0, 0, 20]


@pytest.mark.parametrize("synapse", SYNAPSES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_equals_numpy_reference_bit_for_bit(synapse: Synapse, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, n_steps = 400, 150
    e_l = rng.uniform(-75.0, -65.0, n)
    tau_m = rng.uniform(5.0, 30.0, n)
    tau_ex = np.where(rng.random(n) < 0.2, tau_m, rng.uniform(0.5, 10.0, n))
    c = cells(
        n,
        tau_m_ms=tau_m,
        c_m_pF=rng.uniform(100.0, 400.0, n),
        e_l_mV=e_l,
        v_th_mV=e_l + rng.uniform(5.0, 20.0, n),
        v_reset_mV=e_l - rng.uniform(0.0, 5.0, n),
        t_ref_ms=DT_MS * rng.integers(0, 30, n),
        tau_syn_ex_ms=tau_ex,
        tau_syn_in_ms=rng.uniform(0.5, 10.0, n),
    )
    drive: dict[str, Any] = {
        "i_ext_pA": rng.normal(300.0, 300.0, (n_steps, n)),
        "in_mV": rng.normal(0.0, 3.0, (n_steps, n)) * (rng.random((n_steps, n)) < 0.3),
        "in_ex_pA": np.abs(rng.normal(0.0, 200.0, (n_steps, n))),
        "in_in_pA": -np.abs(rng.normal(0.0, 200.0, (n_steps, n))),
        "v0_mV": rng.uniform(e_l - 10.0, c.v_th_mV + 5.0),
        "refr0": rng.integers(0, 5, n),
    }
    kernel = simulate(c, synapse, n_steps, **drive)
    reference = simulate(c, synapse, n_steps, reference=True, **drive)
    assert kernel.spikes == reference.spikes
    for name in ("v_mV", "i_ex_pA", "i_in_pA", "x_ex_pA_ms", "x_in_pA_ms", "refr"):
        assert getattr(kernel, name).tobytes() == getattr(reference, name).tobytes(), name
    # the comparison covered spiking, refractory and free neurons
    assert len(kernel.spikes) > n
    assert np.count_nonzero(kernel.refr[1:] > 0) > n
    assert np.count_nonzero(kernel.refr[1:] == 0) > n


# --- golden traces ------------------------------------------------------------------------------


def golden_traces() -> dict[str, Any]:
    """A fixed three-neuron scenario per synapse kind: 20 steps of every state value and spike."""
    n_steps = 20
    c = cells(
        3,
        tau_m_ms=[10.0, 15.0, 2.0],
        c_m_pF=[250.0, 200.0, 250.0],
        t_ref_ms=[2.0, 0.5, 0.3],
        tau_syn_ex_ms=[2.0, 15.0, 0.5],
        tau_syn_in_ms=[5.0, 1.0, 2.0],
        v_reset_mV=-68.0,
    )
    pulses = np.zeros((n_steps, 3))
    pulses[[2, 3, 9], [0, 1, 2]] = [1.0, 1.0, 1.0]
    v0 = [-56.0, -60.0, -70.0]
    traces: dict[str, Any] = {}
    for synapse in SYNAPSES:
        trace = simulate(
            c,
            synapse,
            n_steps,
            i_ext_pA=[200.0, 300.0, 1000.0],
            in_mV=4.0 * pulses,
            in_ex_pA=3000.0 * pulses,
            in_in_pA=-500.0 * pulses[:, ::-1],
            v0_mV=v0,
        )
        traces[synapse] = {"v_mV": trace.v_mV.T.tolist(), "spikes": [list(s) for s in trace.spikes]}
        if synapse in CURRENT_SYNAPSES:
            traces[synapse] |= {
                "i_syn_ex_pA": trace.i_ex_pA.T.tolist(),
                "i_syn_in_pA": trace.i_in_pA.T.tolist(),
            }
    return {"dt_ms": DT_MS, "regenerate": "python -m tests.kernels.test_lif", **traces}


def test_golden_traces_are_unchanged() -> None:
    pinned = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))
    current = golden_traces()
    for synapse in SYNAPSES:
        assert current[synapse]["spikes"] == pinned[synapse]["spikes"]
        assert current[synapse].keys() == pinned[synapse].keys()
        for name in current[synapse].keys() - {"spikes"}:
            np.testing.assert_allclose(
                current[synapse][name], pinned[synapse][name], rtol=1e-13, atol=1e-13, err_msg=name
            )
    # the scenario pins resets and refractoriness too, not only subthreshold integration
    assert len(pinned["delta"]["spikes"]) >= 2
    assert len(pinned["exponential"]["spikes"]) >= 2
    assert pinned["alpha"]["spikes"]  # an alpha current rises slowly: one spike in 20 steps


if __name__ == "__main__":
    GOLDEN_PATH.write_text(json.dumps(golden_traces(), indent=1) + "\n", encoding="utf-8")
