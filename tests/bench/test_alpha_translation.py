"""``lif`` with ``synapse: alpha`` in the generated scripts: NEST's ``iaf_psc_alpha`` and Brian2
alpha currents (a drive ``x`` that each spike raises by ``e w``)."""

from __future__ import annotations

import math

import pytest

from bench.brian2_script import brian2_script
from bench.translate_common import UnsupportedCircuitError
from brainsim.circuit import Circuit
from tests.bench.test_nest_script import _changed
from tests.bench.test_nest_script import _script as nest_text


@pytest.fixture(scope="module")
def alpha(microcircuit: Circuit) -> Circuit:
    """The microcircuit at scale 0.01 with alpha synapses onto L23E (others exponential)."""
    return _changed(microcircuit, {"populations.L23E.params.synapse": "alpha"})


def test_nest_creates_iaf_psc_alpha_with_its_time_constants(alpha: Circuit) -> None:
    text = nest_text(alpha)
    assert 'nest.Create("iaf_psc_alpha", 207,' in text
    assert 'nest.Create("iaf_psc_exp", 58,' in text
    line = next(line for line in text.splitlines() if '"iaf_psc_alpha", 207' in line)
    assert '"tau_syn_ex": 0.5' in line
    assert '"tau_syn_in": 0.5' in line


def test_nest_refuses_an_initial_alpha_current(alpha: Circuit) -> None:
    changed = _changed(alpha, {"populations.L23E.initial": {"i_syn_in_pA": -5.0}})
    with pytest.raises(UnsupportedCircuitError, match="iaf_psc_alpha cannot start"):
        nest_text(changed)


def test_brian2_alpha_currents_and_their_input(alpha: Circuit) -> None:
    text = brian2_script(alpha, "circuit.yaml")
    assert (
        "dI_syn_ex/dt = (x_syn_ex - I_syn_ex) / (0.5 * ms) : amp\\n"
        "dx_syn_ex/dt = -x_syn_ex / (0.5 * ms) : amp\\n"
        "dI_syn_in/dt = (x_syn_in - I_syn_in) / (0.5 * ms) : amp\\n"
        "dx_syn_in/dt = -x_syn_in / (0.5 * ms) : amp"
    ) in text
    e = repr(math.e)
    assert f"groups['L23E'], 'w : amp (constant)', on_pre='x_syn_ex_post += w * {e}'" in text
    assert f"on_pre='x_syn_in_post += w * {e}'" in text
    assert "b2.PoissonInput(groups['L23E'], 'x_syn_ex', " in text
    assert f"weight='87.8 * pA * {e}'" in text
    # the other populations keep exponential currents
    assert "b2.PoissonInput(groups['L23I'], 'I_syn_ex', " in text
