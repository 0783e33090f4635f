"""The files a circuit names (brainsim.circuit.references): found where validation looks for them,
named by the field validation reports, and located by validation's own rules."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from brainsim.circuit import validate
from brainsim.circuit.data import DATA_SUFFIXES
from brainsim.circuit.files import ConnectionFileError
from brainsim.circuit.references import (
    FileReference,
    referenced_files,
    referenced_files_of_text,
)

RELAY = {"tau_m_ms": 10.0, "v_th_mV": 1.0, "v_reset_mV": 0.0, "e_l_mV": 0.0, "t_ref_ms": 0.0}


def document_naming_files() -> dict[str, Any]:
    """Every way a circuit names a file, and values that name none."""
    return {
        "apiVersion": "brainsim/v1",
        "name": "files",
        "simulation": {"dt_ms": 1.0, "duration_ms": 10.0, "seed": 1},
        "populations": {
            "In": {"size": 4, "model": "lif", "params": RELAY},
            "Out": {"size": 2, "model": "lif", "params": RELAY},
        },
        "projections": {
            "listed": {
                "source": "In",
                "target": "Out",
                "weight": 5.0,
                "delay_ms": 1.0,
                "connectivity": {"rule": "from_file", "path": "conn/ee.npz"},
            },
            "random": {
                "source": "In",
                "target": "Out",
                "weight": 5.0,
                "delay_ms": 1.0,
                "connectivity": {"rule": "fixed_indegree", "indegree": 1},
            },
        },
        "stimuli": {
            "pixels": {
                "type": "rate",
                "targets": ["In"],
                "data": "digits.npy",
                "present_ms": 5.0,
                "max_rate_hz": 100.0,
                "weight": 5.0,
            },
            "petals": {
                "type": "population",
                "targets": ["In"],
                "data": {"file": "./iris.npz", "key": "X"},
                "present_ms": 5.0,
                "n_neurons_per_feature": 2,
                "sigma": 0.1,
                "max_rate_hz": 100.0,
                "weight": 5.0,
            },
            "replay": {
                "type": "spike_trains",
                "targets": ["Out"],
                "data": {"file": "t.npz"},
                "weight": 5.0,
            },
            "inline": {
                "type": "latency",
                "targets": ["In"],
                "data": [[0.1, 0.2, 0.3, 0.4]],
                "present_ms": 5.0,
                "tau_ms": 1.0,
                "weight": 5.0,
            },
            "drive": {"type": "poisson", "targets": ["In"], "rate_hz": 10.0, "weight": 1.0},
        },
        "recordings": {"spikes": "all"},
    }


def test_every_file_reference_is_listed_with_its_field_and_kinds() -> None:
    assert referenced_files(document_naming_files()) == [
        FileReference(
            "projections.listed.connectivity.path", "conn/ee.npz", (".npz",), "from_file"
        ),
        FileReference("stimuli.pixels.data", "digits.npy", DATA_SUFFIXES, "data"),
        FileReference("stimuli.petals.data", "./iris.npz", DATA_SUFFIXES, "data"),
        FileReference("stimuli.replay.data", "t.npz", (".npz",), "data"),
    ]


def test_the_fields_are_where_validation_reports_a_missing_file(tmp_path: Path) -> None:
    """Each reference's field is the path of validation's problem when its file is missing, and
    validation looks for no file that the list leaves out."""
    document = document_naming_files()
    problems = validate(document, base_dir=str(tmp_path), memory_limit_bytes=0)
    missing = {p.path for p in problems if "no such file" in p.message}
    assert missing == {reference.field for reference in referenced_files(document)}
    assert all(p.path in missing for p in problems), problems


def test_values_that_name_no_file_are_skipped() -> None:
    document = document_naming_files()
    document["stimuli"]["pixels"]["data"] = 3.0  # what a ${...} reference becomes
    document["stimuli"]["petals"]["data"] = {"key": "X"}  # no file: a schema problem
    document["stimuli"]["replay"]["type"] = "poisson"  # no longer reads data
    document["projections"]["listed"]["connectivity"]["path"] = ["a.npz"]
    document["projections"]["other"] = "not a mapping"
    assert referenced_files(document) == []
    for not_a_circuit in (None, [], "text", {"projections": [1], "stimuli": 2}):
        assert referenced_files(not_a_circuit) == []


def test_text_is_read_as_yaml_or_json_and_unreadable_text_names_nothing() -> None:
    document = document_naming_files()
    fields = [r.field for r in referenced_files(document)]
    as_yaml = yaml.safe_dump(document, sort_keys=False)
    assert [r.field for r in referenced_files_of_text(as_yaml)] == fields
    assert [r.field for r in referenced_files_of_text(json.dumps(document).encode())] == fields
    assert referenced_files_of_text("stimuli: [unclosed") == []


def test_files_are_located_by_validations_rules(tmp_path: Path) -> None:
    circuit_dir = tmp_path / "circuit"
    (circuit_dir / "sub").mkdir(parents=True)
    np.save(circuit_dir / "d.npy", np.ones((1, 4)))
    np.save(tmp_path / "outside.npy", np.ones((1, 4)))
    (circuit_dir / "link.npy").symlink_to(tmp_path / "outside.npy")
    base = str(circuit_dir)

    def data(name: str) -> FileReference:
        return FileReference("stimuli.s.data", name, DATA_SUFFIXES, "data")

    found = data("./sub/../d.npy")
    assert found.resolve(base) == os.path.realpath(circuit_dir / "d.npy")
    assert found.relative_path == "d.npy"
    for name, message in (
        ("../outside.npy", "leads outside"),
        ("link.npy", "leads outside"),
        (str(tmp_path / "outside.npy"), "absolute path"),
        ("d.txt", "must name a .npy or .csv or .npz file"),
        ("missing.npy", "no such file"),
    ):
        with pytest.raises(ConnectionFileError, match=message):
            data(name).resolve(base)
    with pytest.raises(ConnectionFileError, match=r"must name a \.npz file"):
        FileReference("projections.p.connectivity.path", "d.npy", (".npz",), "from_file").resolve(
            base
        )
