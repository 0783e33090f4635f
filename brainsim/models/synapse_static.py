"""The static synapse: a fixed weight and delay (NEST's ``static_synapse``)."""

from __future__ import annotations

from brainsim.models.base import SynapseModel

__all__ = ["STATIC"]

STATIC = SynapseModel(
    name="static",
    summary="a fixed weight (the default)",
    kernel="static",
    nest_model="static_synapse",
    parameters=(),
    equations="w(t) = w(0)",
    reference="NEST static_synapse",
    plastic=False,
    targets=(("nir", "Linear"), ("pynn", "StaticSynapse")),
)
