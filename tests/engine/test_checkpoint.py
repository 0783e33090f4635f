"""Checkpoint and resume: a run stopped at a checkpoint (asked by SIGUSR1, or killed with
SIGKILL after it) and resumed on another number of ranks records exactly what an uninterrupted
run records: every spike, voltage sample and weight snapshot, bit for bit. Real ``mpiexec``.

The circuit (tests/engine/data/checkpoint.yaml) holds every kind of state a checkpoint carries:
LIF (delta and exponential synapses) and Izhikevich neurons, parrots, Poisson, noise and
spike-train input, spikes in flight over delays up to 3.7 ms, two plastic rules (one from
parrots, one recurrent) and state and weight recordings.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from brainsim.engine.checkpoint import latest_checkpoint
from brainsim.engine.launch import mpiexec_command
from tests.stores import assert_same_recording, recorded_arrays

CIRCUIT = Path(__file__).parent / "data" / "checkpoint.yaml"
EVERY_MS = 100.0
EXIT_CHECKPOINTED = 75

pytestmark = pytest.mark.mpi


def _brainsim(*args: str) -> list[str]:
    return [sys.executable, "-m", "brainsim", *args, "--progress", "none"]


def _run(store: Path, ranks: int, *extra: str) -> subprocess.CompletedProcess[str]:
    command = _brainsim("run", str(CIRCUIT), "--out", str(store), "--ranks", str(ranks),
                        "--no-pool", "--overwrite", *extra)  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def _resume(store: Path, ranks: int) -> subprocess.CompletedProcess[str]:
    command = _brainsim("resume", str(store), "--ranks", str(ranks))
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def _root(store: Path) -> dict[str, Any]:
    return dict(zarr.open_group(str(store), mode="r").attrs["brainsim"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray[Any, Any]]:
    """The recording of the whole run, on one rank without checkpoints."""
    store = tmp_path_factory.mktemp("uninterrupted") / "run.zarr"
    done = _run(store, 1)
    assert done.returncode == 0, done.stderr
    arrays = recorded_arrays(store)
    assert arrays["spikes/E/timestamps"].size > 1000  # an active network
    assert arrays["weights/InE/data"].shape[0] == 61  # snapshots at 0 and every 25 ms
    return arrays


def _start(store: Path, ranks: int) -> subprocess.Popen[str]:
    """The ranks under ``mpiexec`` directly (not through brainsim's launcher, which starts
    them in a session of their own), so that signals to the process group reach them all."""
    command = mpiexec_command(ranks, _brainsim(
        "run", str(CIRCUIT), "--out", str(store), "--no-pool", "--overwrite",
        "--checkpoint-every-ms", str(EVERY_MS), "--launched",
    ))  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _wait_for_checkpoint(store: Path, proc: subprocess.Popen[str], step: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = latest_checkpoint(store)
        if found is not None and found.step >= step:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before checkpoint step {step}: {proc.communicate()}")
        time.sleep(0.01)
    pytest.fail(f"no checkpoint at step {step} within 120 s")


def test_checkpoints_change_nothing(
    tmp_path: Path, uninterrupted: dict[str, np.ndarray[Any, Any]]
) -> None:
    store = tmp_path / "run.zarr"
    done = _run(store, 2, "--checkpoint-every-ms", str(EVERY_MS))
    assert done.returncode == 0, done.stderr
    assert_same_recording(uninterrupted, store)
    checkpoint = latest_checkpoint(store)
    assert checkpoint is not None
    assert checkpoint.step == 15000  # the run's end (1500 ms): from it, --until-ms extends
    assert checkpoint.n_ranks == 2
    assert not (store / "checkpoint.next").exists()
    assert not (store / "checkpoint.old").exists()


@pytest.mark.parametrize(("write_ranks", "resume_ranks"), [(1, 2), (2, 3), (3, 1)])
def test_stopped_at_a_checkpoint_resumes_on_any_rank_count(
    tmp_path: Path,
    uninterrupted: dict[str, np.ndarray[Any, Any]],
    write_ranks: int,
    resume_ranks: int,
) -> None:
    """SIGUSR1 (what Slurm sends before a time limit): a checkpoint at the end of the next
    interval, exit code 75 and status ``checkpointed``; resumed on another rank count, the
    recording equals the uninterrupted run's."""
    store = tmp_path / "run.zarr"
    proc = _start(store, write_ranks)
    _wait_for_checkpoint(store, proc, 1000)
    os.killpg(proc.pid, signal.SIGUSR1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_CHECKPOINTED, err
    root = _root(store)
    checkpoint = latest_checkpoint(store)
    assert checkpoint is not None
    assert root["status"] == "checkpointed"
    assert root["simulated_ms"] == pytest.approx(checkpoint.time_ms)
    assert 100.0 <= checkpoint.time_ms < 1500.0
    assert checkpoint.n_ranks == write_ranks
    done = _resume(store, resume_ranks)
    assert done.returncode == 0, done.stderr
    assert_same_recording(uninterrupted, store)
    root = _root(store)
    assert root["status"] == "complete"
    resumed = root["provenance"]["resumed"]
    assert [(r["from_ms"], r["n_ranks"], r["checkpoint_n_ranks"]) for r in resumed] == [
        (checkpoint.time_ms, resume_ranks, write_ranks)
    ]


def test_killed_run_resumes_from_its_last_checkpoint(
    tmp_path: Path, uninterrupted: dict[str, np.ndarray[Any, Any]]
) -> None:
    """SIGKILL after the second checkpoint: the store keeps what was flushed after it, which
    the resumed run replaces; the result equals the uninterrupted run's."""
    store = tmp_path / "run.zarr"
    proc = _start(store, 2)
    _wait_for_checkpoint(store, proc, 2000)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    checkpoint = latest_checkpoint(store)
    assert checkpoint is not None
    assert checkpoint.step >= 2000
    assert _root(store)["status"] == "running"  # nobody wrote an end
    done = _resume(store, 3)
    assert done.returncode == 0, done.stderr
    assert_same_recording(uninterrupted, store)


def test_a_complete_run_is_not_resumed_but_extended_twice(
    tmp_path: Path, uninterrupted: dict[str, np.ndarray[Any, Any]]
) -> None:
    """A complete run has nothing left to resume (refused, the store untouched); extended
    twice, 1,000 -> 1,250 ms on 2 ranks and 1,250 -> 1,500 ms on 1, it ends as the
    uninterrupted run."""
    store = tmp_path / "run.zarr"
    done = _run(store, 1, "--checkpoint-every-ms", str(EVERY_MS), "--duration-ms", "1000")
    assert done.returncode == 0, done.stderr
    before = recorded_arrays(store)
    refused = _resume(store, 1)
    assert refused.returncode == 1
    assert "is complete" in refused.stderr
    assert _root(store)["status"] == "complete"
    assert_same_recording(before, store)
    for ranks, end in ((2, "1250"), (1, "1500")):
        command = _brainsim("resume", str(store), "--ranks", str(ranks), "--until-ms", end)
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
    assert_same_recording(uninterrupted, store)
    assert [r["until_ms"] for r in _root(store)["provenance"]["resumed"]] == [1250.0, 1500.0]
    # Each run that closed the store appended what it used; the refused resume did not.
    runs = _root(store)["provenance"]["runs"]
    assert [r["n_ranks"] for r in runs] == [1, 2, 1]
    assert len({r["id"] for r in runs}) == 3
    assert all(r["status"] == "complete" and r["cpu_s"] > 0 for r in runs)
    assert all(r["sum_rank_rss_bytes"] >= r["max_rank_rss_bytes"] > 50 * 2**20 for r in runs)
    assert runs[1]["sum_rank_rss_bytes"] > runs[1]["max_rank_rss_bytes"]  # two ranks


def test_a_crash_while_writing_a_checkpoint_keeps_the_previous(tmp_path: Path) -> None:
    store = tmp_path / "run.zarr"
    assert _run(store, 1, "--checkpoint-every-ms", str(EVERY_MS)).returncode == 0
    complete = latest_checkpoint(store)
    assert complete is not None
    # Crashed while writing the next one: an incomplete checkpoint.next (no attributes).
    shutil.copytree(store / "checkpoint", store / "checkpoint.next")
    zarr.open_group(str(store / "checkpoint.next"), mode="r+").attrs.clear()
    found = latest_checkpoint(store)
    assert found is not None
    assert found.path == store / "checkpoint"
    # Crashed between the renames: the old one moved aside, the new one complete but not
    # yet in place.
    shutil.rmtree(store / "checkpoint.next")
    (store / "checkpoint").rename(store / "checkpoint.next")
    found = latest_checkpoint(store)
    assert found is not None
    assert found.step == complete.step


def test_resume_refuses_a_store_without_checkpoint(tmp_path: Path) -> None:
    store = tmp_path / "run.zarr"
    assert _run(store, 1).returncode == 0
    done = _resume(store, 1)
    assert done.returncode == 1
    assert "holds no checkpoint" in done.stderr
    assert _root(store)["status"] == "complete"  # untouched


def test_a_complete_run_is_extended_to_a_later_end(
    tmp_path: Path, uninterrupted: dict[str, np.ndarray[Any, Any]]
) -> None:
    """1,000 ms on 1 rank, then ``resume --until-ms 1500`` on 2: the store equals the
    uninterrupted 1,500 ms run (the final-only weight recording's snapshot at 1,000 ms is
    dropped, as that run never took it)."""
    store = tmp_path / "run.zarr"
    done = _run(store, 1, "--checkpoint-every-ms", str(EVERY_MS), "--duration-ms", "1000")
    assert done.returncode == 0, done.stderr
    checkpoint = latest_checkpoint(store)
    assert checkpoint is not None
    assert checkpoint.time_ms == 1000.0  # the run's end
    refused = subprocess.run(_brainsim("resume", str(store), "--until-ms", "1000"),
                             capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert refused.returncode == 1
    assert "must be after the checkpoint" in refused.stderr
    command = _brainsim("resume", str(store), "--ranks", "2", "--until-ms", "1500")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert_same_recording(uninterrupted, store)
    root = _root(store)
    assert root["duration_ms"] == 1500.0
    assert root["status"] == "complete"
