"""``brainsim compile-kernels``: after it, the example circuits run without compiling a single
kernel (numba's compile events counted in a fresh process, on a fresh kernel cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from brainsim.circuit import parse_circuit
from brainsim.engine.warmup import WARMUP_CIRCUIT

ROOT = Path(__file__).resolve().parents[2]
COUNT = """
import sys
import numba.core.event as event
compiled = []
class Count(event.Listener):
    def on_start(self, ev): compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev): pass
event.register("numba:compile", Count())
import brainsim
for circuit in sys.argv[2:]:
    brainsim.run(circuit, sys.argv[1], overwrite=True, duration_ms=5.0)
print("compiled:", sorted(set(compiled)))
"""


def test_the_warm_up_circuit_is_valid_and_uses_every_kind() -> None:
    circuit = parse_circuit(WARMUP_CIRCUIT)
    models = {(p.model, getattr(p.params, "synapse", None)) for p in circuit.populations.values()}
    assert {("lif", "delta"), ("lif", "exponential"), ("lif", "alpha"),
            ("izhikevich", "current_pulse"), ("izhikevich", "delta"),
            ("parrot", None)} <= models  # fmt: skip
    kinds = {s.type for s in circuit.stimuli.values()}
    assert kinds == {"poisson", "dc", "noise", "spike_source_array", "rate", "latency",
                     "population", "delta", "spike_trains"}  # fmt: skip
    rules = {type(p.connectivity).__name__ for p in circuit.projections.values()}
    assert len(rules) == 6
    assert {p.synapse.model for p in circuit.projections.values()} == {
        "static", "stdp", "stdp_power_law"}  # fmt: skip


def _run_tiny(tmp_path: Path, env: dict[str, str], progress: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "brainsim", "run", str(ROOT / "circuits" / "tiny.yaml"),
         "--out", str(tmp_path / "tiny.zarr"), "--overwrite", "--progress", progress],
        env=env, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.mark.slow
def test_after_compile_kernels_nothing_compiles(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    # A first run on an empty cache says that it compiles, and how much, before its first step.
    cold = _run_tiny(tmp_path, env, "plain").splitlines()
    assert cold[1].startswith("compiling numba kernels for this machine"), cold
    done = next(i for i, line in enumerate(cold) if line.startswith("compiled "))
    assert int(cold[done].split()[1]) > 20  # kernels
    assert "ms " in cold[done + 1]  # the first progress line comes after the compilations
    events = [json.loads(line) for line in _run_tiny(tmp_path, env, "json").splitlines()]
    assert [e["event"] for e in events][:1] == ["started"]
    assert not any(e["event"].startswith("compil") for e in events)  # cached now
    warm = subprocess.run([sys.executable, "-m", "brainsim", "compile-kernels"], env=env,
                          capture_output=True, text=True, timeout=1200, check=False)  # fmt: skip
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert "kernels compiled and cached" in warm.stdout
    circuits = [str(ROOT / "circuits" / f"{name}.yaml")
                for name in ("tiny", "brunel_stdp", "izhikevich_2003")]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", COUNT, str(tmp_path / "run.zarr"), *circuits],
                          env=env, capture_output=True, text=True, timeout=600,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "compiled: []" in done.stdout, done.stdout
