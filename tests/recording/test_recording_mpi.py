"""The writer on 1, 2 and 3 real MPI ranks: no lost updates, rank-count-invariant content,
data readable by another process mid-run, and a failed rank leaves a store saying so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import recording_synthetic as synthetic
import zarr

pytestmark = pytest.mark.mpi

SCRIPT = Path(synthetic.__file__).resolve()
REPO = SCRIPT.parents[2]
N_STEPS = 1200
"""About 26,000 spikes in ~100 chunks and ~40 irregular flushes, so chunks cross flushes often."""


def mpiexec(n_ranks: int, *args: str) -> list[str]:
    return ["mpiexec", "-n", str(n_ranks), sys.executable, str(SCRIPT), *args]


def environment() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


def write_store(n_ranks: int, store: Path, *args: str, check: bool = True) -> int:
    done = subprocess.run(
        mpiexec(n_ranks, str(store), "--steps", str(N_STEPS), *args),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr[-4000:]
    return done.returncode


def array_paths(root: zarr.Group) -> list[str]:
    return sorted(
        path for path, node in root.members(max_depth=None) if isinstance(node, zarr.Array)
    )


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = {}
    for n_ranks in (1, 2, 3):
        out[n_ranks] = tmp_path_factory.mktemp(f"ranks{n_ranks}") / "run.zarr"
        write_store(n_ranks, out[n_ranks])
    return out


@pytest.mark.parametrize("n_ranks", [1, 2, 3])
def test_every_spike_and_sample_arrives(stores: dict[int, Path], n_ranks: int) -> None:
    root = zarr.open_group(str(stores[n_ranks]), mode="r")
    expected = synthetic.expected(N_STEPS)
    assert sorted(expected) == array_paths(root)
    for path, values in expected.items():
        np.testing.assert_array_equal(root[path][...], values, err_msg=path)
    doc = root.attrs["brainsim"]
    assert doc["status"] == "complete"
    assert doc["provenance"]["n_ranks"] == n_ranks


def test_content_and_chunking_do_not_depend_on_the_rank_count(stores: dict[int, Path]) -> None:
    roots = {n: zarr.open_group(str(path), mode="r") for n, path in stores.items()}
    reference = roots[1]
    for n_ranks in (2, 3):
        for path in array_paths(reference):
            one, many = reference[path], roots[n_ranks][path]
            assert one.metadata.to_dict() == many.metadata.to_dict(), path
            assert np.array_equal(one[...], many[...], equal_nan=True), path
        ours = dict(roots[n_ranks].attrs["brainsim"])
        theirs = dict(reference.attrs["brainsim"])
        for doc in (ours, theirs):
            doc.pop("provenance")
        assert ours == theirs


def test_a_running_store_is_readable_by_another_process(tmp_path: Path) -> None:
    store = tmp_path / "live.zarr"
    ready, go = tmp_path / "live.zarr.ready", tmp_path / "live.zarr.go"
    writer = subprocess.Popen(
        mpiexec(2, str(store), "--steps", str(N_STEPS), "--pause-after-flush", "7"),
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert writer.poll() is None, writer.communicate()[1]
            assert time.monotonic() < deadline, "the writer never paused"
            time.sleep(0.05)
        steps_done = json.loads(ready.read_text())["steps_done"]
        assert 0 < steps_done < N_STEPS
        root = zarr.open_group(str(store), mode="r")
        doc = root.attrs["brainsim"]
        assert doc["status"] == "running"
        assert doc["simulated_ms"] == pytest.approx(steps_done * synthetic.DT_MS)
        for path, values in synthetic.expected(steps_done).items():
            np.testing.assert_array_equal(root[path][...], values, err_msg=path)
    finally:
        go.touch()
        _, stderr = writer.communicate(timeout=120)
    assert writer.returncode == 0, stderr[-4000:]
    assert zarr.open_group(str(store), mode="r").attrs["brainsim"]["status"] == "complete"


def test_a_failing_rank_leaves_a_readable_store_marked_failed(tmp_path: Path) -> None:
    store = tmp_path / "failed.zarr"
    fail_at = 600
    assert write_store(3, store, "--fail-at-step", str(fail_at), check=False) != 0
    root = zarr.open_group(str(store), mode="r")
    doc = root.attrs["brainsim"]
    assert doc["status"] == "failed"
    assert doc["reason"] == f"synthetic failure at step {fail_at}"
    last_flush = max(p for p in synthetic.flush_steps(N_STEPS) if p <= fail_at)
    assert doc["simulated_ms"] == pytest.approx(last_flush * synthetic.DT_MS)
    for path, values in synthetic.expected(last_flush).items():
        np.testing.assert_array_equal(root[path][...], values, err_msg=path)
