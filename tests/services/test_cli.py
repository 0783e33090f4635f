"""The ``brainsim`` service subcommands against a real server: output, exit codes, errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from services.gen.brainsim.v1 import job_service_pb2 as pb
from tests.services.conftest import ALICE, BOB, ROOT, TINY, CliRun, ServerThread, wait_for


@pytest.mark.mpi
def test_submit_and_wait_then_status_and_jobs(
    server: ServerThread, cli: Callable[[ServerThread], CliRun]
) -> None:
    run = cli(server)
    code, out, err = run("submit", str(TINY), "--ranks", "2", "--wait")
    assert code == 0, err
    job_id = out.split()[2]
    assert f"submitted job {job_id} (QUEUED, 2 rank(s), local)" in out
    assert f"job {job_id}: SUCCEEDED" in out
    assert "recording: file://" in out
    assert "progress: 100/100 ms (100%)" in out  # plain lines: stdout is not a terminal

    code, out, _ = run("status", job_id)
    assert code == 0
    assert "state:     SUCCEEDED" in out
    assert "ranks:     2" in out
    assert "progress:  100 / 100 ms (100%)" in out

    code, out, _ = run("jobs")
    header, row = out.splitlines()
    assert header.split() == ["JOB", "STATE", "TARGET", "RANKS", "PROGRESS", "SUBMITTED", "CIRCUIT"]
    assert row.split()[:5] == [job_id, "SUCCEEDED", "local", "2", "100%"]

    code, out, _ = run("status")
    assert out.splitlines() == [
        f"server {server.address}: SERVING",
        "your jobs: 0 queued, 0 running",
        "targets:",
        "  local                  available",
        "  slurm                  unavailable: this server has no slurm target configured",
        "  pynn                   unavailable: pynn.python is not configured (a Python with "
        "PyNN 0.13 and NEST)",
        "  nir                    available",
        "  ebrains:spinnaker      unavailable: this server has no ebrains:spinnaker target "
        "configured",
        "  ebrains:brainscales2   unavailable: this server has no ebrains:brainscales2 target "
        "configured",
    ]


def test_quiet_submit_cancel_and_watch_exit_codes(
    make_server: Callable[..., ServerThread], cli: Callable[[ServerThread], CliRun]
) -> None:
    server = make_server(local={"max_concurrent_jobs": 0})
    run = cli(server)
    code, out, _ = run("submit", str(TINY), "-q", "--duration-ms", "50", "--seed", "9")
    assert code == 0
    job_id = out.strip()
    assert len(job_id) == 12
    code, out, _ = run("jobs", "--state", "queued")
    assert job_id in out
    code, out, _ = run("cancel", job_id)
    assert (code, out) == (0, f"job {job_id}: CANCELLED\n")
    code, out, _ = run("cancel", job_id)
    assert (code, out) == (0, f"job {job_id}: already finished (CANCELLED)\n")
    code, out, _ = run("watch", job_id)
    assert code == 130
    assert f"job {job_id}: CANCELLED (cancelled by alice)" in out
    code, out, _ = run("jobs", "--state", "queued")
    assert job_id not in out


def test_errors_are_readable_without_tracebacks(
    server: ServerThread, cli: Callable[[ServerThread], CliRun], tmp_path: Path
) -> None:
    run = cli(server)
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("size: 20", "size: 0"))
    code, _, err = run("submit", str(bad))
    assert code == 1
    assert err.startswith("error: INVALID_ARGUMENT: invalid circuit (1 problem(s))")
    assert "  circuit.populations.I.size: must be >= 1, got 0" in err
    assert "Traceback" not in err

    code, _, err = run("status", "0" * 12)
    assert (code, err) == (1, "error: NOT_FOUND: job '000000000000' not found\n")

    code, _, err = run("status", "0" * 12, "--token", "wrong-token-0123456789")
    assert code == 1
    assert err.startswith("error: UNAUTHENTICATED")

    code, _, err = run("submit", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "missing.yaml" in err

    code, _, err = run("submit", str(TINY), "--target", "slurm")
    assert code == 1
    assert err.startswith("error: FAILED_PRECONDITION: target slurm cannot run jobs")

    code, _, err = run("jobs", "--server", "127.0.0.1:1", "--timeout", "2")
    assert code == 1
    assert err.startswith("error: UNAVAILABLE")


def test_token_file_and_dry_run(
    server: ServerThread, cli: Callable[[ServerThread], CliRun], tmp_path: Path
) -> None:
    run = cli(server)
    token_file = tmp_path / "bob.token"
    token_file.write_text(BOB + "\n")
    code, out, _ = run("submit", str(TINY), "--dry-run", "--token-file", str(token_file))
    assert code == 0
    assert "accepted (dry run, nothing submitted)" in out
    assert "owner:     bob" in out
    code, out, _ = run("jobs", "--token-file", str(token_file))
    assert out.splitlines()[1:] == []


def test_python_m_services_runs_the_server(tmp_path: Path) -> None:
    """``python -m services --help`` works; a bad configuration exits 2 with the problems."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "services",
            "--listen",
            "0.0.0.0:0",
            "--data-root",
            str(tmp_path),
            "--insecure-no-auth",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "insecure_no_auth is only allowed on a loopback address" in result.stderr
    assert "Traceback" not in result.stderr


def test_watch_shows_a_progress_bar_on_a_terminal(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a pseudo-terminal, ``watch`` redraws one bar line instead of printing lines."""
    import os
    import pty

    with server.client() as client:
        job = client.submit(TINY.read_text(), duration_ms=1000.0)
    env = {**os.environ, "BRAINSIM_SERVER": server.address, "BRAINSIM_TOKEN": ALICE}
    program = (
        "import argparse, sys\n"
        "from services.cli import register\n"
        "p = argparse.ArgumentParser(); register(p.add_subparsers())\n"
        "a = p.parse_args(sys.argv[1:]); raise SystemExit(a.func(a))\n"
    )
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", program, "watch", job.job_id, "--no-logs"],
        cwd=ROOT,
        env=env,
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(60) == 0
    os.close(leader)
    text = output.decode()
    assert "\r[" in text
    assert "100.0%" in text
    assert "progress:" not in text
    with server.client() as client:
        assert wait_for(client, job.job_id, (pb.JOB_STATE_SUCCEEDED,)).simulated_ms == 1000.0
