"""The shipped JSON Schema: valid Draft 2020-12, in step with the spec, usable by other tools."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from brainsim.circuit import SCHEMA_PATH, load_circuit, schema
from brainsim.circuit.spec import (
    AllToAll,
    FixedIndegree,
    IzhikevichParams,
    LifParams,
    Normal,
)
from tests.circuit.conftest import EXAMPLES, NO_MEMORY_LIMIT, full_document, load_document


def test_schema_file_is_a_valid_draft_2020_12_schema() -> None:
    loaded = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(loaded)
    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert loaded["$id"] == "urn:brainsim:schema:circuit:v1"
    assert loaded["title"]
    assert loaded["description"]
    assert SCHEMA_PATH.name == "circuit-v1.schema.json"
    assert SCHEMA_PATH.parent.parent == Path(__file__).resolve().parents[2] / "brainsim" / "circuit"


def test_schema_returns_a_fresh_copy() -> None:
    first = schema()
    first["title"] = "changed"
    first["$defs"].clear()
    assert schema()["title"] != "changed"
    assert schema()["$defs"]


def _defaults(definition: dict[str, Any]) -> dict[str, Any]:
    return {
        name: spec["default"]
        for name, spec in definition["properties"].items()
        if "default" in spec
    }


@pytest.mark.parametrize(
    ("definition", "record"), [("lifParams", LifParams), ("izhikevichParams", IzhikevichParams)]
)
def test_neuron_parameters_and_defaults_match_the_spec(definition: str, record: type) -> None:
    properties = schema()["$defs"][definition]
    spec_defaults = {field.name: field.default for field in dataclasses.fields(record)}
    assert list(properties["properties"]) == list(spec_defaults)
    assert _defaults(properties) == spec_defaults


def test_other_defaults_match_the_spec() -> None:
    definitions = schema()["$defs"]
    rules = {
        branch["if"]["properties"]["rule"]["const"]: branch["then"]
        for branch in definitions["connectivity"]["allOf"]
    }
    assert rules["fixed_indegree"]["properties"]["allow_autapses"]["default"] is (
        FixedIndegree(1).allow_autapses
    )
    assert rules["fixed_indegree"]["properties"]["allow_multapses"]["default"] is (
        FixedIndegree(1).allow_multapses
    )
    assert rules["all_to_all"]["properties"]["allow_autapses"]["default"] is (
        AllToAll().allow_autapses
    )
    normal = definitions["normal"]["properties"]["normal"]["properties"]
    assert normal["bound"]["default"] == Normal(0, 1).bound
    assert definitions["simulation"]["properties"]["seed"]["default"] == 0


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_examples_and_their_normalized_form_pass_plain_jsonschema(path: Path) -> None:
    validator = Draft202012Validator(schema())
    assert list(validator.iter_errors(load_document(path.name))) == []
    circuit = load_circuit(path, memory_limit_bytes=NO_MEMORY_LIMIT)
    assert list(validator.iter_errors(json.loads(json.dumps(circuit.document)))) == []


def test_every_feature_passes_plain_jsonschema() -> None:
    assert list(Draft202012Validator(schema()).iter_errors(full_document())) == []


def test_plain_jsonschema_rejects_what_brainsim_rejects_structurally() -> None:
    validator = Draft202012Validator(schema())
    document = load_document("tiny.yaml")
    document["populations"]["E"]["params"]["tau_m"] = 20.0
    document["projections"]["EE"]["connectivity"]["rule"] = "nearest"
    errors = {tuple(error.absolute_path) for error in validator.iter_errors(document)}
    assert errors == {
        ("populations", "E", "params"),
        ("projections", "EE", "connectivity", "rule"),
    }


def _property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties":
                names |= set(value)
            names |= _property_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= _property_names(item)
    return names


def test_the_user_reference_documents_every_key() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "circuit-format.md"
    reference = docs.read_text(encoding="utf-8")
    names = _property_names(schema())
    assert {"tau_syn_in_ms", "v_peak_mV", "spike_times_ms", "allow_multapses"} <= names
    assert sorted(name for name in names if not re.search(rf"\b{name}\b", reference)) == []
