"""The parrot neuron (NEST's ``parrot_neuron``): it repeats the spikes it receives.

A parrot neuron fires in step ``k`` (its spike stamped ``(k + 1) dt``, like every neuron's) when
the summed weight of the spikes arriving in that step is ``> 0``, and at most once per step.
With positive weights and at most one arriving spike per step it repeats its input exactly,
delayed by the input's delay: what NEST's ``parrot_neuron`` does. It lets a stimulus (Poisson,
spike trains, data encoders) drive a population, whose outgoing projections may then be
plastic. NEST's parrot ignores weights and repeats ``n`` spikes arriving in one step as one
spike of multiplicity ``n``; brainsim has no multiplicity, so ``n`` spikes give one spike, and
the weights decide whether it fires at all. A parrot has no membrane: no parameters, no state,
no refractoriness, and it takes no current (validation refuses DC and noise stimuli on it, as
NEST refuses to connect current generators to it). The kernel is
:func:`brainsim.kernels.parrot.parrot_step`. Targets: a parrot population that only stimuli
drive is NIR's ``Input`` (its stimuli are the graph's input data, not part of the graph).
"""

from __future__ import annotations

from brainsim.models.base import NeuronModel

__all__ = ["PARROT"]

PARROT = NeuronModel(
    name="parrot",
    title="Parrot",
    summary="repeats the spikes it receives (NEST's parrot_neuron), so that stimuli can drive "
    "plastic projections",
    reference="NEST parrot_neuron",
    parameters=(),
    choices=(),
    state=(),
    kernel="parrot_step",
    nest_model="parrot_neuron",
    weight_unit="1",
    targets=(("nir", "Input"),),
)
"""The parrot model: no parameters, no state; a spike's weight only decides by its sign."""
