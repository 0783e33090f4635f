"""Pair-based STDP with exponential windows and weight dependence: NEST's ``stdp_synapse``.

All-to-all pairing (Morrison, Diesmann & Gerstner 2008; Guetig et al. 2003 for the weight
dependence) with the whole delay ``d`` dendritic: a postsynaptic spike at ``t_post`` reaches the
synapse at ``t_post + d``; a presynaptic spike at ``t`` acts at once. With the presynaptic trace
``K+`` (+1 per pre spike, decay ``tau_plus_ms``) and the postsynaptic trace ``K-`` (+1 per post
spike, decay ``tau_minus_ms``), at each pre spike ``t`` (previous one ``t_last``), in this order:

1. for each post spike with ``t_last - d < t_post <= t - d``, in time order, facilitation with
   ``k = K+(t_last) exp(-(t_post + d - t_last) / tau_plus)``:
   ``w/w_max <- min(1, w/w_max + lambda (1 - w/w_max)^mu_plus k)``;
2. depression with ``k = K-(t - d)`` (post spikes strictly before ``t - d``):
   ``w/w_max <- max(0, w/w_max - alpha lambda (w/w_max)^mu_minus k)``;
3. the spike is transmitted with the new weight, then ``K+ <- K+ exp(-(t - t_last)/tau_plus) + 1``.

``mu_plus = mu_minus = 0`` is additive STDP, ``1`` multiplicative, in between Guetig's rule.
Weights stay in ``[0, w_max]`` (``[w_max, 0]`` for a negative ``w_max``: inhibitory synapses).
"""

from __future__ import annotations

from collections.abc import Mapping

from brainsim.models.base import Parameter, SynapseModel

__all__ = ["STDP", "TAU_MINUS", "TAU_PLUS"]

TAU_PLUS = Parameter(
    "tau_plus_ms", "ms", 20.0, "time constant of the presynaptic trace (potentiation window)",
    "tau_plus", minimum=0.0, exclusive_minimum=True,
)  # fmt: skip
TAU_MINUS = Parameter(
    "tau_minus_ms", "ms", 20.0,
    "time constant of the postsynaptic trace (depression window); NEST sets it on the neuron",
    "tau_minus", minimum=0.0, exclusive_minimum=True,
)  # fmt: skip


def _check_weights(
    params: Mapping[str, float], weights: tuple[float, float]
) -> list[tuple[str, str]]:
    """Initial weights must lie between 0 and ``w_max`` (same sign)."""
    w_max = params["w_max"]
    if w_max == 0.0:
        return [("w_max", "must not be 0 (weights are kept between 0 and w_max)")]
    low, high = (0.0, w_max) if w_max > 0 else (w_max, 0.0)
    lowest, highest = weights
    if lowest < low or highest > high:
        found = f"{lowest:g}" if lowest == highest else f"draws in [{lowest:g}, {highest:g}]"
        return [
            (
                "weight",
                f"must lie in [{low:g}, {high:g}] (between 0 and synapse.w_max = {w_max:g}, "
                f"same sign), got {found}; bound a distribution with low/high",
            )
        ]
    return []


STDP = SynapseModel(
    name="stdp",
    summary="pair-based STDP with weight dependence, NEST's stdp_synapse",
    kernel="stdp",
    nest_model="stdp_synapse",
    targets=(("pynn", "STDPMechanism"),),
    parameters=(
        TAU_PLUS,
        TAU_MINUS,
        Parameter(
            "lambda",
            "1",
            0.01,
            "learning rate (step size, relative to w_max)",
            "lambda",
            minimum=0.0,
        ),
        Parameter(
            "alpha", "1", 1.0, "ratio of depression to potentiation step", "alpha", minimum=0.0
        ),
        Parameter(
            "mu_plus",
            "1",
            1.0,
            "weight dependence exponent of potentiation (0 additive, 1 multiplicative)",
            "mu_plus",
            minimum=0.0,
        ),
        Parameter(
            "mu_minus",
            "1",
            1.0,
            "weight dependence exponent of depression (0 additive, 1 multiplicative)",
            "mu_minus",
            minimum=0.0,
        ),
        Parameter(
            "w_max",
            "weight",
            100.0,
            "largest weight (mV or pA, as the weight); negative for inhibitory synapses",
            "Wmax",
        ),
    ),
    equations=__doc__ or "",
    reference="NEST stdp_synapse; Guetig et al. (2003) J Neurosci 23:3697",
    plastic=True,
    check_weights=_check_weights,
)
