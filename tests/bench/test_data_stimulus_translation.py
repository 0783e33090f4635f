"""Data stimuli in the NEST script: ``spike_trains`` become one ``spike_generator`` per target
neuron, and the parrots they drive spike exactly as brainsim's do; the encoders that draw their
spikes in brainsim (``rate``, ``latency``, ``population``, ``delta``) and spikes at 0 ms (which
NEST's generator refuses) are refused with their field path."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import brainsim
from bench.nest_script import nest_script
from bench.runners import parse_script_result
from bench.translate_common import UnsupportedCircuitError
from brainsim.circuit import parse_circuit

TRAINS = [[1.0, 2.5, 9.9], [], [0.3, 7.0], [4.4], [2.5, 3.0, 3.1, 40.0]]


def _document(stimulus: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "brainsim/v1",
        "name": "trains",
        "simulation": {"dt_ms": 0.1, "duration_ms": 50.0, "seed": 3},
        "populations": {"P": {"size": 8, "model": "parrot"}},
        "stimuli": {"input": stimulus},
        "recordings": {"spikes": ["P"]},
    }


def _trains() -> dict[str, Any]:
    # Targets: parrots 1, 3 and 5..7, in that order (5 target neurons).
    return {"type": "spike_trains", "targets": [{"population": "P", "node_ids": [1, 3]},
            {"population": "P", "node_ids": {"range": {"start": 5, "stop": 8, "step": 1}}}],
            "data": TRAINS, "weight": 1.0, "delay_ms": 1.0}  # fmt: skip


def test_spike_trains_drive_the_same_parrots_in_nest(nest_python: Path, tmp_path: Path) -> None:
    document = _document(_trains())
    document["populations"]["P"]["size"] = 8
    circuit = parse_circuit(document)
    script = tmp_path / "trains_nest.py"
    script.write_text(nest_script(circuit, "circuit.yaml"), encoding="utf-8")
    result = subprocess.run([str(nest_python), str(script), "--threads", "1"],
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    found = parse_script_result(result.stdout)
    recording = brainsim.run(document, tmp_path / "trains.zarr")
    ours = recording.spikes("P")
    assert found["n_spikes"]["P"] == ours.n_spikes == sum(len(t) for t in TRAINS)
    counts = np.bincount(ours.node_ids, minlength=8)
    assert counts.tolist() == [0, 3, 0, 0, 0, 2, 1, 4]  # each train reached its own parrot


@pytest.mark.parametrize(
    ("stimulus", "field"),
    [
        ({"type": "rate", "targets": ["P"], "data": [[0.5] * 8], "present_ms": 10.0,
          "max_rate_hz": 100.0, "weight": 1.0}, "stimuli.input"),
        ({"type": "latency", "targets": ["P"], "data": [[0.5] * 8], "present_ms": 10.0,
          "tau_ms": 2.0, "weight": 1.0}, "stimuli.input"),
        ({**_trains(), "data": [[0.0, 2.5], [], [1.0], [4.4], [3.0]]}, "stimuli.input.data"),
    ],
)  # fmt: skip
def test_nest_refuses_what_it_cannot_reproduce(stimulus: dict[str, Any], field: str) -> None:
    circuit = parse_circuit(_document(stimulus))
    with pytest.raises(UnsupportedCircuitError) as caught:
        nest_script(circuit, "circuit.yaml")
    assert field in str(caught.value)
