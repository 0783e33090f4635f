"""Per-neuron values as NumPy code, expressions, signs, and the embedded draw helper."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.script_runtime import RESULT_MARKER, draw, emit_result
from bench.translate_common import (
    RUNTIME_SOURCE,
    expression_to_numpy,
    neuron_values,
    selection_slice,
    sign_of,
)
from brainsim.circuit import Circuit
from brainsim.circuit.spec import Expr, LogNormal, NodeSelection, Normal, Uniform


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


def test_default_u_is_b_times_c_per_neuron(izhikevich: Circuit) -> None:
    values = neuron_values(izhikevich.populations["inhibitory"], "vals", "rv")
    assert "u" in values.varying
    namespace: dict[str, Any] = {
        "np": np,
        "draw": draw,
        "rng": np.random.default_rng(2),
        "rv": {},
        "vals": {},
    }
    exec("\n".join(values.lines), namespace)
    assert np.allclose(namespace["vals"]["u"], namespace["vals"]["b"] * -65.0)


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
