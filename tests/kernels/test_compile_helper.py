"""Compiling in two processes (brainsim.kernels.compiler): the step loop's parts as the loop
calls them, a helper process that compiles into numba's cache, and a cold run that uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from brainsim.analysis import open_recording
from brainsim.api import run
from brainsim.circuit import load_circuit
from brainsim.engine.values import draws_per_neuron
from brainsim.kernels.compiler import spare_cores

CIRCUITS = Path(__file__).resolve().parents[2] / "circuits"

needs_two_cores = pytest.mark.skipif(spare_cores() == 0, reason="a helper needs a second core")


def _python(code: str, cache: Path, **env: str) -> str:
    """Run ``code`` in a fresh interpreter whose numba cache is ``cache``; its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache), **env},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


_LISTENER = """
from numba.core import event
compiled = []
class Listener(event.Listener):
    def on_start(self, e):
        f = e.data["dispatcher"].py_func
        if f.__module__.startswith("brainsim."):  # not numba's own (its overloads' impl)
            compiled.append(f.__name__)
    def on_end(self, e): pass
event.register("numba:compile", Listener())
"""


def test_the_loops_parts_are_compiled_as_the_loop_calls_them(tmp_path: Path) -> None:
    """Each part compiled for the types ``loop_parts`` gives is the one the loop then links:
    compiling the loop afterwards compiles the loop alone. A part listed with other types than
    the loop passes (an int for a float, a missing switch) is compiled again by the loop."""
    out = _python(_LISTENER + """
import json
from brainsim.engine.simulator import probe_args
from brainsim.exchange import LocalExchanger
from brainsim.kernels.compiler import signature
from brainsim.kernels.loop import EVERYTHING, loop_parts, run_variant
off = dict.fromkeys(("lif_exp", "lif_alpha", "izhikevich", "parrot", "dense",
                     "narrow", "narrow_byte", "narrow_separate", "separate", "packed"))
variant = EVERYTHING._replace(**off)
args = probe_args(LocalExchanger().native())
parts = loop_parts(args, variant)
for name, kernel, a in parts:
    kernel.compile(signature(kernel, a))
before = len(compiled)
run_variant(*args, *variant)
print(json.dumps({"parts": [name for name, _, _ in parts], "loop": compiled[before:]}))
""", tmp_path / "cache")  # fmt: skip
    found = json.loads(out.splitlines()[-1])
    assert found["parts"] == [
        "poisson_drive", "rate_drive", "step_currents", "advance_step", "sort_keys",
        "deliver_all", "deliver_plastic", "record_post_spikes",
    ]  # fmt: skip
    assert found["loop"] == ["run_intervals"]


@needs_two_cores
def test_a_helper_compiles_into_the_cache_and_reports_what_failed(tmp_path: Path) -> None:
    """What the helper compiled, this process loads from the cache without compiling; a job
    that cannot compile is reported with its reason, and the others still complete."""
    out = _python(_LISTENER + """
import json
import numpy as np
from brainsim.kernels.compiler import CompileHelper, job
from brainsim.kernels.loop import loaded
from brainsim.kernels.snapshots import count_by_target
good = (np.zeros(1, np.int64), np.zeros(0, np.uint16), 0, 0)
bad = (np.zeros(1, np.float64), np.zeros(0, np.uint16), 0, 0)  # not an index array
helper = CompileHelper.start()
assert helper is not None
first = helper.submit([job(count_by_target, bad)])
second = helper.submit([job(count_by_target, good), job(count_by_target, good)])
all_done = helper.wait(first + second)
helper.close()
hit = loaded(count_by_target, good)
print(json.dumps({"queued": len(second), "all_done": all_done, "failures": helper.failures,
                  "compiled_here": compiled, "hit": hit,
                  "result": count_by_target(np.array([0, 2], np.int64),
                                            np.array([1, 1], np.uint16), 2, 3).tolist()}))
""", tmp_path / "cache")  # fmt: skip
    found = json.loads(out.splitlines()[-1])
    assert found["queued"] == 1  # the same job twice is queued once
    assert found["all_done"] is False
    assert len(found["failures"]) == 1
    assert found["failures"][0].startswith("brainsim.kernels.snapshots.count_by_target: ")
    assert "TypingError" in found["failures"][0]
    assert found["hit"] is True
    assert found["compiled_here"] == []
    assert found["result"] == [0, 0, 2, 2]  # both synapses onto target 1


@needs_two_cores
def test_a_dead_helper_ends_the_wait(tmp_path: Path) -> None:
    out = _python("""
import time
import numpy as np
from brainsim.kernels.compiler import CompileHelper, job
from brainsim.kernels.snapshots import count_by_target
helper = CompileHelper.start()
args = (np.zeros(1, np.int64), np.zeros(0, np.uint32), 0, 0)
queued = helper.submit([job(count_by_target, args)])
helper._proc.kill()
started = time.monotonic()
print(helper.wait(queued), time.monotonic() - started < 5)
helper.close()
""", tmp_path / "cache")  # fmt: skip
    assert out.split() == ["False", "True"]


def test_no_helper_when_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from brainsim.kernels.compiler import DISABLE_ENV, CompileHelper

    monkeypatch.setenv(DISABLE_ENV, "0")
    assert CompileHelper.start() is None


def _events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _with_weights(tmp_path: Path) -> Path:
    """brunel_stdp.yaml recording the E -> E weights too (their kernels go to the helper)."""
    doc = yaml.safe_load((CIRCUITS / "brunel_stdp.yaml").read_text())
    doc["recordings"]["weights"] = [
        {"projection": "EE", "interval_ms": 10.0, "synapses": {"first": 2000}}
    ]
    circuit = tmp_path / "brunel_stdp_weights.yaml"
    circuit.write_text(yaml.safe_dump(doc))
    return circuit


def _same_recordings(a_path: Path, b_path: Path) -> None:
    a, b = open_recording(a_path), open_recording(b_path)
    for pop in ("E", "I"):
        x, y = a.spikes(pop), b.spikes(pop)
        assert np.array_equal(x.times_ms, y.times_ms)
        assert np.array_equal(x.node_ids, y.node_ids)
    assert sum(a.spikes(p).times_ms.size for p in ("E", "I")) > 0
    w_a, w_b = a.weights("EE"), b.weights("EE")
    assert w_a.shape == w_b.shape
    assert w_a.shape[0] == 3  # at 0, 10 and 20 ms
    assert np.array_equal(w_a.values, w_b.values)


@needs_two_cores
def test_a_cold_run_shares_its_kernels_with_the_helper(tmp_path: Path) -> None:
    """A cold run (empty kernel cache) compiles part of the step loop's parts and the weight
    recordings' kernels in the helper (which share depends on timing: either process takes a
    job the other has not started), none of them twice, the loop itself here, and records
    spike for spike and weight for weight what a run of this (warm) process records."""
    circuit = _with_weights(tmp_path)
    out = _python(_LISTENER + f"""
import json
from brainsim.cli import main
from brainsim.kernels import compiler
helper = {{"compiled": [], "stolen": [], "failures": []}}
close = compiler.CompileHelper.close
def closing(self, *args, **kwargs):
    close(self, *args, **kwargs)
    for key in helper:
        helper[key] += getattr(self, key)
compiler.CompileHelper.close = closing
main(["run", {str(circuit)!r}, "--no-pool", "--progress", "none", "--duration-ms", "20",
      "--out", {str(tmp_path / "cold.zarr")!r}])
print(json.dumps({{"here": compiled, **helper}}))
""", tmp_path / "cache", BRAINSIM_COMPILE_HELPER="1")  # fmt: skip
    found = json.loads(out.splitlines()[-1])
    theirs = {label.rsplit(".", 1)[1] for label in found["compiled"]}
    assert found["failures"] == []
    assert theirs & {"deliver_plastic", "deliver_all", "advance_step", "record_post_spikes"}
    assert not theirs & set(found["here"])  # nothing compiled twice
    shared = {
        "deliver_plastic",
        "deliver_all",
        "advance_step",
        "step_currents",
        "poisson_drive",
        "record_post_spikes",
        "count_by_target",
        "gather_by_target",
    }
    assert shared <= theirs | set(found["here"])
    assert {"run_intervals", "fixed_indegree"} <= set(found["here"])
    run(circuit, tmp_path / "warm.zarr", duration_ms=20.0)
    _same_recordings(tmp_path / "cold.zarr", tmp_path / "warm.zarr")


@pytest.mark.mpi
@needs_two_cores
def test_a_cold_run_on_two_ranks_with_a_helper(tmp_path: Path) -> None:
    """The same on 2 ranks (rank 0 has the helper; rank 1 loads what they compiled); the
    kernels are then all in the cache: a second run compiles nothing."""
    circuit = _with_weights(tmp_path)
    argv = [
        sys.executable, "-m", "brainsim", "run", str(circuit), "--ranks", "2", "--no-pool",
        "--progress", "json", "--duration-ms", "20", "--overwrite",
    ]  # fmt: skip
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "BRAINSIM_COMPILE_HELPER": "1"}  # fmt: skip
    for name, compiles in (("cold", True), ("again", False)):
        done = subprocess.run([*argv, "--out", str(tmp_path / f"{name}.zarr")], env=env,
                              capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        events = {str(e["event"]): e for e in _events(done.stdout)}
        assert ("compiled" in events) is compiles
        if compiles:  # the display counts the helper's kernels too
            assert int(events["compiled"]["helper_kernels"]) > 0  # type: ignore[call-overload]
    run(circuit, tmp_path / "warm.zarr", duration_ms=20.0)
    _same_recordings(tmp_path / "cold.zarr", tmp_path / "warm.zarr")


def test_the_sampling_kernel_is_compiled_as_construction_calls_it(tmp_path: Path) -> None:
    """The helper compiles the per-neuron sampling kernel ahead for circuits that draw values
    (the HPC benchmark's initial potentials), with the types construction then calls it with."""
    out = _python(_LISTENER + """
import json
import numpy as np
from brainsim.circuit.spec import Normal
from brainsim.engine.values import draw_distribution, sampling_kernel
from brainsim.kernels.compiler import signature
kernel, args = sampling_kernel()
kernel.compile(signature(kernel, args))
before = len(compiled)
drawn = draw_distribution(Normal(0.0, 1.0), seed=1, path="populations.A.initial.v_mV",
                          keys=np.arange(4), indices=np.arange(4))
print(json.dumps({"compiled": compiled[before:], "finite": bool(np.isfinite(drawn).all())}))
""", tmp_path / "cache")  # fmt: skip
    found = json.loads(out.splitlines()[-1])
    assert found == {"compiled": [], "finite": True}
    assert draws_per_neuron(load_circuit(CIRCUITS / "hpc_benchmark.yaml"))
    assert not draws_per_neuron(load_circuit(CIRCUITS / "brunel_stdp.yaml"))
