"""The targets that run on the server's own machine: ``local`` (``python -m brainsim run ...
--ranks N``, which forks its N ranks, or starts them with ``mpiexec`` where it cannot:
:mod:`brainsim.exchange.forked`), ``pynn`` (``python -m brainsim run --target pynn ...``: the
circuit's PyNN script on pyNN.nest, its spikes recorded as the job's recording) and ``nir``
(``python -m brainsim compile --target nir ...``: the NIR graph in the job's ``artifacts/`` is
the result). Each is one ``brainsim`` process, with its ranks below it.

Each job runs in its own session and process group (``setsid``), with stdout and stderr going to
files in the job's folder, so that

* cancelling signals the whole group (brainsim, every rank, mpiexec and its proxies where it
  started them): SIGTERM first, which
  the simulator answers by closing its recording as ``cancelled``, then SIGKILL after
  ``kill_grace_s`` for anything left; nothing of the job outlives it;
* the job survives a restart of the server (no pipe to break, no parent to take it down); the
  next server adopts it through ``launch.json`` (pid and start time of its process).

Processes are started with ``os.posix_spawn`` and reaped with ``waitpid(WNOHANG)`` polls rather
than through asyncio's subprocess transports, which kill their child when they are closed.
A job's outcome: exit status 0 and a ``complete`` recording -> SUCCEEDED; status 130 or a
``cancelled`` recording -> CANCELLED; status 75 and a ``checkpointed`` recording (SIGUSR1) ->
:class:`~services.machine.Checkpointed` (the job continues from it); anything else -> FAILED,
the reason saying in words how the process ended (the signal by name, for a rank or for the
process itself) followed by the end of stderr and stdout, and ``retryable`` unless the input was
refused (status 2), the time limit stopped it or the exit status was 0. A later run of a job (a
retry, a continuation) runs ``brainsim resume`` or ``run --overwrite`` (:func:`simulator_argv`),
appends to the same output files and is followed from where they ended.
For an adopted job (not our child, no exit status) the recording's status
alone decides, and the job ended when its recording says (else when its output last changed),
not when this server noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import brainsim
from brainsim.engine.launch import MPIEXEC_VARIABLE, one_host_environment
from services.config import LocalConfig
from services.jobdir import (
    DataRoot,
    JobDir,
    checkpoint_time_ms,
    ended_at,
    read_recording_status,
)
from services.jobs import Job, JobState, LogStream, Target
from services.launchers import procs
from services.launchers.base import LauncherHost
from services.launchers.output import OutputFollower, file_sizes, output_tail, tail_text
from services.machine import Checkpointed, Exited, Launched, LaunchFailed, Started

__all__ = ["LocalLauncher", "job_argv", "simulator_argv", "simulator_env"]

log = logging.getLogger(__name__)

EXIT_CANCELLED = 130
"""``brainsim run``'s exit status after SIGINT/SIGTERM."""
EXIT_INVALID = 2
"""``brainsim run``'s exit status for input it refuses (never worth a retry)."""
EXIT_CHECKPOINTED = 75
"""``brainsim run``'s exit status after SIGUSR1: it wrote a checkpoint and stopped."""

_RANK_EXIT = re.compile(r"EXIT STRING: (.*\(signal (\d+)\).*)")
"""MPICH's ``mpiexec`` line for a rank that a signal ended (``... EXIT STRING: Killed (signal
9)``); mpiexec then exits with the signal's number as its status."""

_FORKED_RANK_EXIT = re.compile(r"rank (\d+) was ended by (SIG[A-Z0-9]+) before MPI_Finalize")
"""``brainsim run``'s line for one of its forked ranks that a signal ended (it then stops the
others and exits with status 1)."""


def _signal_name(number: int) -> str:
    """``SIGKILL (Killed)`` for 9; the number alone for an unknown signal."""
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    return f"{name} ({signal.strsignal(number) or name})"


def describe_exit(status: int, output_tail: str = "", process: str = "brainsim") -> str:
    """How ``process`` ended, in words: status ``128 + N`` (or a negative ``-N``) is signal
    ``N`` to the process itself; a rank that a signal ended is named from the report in
    ``output_tail`` (the end of its stdout and stderr) of mpiexec or of ``brainsim run``."""
    if status < 0 or status > 128:
        number = -status if status < 0 else status - 128
        return f"{process} was ended by signal {number}, {_signal_name(number)}"
    text = f"{process} exited with status {status}"
    found = _last(_RANK_EXIT, output_tail)
    forked = _last(_FORKED_RANK_EXIT, output_tail)
    if found is not None:
        number = int(found.group(2))
        text += f": a rank was ended by signal {number}, {_signal_name(number)}"
    elif forked is not None and hasattr(signal.Signals, forked.group(2)):
        number = int(signal.Signals[forked.group(2)])
        text += f": rank {forked.group(1)} was ended by signal {number}, {_signal_name(number)}"
    return text


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The last match of ``pattern`` in ``text`` (the output files of earlier runs of a job
    come before the latest's)."""
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None


def simulator_argv(job: Job, job_dir: JobDir, python: str, mpiexec: str | None = None) -> list[str]:
    """The command that runs ``job``: ``brainsim run --ranks N`` on this machine (which forks
    its ranks, or starts them with mpiexec where it cannot: :mod:`brainsim.exchange.forked`);
    with ``mpiexec`` (a Slurm allocation, whose ranks may span machines), ``mpiexec -n N`` of
    ``brainsim run --launched``.

    ``--no-pool``: a job must not hand its work to a pool the account may have started
    (``brainsim pool``); the service follows, limits and cancels its own processes.
    A later run of the job (a retry, the next link of a chain) runs ``brainsim resume`` on the
    job's store when it resumes from a checkpoint (``job.resume_from_ms``), else ``brainsim
    run --overwrite`` (the failed run's store is replaced). ``--checkpoint-every-ms`` when the
    job asks for checkpoints.
    """
    brainsim = [python, "-m", "brainsim"]
    if mpiexec is not None:
        # --launched: the ranks are already started (by mpiexec), as `brainsim run` finds out.
        brainsim = [mpiexec, "-n", str(job.n_ranks), *brainsim]
        ranks = ["--launched"]
    else:
        ranks = ["--ranks", str(job.n_ranks)]
    if job.resume_from_ms is not None:
        argv = [*brainsim, "resume", str(job_dir.recording), "--progress", "json", *ranks]
    else:
        argv = [
            *brainsim,
            "run",
            str(job_dir.circuit),
            "--out",
            str(job_dir.recording),
            "--progress",
            "json",
            "--duration-ms",
            repr(job.duration_ms),
            "--seed",
            str(job.seed),
            "--no-pool",
            *ranks,
        ]
        if job.segment > 1:
            argv.append("--overwrite")
    if job.checkpoint_every_ms is not None:
        argv += ["--checkpoint-every-ms", repr(job.checkpoint_every_ms)]
    return argv


def job_argv(job: Job, job_dir: JobDir, python: str, pynn_python: str) -> list[str]:
    """The command that runs ``job`` on its target (:func:`simulator_argv` for ``local``)."""
    if job.target is Target.LOCAL:
        return simulator_argv(job, job_dir, python)
    overrides = ["--duration-ms", repr(job.duration_ms), "--seed", str(job.seed)]
    brainsim_cli = [python, "-m", "brainsim"]
    if job.target is Target.NIR:
        out = str(job_dir.artifacts / "nir")
        return [*brainsim_cli, "compile", str(job_dir.circuit), "--target", "nir", "-o", out,
                *overrides]  # fmt: skip
    if job.target is Target.PYNN:
        argv = [*brainsim_cli, "run", str(job_dir.circuit), "--target", "pynn",
                "--pynn-python", pynn_python, "--work", str(job_dir.artifacts / "pynn"),
                "--out", str(job_dir.recording), "--progress", "json", *overrides]  # fmt: skip
        return [*argv, "--overwrite"] if job.segment > 1 else argv
    raise ValueError(f"the local launcher does not run target {job.target.value}")


def simulator_env(*, one_host: bool = False, mpiexec: str | None = None) -> dict[str, str]:
    """The simulator's environment: the server's, with this server's ``brainsim`` first on the
    module path (a source checkout runs its own code, an installation is unaffected) and
    unbuffered output (progress lines reach the files at once). With ``one_host`` (every rank
    on this machine: the local target) also the MPI settings for that where the server's
    environment lacks them (:data:`brainsim.engine.launch.ONE_HOST_MPI_SETTINGS`); with
    ``mpiexec``, the ``mpiexec`` that ``brainsim run`` starts ranks with where it does not fork
    them (``$BRAINSIM_MPIEXEC``)."""
    package_root = str(Path(brainsim.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    env = {
        **(one_host_environment() if one_host else os.environ),
        "PYTHONPATH": os.pathsep.join(p for p in (package_root, path) if p),
        "PYTHONUNBUFFERED": "1",
    }
    if mpiexec is not None:
        env[MPIEXEC_VARIABLE] = mpiexec
    return env


@dataclass(slots=True)
class _Running:
    """A job whose process we follow."""

    job: Job
    pid: int
    """Of its ``brainsim`` process, which also leads the job's process group."""
    ticks: int | None
    """Start time of that process (clock ticks since boot)."""
    is_child: bool
    """Started by this server process (exit status available) or adopted."""
    follower: OutputFollower
    task: asyncio.Task[None] | None = None
    killing: asyncio.Task[None] | None = None


class LocalLauncher:
    """Launches, follows and cancels local jobs (see the module docstring)."""

    def __init__(
        self,
        config: LocalConfig,
        data_root: DataRoot,
        host: LauncherHost,
        default_time_limit_s: float | None = None,
        *,
        target: Target = Target.LOCAL,
        pynn_python: str = "",
    ) -> None:
        if target not in (Target.LOCAL, Target.PYNN, Target.NIR):
            raise ValueError(f"the local launcher does not run target {target.value}")
        self._target = target
        self._pynn_python = pynn_python
        self._config = config
        self._data_root = data_root
        self._host = host
        self._default_time_limit_s = default_time_limit_s
        self._running: dict[str, _Running] = {}
        self._kill_when_followed: set[str] = set()

    @property
    def target(self) -> Target:
        return self._target

    _process = "brainsim"
    """What the job's process is, in messages."""

    def unavailable_reason(self) -> str | None:
        if self._target is Target.LOCAL and shutil.which(self._config.mpiexec) is None:
            return f"mpiexec not found ({self._config.mpiexec})"
        if self._target is Target.PYNN:
            if not self._pynn_python:
                return "pynn.python is not configured (a Python with PyNN 0.13 and NEST)"
            if shutil.which(self._pynn_python) is None:
                return f"pynn.python not found ({self._pynn_python})"
        return None

    # --- launching and following -----------------------------------------------------------

    def _spawn(self, job: Job, job_dir: JobDir) -> tuple[int, int | None, tuple[int, int]]:
        """Start the job's process; its pid, start time and where this run's output begins."""
        executable = shutil.which(self._config.python)
        if executable is None:
            raise FileNotFoundError(f"{self._config.python} not found")
        argv = job_argv(job, job_dir, executable, self._pynn_python)
        stdout_at, stderr_at = file_sizes(job_dir.stdout, job_dir.stderr)
        append = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        local = self._target is Target.LOCAL
        pid = os.posix_spawn(
            executable,
            argv,
            simulator_env(one_host=local, mpiexec=self._config.mpiexec if local else None),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(job_dir.stdout), append, 0o644),
                (os.POSIX_SPAWN_OPEN, 2, str(job_dir.stderr), append, 0o644),
            ],
            setsid=True,
        )
        ticks = procs.start_ticks(pid)
        info = {"pid": pid, "start_ticks": ticks, "argv": argv, "segment": job.segment}
        job_dir.launch_info.write_text(json.dumps(info), encoding="utf-8")
        return pid, ticks, (stdout_at, stderr_at)

    async def launch(self, job: Job) -> None:
        job_dir = self._data_root.job(job.job_id)
        try:
            pid, ticks, start_at = await asyncio.to_thread(self._spawn, job, job_dir)
        except OSError as exc:
            self._host.emit(LaunchFailed(job.job_id, str(exc), self._host.now()))
            return
        self._host.emit(Launched(job.job_id, str(pid), self._host.now()))
        self._host.emit(Started(job.job_id, self._host.now()))
        # After the events: watchers get RUNNING first, then this line (one queue, in order).
        started = job.target.launched_as(str(pid), job.n_ranks)
        self._host.log(job.job_id, LogStream.SERVICE, f"started {started}")
        self._follow(job, pid, ticks, is_child=True, publish_backlog=True, start_at=start_at)

    def _follow(
        self,
        job: Job,
        pid: int,
        ticks: int | None,
        *,
        is_child: bool,
        publish_backlog: bool,
        start_at: tuple[int, int] = (0, 0),
    ) -> None:
        job_dir = self._data_root.job(job.job_id)
        follower = OutputFollower(
            self._host,
            job.job_id,
            job_dir.stdout,
            job_dir.stderr,
            self._config.poll_interval_s,
            publish_backlog=publish_backlog,
            start_at=start_at,
        )
        running = _Running(job, pid, ticks, is_child, follower)
        self._running[job.job_id] = running
        follower.start()
        running.task = asyncio.create_task(self._watch(running), name=f"local-{job.job_id}")
        if job.job_id in self._kill_when_followed:
            self._kill_when_followed.discard(job.job_id)
            self._start_killing(running)

    async def _wait_exit(self, running: _Running) -> int | None:
        """Wait until the job's process is gone; its exit status (shell style, 128+N for
        signal N) or ``None`` for an adopted process."""
        while True:
            if running.is_child:
                pid, status = os.waitpid(running.pid, os.WNOHANG)
                if pid != 0:
                    code = os.waitstatus_to_exitcode(status)
                    return code if code >= 0 else 128 - code
            elif not procs.is_alive(running.pid, running.ticks):
                return None
            await asyncio.sleep(self._config.poll_interval_s)

    async def _watch(self, running: _Running) -> None:
        at = None
        job_id = running.job.job_id
        try:
            ending = await self._await_end(running)
            if not running.is_child:  # it may have ended long before this server looked
                job = running.job
                earliest = job.start_time or job.submit_time
                job_dir = self._data_root.job(job.job_id)
                at = await asyncio.to_thread(ended_at, job_dir, earliest, self._host.now())
        except Exception as exc:  # a bug here must not leave the job RUNNING forever
            log.exception("job %s: following it failed", job_id)
            reason = f"the service lost track of the job: {exc!r}"
            ending = Exited(job_id, JobState.FAILED, reason, 0.0)
        self._running.pop(job_id, None)
        self._host.emit(dataclasses.replace(ending, at=at or self._host.now()))

    async def _await_end(self, running: _Running) -> Exited | Checkpointed:
        job = running.job
        limit_s = job.time_limit_s or self._default_time_limit_s
        remaining_s = limit_s
        if limit_s is not None and job.start_time is not None:
            # An adopted job (or a later run) has used part of its time already.
            remaining_s = max(0.0, limit_s - (self._host.now() - job.start_time))
        timed_out = False
        try:
            status = await asyncio.wait_for(self._wait_exit(running), remaining_s)
        except TimeoutError:
            timed_out = True
            self._host.log(job.job_id, LogStream.SERVICE, f"time limit of {limit_s:g} s reached")
            await self._terminate(running)
            status = await self._wait_exit(running)
        await self._clear_group(running)
        await running.follower.stop()
        return await asyncio.to_thread(self._outcome, job, status, timed_out, limit_s)

    def _outcome(
        self, job: Job, status: int | None, timed_out: bool, limit_s: float | None
    ) -> Exited | Checkpointed:
        """How the run ended, as the event to emit (its time is filled in by the caller).

        A failure of the run itself (a rank or the process killed, an error while running, a run
        that ended unobserved without completing) is ``retryable``; a refused input (status 2),
        the time limit and a recording that contradicts a clean exit are not.
        """
        job_id = job.job_id
        job_dir = self._data_root.job(job_id)
        if not job.target.simulates:
            return self._compile_outcome(job, status, timed_out, limit_s)
        recorded = read_recording_status(job_dir.recording)
        recorded_status = recorded.status if recorded is not None else "missing"
        if timed_out:
            reason = f"stopped at the time limit of {limit_s:g} s"
            return Exited(job_id, JobState.FAILED, reason, 0.0)
        if status == EXIT_CANCELLED or recorded_status == "cancelled":
            return Exited(job_id, JobState.CANCELLED, "the simulator was stopped by a signal", 0.0)
        if status in (0, None) and recorded_status == "complete":
            return Exited(job_id, JobState.SUCCEEDED, "", 0.0)
        if status in (EXIT_CHECKPOINTED, None) and recorded_status == "checkpointed":
            return Checkpointed(job_id, checkpoint_time_ms(job_dir.recording), 0.0)
        retryable = status not in (0, EXIT_INVALID)
        if status is None:
            what = (
                "the simulation ended while the server was down and its recording says "
                f"{recorded_status!r}"
            )
        elif status == 0:
            what = f"{self._process} exited with 0 but the recording is {recorded_status}"
        else:
            tails = tail_text(job_dir.stdout, 20) + "\n" + tail_text(job_dir.stderr, 20)
            what = describe_exit(status, tails, self._process)
        output = output_tail(job_dir.stdout, job_dir.stderr)
        reason = f"{what}\n{output}" if output else what
        checkpoint = checkpoint_time_ms(job_dir.recording) if retryable else None
        return Exited(job_id, JobState.FAILED, reason, 0.0, retryable, checkpoint)

    def _compile_outcome(
        self, job: Job, status: int | None, timed_out: bool, limit_s: float | None
    ) -> Exited:
        """How a compile-only job ended: exit status 0 and its artefacts written -> SUCCEEDED."""
        job_dir = self._data_root.job(job.job_id)
        if timed_out:
            return Exited(
                job.job_id, JobState.FAILED, f"stopped at the time limit of {limit_s:g} s", 0.0
            )
        if status == EXIT_CANCELLED:
            return Exited(
                job.job_id, JobState.CANCELLED, "the compiler was stopped by a signal", 0.0
            )
        written = job_dir.artifacts.is_dir() and any(
            p.is_file() for p in job_dir.artifacts.rglob("*")
        )
        if written and status in (0, None):  # None: it ended while no server followed it
            return Exited(job.job_id, JobState.SUCCEEDED, "", 0.0)
        if status is None:
            what = "the compilation ended while the server was down and wrote nothing"
        elif status == 0:
            what = "brainsim compile exited with 0 but wrote nothing"
        else:
            what = describe_exit(status, "", self._process)
        output = output_tail(job_dir.stdout, job_dir.stderr)
        reason = f"{what}\n{output}" if output else what
        return Exited(job.job_id, JobState.FAILED, reason, 0.0, status not in (0, EXIT_INVALID))

    # --- cancelling ------------------------------------------------------------------------

    async def kill(self, job: Job) -> None:
        running = self._running.get(job.job_id)
        if running is None:
            # Adoption after a restart may still be under way: kill once it is followed.
            self._kill_when_followed.add(job.job_id)
            return
        self._start_killing(running)

    def _start_killing(self, running: _Running) -> None:
        if running.killing is not None:
            return
        message = "cancelling: SIGTERM to the process group"
        self._host.log(running.job.job_id, LogStream.SERVICE, message)
        running.killing = asyncio.create_task(self._terminate(running))

    async def _terminate(self, running: _Running) -> None:
        """SIGTERM the group; SIGKILL whatever is left after the grace period."""
        procs.signal_group(running.pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.kill_grace_s
        while loop.time() < deadline:
            if not await asyncio.to_thread(procs.group_members, running.pid):
                return
            await asyncio.sleep(min(self._config.poll_interval_s, 0.1))
        log.warning("job %s: process group still alive after SIGTERM, killing", running.job.job_id)
        procs.signal_group(running.pid, signal.SIGKILL)

    async def _clear_group(self, running: _Running) -> None:
        """After the job's process ended: make sure no process of the job's group is left behind."""
        if running.killing is not None:
            await running.killing
        for attempt in range(20):
            members = await asyncio.to_thread(procs.group_members, running.pid)
            if not members:
                return
            sig = signal.SIGTERM if attempt == 0 else signal.SIGKILL
            if attempt in (0, 10):
                log.warning(
                    "job %s: %d leftover processes, %s", running.job.job_id, len(members), sig.name
                )
                procs.signal_group(running.pid, sig)
            await asyncio.sleep(0.1)

    # --- restarts ----------------------------------------------------------------------------

    def _launch_info(self, job: Job) -> tuple[int, int | None] | None:
        """pid and start time of the job's process, from ``launch.json`` if it is of the job's
        current run (a later run of a job rewrites it)."""
        try:
            info = json.loads(self._data_root.job(job.job_id).launch_info.read_text("utf-8"))
            if int(info.get("segment", 1)) != job.segment:
                return None
            return int(info["pid"]), info.get("start_ticks")
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def locate(self, job: Job) -> str | None:
        info = await asyncio.to_thread(self._launch_info, job)
        return None if info is None else str(info[0])

    async def adopt(self, job: Job) -> None:
        info = await asyncio.to_thread(self._launch_info, job)
        pid, ticks = info if info is not None else (int(job.external_id), None)
        if procs.is_alive(pid, ticks):
            self._host.log(job.job_id, LogStream.SERVICE, f"server restarted; following pid {pid}")
        self._follow(job, pid, ticks, is_child=False, publish_backlog=False)

    async def close(self) -> None:
        for running in list(self._running.values()):
            for task in (running.task, running.killing):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await running.follower.cancel()
        self._running.clear()
