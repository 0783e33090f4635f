"""The decoding tests' recording: a real run in which each sample drives one group of neurons.

Populations of 12 relay neurons (they fire in the step an input arrives, and only then), three
groups of 4 neurons, one per class:

- ``InR`` reads the rate-coded stimulus ``pixels``: a sample of class ``c`` drives group ``c``
  hard (probability 0.5 or 0.4 per 1 ms step) and the others weakly (0.125 or 0.05);
- ``OutR`` repeats ``InR`` one to one, 2 ms later (the projection's delay);
- ``InL`` reads the latency-coded stimulus ``onset`` of the same schedule: group ``c`` fires in
  the window's first step, the others two steps later.

Six data rows (two per class: row ``j`` has class ``j % 3``) are shown in ``ORDER``, 20 ms
each with 10 ms of rest; the run stops at 345 ms, inside the last presentation's window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from brainsim import run
from brainsim.circuit import load_circuit

N_CLASSES = 3
GROUP_SIZE = 4
GROUPS = {c: list(range(c * GROUP_SIZE, (c + 1) * GROUP_SIZE)) for c in range(N_CLASSES)}
LABELS = np.array([0, 1, 2, 0, 1, 2], dtype=np.int64)
"""The class of each data row."""
ORDER = [0, 4, 2, 5, 3, 1, 1, 2, 3, 0, 5, 4]
"""Data rows in the order shown: classes 0 1 2 2 0 1 1 2 0 0 2 1 (all three in the first six)."""
START_MS, PRESENT_MS, REST_MS, DURATION_MS = 0.0, 20.0, 10.0, 345.0
LAG_MS = {"InR": 2.0, "OutR": 4.0, "InL": 1.0}
"""Where each population's responses begin after an onset: a rate draw in the window's step
``m`` reaches the relays in step ``m + 1``, whose spike is stamped at its end, ``m + 2`` ms
(``InR`` fires 2 to 21 ms after the onset); ``OutR`` 2 ms later; a latency spike at step ``m``
is stamped ``m + 1`` ms after the onset."""
RELAY = {"tau_m_ms": 10.0, "v_th_mV": 1.0, "v_reset_mV": 0.0, "e_l_mV": 0.0, "t_ref_ms": 0.0}


def _samples(strong: tuple[float, float], weak: tuple[float, float]) -> list[list[float]]:
    """Row ``j``: ``strong[j // 3]`` for the features of group ``j % 3``, ``weak[j // 3]``
    elsewhere."""
    rows = []
    for j, label in enumerate(LABELS):
        in_group = np.repeat(np.arange(N_CLASSES), GROUP_SIZE) == label
        rows.append(np.where(in_group, strong[j // 3], weak[j // 3]).tolist())
    return rows


def document() -> dict[str, Any]:
    schedule = {"start_ms": START_MS, "present_ms": PRESENT_MS, "rest_ms": REST_MS, "order": ORDER}
    size = N_CLASSES * GROUP_SIZE
    relay = {"size": size, "model": "lif", "params": RELAY}
    return {
        "apiVersion": "brainsim/v1",
        "name": "decoding",
        "simulation": {"dt_ms": 1.0, "duration_ms": DURATION_MS, "seed": 5},
        "populations": {"InR": relay, "OutR": relay, "InL": relay},
        "projections": {
            "relay": {
                "source": "InR",
                "target": "OutR",
                "connectivity": {"rule": "one_to_one"},
                "weight": 5.0,
                "delay_ms": 2.0,
            }
        },
        "stimuli": {
            "pixels": {
                "type": "rate",
                "targets": ["InR"],
                "data": _samples(strong=(1.0, 0.8), weak=(0.25, 0.1)),
                "max_rate_hz": 500.0,
                "weight": 5.0,
                **schedule,
            },
            "onset": {
                "type": "latency",
                "targets": ["InL"],
                "data": _samples(strong=(1.0, 0.8), weak=(0.05, 0.05)),
                "tau_ms": 10.0,
                "weight": 5.0,
                **schedule,
            },
        },
        "recordings": {"spikes": ["InR", "OutR", "InL"]},
    }


def shown() -> tuple[np.ndarray, np.ndarray]:
    """``(onsets_ms, sample_index)`` of the presentations that begin before the run's end."""
    onsets = START_MS + np.arange(len(ORDER)) * (PRESENT_MS + REST_MS)
    began = onsets < DURATION_MS
    return onsets[began], np.asarray(ORDER, dtype=np.int64)[began]


def write_store(directory: Path) -> Path:
    """Run the circuit on one rank into ``directory/decoding.zarr``."""
    circuit_path = directory / "circuit.json"
    circuit_path.write_text(json.dumps(document()), encoding="utf-8")
    store = directory / "decoding.zarr"
    run(load_circuit(circuit_path, memory_limit_bytes=0), store)
    return store
