"""Load figure of the job service: 50 concurrent clients submitting and polling on loopback.

Starts ``python -m services`` on 127.0.0.1 (an ephemeral port, a temporary data root, one token
per client) with local launching paused (``--max-local-jobs 0``), so jobs are validated, stored
durably (SQLite, synchronous=FULL) and queued, but never run: this measures the service, not the
simulator. Per repetition, on a fresh server:

1. every client submits ``--jobs`` copies of circuits/tiny.yaml at once -> submissions/s;
2. every client polls GetJob on its own jobs ``--polls`` times -> GetJob p50/p99 latency, calls/s;
3. every client submits ``--jobs`` with ``validate_only`` (checks only, nothing stored).

Prints each repetition and the medians over ``--reps`` (default 3). Every loop is bounded.

    python bench/bench_service.py [--clients 50] [--jobs 10] [--polls 40] [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.gen.brainsim.v1 import job_service_pb2 as pb  # noqa: E402
from services.gen.brainsim.v1 import job_service_pb2_grpc as pb_grpc  # noqa: E402

CIRCUIT = (ROOT / "circuits" / "tiny.yaml").read_text(encoding="utf-8")


def launch_server(
    folder: Path, *flags: str, log: Path | None = None, data_root: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m services`` on an ephemeral loopback port with its data root (default
    ``folder/data``) and ``flags``; (the process, its address) once it listens. Its output goes
    to ``log`` (default: this terminal). Each call has its own address file in ``folder``, so a
    server started again beside a killed one waits for its own address."""
    address_file = folder / f"address-{time.monotonic_ns()}"
    argv = [
        sys.executable,
        "-m",
        "services",
        "--listen",
        "127.0.0.1:0",
        "--data-root",
        str(folder / "data" if data_root is None else data_root),
        "--address-file",
        str(address_file),
        *flags,
    ]
    if log is None:
        server = subprocess.Popen(argv, cwd=ROOT)
    else:
        with log.open("wb") as out:
            server = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not address_file.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            said = "" if log is None else ":\n" + log.read_text()
            raise RuntimeError(f"the server did not start{said}")
        time.sleep(0.05)
    return server, address_file.read_text().strip()


def start_server(folder: Path, n_clients: int) -> tuple[subprocess.Popen[bytes], str, list[str]]:
    tokens = [f"bench-token-{i:03d}-0123456789abcdef" for i in range(n_clients)]
    token_file = folder / "tokens"
    token_file.write_text("".join(f"user{i:03d} {t}\n" for i, t in enumerate(tokens)))
    token_file.chmod(0o600)
    server, address = launch_server(
        folder,
        "--token-file",
        str(token_file),
        "--max-local-jobs",
        "0",
        "--log-level",
        "warning",
    )
    return server, address, tokens


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_repetition(
    address: str, tokens: list[str], jobs: int, polls: int
) -> dict[str, float]:
    channels = [grpc.aio.insecure_channel(address) for _ in tokens]
    stubs = [pb_grpc.JobServiceStub(channel) for channel in channels]
    metadata = [(("authorization", f"Bearer {token}"),) for token in tokens]
    try:
        for stub, meta in zip(stubs, metadata, strict=True):  # connect before timing
            await stub.ListJobs(pb.ListJobsRequest(page_size=1), metadata=meta)

        async def submit(index: int, validate_only: bool) -> list[str]:
            ids = []
            for _ in range(jobs):
                request = pb.SubmitJobRequest(circuit=CIRCUIT, validate_only=validate_only)
                response = await stubs[index].SubmitJob(request, metadata=metadata[index])
                ids.append(response.job.job_id)
            return ids

        started = time.perf_counter()
        job_ids = await asyncio.gather(*(submit(i, False) for i in range(len(stubs))))
        submit_s = time.perf_counter() - started

        latencies: list[float] = []

        async def poll(index: int) -> None:
            for call in range(polls):
                job_id = job_ids[index][call % jobs]
                begin = time.perf_counter()
                response = await stubs[index].GetJob(
                    pb.GetJobRequest(job_id=job_id), metadata=metadata[index]
                )
                latencies.append(time.perf_counter() - begin)
                if response.job.job_id != job_id or response.job.state != pb.JOB_STATE_QUEUED:
                    raise AssertionError(f"wrong answer: {response.job}")

        started = time.perf_counter()
        await asyncio.gather(*(poll(i) for i in range(len(stubs))))
        poll_s = time.perf_counter() - started

        started = time.perf_counter()
        await asyncio.gather(*(submit(i, True) for i in range(len(stubs))))
        validate_s = time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()
    n_submitted = len(stubs) * jobs
    return {
        "submissions_per_s": n_submitted / submit_s,
        "getjob_p50_ms": 1000 * percentile(latencies, 0.50),
        "getjob_p99_ms": 1000 * percentile(latencies, 0.99),
        "getjob_per_s": len(latencies) / poll_s,
        "validate_only_per_s": n_submitted / validate_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=10, help="submissions per client")
    parser.add_argument("--polls", type=int, default=40, help="GetJob calls per client")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = parser.parse_args()

    results = []
    for rep in range(args.reps):
        with tempfile.TemporaryDirectory(prefix="brainsim-bench-") as tmp:
            server, address, tokens = start_server(Path(tmp), args.clients)
            try:
                result = asyncio.run(one_repetition(address, tokens, args.jobs, args.polls))
            finally:
                server.terminate()
                server.wait(30)
        results.append(result)
        if not args.json:
            print(f"rep {rep + 1}: " + "  ".join(f"{k}={v:.1f}" for k, v in result.items()))
    medians = {key: statistics.median(r[key] for r in results) for key in results[0]}
    if args.json:
        print(json.dumps({"clients": args.clients, "reps": args.reps, **medians}, indent=2))
    else:
        print(
            f"median of {args.reps} reps, {args.clients} clients: "
            f"{medians['submissions_per_s']:.0f} submissions/s, "
            f"GetJob p50 {medians['getjob_p50_ms']:.2f} ms, p99 {medians['getjob_p99_ms']:.2f} ms "
            f"({medians['getjob_per_s']:.0f} calls/s), "
            f"validate-only {medians['validate_only_per_s']:.0f}/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
