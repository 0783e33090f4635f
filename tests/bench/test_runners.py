"""The brainsim command line, runs through a pool, reading a recording with plain zarr, and
script result lines."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from bench import runners
from bench.measure import Measured
from bench.runners import (
    Config,
    RunResult,
    brainsim_command,
    parse_script_result,
    read_store,
    run_brainsim,
    run_reference,
    start_brainsim_pool,
)
from bench.script_runtime import RESULT_MARKER
from bench.suite import baseline_peak
from brainsim.circuit import load_circuit
from brainsim.engine import build_network
from brainsim.exchange import LocalCommunicator
from brainsim.pool.client import list_pools, stop_pool
from tests.bench.conftest import ROOT


def test_brainsim_command_is_what_a_user_types(tmp_path: Path) -> None:
    pooled = brainsim_command(tmp_path / "c.json", tmp_path / "o.zarr", ranks=2, pool=True)
    assert pooled[-9:] == [
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
    # Runs meant for fresh ranks never go to a pool running on the machine.
    fresh = brainsim_command(tmp_path / "c.json", tmp_path / "o.zarr", ranks=2)
    assert fresh == [*pooled, "--no-pool"]
    single = brainsim_command(tmp_path / "c.json", tmp_path / "o.zarr", ranks=1, duration_ms=20.0)
    assert "--ranks" not in single
    assert single[-3:] == ["--duration-ms", "20.0", "--no-pool"]


def test_brainsim_command_prefers_the_script_next_to_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setattr(shutil, "which", lambda name: f"/shims/{name}")
    script = bin_dir / "brainsim"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    # Not executable: the one on PATH (a pyenv shim, say) is next.
    assert brainsim_command(tmp_path / "c.json", tmp_path / "o.zarr", 1)[0] == "/shims/brainsim"
    script.chmod(0o755)
    assert brainsim_command(tmp_path / "c.json", tmp_path / "o.zarr", 1)[0] == str(script)
    script.unlink()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    command = brainsim_command(tmp_path / "c.json", tmp_path / "o.zarr", 1)
    assert command[:4] == [str(bin_dir / "python"), "-m", "brainsim", "run"]


def _succeeded(command: list[str], **_: object) -> Measured:
    return Measured(0, 0.25, 5 * 2**20, "", "", timed_out=False)


@pytest.mark.parametrize(
    "pools",
    [
        [[], []],  # no pool running
        [[{"ranks": 2, "jobs_done": 4}], [{"ranks": 2, "jobs_done": 4}]],  # the pool refused
        [[{"ranks": 1, "jobs_done": 4}], [{"ranks": 1, "jobs_done": 5}]],  # another size's job
    ],
)
def test_a_pool_run_the_pool_did_not_take_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pools: list[list[dict[str, int]]]
) -> None:
    answers = iter(pools)
    monkeypatch.setattr(runners, "list_pools", lambda: next(answers))
    monkeypatch.setattr(runners, "run_measured", _succeeded)
    config = Config("brainsim-pool", "brainsim", 2, pool=True)
    result = run_brainsim(config, "tiny", 0, tmp_path / "c.json", tmp_path / "o.zarr", 60.0)
    assert not result.ok
    assert result.error == "did not go through the pool"
    assert (result.wall_s, result.peak_rss_bytes) == (0.25, None)


def test_runs_through_a_real_pool_and_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tempfile.mkdtemp(prefix="bsb-")
    monkeypatch.setenv("BRAINSIM_POOL_DIR", directory)
    tiny = ROOT / "circuits" / "tiny.yaml"
    try:
        assert start_brainsim_pool(1) is None
        (info,) = list_pools()
        assert (info["ranks"], info["jobs_done"], info["idle_timeout_s"]) == (1, 0, None)
        config = Config("brainsim-pool", "brainsim", 1, pool=True)
        # Generous limits: on a fresh clone the first run compiles the kernels (minutes).
        pooled = run_brainsim(config, "tiny", 0, tiny, tmp_path / "p.zarr", 500.0)
        assert pooled.ok, pooled.error
        assert pooled.peak_rss_bytes is None  # the client's alone would mean nothing
        # A fresh-rank configuration leaves the pool alone, and simulates the same network.
        config = Config("brainsim-1rank", "brainsim", 1)
        fresh = run_brainsim(config, "tiny", 0, tiny, tmp_path / "f.zarr", 500.0)
        assert fresh.ok, fresh.error
        assert fresh.peak_rss_bytes
        assert [(p["ranks"], p["jobs_done"]) for p in list_pools()] == [(1, 1)]
        assert set(pooled.n_spikes) == {"E", "I"}
        assert pooled.n_spikes == fresh.n_spikes
        # The synapses the run built, not the circuit's expected 1,000 (pairwise_bernoulli).
        built = build_network(load_circuit(tiny), LocalCommunicator()).n_synapses
        assert pooled.n_synapses == fresh.n_synapses == built
        assert fresh.n_synapses_per_rank == [built]
    finally:
        stop_pool(1)
        shutil.rmtree(directory, ignore_errors=True)


def test_a_pool_that_cannot_start_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tempfile.mkdtemp(prefix="bsb-")
    monkeypatch.setenv("BRAINSIM_POOL_DIR", directory)
    Path(directory).chmod(0o777)  # brainsim trusts no directory that others may write
    try:
        reason = start_brainsim_pool(1)
        assert reason is not None
        assert "others may write" in reason
    finally:
        shutil.rmtree(directory, ignore_errors=True)


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
        "n_synapses": None,  # a store from before synapse counts were recorded
        "n_synapses_per_rank": None,
        "n_spikes": {"E": 7, "I": 3},
        "weights": {},  # no plastic projections
    }
    root.attrs["brainsim"] = {
        "status": "complete",
        "provenance": {
            "build_s": 1.25,
            "sim_s": 2.5,
            "wall_s": 4.0,
            "n_synapses": 977,
            "n_synapses_per_rank": [490, 487],
        },
    }
    found = read_store(store)
    assert (found["sim_s"], found["write_s"]) == (2.5, pytest.approx(0.25))
    assert (found["n_synapses"], found["n_synapses_per_rank"]) == (977, [490, 487])


def test_read_store_takes_the_final_weights_of_each_plastic_projection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "w.zarr"
    _store(store, {"n_synapses": 10, "n_synapses_per_rank": [6, 4]})
    root = zarr.open_group(str(store), mode="r+")
    first = np.full(5, 0.5, dtype=np.float32)
    final = np.array([0.25, 0.5, 0.75, 1.0, 1.5], dtype=np.float32)
    root.create_group("weights/EE").create_array("data", data=np.stack([first, final]))
    root.create_group("weights/EZ").create_array("data", data=np.zeros((0, 3), np.float32))
    monkeypatch.setattr(runners, "WEIGHT_READ_CHUNK", 2)  # read in three chunks
    found = read_store(store)["weights"]
    assert found["EE"] == {
        "count": 5,
        "mean": pytest.approx(final.mean()),
        "sd": pytest.approx(final.astype(np.float64).std()),
    }
    assert found["EZ"] == {"count": 0, "mean": None, "sd": None}  # no snapshot
    monkeypatch.setattr(runners, "run_measured", _succeeded)
    result = run_brainsim(
        Config("brainsim", "brainsim", 2), "p", 0, tmp_path / "c.json", store, 60.0
    )
    assert result.ok, result.error
    assert result.weights["EE"]["count"] == 5
    assert result.as_dict()["weights"]["EE"]["mean"] == pytest.approx(0.8)


def _store(path: Path, provenance: dict[str, Any]) -> None:
    """A complete store with one spike of E and ``provenance`` (times added)."""
    root = zarr.open_group(str(path), mode="w")
    root.attrs["brainsim"] = {
        "status": "complete",
        "provenance": {"build_s": 0.5, "sim_s": 1.0, "wall_s": 2.0, **provenance},
    }
    group = root.create_group("spikes/E")
    group.create_array("node_ids", data=np.zeros(1, dtype=np.int64))
    group.create_array("timestamps", data=np.ones(1, dtype=np.float64))


def test_a_brainsim_run_reports_the_synapses_its_ranks_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runners, "run_measured", _succeeded)
    config = Config("brainsim", "brainsim", 2)
    store = tmp_path / "o.zarr"
    _store(store, {"n_synapses": 1_003, "n_synapses_per_rank": [498, 505]})
    result = run_brainsim(config, "tiny", 0, tmp_path / "c.json", store, 60.0)
    assert result.ok, result.error
    assert (result.n_synapses, result.n_synapses_per_rank) == (1_003, [498, 505])
    assert result.as_dict()["n_synapses_per_rank"] == [498, 505]
    # A store without the count fails the run rather than use another count.
    _store(store, {})
    result = run_brainsim(config, "tiny", 0, tmp_path / "c.json", store, 60.0)
    assert not result.ok
    assert result.n_synapses is None
    assert "no synapse count" in result.error


def test_a_nest_run_keeps_its_presimulation_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = {
        "build_s": 2.0,
        "sim_s": 10.0,
        "presim_ms": 1.5,
        "n_synapses": 15_625_000,
        "n_spikes": {"E": 370_000, "I": 93_000},
        "n_spikes_presim": {"E": 0, "I": 2},
    }

    def measured(command: list[str], **_: object) -> Measured:
        stdout = f"NEST banner\n{RESULT_MARKER}{json.dumps(printed)}\n"
        return Measured(0, 13.0, 5 * 2**30, stdout, "", timed_out=False)

    monkeypatch.setattr(runners, "run_measured", measured)
    config = Config("nest", "nest", 2)
    result = run_reference(config, "brunel", 0, Path("python"), tmp_path / "s.py", [], 60.0)
    assert result.ok, result.error
    assert (result.build_s, result.sim_s, result.presim_ms) == (2.0, 10.0, 1.5)
    assert result.n_synapses == 15_625_000
    assert result.n_spikes == {"E": 370_000, "I": 93_000}
    assert result.n_spikes_presim == {"E": 0, "I": 2}
    assert (result.weights, result.weights_s) == ({}, None)  # no plastic projections
    printed["weights"] = {"EE": {"count": 10_000_000, "mean": 0.1003, "sd": 0.0026}}
    printed["weights_s"] = 3.5
    result = run_reference(config, "brunel", 0, Path("python"), tmp_path / "s.py", [], 60.0)
    assert result.weights == {"EE": {"count": 10_000_000, "mean": 0.1003, "sd": 0.0026}}
    assert result.weights_s == 3.5
    # Brian2's result has no presimulation: its simulation covers the whole duration.
    del printed["presim_ms"], printed["n_spikes_presim"]
    result = run_reference(config, "brunel", 0, Path("python"), tmp_path / "s.py", [], 60.0)
    assert (result.presim_ms, result.n_spikes_presim) == (None, {})


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
