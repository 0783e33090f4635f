"""Stimulus data from files and inline lists: one array whatever the form, named by its hash in
the normalized document, and every problem reported at its field path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from brainsim.circuit import load_circuit, parse_circuit, validate
from brainsim.circuit.data import array_sha256
from brainsim.circuit.spec import DeltaStimulus, PopulationStimulus, RateStimulus, SpikeTrains
from tests.stimuli.conftest import relay_document, write_circuit

SAMPLES = np.array([[0.0, 0.25, 0.5], [1.0, 0.75, 0.125]])


def _rate(data: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "rate", "targets": ["In"], "data": data, "present_ms": 10.0,
            "max_rate_hz": 100.0, "weight": 2.0, **extra}  # fmt: skip


def _problems(directory: Path, stimulus: dict[str, Any], size: int = 3) -> list[tuple[str, str]]:
    path = write_circuit(directory, relay_document({"enc": stimulus}, size=size))
    text = path.read_text(encoding="utf-8")
    found = validate(text, base_dir=str(directory), memory_limit_bytes=0)
    return [(problem.path, problem.message) for problem in found]


def test_every_form_of_data_reads_the_same_array(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", SAMPLES)
    np.savetxt(tmp_path / "x.csv", SAMPLES, delimiter=",", header="three features")
    np.savez(tmp_path / "x.npz", X=SAMPLES, y=np.array([3, 7]))
    forms = ["x.npy", "x.csv", {"file": "x.npz", "key": "X"}, SAMPLES.tolist()]
    stimuli = {f"s{i}": _rate(form) for i, form in enumerate(forms)}
    circuit = load_circuit(write_circuit(tmp_path, relay_document(stimuli, size=3)))
    for stimulus in circuit.stimuli.values():
        assert isinstance(stimulus, RateStimulus)
        assert np.array_equal(stimulus.data.values, SAMPLES)
        assert stimulus.data.sha256 == array_sha256(SAMPLES)
        assert not stimulus.data.values.flags.writeable


def test_the_normalized_document_names_file_and_hash_and_parses_to_an_equal_circuit(
    tmp_path: Path,
) -> None:
    np.savez(tmp_path / "x.npz", X=SAMPLES)
    stimuli = {
        "file": _rate({"file": "x.npz", "key": "X"}, features=[2, 1, 0], order=[1, 1, 0]),
        "inline": _rate(SAMPLES.tolist(), rest_ms=5.0, start_ms=2.0),
    }
    circuit = load_circuit(write_circuit(tmp_path, relay_document(stimuli, size=3)))
    document = json.loads(json.dumps(circuit.document))
    assert document["stimuli"]["file"]["data"] == {
        "file": "x.npz",
        "key": "X",
        "sha256": array_sha256(SAMPLES),
    }
    assert document["stimuli"]["file"]["features"] == [2, 1, 0]
    assert document["stimuli"]["file"]["order"] == [1, 1, 0]
    assert document["stimuli"]["inline"]["data"] == SAMPLES.tolist()
    assert document["stimuli"]["inline"]["mode"] == "bernoulli"
    again = parse_circuit(document, base_dir=str(tmp_path))
    assert again == circuit
    assert again.document == circuit.document


def test_population_and_delta_documents_have_every_default_and_parse_to_an_equal_circuit(
    tmp_path: Path,
) -> None:
    np.save(tmp_path / "x.npy", SAMPLES)
    stimuli = {
        "petals": {"type": "population", "targets": ["In"], "data": "x.npy", "features": [1],
                   "present_ms": 10.0, "n_neurons_per_feature": 3, "sigma": 0.2,
                   "max_rate_hz": 50.0, "weight": 2.0},
        "sensor": {"type": "delta", "targets": ["In"], "data": SAMPLES.tolist(), "step_ms": 2.0,
                   "off_spikes": True, "weight": 2.0,
                   "targets_off": [{"population": "In", "node_ids": [0, 2, 1]}]},
        "plain": {"type": "delta", "targets": ["In"], "data": "x.npy", "step_ms": 1.0,
                  "weight": 2.0},
    }  # fmt: skip
    circuit = load_circuit(write_circuit(tmp_path, relay_document(stimuli, size=3)))
    document = json.loads(json.dumps(circuit.document))
    assert document["stimuli"]["petals"] == {
        "type": "population", "targets": ["In"],
        "data": {"file": "x.npy", "sha256": array_sha256(SAMPLES)}, "features": [1],
        "start_ms": 0.0, "present_ms": 10.0, "rest_ms": 0.0, "n_neurons_per_feature": 3,
        "low": 0.0, "high": 1.0, "sigma": 0.2, "max_rate_hz": 50.0, "weight": 2.0,
        "delay_ms": 1.0,
    }  # fmt: skip
    assert document["stimuli"]["sensor"] == {
        "type": "delta", "targets": ["In"], "data": SAMPLES.tolist(), "start_ms": 0.0,
        "step_ms": 2.0, "threshold": 0.1, "padding": False, "off_spikes": True,
        "targets_off": [{"population": "In", "node_ids": [0, 1, 2]}], "weight": 2.0,
        "delay_ms": 1.0,
    }  # fmt: skip
    assert "targets_off" not in document["stimuli"]["plain"]
    assert isinstance(circuit.stimuli["petals"], PopulationStimulus)
    assert isinstance(circuit.stimuli["sensor"], DeltaStimulus)
    again = parse_circuit(document, base_dir=str(tmp_path))
    assert again == circuit
    assert again.document == circuit.document


def test_a_changed_file_is_refused_by_the_hash_its_document_recorded(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", SAMPLES)
    circuit = load_circuit(write_circuit(tmp_path, relay_document({"enc": _rate("x.npy")}, size=3)))
    np.save(tmp_path / "x.npy", SAMPLES * 0.5)
    problems = validate(dict(circuit.document), base_dir=str(tmp_path))
    assert [problem.path for problem in problems] == ["stimuli.enc.data.sha256"]
    assert "the file changed since this document was written" in problems[0].message


def test_spike_trains_from_an_npz_equal_the_inline_lists(tmp_path: Path) -> None:
    inline = [[3.0, 1.0], [], [2.5]]
    np.savez(tmp_path / "t.npz", node_ids=np.array([2, 0, 0]), times=np.array([2.5, 3.0, 1.0]))
    stimuli = {
        name: {"type": "spike_trains", "targets": ["In"], "data": data, "weight": 2.0}
        for name, data in (("inline", inline), ("file", "t.npz"))
    }
    circuit = load_circuit(write_circuit(tmp_path, relay_document(stimuli, size=3)))
    rows = [(s.data.values, s.data.sha256) for s in circuit.stimuli.values()]
    assert all(isinstance(s, SpikeTrains) for s in circuit.stimuli.values())
    assert np.array_equal(rows[0][0], [[0.0, 1.0], [0.0, 3.0], [2.0, 2.5]])
    assert np.array_equal(rows[0][0], rows[1][0])
    assert rows[0][1] == rows[1][1]
    assert circuit.document["stimuli"]["inline"]["data"] == inline
    assert circuit.document["stimuli"]["file"]["data"]["file"] == "t.npz"


def _write_bad_files(directory: Path) -> None:
    np.save(directory / "cube.npy", np.zeros((2, 3, 1)))
    nan = SAMPLES.copy()
    nan[1, 2] = np.nan
    np.save(directory / "nan.npy", nan)
    np.save(directory / "names.npy", np.array([["a", "b", "c"]]))
    np.savez(directory / "x.npz", X=SAMPLES)
    np.savez(directory / "t.npz", node_ids=np.array([0, 3]), times=np.array([1.0, 2.0]))
    np.savez(directory / "u.npz", ids=np.array([0]), times=np.array([1.0]))
    (directory / "x.txt").write_text("1,2,3\n", encoding="utf-8")
    (directory / "bad.csv").write_text("1,2,3\n4,five,6\n", encoding="utf-8")


_FILE_CASES = [
    (_rate("missing.npy"), "stimuli.enc.data", "cannot read 'missing.npy': no such file"),
    (_rate("../x.npy"), "stimuli.enc.data", "'../x.npy' leads outside the circuit's directory"),
    (_rate("/etc/x.npy"), "stimuli.enc.data", "must be relative to the circuit's directory"),
    (_rate("x.txt"), "stimuli.enc.data", "must name a .npy or .csv or .npz file, got 'x.txt'"),
    (_rate("x.npz"), "stimuli.enc.data", "'x.npz' is an .npz archive: give {file: x.npz, key"),
    (_rate({"file": "x.npz", "key": "Y"}), "stimuli.enc.data", "'x.npz' has no array 'Y'; it"),
    (_rate({"file": "nan.npy", "key": "X"}), "stimuli.enc.data", "key names an array of an .npz"),
    (_rate("cube.npy"), "stimuli.enc.data", "shape (2, 3, 1); expected [n_samples, n_features]"),
    (_rate("nan.npy"), "stimuli.enc.data", "not finite (nan at sample 1, feature 2)"),
    (_rate("names.npy"), "stimuli.enc.data", "'names.npy' must hold numbers, found <U1"),
    (_rate("bad.csv"), "stimuli.enc.data", "cannot read 'bad.csv'"),
    (
        _rate({"file": "x.npz", "key": "X", "sha256": "0" * 64}),
        "stimuli.enc.data.sha256",
        "have sha256 " + array_sha256(SAMPLES) + ", not the one given",
    ),
    (
        {"type": "spike_trains", "targets": ["In"], "data": "t.npz", "weight": 1.0},
        "stimuli.enc.data",
        "'t.npz': node_ids must be < 3, the number of target neurons; found 3",
    ),
    (
        {"type": "spike_trains", "targets": ["In"], "data": "u.npz", "weight": 1.0},
        "stimuli.enc.data",
        "must hold exactly the arrays node_ids, times; found ids, times",
    ),
    (
        {"type": "spike_trains", "targets": ["In"], "data": "x.npy", "weight": 1.0},
        "stimuli.enc.data",
        "spike trains come from an .npz with arrays node_ids and times",
    ),
]


@pytest.mark.parametrize(
    ("stimulus", "path", "fragment"), _FILE_CASES, ids=[str(i) for i in range(len(_FILE_CASES))]
)
def test_file_problems_are_reported_at_the_data_field(
    tmp_path: Path, stimulus: dict[str, Any], path: str, fragment: str
) -> None:
    _write_bad_files(tmp_path)
    problems = _problems(tmp_path, stimulus)
    assert [where for where, _ in problems] == [path], problems
    assert fragment in problems[0][1]


def test_problems_of_data_and_schedule_are_reported_together(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", -SAMPLES)
    stimulus = _rate("x.npy", present_ms=0.5, order=[0, 5], features=[0, 1, 2, 3])
    problems = _problems(tmp_path, stimulus, size=4)
    assert [where for where, _ in problems] == [
        "stimuli.enc.features[3]",
        "stimuli.enc.order[1]",
        "stimuli.enc.present_ms",
    ]
