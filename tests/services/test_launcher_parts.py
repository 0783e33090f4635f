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
from services.launchers.local import simulator_env
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


def test_compile_reports_of_a_cold_run_become_log_lines(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    host = FakeHost()
    out.write_text(
        '{"event": "started", "n_ranks": 1, "duration_ms": 10.0}\n'
        '{"event": "compiling", "kernels": 1, "kernel": "fixed_indegree", "wall_s": 0.0}\n'
        '{"event": "compiling", "kernels": 57, "kernel": "run_intervals", "wall_s": 12.4}\n'
        '{"event": "compiled", "kernels": 140, "wall_s": 35.26}\n'
        '{"event": "compiled", "kernels": 40, "helper_kernels": 9, "wall_s": 12.04}\n'
        '{"event": "compiled", "kernels": "many"}\n'
    )

    async def scenario() -> None:
        follower = OutputFollower(host, "j", out, err, interval_s=0.01)
        follower.start()
        await follower.stop()

    asyncio.run(scenario())
    assert host.events == [Started("j", 123.0)]
    assert [text for _, _, text in host.logs] == [
        "compiling numba kernels: 1 so far, now fixed_indegree (0 s)",
        "compiling numba kernels: 57 so far, now run_intervals (12 s)",
        "compiled 140 numba kernels in 35.3 s (cached for later runs)",
        "compiled 40 numba kernels and 9 in a helper process in 12.0 s (cached for later runs)",
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


# --- how a job ended (issue 18) -------------------------------------------------------------------


def test_exit_statuses_are_described_in_words() -> None:
    from services.launchers.local import describe_exit

    assert describe_exit(137) == "brainsim was ended by signal 9, SIGKILL (Killed)"
    assert describe_exit(-15) == "brainsim was ended by signal 15, SIGTERM (Terminated)"
    assert describe_exit(1) == "brainsim exited with status 1"
    # brainsim run's forked ranks: it names the rank, stops the others and exits with 1.
    forked = "error: rank 1 was ended by SIGKILL before MPI_Finalize; the other ranks were stopped"
    assert describe_exit(1, forked) == (
        "brainsim exited with status 1: rank 1 was ended by signal 9, SIGKILL (Killed)"
    )
    # A job's output files hold its earlier runs' lines first: the latest run's counts.
    earlier = forked.replace("rank 1", "rank 0").replace("SIGKILL", "SIGSEGV")
    assert describe_exit(1, f"{earlier}\n{forked}").endswith("rank 1 was ended by signal 9, "
                                                              "SIGKILL (Killed)")  # fmt: skip
    # mpiexec's ranks (brainsim run --launcher mpiexec, or a Slurm job's mpiexec).
    mpich = "=   EXIT CODE: 9\nYOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)"
    assert describe_exit(9, mpich, "mpiexec") == (
        "mpiexec exited with status 9: a rank was ended by signal 9, SIGKILL (Killed)"
    )
    assert describe_exit(11, "EXIT STRING: Segmentation fault (signal 11)").endswith(
        "a rank was ended by signal 11, SIGSEGV (Segmentation fault)"
    )
    assert describe_exit(200) == "brainsim was ended by signal 72, signal 72"


def test_the_output_tail_leaves_out_progress_lines_and_banners(tmp_path: Path) -> None:
    from services.launchers.output import output_tail

    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    out.write_text(
        '{"event": "progress", "simulated_ms": 1.0}\n'
        "=====================\n"
        "=   EXIT CODE: 9\n"
        "YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)\n"
        '{"event": "progress", "simulated_ms": 2.0}\n'
    )
    assert output_tail(out, err) == (
        "stdout ends with:\n"
        "  =   EXIT CODE: 9\n"
        "  YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)"
    )
    err.write_text("Traceback (most recent call last):\nValueError: boom\n")
    assert output_tail(out, err).startswith(
        "stderr ends with:\n  Traceback (most recent call last):\n  ValueError: boom\nstdout"
    )
    assert output_tail(tmp_path / "none", tmp_path / "none either") == ""


def make_store(path: Path, attrs: dict[str, object], *, consolidated: bool = False) -> None:
    import warnings

    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.create_array("spikes", shape=(3,), dtype="f8")[:] = [1.0, 2.0, 3.0]
    root.attrs["brainsim"] = attrs
    if consolidated:
        with warnings.catch_warnings():  # as the writer does: consolidated is not in v3 yet
            warnings.simplefilter("ignore", zarr.errors.ZarrUserWarning)
            zarr.consolidate_metadata(str(path))


def test_settle_store_makes_the_store_say_what_the_job_says(tmp_path: Path) -> None:
    import json

    import zarr

    from brainsim.recording import settle_store

    base = {"simulated_ms": 5.0, "provenance": {"end_time": None, "n_ranks": 2}}
    running = tmp_path / "running.zarr"
    make_store(running, {**base, "status": "running", "reason": None})
    assert settle_store(running, "failed", "a rank died", end_time="2026-01-02T03:04:05+00:00")
    attrs = zarr.open_group(str(running), mode="r").attrs["brainsim"]
    assert (attrs["status"], attrs["reason"], attrs["simulated_ms"]) == ("failed", "a rank died", 5)
    assert attrs["provenance"] == {"end_time": "2026-01-02T03:04:05+00:00", "n_ranks": 2}
    status = read_recording_status(running)
    assert status is not None
    assert status.end_time == 1767323045.0

    # A finished (consolidated) store: the reason is filled in, the data and metadata stay.
    cancelled = tmp_path / "cancelled.zarr"
    ended = {**base, "provenance": {"end_time": "2026-01-02T00:00:00+00:00"}}
    make_store(cancelled, {**ended, "status": "cancelled", "reason": None}, consolidated=True)
    assert settle_store(cancelled, "cancelled", "cancelled by alice")
    root = zarr.open_group(str(cancelled), mode="r")
    assert root.attrs["brainsim"]["reason"] == "cancelled by alice"
    assert root.attrs["brainsim"]["provenance"]["end_time"] == "2026-01-02T00:00:00+00:00"
    assert list(root["spikes"][:]) == [1.0, 2.0, 3.0]
    assert "consolidated_metadata" in json.loads((cancelled / "zarr.json").read_text())
    assert not settle_store(cancelled, "cancelled", "cancelled by bob")  # the reason is kept

    # Another final status: the job's wins, the run's own reason follows it.
    other = tmp_path / "other.zarr"
    make_store(other, {**ended, "status": "failed", "reason": "RecordingError: disk full"})
    assert settle_store(other, "cancelled", "cancelled by alice")
    attrs = zarr.open_group(str(other), mode="r").attrs["brainsim"]
    assert attrs["status"] == "cancelled"
    assert attrs["reason"] == (
        "cancelled by alice; the run had recorded failed: RecordingError: disk full"
    )
    assert not settle_store(tmp_path / "missing.zarr", "failed", "x")
    resumable = tmp_path / "resumable.zarr"
    make_store(resumable, {**ended, "status": "checkpointed", "reason": None})
    assert not settle_store(resumable, "failed", "x")  # it can be resumed: left as it is


def test_local_jobs_get_the_one_machine_mpi_settings_and_slurm_jobs_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A local job's ranks all run on the server's machine: UCX is loaded without its memory
    hooks (45 ms per rank), unless the server's environment says otherwise; a Slurm job's may
    span machines and keeps the environment as it is."""
    monkeypatch.delenv("UCX_MEM_EVENTS", raising=False)
    assert simulator_env(one_host=True)["UCX_MEM_EVENTS"] == "no"
    assert "UCX_MEM_EVENTS" not in simulator_env()
    assert simulator_env(one_host=True)["PYTHONUNBUFFERED"] == "1"
    monkeypatch.setenv("UCX_MEM_EVENTS", "yes")
    assert simulator_env(one_host=True)["UCX_MEM_EVENTS"] == "yes"
    # Where brainsim run cannot fork its ranks it starts the server's configured mpiexec.
    assert simulator_env(one_host=True, mpiexec="/opt/mpi/mpiexec")["BRAINSIM_MPIEXEC"] == (
        "/opt/mpi/mpiexec"
    )
