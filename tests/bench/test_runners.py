"""The brainsim command line, reading a recording with plain zarr, and script result lines."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from bench.runners import Config, RunResult, brainsim_command, parse_script_result, read_store
from bench.script_runtime import RESULT_MARKER
from bench.suite import baseline_peak


def test_brainsim_command_is_what_a_user_types(tmp_path: Path) -> None:
    command = brainsim_command(tmp_path / "c.json", tmp_path / "o.zarr", ranks=2)
    assert command[-9:] == [
        "run",
        str(tmp_path / "c.json"),
        "--out",
        str(tmp_path / "o.zarr"),
        "--overwrite",
        "--progress",
        "none",
        "--ranks",
        "2",
    ]
    single = brainsim_command(tmp_path / "c.json", tmp_path / "o.zarr", ranks=1, duration_ms=20.0)
    assert "--ranks" not in single
    assert single[-2:] == ["--duration-ms", "20.0"]


def test_read_store_counts_spikes_and_reads_provenance(tmp_path: Path) -> None:
    store = tmp_path / "run.zarr"
    root = zarr.open_group(str(store), mode="w")
    root.attrs["brainsim"] = {
        "status": "complete",
        "provenance": {"build_s": 1.25, "wall_s": 4.0},
    }
    for name, count in (("E", 7), ("I", 3)):
        group = root.create_group(f"spikes/{name}")
        group.create_array("node_ids", data=np.arange(count, dtype=np.int64))
        group.create_array("timestamps", data=np.arange(count, dtype=np.float64))
    assert read_store(store) == {
        "status": "complete",
        "build_s": 1.25,
        "sim_s": 2.75,  # a store without ``sim_s``: everything after construction
        "write_s": 0.0,
        "wall_s": 4.0,
        "n_spikes": {"E": 7, "I": 3},
    }
    root.attrs["brainsim"] = {
        "status": "complete",
        "provenance": {"build_s": 1.25, "sim_s": 2.5, "wall_s": 4.0},
    }
    found = read_store(store)
    assert (found["sim_s"], found["write_s"]) == (2.5, pytest.approx(0.25))


def test_parse_script_result_takes_the_marked_line() -> None:
    stdout = f'NEST banner\n{RESULT_MARKER}{{"sim_s": 2.5}}\ntrailing\n'
    assert parse_script_result(stdout) == {"sim_s": 2.5}
    with pytest.raises(ValueError, match="no result line"):
        parse_script_result("nothing here")


def test_run_result_as_dict_has_every_field() -> None:
    result = RunResult("brunel", "nest", 0, ok=True, sim_s=1.0, n_spikes={"E": 3})
    found = result.as_dict()
    assert found["sim_s"] == 1.0
    assert found["n_spikes"] == {"E": 3}
    assert set(found) >= {"case", "config", "rep", "ok", "error", "build_s", "peak_rss_bytes"}
    assert Config("brainsim", "brainsim", 2).workers == 2
    assert sys.executable


def test_baseline_peak_is_the_median_of_the_successful_runs() -> None:
    def run(rep: int, ok: bool, peak: int) -> RunResult:
        return RunResult("baseline", "brainsim", rep, ok=ok, peak_rss_bytes=peak)

    # One high run (as the 2-rank baseline has) no longer sets the baseline; failures are skipped.
    runs = [run(0, True, 450), run(1, True, 433), run(2, False, 999), run(3, True, 436)]
    assert baseline_peak(runs) == 436
    assert baseline_peak([run(0, False, 400)]) is None
    assert baseline_peak([]) is None
