"""The retention policy: ended jobs the server deletes by itself (too old, or over a user's
total size).

:func:`select_expired` is the pure part: given the ended jobs (with the sizes of their
folders), the policy and the time, which to delete and why. A job that ended more than
``max_age_days`` ago goes; then, per user, while the folders of that user's remaining ended
jobs take more than ``max_bytes_per_user`` together, the one that ended first goes. Jobs that
have not ended are never considered (nor counted in a user's total).

:class:`RetentionSweeper` applies it: once when the server starts and every ``sweep_every_s``,
reading the ended jobs from the store (on its thread), measuring the folders of jobs that ended
before their size was recorded (on a worker thread, and recording it), and deleting each
selected job as ``DeleteJob`` does (:meth:`services.manager.JobManager.delete`), which refuses
a job that is active again or already gone. Each deletion is logged with its reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from services.config import RetentionConfig
from services.jobdir import DataRoot
from services.jobs import Job
from services.manager import JobManager
from services.store import JobNotEndedError, JobStore, UnknownJobError
from services.usage import folder_bytes

__all__ = ["Expired", "RetentionSweeper", "select_expired"]

log = logging.getLogger(__name__)

_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Expired:
    """A job the policy deletes, and why."""

    job: Job
    reason: str


def select_expired(jobs: Sequence[Job], policy: RetentionConfig, now: float) -> list[Expired]:
    """The jobs of ``jobs`` that ``policy`` deletes at ``now``, each once, in the order given
    (ended jobs only; each needs ``store_bytes`` for the size limit: ``None`` counts 0)."""
    ended = sorted(
        (job for job in jobs if job.state.terminal and job.end_time is not None),
        key=lambda job: (job.end_time or 0.0, job.job_id),
    )
    expired: list[Expired] = []
    kept: list[Job] = []
    for job in ended:
        assert job.end_time is not None
        age_days = (now - job.end_time) / _DAY_S
        if policy.max_age_days is not None and age_days > policy.max_age_days:
            reason = (
                f"ended {age_days:.2f} days ago (retention.max_age_days: {policy.max_age_days:g})"
            )
            expired.append(Expired(job, reason))
        else:
            kept.append(job)
    limit = policy.max_bytes_per_user
    if limit is None:
        return expired
    per_user: dict[str, list[Job]] = defaultdict(list)
    for job in kept:
        per_user[job.owner].append(job)
    for owner, owned in per_user.items():
        total = sum(job.store_bytes or 0 for job in owned)
        for job in owned:  # the one that ended first goes first
            if total <= limit:
                break
            reason = (
                f"{owner}'s ended jobs took {total} bytes, more than "
                f"retention.max_bytes_per_user ({limit}); this one ended first"
            )
            expired.append(Expired(job, reason))
            total -= job.store_bytes or 0
    return expired


class RetentionSweeper:
    """Applies a retention policy now and then (see the module docstring)."""

    def __init__(
        self, policy: RetentionConfig, store: JobStore, manager: JobManager, data_root: DataRoot
    ) -> None:
        self._policy = policy
        self._store = store
        self._manager = manager
        self._data_root = data_root

    async def run(self) -> None:
        """Sweep now and every ``sweep_every_s`` until cancelled (nothing if the policy keeps
        everything). A sweep that fails is logged; the next one comes all the same."""
        if not self._policy.active:
            return
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("retention: the sweep failed")
            await asyncio.sleep(self._policy.sweep_every_s)

    async def sweep(self) -> list[Expired]:
        """Delete what the policy selects now; returns what was deleted."""
        jobs = await self._with_sizes(await self._store.ended())
        deleted = []
        for chosen in select_expired(jobs, self._policy, self._manager.now()):
            job = chosen.job
            try:
                freed = await self._manager.delete(
                    job.job_id, None, f"retention policy: {chosen.reason}"
                )
            except (UnknownJobError, JobNotEndedError):
                continue  # deleted by its owner meanwhile
            log.info(
                "retention: deleted job %s of %s (%d bytes freed): %s",
                job.job_id,
                job.owner,
                freed,
                chosen.reason,
            )
            deleted.append(chosen)
        return deleted

    async def _with_sizes(self, jobs: list[Job]) -> list[Job]:
        """``jobs`` with the size of every folder, measuring (and recording) those that ended
        before sizes were recorded; only when the policy limits sizes."""
        if self._policy.max_bytes_per_user is None:
            return jobs
        unknown = [job for job in jobs if job.store_bytes is None]
        if not unknown:
            return jobs
        sizes = {
            job.job_id: await asyncio.to_thread(folder_bytes, self._data_root.job(job.job_id).path)
            for job in unknown
        }
        await self._store.set_store_bytes(sizes)
        return [
            dataclasses.replace(job, store_bytes=sizes[job.job_id])
            if job.store_bytes is None
            else job
            for job in jobs
        ]
