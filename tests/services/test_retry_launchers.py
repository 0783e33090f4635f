"""What the launchers do for later runs of a job: ``brainsim resume`` from a checkpoint (or
``run --overwrite`` from the beginning), ``--checkpoint-every-ms``, and for Slurm the checkpoint
signal, appended output and a job name per run; and a job store of schema 1 taking the new
fields."""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
import sqlite3
from pathlib import Path

from services.config import SlurmConfig
from services.jobdir import DataRoot
from services.jobs import Job
from services.launchers.local import simulator_argv
from services.launchers.slurm import SlurmLauncher, job_name
from services.store import JobStore
from tests.services.test_launcher_parts import FakeHost, make_job


def test_later_runs_resume_or_start_again(tmp_path: Path) -> None:
    data_root = DataRoot.create(tmp_path / "data")
    job = make_job(checkpoint_every_ms=250.0)
    job_dir = data_root.job(job.job_id)
    first = simulator_argv(job, job_dir, "python")
    assert first[first.index("--checkpoint-every-ms") + 1] == "250.0"
    assert "--overwrite" not in first
    assert first[:4] == ["python", "-m", "brainsim", "run"]
    assert first[first.index("--ranks") + 1] == "4"  # brainsim run starts the ranks itself
    again = simulator_argv(make_job(segment=2), job_dir, "python")
    assert "--overwrite" in again
    assert "--checkpoint-every-ms" not in again
    later = make_job(segment=3, resume_from_ms=500.0, checkpoint_every_ms=250.0)
    assert simulator_argv(later, job_dir, "python") == [
        "python", "-m", "brainsim", "resume", str(job_dir.recording), "--progress", "json",
        "--ranks", "4", "--checkpoint-every-ms", "250.0",
    ]  # fmt: skip
    # In a Slurm allocation, mpiexec starts the ranks, which may span machines.
    assert simulator_argv(later, job_dir, "python", "mpiexec") == [
        "mpiexec", "-n", "4", "python", "-m", "brainsim", "resume", str(job_dir.recording),
        "--progress", "json", "--launched", "--checkpoint-every-ms", "250.0",
    ]  # fmt: skip


def test_slurm_chains_get_the_signal_and_a_name_per_run(tmp_path: Path) -> None:
    data_root = DataRoot.create(tmp_path / "data")
    launcher = SlurmLauncher(SlurmConfig(checkpoint_signal_s=300), data_root, FakeHost())
    plain = launcher.sbatch_argv(make_job(time_limit_s=3600.0))
    assert not any(a.startswith("--signal") for a in plain)
    assert "--open-mode=append" in plain  # a later run appends to the same output files
    job = make_job(time_limit_s=3600.0, checkpoint_every_ms=1000.0, segment=2)
    argv = launcher.sbatch_argv(job)
    assert "--signal=B:USR1@300" in argv
    assert f"--job-name={job_name(job.job_id, 2)}" in argv
    assert job_name(job.job_id, 2) == "brainsim-0123456789ab-2"
    short = launcher.sbatch_argv(make_job(time_limit_s=60.0, checkpoint_every_ms=1000.0))
    assert "--signal=B:USR1@30" in short  # at most half the limit ahead
    resumed = launcher.render(make_job(segment=2, resume_from_ms=3000.0))
    exec_line = next(line for line in resumed.splitlines() if line.startswith("exec "))
    assert shlex.split(exec_line)[5:8] == ["-m", "brainsim", "resume"]


_V1_JOBS = """
CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY, owner TEXT NOT NULL, target TEXT NOT NULL,
    n_ranks INTEGER NOT NULL, circuit_name TEXT NOT NULL, duration_ms REAL NOT NULL,
    seed INTEGER NOT NULL, submit_time REAL NOT NULL, state TEXT NOT NULL, start_time REAL,
    end_time REAL, simulated_ms REAL NOT NULL, reason TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL, external_id TEXT NOT NULL, time_limit_s REAL,
    slurm_partition TEXT NOT NULL, slurm_account TEXT NOT NULL
);
INSERT INTO jobs VALUES ('0123456789ab', 'alice', 'local', 2, 'tiny', 100.0, 7, 1.0, 'QUEUED',
    NULL, NULL, 0.0, '', 0, '', NULL, '', '');
PRAGMA user_version = 1;
"""


def test_a_version_1_job_store_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(_V1_JOBS)

    async def reopen() -> list[Job]:
        store = await JobStore.open(path)
        try:
            job = (await store.active())[0]
            changed = dataclasses.replace(job, attempt=2, segment=3, resume_from_ms=40.0)
            await store.write([(changed, "retrying", {}, 2.0)])
            return [job, *(await store.active())]
        finally:
            await store.close()

    before, after = asyncio.run(reopen())
    assert (before.max_retries, before.attempt, before.segment) == (0, 1, 1)
    assert before.checkpoint_every_ms is None
    assert before.resume_from_ms is None
    assert (after.attempt, after.segment, after.resume_from_ms) == (2, 3, 40.0)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
