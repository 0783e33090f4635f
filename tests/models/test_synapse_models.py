"""What follows from the synapse model declarations really follows from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from brainsim.circuit import parse_circuit, schema
from brainsim.engine.plasticity import rule_row
from brainsim.kernels.plasticity import RULE_COLUMNS, RULES
from brainsim.models import SYNAPSE_MODELS, synapse_schema

ROOT = Path(__file__).resolve().parents[2]


def test_generated_schema_and_docs_are_current() -> None:
    """``scripts/gen_models.py --check``: the committed schema fragment and docs tables are
    what the declarations give now."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_models.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_published_schema_carries_the_declared_fragment() -> None:
    assert schema()["$defs"]["synapse"] == synapse_schema(SYNAPSE_MODELS.values())


def test_every_plastic_parameter_reaches_a_kernel_slot() -> None:
    for model in SYNAPSE_MODELS.values():
        if not model.plastic:
            assert model.kernel == "static"
            continue
        assert model.kernel in RULES
        slots = [p.slot for p in model.parameters]
        assert len(set(slots)) == len(slots), model.name
        assert set(slots) <= set(RULE_COLUMNS) - {"rule"}, model.name


def _document(projection: dict[str, Any]) -> dict[str, Any]:
    """A one-population circuit whose projection AA is ``projection`` plus the essentials."""
    essentials = {"source": "A", "target": "A", "connectivity": {"rule": "all_to_all"}}
    return {
        "apiVersion": "brainsim/v1",
        "name": "models",
        "simulation": {"dt_ms": 0.1, "duration_ms": 1.0},
        "populations": {"A": {"size": 2, "model": "lif"}},
        "projections": {"AA": {**essentials, **projection}},
    }


@pytest.mark.parametrize("name", ["stdp", "stdp_power_law"])
def test_defaults_fill_the_spec_document_and_kernel_row(name: str) -> None:
    """A bare ``synapse: {model: NAME}`` gets every declared default, in the typed spec, in
    the normalized document and in the kernel's parameter row."""
    model = SYNAPSE_MODELS[name]
    weight = 0.5
    document = _document({"weight": weight, "synapse": {"model": name}})
    circuit = parse_circuit(document)
    projection = circuit.projections["AA"]
    assert dict(projection.synapse.params) == model.defaults()
    assert circuit.document["projections"]["AA"]["synapse"] == {"model": name, **model.defaults()}
    assert parse_circuit(circuit.document) == circuit  # the normalized form reads back equal
    row = rule_row(projection)
    assert row[0] == RULES[model.kernel]
    for parameter in model.parameters:
        assert row[RULE_COLUMNS.index(parameter.slot)] == parameter.default
    # Every plastic projection records its final weights, unasked.
    assert [w.projection for w in circuit.recordings.weights] == ["AA"]
    assert circuit.recordings.weights[0].interval_ms is None


def test_static_projections_keep_their_document() -> None:
    document = _document({"weight": 1.0})
    circuit = parse_circuit(document)
    assert "synapse" not in circuit.document["projections"]["AA"]
    assert "weights" not in circuit.document["recordings"]
    assert not circuit.projections["AA"].plastic
