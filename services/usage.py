"""Resource use of jobs: what their runs recorded, and how much disk their folders take.

Every run of the simulator that closes its recording appends an entry to the store's
``provenance.runs`` (see docs/recording.md): a random id, the CPU time of its ranks summed,
the largest peak resident set size of one rank and the ranks' peaks summed. The service reads
that list when a run ends (:func:`read_recorded_runs`, straight from the root ``zarr.json``: no
zarr import) and counts each entry once per job by its id, so a resumed run (whose store keeps
the earlier entries) and a run started again from the beginning (whose store starts a new
list) are both summed correctly. A run killed before it closed its store leaves no entry: its
use is not counted.

Folder sizes are what ``du`` reports (allocated blocks, hard links once); measuring a large
recording walks every chunk file, so :class:`FolderSizes` keeps each job's size for a while.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FolderSizes", "RunUse", "folder_bytes", "read_recorded_runs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunUse:
    """What one run of a job used, as its recording says."""

    run_id: str
    """The run's id in the recording (random, unique)."""
    cpu_s: float
    """User + system CPU time of its ranks, summed, in s."""
    max_rank_rss_bytes: int
    """The largest peak resident set size of one of its ranks, in bytes."""
    sum_rank_rss_bytes: int
    """Its ranks' peak resident set sizes summed, in bytes."""


def read_recorded_runs(store: Path) -> tuple[RunUse, ...]:
    """The runs listed in the recording at ``store`` (none: no readable store, or an older
    one without the list); malformed entries are skipped."""
    try:
        meta = json.loads((store / "zarr.json").read_text(encoding="utf-8"))
        runs = meta["attributes"]["brainsim"]["provenance"].get("runs") or []
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ()
    found = []
    for entry in runs if isinstance(runs, list) else []:
        try:
            found.append(
                RunUse(
                    str(entry["id"]),
                    float(entry["cpu_s"]),
                    int(entry["max_rank_rss_bytes"]),
                    int(entry["sum_rank_rss_bytes"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(found)


def folder_bytes(path: Path) -> int:
    """Disk space taken by everything under ``path`` (allocated blocks, each inode once,
    symbolic links themselves); 0 if it does not exist. Files that vanish meanwhile count 0."""
    seen: set[tuple[int, int]] = set()
    total = 0
    pending = [path]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
    try:
        total += path.stat().st_blocks * 512
    except FileNotFoundError:
        return 0
    return total


class FolderSizes:
    """Sizes of job folders, each measured at most once per ``max_age_s`` (on a thread).

    :meth:`size` answers from the cache: a value younger than ``max_age_s`` as it is; an
    older one as it is too, while a new measurement runs in the background (so a caller never
    waits on a walk of a large recording it has seen before); none yet: measures and waits.
    """

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age_s = max_age_s
        self._clock = clock
        self._known: dict[str, tuple[float, int]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    async def size(self, job_id: str, path: Path) -> int:
        """The size of ``path`` (the folder of ``job_id``), in bytes; at most ``max_age_s``
        old, or a little older while it is measured again."""
        known = self._known.get(job_id)
        if known is None:
            await self._measure(job_id, path)
            return self._known[job_id][1]
        measured_at, size = known
        if self._clock() - measured_at > self._max_age_s and job_id not in self._refreshing:
            task = asyncio.create_task(self._measure(job_id, path), name=f"du-{job_id}")
            self._refreshing[job_id] = task
            task.add_done_callback(lambda _: self._refreshing.pop(job_id, None))
        return size

    async def _measure(self, job_id: str, path: Path) -> None:
        try:
            size = await asyncio.to_thread(folder_bytes, path)
        except OSError:
            log.exception("job %s: could not measure its folder", job_id)
            size = self._known.get(job_id, (0.0, 0))[1]
        self._known[job_id] = (self._clock(), size)

    async def close(self) -> None:
        """Stop the measurements under way."""
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def forget(self, job_ids: Iterable[str]) -> None:
        """Drop what is known of these jobs (ended or deleted)."""
        for job_id in job_ids:
            self._known.pop(job_id, None)
