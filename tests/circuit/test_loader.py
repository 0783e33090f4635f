"""Loading circuits from files, text and mappings; normalization; connection files; limits."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from brainsim.circuit import (
    Problem,
    estimate_resources,
    load_circuit,
    parse_circuit,
    validate,
    validate_files,
)
from brainsim.circuit import loader as loader_module
from brainsim.circuit.spec import FromFile, NodeSelection, Target
from brainsim.errors import CircuitError
from tests.circuit.conftest import (
    CIRCUITS,
    EXAMPLES,
    NO_MEMORY_LIMIT,
    changed,
    full_document,
    load_document,
)


def test_load_from_path_text_and_mapping_agree(tiny: dict[str, Any]) -> None:
    path = CIRCUITS / "tiny.yaml"
    from_path = load_circuit(path)
    assert load_circuit(str(path)) == from_path
    assert from_path.base_dir == str(CIRCUITS)
    from_text = load_circuit(path.read_text(encoding="utf-8"))
    from_mapping = load_circuit(tiny)
    assert from_text.base_dir is None
    assert from_text == from_mapping
    assert from_text.populations == from_path.populations
    assert from_text.document == from_path.document


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_normalized_document_is_json_and_parses_to_the_same_circuit(path: Path) -> None:
    circuit = load_circuit(path, memory_limit_bytes=NO_MEMORY_LIMIT)
    text = json.dumps(circuit.document, allow_nan=False)
    again = parse_circuit(text, base_dir=circuit.base_dir, memory_limit_bytes=NO_MEMORY_LIMIT)
    assert again == circuit
    assert again.document == circuit.document


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_yaml_and_json_give_the_same_circuit(path: Path) -> None:
    as_json = json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")))
    from_yaml = parse_circuit(path.read_bytes(), memory_limit_bytes=NO_MEMORY_LIMIT)
    assert parse_circuit(as_json, memory_limit_bytes=NO_MEMORY_LIMIT) == from_yaml


def test_every_feature_survives_normalization() -> None:
    circuit = parse_circuit(full_document())
    assert parse_circuit(json.dumps(circuit.document)) == circuit
    assert parse_circuit(yaml.safe_dump(full_document())) == circuit
    inh = circuit.populations["inh"]
    assert (inh.gid_offset, inh.size) == (40, 10)
    assert circuit.stimuli["drive"].targets[1] == Target("inh", NodeSelection(ids=(0, 2, 4)))
    assert circuit.recordings.state[0].nodes == NodeSelection(start=0, stop=None, step=10)
    assert circuit.recordings.spikes == ("exc", "inh")


def test_normalized_document_fills_defaults_and_canonical_forms(tiny: dict[str, Any]) -> None:
    document = changed(
        tiny,
        "stimuli.pulse",
        {"type": "dc", "targets": [{"population": "E", "node_ids": [7, 3]}], "amplitude_pA": 5.0},
    )
    circuit = parse_circuit(document)
    normalized = circuit.document
    assert normalized["populations"]["E"]["params"] == {
        "tau_m_ms": 20.0,
        "c_m_pF": 250.0,
        "v_th_mV": 20.0,
        "v_reset_mV": 10.0,
        "e_l_mV": 0.0,
        "t_ref_ms": 2.0,
        "i_e_pA": 0.0,
        "synapse": "delta",
    }
    assert normalized["projections"]["IE"]["connectivity"] == {
        "rule": "pairwise_bernoulli",
        "p": 0.1,
        "allow_autapses": True,
    }
    assert normalized["stimuli"]["pulse"] == {
        "type": "dc",
        "targets": [{"population": "E", "node_ids": [3, 7]}],
        "amplitude_pA": 5.0,
        "weight": 1.0,
        "start_ms": 0.0,
    }
    assert circuit.stimuli["pulse"].targets == (Target("E", NodeSelection(ids=(3, 7))),)
    assert normalized["recordings"]["spikes"] == ["E", "I"]
    assert normalized["recordings"]["state"][0]["node_ids"] == {
        "range": {"start": 0, "stop": 5, "step": 1}
    }
    assert circuit.recordings.state[0].nodes == NodeSelection(start=0, stop=5)


def test_defaults_of_delays_and_intervals_are_one_step(tiny: dict[str, Any]) -> None:
    document = changed(
        tiny,
        "projections.EE",
        {"source": "E", "target": "E", "weight": 0.1, "connectivity": {"rule": "one_to_one"}},
    )
    document = changed(
        document,
        "stimuli.background",
        {"type": "poisson", "targets": ["E"], "rate_hz": 10.0, "weight": 0.1},
    )
    document = changed(document, "recordings.state.0", {"population": "I", "variables": ["v"]})
    circuit = parse_circuit(document)
    assert circuit.projections["EE"].delay_ms == 0.1
    assert circuit.stimuli["background"].delay_ms == 0.1  # type: ignore[union-attr]
    assert circuit.recordings.state[0].interval_ms == 0.1
    assert circuit.recordings.state[0].nodes == NodeSelection()


def test_circuits_pickle(tiny: dict[str, Any]) -> None:
    circuit = load_circuit(CIRCUITS / "izhikevich_2003.yaml")
    assert pickle.loads(pickle.dumps(circuit)) == circuit


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CircuitError) as raised:
        load_circuit(missing)
    assert raised.value.problems == [
        f"(document): cannot read {missing}: No such file or directory"
    ]
    directory = tmp_path / "dir.yaml"
    directory.mkdir()
    with pytest.raises(CircuitError, match="cannot read"):
        load_circuit(str(directory))
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (10 * 2**20 + 1))
    results = validate_files([str(big), str(missing), str(CIRCUITS / "tiny.yaml")])
    assert results[str(big)] == [
        Problem("", f"cannot read {big}: larger than 10.0 MiB, the most a circuit file may have")
    ]
    assert results[str(missing)][0].message.startswith("cannot read")
    assert results[str(CIRCUITS / "tiny.yaml")] == []


def test_strings_are_text_unless_they_name_a_circuit_file(tmp_path: Path) -> None:
    text = (CIRCUITS / "tiny.yaml").read_text(encoding="utf-8")
    assert load_circuit(text).name == "tiny"
    with pytest.raises(CircuitError, match=r"cannot read not-there\.json"):
        load_circuit("not-there.json")
    with pytest.raises(CircuitError, match="must be a mapping"):
        load_circuit("just some words")


def test_validate_never_raises_even_on_internal_errors(
    monkeypatch: pytest.MonkeyPatch, tiny: dict[str, Any]
) -> None:
    def broken(document: Any, log: Any) -> None:
        raise RuntimeError("schema stage exploded")

    monkeypatch.setattr(loader_module, "check_schema", broken)
    assert validate(tiny) == [
        Problem("", "internal error while validating: RuntimeError: schema stage exploded")
    ]


def test_memory_limit(tiny: dict[str, Any]) -> None:
    potjans = CIRCUITS / "potjans_diesmann_2014.yaml"
    problems = validate_files([str(potjans)], memory_limit_bytes=2**30)[str(potjans)]
    assert len(problems) == 1
    assert problems[0].path == ""
    assert problems[0].message.startswith(
        "the circuit needs an estimated 2.9 GiB for 77,169 neurons and 298,880,968 synapses"
    )
    assert problems[0].message.endswith("the memory limit of 1.0 GiB (the given limit)")
    assert validate(tiny) == [], "the default limit is this machine's memory"
    huge = changed(tiny, "projections.EE.connectivity.indegree", 2**31 - 1)
    message = validate(huge)[0].message
    assert "(the physical memory of this machine)" in message
    assert validate(huge, memory_limit_bytes=NO_MEMORY_LIMIT) == []


def _write_circuit(directory: Path, connectivity: dict[str, Any]) -> Path:
    document = load_document("tiny.yaml")
    document["projections"]["EE"]["connectivity"] = connectivity
    path = directory / "circuit.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_from_file_projection(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "ee.npz",
        source=np.array([0, 1, 79]),
        target=np.array([5, 5, 0]),
        weight=np.array([0.1, 0.2, 0.3]),
        delay_ms=np.array([1.0, 1.5, 2.0]),
    )
    path = _write_circuit(tmp_path, {"rule": "from_file", "path": "ee.npz"})
    circuit = load_circuit(path)
    assert circuit.projections["EE"].connectivity == FromFile("ee.npz")
    with_file = estimate_resources(circuit).n_synapses
    without = estimate_resources(load_circuit(CIRCUITS / "tiny.yaml")).n_synapses
    assert with_file == without - 8 * 80 + 3
    assert validate(path.read_text(encoding="utf-8"), base_dir=str(tmp_path)) == []


_GOOD_IDS = {"source": [0], "target": [0]}


@pytest.mark.parametrize(
    ("arrays", "relative", "message"),
    [
        (None, "absent.npz", "cannot read 'absent.npz': no such file"),
        (None, "/etc/ee.npz", "must be relative to the circuit's directory"),
        (None, "../ee.npz", "leads outside the circuit's directory"),
        (None, "ee.txt", "must name a .npz file"),
        ({"source": [0], "target": [0, 1]}, "ee.npz", "target must be a 1-D array as long as"),
        ({"source": [0, 80], "target": [0, 1]}, "ee.npz", "source ids must be in [0, 80)"),
        ({"source": [0.5], "target": [1]}, "ee.npz", "source must hold integers, found float64"),
        ({"source": [0]}, "ee.npz", "missing array(s) target"),
        ({**_GOOD_IDS, "extra": [1]}, "ee.npz", "unknown arrays extra"),
        ({**_GOOD_IDS, "weight": [np.nan]}, "ee.npz", "weight holds values that are not finite"),
        ({**_GOOD_IDS, "delay_ms": [0.01]}, "ee.npz", "delay_ms must be >= dt_ms (0.1)"),
    ],
)
def test_bad_connection_files(
    tmp_path: Path, arrays: dict[str, Any] | None, relative: str, message: str
) -> None:
    circuit_dir = tmp_path / "circuit"
    circuit_dir.mkdir()
    (tmp_path / "ee.npz").write_bytes(b"outside")
    if arrays is not None:
        np.savez(
            circuit_dir / relative, **{name: np.array(values) for name, values in arrays.items()}
        )
    path = _write_circuit(circuit_dir, {"rule": "from_file", "path": relative})
    (problems,) = validate_files([str(path)]).values()
    assert [problem.path for problem in problems] == ["projections.EE.connectivity.path"]
    assert message in problems[0].message


def test_connection_file_links_may_not_leave_the_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside.npz"
    np.savez(outside, source=np.array([0]), target=np.array([0]))
    circuit_dir = tmp_path / "circuit"
    circuit_dir.mkdir()
    os.symlink(outside, circuit_dir / "link.npz")
    path = _write_circuit(circuit_dir, {"rule": "from_file", "path": "link.npz"})
    (problems,) = validate_files([str(path)]).values()
    assert "leads outside the circuit's directory" in problems[0].message


def test_corrupt_connection_file(tmp_path: Path) -> None:
    (tmp_path / "ee.npz").write_bytes(b"not a zip archive")
    path = _write_circuit(tmp_path, {"rule": "from_file", "path": "ee.npz"})
    (problems,) = validate_files([str(path)]).values()
    assert "cannot read 'ee.npz' as .npz" in problems[0].message
