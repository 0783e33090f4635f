"""Per-neuron values as NumPy code, expressions, signs, and the embedded draw helper."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from bench.script_runtime import RESULT_MARKER, draw, emit_result
from bench.translate_common import (
    RUNTIME_SOURCE,
    NeuronValues,
    expression_to_numpy,
    neuron_values,
    selection_slice,
    sign_of,
)
from brainsim.circuit import Circuit, parse_circuit
from brainsim.circuit.spec import Expr, LogNormal, NodeSelection, Normal, Population, Uniform


def test_expression_becomes_numpy_over_the_variable_dict() -> None:
    code = expression_to_numpy(Expr("-65 + 15 * r**2", ("r",)), "rv")
    assert code == "-65 + 15 * rv['r'] ** 2"
    r = np.array([0.0, 0.5, 1.0])
    assert np.allclose(eval(code, {"np": np}, {"rv": {"r": r}}), -65 + 15 * r**2)


def test_functions_and_variadic_min_max_translate() -> None:
    code = expression_to_numpy(Expr("max(1, r, 2 * exp(s)) + round(sqrt(abs(r)))", ("r", "s")), "v")
    r, s = np.array([-4.0, 0.25]), np.array([-3.0, 0.5])
    expected = np.maximum(np.maximum(1, r), 2 * np.exp(s)) + np.round(np.sqrt(np.abs(r)))
    assert np.allclose(eval(code, {"np": np}, {"v": {"r": r, "s": s}}), expected)


@pytest.mark.parametrize(
    ("value", "sign"),
    [
        (0.1, 1),
        (-0.5, -1),
        (Uniform(0.0, 0.5), 1),
        (Uniform(-1.0, 0.0), -1),
        (Uniform(-1.0, 1.0), 0),
        (Normal(87.8, 8.78, low=0.0), 1),
        (Normal(-351.2, 35.1, high=0.0), -1),
        (Normal(1.0, 1.0), 0),
        (LogNormal(0.0, 1.0), 1),
    ],
)
def test_sign_of_weights(value: float | Uniform | Normal | LogNormal, sign: int) -> None:
    assert sign_of(value) == sign


def test_izhikevich_neuron_values_share_one_random_variable(izhikevich: Circuit) -> None:
    values = neuron_values(izhikevich.populations["excitatory"], "vals", "rv")
    assert values.varying == {"c_mV", "d"}
    assert values.code["a"] == "0.02"
    assert values.code["u"] == "-13.0"
    namespace: dict[str, Any] = {
        "np": np,
        "draw": draw,
        "rng": np.random.default_rng(1),
        "rv": {},
        "vals": {},
    }
    exec("\n".join(values.lines), namespace)
    c, d = namespace["vals"]["c_mV"], namespace["vals"]["d"]
    assert c.shape == (800,)
    assert c.min() >= -65.0
    assert c.max() < -50.0
    # Both come from the same r: c = -65 + 15 r^2 and d = 8 - 6 r^2.
    assert np.allclose(d, 8 - 6 * (c + 65) / 15)


def _with_initial(circuit: Circuit, population: str, initial: dict[str, Any]) -> Population:
    document = copy.deepcopy(dict(circuit.document))
    document["populations"][population]["initial"] = initial
    return parse_circuit(document).populations[population]


def _arrays(values: NeuronValues, seed: int) -> dict[str, Any]:
    """The ``vals`` dict after running ``values.lines`` as a generated script would."""
    namespace: dict[str, Any] = {
        "np": np,
        "draw": draw,
        "rng": np.random.default_rng(seed),
        "rv": {},
        "vals": {},
    }
    exec("\n".join(values.lines), namespace)
    vals: dict[str, Any] = namespace["vals"]
    return vals


def test_explicit_initial_u_is_kept(izhikevich: Circuit) -> None:
    values = neuron_values(izhikevich.populations["inhibitory"], "vals", "rv")
    assert "u" in values.varying
    vals = _arrays(values, 2)
    assert np.allclose(vals["u"], vals["b"] * -65.0)  # the circuit's expression
    constant = _with_initial(izhikevich, "inhibitory", {"v_mV": -70.0, "u": -3.0})
    assert neuron_values(constant, "vals", "rv").code["u"] == "-3.0"


def test_default_u_is_b_times_each_neurons_initial_v(izhikevich: Circuit) -> None:
    drawn_v = {"v_mV": {"uniform": {"low": -70.0, "high": -60.0}}}
    values = neuron_values(_with_initial(izhikevich, "inhibitory", drawn_v), "vals", "rv")
    assert {"b", "v_mV", "u"} <= values.varying
    vals = _arrays(values, 3)
    assert np.unique(vals["v_mV"]).size == 200
    np.testing.assert_array_equal(vals["u"], vals["b"] * vals["v_mV"])
    # A constant b and v give a constant u, b * v rather than b * c_mV (c varies here).
    constant = neuron_values(_with_initial(izhikevich, "excitatory", {"v_mV": -70.0}), "vals", "rv")
    assert constant.is_constant("u")
    assert float(constant.code["u"]) == 0.2 * -70.0
    # Without an initial v, v is c_mV and u is b * c_mV, neuron by neuron.
    values = neuron_values(_with_initial(izhikevich, "excitatory", {}), "vals", "rv")
    vals = _arrays(values, 4)
    np.testing.assert_array_equal(vals["u"], 0.2 * vals["c_mV"])


def test_lif_initial_voltage_defaults_to_rest(brunel: Circuit) -> None:
    values = neuron_values(brunel.populations["E"], "vals", "rv")
    assert values.lines == ()
    assert values.code["v_mV"] == "0.0"
    assert values.code["tau_m_ms"] == "20.0"


def test_draw_redraws_into_bounds() -> None:
    rng = np.random.default_rng(3)
    values = draw(rng, 20_000, {"normal": {"mean": 1.5, "std": 0.75, "low": 0.1}})
    assert values.min() >= 0.1
    # Redrawing keeps the shape of the normal above the bound: no pile-up at 0.1.
    assert np.mean(values < 0.15) < 0.01
    assert abs(values.mean() - 1.56) < 0.03


def test_draw_clips_and_lognormal() -> None:
    rng = np.random.default_rng(4)
    clipped = draw(rng, 10_000, {"normal": {"mean": 0.0, "std": 1.0, "high": 0.0, "bound": "clip"}})
    assert clipped.max() == 0.0
    assert np.mean(clipped == 0.0) == pytest.approx(0.5, abs=0.03)
    lognormal = draw(rng, 10_000, {"lognormal": {"mu": 0.0, "sigma": 0.5}})
    assert np.median(lognormal) == pytest.approx(1.0, abs=0.05)
    uniform = draw(rng, 1000, {"uniform": {"low": 2.0, "high": 3.0}})
    assert 2.0 <= uniform.min() <= uniform.max() < 3.0


def test_draw_rejects_unknown_distributions() -> None:
    with pytest.raises(ValueError, match="unknown distribution"):
        draw(np.random.default_rng(), 3, {"gamma": {}})


def test_emit_result_prints_one_marked_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    emit_result({"sim_s": 1.5, "n_spikes": {"E": 3}})
    out = capsys.readouterr().out
    assert out.startswith(RESULT_MARKER)
    assert out.count("\n") == 1


def test_runtime_source_is_embedded_verbatim() -> None:
    assert "def draw(" in RUNTIME_SOURCE
    assert "def emit_result(" in RUNTIME_SOURCE


def test_selection_slice() -> None:
    assert selection_slice(NodeSelection(), 10) == (0, 10, 1)
    assert selection_slice(NodeSelection(start=2, stop=8, step=3), 10) == (2, 8, 3)
    assert selection_slice(NodeSelection(ids=(1, 4)), 10) is None
