"""The circuit format: load, validate and describe ``apiVersion: brainsim/v1`` documents.

Entry points: :func:`load_circuit` (file, text or mapping -> :class:`Circuit`),
:func:`parse_circuit` (text or mapping), :func:`validate` (every :class:`Problem`, never
raises), :func:`validate_files` (``brainsim validate``), :func:`schema` (the JSON Schema) and
:func:`estimate_resources`. The records the engine reads are in :mod:`brainsim.circuit.spec`;
the expression language of ``${...}`` and ``{expr: ...}`` is :mod:`brainsim.circuit.expressions`.
"""

from __future__ import annotations

from brainsim.circuit.build import initial_state_names, recordable_variables
from brainsim.circuit.expressions import ExpressionError, evaluate, parse_expression
from brainsim.circuit.loader import load_circuit, parse_circuit, validate, validate_files
from brainsim.circuit.problems import Problem
from brainsim.circuit.resources import ResourceEstimate, estimate_resources
from brainsim.circuit.schema_check import SCHEMA_PATH, schema
from brainsim.circuit.spec import API_VERSION, Circuit

__all__ = [
    "API_VERSION",
    "SCHEMA_PATH",
    "Circuit",
    "ExpressionError",
    "Problem",
    "ResourceEstimate",
    "estimate_resources",
    "evaluate",
    "initial_state_names",
    "load_circuit",
    "parse_circuit",
    "parse_expression",
    "recordable_variables",
    "schema",
    "validate",
    "validate_files",
]
