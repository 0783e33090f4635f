"""A real run writes its store without zarr-python, and the store is zarr-python's.

The recorder writes through :mod:`brainsim.recording.zarr_local` so that a rank's start-up
skips zarr-python's imports (docs/benchmarks.md, start-up budget). This checks both halves on a
whole ``brainsim run`` in a fresh interpreter: zarr-python was never imported there, and what
it wrote is what zarr-python itself makes of the store (re-consolidating a copy with
zarr-python leaves the root metadata byte for byte the same; zarr-python reads the spikes the
recorder reports).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.errors import ZarrUserWarning

from brainsim.recording import open_store

ROOT = Path(__file__).resolve().parents[2]


def _array(group: zarr.Group, path: str) -> zarr.Array[Any]:
    node = group[path]
    assert isinstance(node, zarr.Array), path
    return node


_RUN = """
import json, sys
from brainsim.cli import main
code = main(["run", sys.argv[1], "--ranks", "1", "--no-pool", "--progress", "none",
             "--duration-ms", "50", "--out", sys.argv[2]])
print(json.dumps({"code": code, "zarr": sorted(m for m in sys.modules if m == "zarr"
                  or m.startswith("zarr.")), "numcodecs": "numcodecs" in sys.modules}))
"""


def test_a_run_writes_a_zarr_python_store_without_importing_zarr(tmp_path: Path) -> None:
    out = tmp_path / "run.zarr"
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(ROOT / "circuits" / "tiny.yaml"), str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0
    assert seen["zarr"] == [], f"the run imported zarr-python: {seen['zarr'][:5]}"
    assert seen["numcodecs"], "the run wrote no compressed chunk"

    # zarr-python's own consolidation of the finished store changes nothing.
    again = tmp_path / "again.zarr"
    shutil.copytree(out, again)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZarrUserWarning)
        zarr.consolidate_metadata(str(again))
    assert (again / "zarr.json").read_bytes() == (out / "zarr.json").read_bytes()

    # zarr-python reads every recorded spike, as brainsim's reader reports them.
    store = open_store(out)
    assert store.status == "complete"
    group = zarr.open_group(str(out), mode="r")
    n_spikes = 0
    for population in store.spike_populations:
        times = np.asarray(_array(group, f"spikes/{population}/timestamps")[:])
        ids = np.asarray(_array(group, f"spikes/{population}/node_ids")[:])
        trains = store.spikes(population)
        np.testing.assert_array_equal(times, trains.times_ms)
        np.testing.assert_array_equal(ids, trains.node_ids)
        n_spikes += times.size
    assert n_spikes > 0
