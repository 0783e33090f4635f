"""The writer on 1, 2 and 3 real MPI ranks: no lost updates, rank-count-invariant content (byte
for byte), data readable by another process mid-run, a failed rank leaves a store saying so,
and ranks that disagree on a weight snapshot fail together."""

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
    # Each rank's synapse count arrives, in rank order, with their sum.
    per_rank = [synthetic.synapses_of(rank) for rank in range(n_ranks)]
    assert doc["provenance"]["n_synapses_per_rank"] == per_rank
    assert doc["provenance"]["n_synapses"] == sum(per_rank)
    # What each rank used arrives as one entry of the run: CPU summed, peaks as max and sum.
    (run,) = doc["provenance"]["runs"]
    used = [synthetic.resources_of(rank) for rank in range(n_ranks)]
    assert run["n_ranks"] == n_ranks
    assert run["status"] == "complete"
    assert run["cpu_s"] == pytest.approx(sum(r.cpu_s for r in used))
    assert run["max_rank_rss_bytes"] == max(r.peak_rss_bytes for r in used)
    assert run["sum_rank_rss_bytes"] == sum(r.peak_rss_bytes for r in used)
    assert run["end_time"] == doc["provenance"]["end_time"]


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


def store_files(store: Path) -> dict[str, bytes]:
    """Every file of a store but the root metadata (whose provenance names the rank count)."""
    return {
        str(path.relative_to(store)): path.read_bytes()
        for path in sorted(store.rglob("*"))
        if path.is_file() and path != store / "zarr.json"
    }


def test_every_chunk_and_array_file_is_byte_identical_for_any_rank_count(
    stores: dict[int, Path],
) -> None:
    # EE chunks cut through the runs of synapses each rank owns, II chunk rows cross flushes,
    # and with 2 and 3 ranks some rank has no IE synapse at all (rank 0, which publishes).
    root = zarr.open_group(str(stores[1]), mode="r")
    assert root["weights/EE/data"].chunks == (1, 21)
    assert root["weights/II/data"].chunks == (7, 3)
    for n_ranks in (2, 3):
        owned = [synthetic.owned_synapses(0, rank, n_ranks) for rank in range(n_ranks)]
        boundaries = range(21, 62, 21)
        assert any(first < b < first + count for first, count in owned for b in boundaries)
        assert synthetic.owned_synapses(1, 0, n_ranks)[1] == 0
    reference = store_files(stores[1])
    assert any(name.startswith("weights/EE/data/c/") for name in reference)
    for n_ranks in (2, 3):
        files = store_files(stores[n_ranks])
        assert sorted(files) == sorted(reference)
        assert [name for name in reference if files[name] != reference[name]] == []


def failing_run(store: Path, *args: str) -> str:
    """Run 3 ranks that must fail; return their stderr."""
    done = subprocess.run(
        mpiexec(3, str(store), "--steps", str(N_STEPS), *args),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    return done.stderr


def test_ranks_that_disagree_on_a_snapshot_all_fail_and_say_why(tmp_path: Path) -> None:
    store = tmp_path / "skewed.zarr"
    stderr = failing_run(store, "--skew-snapshot", "4")
    # Every rank raised the same error (nobody hung waiting for the others).
    assert stderr.count("the ranks disagree on the snapshot") >= 3, stderr[-4000:]
    root = zarr.open_group(str(store), mode="r")
    doc = root.attrs["brainsim"]
    assert doc["status"] == "failed"
    assert "weights/EE: the ranks disagree on the snapshot" in doc["reason"]
    assert "rank 0: (4, 28.0); rank 1: (4, 28.0); rank 2: (4, 28.05)" in doc["reason"]
    # Snapshots flushed before the disagreement are kept.
    assert root["weights/EE/time"][...].tolist() == pytest.approx([0.0, 7.0, 14.0, 21.0])


def test_a_synapse_given_by_two_ranks_fails_the_run(tmp_path: Path) -> None:
    store = tmp_path / "duplicate.zarr"
    stderr = failing_run(store, "--duplicate-synapse")
    # Every rank sees the ranges of all and refuses them before anything is written.
    assert stderr.count("weights/EE: the ranks' synapse columns overlap") >= 3, stderr[-4000:]
    root = zarr.open_group(str(store), mode="r")
    assert root.attrs["brainsim"]["status"] == "failed"
    assert "weights" not in root


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
        for path, values in synthetic.expected(steps_done, finished=False).items():
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
    # Every flushed spike, sample and weight snapshot is kept (the final snapshots never came).
    for path, values in synthetic.expected(last_flush, finished=False).items():
        np.testing.assert_array_equal(root[path][...], values, err_msg=path)
