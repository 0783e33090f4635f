"""Shared helpers for the stimulus tests: circuits of relay neurons that show every input spike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from brainsim import run
from brainsim.circuit import load_circuit
from tests.engine.conftest import Store, read_store

RELAY = {"tau_m_ms": 10.0, "v_th_mV": 1.0, "v_reset_mV": 0.0, "e_l_mV": 0.0, "t_ref_ms": 0.0}
"""LIF neurons that fire in the step an input of weight >= 1 mV arrives, and only then."""


def relay_document(
    stimuli: dict[str, Any], *, size: int, dt_ms: float = 1.0, duration_ms: float = 100.0
) -> dict[str, Any]:
    """One population ``In`` of ``size`` relay neurons driven by ``stimuli``, spikes recorded."""
    return {
        "apiVersion": "brainsim/v1",
        "name": "encoders",
        "simulation": {"dt_ms": dt_ms, "duration_ms": duration_ms, "seed": 7},
        "populations": {"In": {"size": size, "model": "lif", "params": RELAY}},
        "stimuli": stimuli,
        "recordings": {"spikes": ["In"]},
    }


def write_circuit(directory: Path, document: dict[str, Any]) -> Path:
    """``document`` as ``circuit.yaml`` in ``directory``."""
    path = directory / "circuit.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def run_relay(directory: Path, document: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Run ``document`` on one rank in-process; the relay spikes as ``(times_ms, node_ids)``."""
    circuit = load_circuit(write_circuit(directory, document), memory_limit_bytes=0)
    run(circuit, directory / "out.zarr", overwrite=True)
    store: Store = read_store(directory / "out.zarr")
    return store["spikes/In/timestamps"], store["spikes/In/node_ids"]
