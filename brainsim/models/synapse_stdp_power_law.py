"""Power-law STDP: NEST's ``stdp_pl_synapse_hom`` (Morrison, Aertsen & Diesmann 2007).

The same all-to-all pairing, traces and dendritic delay as :mod:`.synapse_stdp`, with absolute
weights (mV or pA, never negative) and no upper bound:

1. facilitation per post spike in the window: ``w <- w + lambda w^mu k``;
2. depression at the pre spike: ``w <- max(0, w - alpha lambda w K-(t - d))``.

This is the plasticity of NEST's ``hpc_benchmark``. Its parameters are homogeneous (one value per
projection), as NEST's ``_hom`` models are.
"""

from __future__ import annotations

from collections.abc import Mapping

from brainsim.models.base import Parameter, SynapseModel
from brainsim.models.synapse_stdp import TAU_MINUS, TAU_PLUS

__all__ = ["STDP_POWER_LAW"]


def _check_weights(
    params: Mapping[str, float], weights: tuple[float, float]
) -> list[tuple[str, str]]:
    """Power-law weights must not be negative (``w^mu`` needs ``w >= 0``)."""
    del params
    lowest = weights[0]
    if lowest < 0.0:
        return [("weight", f"must be >= 0 for stdp_power_law (w^mu), got {lowest:g}")]
    return []


STDP_POWER_LAW = SynapseModel(
    name="stdp_power_law",
    summary="power-law STDP, NEST's stdp_pl_synapse_hom (Morrison et al. 2007)",
    kernel="stdp_power_law",
    nest_model="stdp_pl_synapse_hom",
    parameters=(
        TAU_PLUS,
        TAU_MINUS,
        Parameter("lambda", "1", 0.1, "learning rate", "lambda", minimum=0.0),
        Parameter(
            "alpha", "1", 1.0, "ratio of depression to potentiation step", "alpha", minimum=0.0
        ),
        Parameter(
            "mu",
            "1",
            0.4,
            "exponent of the weight dependence of potentiation",
            "mu",
            minimum=0.0,
            kernel_name="mu_plus",
        ),
    ),
    equations=__doc__ or "",
    reference="NEST stdp_pl_synapse_hom; Morrison, Aertsen & Diesmann (2007) Neural Comput 19:1437",
    plastic=True,
    check_weights=_check_weights,
)
