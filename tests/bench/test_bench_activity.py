"""bench.bench_activity on a short run: flushes of a running job and the lag to a real
StreamActivity client are measured, not assumed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.bench_activity import measure


@pytest.mark.slow
def test_a_short_brunel_run_is_followed(tmp_path: Path) -> None:
    args = argparse.Namespace(
        circuit="circuits/brunel_delta.yaml", duration_ms=1500.0, ranks=1, bin_ms=10.0
    )
    found = measure(args, tmp_path)
    # The run lasts a few seconds and flushes about once a second while it runs.
    assert found["flushes"] >= 2
    assert found["messages_while_running"] >= 2
    assert 0 <= found["lag_s_median"] <= found["lag_s_max"]
    assert found["flush_gap_s_median"] > 0
