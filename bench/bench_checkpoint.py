"""Benchmark of checkpoints: their size, write time and the time to resume, against the
simulation time of the same run.

For each case, ``--reps`` times: the first half of the run (``brainsim run CASE --duration-ms
D/2 --checkpoint-every-ms D/2`` on ``--ranks`` ranks: one checkpoint, at its end; the store's
provenance gives ``sim_s`` and ``checkpoint_s``, the seconds spent writing it, which ``sim_s``
leaves out) and the size of the ``checkpoint/`` group on disk, then ``brainsim resume STORE
--until-ms D`` (the second half). ``resume_s`` is what resuming costs beyond simulating: the
resume's whole-process wall clock (interpreter, build, loading the checkpoint, closing) less
its own ``sim_s`` and ``checkpoint_s``. ``sim_s`` is the two halves' together; the ratios are
``checkpoint_s / sim_s`` and ``resume_s / sim_s``; medians over the repetitions.

Run from the repository root::

    python -m bench.bench_checkpoint [--cases brunel,brunel_stdp,microcircuit] [--ranks 2]
        [--reps 3] [--scale-microcircuit 1.0]

Cases: ``brunel`` (circuits/brunel_delta.yaml), ``brunel_stdp`` (circuits/brunel_stdp.yaml,
10^7 plastic synapses), ``microcircuit`` (circuits/potjans_diesmann_2014.yaml at
``--scale-microcircuit``; 1.0 is the full model). ``--duration-ms`` shortens every case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zarr

from brainsim.circuit import load_circuit

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "brunel": ("circuits/brunel_delta.yaml", []),
    "brunel_stdp": ("circuits/brunel_stdp.yaml", []),
    "microcircuit": ("circuits/potjans_diesmann_2014.yaml", ["--param", "scale={scale}"]),
}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _brainsim(*args: str) -> list[str]:
    return [sys.executable, "-m", "brainsim", *args, "--progress", "none"]


def measure(
    case: str, ranks: int, duration_ms: float | None, scale: float, folder: Path
) -> dict[str, Any]:
    """One repetition of ``case``: the first half with a checkpoint at its end, then
    ``resume --until-ms`` to the whole duration."""
    circuit, extra = CASES[case]
    params = [arg.format(scale=scale) for arg in extra]
    store = folder / f"{case}.zarr"
    parameters = {"scale": scale} if "scale={scale}" in extra else {}
    circuit_ms = load_circuit(str(ROOT / circuit), parameters=parameters).simulation.duration_ms
    total_ms = duration_ms or circuit_ms
    half = total_ms / 2
    run = subprocess.run(
        _brainsim("run", str(ROOT / circuit), "--out", str(store), "--ranks", str(ranks),
                  "--overwrite", "--no-pool", "--checkpoint-every-ms", repr(half),
                  "--duration-ms", repr(half), *params),
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"{case}: brainsim run failed:\n{run.stderr[-2000:]}")
    first = zarr.open_group(str(store), mode="r").attrs["brainsim"]["provenance"]
    checkpoint_bytes = _size(store / "checkpoint")
    started = time.perf_counter()
    resumed = subprocess.run(
        _brainsim("resume", str(store), "--ranks", str(ranks), "--until-ms", repr(total_ms)),
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    resume_s = time.perf_counter() - started
    if resumed.returncode != 0:
        raise SystemExit(f"{case}: brainsim resume failed:\n{resumed.stderr[-2000:]}")
    second = zarr.open_group(str(store), mode="r").attrs["brainsim"]["provenance"]
    sim_s = float(first["sim_s"]) + float(second["sim_s"])
    checkpoint_s = float(first["checkpoint_s"])
    overhead_s = resume_s - float(second["sim_s"]) - float(second["checkpoint_s"] or 0.0)
    return {
        "sim_s": sim_s,
        "checkpoint_s": checkpoint_s,
        "checkpoint_mb": checkpoint_bytes / 1e6,
        "resume_s": overhead_s,
        "checkpoint_ratio": checkpoint_s / sim_s,
        "resume_ratio": overhead_s / sim_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_checkpoint", description=__doc__)
    parser.add_argument("--cases", default="brunel,brunel_stdp,microcircuit")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration-ms", type=float, default=None)
    parser.add_argument("--scale-microcircuit", type=float, default=1.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the medians here")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(
        prefix="bench-checkpoint-", dir=os.environ.get("TMPDIR")
    ) as tmp:
        for case in args.cases.split(","):
            reps = [
                measure(case, args.ranks, args.duration_ms, args.scale_microcircuit, Path(tmp))
                for _ in range(args.reps)
            ]
            results[case] = {k: statistics.median(r[k] for r in reps) for k in reps[0]}
            r = results[case]
            print(
                f"{case:>13}: sim {r['sim_s']:.2f} s, checkpoint {r['checkpoint_mb']:.1f} MB in "
                f"{r['checkpoint_s']:.2f} s ({r['checkpoint_ratio']:.3f} of sim), resume "
                f"{r['resume_s']:.2f} s ({r['resume_ratio']:.2f} of sim), "
                f"median of {args.reps}",
                flush=True,
            )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
