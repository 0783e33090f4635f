"""The job lifecycle as a pure state machine: ``handle(state, event) -> (new_state, actions)``.

Nothing here does I/O or reads a clock. The async shell (:mod:`services.manager`) turns what
happens (a submission, a launcher's report, a cancel request) into an :data:`Event`, calls
:func:`handle`, and executes the returned :data:`Action` values in order: it persists first (so
nothing is announced or launched that a restart could forget), then publishes, then starts
launches and kills as background tasks. Tests drive :func:`handle` directly and assert the actions.

Only *active* jobs (queued or running) live in :class:`ServiceState`; a job that reaches a final
state is persisted and dropped. Local jobs compete for ``max_local_jobs`` slots: a local job holds
a slot from its launch until it ends, later ones wait first-in first-out. Slurm jobs are handed to
Slurm at once (Slurm queues them itself). Events about jobs that are no longer active are ignored,
so launchers may report an ending twice without harm.

A job may take several runs (*segments*): a run that fails in a way worth trying again
(``Exited.retryable``: a rank killed, a node lost, preempted) is started again while the job has
attempts left (``max_retries``), resumed from its last checkpoint if it has one and from the
beginning otherwise (``retrying``); a run that stopped at a checkpoint on purpose (SIGUSR1, as
Slurm sends before a time limit) is resumed without using an attempt (``continuing``: a chain
of Slurm jobs), unless it made no progress since the checkpoint it started from. Between runs
the job stays RUNNING (and a local job keeps its slot) with no external id, so that a restart
in between launches the next run.

A run's end (``Exited``, ``Checkpointed``) carries the runs its recording lists
(:class:`~services.usage.RunUse`); each one not counted before adds to the job's resource use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.jobs import Job, JobState
from services.usage import RunUse

__all__ = [
    "Action",
    "Adopt",
    "CancelRequested",
    "Checkpointed",
    "Event",
    "Exited",
    "Kill",
    "Launch",
    "LaunchFailed",
    "Launched",
    "Persist",
    "ProgressMade",
    "PublishJob",
    "PublishLog",
    "PublishProgress",
    "Recovered",
    "ServiceState",
    "Started",
    "Submitted",
    "continue_message",
    "handle",
    "retry_message",
]


@dataclass(frozen=True, slots=True)
class ServiceState:
    """Everything the machine knows: the active jobs and the local slots."""

    max_local_jobs: int
    """How many local jobs may run at once (0 holds every local job in the queue)."""
    active: Mapping[str, Job] = field(default_factory=dict)
    """Queued and running jobs by id."""
    local_queue: tuple[str, ...] = ()
    """Local jobs waiting for a slot, oldest first."""
    local_slots: frozenset[str] = frozenset()
    """Local jobs holding a slot (launching or running)."""


# --- events: what happened --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submitted:
    """A validated job was accepted (``job.state`` is QUEUED)."""

    job: Job


@dataclass(frozen=True, slots=True)
class Recovered:
    """The server (re)started; ``jobs`` were active in the store, oldest first.

    The shell has already filled in the external id of any job its launcher can still find, so
    a job without one was never launched.
    """

    jobs: tuple[Job, ...]
    at: float


@dataclass(frozen=True, slots=True)
class Launched:
    """The target accepted the job: a process was started, or Slurm gave it a job id."""

    job_id: str
    external_id: str
    at: float


@dataclass(frozen=True, slots=True)
class Started:
    """The simulation processes are running."""

    job_id: str
    at: float


@dataclass(frozen=True, slots=True)
class ProgressMade:
    """The simulator reported ``simulated_ms`` of simulated time after ``wall_s`` seconds."""

    job_id: str
    simulated_ms: float
    wall_s: float
    at: float


@dataclass(frozen=True, slots=True)
class Exited:
    """The job's processes are gone; ``outcome`` is what the target says happened.

    ``outcome`` is a final state. A job whose cancellation was requested ends CANCELLED unless
    it succeeded anyway. A FAILED outcome that is ``retryable`` (the run itself failed: not a
    refused input, not a time limit of the service) starts the job again while it has attempts
    left, from the checkpoint at ``checkpoint_ms`` (``None``: none, from the beginning).
    """

    job_id: str
    outcome: JobState
    reason: str
    at: float
    retryable: bool = False
    checkpoint_ms: float | None = None
    runs: tuple[RunUse, ...] = ()
    """The runs the job's recording lists now (the shell reads them; counted once each)."""


@dataclass(frozen=True, slots=True)
class Checkpointed:
    """The run wrote a checkpoint at ``checkpoint_ms`` (``None``: none could be read) and
    stopped as asked (exit status 75, recording ``checkpointed``): resume it."""

    job_id: str
    checkpoint_ms: float | None
    at: float
    runs: tuple[RunUse, ...] = ()
    """As for :class:`Exited`."""


@dataclass(frozen=True, slots=True)
class LaunchFailed:
    """The target could not take the job (no mpiexec, sbatch refused it, ...)."""

    job_id: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """User ``by`` asked to cancel the job."""

    job_id: str
    by: str
    at: float


Event = (
    Submitted
    | Recovered
    | Launched
    | Started
    | ProgressMade
    | Exited
    | LaunchFailed
    | CancelRequested
    | Checkpointed
)


# --- actions: what the shell must do ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persist:
    """Write ``job`` to the store and append ``(kind, detail)`` to its event log."""

    job: Job
    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublishJob:
    """Tell the job's watchers its new state."""

    job: Job


@dataclass(frozen=True, slots=True)
class PublishLog:
    """Tell the job's watchers a line of the service (after what was published before)."""

    job_id: str
    text: str


@dataclass(frozen=True, slots=True)
class PublishProgress:
    """Tell the job's watchers its progress."""

    job_id: str
    simulated_ms: float
    duration_ms: float
    wall_s: float


@dataclass(frozen=True, slots=True)
class Launch:
    """Hand the job to its target's launcher."""

    job: Job


@dataclass(frozen=True, slots=True)
class Kill:
    """Stop the job's processes (local: the process group; Slurm: scancel)."""

    job: Job


@dataclass(frozen=True, slots=True)
class Adopt:
    """Resume following a job launched before a restart (its processes may have ended)."""

    job: Job


Action = Persist | PublishJob | PublishLog | PublishProgress | Launch | Kill | Adopt

Transition = tuple[ServiceState, list[Action]]


def handle(state: ServiceState, event: Event) -> Transition:
    """Apply one event; return the new state and the actions to execute, in order."""
    match event:
        case Submitted(job=job):
            return _submitted(state, job)
        case Recovered(jobs=jobs, at=at):
            return _recovered(state, jobs, at)
        case Launched(job_id=job_id, external_id=external_id, at=at):
            return _launched(state, job_id, external_id, at)
        case Started(job_id=job_id, at=at):
            return _started(state, job_id, at)
        case ProgressMade():
            return _progress(state, event)
        case Exited(job_id=job_id, outcome=outcome, reason=reason, at=at):
            state = _count_runs(state, job_id, event.runs)
            if event.retryable and outcome is JobState.FAILED:
                return _failed_run(state, job_id, reason, event.checkpoint_ms, at)
            return _ended(state, job_id, outcome, reason, at)
        case Checkpointed(job_id=job_id, checkpoint_ms=checkpoint_ms, at=at):
            state = _count_runs(state, job_id, event.runs)
            return _checkpointed(state, job_id, checkpoint_ms, at)
        case LaunchFailed(job_id=job_id, reason=reason, at=at):
            return _ended(state, job_id, JobState.FAILED, f"launch failed: {reason}", at)
        case CancelRequested(job_id=job_id, by=by, at=at):
            return _cancel(state, job_id, by, at)


# --- transitions --------------------------------------------------------------------------------


def _with_job(state: ServiceState, job: Job) -> ServiceState:
    return dataclasses.replace(state, active={**state.active, job.job_id: job})


def _count_runs(state: ServiceState, job_id: str, runs: tuple[RunUse, ...]) -> ServiceState:
    """Add the resource use of each run in ``runs`` that the job has not counted yet."""
    job = state.active.get(job_id)
    new = [run for run in runs if job is not None and run.run_id not in job.counted_runs]
    if job is None or not new:
        return state
    job = dataclasses.replace(
        job,
        cpu_s=job.cpu_s + sum(run.cpu_s for run in new),
        peak_rank_memory_bytes=max(
            job.peak_rank_memory_bytes, *(run.max_rank_rss_bytes for run in new)
        ),
        peak_memory_bytes=max(job.peak_memory_bytes, *(run.sum_rank_rss_bytes for run in new)),
        counted_runs=(*job.counted_runs, *(run.run_id for run in new)),
    )
    return _with_job(state, job)


def _fill_local_slots(state: ServiceState) -> Transition:
    """Launch queued local jobs, oldest first, while slots are free."""
    actions: list[Action] = []
    queue = list(state.local_queue)
    slots = set(state.local_slots)
    while queue and len(slots) < state.max_local_jobs:
        job_id = queue.pop(0)
        slots.add(job_id)
        actions.append(Launch(state.active[job_id]))
    new_state = dataclasses.replace(state, local_queue=tuple(queue), local_slots=frozenset(slots))
    return new_state, actions


def _enqueue(state: ServiceState, job: Job) -> Transition:
    """Make a never-launched job active and start it if it may start now."""
    state = _with_job(state, job)
    if not job.target.uses_local_slots:
        return state, [Launch(job)]
    state = dataclasses.replace(state, local_queue=(*state.local_queue, job.job_id))
    return _fill_local_slots(state)


def _submitted(state: ServiceState, job: Job) -> Transition:
    if job.job_id in state.active or job.state is not JobState.QUEUED:
        return state, []
    state, launches = _enqueue(state, job)
    detail = {"target": job.target.value, "n_ranks": job.n_ranks, "owner": job.owner}
    return state, [Persist(job, "submitted", detail), PublishJob(job), *launches]


def _recovered(state: ServiceState, jobs: tuple[Job, ...], at: float) -> Transition:
    actions: list[Action] = []
    for job in jobs:
        if job.job_id in state.active or job.state.terminal:
            continue
        if job.cancel_requested and not job.launched:
            ended = _final(job, JobState.CANCELLED, job.reason, at)
            actions += [Persist(ended, "finished", {"state": ended.state.value}), PublishJob(ended)]
        elif job.launched:
            state = _with_job(state, job)
            if job.target.uses_local_slots:
                state = dataclasses.replace(state, local_slots=state.local_slots | {job.job_id})
            actions += [Persist(job, "recovered", {"external_id": job.external_id}), Adopt(job)]
            if job.cancel_requested:
                actions.append(Kill(job))
        else:
            state = _with_job(state, job)
            actions.append(Persist(job, "recovered", {"external_id": ""}))
            if not job.target.uses_local_slots:
                actions.append(Launch(job))
            else:
                state = dataclasses.replace(state, local_queue=(*state.local_queue, job.job_id))
    state, launches = _fill_local_slots(state)
    return state, actions + launches


def _launched(state: ServiceState, job_id: str, external_id: str, at: float) -> Transition:
    job = state.active.get(job_id)
    if job is None or job.launched:
        return state, []
    job = dataclasses.replace(job, external_id=external_id)
    actions: list[Action] = [
        Persist(job, "launched", {"external_id": external_id, "at": at}),
        PublishJob(job),
    ]
    if job.cancel_requested:
        actions.append(Kill(job))
    return _with_job(state, job), actions


def _started(state: ServiceState, job_id: str, at: float) -> Transition:
    job = state.active.get(job_id)
    if job is None or job.state is not JobState.QUEUED:
        return state, []
    job = dataclasses.replace(job, state=JobState.RUNNING, start_time=at)
    return _with_job(state, job), [Persist(job, "started", {}), PublishJob(job)]


def _progress(state: ServiceState, event: ProgressMade) -> Transition:
    job = state.active.get(event.job_id)
    if job is None or event.simulated_ms < job.simulated_ms:
        return state, []
    actions: list[Action] = []
    if job.state is JobState.QUEUED:
        # Progress proves the job runs even if the target's own report has not come yet.
        state, actions = _started(state, job.job_id, event.at)
        job = state.active[job.job_id]
    job = dataclasses.replace(job, simulated_ms=event.simulated_ms)
    actions.append(PublishProgress(job.job_id, event.simulated_ms, job.duration_ms, event.wall_s))
    return _with_job(state, job), actions


def _final(job: Job, outcome: JobState, reason: str, at: float) -> Job:
    simulated_ms = job.duration_ms if outcome is JobState.SUCCEEDED else job.simulated_ms
    return dataclasses.replace(
        job,
        state=outcome,
        reason="" if outcome is JobState.SUCCEEDED else reason,
        end_time=at,
        simulated_ms=simulated_ms,
        cancel_requested=False,
    )


def _release(state: ServiceState, job_id: str) -> ServiceState:
    """Forget an ended job: out of the active jobs, the queue and the slots."""
    active = dict(state.active)
    del active[job_id]
    return dataclasses.replace(
        state,
        active=active,
        local_queue=tuple(j for j in state.local_queue if j != job_id),
        local_slots=state.local_slots - {job_id},
    )


def _ended(
    state: ServiceState, job_id: str, outcome: JobState, reason: str, at: float
) -> Transition:
    job = state.active.get(job_id)
    if job is None:
        return state, []
    if job.cancel_requested and outcome is not JobState.SUCCEEDED:
        outcome, reason = JobState.CANCELLED, job.reason
    ended = _final(job, outcome, reason, at)
    state, launches = _fill_local_slots(_release(state, job_id))
    detail = {"state": ended.state.value, "reason": ended.reason}
    return state, [Persist(ended, "finished", detail), PublishJob(ended), *launches]


def _cancel(state: ServiceState, job_id: str, by: str, at: float) -> Transition:
    job = state.active.get(job_id)
    if job is None or job.cancel_requested:
        return state, []
    job = dataclasses.replace(job, cancel_requested=True, reason=f"cancelled by {by}")
    state = _with_job(state, job)
    if job_id in state.local_queue:
        # Never launched: nothing to stop, so it ends here.
        return _ended(state, job_id, JobState.CANCELLED, job.reason, at)
    actions: list[Action] = [Persist(job, "cancel_requested", {"by": by}), PublishJob(job)]
    if job.launched:
        # A job still being launched is killed when its Launched event arrives.
        actions.append(Kill(job))
    return state, actions


def _next_run(job: Job, resume_from_ms: float | None, *, retry: bool) -> Job:
    """``job`` as its next run starts: no external id yet, progress back to where it resumes."""
    return dataclasses.replace(
        job,
        attempt=job.attempt + 1 if retry else job.attempt,
        segment=job.segment + 1,
        external_id="",
        resume_from_ms=resume_from_ms,
        simulated_ms=resume_from_ms or 0.0,
    )


def retry_message(attempt: int, of: int, resume_from_ms: float | None, reason: str) -> str:
    """The service's log line when a failed run is started again (also rebuilt from a
    ``retrying`` event by :mod:`services.logs`)."""
    how = (
        f"resuming from {resume_from_ms:g} ms"
        if resume_from_ms is not None
        else "starting again from the beginning (no checkpoint)"
    )
    first_line = reason.splitlines()[0] if reason else "the run failed"
    return f"attempt {attempt} of {of}: {how} after: {first_line}"


def continue_message(segment: int, resume_from_ms: float) -> str:
    """The service's log line when a run that stopped at its checkpoint is continued (also
    rebuilt from a ``continuing`` event by :mod:`services.logs`)."""
    return (
        f"run {segment}: resuming from {resume_from_ms:g} ms "
        "(the previous run stopped at its checkpoint)"
    )


def _failed_run(
    state: ServiceState, job_id: str, reason: str, checkpoint_ms: float | None, at: float
) -> Transition:
    """A run failed in a way worth trying again: retry while attempts are left."""
    job = state.active.get(job_id)
    if job is None:
        return state, []
    if job.cancel_requested or job.attempt >= job.max_attempts:
        if job.max_retries and not job.cancel_requested:
            tried = f"attempt {job.attempt} of {job.max_attempts}"
            reason = f"{tried} failed (no retries left): {reason}"
        return _ended(state, job_id, JobState.FAILED, reason, at)
    new = _next_run(job, checkpoint_ms, retry=True)
    message = retry_message(new.attempt, new.max_attempts, checkpoint_ms, reason)
    detail = {
        "attempt": new.attempt,
        "of": new.max_attempts,
        "segment": new.segment,
        "resume_from_ms": checkpoint_ms,
        "reason": reason,
    }
    actions: list[Action] = [
        Persist(new, "retrying", detail),
        PublishJob(new),
        PublishLog(job_id, message),
        Launch(new),
    ]
    return _with_job(state, new), actions


def _checkpointed(
    state: ServiceState, job_id: str, checkpoint_ms: float | None, at: float
) -> Transition:
    """A run stopped at a checkpoint as asked: continue from it (the next link of a chain)."""
    job = state.active.get(job_id)
    if job is None:
        return state, []
    if job.cancel_requested:
        return _ended(state, job_id, JobState.CANCELLED, job.reason, at)
    if checkpoint_ms is None:
        reason = "the run stopped at a checkpoint, but the recording holds none to resume from"
        return _failed_run(state, job_id, reason, None, at)
    if job.resume_from_ms is not None and checkpoint_ms <= job.resume_from_ms:
        reason = (
            f"the run stopped at its checkpoint at {checkpoint_ms:g} ms without progress since "
            f"it resumed from {job.resume_from_ms:g} ms (a time limit too short for one "
            "checkpoint interval?)"
        )
        return _ended(state, job_id, JobState.FAILED, reason, at)
    new = _next_run(job, checkpoint_ms, retry=False)
    message = continue_message(new.segment, checkpoint_ms)
    detail = {"segment": new.segment, "resume_from_ms": checkpoint_ms}
    actions: list[Action] = [
        Persist(new, "continuing", detail),
        PublishJob(new),
        PublishLog(job_id, message),
        Launch(new),
    ]
    return _with_job(state, new), actions
