"""Launcher building blocks: output following, process groups via /proc, batch scripts and the
reading of Slurm's answers (with fake Slurm commands that print what real ones print)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from services.config import DEFAULT_SBATCH_TEMPLATE, SlurmConfig
from services.jobdir import DataRoot, read_recording_status
from services.jobs import Job, JobState, LogStream, Target
from services.launchers import procs
from services.launchers.output import OutputFollower, tail_text
from services.launchers.slurm import SlurmLauncher
from services.machine import Event, Exited, ProgressMade, Started


class FakeHost:
    """Collects what a launcher reports."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.logs: list[tuple[str, LogStream, str]] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def log(self, job_id: str, stream: LogStream, text: str) -> None:
        self.logs.append((job_id, stream, text))

    def now(self) -> float:
        return 123.0


def make_job(job_id: str = "0123456789ab", **changes: object) -> Job:
    job = Job(job_id, "alice", Target.SLURM, 4, "tiny", 100.0, 42, 1.0)
    return dataclasses.replace(job, **changes)


# --- output following ---------------------------------------------------------------------------


def test_follower_turns_progress_into_events_and_other_lines_into_logs(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    host = FakeHost()

    async def scenario() -> None:
        follower = OutputFollower(host, "j", out, err, interval_s=0.01)
        follower.start()
        out.write_text(
            '{"event": "started", "n_ranks": 2, "duration_ms": 10.0}\nhello\n{"event": "prog'
        )
        await asyncio.sleep(0.1)
        with out.open("a") as fh:  # the rest of a line written in two pieces
            fh.write('ress", "simulated_ms": 2.5, "duration_ms": 10.0, "wall_s": 0.5}\n{not json\n')
        err.write_text("warning: something\n")
        await follower.stop()

    asyncio.run(scenario())
    assert host.events == [Started("j", 123.0), ProgressMade("j", 2.5, 0.5, 123.0)]
    assert host.logs == [
        ("j", LogStream.STDOUT, "hello"),
        ("j", LogStream.STDOUT, "{not json"),
        ("j", LogStream.STDERR, "warning: something"),
    ]


def test_adopting_follower_scans_old_output_for_progress_without_republishing(
    tmp_path: Path,
) -> None:
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    out.write_text(
        "old line\n"
        + "".join(
            f'{{"event": "progress", "simulated_ms": {ms}, "duration_ms": 10.0, "wall_s": 1.0}}\n'
            for ms in (1.0, 2.0)
        )
    )
    err.write_text("old error\n")
    host = FakeHost()

    async def scenario() -> None:
        follower = OutputFollower(host, "j", out, err, interval_s=0.01, publish_backlog=False)
        follower.start()
        await asyncio.sleep(0.1)
        with err.open("a") as fh:
            fh.write("new error\n")
        await follower.stop()

    asyncio.run(scenario())
    assert [e.simulated_ms for e in host.events if isinstance(e, ProgressMade)] == [1.0, 2.0]
    assert host.logs == [("j", LogStream.STDERR, "new error")]


def test_tail_text_keeps_the_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "stderr.log"
    path.write_text("".join(f"line {i}\n\n" for i in range(10)))
    assert tail_text(path, max_lines=2) == "line 8\nline 9"
    assert tail_text(tmp_path / "missing") == ""


def test_recording_status_is_read_from_the_root_attributes(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    store = tmp_path / "r.zarr"
    root = zarr.open_group(str(store), mode="w")
    root.attrs["brainsim"] = {"status": "cancelled", "simulated_ms": 12.5}
    status = read_recording_status(store)
    assert status is not None
    assert (status.status, status.simulated_ms) == ("cancelled", 12.5)
    assert read_recording_status(tmp_path / "none.zarr") is None


# --- process groups -----------------------------------------------------------------------------


def test_process_groups_are_found_and_stopped_through_proc() -> None:
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(procs.group_members(leader.pid)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ticks = procs.start_ticks(leader.pid)
        assert ticks is not None
        assert procs.is_alive(leader.pid, ticks)
        assert not procs.is_alive(leader.pid, ticks + 1)  # same pid, another process
        assert procs.signal_group(leader.pid, signal.SIGKILL)
        leader.wait(10)
        assert not procs.is_alive(leader.pid)
        deadline = time.monotonic() + 10
        while procs.group_members(leader.pid):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        if leader.poll() is None:
            os.killpg(leader.pid, signal.SIGKILL)
            leader.wait()


# --- Slurm: scripts and answers -----------------------------------------------------------------


def fake_command(folder: Path, name: str, stdout: str, status: int = 0) -> str:
    """An executable that records its arguments and prints ``stdout``."""
    path = folder / name
    path.write_text(
        f'#!/bin/sh\necho "$@" >> {shlex.quote(str(folder / (name + ".calls")))}\n'
        f"printf %s {shlex.quote(stdout)}\nexit {status}\n"
    )
    path.chmod(0o755)
    return str(path)


def test_batch_script_and_sbatch_options(tmp_path: Path) -> None:
    data_root = DataRoot.create(tmp_path / "data root")
    config = SlurmConfig(partition="debug", account="lab", extra_sbatch_args=("--qos=low",))
    launcher = SlurmLauncher(config, data_root, FakeHost())
    job = make_job(time_limit_s=301.0, slurm_account="other")
    script = launcher.render(job)
    job_dir = data_root.job(job.job_id).path
    assert f"cd {shlex.quote(str(job_dir))}\n" in script
    exec_line = next(line for line in script.splitlines() if line.startswith("exec "))
    command = shlex.split(exec_line.removeprefix("exec "))
    assert command[:3] == [config.mpiexec, "-n", "4"]
    assert command[3:7] == [config.python, "-m", "brainsim", "run"]
    assert command[command.index("--out") + 1] == str(job_dir / "recording.zarr")
    assert command[command.index("--seed") + 1] == "42"
    assert "--no-pool" in command  # the job's own ranks, never a pool of the account's
    argv = launcher.sbatch_argv(job)
    assert argv[:2] == ["sbatch", "--parsable"]
    assert "--job-name=brainsim-0123456789ab" in argv
    assert "--ntasks=4" in argv
    assert "--time=6" in argv  # 301 s rounded up to whole minutes
    assert "--partition=debug" in argv
    assert "--account=other" in argv  # the job's own choice wins
    assert argv[-2:] == ["--qos=low", str(job_dir / "job.sbatch")]
    assert DEFAULT_SBATCH_TEMPLATE.read_text().startswith("#!/bin/bash")


@pytest.mark.parametrize(
    ("squeue", "sacct", "recording", "expected"),
    [
        ("5|COMPLETED|None\n", "", "complete", (JobState.SUCCEEDED, "")),
        ("5|COMPLETED|None\n", "", "failed", (JobState.FAILED, "recording is failed")),
        ("5|TIMEOUT|None\n", "", "running", (JobState.FAILED, "time limit")),
        ("5|CANCELLED|None\n", "", "cancelled", (JobState.CANCELLED, "outside the service")),
        ("5|NODE_FAIL|None\n", "", None, (JobState.FAILED, "a node of the job failed")),
        ("", "5|FAILED|3:0\n", None, (JobState.FAILED, "exit code 3:0")),
        ("", "5|CANCELLED by 0|0:0\n", None, (JobState.CANCELLED, "outside the service")),
    ],
)
def test_slurm_answers_map_to_outcomes(
    tmp_path: Path,
    squeue: str,
    sacct: str,
    recording: str | None,
    expected: tuple[JobState, str],
) -> None:
    zarr = pytest.importorskip("zarr")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    config = SlurmConfig(
        squeue=fake_command(bin_dir, "squeue", squeue),
        sacct=fake_command(bin_dir, "sacct", sacct),
        poll_interval_s=0.05,
    )
    data_root = DataRoot.create(tmp_path / "data")
    job = make_job(external_id="5")
    job_dir = data_root.job(job.job_id)
    job_dir.path.mkdir()
    if recording is not None:
        zarr.open_group(str(job_dir.recording), mode="w").attrs["brainsim"] = {"status": recording}
    host = FakeHost()
    launcher = SlurmLauncher(config, data_root, host)

    async def scenario() -> None:
        await launcher.adopt(job)
        for _ in range(100):
            if any(isinstance(e, Exited) for e in host.events):
                break
            await asyncio.sleep(0.02)
        await launcher.close()

    asyncio.run(scenario())
    exited = [e for e in host.events if isinstance(e, Exited)]
    assert len(exited) == 1
    assert exited[0].outcome is expected[0]
    assert expected[1] in exited[0].reason
    sacct_calls = bin_dir / "sacct.calls"
    if not squeue:
        assert "-c -n -P -j 5" in sacct_calls.read_text()  # jobcomp log, after squeue forgot


def test_a_job_slurm_forgot_ends_as_its_recording_says(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    config = SlurmConfig(
        squeue=fake_command(bin_dir, "squeue", "", status=1),
        sacct=fake_command(bin_dir, "sacct", ""),
        poll_interval_s=0.01,
    )
    data_root = DataRoot.create(tmp_path / "data")
    job = make_job(external_id="9")
    data_root.job(job.job_id).path.mkdir()
    zarr.open_group(str(data_root.job(job.job_id).recording), mode="w").attrs["brainsim"] = {
        "status": "complete"
    }
    host = FakeHost()
    launcher = SlurmLauncher(config, data_root, host)

    async def scenario() -> None:
        await launcher.adopt(job)
        for _ in range(300):
            if host.events:
                break
            await asyncio.sleep(0.01)
        await launcher.close()

    asyncio.run(scenario())
    assert host.events == [Exited(job.job_id, JobState.SUCCEEDED, "", 123.0)]
