"""Model declarations: each neuron model and synapse model is declared once, in one module of
this package.

A declaration names the model's parameters with their units, defaults, bounds and meaning, its
state (neuron models: which variables a circuit may set and record), and the kernels that run
it. The circuit schema's fragments, the typed spec, the normalized document, the docs tables and
the memory estimate follow from it (ARCHITECTURE.md, decision 11); tests check the committed
schema, docs and spec against it. An option of a neuron model's choice may be a module of its own
(:mod:`.neuron_lif_alpha`), added to its model here.

This package is pure data: it imports nothing from brainsim and no numba.
"""

from __future__ import annotations

from brainsim.models.base import (
    Choice,
    NeuronModel,
    Option,
    Parameter,
    StateVariable,
    SynapseModel,
    TargetNames,
    Variant,
    docs_table,
    neuron_docs,
    neuron_schemas,
    population_model_schema,
    synapse_schema,
)
from brainsim.models.neuron_izhikevich import IZHIKEVICH
from brainsim.models.neuron_lif import LIF
from brainsim.models.neuron_lif_alpha import ALPHA
from brainsim.models.neuron_parrot import PARROT
from brainsim.models.synapse_static import STATIC
from brainsim.models.synapse_stdp import STDP
from brainsim.models.synapse_stdp_power_law import STDP_POWER_LAW

__all__ = [
    "NEURON_MODELS",
    "STATIC",
    "STDP",
    "STDP_POWER_LAW",
    "SYNAPSE_MODELS",
    "Choice",
    "NeuronModel",
    "Option",
    "Parameter",
    "StateVariable",
    "SynapseModel",
    "TargetNames",
    "Variant",
    "docs_table",
    "neuron_docs",
    "neuron_schemas",
    "population_model_schema",
    "synapse_schema",
]

SYNAPSE_MODELS: dict[str, SynapseModel] = {m.name: m for m in (STATIC, STDP, STDP_POWER_LAW)}
"""Every synapse model by name, in the order the docs list them."""

NEURON_MODELS: dict[str, NeuronModel] = {
    m.name: m for m in (LIF.with_option("synapse", ALPHA), IZHIKEVICH, PARROT)
}
"""Every neuron model by name, with its plug-in options, in the order the docs list them."""
