"""validate() never raises, whatever it is given: fuzzed values, texts, bytes and circuits."""

from __future__ import annotations

import json
import math
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brainsim.circuit import Problem, validate
from tests.circuit.conftest import CIRCUITS, full_document, load_document

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["${x}", "${scale}", "${1/0}", "all", "lif", "E", "delta", "-1e400"])
)
# Values that pass the schema somewhere but can break a semantic check elsewhere.
plausible = st.sampled_from(
    [
        0,
        1,
        -1,
        2,
        0.05,
        0.1,
        0.15,
        1e300,
        2**31 - 1,
        2**31,
        2**32,
        2**40,
        True,
        None,
        "E",
        "I",
        "excitatory",
        "all",
        "v",
        "u",
        "fixed_indegree",
        "one_to_one",
        "from_file",
        "pairwise_bernoulli",
        "fixed_total_number",
        "delta",
        "exponential",
        "izhikevich",
        "${1}",
        "${2 * 3}",
        "ee.npz",
        "../outside.npz",
        "/etc/passwd.npz",
        {"first": 1000},
        {"first": 1},
        {"range": {"start": 5}},
        {"range": {"stop": 3}},
        [0, 999],
        [3, 1, 2],
        {"normal": {"mean": 0, "std": 1, "low": 0.1}},
        {"normal": {"mean": 0, "std": 0, "low": 1, "high": 2}},
        {"lognormal": {"mu": 0, "sigma": 1}},
        {"lognormal": {"mu": 0, "sigma": 1, "high": -1}},
        {"uniform": {"low": 1, "high": 0}},
        {"expr": "r"},
        {"expr": "log(r)"},
        {"expr": "1 / (r - 0.5)"},
        {"expr": "exp(1000 * r)"},
        {"r": {"uniform": {"low": -1, "high": 1}}},
        {"rule": "one_to_one"},
        {"rule": "fixed_indegree", "indegree": 10**6, "allow_multapses": False},
        {"rule": "from_file", "path": "x.npz"},
        {"type": "spike_source_array", "targets": ["E"], "spike_times_ms": [3, 2], "weight": 1},
    ]
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=40,
)


def _assert_problems(problems: list[Problem]) -> None:
    assert isinstance(problems, list)
    for problem in problems:
        assert isinstance(problem, Problem)
        assert isinstance(problem.path, str)
        assert problem.message
        assert "internal error" not in problem.message, problem


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copied = json.loads(json.dumps(document))
    node = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copied


def _delete(document: Any, path: tuple[Any, ...]) -> Any:
    copied = json.loads(json.dumps(document))
    node = copied
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return copied


EXAMPLES = {
    **{name: load_document(name) for name in ("tiny.yaml", "izhikevich_2003.yaml")},
    "full": full_document(),
}


@FUZZ
@given(json_values)
def test_arbitrary_values(value: Any) -> None:
    _assert_problems(validate(value))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "apiVersion",
                "name",
                "simulation",
                "populations",
                "projections",
                "stimuli",
                "recordings",
                "parameters",
            ]
        ),
        json_values,
    )
)
def test_arbitrary_sections(document: dict[str, Any]) -> None:
    _assert_problems(validate(document))


@FUZZ
@given(st.data())
def test_mutated_circuits(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(EXAMPLES)))
    document = EXAMPLES[name]
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_paths(document)))
        if path and data.draw(st.booleans()) and isinstance(path[-1], str):
            document = _delete(document, path)
        else:
            document = _replace(document, path, data.draw(plausible | json_values))
    _assert_problems(validate(document, memory_limit_bytes=0))
    _assert_problems(validate(json.dumps(document, allow_nan=True)))


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _assert_problems(validate(text))


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    _assert_problems(validate(raw))


@FUZZ
@given(st.data())
def test_damaged_yaml_text(data: st.DataObject) -> None:
    text = (CIRCUITS / "tiny.yaml").read_text(encoding="utf-8")
    start = data.draw(st.integers(min_value=0, max_value=len(text)))
    end = data.draw(st.integers(min_value=start, max_value=min(len(text), start + 20)))
    insert = data.draw(st.text(alphabet="{}[]:,&*!|>-?#'\"\n $%@`0123456789.e", max_size=8))
    _assert_problems(validate(text[:start] + insert + text[end:]))


def test_deep_nesting_in_text_and_mappings() -> None:
    for text in (
        "[" * 100_000 + "]" * 100_000,
        "{a: " * 10_000 + "1" + "}" * 10_000,
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
        "- " * 5_000 + "x",
    ):
        problems = validate(text)
        assert len(problems) == 1
        assert "nests deeper than" in problems[0].message
    nested: dict[str, Any] = {}
    node = nested
    for _ in range(100_000):
        node["a"] = {}
        node = node["a"]
    assert "nests deeper than" in validate(nested)[0].message
    cyclic: dict[str, Any] = {"apiVersion": "brainsim/v1"}
    cyclic["self"] = cyclic
    assert "nests deeper than" in validate(cyclic)[0].message


def test_alias_bomb_is_stopped() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 12):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    problems = validate("\n".join(lines))
    assert len(problems) == 1
    assert "more than 1,000,000 values" in problems[0].message


def test_huge_numbers_and_non_finite_values() -> None:
    document = load_document("tiny.yaml")
    document["populations"]["E"]["size"] = 10**400
    document["simulation"]["dt_ms"] = math.inf
    document["projections"]["EE"]["weight"] = -math.inf
    document["stimuli"]["background"]["rate_hz"] = math.nan
    paths = {problem.path for problem in validate(document)}
    assert paths == {
        "populations.E.size",
        "simulation.dt_ms",
        "projections.EE.weight",
        "stimuli.background.rate_hz",
    }
    text = yaml.safe_dump(load_document("tiny.yaml")).replace("size: 80", "size: " + "9" * 5000)
    assert "too many digits" in validate(text)[0].message
    assert "finite" in validate('{"a": NaN}')[0].message
    assert "finite" in validate("a: 1e999")[0].message


def test_non_json_values_in_a_mapping() -> None:
    document: dict[Any, Any] = load_document("tiny.yaml")
    document["populations"]["E"]["initial"] = {"v_mV": {1, 2}}
    document[7] = "seven"
    document["description"] = b"bytes"
    messages = {str(problem) for problem in validate(document)}
    assert (
        "populations.E.initial.v_mV: unsupported value: a value of type set (only JSON "
        "values are allowed)" in messages
    )
    assert "(document): keys must be strings, got 7 (quote it)" in messages
    assert any(message.startswith("description: unsupported value") for message in messages)


def test_oversized_text_is_refused_before_parsing() -> None:
    problems = validate("a: 1\n" * (3 * 2**20))
    assert len(problems) == 1
    assert "at most 10,485,760 allowed" in problems[0].message
