"""The async shell around the job state machine: it feeds events in and carries actions out.

One task (the *actor*) owns the :class:`~services.machine.ServiceState`. Events come from the
servicer (submit, cancel) and from launchers (launched, progress, exited) through one queue. The
actor takes every event waiting, applies :func:`~services.machine.handle` to each, then

1. makes the recording of every job that ends failed or cancelled say so, with the job's reason
   (:func:`brainsim.recording.settle_store`: a run that was killed never closed its store, and
   one that was cancelled does not know by whom), so that no client sees the job ended and its
   store still ``running``;
2. writes all :class:`~services.machine.Persist` actions of the batch in one transaction (group
   commit: a burst of submissions costs one disk flush, and nothing is announced, launched or
   acknowledged before it is durable), then publishes state, progress and log lines to watchers
   in the order they happened;
3. starts launches, kills and adoptions as background tasks (they report back as events);
4. tells the callers that their events are done.

Log lines from launchers pass through the same queue (so a watcher never sees a launch's log line
before the state change that preceded it); the last few hundred of each active job are kept in
memory for watchers that subscribe later.

On start it finishes the deletions a stop interrupted (:mod:`services.deletion`), reads the
active jobs from the store, asks each launcher for the external id of any job whose launch was
not recorded, and feeds one :class:`~services.machine.Recovered` event.

Resource use: before the machine sees a run's end (``Exited``, ``Checkpointed``), the actor
reads the runs the recording lists (:func:`services.usage.read_recorded_runs`) into the event;
when a job ends, the size of its folder is measured before it is persisted (``store_bytes``).
While a job runs, :meth:`JobManager.get` and :meth:`JobManager.list_jobs` give its folder's
size from a cache that measures each folder at most every ``STORE_BYTES_MAX_AGE_S``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from services.deletion import remove_job_folder
from services.jobdir import DataRoot, write_files
from services.jobs import Job, JobState, LogStream, Target
from services.launchers.base import Launcher
from services.machine import (
    Action,
    Adopt,
    CancelRequested,
    Checkpointed,
    Event,
    Exited,
    Kill,
    Launch,
    LaunchFailed,
    Persist,
    PublishJob,
    PublishLog,
    PublishProgress,
    Recovered,
    ServiceState,
    Submitted,
    handle,
)
from services.store import EventRecord, JobNotEndedError, JobStore, PageKey
from services.usage import FolderSizes, folder_bytes, read_recorded_runs

__all__ = [
    "STORE_BYTES_MAX_AGE_S",
    "JobManager",
    "LogEntry",
    "ProgressUpdate",
    "Subscription",
    "Update",
]

log = logging.getLogger(__name__)

_MAX_BATCH = 512
_LOG_BACKLOG = 200
"""Recent log lines kept per active job, replayed to a watcher that subscribes late."""
STORE_BYTES_MAX_AGE_S = 30.0
"""How old the folder size of a running job shown by GetJob and ListJobs may be, in s."""


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """Progress of a running job, as watchers receive it."""

    simulated_ms: float
    duration_ms: float
    wall_s: float


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log line of a job, as watchers receive it."""

    time: float
    stream: LogStream
    text: str


Update = Job | ProgressUpdate | LogEntry


@dataclass(frozen=True, slots=True)
class _LogLine:
    """A log line on its way through the actor's queue."""

    job_id: str
    entry: LogEntry


_SETTLED_STATES = frozenset({JobState.FAILED, JobState.CANCELLED})


def _settle_recording(store: Path, job: Job) -> None:
    """The store at ``store`` says what ``job`` (failed or cancelled) says (no store: nothing)."""
    if not (store / "zarr.json").is_file():
        return
    from brainsim.recording import settle_store  # zarr: only when a recording exists

    state: Literal["failed", "cancelled"] = (
        "failed" if job.state is JobState.FAILED else "cancelled"
    )
    end = job.end_time if job.end_time is not None else time.time()
    end_iso = datetime.fromtimestamp(end, UTC).isoformat(timespec="milliseconds")
    settle_store(store, state, job.reason or f"the job was {state}", end_time=end_iso)


class Subscription:
    """A watcher's queue of updates; bounded: when full, the oldest non-state update is dropped
    (a slow watcher loses log lines and progress, never a change of state)."""

    def __init__(self, limit: int = 1000) -> None:
        self._items: collections.deque[Update] = collections.deque()
        self._ready = asyncio.Event()
        self._limit = limit
        self.dropped = 0
        """Updates dropped because the watcher read too slowly."""

    def push(self, item: Update) -> None:
        """Add an update (never blocks)."""
        if len(self._items) >= self._limit:
            for index, old in enumerate(self._items):
                if not isinstance(old, Job):
                    del self._items[index]
                    self.dropped += 1
                    break
        self._items.append(item)
        self._ready.set()

    async def get(self) -> Update:
        """The next update (waits for one)."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class JobManager:
    """Runs the job lifecycle (see the module docstring); also the launchers' host."""

    def __init__(
        self,
        store: JobStore,
        data_root: DataRoot,
        max_local_jobs: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._data_root = data_root
        self._clock = clock
        self._state = ServiceState(max_local_jobs=max_local_jobs)
        self._launchers: dict[Target, Launcher] = {}
        self._inbox: asyncio.Queue[tuple[Event | _LogLine, asyncio.Future[None] | None]] = (
            asyncio.Queue()
        )
        self._watchers: dict[str, set[Subscription]] = {}
        self._recent_logs: dict[str, collections.deque[LogEntry]] = {}
        self._visible: dict[str, Job] = {}
        self._reserved: collections.Counter[str] = collections.Counter()
        """Places held by submissions still on their way to the state machine, per owner."""
        """Active jobs as clients see them: as persisted, plus progress. The machine's state may
        be ahead while a batch is being written; nothing is shown before it is durable."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._actor: asyncio.Task[None] | None = None
        self._sizes = FolderSizes(STORE_BYTES_MAX_AGE_S)
        self._deletions: set[asyncio.Future[int]] = set()
        """Deletions under way (:meth:`close` lets them finish)."""
        self.store_failed = asyncio.Event()
        """Set once the store failed a write; the server then reports NOT_SERVING."""

    # --- lifecycle -------------------------------------------------------------------------------

    def add_launcher(self, launcher: Launcher) -> None:
        """Serve ``launcher.target`` with ``launcher`` (before :meth:`start`)."""
        self._launchers[launcher.target] = launcher

    @property
    def launchers(self) -> Mapping[Target, Launcher]:
        """The targets this server can run."""
        return self._launchers

    def unavailable_reason(self, target: Target) -> str | None:
        """Why this server cannot run jobs on ``target`` now (``None``: it can)."""
        launcher = self._launchers.get(target)
        if launcher is None:
            return f"this server has no {target.value} target configured"
        return launcher.unavailable_reason()

    async def start(self) -> None:
        """Finish interrupted deletions, recover the jobs of an earlier run, then begin
        processing events."""
        for job_id in await self._store.pending_deletions():
            # The row went in the deletion's first step; one there now would be a new job
            # that was given the same id since, whose folder stays.
            if await self._store.get(job_id) is None:
                await asyncio.to_thread(remove_job_folder, self._data_root, job_id)
            await self._store.end_deletion(job_id)
            log.info("job %s: finished removing its folder (a stop had interrupted it)", job_id)
        recovered = [await self._locate(job) for job in await self._store.active()]
        self._actor = asyncio.create_task(self._run(), name="job-actor")
        await self._dispatch(Recovered(tuple(recovered), self.now()))
        if recovered:
            log.info("recovered %d active job(s)", len(recovered))

    async def _locate(self, job: Job) -> Job:
        """``job`` with its external id filled in if its launch happened but was not recorded."""
        launcher = self._launchers.get(job.target)
        if job.launched or launcher is None:
            return job
        try:
            external_id = await launcher.locate(job)
        except Exception:
            log.exception("job %s: looking for it after the restart failed", job.job_id)
            return job
        return dataclasses.replace(job, external_id=external_id) if external_id else job

    async def close(self) -> None:
        """Finish the deletions under way, then stop following jobs and processing events;
        running jobs keep running."""
        await asyncio.gather(*self._deletions, return_exceptions=True)
        for launcher in self._launchers.values():
            await launcher.close()
        tasks = [*self._tasks, *([self._actor] if self._actor is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._sizes.close()

    # --- the launchers' host -----------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def emit(self, event: Event) -> None:
        self._inbox.put_nowait((event, None))

    def log(self, job_id: str, stream: LogStream, text: str) -> None:
        """Publish a log line once the events queued before it are (never blocks)."""
        self._inbox.put_nowait((_LogLine(job_id, LogEntry(self.now(), stream, text)), None))

    def _publish_log(self, line: _LogLine) -> None:
        if line.job_id in self._state.active:
            backlog = self._recent_logs.setdefault(
                line.job_id, collections.deque(maxlen=_LOG_BACKLOG)
            )
            backlog.append(line.entry)
        self._publish(line.job_id, line.entry)

    # --- the servicer's interface ------------------------------------------------------------

    def new_job_id(self) -> str:
        """A fresh job id whose folder does not exist yet."""
        while True:
            job_id = secrets.token_hex(6)
            if job_id not in self._state.active and not self._data_root.job(job_id).path.exists():
                return job_id

    def reserve(self, owner: str, limit: int) -> bool:
        """Hold a place for one more job of ``owner`` unless they have ``limit`` active (queued,
        running or being submitted) already. :meth:`submit` uses the place up."""
        if self.active_count(owner) >= limit:
            return False
        self._reserved[owner] += 1
        return True

    def _release(self, owner: str) -> None:
        self._reserved[owner] -= 1
        if self._reserved[owner] <= 0:
            del self._reserved[owner]

    async def submit(self, job: Job, circuit_text: str, staged: Path | None = None) -> Job:
        """Store the circuit in the job's folder and queue the job; returns it once durable.

        ``staged``: a folder from :meth:`DataRoot.new_submission` holding the circuit's
        attachments; the circuit is written into it and it becomes the job's folder (one
        ``rename``: the folder appears complete). ``None``: a new folder with the circuit only.
        The caller holds a place from :meth:`reserve` for ``job.owner``; the place becomes the
        job when the state machine takes it (in the same step, so a job never counts twice).
        """
        job_dir = self._data_root.job(job.job_id)

        def write_circuit() -> None:
            if staged is None:
                job_dir.path.mkdir(mode=0o750)
                job_dir.circuit.write_text(circuit_text, encoding="utf-8")
                return
            write_files(staged, [(job_dir.circuit.name, circuit_text.encode("utf-8"))])
            staged.chmod(0o750)
            # rename() replaces an empty folder silently; new_job_id() made sure there is none.
            staged.rename(job_dir.path)

        try:
            await asyncio.to_thread(write_circuit)
        except BaseException:
            self._release(job.owner)
            raise
        await self._dispatch(Submitted(job))
        return self._visible.get(job.job_id, job)

    async def cancel(self, job_id: str, by: str) -> None:
        """Ask for cancellation; returns once the request is durable."""
        await self._dispatch(CancelRequested(job_id, by, self.now()))

    def active_job(self, job_id: str) -> Job | None:
        """The job if it is queued or running, as last persisted, with its current progress."""
        return self._visible.get(job_id)

    async def current(self, job_id: str) -> Job | None:
        """The job as it is now, active or not, without measuring its folder (what a stream
        that looks at it often needs); ``None`` if unknown."""
        return self._visible.get(job_id) or await self._store.get(job_id)

    async def get(self, job_id: str) -> Job | None:
        """The job, active or not; ``None`` if unknown."""
        active = self._visible.get(job_id)
        if active is None:
            return await self._store.get(job_id)
        return await self._with_store_bytes(active)

    async def events(self, job_id: str) -> list[EventRecord]:
        """The job's event log, in order (GetJobLogs shows it as the service's lines)."""
        return await self._store.events(job_id)

    async def list_jobs(
        self, owner: str, states: frozenset[JobState], limit: int, after: PageKey | None
    ) -> list[Job]:
        """``owner``'s jobs, newest first (active ones with their current progress)."""
        jobs = await self._store.list_jobs(owner, states, limit, after)
        shown = []
        for job in jobs:
            active = self._visible.get(job.job_id)
            shown.append(job if active is None else await self._with_store_bytes(active))
        return shown

    async def _with_store_bytes(self, job: Job) -> Job:
        """An active job with the size of its folder (once it has started), from the cache."""
        if job.start_time is None:
            return job
        size = await self._sizes.size(job.job_id, self._data_root.job(job.job_id).path)
        return dataclasses.replace(job, store_bytes=size)

    async def delete(self, job_id: str, owner: str | None, reason: str) -> int:
        """Delete an ended job: its record, then its folder (see :mod:`services.deletion`);
        returns the disk space freed, in bytes. :class:`~services.store.UnknownJobError` for an
        unknown job (or not ``owner``'s, when given), :class:`~services.store.JobNotEndedError` for
        one that is queued or running (a retry or the next link of a chain pending included).
        Once begun, a deletion finishes even if the caller is cancelled."""
        if job_id in self._state.active or job_id in self._visible:
            raise JobNotEndedError(job_id)

        async def deletion() -> int:
            # The store refuses a job it does not hold as ended: one that ends in the batch
            # being written now is still RUNNING there.
            await self._store.begin_deletion(job_id, owner, reason, self.now())
            freed = await asyncio.to_thread(remove_job_folder, self._data_root, job_id)
            await self._store.end_deletion(job_id)
            self._sizes.forget([job_id])
            return freed

        task = asyncio.ensure_future(deletion())
        self._deletions.add(task)
        task.add_done_callback(self._deletions.discard)
        return await asyncio.shield(task)

    def active_count(self, owner: str) -> int:
        """How many jobs ``owner`` has queued, running or being submitted."""
        active = sum(1 for job in self._state.active.values() if job.owner == owner)
        return active + self._reserved[owner]

    def subscribe(self, job_id: str) -> Subscription:
        """Start receiving the job's updates (call :meth:`unsubscribe` when done); the first
        ones are the job's recent log lines, if it is active."""
        subscription = Subscription()
        for entry in self._recent_logs.get(job_id, ()):
            subscription.push(entry)
        self._watchers.setdefault(job_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, job_id: str, subscription: Subscription) -> None:
        """Stop receiving updates."""
        watchers = self._watchers.get(job_id)
        if watchers is not None:
            watchers.discard(subscription)
            if not watchers:
                del self._watchers[job_id]

    # --- the actor ---------------------------------------------------------------------------

    async def _dispatch(self, event: Event) -> None:
        """Queue ``event`` and wait until its actions are persisted and started."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait((event, done))
        await done

    async def _run(self) -> None:
        while True:
            batch = [await self._inbox.get()]
            while not self._inbox.empty() and len(batch) < _MAX_BATCH:
                batch.append(self._inbox.get_nowait())
            batch = await self._with_recorded_runs(batch)
            actions: list[Action | _LogLine] = []
            for event, _ in batch:
                if isinstance(event, _LogLine):
                    actions.append(event)
                    continue
                if isinstance(event, Submitted):
                    self._release(event.job.owner)  # the reserved place becomes the job
                try:
                    self._state, new_actions = handle(self._state, event)
                except Exception:  # a bug in one transition must not stop all jobs
                    log.exception("state machine failed on %r", event)
                    continue
                actions += new_actions
            persists = [a for a in actions if isinstance(a, Persist)]
            await self._settle_recordings([p.job for p in persists])
            actions = await self._with_final_sizes(actions)
            persists = [a for a in actions if isinstance(a, Persist)]
            error = await self._persist(persists)
            if error is None:
                for action in actions:
                    if isinstance(action, _LogLine):
                        self._publish_log(action)
                    else:
                        self._execute(action)
            for _, done in batch:
                if done is not None and not done.done():
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)

    async def _with_recorded_runs(
        self, batch: list[tuple[Event | _LogLine, asyncio.Future[None] | None]]
    ) -> list[tuple[Event | _LogLine, asyncio.Future[None] | None]]:
        """The batch with each run's end carrying the runs its recording lists now."""
        ends = {
            index: event
            for index, (event, _) in enumerate(batch)
            if isinstance(event, Exited | Checkpointed) and event.job_id in self._state.active
        }
        if not ends:
            return batch
        found = await asyncio.gather(
            *(
                asyncio.to_thread(read_recorded_runs, self._data_root.job(e.job_id).recording)
                for e in ends.values()
            ),
            return_exceptions=True,
        )
        batch = list(batch)
        for (index, event), runs in zip(ends.items(), found, strict=True):
            if isinstance(runs, BaseException):
                log.error("job %s: reading its recording's runs failed: %r", event.job_id, runs)
            else:
                batch[index] = (dataclasses.replace(event, runs=runs), batch[index][1])
        return batch

    async def _with_final_sizes(self, actions: list[Action | _LogLine]) -> list[Action | _LogLine]:
        """``actions`` with every job that ends in them carrying the size of its folder."""
        ended = {a.job.job_id for a in actions if isinstance(a, Persist) and a.job.state.terminal}
        if not ended:
            return actions
        order = sorted(ended)
        found = await asyncio.gather(
            *(asyncio.to_thread(folder_bytes, self._data_root.job(j).path) for j in order),
            return_exceptions=True,
        )
        sizes = {j: size for j, size in zip(order, found, strict=True) if isinstance(size, int)}
        self._sizes.forget(ended)

        def measured(action: Action | _LogLine) -> Action | _LogLine:
            if (
                isinstance(action, Persist | PublishJob)
                and action.job.job_id in sizes
                and action.job.state.terminal
            ):
                job = dataclasses.replace(action.job, store_bytes=sizes[action.job.job_id])
                return dataclasses.replace(action, job=job)
            return action

        return [measured(action) for action in actions]

    async def _settle_recordings(self, jobs: list[Job]) -> None:
        """Before a failed or cancelled job is durable and announced, its recording says so."""
        ended = [job for job in jobs if job.state in _SETTLED_STATES]
        if not ended:
            return
        results = await asyncio.gather(
            *(
                asyncio.to_thread(_settle_recording, self._data_root.job(job.job_id).recording, job)
                for job in ended
            ),
            return_exceptions=True,
        )
        for job, result in zip(ended, results, strict=True):
            if isinstance(result, BaseException):
                log.error("job %s: could not settle its recording: %r", job.job_id, result)

    async def _persist(self, persists: list[Persist]) -> Exception | None:
        if not persists:
            return None
        at = self.now()
        try:
            await self._store.write((p.job, p.kind, p.detail, at) for p in persists)
        except Exception as exc:
            log.critical(
                "the job store failed a write; the service stops accepting work", exc_info=True
            )
            self.store_failed.set()
            return exc
        return None

    def _execute(self, action: Action) -> None:
        match action:
            case PublishJob(job=job):
                self._publish(job.job_id, job)
                if job.state.terminal:
                    self._recent_logs.pop(job.job_id, None)
            case PublishLog(job_id=job_id, text=text):
                self._publish_log(_LogLine(job_id, LogEntry(self.now(), LogStream.SERVICE, text)))
            case PublishProgress(job_id=job_id):
                shown = self._visible.get(job_id)
                if shown is not None:
                    self._visible[job_id] = dataclasses.replace(
                        shown, simulated_ms=action.simulated_ms
                    )
                self._publish(
                    job_id,
                    ProgressUpdate(action.simulated_ms, action.duration_ms, action.wall_s),
                )
            case Launch(job=job):
                self._background(job, "launch", lambda launcher: launcher.launch(job))
            case Kill(job=job):
                self._background(job, "kill", lambda launcher: launcher.kill(job))
            case Adopt(job=job):
                self._background(job, "adopt", lambda launcher: launcher.adopt(job))
            case Persist(job=job):
                # Written with the whole batch; from now on clients may see it.
                if job.state.terminal:
                    self._visible.pop(job.job_id, None)
                else:
                    self._visible[job.job_id] = job

    def _background(
        self,
        job: Job,
        what: str,
        work: Callable[[Launcher], Coroutine[Any, Any, None]],
    ) -> None:
        launcher = self._launchers.get(job.target)
        if launcher is None:
            reason = f"this server has no {job.target.value} target"
            self.emit(LaunchFailed(job.job_id, reason, self.now()))
            return

        async def guarded() -> None:
            try:
                await work(launcher)
            except Exception as exc:
                log.exception("job %s: %s failed", job.job_id, what)
                if what == "kill":
                    self.log(job.job_id, LogStream.SERVICE, f"cancelling failed: {exc!r}")
                elif what == "launch":
                    self.emit(LaunchFailed(job.job_id, repr(exc), self.now()))
                else:
                    reason = f"could not follow the job after a restart: {exc!r}"
                    self.emit(Exited(job.job_id, JobState.FAILED, reason, self.now()))

        task = asyncio.create_task(guarded(), name=f"{what}-{job.job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _publish(self, job_id: str, update: Update) -> None:
        for subscription in self._watchers.get(job_id, ()):
            subscription.push(update)
