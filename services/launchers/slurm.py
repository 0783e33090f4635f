"""The Slurm target: a batch script from a template, ``sbatch --parsable``, polling, ``scancel``.

Launch: the template (``deploy/slurm/job.sbatch`` by default) is rendered into the job's folder and
submitted as ``sbatch --parsable --job-name=brainsim-<job_id> --ntasks=N --time=M ...``; the
Slurm job id becomes the job's external id. One poller asks ``squeue -h -t all -j ID,...`` about
all followed jobs every ``poll_interval_s``; jobs that ``squeue`` no longer knows (older than
``MinJobAge``) are looked up with ``sacct`` (``sacct -c`` reads the jobcomp text log where there
is no accounting database). Progress and log lines come from the job's output files, which Slurm
writes into the job's folder (a file system shared with the compute nodes).

Slurm states map to events: RUNNING/COMPLETING -> Started; COMPLETED -> SUCCEEDED (if the
recording says ``complete``); CANCELLED -> CANCELLED; TIMEOUT, FAILED, OUT_OF_MEMORY, NODE_FAIL,
BOOT_FAIL, DEADLINE, PREEMPTED -> FAILED with the reason (retryable but for OUT_OF_MEMORY,
DEADLINE and REVOKED); whatever the state, a ``checkpointed`` recording (the job got
``--signal=B:USR1@S`` before its time limit, wrote a checkpoint and exited 75) ->
:class:`~services.machine.Checkpointed`, and the next run of the chain is submitted as a new
Slurm job (``brainsim resume``, named ``brainsim-<job_id>-<run>``). A job that neither
command knows any more (after several polls) ends as its recording says. After a restart a job
whose ``sbatch`` answer was lost is found again by its job name.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import shlex
import shutil
import string
from dataclasses import dataclass

from services.config import ConfigError, SlurmConfig
from services.jobdir import DataRoot, checkpoint_time_ms, ended_at, read_recording_status
from services.jobs import Job, JobState, LogStream, Target
from services.launchers.base import LauncherHost
from services.launchers.local import simulator_argv, simulator_env
from services.launchers.output import OutputFollower, file_sizes, tail_text
from services.machine import Checkpointed, Exited, Launched, LaunchFailed, Started

__all__ = ["SlurmLauncher", "job_name", "run_command"]

log = logging.getLogger(__name__)

_COMMAND_TIMEOUT_S = 60.0
_MAX_MISSES = 5
"""Polls in a row in which Slurm does not know a job before its recording decides its end."""
_PENDING = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"})
_RUNNING = frozenset(
    {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED", "RESIZING"}
)
_FAILED_REASONS = {
    "TIMEOUT": "Slurm stopped the job at its time limit",
    "OUT_OF_MEMORY": "Slurm stopped the job: out of memory",
    "NODE_FAIL": "a node of the job failed",
    "BOOT_FAIL": "a node of the job failed to boot",
    "DEADLINE": "the job missed its deadline",
    "PREEMPTED": "the job was preempted",
    "REVOKED": "the job was revoked",
}
_NOT_RETRYABLE = frozenset({"OUT_OF_MEMORY", "DEADLINE", "REVOKED"})
"""Endings that another try would meet again."""


def job_name(job_id: str, segment: int = 1) -> str:
    """The Slurm job name of a service job's run (how it is found again after a restart):
    ``brainsim-<job_id>`` for the first run, ``brainsim-<job_id>-<segment>`` for later ones (a
    retry, the next link of a chain), so that a restart never mistakes an earlier run for the
    one it waits for."""
    return f"brainsim-{job_id}" if segment == 1 else f"brainsim-{job_id}-{segment}"


async def run_command(
    argv: list[str], timeout_s: float = _COMMAND_TIMEOUT_S, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run a short command; (exit status, stdout, stderr). A timeout kills it (status -9)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return 127, "", str(exc)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -9, "", f"{argv[0]} did not answer within {timeout_s:g} s"
    return proc.returncode or 0, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


@dataclass(slots=True)
class _Followed:
    job: Job
    slurm_id: str
    follower: OutputFollower
    running: bool = False
    misses: int = 0
    adopted: bool = False
    """Followed again after a restart: it may have ended while no server looked."""


class SlurmLauncher:
    """Submits, polls and cancels Slurm jobs (see the module docstring)."""

    def __init__(self, config: SlurmConfig, data_root: DataRoot, host: LauncherHost) -> None:
        try:
            self._template = string.Template(config.template.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"slurm.template: cannot read {config.template}: {exc}") from exc
        self._config = config
        self._data_root = data_root
        self._host = host
        self._followed: dict[str, _Followed] = {}
        self._wakeup = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None

    @property
    def target(self) -> Target:
        return Target.SLURM

    def unavailable_reason(self) -> str | None:
        if shutil.which(self._config.sbatch) is None:
            return f"this server's Slurm client is missing ({self._config.sbatch} not found)"
        return None

    def render(self, job: Job) -> str:
        """The batch script of ``job``."""
        job_dir = self._data_root.job(job.job_id)
        command = simulator_argv(job, job_dir, self._config.python, self._config.mpiexec)
        return self._template.substitute(
            job_id=shlex.quote(job.job_id),
            job_dir=shlex.quote(str(job_dir.path)),
            n_ranks=str(job.n_ranks),
            command=shlex.join(command),
        )

    def sbatch_argv(self, job: Job) -> list[str]:
        """The ``sbatch`` command line that submits ``job``."""
        job_dir = self._data_root.job(job.job_id)
        time_limit_s = job.time_limit_s or self._config.default_time_limit_s
        minutes = max(1, math.ceil(time_limit_s / 60))
        argv = [
            self._config.sbatch,
            "--parsable",
            f"--job-name={job_name(job.job_id, job.segment)}",
            f"--ntasks={job.n_ranks}",
            f"--time={minutes}",
            f"--output={job_dir.stdout}",
            f"--error={job_dir.stderr}",
            "--open-mode=append",
            f"--chdir={job_dir.path}",
        ]
        if job.checkpoint_every_ms is not None:
            # B: signals the batch shell, which the template replaces by mpiexec (exec); Hydra
            # forwards SIGUSR1 to every rank. At most half the limit ahead of it.
            lead_s = min(self._config.checkpoint_signal_s, max(1, minutes * 60 // 2))
            argv.append(f"--signal=B:USR1@{lead_s}")
        partition = job.slurm_partition or self._config.partition
        account = job.slurm_account or self._config.account
        if partition:
            argv.append(f"--partition={partition}")
        if account:
            argv.append(f"--account={account}")
        return [*argv, *self._config.extra_sbatch_args, str(job_dir.batch_script)]

    # --- launching and following -----------------------------------------------------------

    async def launch(self, job: Job) -> None:
        job_dir = self._data_root.job(job.job_id)
        try:
            await asyncio.to_thread(job_dir.batch_script.write_text, self.render(job), "utf-8")
        except (OSError, KeyError, ValueError) as exc:
            self._host.emit(LaunchFailed(job.job_id, f"batch script: {exc!r}", self._host.now()))
            return
        # A later run appends to the same files: follow only what it writes.
        start_at = await asyncio.to_thread(file_sizes, job_dir.stdout, job_dir.stderr)
        # sbatch hands its environment to the job (--export=ALL, Slurm's default).
        status, out, err = await run_command(self.sbatch_argv(job), env=simulator_env())
        slurm_id = out.strip().split(";")[0]
        if status != 0 or not slurm_id.isdigit():
            reason = err.strip() or out.strip() or f"sbatch exited with status {status}"
            self._host.emit(LaunchFailed(job.job_id, reason, self._host.now()))
            return
        self._host.log(job.job_id, LogStream.SERVICE, f"submitted to Slurm as job {slurm_id}")
        self._follow(job, slurm_id, publish_backlog=True, start_at=(start_at[0], start_at[1]))
        self._host.emit(Launched(job.job_id, slurm_id, self._host.now()))

    def _follow(
        self,
        job: Job,
        slurm_id: str,
        *,
        publish_backlog: bool,
        start_at: tuple[int, int] = (0, 0),
    ) -> None:
        job_dir = self._data_root.job(job.job_id)
        follower = OutputFollower(
            self._host,
            job.job_id,
            job_dir.stdout,
            job_dir.stderr,
            min(self._config.poll_interval_s, 0.5),
            publish_backlog=publish_backlog,
            start_at=start_at,
        )
        follower.start()
        adopted = not publish_backlog
        self._followed[job.job_id] = _Followed(job, slurm_id, follower, adopted=adopted)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_forever(), name="slurm-poller")
        self._wakeup.set()

    async def _poll_forever(self) -> None:
        while self._followed:
            try:
                await self.poll()
            except Exception:  # the poller must outlive any one bad answer
                log.exception("polling Slurm failed")
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._config.poll_interval_s)

    async def _states(self, slurm_ids: list[str]) -> dict[str, tuple[str, str]]:
        """Slurm id -> (state, exit code or reason) for the ids Slurm still knows."""
        found: dict[str, tuple[str, str]] = {}
        status, out, err = await run_command(
            [self._config.squeue, "-h", "-t", "all", "-j", ",".join(slurm_ids), "-o", "%i|%T|%r"]
        )
        if status != 0 and "Invalid job id" not in err:
            log.warning("squeue failed (%s): %s", status, err.strip())
            return found
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                found[parts[0]] = (parts[1], parts[2])
        missing = [i for i in slurm_ids if i not in found]
        if missing:
            sacct = [self._config.sacct, *(["-c"] if self._config.use_jobcomp else [])]
            sacct += ["-n", "-P", "-j", ",".join(missing), "-o", "JobID,State,ExitCode"]
            status, out, err = await run_command(sacct)
            for line in out.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 3 and parts[0] in missing:
                    # sacct writes e.g. "CANCELLED by 0"; the first word is the state.
                    found[parts[0]] = (parts[1].split(" ")[0], parts[2])
        return found

    async def poll(self) -> None:
        """Ask Slurm once about every followed job and report what changed."""
        followed = list(self._followed.values())
        if not followed:
            return
        states = await self._states([f.slurm_id for f in followed])
        for item in followed:
            state, detail = states.get(item.slurm_id, ("", ""))
            item.misses = 0 if state else item.misses + 1
            if not state and item.misses >= _MAX_MISSES:
                state = "UNKNOWN"
            if state in _PENDING or not state:
                continue
            if state in _RUNNING:
                if not item.running:
                    item.running = True
                    self._host.emit(Started(item.job.job_id, self._host.now()))
                continue
            await self._finish(item, state, detail)

    async def _finish(self, item: _Followed, state: str, detail: str) -> None:
        del self._followed[item.job.job_id]
        await item.follower.stop()
        ending = await asyncio.to_thread(self._outcome, item, state, detail)
        self._host.log(item.job.job_id, LogStream.SERVICE, f"Slurm job {item.slurm_id}: {state}")
        at = self._host.now()
        if item.adopted:
            job, job_dir = item.job, self._data_root.job(item.job.job_id)
            earliest = job.start_time or job.submit_time
            at = await asyncio.to_thread(ended_at, job_dir, earliest, at)
        self._host.emit(dataclasses.replace(ending, at=at))

    def _outcome(self, item: _Followed, state: str, detail: str) -> Exited | Checkpointed:
        """How the Slurm job ended, as the event to emit (its time filled in by the caller).

        A recording that says ``checkpointed`` (the run got the checkpoint signal before the
        time limit, or SIGUSR1 otherwise, and stopped at a checkpoint) continues the chain,
        whatever Slurm's state (the batch script's exit status 75 makes it FAILED). Node
        failures, preemption, the time limit, a failed run and a job that ended unobserved are
        ``retryable``; COMPLETED without a complete recording, out of memory, a missed deadline
        are not.
        """
        job_id = item.job.job_id
        job_dir = self._data_root.job(job_id)
        recorded = read_recording_status(job_dir.recording)
        found = "missing" if recorded is None else recorded.status
        if state == "COMPLETED":
            if found == "complete":
                return Exited(job_id, JobState.SUCCEEDED, "", 0.0)
            reason = f"Slurm says COMPLETED but the recording is {found}"
            return Exited(job_id, JobState.FAILED, reason, 0.0)
        if state == "CANCELLED":
            reason = "cancelled in Slurm (outside the service)"
            return Exited(job_id, JobState.CANCELLED, reason, 0.0)
        if found == "checkpointed":
            return Checkpointed(job_id, checkpoint_time_ms(job_dir.recording), 0.0)
        if state == "UNKNOWN":
            if found == "complete":
                return Exited(job_id, JobState.SUCCEEDED, "", 0.0)
            outcome = JobState.CANCELLED if found == "cancelled" else JobState.FAILED
            reason = f"Slurm no longer knows job {item.slurm_id}; the recording is {found}"
        else:
            stderr = tail_text(job_dir.stderr)
            reason = _FAILED_REASONS.get(state, f"Slurm job {state} (exit code {detail})")
            reason = f"{reason}: {stderr}" if stderr else reason
            outcome = JobState.FAILED
        retryable = outcome is JobState.FAILED and state not in _NOT_RETRYABLE
        checkpoint = checkpoint_time_ms(job_dir.recording) if retryable else None
        return Exited(job_id, outcome, reason, 0.0, retryable, checkpoint)

    # --- cancelling --------------------------------------------------------------------------

    async def kill(self, job: Job) -> None:
        item = self._followed.get(job.job_id)
        slurm_id = item.slurm_id if item is not None else job.external_id
        if not slurm_id:
            return
        status, _, err = await run_command([self._config.scancel, slurm_id])
        message = f"scancel {slurm_id}" + (f" failed: {err.strip()}" if status else "")
        self._host.log(job.job_id, LogStream.SERVICE, message)
        self._wakeup.set()

    # --- restarts ----------------------------------------------------------------------------

    async def locate(self, job: Job) -> str | None:
        status, out, _ = await run_command(
            [
                self._config.squeue,
                "-h",
                "-t",
                "all",
                f"--name={job_name(job.job_id, job.segment)}",
                "-o",
                "%i",
            ]
        )
        ids = out.split() if status == 0 else []
        return ids[0] if ids else None

    async def adopt(self, job: Job) -> None:
        self._follow(job, job.external_id, publish_backlog=False)

    async def close(self) -> None:
        followed = list(self._followed.values())
        self._followed.clear()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for item in followed:
            await item.follower.cancel()
