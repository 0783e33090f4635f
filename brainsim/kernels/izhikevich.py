"""Advance Izhikevich (2003) neurons by one step, with the paper's scheme or forward Euler.

Model (Izhikevich, IEEE Trans. Neural Netw. 14:1569, 2003; ``v`` in mV, ``t`` in ms, ``u`` and
``I`` in the model's current units, called pA here as in NEST's ``izhikevich``)::

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I
    du/dt = a (b v - u)
    if v >= v_peak:  v <- c,  u <- u + d

Two integration schemes, chosen per call with ``published_2003``:

* ``True``, the scheme of the paper's code: ``v`` takes two Euler half steps of ``h = dt / 2``
  (the paper's "for numerical stability"), then ``u`` one Euler step of ``dt`` using the new
  ``v``. With ``dt = 1 ms`` this is the paper's code operation for operation.
* ``False``: forward Euler, ``v`` and ``u`` both advanced from their values at the step start.

Conventions (the same as :mod:`brainsim.kernels.lif`):

* Step ``k`` advances the state from ``t_k = k dt`` to ``t_{k+1}``; the current is
  ``I = i_ext_pA + in_pA`` for the whole step (``in_pA``: summed current-pulse synaptic input of
  the spikes arriving in step ``k``, the 2003 network's synapse). ``in_mV`` (delta synapses,
  NEST's ``izhikevich``) is added to ``v`` after the integration.
* The threshold is checked at the end of the step: a neuron at or above ``v_peak`` spikes at
  ``t_{k+1} = (k + 1) dt`` and is reset at once. The paper's code checks at the start of the next
  step instead; the sequence of operations is the same, so the trajectories agree bit for bit,
  but the stored ``v`` at ``t_{k+1}`` is ``c`` here rather than the overshoot, and the paper's
  code labels the spike with its 1-based loop index, ``dt`` later than the stamp used here.
* The kernel writes the local indices of the spiking neurons into ``spikes_out`` in ascending
  order and returns their number.

The kernel is a numba function over struct-of-arrays state (per-neuron parameters), updates its
arguments in place and allocates nothing; :func:`izhikevich_step_ref` is a plain-numpy reference
with the same signature and the same floating-point operations in the same order.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["izhikevich_step", "izhikevich_step_ref"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@numba.njit(cache=True)
def izhikevich_step(
    v: FloatArray,
    u: FloatArray,
    in_pA: FloatArray,
    in_mV: FloatArray,
    i_ext_pA: FloatArray,
    a: FloatArray,
    b: FloatArray,
    c_mV: FloatArray,
    d: FloatArray,
    v_peak_mV: FloatArray,
    dt_ms: float,
    published_2003: bool,
    spikes_out: IntArray,
) -> int:
    """Advance Izhikevich neurons by one step of ``dt_ms``; return the number of spikes.

    With ``f(v, u) = 0.04 v^2 + 5 v + 140 - u + I`` and ``I = i_ext_pA + in_pA``::

        published_2003:  v <- v + dt/2 f(v, u);  v <- v + dt/2 f(v, u);  u <- u + dt a (b v - u)
        Euler:           v, u <- v + dt f(v, u),  u + dt a (b v - u)     (both from the old v, u)

    then ``v <- v + in_mV`` and ``v >= v_peak`` is a spike (``v <- c``, ``u <- u + d``). ``v`` and
    ``u`` are updated in place; the spiking local indices go to ``spikes_out[:count]``
    (ascending), which must hold at least ``len(v)`` elements.
    """
    half_dt = 0.5 * dt_ms
    count = 0
    for i in range(v.shape[0]):
        current = i_ext_pA[i] + in_pA[i]
        v_i = v[i]
        u_i = u[i]
        if published_2003:
            v_i = v_i + half_dt * (0.04 * (v_i * v_i) + 5.0 * v_i + 140.0 - u_i + current)
            v_i = v_i + half_dt * (0.04 * (v_i * v_i) + 5.0 * v_i + 140.0 - u_i + current)
            u_i = u_i + dt_ms * (a[i] * (b[i] * v_i - u_i))
        else:
            dv = 0.04 * (v_i * v_i) + 5.0 * v_i + 140.0 - u_i + current
            u_i = u_i + dt_ms * (a[i] * (b[i] * v_i - u_i))
            v_i = v_i + dt_ms * dv
        v_i = v_i + in_mV[i]
        if v_i >= v_peak_mV[i]:
            v_i = c_mV[i]
            u_i = u_i + d[i]
            spikes_out[count] = i
            count += 1
        v[i] = v_i
        u[i] = u_i
    return count


def izhikevich_step_ref(
    v: FloatArray,
    u: FloatArray,
    in_pA: FloatArray,
    in_mV: FloatArray,
    i_ext_pA: FloatArray,
    a: FloatArray,
    b: FloatArray,
    c_mV: FloatArray,
    d: FloatArray,
    v_peak_mV: FloatArray,
    dt_ms: float,
    published_2003: bool,
    spikes_out: IntArray,
) -> int:
    """Plain-numpy reference of :func:`izhikevich_step` (same signature, same arithmetic)."""
    half_dt = 0.5 * dt_ms
    current = i_ext_pA + in_pA
    if published_2003:
        v[:] = v + half_dt * (0.04 * (v * v) + 5.0 * v + 140.0 - u + current)
        v[:] = v + half_dt * (0.04 * (v * v) + 5.0 * v + 140.0 - u + current)
        u[:] = u + dt_ms * (a * (b * v - u))
    else:
        dv = 0.04 * (v * v) + 5.0 * v + 140.0 - u + current
        u[:] = u + dt_ms * (a * (b * v - u))
        v[:] = v + dt_ms * dv
    v[:] = v + in_mV
    fired = np.flatnonzero(v >= v_peak_mV)
    v[fired] = c_mV[fired]
    u[fired] = u[fired] + d[fired]
    spikes_out[: fired.size] = fired
    return int(fired.size)
