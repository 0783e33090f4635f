"""The parameters block and ${...} references: substitution, order, errors, overrides."""

from __future__ import annotations

from typing import Any

import pytest

from brainsim.circuit import parse_circuit, validate
from brainsim.circuit.parameters import substitute_parameters
from brainsim.circuit.problems import ProblemLog
from brainsim.circuit.spec import Expr, Normal
from tests.circuit.conftest import changed


def _substitute(
    document: dict[str, Any], overrides: dict[str, float] | None = None
) -> tuple[dict[str, Any], dict[str, float], list[str]]:
    log = ProblemLog()
    substituted, values = substitute_parameters(document, log, overrides)
    return substituted, values, [str(problem) for problem in log.problems(substituted)]


def test_parameters_resolve_in_any_order_and_substitute_everywhere() -> None:
    document = {
        "parameters": {"n": "${round(base * scale)}", "scale": 0.5, "base": 20683},
        "populations": {"E": {"size": "${n}", "params": {"v_th_mV": " ${-50 - scale} "}}},
        "list": ["${scale * 2}", "plain", 3],
    }
    substituted, values, problems = _substitute(document)
    assert problems == []
    assert values == {"n": 10342.0, "scale": 0.5, "base": 20683.0}
    assert substituted["parameters"] == values
    assert substituted["populations"]["E"] == {"size": 10342.0, "params": {"v_th_mV": -50.5}}
    assert substituted["list"] == [1.0, "plain", 3]


def test_keys_and_description_are_not_substituted() -> None:
    document = {"description": "uses ${scale}", "parameters": {"scale": 2}, "x": {"${scale}": 1}}
    substituted, _, problems = _substitute(document)
    assert problems == []
    assert substituted["description"] == "uses ${scale}"
    assert substituted["x"] == {"${scale}": 1}


def test_references_are_spliced_into_neuron_expressions() -> None:
    document = {"parameters": {"k": 15, "c": -65}, "v": {"expr": "${c} + ${k} * r**2"}}
    substituted, _, problems = _substitute(document)
    assert problems == []
    assert substituted["v"] == {"expr": "(-65.0) + (15.0) * r**2"}


def test_reference_must_be_the_whole_value_elsewhere() -> None:
    _, _, problems = _substitute({"parameters": {"a": 1}, "name": "net-${a}"})
    assert problems == ["name: a ${...} reference must be the whole value, got 'net-${a}'"]


def test_undefined_references_list_the_defined_parameters() -> None:
    document = {"parameters": {"scale": 1, "gain": 2}, "w": "${gian * 2}", "y": "${x}"}
    _, _, problems = _substitute(document)
    assert problems == [
        "w: undefined parameter 'gian'; defined parameters: scale, gain",
        "y: undefined parameter 'x'; defined parameters: scale, gain",
    ]
    _, _, problems = _substitute({"w": "${gain}"})
    assert problems == [
        "w: undefined parameter 'gain'; no parameters are defined (declare them in a "
        "parameters: block)"
    ]


def test_cycles_are_reported_once_and_dependents_stay_quiet() -> None:
    document = {
        "parameters": {"a": "${c + 1}", "b": "${a}", "c": "${b}", "d": "${a * 2}", "e": 1},
        "uses_cycle": "${d}",
        "fine": "${e}",
    }
    substituted, values, problems = _substitute(document)
    assert problems == ["parameters.a: circular reference: a -> c -> b -> a"]
    assert values == {"e": 1.0}
    assert substituted["fine"] == 1.0
    assert substituted["uses_cycle"] == "${d}"
    _, _, problems = _substitute({"parameters": {"me": "${me}"}})
    assert problems == ["parameters.me: circular reference: me -> me"]


def test_unsafe_or_broken_parameter_expressions() -> None:
    document = {
        "parameters": {
            "evil": "${__import__('os')}",
            "method": "${__import__('os').system('true')}",
            "attr": "${scale.real}",
            "big": "${10 ** 400}",
            "zero": "${1 / 0}",
            "exp": 1,
            "scale": 1,
        }
    }
    _, values, problems = _substitute(document)
    assert values == {"scale": 1.0}
    assert problems[0].startswith("parameters.evil: cannot call '__import__'")
    assert problems[1].startswith("parameters.method: cannot call attribute access")
    assert problems[2].startswith("parameters.attr: attribute access is not allowed")
    assert problems[3].startswith("parameters.big: cannot evaluate '10 ** 400': overflow")
    assert problems[4].startswith("parameters.zero: cannot evaluate '1 / 0': divide by zero")
    assert problems[5] == "parameters.exp: 'exp' is the name of a function; choose another name"


def test_overrides_replace_declared_parameters() -> None:
    document = {"parameters": {"scale": 1.0, "n": "${round(100 * scale)}"}, "size": "${n}"}
    substituted, values, problems = _substitute(document, {"scale": 0.25})
    assert problems == []
    assert values["n"] == 25.0
    assert substituted["size"] == 25.0
    _, _, problems = _substitute(document, {"scael": 0.5})
    assert problems == ["parameters.scael: cannot override 'scael': defined parameters: scale, n"]
    _, _, problems = _substitute(document, {"scale": float("nan")})
    assert problems == ["parameters.scale: override must be a finite number, got nan"]


def test_whole_circuit_with_parameters(tiny: dict[str, Any]) -> None:
    document = changed(tiny, "parameters", {"J": 0.1, "g": 5, "n_E": 80, "jitter": 0.25})
    document = changed(document, "populations.E.size", "${n_E}")
    document = changed(document, "projections.IE.weight", "${-g * J}")
    document = changed(
        document,
        "projections.EE.delay_ms",
        {"normal": {"mean": 1.5, "std": "${jitter}", "low": "${J}"}},
    )
    circuit = parse_circuit(document)
    assert circuit.parameters == {"J": 0.1, "g": 5.0, "n_E": 80.0, "jitter": 0.25}
    assert circuit.populations["E"].size == 80
    assert isinstance(circuit.populations["E"].size, int)
    assert circuit.projections["IE"].weight == -0.5
    assert circuit.projections["EE"].delay_ms == Normal(1.5, 0.25, low=0.1)
    assert circuit.document["populations"]["E"]["size"] == 80
    assert parse_circuit(document, parameters={"n_E": 40}).populations["I"].gid_offset == 40


def test_scaled_sizes_must_still_be_integers(tiny: dict[str, Any]) -> None:
    document = changed(tiny, "parameters", {"scale": 0.33})
    document = changed(document, "populations.E.size", "${80 * scale}")
    assert [str(problem) for problem in validate(document)] == [
        "populations.E.size: must be an integer >= 1, got 26.400000000000002"
    ]
    document = changed(document, "populations.E.size", "${round(80 * scale)}")
    assert validate(document) == []


def test_parameterized_expression_in_a_population(tiny: dict[str, Any]) -> None:
    document = changed(tiny, "parameters", {"spread": 15})
    document = changed(
        document, "populations.E.random_variables", {"r": {"uniform": {"low": 0, "high": 1}}}
    )
    document = changed(document, "populations.E.initial.v_mV", {"expr": "${spread} * r"})
    circuit = parse_circuit(document)
    assert circuit.populations["E"].initial["v_mV"] == Expr("(15.0) * r", ("r",))


@pytest.mark.parametrize("reference", ["${", "${}", "${ }", "${{1}}"])
def test_malformed_references_are_problems(reference: str, tiny: dict[str, Any]) -> None:
    problems = validate(changed(tiny, "simulation.seed", reference))
    assert [problem.path for problem in problems] == ["simulation.seed"]
