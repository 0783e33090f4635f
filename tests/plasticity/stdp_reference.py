"""Event-driven reference of NEST's pair-based STDP rules, computed from spike times alone.

Independent of NEST and of brainsim's engine (plain Python floats, no numpy, no numba), so that
both can be checked against it. Two rules, named after the NEST models they reproduce:

- ``"stdp"``: ``stdp_synapse`` (Gütig et al. 2003 weight dependence, per-connection parameters);
- ``"stdp_pl"``: ``stdp_pl_synapse_hom`` (Morrison et al. 2007 power law, parameters shared).

Time convention. The whole delay ``d`` (``delay_ms``) is dendritic: a presynaptic spike at ``t``
updates the weight at ``t`` (the update is what it delivers), and a postsynaptic spike at
``t_post`` reaches the synapse at ``t_post + d``. Spike times are those at which the pre and post
neurons fire (in NEST, the parrots' spike times, not the spike generators').

Traces. The presynaptic trace ``K+`` jumps by 1 at each pre spike and decays with ``tau_plus``
(only its value just after the previous pre spike, ``K+_last``, is stored). The postsynaptic trace
``K-`` jumps by 1 at each post spike and decays with ``tau_minus`` (the post neuron's parameter)::

    K-_i = K-_{i-1} * exp(-(t_i - t_{i-1}) / tau_minus) + 1        (K-_0 = 1)

State before the first pre spike: ``K+_last = 0``, ``t_last = 0`` (NEST starts each synapse with
its last spike at time 0).

At each pre spike ``t`` (pre and post spikes in time order; equal times are allowed and count as
separate spikes, as NEST's spike multiplicity does):

1. Facilitation, once per post spike in the window ``t_last - d < t_post <= t - d``, in order::

       w <- f(w, K+_last * exp(-(t_post + d - t_last) / tau_plus))

2. Depression with ``K-`` just before ``t - d``: the latest post spike ``i`` with
   ``t_i < t - d`` gives ``K-(t - d) = K-_i * exp(-(t - d - t_i) / tau_minus)``, none gives 0::

       w <- g(w, K-(t - d))

3. ``w`` is the weight this pre spike transmits (and the weight_recorder logs); then
   ``K+_last <- K+_last * exp(-(t - t_last) / tau_plus) + 1`` and ``t_last <- t``.

So a post spike exactly at ``t - d`` facilitates at this pre spike and is not in its ``K-``; one
exactly at ``t_last - d`` belongs to the previous pre spike's window, not to this one. As in NEST,
"exactly" means within ``STDP_EPS_MS`` (1e-6 ms): the window is
``t_last - d + eps <= t_post < t - d + eps`` and "strictly before" is ``t - d - t_i > eps``.

Weight dependence, ``f`` facilitation and ``g`` depression:

- ``stdp``, with ``u = w / Wmax``::

      f(w, K) = Wmax * min(1, u + lambda * (1 - u)**mu_plus * K)
      g(w, K) = Wmax * max(0, u - alpha * lambda * u**mu_minus * K)

  ``mu_plus = mu_minus = 0`` is additive, ``= 1`` multiplicative.
- ``stdp_pl``::

      f(w, K) = w + lambda * w**mu * K
      g(w, K) = max(0, w - lambda * alpha * w * K)

  (no upper bound; depression is always multiplicative).

Defaults (NEST 3.10's, in :data:`DEFAULTS`): ``stdp`` tau_plus 20 ms, lambda 0.01, alpha 1,
mu_plus 1, mu_minus 1, Wmax 100; ``stdp_pl`` tau_plus 20 ms, lambda 0.1, alpha 1, mu 0.4; and
``tau_minus`` 20 ms (:data:`TAU_MINUS_DEFAULT_MS`). The floating-point operations follow NEST's
order (``stdp_pl`` multiplies by ``1/tau`` where ``stdp`` divides by ``tau``) so that both agree
to rounding.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "DEFAULTS",
    "NEST_MODELS",
    "STDP_EPS_MS",
    "TAU_MINUS_DEFAULT_MS",
    "post_traces",
    "stdp_weights",
]

STDP_EPS_MS = 1.0e-6
"""Two times closer than this are equal (NEST's ``stdp_eps``, not settable from PyNEST 3.10)."""

TAU_MINUS_DEFAULT_MS = 20.0
"""NEST's default ``tau_minus`` of every archiving neuron (the parrot's included)."""

NEST_MODELS: dict[str, str] = {"stdp": "stdp_synapse", "stdp_pl": "stdp_pl_synapse_hom"}
"""Rule name -> the NEST synapse model it reproduces."""

DEFAULTS: dict[str, dict[str, float]] = {
    "stdp": {
        "tau_plus": 20.0,
        "lambda": 0.01,
        "alpha": 1.0,
        "mu_plus": 1.0,
        "mu_minus": 1.0,
        "Wmax": 100.0,
    },
    "stdp_pl": {"tau_plus": 20.0, "lambda": 0.1, "alpha": 1.0, "mu": 0.4},
}
"""Rule name -> parameter defaults, under NEST's parameter names."""

_Update = Callable[[float, float], float]


def _stdp_updates(p: Mapping[str, float]) -> tuple[_Update, _Update, Callable[[float], float]]:
    """Facilitation, depression and the K+ decay factor of a time difference, for ``stdp``."""
    w_max, lam, alpha = p["Wmax"], p["lambda"], p["alpha"]
    mu_plus, mu_minus, tau_plus = p["mu_plus"], p["mu_minus"], p["tau_plus"]

    def facilitate(w: float, k_plus: float) -> float:
        norm_w = (w / w_max) + (lam * math.pow(1.0 - (w / w_max), mu_plus) * k_plus)
        return norm_w * w_max if norm_w < 1.0 else w_max

    def depress(w: float, k_minus: float) -> float:
        norm_w = (w / w_max) - (alpha * lam * math.pow(w / w_max, mu_minus) * k_minus)
        return norm_w * w_max if norm_w > 0.0 else 0.0

    def decay(minus_dt: float) -> float:
        return math.exp(minus_dt / tau_plus)

    return facilitate, depress, decay


def _stdp_pl_updates(p: Mapping[str, float]) -> tuple[_Update, _Update, Callable[[float], float]]:
    """Facilitation, depression and the K+ decay factor of a time difference, for ``stdp_pl``."""
    lam, alpha, mu = p["lambda"], p["alpha"], p["mu"]
    tau_plus_inv = 1.0 / p["tau_plus"]

    def facilitate(w: float, k_plus: float) -> float:
        return w + (lam * math.pow(w, mu) * k_plus)

    def depress(w: float, k_minus: float) -> float:
        new_w = w - (lam * alpha * w * k_minus)
        return new_w if new_w > 0.0 else 0.0

    def decay(minus_dt: float) -> float:
        return math.exp(minus_dt * tau_plus_inv)

    return facilitate, depress, decay


_RULES = {"stdp": _stdp_updates, "stdp_pl": _stdp_pl_updates}


def _checked_times(name: str, times: Sequence[float]) -> list[float]:
    """The times as floats; ValueError unless they are in non-decreasing order."""
    values = [float(t) for t in times]
    for index in range(1, len(values)):
        if values[index] < values[index - 1]:
            raise ValueError(
                f"{name}[{index}]: spike times must not decrease, found "
                f"{values[index]} after {values[index - 1]}"
            )
    return values


def post_traces(post_ms: Sequence[float], tau_minus_ms: float) -> list[float]:
    """``K-`` just after each post spike (the value that includes that spike).

    Starts from NEST's state: trace 0 and a last spike at -1 ms (irrelevant while the trace is 0).
    """
    tau_minus_inv = 1.0 / tau_minus_ms
    traces: list[float] = []
    k_minus, last_ms = 0.0, -1.0
    for t_ms in post_ms:
        k_minus = k_minus * math.exp((last_ms - t_ms) * tau_minus_inv) + 1.0
        last_ms = t_ms
        traces.append(k_minus)
    return traces


def stdp_weights(
    pre_ms: Sequence[float],
    post_ms: Sequence[float],
    delay_ms: float,
    weight: float,
    rule: str,
    params: Mapping[str, float] | None = None,
    tau_minus_ms: float = TAU_MINUS_DEFAULT_MS,
) -> list[float]:
    """The weight right after each pre spike's update, under ``rule`` (see the module docstring).

    ``params`` uses NEST's names and overrides :data:`DEFAULTS`; an unknown name is a ValueError
    (a misspelt parameter would otherwise silently keep its default).
    """
    if rule not in _RULES:
        raise ValueError(f"rule must be one of {sorted(_RULES)}, found {rule!r}")
    unknown = sorted(set(params or {}) - set(DEFAULTS[rule]))
    if unknown:
        raise ValueError(f"unknown {rule} parameters {unknown}; known: {sorted(DEFAULTS[rule])}")
    merged = {**DEFAULTS[rule], **{key: float(value) for key, value in (params or {}).items()}}
    facilitate, depress, decay = _RULES[rule](merged)

    pres = _checked_times("pre_ms", pre_ms)
    posts = _checked_times("post_ms", post_ms)
    k_minus_after = post_traces(posts, tau_minus_ms)
    tau_minus_inv = 1.0 / tau_minus_ms
    delay = float(delay_ms)

    w = float(weight)
    k_plus, t_last = 0.0, 0.0
    weights: list[float] = []
    for t in pres:
        first = bisect.bisect_left(posts, (t_last - delay) + STDP_EPS_MS)
        end = bisect.bisect_left(posts, (t - delay) + STDP_EPS_MS)
        for t_post in posts[first:end]:
            w = facilitate(w, k_plus * decay(t_last - (t_post + delay)))

        # Only the post spikes that share the window's end can fail "strictly before t - d".
        t_arrival = t - delay
        latest = end - 1
        while latest >= 0 and not t_arrival - posts[latest] > STDP_EPS_MS:
            latest -= 1
        k_minus = (
            k_minus_after[latest] * math.exp((posts[latest] - t_arrival) * tau_minus_inv)
            if latest >= 0
            else 0.0
        )
        w = depress(w, k_minus)

        weights.append(w)
        k_plus = k_plus * decay(t_last - t) + 1.0
        t_last = t
    return weights
