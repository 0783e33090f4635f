"""``brainsim targets``, ``brainsim compile --target nir`` and ``brainsim import``."""

from __future__ import annotations

import json
from pathlib import Path

import nir
import pytest

from brainsim.circuit import load_circuit
from brainsim.cli import EXIT_INVALID, main

CIRCUIT = """
apiVersion: brainsim/v1
name: tiny-nir
simulation: {dt_ms: 0.1, duration_ms: 10.0}
populations:
  In: {size: 3, model: parrot}
  E: {size: 4, model: lif, params: {t_ref_ms: 0.0}}
projections:
  InE: {source: In, target: E, connectivity: {rule: all_to_all}, weight: 5.0, delay_ms: 0.3}
stimuli:
  drive: {type: poisson, targets: [In], rate_hz: 100.0, weight: 1.0}
recordings: {spikes: [E]}
"""


def test_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "--json"]) == 0
    listed = {t["target"]: t for t in json.loads(capsys.readouterr().out)}
    assert {"numba_mpi", "nir"} <= set(listed)
    assert listed["nir"]["runs_here"] is False
    assert "lif(synapse=delta) -> LIF" in listed["nir"]["neuron_models"]
    assert main(["targets"]) == 0
    assert "nir: Neuromorphic Intermediate Representation" in capsys.readouterr().out


def test_compile_then_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.yaml").write_text(CIRCUIT)
    assert (
        main(["compile", str(tmp_path / "c.yaml"), "--target", "nir", "-o", str(tmp_path / "out")])
        == 0
    )
    written = tmp_path / "out" / "tiny-nir.nir"
    assert capsys.readouterr().out.split() == [str(written)]
    graph = nir.read(written)
    assert {"In", "E", "InE", "InE.delay", "E.output"} == set(graph.nodes)
    assert main(["import", str(written), "-o", str(tmp_path / "back" / "c.yaml")]) == 0
    assert "node In -> population In" in capsys.readouterr().out
    circuit = load_circuit(tmp_path / "back" / "c.yaml")
    assert circuit.name == "tiny-nir"
    assert circuit.projections["InE"].connectivity.rule == "from_file"


def test_compile_refuses_with_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.yaml").write_text(CIRCUIT.replace("t_ref_ms: 0.0", "t_ref_ms: 2.0"))
    code = main(["compile", str(tmp_path / "c.yaml"), "--target", "nir", "-o", str(tmp_path)])
    assert code == EXIT_INVALID
    assert "populations.E.params.t_ref_ms: NIR's LIF has no refractory" in capsys.readouterr().err
    assert (
        main(["compile", str(tmp_path / "c.yaml"), "--target", "loihi", "-o", str(tmp_path)])
        == EXIT_INVALID
    )
    assert "unknown target 'loihi'" in capsys.readouterr().err
