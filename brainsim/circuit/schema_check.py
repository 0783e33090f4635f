"""Check a document against the shipped JSON Schema and turn its errors into human problems.

The schema (``schema/circuit-v1.schema.json``, Draft 2020-12) describes the document format
for brainsim and for other tools (editors, CI linters). jsonschema's own messages are precise
but obscure for users (``... is not valid under any of the given schemas``), so every error is
rewritten here: unknown keys list the valid ones (with a close match when there is one),
``enum`` errors list the choices, and a failed ``anyOf`` (a value that may be a number, a
distribution or an expression) reports the problem inside the form the user evidently meant,
or, when no form fits, what forms are accepted (from the schema's ``title``).

A document that passed once is not checked again (:mod:`.schema_memo`); jsonschema is imported
only when a document is checked.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any

from brainsim.circuit import schema_memo
from brainsim.circuit.problems import Path, ProblemLog, describe

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

__all__ = ["MAX_SCHEMA_ERRORS", "SCHEMA_PATH", "check_schema", "schema"]

SCHEMA_PATH = FilePath(__file__).with_name("schema") / "circuit-v1.schema.json"
"""The JSON Schema of ``apiVersion: brainsim/v1`` documents, shipped inside the package."""

MAX_SCHEMA_ERRORS = 10_000
"""Schema errors after which checking a document stops."""

# Errors of these kinds at a value's own location mean "the value is not of this form at all".
_FORM_VALIDATORS = frozenset(
    {"type", "required", "additionalProperties", "const", "pattern", "enum", "propertyNames"}
)
_BOUNDS = {
    "minimum": ">=",
    "exclusiveMinimum": ">",
    "maximum": "<=",
    "exclusiveMaximum": "<",
}
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


@functools.cache
def _schema_bytes() -> bytes:
    return SCHEMA_PATH.read_bytes()


@functools.cache
def _loaded() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_schema_bytes())
    return loaded


@functools.cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_loaded())


def schema() -> dict[str, Any]:
    """The circuit JSON Schema (Draft 2020-12) as a fresh dict, loaded from :data:`SCHEMA_PATH`."""
    return copy.deepcopy(_loaded())


def check_schema(document: Any, log: ProblemLog) -> None:
    """Validate ``document`` (JSON data) against the schema; every error becomes a problem.

    After :data:`MAX_SCHEMA_ERRORS` errors checking stops and the whole document counts as
    invalid, so a huge broken document costs bounded time. A document that passed before is
    not checked again (:mod:`.schema_memo`).
    """
    key = schema_memo.memo_key(document, _schema_bytes())
    if key is not None and schema_memo.known_valid(key):
        return
    valid = True
    for count, error in enumerate(_validator().iter_errors(document), start=1):
        valid = False
        if count > MAX_SCHEMA_ERRORS:
            log.stop(f"checking stopped after {MAX_SCHEMA_ERRORS:,} schema errors")
            return
        for path, message in _translate(error):
            log.add(path, message)
    if valid and key is not None:
        schema_memo.remember_valid(key)


def _translate(error: ValidationError) -> Iterator[tuple[Path, str]]:
    path: Path = tuple(error.absolute_path)
    kind = error.validator
    instance: Any = error.instance
    expected: Any = error.validator_value
    subschema: Any = error.schema
    if "propertyNames" in error.schema_path:
        yield (*path, str(instance)), f"invalid name {instance!r}: must be {_form(subschema)}"
    elif kind in ("anyOf", "oneOf"):
        yield from _translate_alternatives(error, path)
    elif kind == "additionalProperties":
        valid = list(subschema.get("properties", {}))
        for key in instance:
            if key not in valid:
                yield (*path, key), _unknown_key(key, valid)
    elif kind == "required":
        for key in expected:
            if key not in instance:
                yield (*path, key), "required key is missing"
    elif kind == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in names)
        yield path, f"must be {wanted}, got {describe(instance)}"
    elif kind == "enum":
        yield path, _not_a_choice(instance, expected)
    elif kind == "const":
        yield path, f"must be {json.dumps(expected)}, got {describe(instance)}"
    elif kind in _BOUNDS:
        yield path, f"must be {_BOUNDS[kind]} {expected}, got {describe(instance)}"
    elif kind == "pattern":
        yield path, f"must be {_form(subschema)}, got {describe(instance)}"
    elif kind == "minItems":
        yield path, f"must have at least {expected} item(s)"
    elif kind == "minProperties":
        yield path, f"must have at least {expected} entry"
    elif kind == "uniqueItems":
        yield path, f"must not repeat items ({_repeated(instance)} appears more than once)"
    elif kind == "minLength":
        yield path, "must not be empty"
    elif kind == "maxLength":
        yield path, f"must be at most {expected} characters long"
    else:
        yield path, error.message


def _form(subschema: dict[str, Any]) -> str:
    title = subschema.get("title", "valid")
    description = subschema.get("description")
    return f"{title} ({description})" if description else str(title)


def _translate_alternatives(error: ValidationError, path: Path) -> Iterator[tuple[Path, str]]:
    """Report inside the one alternative the value evidently aims at, or list the forms."""
    by_branch: dict[int, list[ValidationError]] = defaultdict(list)
    for sub in error.context or ():
        by_branch[int(sub.relative_schema_path[0])].append(sub)
    alternatives: Any = error.validator_value
    branches = range(len(alternatives))
    fitting = [branch for branch in branches if _fits(by_branch[branch])]
    if fitting:
        for sub in by_branch[fitting[0]]:
            yield from _translate(sub)
        return
    subschema: Any = error.schema
    title = subschema.get("title", "valid")
    instance = error.instance
    if isinstance(instance, dict) and len(instance) == 1:
        forms = _object_forms(alternatives)
        (key,) = instance
        if forms and key not in forms:
            yield (*path, key), f"{_unknown_key(key, forms)} (expected {title})"
            return
    yield path, f"must be {title}, got {describe(instance)}"


def _fits(branch_errors: list[ValidationError]) -> bool:
    """True when no error says the value is not of this branch's form at all."""
    for sub in branch_errors:
        if sub.relative_path:
            continue
        if sub.validator in _FORM_VALIDATORS:
            return False
        alternatives: Any = sub.validator_value
        if sub.validator in ("anyOf", "oneOf") and not any(
            _fits([nested for nested in sub.context or () if nested.relative_schema_path[0] == i])
            for i in range(len(alternatives))
        ):
            return False
    return True


def _object_forms(alternatives: list[dict[str, Any]]) -> list[str]:
    """The single required keys that tell object alternatives apart (``uniform``, ``first``)."""
    forms: list[str] = []
    for alternative in alternatives:
        resolved = _resolve(alternative)
        if "anyOf" in resolved:
            forms += _object_forms(resolved["anyOf"])
        elif resolved.get("type") == "object" and len(resolved.get("required", ())) == 1:
            forms.append(resolved["required"][0])
    return forms


def _resolve(subschema: dict[str, Any]) -> dict[str, Any]:
    reference = subschema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        resolved: dict[str, Any] = _loaded()["$defs"][reference.removeprefix("#/$defs/")]
        return resolved
    return subschema


def _unknown_key(key: str, valid: list[str]) -> str:
    message = f"unknown key {key!r}; valid keys: {', '.join(valid) or 'none'}"
    close = difflib.get_close_matches(key, valid, n=1)
    return f"{message} (did you mean {close[0]!r}?)" if close else message


def _not_a_choice(instance: Any, choices: list[Any]) -> str:
    listed = ", ".join(str(choice) for choice in choices)
    message = f"must be one of: {listed}; got {describe(instance)}"
    if isinstance(instance, str):
        close = difflib.get_close_matches(instance, [str(choice) for choice in choices], n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def _repeated(items: list[Any]) -> str:
    seen: list[Any] = []
    for item in items:
        if item in seen:
            return describe(item)
        seen.append(item)
    return "an item"
