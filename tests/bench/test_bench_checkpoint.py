"""bench.bench_checkpoint on a short Brunel run: one checkpoint half-way, its size and write
time, and what resuming costs, all measured from real runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_checkpoint import measure


@pytest.mark.slow
def test_a_short_brunel_run_is_measured(tmp_path: Path) -> None:
    found = measure("brunel", 1, 20.0, 1.0, tmp_path)
    assert found["sim_s"] > 0
    assert 0 < found["checkpoint_s"] < 60
    # 12,500 neurons: the state (two float64 rows), the ring buffers (two float64 tables of
    # 16 slots) and the refractory counters, compressed: a few hundred kB to a few MB.
    assert 0.05 < found["checkpoint_mb"] < 10
    assert found["resume_s"] > 0  # the resume's start-up, build and load, beyond simulating
    assert found["checkpoint_ratio"] == pytest.approx(found["checkpoint_s"] / found["sim_s"])
