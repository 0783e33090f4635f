"""Reading YAML and JSON: YAML 1.2 core scalars, limits, duplicates, aliases and merges."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from brainsim.circuit.problems import ProblemLog
from brainsim.circuit.reading import MAX_DEPTH, DocumentError, parse_text, to_json_data


def _read(text: str | bytes) -> tuple[Any, list[str]]:
    log = ProblemLog()
    data = to_json_data(parse_text(text), log)
    return data, [str(problem) for problem in log.problems(data)]


def test_yaml_core_schema_scalars() -> None:
    text = """
    int: 42
    negative: -7
    octal: 0o17
    hex: 0x1F
    leading_zero: 012
    float: 1.5
    exponent: 1e3
    signed_exponent: 2.5E-2
    dot: .5
    infinity_text: .inf
    true_value: true
    yes: yes
    on: on
    null_value: ~
    empty:
    quoted: "12"
    tagged: !!str 12
    date: 2024-01-01
    """
    data, problems = _read(text.replace("\n    ", "\n"))
    assert problems == ["infinity_text: must be a finite number, got inf"]
    assert data == {
        "int": 42,
        "negative": -7,
        "octal": 15,
        "hex": 31,
        "leading_zero": 12,
        "float": 1.5,
        "exponent": 1000.0,
        "signed_exponent": 0.025,
        "dot": 0.5,
        "infinity_text": None,
        "true_value": True,
        "yes": "yes",
        "on": "on",
        "null_value": None,
        "empty": None,
        "quoted": "12",
        "tagged": "12",
        "date": "2024-01-01",
    }


def test_json_and_yaml_read_the_same() -> None:
    json_data, _ = _read('{"a": [1, 2.5, true, null, "x"], "b": {"c": 1e3}}')
    yaml_data, _ = _read("a: [1, 2.5, true, null, x]\nb: {c: 1e3}\n")
    assert json_data == yaml_data == {"a": [1, 2.5, True, None, "x"], "b": {"c": 1000.0}}


def test_duplicate_keys_are_problems_in_yaml_and_json() -> None:
    data, problems = _read("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert data == {"a": 3, "b": {"c": 2}}
    assert problems == [
        "a: duplicate key 'a' (each key may appear once)",
        "b.c: duplicate key 'c' (each key may appear once)",
    ]
    _, problems = _read('{"x": {"y": 1, "y": 2}}')
    assert problems == ["x.y: duplicate key 'y' (each key may appear once)"]


def test_anchors_aliases_and_merge_keys() -> None:
    text = (
        "base: &base {tau_m_ms: 10.0, v_th_mV: -50.0}\n"
        "other: &other {v_th_mV: -40.0, e_l_mV: -65.0}\n"
        "copy: *base\n"
        "merged:\n  <<: [*base, *other]\n  tau_m_ms: 20.0\n"
        "override_first:\n  tau_m_ms: 5.0\n  <<: *base\n"
    )
    data, problems = _read(text)
    assert problems == []
    assert data["copy"] == {"tau_m_ms": 10.0, "v_th_mV": -50.0}
    assert data["merged"] == {"tau_m_ms": 20.0, "v_th_mV": -50.0, "e_l_mV": -65.0}
    assert data["override_first"] == {"tau_m_ms": 5.0, "v_th_mV": -50.0}
    data["copy"]["tau_m_ms"] = 1.0
    assert data["base"]["tau_m_ms"] == 10.0, "aliases become independent copies"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\n", "invalid YAML at line 2, column 1"),
        ("a: b: c\n", "mapping values are not allowed"),
        ("---\na: 1\n---\nb: 2\n", "expected one document, found a second one"),
        ("a: &x [*x]\n", "unknown alias *x"),
        ("a: *missing\n", "unknown alias *missing"),
        ("a: !!python/object:os.system ls\n", "unsupported tag tag:yaml.org,2002:python/object"),
        ("a: !!binary aGVsbG8=\n", "unsupported tag tag:yaml.org,2002:binary"),
        ("a: !!set {x, y}\n", "unsupported tag tag:yaml.org,2002:set"),
        ("a: !custom 1\n", "unsupported tag !custom"),
        ("a: !!int 1.5\n", "'1.5' is not a valid int"),
        ("? [1, 2]\n: x\n", "a mapping key must be a scalar"),
        ("a:\n  <<: 5\n", "a << merge key needs a mapping"),
        ("x: " + "1" * 50 + "\n", "has too many digits"),
        ('{"a": 1', "invalid JSON at line 1, column 8"),
        (b"a: \xff\n", "not UTF-8 text (byte 0xff at offset 3)"),
    ],
)
def test_unreadable_documents(text: str | bytes, message: str) -> None:
    with pytest.raises(DocumentError) as raised:
        parse_text(text)
    assert message in str(raised.value)


def test_nesting_is_limited() -> None:
    _read("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    with pytest.raises(DocumentError, match=f"nests deeper than {MAX_DEPTH} levels"):
        _read("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2))
    with pytest.raises(DocumentError, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse_text("x: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH)
    with pytest.raises(DocumentError, match=f"nests deeper than {MAX_DEPTH} levels"):
        to_json_data(_nested(MAX_DEPTH + 2), ProblemLog())


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_byte_order_mark_and_bytes_are_accepted() -> None:
    data, problems = _read("\ufeffa: 1\n".encode())
    assert (data, problems) == ({"a": 1}, [])


def test_to_json_data_copies_numpy_and_tuples_and_rejects_others() -> None:
    log = ProblemLog()
    data = to_json_data(
        {"i": np.int64(3), "f": np.float32(0.5), "t": (1, 2), "big": 2**63, "nan": math.nan},
        log,
    )
    assert data == {"i": 3, "f": 0.5, "t": [1, 2], "big": None, "nan": None}
    assert type(data["i"]) is int
    assert [str(problem) for problem in log.problems(data)] == [
        "big: integer out of range: |x| must be < 2**63, got one of 64 bits",
        "nan: must be a finite number, got nan",
    ]
