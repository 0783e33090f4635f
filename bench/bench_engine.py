"""Engine benchmark: Brunel network cost of recording, rank scaling, events/s and synapse bytes.

Run: ``python -m bench.bench_engine [--reps 3] [--duration-ms 1000]``. Variants of
``circuits/brunel_delta.yaml`` are run as a user runs them (``brainsim run --ranks N``), in
alternation (A B C A B C ...), and medians are printed:

- ``none``: no recording at all; ``spikes``: every spike; ``spikes+v``: every spike and the
  membrane potential of 1,000 neurons at every step. Ratios to ``none`` give the recording cost
  (issue targets: < 1.10 for spikes, < 1.20 for spikes+v).
- the same three on 1 rank: the 1 -> 2 rank speed-up, and the recording cost without MPI
  (on a shared machine, waits in the exchange make the 2-rank ratios noisy).

Simulation time is the store's ``sim_s`` (the step loop, first step to last).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
import zarr

ROOT = Path(__file__).resolve().parents[1]
BRUNEL = ROOT / "circuits" / "brunel_delta.yaml"


def _variant(doc: dict[str, Any], recordings: dict[str, Any], path: Path) -> Path:
    changed = dict(doc)
    changed["recordings"] = recordings
    path.write_text(yaml.safe_dump(changed, sort_keys=False))
    return path


def _run(circuit: Path, out: Path, ranks: int, duration_ms: float) -> dict[str, float]:
    cmd = [sys.executable, "-m", "brainsim", "run", str(circuit), "--out", str(out)]
    cmd += ["--ranks", str(ranks), "--duration-ms", str(duration_ms), "--overwrite"]
    cmd += ["--progress", "none"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    process_s = time.perf_counter() - start
    attrs = zarr.open_group(str(out), mode="r").attrs["brainsim"]
    prov = attrs["provenance"]
    n_spikes = 0
    root = zarr.open_group(str(out), mode="r")
    if "spikes" in root:
        for _, group in root["spikes"].groups():
            n_spikes += int(group["timestamps"].shape[0])
    return {
        "process_s": process_s,
        "build_s": float(prov["build_s"]),
        "sim_s": float(prov["sim_s"]),
        "n_spikes": float(n_spikes),
    }


def _synapses_per_spike(doc: dict[str, Any]) -> float:
    """Mean out-degree of a Brunel neuron: every neuron gets CE + CI synapses, NE + NI neurons."""
    params = doc["parameters"]
    return float(params["CE"] + params["CI"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration-ms", type=float, default=1000.0)
    args = parser.parse_args(argv)
    doc = yaml.safe_load(BRUNEL.read_text())
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        base = Path(tmp)
        voltage = {"population": "E", "variables": ["v"], "node_ids": {"first": 1000},
                   "interval_ms": doc["simulation"]["dt_ms"]}  # fmt: skip
        cases = {
            "none (2 ranks)": (_variant(doc, {"spikes": []}, base / "none.yaml"), 2),
            "spikes (2 ranks)": (_variant(doc, {"spikes": ["E", "I"]}, base / "spk.yaml"), 2),
            "spikes+v (2 ranks)": (
                _variant(doc, {"spikes": ["E", "I"], "state": [voltage]}, base / "v.yaml"),
                2,
            ),
            "none (1 rank)": (base / "none.yaml", 1),
            "spikes (1 rank)": (base / "spk.yaml", 1),
            "spikes+v (1 rank)": (base / "v.yaml", 1),
        }
        results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        _run(cases["spikes (2 ranks)"][0], base / "warm.zarr", 2, 10.0)  # warm the JIT cache
        for rep in range(args.reps):
            for name, (circuit, ranks) in cases.items():
                results[name].append(_run(circuit, base / "out.zarr", ranks, args.duration_ms))
                print(f"rep {rep + 1} {name}: {results[name][-1]}", file=sys.stderr)
    med = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in results.items()
    }
    none = med["none (2 ranks)"]["sim_s"]
    spikes = med["spikes (2 ranks)"]
    print(f"Brunel, {args.duration_ms:g} ms, medians of {args.reps} (sim = wall - build):")
    print(f"{'case':22s} {'build s':>8s} {'sim s':>8s} {'process s':>10s} {'sim / none':>11s}")
    for name, m in med.items():
        print(
            f"{name:22s} {m['build_s']:8.2f} {m['sim_s']:8.2f} {m['process_s']:10.2f} "
            f"{m['sim_s'] / none:11.3f}"
        )
    events = spikes["n_spikes"] * _synapses_per_spike(doc)
    n_syn = (doc["parameters"]["NE"] + doc["parameters"]["NI"]) * _synapses_per_spike(doc)
    none_1 = med["none (1 rank)"]["sim_s"]
    summary = {
        "recording_cost_spikes": spikes["sim_s"] / none,
        "recording_cost_spikes_v": med["spikes+v (2 ranks)"]["sim_s"] / none,
        "recording_cost_spikes_1_rank": med["spikes (1 rank)"]["sim_s"] / none_1,
        "recording_cost_spikes_v_1_rank": med["spikes+v (1 rank)"]["sim_s"] / none_1,
        "speedup_1_to_2_ranks": med["spikes (1 rank)"]["sim_s"] / spikes["sim_s"],
        "synaptic_events_per_s_2_ranks": events / spikes["sim_s"],
        "synapses": n_syn,
        "real_time_factor_2_ranks": spikes["sim_s"] / (args.duration_ms / 1000.0),
    }
    print(json.dumps({k: float(np.round(v, 4)) for k, v in summary.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
