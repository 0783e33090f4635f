"""LIF with alpha synapses (NEST's ``iaf_psc_alpha``): propagators, PSC and PSP shapes.

The shared LIF tests (analytic ISIs, refractoriness, spike order, kernel = numpy reference bit
for bit, the golden trace in ``golden/lif.json``) run for alpha synapses in ``test_lif.py``;
the comparison with NEST is in ``tests/engine/test_lif_alpha_nest.py``.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest

from brainsim.kernels.lif import lif_alpha_propagators
from tests.kernels.test_lif import DT_MS, TAU_PAIRS, cells, simulate

C_M_PF = 250.0


def exact_alpha_psp(tau_m_ms: float, tau_s_ms: float, t_ms: float) -> float:
    """V(t) - E_L (mV) after a unit drive (pA/ms) at t = 0, I(0) = 0, in 50 digits.

    The current is ``t exp(-t / tau_s)``; with ``a = 1/tau_s - 1/tau_m`` the membrane gives
    ``exp(-t / tau_m) (1 - (1 + a t) exp(-a t)) / (a^2 C_m)``, or its limit
    ``t^2 / (2 C_m) exp(-t / tau)`` when the time constants are equal.
    """
    with localcontext() as ctx:
        ctx.prec = 50
        tm, ts, t, cm = (Decimal(x) for x in (tau_m_ms, tau_s_ms, t_ms, C_M_PF))
        a = 1 / ts - 1 / tm
        if a == 0:
            return float(t * t / (2 * cm) * (-t / tm).exp())
        return float((-t / tm).exp() * (1 - (1 + a * t) * (-a * t).exp()) / (a * a * cm))


@pytest.mark.parametrize(("tau_m_ms", "tau_s_ms"), TAU_PAIRS)
def test_propagators_equal_their_exact_values(tau_m_ms: float, tau_s_ms: float) -> None:
    p = lif_alpha_propagators(tau_m_ms, C_M_PF, tau_s_ms, 3.0, DT_MS)
    assert p.p_31ex.shape == (1,)
    assert p.p_31ex[0] == pytest.approx(exact_alpha_psp(tau_m_ms, tau_s_ms, DT_MS), rel=1e-15)
    assert p.p_31in[0] == pytest.approx(exact_alpha_psp(tau_m_ms, 3.0, DT_MS), rel=1e-15)
    with localcontext() as ctx:
        ctx.prec = 50
        h, ts = Decimal(DT_MS), Decimal(tau_s_ms)
        p_21 = float(h * (-h / ts).exp())
        psc = float(Decimal(1).exp() / ts)
    assert p.p_21ex[0] == pytest.approx(p_21, rel=4e-16)
    assert p.psc_ex[0] == pytest.approx(psc, rel=4e-16)


def test_drive_propagator_is_continuous_through_equal_time_constants() -> None:
    # The closed form loses every digit near tau_s == tau_m; the series must not.
    eps = np.array([1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1e-14])
    tau_s = np.concatenate([10.0 * (1 + eps), 10.0 * (1 - eps)])
    p = lif_alpha_propagators(10.0, C_M_PF, tau_s, 2.0, DT_MS).p_31ex
    exact = np.array([exact_alpha_psp(10.0, t, DT_MS) for t in tau_s])
    np.testing.assert_allclose(p, exact, rtol=1e-15, atol=0)
    limit = lif_alpha_propagators(10.0, C_M_PF, 10.0, 2.0, DT_MS).p_31ex[0]
    assert limit == pytest.approx(DT_MS**2 / (2 * C_M_PF) * math.exp(-DT_MS / 10.0), rel=1e-15)
    # a slower current pushes longer: from above on one side, from below on the other
    assert np.all(p[: eps.size] >= limit)
    assert np.all(p[eps.size :] <= limit)


def test_propagators_broadcast_and_check_like_the_lif_ones() -> None:
    p = lif_alpha_propagators(np.array([5.0, 10.0, 20.0]), 250.0, 2.0, [1.0, 10.0, 3.0], DT_MS)
    for name in ("p_21ex", "p_21in", "p_31ex", "p_31in", "psc_ex", "psc_in"):
        array = getattr(p, name)
        assert array.shape == (3,)
        assert array.dtype == np.float64
        assert array.flags.c_contiguous
    assert p.p_31in[1] == lif_alpha_propagators(10.0, 250.0, 2.0, 10.0, DT_MS).p_31in[0]
    with pytest.raises(ValueError, match=r"^tau_syn_in_ms must be finite and > 0"):
        lif_alpha_propagators(10.0, 250.0, 2.0, 0.0, DT_MS)


@pytest.mark.parametrize(
    ("tau_m_ms", "tau_s_ms"), [(10.0, 2.0), (10.0, 10.0), (10.0, 10.000001), (5.0, 20.0)]
)
def test_psp_and_psc_of_one_spike_match_the_closed_form(tau_m_ms: float, tau_s_ms: float) -> None:
    # Weights arriving in step 0 leave I(t_1) = 0 and V(t_1) = E_L = 0 and set the drive to
    # w e / tau_s; for s = t - t_1 the current is w e / tau_s s exp(-s / tau_s) and the PSP is
    # w e / tau_s times exact_alpha_psp. Neuron 0 receives w excitatory, neuron 1 inhibitory.
    n_steps, w_pA = 400, 1000.0
    c = cells(2, tau_m_ms=tau_m_ms, tau_syn_ex_ms=tau_s_ms, tau_syn_in_ms=tau_s_ms, e_l_mV=0.0,
              v_reset_mV=0.0, v_th_mV=1e9)  # fmt: skip
    in_ex, in_in = np.zeros((n_steps, 2)), np.zeros((n_steps, 2))
    in_ex[0, 0], in_in[0, 1] = w_pA, -w_pA
    trace = simulate(c, "alpha", n_steps, in_ex_pA=in_ex, in_in_pA=in_in)
    drive = w_pA * math.e / tau_s_ms
    s_ms = DT_MS * np.arange(n_steps)
    psp = drive * np.array([exact_alpha_psp(tau_m_ms, tau_s_ms, s) for s in s_ms])
    psc = drive * s_ms * np.exp(-s_ms / tau_s_ms)
    assert trace.v_mV[1, 0] == 0.0
    assert trace.i_ex_pA[1, 0] == 0.0
    assert np.max(psp) > 1.0
    np.testing.assert_allclose(trace.v_mV[2:, 0], psp[1:], rtol=1e-10, atol=0)
    np.testing.assert_allclose(trace.v_mV[2:, 1], -psp[1:], rtol=1e-10, atol=0)
    np.testing.assert_allclose(trace.i_ex_pA[1:, 0], psc, rtol=1e-12, atol=0)
    np.testing.assert_allclose(trace.i_in_pA[1:, 1], -psc, rtol=1e-12, atol=0)


@pytest.mark.parametrize("tau_s_ms", [0.5, 2.0, 5.0])
def test_psc_peaks_at_the_weight_at_tau_syn(tau_s_ms: float) -> None:
    n_steps, w_pA = 200, 75.0
    c = cells(2, tau_syn_ex_ms=tau_s_ms, tau_syn_in_ms=tau_s_ms, v_th_mV=1e9)
    in_ex, in_in = np.zeros((n_steps, 2)), np.zeros((n_steps, 2))
    in_ex[0, 0], in_in[0, 1] = w_pA, -w_pA
    trace = simulate(c, "alpha", n_steps, in_ex_pA=in_ex, in_in_pA=in_in)
    peak_row = 1 + round(tau_s_ms / DT_MS)  # row 1 is t_1, where the current starts from 0
    assert int(np.argmax(trace.i_ex_pA[:, 0])) == peak_row
    assert int(np.argmin(trace.i_in_pA[:, 1])) == peak_row
    assert trace.i_ex_pA[peak_row, 0] == pytest.approx(w_pA, rel=1e-13)
    assert trace.i_in_pA[peak_row, 1] == pytest.approx(-w_pA, rel=1e-13)
    # the drive alone decays with tau_s
    assert trace.x_ex_pA_ms[peak_row, 0] == pytest.approx(w_pA / tau_s_ms, rel=1e-13)
