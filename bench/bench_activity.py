"""How soon a job's activity reaches a ``StreamActivity`` client, on loopback.

Starts ``python -m services`` (an ephemeral port, a temporary data root, no tokens: loopback
only), submits ``--circuit`` and streams its activity from the moment it is queued. Meanwhile a
thread reads the store's root metadata every 5 ms and notes when each new ``simulated_ms``
appears (a flush has published it). Two figures bound how old the activity a client sees is:

- ``flush_gap_s``: wall clock between consecutive flushes of the running job (the run flushes
  when a second of wall clock has passed, or every 1000 ms of simulated time);
- ``lag_s``: from a flush becoming visible in the store to the first message that reports it
  (the server looks every 0.25 s).

Their sum bounds the age of the newest bin a client holds. Prints each repetition and the
medians over ``--reps``.

    python -m bench.bench_activity [--circuit circuits/brunel_delta.yaml] [--duration-ms 3000]
        [--ranks 1] [--bin-ms 10] [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.bench_service import launch_server
from services.client import JobClient

ROOT = Path(__file__).resolve().parents[1]


class StoreWatcher(threading.Thread):
    """Notes the wall clock at which each new ``simulated_ms`` of a store became visible."""

    def __init__(self, store: Path) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.seen: list[tuple[float, float]] = []
        """(monotonic time, simulated_ms) of each change."""
        self.stop = threading.Event()

    def run(self) -> None:
        last = None
        while not self.stop.is_set():
            try:
                meta = json.loads((self.store / "zarr.json").read_text())
                simulated = float(meta["attributes"]["brainsim"]["simulated_ms"])
                status = meta["attributes"]["brainsim"]["status"]
            except (OSError, ValueError, KeyError, TypeError):
                simulated, status = None, None
            if simulated is not None and simulated != last and status == "running":
                self.seen.append((time.monotonic(), simulated))
                last = simulated
            time.sleep(0.005)


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    process, address = launch_server(folder, "--insecure-no-auth", log=folder / "server.log")
    try:
        with JobClient(address, timeout_s=60) as client:
            text = (ROOT / args.circuit).read_text(encoding="utf-8")
            job = client.submit(text, n_ranks=args.ranks, duration_ms=args.duration_ms)
            store = folder / "data" / "jobs" / job.job_id / "recording.zarr"
            watcher = StoreWatcher(store)
            watcher.start()
            arrivals = [
                (time.monotonic(), frame.simulated_ms)
                for frame in client.activity(job.job_id, bin_ms=args.bin_ms)
                if frame.state == "RUNNING"
            ]
            watcher.stop.set()
            watcher.join()
            final = client.get(job.job_id)
    finally:
        process.terminate()
        process.wait(30)
    if final.state != 3:  # JOB_STATE_SUCCEEDED
        raise RuntimeError(f"the job did not succeed: {final.failure_reason}")
    flushes = [(t, s) for t, s in watcher.seen if s > 0]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(flushes)]
    lags = []
    for seen_at, simulated in flushes:
        later = [t for t, s in arrivals if s >= simulated and t >= seen_at - 0.001]
        if later:
            lags.append(max(0.0, min(later) - seen_at))
    return {
        "flushes": len(flushes),
        "flush_gap_s_median": statistics.median(gaps) if gaps else float("nan"),
        "flush_gap_s_max": max(gaps, default=float("nan")),
        "lag_s_median": statistics.median(lags) if lags else float("nan"),
        "lag_s_max": max(lags, default=float("nan")),
        "messages_while_running": len(arrivals),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--circuit", default="circuits/brunel_delta.yaml")
    parser.add_argument("--duration-ms", type=float, default=3000.0)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--bin-ms", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = parser.parse_args()
    rows = []
    for rep in range(args.reps):
        with tempfile.TemporaryDirectory(prefix="bench-activity-") as folder:
            row = measure(args, Path(folder))
        rows.append(row)
        print(f"rep {rep + 1}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()))
    medians = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    if args.json:
        print(json.dumps(medians))
    else:
        print("median: " + ", ".join(f"{k} {v:.3g}" for k, v in medians.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
