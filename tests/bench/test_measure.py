"""Wall time and process-tree peak memory of a measured command."""

from __future__ import annotations

import os
import sys

from bench.measure import (
    MEMORY_SAMPLE_INTERVAL_S,
    available_memory_bytes,
    process_tree,
    run_measured,
)

ALLOCATE = (
    "import time; block = bytearray({size}); "
    "block[::4096] = b'x' * len(block[::4096]); time.sleep(0.5)"
)
"""Python that touches every page of a block (so it is resident) and holds it for 0.5 s."""


def test_peak_rss_sees_a_large_allocation() -> None:
    size = 200 * 2**20
    measured = run_measured([sys.executable, "-c", ALLOCATE.format(size=size)], timeout_s=60)
    assert measured.returncode == 0
    assert measured.peak_rss_bytes >= size
    assert measured.wall_s >= 0.5
    assert not measured.timed_out


LATE_PEAK = (
    "import time; time.sleep(0.3); block = bytearray({size}); "
    "block[::4096] = b'x' * len(block[::4096]); time.sleep(0.03)"
)
"""Python that grows just before it exits, as a rank closing its recording does."""


def test_a_peak_just_before_exit_is_seen_by_memory_sampling() -> None:
    size = 64 * 2**20
    command = [sys.executable, "-c", LATE_PEAK.format(size=size)]
    found = [
        run_measured(command, timeout_s=60, sample_interval_s=MEMORY_SAMPLE_INTERVAL_S)
        for _ in range(3)
    ]
    assert all(m.returncode == 0 for m in found)
    assert min(m.peak_rss_bytes for m in found) >= size


def test_peak_rss_sums_over_the_process_tree() -> None:
    size = 120 * 2**20
    allocate = ALLOCATE.format(size=size)
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {allocate!r}])"
    script = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    measured = run_measured(
        [sys.executable, "-c", ALLOCATE.format(size=size) + "\n" + script], timeout_s=60
    )
    # The parent's block stays alive while the grandchild allocates its own.
    assert measured.peak_rss_bytes >= 2 * size


def test_timeout_kills_the_whole_group() -> None:
    measured = run_measured([sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5)
    assert measured.timed_out
    assert measured.returncode != 0
    assert measured.wall_s < 10


def test_output_is_captured() -> None:
    measured = run_measured(
        [
            sys.executable,
            "-c",
            "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
        ]
    )
    assert (measured.returncode, measured.stdout, measured.stderr) == (3, "out\n", "err\n")


def test_process_tree_contains_this_process() -> None:
    assert process_tree(os.getpid())[0] == os.getpid()
    assert available_memory_bytes() > 0


def test_memory_cap_kills_a_run_that_outgrows_it() -> None:
    allocate = ALLOCATE.format(size=400 * 2**20).replace("time.sleep(0.5)", "time.sleep(5)")
    measured = run_measured([sys.executable, "-c", allocate], memory_cap_bytes=150 * 2**20)
    assert measured.over_memory_cap
    assert measured.returncode == -9
    assert measured.wall_s < 5
