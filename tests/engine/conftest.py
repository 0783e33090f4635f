"""Shared helpers for engine tests: running the CLI for real and reading stores with plain zarr."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zarr

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"


def brainsim_run(
    circuit: Path, out: Path, *extra: str, ranks: int = 1, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m brainsim run`` (with ``--ranks``: forked ranks here, see
    :mod:`brainsim.exchange.forked`; ``--launcher mpiexec`` in ``extra`` for mpiexec's)."""
    cmd = [sys.executable, "-m", "brainsim", "run", str(circuit), "--out", str(out)]
    cmd += ["--ranks", str(ranks), "--progress", "none", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def start_long_run(out: Path) -> subprocess.Popen[str]:
    """A 2-rank run long enough to be interrupted (through a pool where one of 2 ranks runs),
    returned once its first progress line is out."""
    cmd = [sys.executable, "-m", "brainsim", "run", str(DATA / "features.yaml"), "--out",
           str(out), "--ranks", "2", "--duration-ms", "100000", "--progress", "json"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["event"] == "progress":
            break
    return proc


def interrupt_long_run(
    out: Path, interrupt: Callable[[subprocess.Popen[str]], None]
) -> tuple[int, str]:
    """Start :func:`start_long_run`, call ``interrupt`` with its process once it is under way,
    and return the exit code and standard error; the process is killed and reaped whatever
    happens."""
    with start_long_run(out) as proc:
        try:
            interrupt(proc)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate()
    return proc.returncode, err


def assert_cancelled_mid_run(out: Path) -> None:
    """The store of an interrupted :func:`start_long_run` says ``cancelled``, part-way."""
    attrs = root_attrs(out)
    assert attrs["status"] == "cancelled"
    assert 0 < float(attrs["simulated_ms"]) < 100000  # type: ignore[arg-type]


def read_store(path: Path) -> dict[str, np.ndarray]:
    """Every array of a recording, by path, read with plain zarr (no brainsim)."""
    root = zarr.open_group(str(path), mode="r")
    out: dict[str, np.ndarray] = {}

    def walk(group: zarr.Group, prefix: str) -> None:
        for name, arr in group.arrays():
            out[f"{prefix}{name}"] = np.asarray(arr[...])
        for name, sub in group.groups():
            walk(sub, f"{prefix}{name}/")

    walk(root, "")
    return out


def root_attrs(path: Path) -> dict[str, object]:
    """The ``brainsim`` root attributes of a store."""
    return dict(zarr.open_group(str(path), mode="r").attrs["brainsim"])


Store = dict[str, np.ndarray]


def run_on_ranks(circuit: Path, base: Path, ranks: tuple[int, ...]) -> dict[int, Store]:
    """Run ``circuit`` on each rank count (forked ranks beyond one); every store's arrays."""
    out = {}
    for n in ranks:
        path = base / f"r{n}.zarr"
        result = brainsim_run(circuit, path, ranks=n)
        assert result.returncode == 0, result.stderr
        attrs = root_attrs(path)
        assert attrs["status"] == "complete"
        assert attrs["provenance"]["n_ranks"] == n  # type: ignore[index]
        out[n] = read_store(path)
    return out


def assert_bit_identical(one: Store, other: Store) -> None:
    """The same arrays, with the same dtypes, shapes and bytes."""
    assert sorted(one) == sorted(other)
    for name, arr in one.items():
        assert arr.dtype == other[name].dtype, name
        assert arr.shape == other[name].shape, name
        assert np.array_equal(arr.view(np.uint8), other[name].view(np.uint8)), name
