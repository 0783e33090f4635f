"""Shared fixtures of the benchmark-harness tests: circuits and a results document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from brainsim.circuit import Circuit, load_circuit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def brunel() -> Circuit:
    return load_circuit(ROOT / "circuits" / "brunel_delta.yaml")


@pytest.fixture(scope="session")
def izhikevich() -> Circuit:
    return load_circuit(ROOT / "circuits" / "izhikevich_2003.yaml")


@pytest.fixture(scope="session")
def microcircuit() -> Circuit:
    return load_circuit(
        ROOT / "circuits" / "potjans_diesmann_2014.yaml", parameters={"scale": 0.01}
    )


def result_run(case: str, config: str, sim_s: float, build_s: float, spikes: int) -> dict[str, Any]:
    """One successful run record as the suite stores it."""
    return {
        "case": case,
        "config": config,
        "rep": 0,
        "ok": True,
        "error": "",
        "wall_s": sim_s + build_s + 1.0,
        "build_s": build_s,
        "sim_s": sim_s,
        "compile_s": None,
        "write_s": 0.125 if config.startswith("brainsim") else None,
        "peak_rss_bytes": 100 * 2**20,
        "n_synapses": 10_000_000,
        "n_spikes": {"E": spikes},
    }


@pytest.fixture
def results_document() -> dict[str, Any]:
    """A small results document: one case on four configurations, with a note and loads."""
    case = {
        "name": "brunel",
        "duration_ms": 1000.0,
        "population_sizes": {"E": 1000},
        "projections": [["E", 10_000_000]],
        "varying_weights": False,
    }
    return {
        "format": "brainsim-bench/1",
        "started": "2026-01-01T00:00:00Z",
        "finished": "2026-01-01T01:00:00Z",
        "command": "python -m bench all",
        "options": {"reps": 3, "quick": False},
        "machine": {"cpu": "Test CPU", "cores": 2, "memory_bytes": 24 * 2**30, "os": "Linux"},
        "versions": {"brainsim": "0.1.0", "ref-nest": "3.10.0"},
        "cases": {"brunel": case},
        "baselines": {"brainsim": 60 * 2**20, "nest": 80 * 2**20},
        "runs": [
            result_run("brunel", "brainsim", 2.0, 0.5, 37_000),
            result_run("brunel", "brainsim-1rank", 3.8, 0.9, 37_000),
            result_run("brunel", "nest", 12.0, 2.0, 37_500),
            result_run("brunel", "brian2", 6.0, 0.2, 30_000),
        ],
        "notes": ["microcircuit: nest skipped: needs about 30 GiB"],
        "load": [{"when": "start", "load_1min": 1.5}, {"when": "end", "load_1min": 2.5}],
    }
