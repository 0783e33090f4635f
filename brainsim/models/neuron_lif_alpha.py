"""``lif`` with ``synapse: alpha``: NEST's ``iaf_psc_alpha``, alpha-shaped synaptic currents.

A spike of weight ``w`` (pA) arriving at ``t = 0`` adds the current
``I(t) = w e / tau_syn t exp(-t / tau_syn)``, which peaks at ``w`` when ``t = tau_syn``;
``w > 0`` goes to the excitatory current (``tau_syn_ex_ms``), ``w < 0`` to the inhibitory one
(``tau_syn_in_ms``). Each current has a drive ``x`` (NEST's ``dI``):
``dI/dt = x - I / tau_syn``, ``dx/dt = -x / tau_syn``, and a spike adds ``w e / tau_syn`` to
``x``. The membrane, threshold and refractoriness are LIF's
(:mod:`.neuron_lif`); integration is exact (Rotter & Diesmann 1999), including
``tau_m == tau_syn`` (kernel: :func:`brainsim.kernels.lif.lif_alpha_step`).
"""

from __future__ import annotations

from brainsim.models.base import Option, StateVariable
from brainsim.models.neuron_lif import (
    CURRENT_ROWS,
    I_SYN_EX,
    I_SYN_IN,
    TAU_SYN_EX,
    TAU_SYN_IN,
)

__all__ = ["ALPHA"]

ALPHA = Option(
    "alpha",
    "a spike of weight w (pA) adds an alpha-shaped current w e/tau_syn t exp(-t/tau_syn), "
    "peaking at w after tau_syn (excitatory for w > 0, inhibitory for w < 0)",
    parameters=(TAU_SYN_EX, TAU_SYN_IN),
    state=(
        I_SYN_EX,
        I_SYN_IN,
        StateVariable(
            "di_syn_ex",
            "pA/ms",
            "drive of the excitatory current (dI/dt = this - I / tau_syn)",
            "0",
            recordable=False,
        ),
        StateVariable(
            "di_syn_in",
            "pA/ms",
            "drive of the inhibitory current (dI/dt = this - I / tau_syn)",
            "0",
            recordable=False,
        ),
    ),
    param_rows=(*CURRENT_ROWS, "p_21ex", "p_21in", "p_31ex", "p_31in", "psc_ex", "psc_in"),
    kernel="lif_alpha_step",
    nest_model="iaf_psc_alpha",
    weight_unit="pA",
    separates_inhibition=True,
    targets=(("pynn", "IF_curr_alpha"),),
)
"""The ``alpha`` option of ``lif``'s ``synapse`` choice."""
