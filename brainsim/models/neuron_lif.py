"""The leaky integrate-and-fire neuron, current based (NEST's ``iaf_psc_delta`` /
``iaf_psc_exp``), with delta or exponential synapses.

``C_m dV/dt = -(C_m / tau_m) (V - E_L) + I_syn + I_e``; when ``V >= V_th`` the neuron spikes,
``V`` is reset to ``V_reset`` and held there for ``t_ref`` (whole steps). ``synapse: delta``: a
spike of weight ``w`` (mV) makes ``V`` jump by ``w``. ``synapse: exponential``: a spike of weight
``w`` (pA) adds ``w`` to ``I_syn_ex`` (``w > 0``) or ``I_syn_in`` (``w < 0``), each decaying
with its own time constant. Integration is exact (Rotter & Diesmann 1999); the kernels are in
:mod:`brainsim.kernels.lif`. Further synapse options are plug-ins (:mod:`.neuron_lif_alpha`).
Targets: with delta synapses NIR's ``LIF``, with exponential ones NIR's ``CubaLIF``
(docs/targets.md gives the parameter mapping).
"""

from __future__ import annotations

from brainsim.models.base import Choice, NeuronModel, Option, Parameter, StateVariable

__all__ = ["CURRENT_ROWS", "I_SYN_EX", "I_SYN_IN", "LIF", "TAU_SYN_EX", "TAU_SYN_IN"]

TAU_SYN_EX = Parameter(
    "tau_syn_ex_ms", "ms", 2.0, "time constant of the excitatory synaptic current",
    "tau_syn_ex", minimum=0.0, exclusive_minimum=True,
)  # fmt: skip
TAU_SYN_IN = Parameter(
    "tau_syn_in_ms", "ms", 2.0, "time constant of the inhibitory synaptic current",
    "tau_syn_in", minimum=0.0, exclusive_minimum=True,
)  # fmt: skip
I_SYN_EX = StateVariable("i_syn_ex", "pA", "excitatory synaptic current", "0", "i_syn_ex_pA")
I_SYN_IN = StateVariable("i_syn_in", "pA", "inhibitory synaptic current", "0", "i_syn_in_pA")
CURRENT_ROWS = ("p_ex", "p_in", "p_mex", "p_min")
"""Parameter rows of a current synapse: each current's decay over a step and its effect on V
(:class:`brainsim.kernels.lif.LifPropagators`)."""

DELTA = Option(
    "delta",
    "a spike of weight w (mV) makes V jump by w",
    kernel="lif_delta_step",
    nest_model="iaf_psc_delta",
    weight_unit="mV",
    targets=(("nir", "LIF"), ("pynn", "IF_curr_delta")),
)
EXPONENTIAL = Option(
    "exponential",
    "a spike of weight w (pA) adds w to a synaptic current that decays exponentially "
    "(excitatory for w > 0, inhibitory for w < 0)",
    parameters=(TAU_SYN_EX, TAU_SYN_IN),
    state=(I_SYN_EX, I_SYN_IN),
    param_rows=CURRENT_ROWS,
    kernel="lif_exp_step",
    nest_model="iaf_psc_exp",
    weight_unit="pA",
    separates_inhibition=True,
    targets=(("nir", "CubaLIF"), ("pynn", "IF_curr_exp")),
)

LIF = NeuronModel(
    name="lif",
    title="LIF",
    summary="leaky integrate-and-fire, current based (NEST's iaf_psc_* models and defaults)",
    reference="NEST iaf_psc_delta, iaf_psc_exp; Rotter & Diesmann (1999) Biol Cybern 81:381",
    parameters=(
        Parameter(
            "tau_m_ms",
            "ms",
            10.0,
            "membrane time constant",
            "tau_m",
            minimum=0.0,
            exclusive_minimum=True,
        ),
        Parameter(
            "c_m_pF",
            "pF",
            250.0,
            "membrane capacitance",
            "C_m",
            minimum=0.0,
            exclusive_minimum=True,
        ),
        Parameter("v_th_mV", "mV", -55.0, "spike threshold", "V_th"),
        Parameter("v_reset_mV", "mV", -70.0, "reset potential (below `v_th_mV`)", "V_reset"),
        Parameter("e_l_mV", "mV", -70.0, "resting potential", "E_L"),
        Parameter(
            "t_ref_ms",
            "ms",
            2.0,
            "absolute refractory period (rounded to whole steps)",
            "t_ref",
            minimum=0.0,
        ),
        Parameter("i_e_pA", "pA", 0.0, "constant input current", "I_e"),
    ),
    choices=(Choice("synapse", "what an arriving spike does", "delta", (DELTA, EXPONENTIAL)),),
    state=(StateVariable("v", "mV", "membrane potential", "e_l_mV", "v_mV"),),
    param_rows=("p_mm", "p_me", "e_l_mV", "v_th_mV", "v_reset_mV"),
    below=(("v_reset_mV", "v_th_mV"),),
)
"""The LIF model with its built-in synapse options; :data:`brainsim.models.NEURON_MODELS` adds
the plug-in ones."""
