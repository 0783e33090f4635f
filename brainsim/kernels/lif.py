"""Advance leaky integrate-and-fire neurons (delta, exponential or alpha current synapses) by
one step.

Model (current based, NEST's ``iaf_psc_delta`` / ``iaf_psc_exp`` / ``iaf_psc_alpha``)::

    C_m dV/dt      = -(C_m / tau_m) (V - E_L) + I_syn_ex + I_syn_in + I_ext      [V mV, I pA, C pF]
    dI_syn_X/dt    = -I_syn_X / tau_syn_X                          exponential  [X = ex, in]
    dI_syn_X/dt    = x_X - I_syn_X / tau_syn_X,  dx_X/dt = -x_X / tau_syn_X     alpha

With ``R = tau_m / C_m`` (GΩ, so that ``R I`` is in mV) the membrane relaxes to ``E_L + R I``.

The ODE is linear between input events, so each step applies its exact solution (exact
integration, Rotter & Diesmann 1999) through propagators that :func:`lif_propagators` computes
once per population; nothing is approximated except by floating-point rounding.

Conventions (shared by every kernel in this module and by the engine that calls them):

* Step ``k`` advances the state from ``t_k = k dt`` to ``t_{k+1}``. A neuron whose ``V`` reaches
  ``V_th`` in step ``k`` spikes at ``t_{k+1} = (k + 1) dt``: spikes are stamped on the grid, as in
  NEST's ``iaf_psc_*`` models. The kernel writes the local indices of the spiking neurons into
  ``spikes_out`` in ascending order and returns their number.
* ``i_ext_pA`` is the external current for this step (``I_e`` + DC + noise, summed by the engine);
  it is held constant over the step (piecewise-constant input, applied through ``p_me``).
* Delta synapses: the summed weight ``in_mV`` of the spikes arriving in step ``k`` is added to
  ``V`` after the subthreshold propagation, so it can make the neuron spike in the same step.
* Exponential synapses: the currents first propagate, then the arriving weights are added
  (``in_ex_pA >= 0``, ``in_in_pA <= 0``, routed by sign by the engine), so an input affects ``V``
  from the next step on.
* Alpha synapses: the same, except that the arriving weight times ``e / tau_syn`` is added to the
  current's drive ``x`` (NEST's ``dI``), so a spike of weight ``w`` arriving in step ``k`` makes
  ``I(t_{k+1} + s) = w e / tau_syn s exp(-s / tau_syn)``, with its peak ``w`` at
  ``s = tau_syn``.
* Refractoriness: a spike sets ``V = V_reset`` and ``refr = t_ref_steps``. In each step that
  starts with ``refr > 0`` the membrane is not integrated (``V`` stays at ``V_reset``), ``refr``
  is decremented, delta input is discarded, and no threshold check is made; synaptic currents
  keep decaying and accumulating input. Hence ``V`` is held for exactly ``t_ref_steps`` steps.

Every kernel is a numba function over struct-of-arrays state (one array element per local
neuron, all parameters per neuron), updates its arguments in place and allocates nothing. Each
has a plain-numpy reference ``*_ref`` with the same signature that performs the same
floating-point operations in the same order, so the two agree bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

__all__ = [
    "LifAlphaPropagators",
    "LifPropagators",
    "lif_alpha_propagators",
    "lif_alpha_step",
    "lif_alpha_step_ref",
    "lif_delta_step",
    "lif_delta_step_ref",
    "lif_exp_step",
    "lif_exp_step_ref",
    "lif_propagators",
    "refractory_steps",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class LifPropagators:
    """Exact one-step propagators of the LIF ODE, one float64 array element per neuron.

    Over one step of length ``h`` with constant ``I_ext``::

        V(t+h) - E_L = p_mm (V - E_L) + p_mex I_ex + p_min I_in + p_me I_ext
        I_X(t+h)     = p_X I_X                                       (X = ex, in)
    """

    p_mm: FloatArray
    """``exp(-h / tau_m)``: decay of ``V - E_L`` over one step (dimensionless)."""
    p_me: FloatArray
    """``tau_m / C_m (1 - exp(-h / tau_m))``: response of ``V`` to a constant current (mV/pA)."""
    p_ex: FloatArray
    """``exp(-h / tau_syn_ex)``: decay of the excitatory synaptic current (dimensionless)."""
    p_in: FloatArray
    """``exp(-h / tau_syn_in)``: decay of the inhibitory synaptic current (dimensionless)."""
    p_mex: FloatArray
    """Response of ``V`` after one step to a unit excitatory current at the step start (mV/pA)."""
    p_min: FloatArray
    """Response of ``V`` after one step to a unit inhibitory current at the step start (mV/pA)."""


def _positive(name: str, value: npt.ArrayLike) -> FloatArray:
    """Return ``value`` as a float64 array after checking that every element is finite and > 0."""
    array = np.asarray(value, dtype=np.float64)
    bad = ~(np.isfinite(array) & (array > 0.0))
    if np.any(bad):
        raise ValueError(f"{name} must be finite and > 0, found {array[bad].ravel()[:5].tolist()}")
    return array


def _current_to_voltage(
    tau_m_ms: FloatArray, c_m_pF: FloatArray, tau_syn_ms: FloatArray, dt_ms: float
) -> FloatArray:
    """Exact propagator from a decaying synaptic current to the membrane potential (mV/pA).

    Solving ``C_m dV/dt = -C_m V / tau_m + I_0 exp(-t / tau_s)`` from ``V(0) = 0`` gives::

        V(h) / I_0 = tau_m tau_s / (C_m (tau_s - tau_m)) (exp(-h / tau_s) - exp(-h / tau_m))

    which is 0/0 at ``tau_s == tau_m`` and loses all digits to cancellation near it. Factoring out
    the slower decay gives a form that is exact in the limit and stable everywhere::

        V(h) / I_0 = h / C_m exp(-h / max(tau_m, tau_s)) phi(-h |1/tau_m - 1/tau_s|)

    with ``phi(x) = expm1(x) / x`` and ``phi(0) = 1``; at ``tau_s == tau_m`` this is the limit
    ``h / C_m exp(-h / tau)``. The argument of ``phi`` is never positive, so nothing overflows.
    """
    x = -dt_ms * np.abs(tau_syn_ms - tau_m_ms) / (tau_m_ms * tau_syn_ms)
    nonzero = x != 0.0
    phi = np.ones_like(x)
    np.divide(np.expm1(x), x, out=phi, where=nonzero)
    return dt_ms / c_m_pF * np.exp(-dt_ms / np.maximum(tau_m_ms, tau_syn_ms)) * phi


def _checked(
    tau_m_ms: npt.ArrayLike,
    c_m_pF: npt.ArrayLike,
    tau_syn_ex_ms: npt.ArrayLike,
    tau_syn_in_ms: npt.ArrayLike,
    dt_ms: float,
) -> tuple[float, FloatArray, FloatArray, FloatArray, FloatArray]:
    """``dt`` and the other arguments as float64 arrays of their common shape, each checked to be
    finite and > 0."""
    dt = float(_positive("dt_ms", dt_ms))
    tau_m, c_m, tau_ex, tau_in = np.broadcast_arrays(
        _positive("tau_m_ms", tau_m_ms),
        _positive("c_m_pF", c_m_pF),
        _positive("tau_syn_ex_ms", tau_syn_ex_ms),
        _positive("tau_syn_in_ms", tau_syn_in_ms),
    )
    return dt, tau_m, c_m, tau_ex, tau_in


def lif_propagators(
    tau_m_ms: npt.ArrayLike,
    c_m_pF: npt.ArrayLike,
    tau_syn_ex_ms: npt.ArrayLike,
    tau_syn_in_ms: npt.ArrayLike,
    dt_ms: float,
) -> LifPropagators:
    """Compute the exact one-step propagators for (possibly heterogeneous) LIF neurons.

    Arguments are scalars or arrays of any broadcast-compatible shapes; every field of the
    result is a C-contiguous array of their common shape (``(1,)`` for scalars), ready to pass
    to the kernels. ``1 - exp(-h/tau)`` is computed as ``-expm1(-h/tau)`` so
    that it keeps full precision when ``h << tau``.

    Raises:
        ValueError: a time constant, capacitance or ``dt_ms`` is not finite and positive.
    """
    dt, tau_m, c_m, tau_ex, tau_in = _checked(tau_m_ms, c_m_pF, tau_syn_ex_ms, tau_syn_in_ms, dt_ms)
    return LifPropagators(
        p_mm=np.ascontiguousarray(np.exp(-dt / tau_m)),
        p_me=np.ascontiguousarray(tau_m / c_m * -np.expm1(-dt / tau_m)),
        p_ex=np.ascontiguousarray(np.exp(-dt / tau_ex)),
        p_in=np.ascontiguousarray(np.exp(-dt / tau_in)),
        p_mex=np.ascontiguousarray(_current_to_voltage(tau_m, c_m, tau_ex, dt)),
        p_min=np.ascontiguousarray(_current_to_voltage(tau_m, c_m, tau_in, dt)),
    )


@dataclass(frozen=True, slots=True)
class LifAlphaPropagators:
    """What alpha synapses add to :class:`LifPropagators`, one float64 array element per neuron.

    Over one step of length ``h``, for each current ``I_X`` and its drive ``x_X`` (``X`` = ex,
    in; ``p_X``, ``p_mex``/``p_min`` from :class:`LifPropagators`)::

        V(t+h) - E_L = p_mm (V - E_L) + p_31X x_X + p_mX I_X + ... + p_me I_ext
        I_X(t+h)     = p_21X x_X + p_X I_X
        x_X(t+h)     = p_X x_X
    """

    p_21ex: FloatArray
    """``h exp(-h / tau_syn_ex)``: what the excitatory drive adds to its current (ms)."""
    p_21in: FloatArray
    """``h exp(-h / tau_syn_in)``: what the inhibitory drive adds to its current (ms)."""
    p_31ex: FloatArray
    """Response of ``V`` after one step to a unit excitatory drive at the step start (mV ms/pA)."""
    p_31in: FloatArray
    """Response of ``V`` after one step to a unit inhibitory drive at the step start (mV ms/pA)."""
    psc_ex: FloatArray
    """``e / tau_syn_ex``: the drive a unit excitatory weight adds, so the current peaks at the
    weight (1/ms)."""
    psc_in: FloatArray
    """``e / tau_syn_in``: the drive a unit inhibitory weight adds (1/ms)."""


_SERIES_BELOW = 1.0
"""Below this ``|z|`` the functions of :func:`_drive_to_voltage` are summed as Taylor series."""
_SERIES_TERMS = 20
_SLOWER_SYNAPSE = np.array(
    [(-1) ** n / math.factorial(n + 2) for n in range(_SERIES_TERMS)], dtype=np.float64
)
_SLOWER_MEMBRANE = np.array(
    [(-1) ** n * (n + 1) / math.factorial(n + 2) for n in range(_SERIES_TERMS)],
    dtype=np.float64,
)


def _series(coefficients: FloatArray, z: FloatArray) -> FloatArray:
    """``sum_n coefficients[n] z^n`` by Horner's rule."""
    total = np.zeros_like(z)
    for coefficient in coefficients[::-1]:
        total = total * z + coefficient
    return total


def _drive_to_voltage(
    tau_m_ms: FloatArray, c_m_pF: FloatArray, tau_syn_ms: FloatArray, dt_ms: float
) -> FloatArray:
    """Exact propagator from an alpha current's drive to the membrane potential (mV ms/pA).

    From ``x(0) = x_0``, ``I(0) = 0``, ``V(0) = 0`` the current is ``I(t) = x_0 t exp(-t/tau_s)``
    and ``C_m dV/dt = -C_m V / tau_m + I`` gives::

        V(h) / x_0 = h^2 / C_m exp(-h / tau_s) f(h / tau_s - h / tau_m),  f(y) = (e^y - 1 - y) / y^2

    with ``f(0) = 1/2`` (``h^2 / (2 C_m) exp(-h / tau)`` at ``tau_s == tau_m``). ``f`` loses digits
    to cancellation for small ``|y|`` and ``e^y`` overflows for large ``y``, so, as in
    :func:`_current_to_voltage`, the slower decay is factored out; with ``z = |y|``::

        V(h) / x_0 = h^2 / C_m exp(-h / max(tau_m, tau_s)) g(z)

        g(z) = f(-z) = (expm1(-z) + z) / z^2                 tau_s >= tau_m
        g(z) = exp(-z) f(z) = (-expm1(-z) - z e^-z) / z^2    tau_s < tau_m

    Below ``z = 1`` each ``g`` is summed from its Taylor series (20 terms, truncation below
    1e-19); above, the closed forms lose at most a few units in the last place.
    """
    z = dt_ms * np.abs(tau_syn_ms - tau_m_ms) / (tau_m_ms * tau_syn_ms)
    slower_synapse = tau_syn_ms >= tau_m_ms
    small = z < _SERIES_BELOW
    near = np.where(small, z, 0.0)
    by_series = np.where(
        slower_synapse, _series(_SLOWER_SYNAPSE, near), _series(_SLOWER_MEMBRANE, near)
    )
    far = np.where(small, _SERIES_BELOW, z)
    by_closed_form = np.where(
        slower_synapse,
        (np.expm1(-far) + far) / far**2,
        (-np.expm1(-far) - far * np.exp(-far)) / far**2,
    )
    g = np.where(small, by_series, by_closed_form)
    return dt_ms**2 / c_m_pF * np.exp(-dt_ms / np.maximum(tau_m_ms, tau_syn_ms)) * g


def lif_alpha_propagators(
    tau_m_ms: npt.ArrayLike,
    c_m_pF: npt.ArrayLike,
    tau_syn_ex_ms: npt.ArrayLike,
    tau_syn_in_ms: npt.ArrayLike,
    dt_ms: float,
) -> LifAlphaPropagators:
    """The propagators alpha synapses add to :func:`lif_propagators` (same arguments, same
    broadcasting and checks).

    Raises:
        ValueError: a time constant, capacitance or ``dt_ms`` is not finite and positive.
    """
    dt, tau_m, c_m, tau_ex, tau_in = _checked(tau_m_ms, c_m_pF, tau_syn_ex_ms, tau_syn_in_ms, dt_ms)
    return LifAlphaPropagators(
        p_21ex=np.ascontiguousarray(dt * np.exp(-dt / tau_ex)),
        p_21in=np.ascontiguousarray(dt * np.exp(-dt / tau_in)),
        p_31ex=np.ascontiguousarray(_drive_to_voltage(tau_m, c_m, tau_ex, dt)),
        p_31in=np.ascontiguousarray(_drive_to_voltage(tau_m, c_m, tau_in, dt)),
        psc_ex=np.ascontiguousarray(np.e / tau_ex),
        psc_in=np.ascontiguousarray(np.e / tau_in),
    )


def refractory_steps(t_ref_ms: npt.ArrayLike, dt_ms: float) -> IntArray:
    """Refractory period in whole steps, ``round(t_ref / dt)`` as int64 (the ``t_ref_steps`` arg).

    Rounding to the nearest integer (not truncating) keeps ``2.0 / 0.1 = 19.999...`` at 20 steps.

    Raises:
        ValueError: ``dt_ms`` is not finite and > 0, or a ``t_ref_ms`` is not finite and >= 0.
    """
    dt = float(_positive("dt_ms", dt_ms))
    t_ref = np.asarray(t_ref_ms, dtype=np.float64)
    bad = ~(np.isfinite(t_ref) & (t_ref >= 0.0))
    if np.any(bad):
        raise ValueError(
            f"t_ref_ms must be finite and >= 0, found {t_ref[bad].ravel()[:5].tolist()}"
        )
    return np.rint(t_ref / dt).astype(np.int64)


@numba.njit(cache=True)
def lif_delta_step(
    v: FloatArray,
    refr: IntArray,
    in_mV: FloatArray,
    i_ext_pA: FloatArray,
    p_mm: FloatArray,
    p_me: FloatArray,
    e_l_mV: FloatArray,
    v_th_mV: FloatArray,
    v_reset_mV: FloatArray,
    t_ref_steps: IntArray,
    spikes_out: IntArray,
) -> int:
    """Advance LIF neurons with delta synapses by one step; return the number of spikes.

    For a neuron that is not refractory::

        V <- E_L + p_mm (V - E_L) + p_me I_ext + in_mV

    then ``V >= V_th`` is a spike (``V <- V_reset``, ``refr <- t_ref_steps``). A refractory
    neuron only has ``refr`` decremented; its ``in_mV`` is discarded. ``v`` (mV) and ``refr``
    (steps) are updated in place; the spiking local indices go to ``spikes_out[:count]``
    (ascending), which must hold at least ``len(v)`` elements.
    """
    count = 0
    for i in range(v.shape[0]):
        if refr[i] > 0:
            refr[i] -= 1
            continue
        v_i = e_l_mV[i] + p_mm[i] * (v[i] - e_l_mV[i]) + p_me[i] * i_ext_pA[i] + in_mV[i]
        if v_i >= v_th_mV[i]:
            v_i = v_reset_mV[i]
            refr[i] = t_ref_steps[i]
            spikes_out[count] = i
            count += 1
        v[i] = v_i
    return count


def lif_delta_step_ref(
    v: FloatArray,
    refr: IntArray,
    in_mV: FloatArray,
    i_ext_pA: FloatArray,
    p_mm: FloatArray,
    p_me: FloatArray,
    e_l_mV: FloatArray,
    v_th_mV: FloatArray,
    v_reset_mV: FloatArray,
    t_ref_steps: IntArray,
    spikes_out: IntArray,
) -> int:
    """Plain-numpy reference of :func:`lif_delta_step` (same signature, same arithmetic)."""
    free = refr == 0
    refr[~free] -= 1
    v[free] = (e_l_mV + p_mm * (v - e_l_mV) + p_me * i_ext_pA + in_mV)[free]
    return _fire_ref(
        v,
        refr,
        free=free,
        v_th_mV=v_th_mV,
        v_reset_mV=v_reset_mV,
        t_ref_steps=t_ref_steps,
        spikes_out=spikes_out,
    )


@numba.njit(cache=True)
def lif_exp_step(
    v: FloatArray,
    i_ex: FloatArray,
    i_in: FloatArray,
    refr: IntArray,
    in_ex_pA: FloatArray,
    in_in_pA: FloatArray,
    i_ext_pA: FloatArray,
    p_mm: FloatArray,
    p_me: FloatArray,
    p_ex: FloatArray,
    p_in: FloatArray,
    p_mex: FloatArray,
    p_min: FloatArray,
    e_l_mV: FloatArray,
    v_th_mV: FloatArray,
    v_reset_mV: FloatArray,
    t_ref_steps: IntArray,
    spikes_out: IntArray,
) -> int:
    """Advance LIF neurons with exponential current synapses by one step; return the spike count.

    In this order (NEST's ``iaf_psc_exp``)::

        V    <- E_L + p_mm (V - E_L) + p_mex I_ex + p_min I_in + p_me I_ext   (if not refractory)
        I_ex <- p_ex I_ex + in_ex_pA
        I_in <- p_in I_in + in_in_pA

    then, for a neuron that was not refractory, ``V >= V_th`` is a spike (``V <- V_reset``,
    ``refr <- t_ref_steps``); a refractory one only has ``refr`` decremented. ``v`` (mV), ``i_ex``
    and ``i_in`` (pA) and ``refr`` (steps) are updated in place; the spiking local indices go to
    ``spikes_out[:count]`` (ascending), which must hold at least ``len(v)`` elements.
    """
    count = 0
    for i in range(v.shape[0]):
        free = refr[i] == 0
        if free:
            v[i] = (
                e_l_mV[i]
                + p_mm[i] * (v[i] - e_l_mV[i])
                + p_mex[i] * i_ex[i]
                + p_min[i] * i_in[i]
                + p_me[i] * i_ext_pA[i]
            )
        else:
            refr[i] -= 1
        i_ex[i] = p_ex[i] * i_ex[i] + in_ex_pA[i]
        i_in[i] = p_in[i] * i_in[i] + in_in_pA[i]
        if free and v[i] >= v_th_mV[i]:
            v[i] = v_reset_mV[i]
            refr[i] = t_ref_steps[i]
            spikes_out[count] = i
            count += 1
    return count


def lif_exp_step_ref(
    v: FloatArray,
    i_ex: FloatArray,
    i_in: FloatArray,
    refr: IntArray,
    in_ex_pA: FloatArray,
    in_in_pA: FloatArray,
    i_ext_pA: FloatArray,
    p_mm: FloatArray,
    p_me: FloatArray,
    p_ex: FloatArray,
    p_in: FloatArray,
    p_mex: FloatArray,
    p_min: FloatArray,
    e_l_mV: FloatArray,
    v_th_mV: FloatArray,
    v_reset_mV: FloatArray,
    t_ref_steps: IntArray,
    spikes_out: IntArray,
) -> int:
    """Plain-numpy reference of :func:`lif_exp_step` (same signature, same arithmetic)."""
    free = refr == 0
    refr[~free] -= 1
    v[free] = (e_l_mV + p_mm * (v - e_l_mV) + p_mex * i_ex + p_min * i_in + p_me * i_ext_pA)[free]
    i_ex[:] = p_ex * i_ex + in_ex_pA
    i_in[:] = p_in * i_in + in_in_pA
    return _fire_ref(
        v,
        refr,
        free=free,
        v_th_mV=v_th_mV,
        v_reset_mV=v_reset_mV,
        t_ref_steps=t_ref_steps,
        spikes_out=spikes_out,
    )


@numba.njit(cache=True)
def lif_alpha_step(
    v: FloatArray,
    i_ex: FloatArray,
    i_in: FloatArray,
    x_ex: FloatArray,
    x_in: FloatArray,
    refr: IntArray,
    in_ex_pA: FloatArray,
    in_in_pA: FloatArray,
    i_ext_pA: FloatArray,
    p_mm: FloatArray,
    p_me: FloatArray,
    e_l_mV: FloatArray,
    v_th_mV: FloatArray,
    v_reset_mV: FloatArray,
    p_ex: FloatArray,
    p_in: FloatArray,
    p_mex: FloatArray,
    p_min: FloatArray,
    p_21ex: FloatArray,
    p_21in: FloatArray,
    p_31ex: FloatArray,
    p_31in: FloatArray,
    psc_ex: FloatArray,
    psc_in: FloatArray,
    t_ref_steps: IntArray,
    spikes_out: IntArray,
) -> int:
    """Advance LIF neurons with alpha current synapses by one step; return the spike count.

    In this order (NEST's ``iaf_psc_alpha``; ``x`` is a current's drive, NEST's ``dI``)::

        V    <- E_L + p_mm (V - E_L) + p_31ex x_ex + p_mex I_ex + p_31in x_in + p_min I_in
                + p_me I_ext                                              (if not refractory)
        I_ex <- p_21ex x_ex + p_ex I_ex;   x_ex <- p_ex x_ex + psc_ex in_ex_pA
        I_in <- p_21in x_in + p_in I_in;   x_in <- p_in x_in + psc_in in_in_pA

    then, for a neuron that was not refractory, ``V >= V_th`` is a spike (``V <- V_reset``,
    ``refr <- t_ref_steps``); a refractory one only has ``refr`` decremented. The parameters
    come in the order of the engine's parameter rows. ``v`` (mV), ``i_ex``/``i_in`` (pA),
    ``x_ex``/``x_in`` (pA/ms) and ``refr`` (steps) are updated in place; the spiking local
    indices go to ``spikes_out[:count]`` (ascending), which must hold at least ``len(v)``
    elements.
    """
    count = 0
    for i in range(v.shape[0]):
        free = refr[i] == 0
        if free:
            v[i] = (
                e_l_mV[i]
                + p_mm[i] * (v[i] - e_l_mV[i])
                + p_31ex[i] * x_ex[i]
                + p_mex[i] * i_ex[i]
                + p_31in[i] * x_in[i]
                + p_min[i] * i_in[i]
                + p_me[i] * i_ext_pA[i]
            )
        else:
            refr[i] -= 1
        i_ex[i] = p_21ex[i] * x_ex[i] + p_ex[i] * i_ex[i]
        x_ex[i] = p_ex[i] * x_ex[i] + psc_ex[i] * in_ex_pA[i]
        i_in[i] = p_21in[i] * x_in[i] + p_in[i] * i_in[i]
        x_in[i] = p_in[i] * x_in[i] + psc_in[i] * in_in_pA[i]
        if free and v[i] >= v_th_mV[i]:
            v[i] = v_reset_mV[i]
            refr[i] = t_ref_steps[i]
            spikes_out[count] = i
            count += 1
    return count


def lif_alpha_step_ref(
    v: FloatArray,
    i_ex: FloatArray,
    i_in: FloatArray,
    x_ex: FloatArray,
    x_in: FloatArray,
    refr: IntArray,
    in_ex_pA: FloatArray,
    in_in_pA: FloatArray,
    i_ext_pA: FloatArray,
    p_mm: FloatArray,
    p_me: FloatArray,
    e_l_mV: FloatArray,
    v_th_mV: FloatArray,
    v_reset_mV: FloatArray,
    p_ex: FloatArray,
    p_in: FloatArray,
    p_mex: FloatArray,
    p_min: FloatArray,
    p_21ex: FloatArray,
    p_21in: FloatArray,
    p_31ex: FloatArray,
    p_31in: FloatArray,
    psc_ex: FloatArray,
    psc_in: FloatArray,
    t_ref_steps: IntArray,
    spikes_out: IntArray,
) -> int:
    """Plain-numpy reference of :func:`lif_alpha_step` (same signature, same arithmetic)."""
    free = refr == 0
    refr[~free] -= 1
    v[free] = (
        e_l_mV
        + p_mm * (v - e_l_mV)
        + p_31ex * x_ex
        + p_mex * i_ex
        + p_31in * x_in
        + p_min * i_in
        + p_me * i_ext_pA
    )[free]
    i_ex[:] = p_21ex * x_ex + p_ex * i_ex
    x_ex[:] = p_ex * x_ex + psc_ex * in_ex_pA
    i_in[:] = p_21in * x_in + p_in * i_in
    x_in[:] = p_in * x_in + psc_in * in_in_pA
    return _fire_ref(
        v,
        refr,
        free=free,
        v_th_mV=v_th_mV,
        v_reset_mV=v_reset_mV,
        t_ref_steps=t_ref_steps,
        spikes_out=spikes_out,
    )


def _fire_ref(
    v: FloatArray,
    refr: IntArray,
    *,
    free: npt.NDArray[np.bool_],
    v_th_mV: FloatArray,
    v_reset_mV: FloatArray,
    t_ref_steps: IntArray,
    spikes_out: IntArray,
) -> int:
    """Threshold check of the numpy references: reset the ``free`` neurons at or above ``V_th``."""
    fired = np.flatnonzero(free & (v >= v_th_mV))
    v[fired] = v_reset_mV[fired]
    refr[fired] = t_ref_steps[fired]
    spikes_out[: fired.size] = fired
    return int(fired.size)
