"""``brainsim run --target pynn`` and the recordings made of another simulator's spikes
(:func:`brainsim.engine.external.record_external_spikes`): the spikes read back exactly, on
brainsim's time grid; every way the returned spikes can be wrong is refused; the command line
refuses what one PyNN process cannot do. (The run on real NEST through the job service is in
tests/services/test_targets.py; rates against brainsim's in test_pynn.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from brainsim.backends.pynn_run import read_results, write_recording
from brainsim.circuit import parse_circuit
from brainsim.engine.external import record_external_spikes
from brainsim.errors import EngineError, TargetError
from brainsim.recording import open_store

ROOT = Path(__file__).resolve().parents[2]


def _circuit(**simulation: Any) -> Any:
    document = yaml.safe_load((ROOT / "circuits" / "tiny.yaml").read_text(encoding="utf-8"))
    document["recordings"] = {"spikes": "all"}
    document["simulation"].update(simulation)
    return parse_circuit(document)


def test_external_spikes_become_a_recording_on_the_grid(tmp_path: Path) -> None:
    circuit = _circuit()
    rng = np.random.default_rng(1)
    pairs = np.unique(rng.integers(0, [1001, 80], (500, 2)), axis=0)
    steps, ids = rng.permutation(pairs).T
    # As a simulator writes them: float times (0.1 * step, with its rounding), any order.
    spikes = {"E": (steps * 0.1, ids), "I": (np.array([99.9, 0.3]), np.array([19, 0]))}
    record_external_spikes(circuit, spikes, tmp_path / "x.zarr", backend="pynn:nest")
    store = open_store(tmp_path / "x.zarr")
    assert (store.status, store.simulated_ms) == ("complete", 100.0)
    assert store.provenance["backend"] == "pynn:nest"
    e = store.spikes("E")
    order = np.lexsort((ids, steps))
    np.testing.assert_array_equal(e.node_ids, ids[order])
    # Stored as brainsim stores its own: step * dt in float64, bit for bit.
    np.testing.assert_array_equal(e.times_ms, steps[order] * 0.1)
    assert store.spikes("I").node_ids.tolist() == [0, 19]
    assert store.spikes("I").times_ms.tolist() == [3 * 0.1, 999 * 0.1]


@pytest.mark.parametrize(
    ("spikes", "message"),
    [
        ({"E": (np.array([1.05]), np.array([0]))}, "not on the 0.1 ms grid"),
        ({"E": (np.array([100.1]), np.array([0]))}, "must lie in \\[0, 100.0\\] ms"),
        ({"E": (np.array([-0.1]), np.array([0]))}, "must lie in \\[0, 100.0\\] ms"),
        ({"E": (np.array([1.0]), np.array([80]))}, "node ids must lie in \\[0, 80\\)"),
        ({"E": (np.array([np.nan]), np.array([0]))}, "times be finite"),
        ({"E": (np.array([1.0, 2.0]), np.array([0]))}, "must be 1-D and of equal length"),
        ({"E": (np.array([1.0, 1.0]), np.array([4, 4]))}, "node 4 spikes twice in the step"),
    ],
)
def test_wrong_external_spikes_are_refused(
    tmp_path: Path, spikes: dict[str, Any], message: str
) -> None:
    spikes = {"I": (np.zeros(0), np.zeros(0, np.int64)), **spikes}
    with pytest.raises(EngineError, match=message):
        record_external_spikes(_circuit(), spikes, tmp_path / "x.zarr", backend="pynn:nest")
    assert not (tmp_path / "x.zarr").exists()  # refused before a store was made


def test_missing_or_extra_populations_are_named(tmp_path: Path) -> None:
    empty = (np.zeros(0), np.zeros(0, np.int64))
    with pytest.raises(EngineError, match=r"missing: \['I'\], not recorded: \['X'\]"):
        record_external_spikes(
            _circuit(), {"E": empty, "X": empty}, tmp_path / "x.zarr", backend="b"
        )


def test_results_files_are_read_and_their_absence_named(tmp_path: Path) -> None:
    circuit = _circuit()
    np.savez(tmp_path / "E.spikes.npz", times_ms=np.array([0.5]), node_ids=np.array([3]))
    with pytest.raises(TargetError) as caught:
        read_results(circuit, tmp_path)
    assert any("I.spikes.npz" in p for p in caught.value.problems)
    np.savez(tmp_path / "I.spikes.npz", times_ms=np.zeros(0), node_ids=np.zeros(0, np.int64))
    write_recording(circuit, tmp_path, tmp_path / "r.zarr", backend="pynn:spiNNaker")
    store = open_store(tmp_path / "r.zarr")
    assert store.provenance["backend"] == "pynn:spiNNaker"
    assert store.spikes("E").times_ms.tolist() == [0.5]


def _brainsim(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "brainsim", *argv],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_the_command_line_refuses_what_one_pynn_process_cannot_do(tmp_path: Path) -> None:
    circuit = tmp_path / "net.yaml"
    document = yaml.safe_load((ROOT / "circuits" / "tiny.yaml").read_text(encoding="utf-8"))
    document["recordings"] = {"spikes": "all"}
    circuit.write_text(yaml.safe_dump(document), encoding="utf-8")
    done = _brainsim(
        "run", str(circuit), "--target", "pynn", "--out", "a.zarr", "--ranks", "2",
        "--checkpoint-every-ms", "10", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "drop --ranks and --checkpoint-every-ms" in done.stderr
    done = _brainsim(
        "run", str(circuit), "--target", "pynn", "--out", "a.zarr",
        "--pynn-python", str(tmp_path / "no-python"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot start the PyNN run" in done.stderr
    # What PyNN cannot express is refused input (2), before anything runs.
    state = yaml.safe_load((ROOT / "circuits" / "tiny.yaml").read_text(encoding="utf-8"))
    (tmp_path / "state.yaml").write_text(yaml.safe_dump(state), encoding="utf-8")
    done = _brainsim(
        "run", "state.yaml", "--target", "pynn", "--out", "b.zarr", cwd=tmp_path
    )  # fmt: skip
    assert done.returncode == 2
    assert "recordings.state" in done.stderr
    assert not (tmp_path / "b.zarr").exists()
