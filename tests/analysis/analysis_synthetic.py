"""The analysis tests' recording: Poisson spikes of two populations and a voltage report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainsim.exchange import LocalCommunicator
from brainsim.recording import PopulationInfo, ReportSpec, RunInfo, ZarrRecorder

DT_MS = 0.1
N_STEPS = 5000
SIZES = {"E": 80, "I": 20}
RATES_HZ = {"E": 20.0, "I": 50.0}
V_NODES = np.array([0, 5, 9], dtype=np.int64)
V_EVERY = 10
"""The voltage report samples every 10 steps (1 ms)."""


def poisson_steps(population: str) -> tuple[np.ndarray, np.ndarray]:
    """Global (steps, ids) of a Poisson population, sorted by step then id."""
    rng = np.random.default_rng(sorted(SIZES).index(population) + 11)
    fired = rng.random((N_STEPS, SIZES[population])) < RATES_HZ[population] * DT_MS / 1000.0
    steps, ids = np.nonzero(fired)
    return steps.astype(np.int64), ids.astype(np.int64)


def voltage(sample: int) -> np.ndarray:
    return (-70.0 + 5.0 * np.sin(0.05 * sample + V_NODES)).astype(np.float32)


def write_store(store: Path) -> Path:
    """Record the Poisson run into ``store`` through ZarrRecorder on one rank."""
    info = RunInfo(
        circuit_document={"name": "poisson"},
        circuit_sha256="c" * 64,
        seed=3,
        dt_ms=DT_MS,
        duration_ms=N_STEPS * DT_MS,
        populations={
            "E": PopulationInfo(size=SIZES["E"], model="lif", gid_offset=0),
            "I": PopulationInfo(size=SIZES["I"], model="lif", gid_offset=SIZES["E"]),
        },
        spike_populations=("E", "I"),
        reports=(
            ReportSpec(
                population="E",
                variable="v",
                units="mV",
                interval_ms=V_EVERY * DT_MS,
                node_ids=V_NODES,
                n_samples=N_STEPS // V_EVERY,
            ),
        ),
        provenance={"start_time": "2024-05-01T12:00:00+00:00", "backend": "test"},
    )
    recorder = ZarrRecorder(store, LocalCommunicator())
    recorder.open(info)
    for population in SIZES:
        recorder.add_spikes(population, *poisson_steps(population))
    positions = np.arange(V_NODES.size, dtype=np.int64)
    for sample in range(N_STEPS // V_EVERY):
        recorder.add_state(0, sample, positions, voltage(sample))
    recorder.close("complete", build_s=0.1)
    return store
