"""The backend interface and registry, the numba_mpi backend, and the model declarations'
target names against what the NIR backend handles (ARCHITECTURE.md, decision 11)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brainsim.backends import BACKENDS, Backend, RunnableBackend, backend
from brainsim.backends.nir_export import NirBackend
from brainsim.backends.nir_import import _Builder
from brainsim.circuit import load_circuit, parse_circuit
from brainsim.errors import TargetError
from brainsim.models import NEURON_MODELS, SYNAPSE_MODELS

NIR_EXPORTED = {"LIF", "CubaLIF", "Input"}
"""The NIR nodes the export writes for populations (nir_export._population_node)."""


def test_registry() -> None:
    assert next(iter(BACKENDS)) == "numba_mpi"
    assert "nir" in BACKENDS
    for name, b in BACKENDS.items():
        assert isinstance(b, Backend)
        assert b.name == name == b.capabilities().target
        assert isinstance(b, RunnableBackend) == b.capabilities().runs_here
    assert backend("nir") is BACKENDS["nir"]
    with pytest.raises(TargetError, match="unknown target 'loihi'") as caught:
        backend("loihi")
    assert caught.value.problems == [f"targets: {', '.join(BACKENDS)}"]


def test_numba_mpi_takes_everything(tmp_path: Path) -> None:
    b = BACKENDS["numba_mpi"]
    caps = b.capabilities()
    assert len(caps.neuron_models) == sum(len(m.variants()) for m in NEURON_MODELS.values())
    assert caps.synapse_models == tuple(SYNAPSE_MODELS)
    assert "from_file" in caps.connection_rules
    assert "spike_trains" in caps.stimuli
    json.dumps(caps.as_dict())
    np.savez(tmp_path / "c.npz", source=[0, 1], target=[1, 0], weight=[30.0, 30.0])
    text = """
apiVersion: brainsim/v1
name: pair
simulation: {dt_ms: 0.1, duration_ms: 20.0}
populations: {P: {size: 2, model: lif, params: {i_e_pA: 400.0}}}
projections: {PP: {source: P, target: P, connectivity: {rule: from_file, path: c.npz}, weight: 0}}
recordings: {spikes: [P]}
"""
    (tmp_path / "pair.yaml").write_text(text)
    circuit = load_circuit(tmp_path / "pair.yaml")
    assert b.check(circuit) == []
    artefact = b.compile(circuit, tmp_path / "out")
    assert artefact.paths == (str(tmp_path / "out" / "pair.json"), str(tmp_path / "out" / "c.npz"))
    assert load_circuit(artefact.paths[0]).document == circuit.document
    assert isinstance(b, RunnableBackend)
    assert b.run(circuit, tmp_path / "run.zarr") == "complete"


def test_declared_nir_names_are_handled() -> None:
    """Every variant that declares a NIR name is one the export writes, every synapse model
    with a NIR name is static, and the import reads exactly the nodes the docs list."""
    for model in NEURON_MODELS.values():
        for variant in model.variants():
            name = variant.target_name("nir")
            assert name is None or name in NIR_EXPORTED, (variant, name)
    assert {m.name for m in SYNAPSE_MODELS.values() if m.target_name("nir")} == {"static"}
    assert {m.name for m in SYNAPSE_MODELS.values() if m.plastic}.isdisjoint(
        NirBackend().capabilities().synapse_models
    )
    import nir

    builder = _Builder(nir, {}, [], 0.1, "exact")
    handled = {t.__name__ for t in (*builder.neuron_types, *builder.weight_types)}
    assert handled | {"Input", "Output"} == {
        "LIF",
        "CubaLIF",
        "IF",
        "LI",
        "Affine",
        "Linear",
        "Scale",
        "Delay",
        "Input",
        "Output",
    }


@pytest.mark.parametrize(
    ("model", "params", "node"),
    [
        ("lif", {"t_ref_ms": 0.0}, "LIF"),
        ("lif", {"t_ref_ms": 0.0, "synapse": "exponential"}, "CubaLIF"),
        ("parrot", {}, "Input"),
    ],
)
def test_each_declared_variant_exports(
    model: str, params: dict[str, object], node: str, tmp_path: Path
) -> None:
    import nir

    circuit = parse_circuit(
        {
            "apiVersion": "brainsim/v1",
            "name": "one",
            "simulation": {"dt_ms": 0.1, "duration_ms": 1.0},
            "populations": {"P": {"size": 2, "model": model, "params": params}},
            "recordings": {"spikes": ["P"]},
        }
    )
    assert circuit.populations["P"].variant.target_name("nir") == node
    graph = nir.read(BACKENDS["nir"].compile(circuit, tmp_path).paths[0])
    assert type(graph.nodes["P"]).__name__ == node
