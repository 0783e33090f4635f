"""Fixtures for the job-service tests: real servers on loopback, tokens, circuits, Slurm.

Servers bind 127.0.0.1 on an ephemeral port. ``make_server`` runs one in this process (its own
event loop on a thread); ``ServerProcess`` runs ``python -m services`` as a child (for restarts).
The ``slurm_cluster`` fixture starts the single-node cluster of ``../shared/slurm`` when ``sbatch``
is missing or the cluster is down, and skips only if that script is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bench.bench_service import launch_server
from services.client import JobClient
from services.config import ServerConfig, load_config
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.launchers import procs
from services.server import RunningServer, start_server

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "circuits" / "tiny.yaml"
SLURM_SCRIPTS = ROOT.parent / "shared" / "slurm"

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdefgh"
FINAL = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)


@pytest.fixture(scope="session")
def tiny_circuit() -> str:
    """circuits/tiny.yaml: 100 neurons, 100 ms, spikes recorded."""
    return TINY.read_text(encoding="utf-8")


def write_tokens(folder: Path) -> Path:
    path = folder / "tokens"
    path.write_text(f"alice {ALICE}\nbob {BOB}\n", encoding="utf-8")
    path.chmod(0o600)
    return path


class ServerThread:
    """A real server in this process: its event loop runs on a background thread."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        try:
            self.running: RunningServer = self.call(start_server(config))
        except BaseException:
            self._end_loop()
            raise
        self.address = self.running.address
        self.stopped = False

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coroutine`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def client(self, token: str | None = ALICE, **kwargs: Any) -> JobClient:
        return JobClient(self.address, token, **kwargs)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.call(self.running.stop(grace_s=1.0))
        self._end_loop()

    def _end_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def kill_leftover_jobs(data_root: Path) -> None:
    """Safety net after a test: no job process may outlive it."""
    for info in data_root.glob("jobs/*/launch.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = int(json.loads(info.read_text())["pid"])
            procs.signal_group(pid, signal.SIGKILL)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., ServerThread]]:
    """Factory: a server with tokens for alice and bob and a data root of its own; keyword
    arguments override configuration keys."""
    servers: list[ServerThread] = []
    tokens = write_tokens(tmp_path)

    def make(**overrides: Any) -> ServerThread:
        document: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "data_root": tmp_path / f"data-{len(servers)}",
            "token_file": tokens,
            "local": {"max_concurrent_jobs": 2, "kill_grace_s": 5.0, "poll_interval_s": 0.1},
        }
        document.update(overrides)
        server = ServerThread(load_config(None, document))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
        kill_leftover_jobs(server.config.data_root)


@pytest.fixture
def server(make_server: Callable[..., ServerThread]) -> ServerThread:
    return make_server()


class ServerProcess:
    """``python -m services`` as a child process (so that it can be killed and restarted)."""

    def __init__(self, data_root: Path, tokens: Path, *extra: str) -> None:
        self.log = data_root.parent / f"server-{time.monotonic_ns()}.log"
        self.process, self.address = launch_server(
            data_root.parent,
            "--token-file",
            str(tokens),
            *extra,
            log=self.log,
            data_root=data_root,
        )

    def client(self, token: str | None = ALICE) -> JobClient:
        return JobClient(self.address, token)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (the hardest restart)."""
        self.process.kill()
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.terminate()
        return self.process.wait(20)


def wait_for(
    client: JobClient, job_id: str, states: tuple[int, ...], timeout: float = 120.0
) -> Any:
    """Poll GetJob until the job is in one of ``states``; return it."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(job_id)
        if job.state in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id} still {pb.JobState.Name(job.state)} after {timeout} s"
            )
        time.sleep(0.05)


def wait_for_progress(client: JobClient, job_id: str, timeout: float = 120.0) -> Any:
    """Poll until the job runs and has simulated something."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(job_id)
        if job.state == pb.JOB_STATE_RUNNING and job.simulated_ms > 0:
            return job
        assert job.state not in FINAL, f"job ended early: {job}"
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} made no progress in {timeout} s")
        time.sleep(0.05)


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line contains ``text`` (pid, command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and procs.is_alive(int(entry.name)):
            found.append((int(entry.name), cmdline))
    return found


def job_ranks(job_dir: Path, command: str = " -m brainsim run ") -> list[int]:
    """The ranks of a job: its ``brainsim`` processes (``command`` in their command line) that
    are not the parent of another one. A run's forked ranks are the children of the process
    that forked them (same command line); mpiexec's are below its proxy; a one-rank run is one
    process."""
    found = [
        pid
        for pid, cmdline in processes_mentioning(str(job_dir))
        if cmdline.startswith(sys.executable) and command in cmdline
    ]
    parents = set()
    for pid in found:
        with contextlib.suppress(OSError):
            parents.add(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]))
    return [pid for pid in found if pid not in parents]


def no_processes_left(text: str, timeout: float = 15.0) -> list[tuple[int, str]]:
    """Wait until no process mentions ``text``; return what is left at the deadline."""
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


# --- Slurm ------------------------------------------------------------------------------------


def _cluster_up() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    result = subprocess.run(
        ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30, check=False
    )
    return result.returncode == 0 and any(
        state.strip("*~#") in ("idle", "mixed", "allocated") for state in result.stdout.split()
    )


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """A working Slurm cluster (started from ../shared/slurm/local-cluster.sh if needed)."""
    script = SLURM_SCRIPTS / "local-cluster.sh"
    if not script.exists():
        pytest.skip(f"no Slurm cluster script at {script} (../shared/slurm beside the repo)")
    if not _cluster_up():
        result = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode != 0 or not _cluster_up():
            pytest.fail(f"could not start the Slurm cluster:\n{result.stdout}\n{result.stderr}")


@pytest.fixture
def uninterrupted() -> Iterator[Callable[[Path, Path, float], subprocess.Popen[str]]]:
    """Factory: starts ``brainsim run CIRCUIT --out STORE --duration-ms D`` on one rank without
    checkpoints (the reference a resumed or chained job must equal) in the background; any run
    still going at the end of the test is killed and reaped."""
    started: list[subprocess.Popen[str]] = []

    def start(circuit: Path, store: Path, duration_ms: float) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "brainsim", "run", str(circuit), "--out", str(store)]
        command += ["--duration-ms", repr(duration_ms), "--no-pool", "--progress", "none"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


CliRun = Callable[..., tuple[int, str, str]]
"""``run(*argv)`` -> (exit code, stdout, stderr) of one ``brainsim`` job-service command."""


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[ServerThread], CliRun]:
    """``cli(server)`` -> a :data:`CliRun` against ``server``, with the server and alice's
    token from the environment, as users set them."""
    from services.cli import register

    def bind(server: ServerThread) -> CliRun:
        monkeypatch.setenv("BRAINSIM_SERVER", server.address)
        monkeypatch.setenv("BRAINSIM_TOKEN", ALICE)
        parser = argparse.ArgumentParser(prog="brainsim")
        register(parser.add_subparsers(dest="command", required=True))

        def run(*argv: str) -> tuple[int, str, str]:
            args = parser.parse_args(list(argv))
            code = args.func(args)
            out, err = capsys.readouterr()
            return code, out, err

        return run

    return bind
