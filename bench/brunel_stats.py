"""Brunel (2000) statistics of brainsim next to NEST 3.10's reference, over several seeds.

Run: ``python -m bench.brunel_stats [--seeds 1 2 3] [--ranks 2]``. Uses the definitions and
the steady window of ``shared/reference/brunel_delta_nest.json`` (rates, mean CV of ISIs for
neurons with >= 3 spikes, Fano factor of the population count in 5 ms bins) via
:mod:`brainsim.analysis`, and prints a table of means with the reference's tolerances.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from brainsim.analysis import open_recording

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "brunel_delta_nest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--ranks", type=int, default=2)
    args = parser.parse_args(argv)
    reference = json.loads(REFERENCE.read_text())
    t0, t1 = reference["windows_ms"]["steady"]
    rows: dict[str, list[dict[str, float]]] = {"E": [], "I": []}
    with tempfile.TemporaryDirectory(prefix="brunel-stats-") as tmp:
        for seed in args.seeds:
            out = Path(tmp) / f"s{seed}.zarr"
            circuit = ROOT / "circuits" / "brunel_delta.yaml"
            cmd = [sys.executable, "-m", "brainsim", "run", str(circuit), "--out", str(out)]
            cmd += ["--ranks", str(args.ranks), "--seed", str(seed), "--progress", "none"]
            subprocess.run(cmd, check=True)
            stats = open_recording(str(out)).stats(t0, t1)
            for pop in rows:
                s = stats[pop]
                rows[pop].append(
                    {
                        "mean_rate_hz": s.mean_rate_hz,
                        "cv_isi_mean": s.cv_isi_mean,
                        "fano_factor_pop_count": s.fano_factor,
                    }
                )
    print(f"steady window {t0}-{t1} ms, seeds {args.seeds}, {args.ranks} ranks")
    print(f"{'pop':4s} {'statistic':24s} {'brainsim':>10s} {'NEST':>10s} {'ratio':>7s}")
    for pop, key in (("E", "exc"), ("I", "inh")):
        ref = reference["stats"]["steady"][key]
        for name in ("mean_rate_hz", "cv_isi_mean", "fano_factor_pop_count"):
            ours = float(np.mean([r[name] for r in rows[pop]]))
            nest = ref[name]["mean"]
            print(f"{pop:4s} {name:24s} {ours:10.4f} {nest:10.4f} {ours / nest:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
