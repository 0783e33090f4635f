"""Faults around checkpoints, on real small filesystems: a disk that fills up while a run
records and checkpoints, and a store on a read-only filesystem.

Each filesystem is a tmpfs mounted in a private mount namespace (``unshare -rm``: no root
needed where user namespaces are allowed, as on the CI machines), which vanishes with the
process; what the run left is copied out before it does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zarr

from brainsim.recording.checkpoint import latest_checkpoint
from tests.engine.test_checkpoint import CIRCUIT, _resume, _run
from tests.stores import assert_same_recording, recorded_arrays

pytestmark = pytest.mark.mpi


def _in_small_filesystem(
    script: str, size_kb: int, tmp_path: Path, *, read_only: bool = False
) -> str:
    """Run the shell ``script`` with a fresh tmpfs of ``size_kb`` KiB at ``tmp_path/fs``; its
    output (stdout and stderr)."""
    unshare = shutil.which("unshare")
    assert unshare is not None, "the fault tests need util-linux's unshare"
    mount = tmp_path / "fs"
    mount.mkdir()
    options = f"size={size_kb}k" + (",ro" if read_only else "")
    command = f"mount -t tmpfs -o {options} tmpfs {mount} && {script}"
    done = subprocess.run([unshare, "-rm", "sh", "-c", command], capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert "mount:" not in done.stderr, f"could not mount a tmpfs: {done.stderr}"
    return done.stdout + done.stderr


def _brainsim_line(*args: str) -> str:
    return " ".join([sys.executable, "-m", "brainsim", *args, "--progress", "none"])


def test_a_full_disk_fails_clearly_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    """1,200 KiB hold about 1.1 s of the test circuit's recording and two checkpoints: the run
    fails when the disk is full, says why in the store, keeps its last complete checkpoint, and
    resumed elsewhere it records exactly what an uninterrupted run does."""
    reference = tmp_path / "reference.zarr"
    assert _run(reference, 1).returncode == 0
    expected: dict[str, Any] = recorded_arrays(reference)
    saved = tmp_path / "saved"
    store = tmp_path / "fs" / "run.zarr"
    run = _brainsim_line("run", str(CIRCUIT), "--out", str(store), "--no-pool",
                         "--checkpoint-every-ms", "100")  # fmt: skip
    output = _in_small_filesystem(f"{run}; echo exit=$?; cp -r {store} {saved}", 1200, tmp_path)
    assert "exit=1" in output, output  # failed (not 2: the input was fine)
    assert "No space left on device" in output
    root = dict(zarr.open_group(str(saved), mode="r").attrs["brainsim"])
    # The disk filled while a checkpoint (freed again) or a flush of the recording was being
    # written; in the second case there may be no room left even for the final status.
    if root["status"] != "running":
        assert root["status"] == "failed"
        assert "No space left on device" in root["reason"]
    checkpoint = latest_checkpoint(saved)
    assert checkpoint is not None
    assert 0 < checkpoint.time_ms < 1500.0
    assert not (saved / "checkpoint.next").exists()  # the partial one was removed
    done = _resume(saved, 2)
    assert done.returncode == 0, done.stderr
    assert_same_recording(expected, saved)


def test_a_store_on_a_read_only_filesystem_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    store = tmp_path / "fs" / "run.zarr"
    run = _brainsim_line("run", str(CIRCUIT), "--out", str(store), "--no-pool",
                         "--checkpoint-every-ms", "100")  # fmt: skip
    output = _in_small_filesystem(f"{run}; echo exit=$?", 1024, tmp_path, read_only=True)
    assert "exit=2" in output, output
    assert f"could not create the recording at {store}" in output, output
    assert "Read-only file system" in output, output
