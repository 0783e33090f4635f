"""The Izhikevich (2003) neuron, with the paper's integration scheme or forward Euler.

``dv/dt = 0.04 v^2 + 5 v + 140 - u + I``, ``du/dt = a (b v - u)``; when ``v >= v_peak``:
``v <- c``, ``u <- u + d`` (Izhikevich 2003, IEEE TNN 14:1569; ``v`` in mV, ``t`` in ms, ``u``
and ``I`` in the model's current units, called pA as in NEST's ``izhikevich``). The kernel is
:func:`brainsim.kernels.izhikevich.izhikevich_step`; the choices set its flags.
"""

from __future__ import annotations

from brainsim.models.base import Choice, NeuronModel, Option, Parameter, StateVariable

__all__ = ["IZHIKEVICH"]

IZHIKEVICH = NeuronModel(
    name="izhikevich",
    title="Izhikevich",
    summary="Izhikevich (2003) neuron",
    reference="Izhikevich (2003) IEEE Trans Neural Netw 14:1569; NEST izhikevich",
    parameters=(
        Parameter("a", "1/ms", 0.02, "recovery time scale", "a"),
        Parameter("b", "pA/mV", 0.2, "recovery sensitivity to v", "b"),
        Parameter("c_mV", "mV", -65.0, "reset potential (below `v_peak_mV`)", "c"),
        Parameter("d", "pA", 8.0, "recovery increment after a spike", "d"),
        Parameter("v_peak_mV", "mV", 30.0, "spike cutoff", "V_th"),
        Parameter("i_e_pA", "pA", 0.0, "constant input current", "I_e"),
    ),
    choices=(
        Choice(
            "integration",
            "the integration scheme",
            "published_2003",
            (
                Option(
                    "published_2003",
                    "v in two half steps of dt/2, then u with the new v (the paper's scheme)",
                ),
                Option("euler", "forward Euler"),
            ),
        ),
        Choice(
            "synapse",
            "what an arriving spike does",
            "current_pulse",
            (
                Option(
                    "current_pulse",
                    "the weight is added to I in the step the spike arrives (the 2003 network)",
                    weight_unit="pA",
                ),
                Option(
                    "delta", "the weight (mV) is added to v (NEST's izhikevich)", weight_unit="mV"
                ),
            ),
        ),
    ),
    state=(
        StateVariable("v", "mV", "membrane potential", "c_mV", "v_mV"),
        StateVariable(
            "u",
            "pA",
            "recovery variable (as in the paper's code and NEST's U_m = b * V_m)",
            "b * v",
            "u",
        ),
    ),
    param_rows=("a", "b", "c_mV", "d", "v_peak_mV"),
    kernel="izhikevich_step",
    nest_model="izhikevich",
    targets=(("pynn", "Izhikevich"),),
    below=(("c_mV", "v_peak_mV"),),
)
"""The Izhikevich model."""
