"""Removing the folder of a deleted job, in a way a stop half-way through cannot spoil.

A deletion (``DeleteJob``, the retention policy; :meth:`services.manager.JobManager.delete`)
goes in three steps, each durable before the next:

1. one transaction removes the job's row and events and lists the job in ``deletions``
   (:meth:`services.store.JobStore.begin_deletion`): from then on no call sees the job;
2. :func:`remove_job_folder` moves ``jobs/<id>/`` to ``deleting/<id>/`` by one ``rename``
   (so ``jobs/`` never holds a half-removed folder) and removes it there;
3. the ``deletions`` entry goes (:meth:`services.store.JobStore.end_deletion`).

A server that stops between 1 and 3 finds the entry when it starts and does 2 and 3 again
(:meth:`services.manager.JobManager.start`); both are harmless to repeat.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from services.jobdir import DataRoot, remove_tree
from services.usage import folder_bytes

__all__ = ["DELETING", "remove_job_folder"]

DELETING = "deleting"
"""The folder under the data root where job folders are removed."""


def remove_job_folder(data_root: DataRoot, job_id: str) -> int:
    """Remove the folder of ``job_id`` (also what an interrupted removal left); returns the
    disk space freed, in bytes (0 if there was nothing)."""
    source = data_root.job(job_id).path
    trash = data_root.path / DELETING
    trash.mkdir(mode=0o700, exist_ok=True)
    target: Path = trash / job_id
    freed = 0
    if target.exists():  # an earlier removal of this job was interrupted
        freed += folder_bytes(target)
        remove_tree(target)
    with contextlib.suppress(FileNotFoundError):
        source.rename(target)
    freed += folder_bytes(target)
    remove_tree(target)
    return freed
