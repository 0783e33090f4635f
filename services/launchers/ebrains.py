"""The EBRAINS targets: a circuit's PyNN script run on SpiNNaker or BrainScaleS-2 through the
EBRAINS neuromorphic job queue (REST API v3, :mod:`services.ebrains`).

Launch: the job's circuit (with the job's duration and seed) is compiled by
:class:`~brainsim.backends.pynn.PynnBackend` for the platform into ``artifacts/pynn/``
(``run.py``, ``data/``); that folder, zipped with ``run.py`` at the top, is uploaded to the
collab's Bucket through the data-proxy, and the job is submitted with the archive's address as
its ``code``, the command ``run.py <simulator> --out results``, the platform (``SpiNNaker``,
``BrainScaleS-2``) and the tag ``brainsim-<job_id>-<segment>``. The queue's job id becomes the
job's external id and is written to ``launch.json`` first, so that a restarted server follows
the job on (:meth:`EbrainsLauncher.adopt`) or finds it again by its tag
(:meth:`EbrainsLauncher.locate`).

Following: the queue is asked about each job every ``poll_interval_s``; each change of its
status is a service log line, ``running`` is :class:`~services.machine.Started`. ``finished``:
every output file is downloaded into ``artifacts/results/`` (the platform's
``<collab>/job_<id>/results/`` prefix left off), the job's log is appended to ``stdout.log``
(and sent to watchers), and the spikes the script wrote (``<population>.spikes.npz``) become
the job's recording; then SUCCEEDED. ``error``, or ``removed`` by someone else: FAILED with the
end of the log. :meth:`EbrainsLauncher.kill` deletes the job in the queue (its status becomes
``removed``): CANCELLED. A refused token fails the job with that reason (the queue's job, if
any, is left as it is). The credentials file of the job is removed when the job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from brainsim.backends.pynn import PynnBackend
from brainsim.circuit import load_circuit
from brainsim.circuit.overrides import with_overrides
from brainsim.circuit.spec import Circuit
from brainsim.errors import BrainsimError
from services.config import EbrainsConfig
from services.ebrains import (
    CredentialsError,
    EbrainsError,
    QueueClient,
    RemoteJob,
    TokenRefusedError,
    read_credentials,
)
from services.jobdir import DataRoot, JobDir, remove_tree
from services.jobs import Job, JobState, LogStream, Target
from services.launchers.base import LauncherHost
from services.machine import Exited, Launched, LaunchFailed, Started

__all__ = ["PLATFORMS", "EbrainsLauncher", "job_tag"]

log = logging.getLogger(__name__)

PLATFORMS = {
    Target.EBRAINS_SPINNAKER: ("SpiNNaker", "spiNNaker"),
    Target.EBRAINS_BRAINSCALES2: ("BrainScaleS-2", "brainscales2"),
}
"""Target -> (the queue's ``hardware_platform``, ``run.py``'s simulator argument)."""

RESULTS = "results"
"""The folder ``run.py`` writes to on the platform, and the one under ``artifacts/`` the
output files are downloaded into."""
_MAX_MISSES = 3
"""Polls in a row answering 404 before a job counts as lost."""
_RUNNING = frozenset({"running", "mapped"})
_LOG_TAIL_LINES = 12


def job_tag(job: Job) -> str:
    """The tag a job's submission carries (how it is found again after a restart)."""
    return f"brainsim-{job.job_id}-{job.segment}"


def _tail(text: str, max_lines: int = _LOG_TAIL_LINES, max_chars: int = 2000) -> str:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-max_lines:])[-max_chars:]


@dataclass(slots=True)
class _Followed:
    job: Job
    queue_id: str
    client: QueueClient
    running: bool = False
    status: str = ""
    misses: int = 0
    cancelling: bool = False
    trouble: str = ""
    """The last failure to get an answer about the job (empty: none since the last answer)."""
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class EbrainsLauncher:
    """Submits, follows and cancels jobs on one EBRAINS platform (see the module docstring)."""

    def __init__(
        self, config: EbrainsConfig, target: Target, data_root: DataRoot, host: LauncherHost
    ) -> None:
        if target not in PLATFORMS:
            raise ValueError(f"not an EBRAINS target: {target}")
        self._config = config
        self._target = target
        self._platform, self._simulator = PLATFORMS[target]
        self._data_root = data_root
        self._host = host
        self._followed: dict[str, _Followed] = {}
        self._kill_when_followed: set[str] = set()
        self._cancelling: set[asyncio.Task[None]] = set()

    @property
    def target(self) -> Target:
        return self._target

    def unavailable_reason(self) -> str | None:
        # The queue is remote: whether it answers is found out per job.
        return None

    def _client(self, token: str) -> QueueClient:
        return QueueClient(
            self._config.url,
            token,
            data_proxy_url=self._config.data_proxy_url,
            timeout_s=self._config.request_timeout_s,
        )

    def _say(self, job: Job, text: str) -> None:
        self._host.log(job.job_id, LogStream.SERVICE, text)

    # --- launching -----------------------------------------------------------------------

    def _circuit(self, job: Job, job_dir: JobDir) -> Circuit:
        circuit = load_circuit(job_dir.circuit)
        return with_overrides(circuit, duration_ms=job.duration_ms, seed=job.seed)

    def _compile(self, job: Job, job_dir: JobDir, archive: Path) -> None:
        """Compile the job's circuit into ``artifacts/pynn`` and zip that folder to
        ``archive`` (``run.py`` at its top)."""
        out = job_dir.artifacts / "pynn"
        remove_tree(out)
        PynnBackend(self._simulator).compile(self._circuit(job, job_dir), out)
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                zipped.write(path, path.relative_to(out).as_posix())

    def _submit(self, job: Job, job_dir: JobDir, client: QueueClient, collab: str) -> RemoteJob:
        with tempfile.TemporaryDirectory(prefix="brainsim-ebrains-") as folder:
            archive = Path(folder) / "pynn.zip"
            self._compile(job, job_dir, archive)
            name = f"brainsim/{job.job_id}/{job.segment}/pynn.zip"
            code = client.upload_code(archive, collab, name)
        remote = client.submit(
            code=code,
            command=f"run.py {self._simulator} --out {RESULTS}",
            collab=collab,
            hardware_platform=self._platform,
            tags=[job_tag(job)],
        )
        info = {
            "queue_id": remote.job_id,
            "segment": job.segment,
            "platform": self._platform,
            "collab": collab,
            "code": code,
        }
        try:
            job_dir.launch_info.write_text(json.dumps(info), encoding="utf-8")
        except OSError:
            # Not followable after a restart: take it back rather than leave it unwatched.
            with contextlib.suppress(EbrainsError):
                client.cancel(remote.job_id)
            raise
        return remote

    async def launch(self, job: Job) -> None:
        job_dir = self._data_root.job(job.job_id)
        try:
            credentials = await asyncio.to_thread(read_credentials, job_dir, self._config)
            client = self._client(credentials.token)
            remote = await asyncio.to_thread(self._submit, job, job_dir, client, credentials.collab)
        except Exception as exc:  # a job's failure is an event, whatever it is
            expected = (CredentialsError, EbrainsError, BrainsimError, OSError, ValueError)
            if not isinstance(exc, expected):
                log.exception("job %s: launching it on %s failed", job.job_id, self._platform)
            reason = str(exc) if isinstance(exc, expected) else repr(exc)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(job_dir.credentials.unlink, missing_ok=True)
            self._host.emit(LaunchFailed(job.job_id, reason, self._host.now()))
            return
        self._host.emit(Launched(job.job_id, remote.job_id, self._host.now()))
        self._say(
            job,
            f"submitted to the EBRAINS queue ({self._platform}, collab {credentials.collab}) "
            f"as job {remote.job_id}",
        )
        self._follow(job, remote.job_id, client)

    def _follow(self, job: Job, queue_id: str, client: QueueClient) -> None:
        item = _Followed(job, queue_id, client, running=job.state is JobState.RUNNING)
        self._followed[job.job_id] = item
        item.task = asyncio.create_task(self._watch(item), name=f"ebrains-{job.job_id}")
        if job.job_id in self._kill_when_followed:
            self._kill_when_followed.discard(job.job_id)
            cancelling = asyncio.create_task(self._cancel(item), name=f"cancel-{job.job_id}")
            self._cancelling.add(cancelling)
            cancelling.add_done_callback(self._cancelling.discard)

    # --- following -----------------------------------------------------------------------

    async def _watch(self, item: _Followed) -> None:
        job = item.job
        try:
            ending = await self._await_end(item)
        except Exception as exc:  # a bug here must not leave the job RUNNING forever
            log.exception("job %s: following it failed", job.job_id)
            reason = f"the service lost track of EBRAINS job {item.queue_id}: {exc!r}"
            ending = Exited(job.job_id, JobState.FAILED, reason, 0.0)
        self._followed.pop(job.job_id, None)
        job_dir = self._data_root.job(job.job_id)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(job_dir.credentials.unlink, missing_ok=True)
        self._host.emit(Exited(job.job_id, ending.outcome, ending.reason, self._host.now()))

    async def _await_end(self, item: _Followed) -> Exited:
        job_id, queue_id = item.job.job_id, item.queue_id
        while True:
            item.wakeup.clear()  # before asking: a kill() meanwhile wakes the next wait at once
            try:
                remote = await asyncio.to_thread(item.client.job, queue_id)
            except TokenRefusedError as exc:
                reason = (
                    f"{exc}; the service can no longer follow EBRAINS job {queue_id} "
                    "(it may still run in the queue)"
                )
                return Exited(job_id, JobState.FAILED, reason, 0.0)
            except EbrainsError as exc:
                if exc.status == 404:
                    item.misses += 1
                    if item.misses >= _MAX_MISSES:
                        reason = f"the EBRAINS queue no longer knows job {queue_id}: {exc.message}"
                        return Exited(job_id, JobState.FAILED, reason, 0.0)
                if str(exc) != item.trouble:  # said once, not at every poll of an outage
                    item.trouble = str(exc)
                    self._say(item.job, f"EBRAINS queue: {exc} (asking again)")
            else:
                item.misses, item.trouble = 0, ""
                ending = await self._observe(item, remote)
                if ending is not None:
                    return ending
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(item.wakeup.wait(), self._config.poll_interval_s)

    async def _observe(self, item: _Followed, remote: RemoteJob) -> Exited | None:
        """Report what changed; the ending if the queue is done with the job."""
        job, queue_id = item.job, item.queue_id
        if remote.status != item.status:
            item.status = remote.status
            self._say(job, f"EBRAINS job {queue_id}: {remote.status}")
        finished = remote.status == "finished"
        if (remote.status in _RUNNING or finished) and not item.running:
            item.running = True
            self._host.emit(Started(job.job_id, self._host.now()))
        if remote.active:
            return None
        if finished:
            return await self._collect(item, remote)
        text = await self._fetch_log(item)
        if remote.status == "removed" and (item.cancelling or job.cancel_requested):
            reason = f"cancelled: the EBRAINS queue removed job {queue_id}"
            return Exited(job.job_id, JobState.CANCELLED, reason, 0.0)
        if remote.status == "removed":
            what = f"EBRAINS job {queue_id} was removed from the queue outside the service"
        else:
            what = f"EBRAINS job {queue_id} ended with status {remote.status!r}"
        tail = _tail(text)
        reason = f"{what}; its log ends with:\n{tail}" if tail else what
        return Exited(job.job_id, JobState.FAILED, reason, 0.0)

    async def _fetch_log(self, item: _Followed) -> str:
        """The job's log from the queue, appended to ``stdout.log`` and sent to watchers
        (empty if it cannot be had)."""
        try:
            text = await asyncio.to_thread(item.client.log, item.queue_id)
        except EbrainsError as exc:
            self._say(item.job, f"the log of EBRAINS job {item.queue_id}: {exc}")
            return ""
        job_dir = self._data_root.job(item.job.job_id)
        await asyncio.to_thread(_append, job_dir.stdout, text)
        for line in text.splitlines():
            self._host.log(item.job.job_id, LogStream.STDOUT, line)
        return text

    async def _collect(self, item: _Followed, remote: RemoteJob) -> Exited:
        """Fetch a finished job's files and log, and make its recording."""
        job = item.job
        job_dir = self._data_root.job(job.job_id)
        text = await self._fetch_log(item)
        try:
            fetched = await asyncio.to_thread(self._download, item, remote, job_dir)
            self._say(job, f"fetched {fetched} output files of EBRAINS job {item.queue_id}")
            await asyncio.to_thread(self._record, job, job_dir)
        except (EbrainsError, BrainsimError, OSError, ValueError) as exc:
            reason = f"EBRAINS job {item.queue_id} finished but its results are unusable: {exc}"
            tail = _tail(text)
            reason = f"{reason}\nits log ends with:\n{tail}" if tail else reason
            return Exited(job.job_id, JobState.FAILED, reason, 0.0)
        return Exited(job.job_id, JobState.SUCCEEDED, "", 0.0)

    def _download(self, item: _Followed, remote: RemoteJob, job_dir: JobDir) -> int:
        results = job_dir.artifacts / RESULTS
        remove_tree(results)
        results.mkdir(parents=True)
        count = 0
        for output in remote.output:
            relative = _local_path(output.path or output.url, item.queue_id)
            if relative is None:
                log.warning("job %s: output %r skipped", item.job.job_id, output.path)
                continue
            item.client.download(output.url, results / relative)
            count += 1
        return count

    def _record(self, job: Job, job_dir: JobDir) -> None:
        from brainsim.backends.pynn_run import write_recording

        write_recording(
            self._circuit(job, job_dir),
            job_dir.artifacts / RESULTS,
            job_dir.recording,
            backend=f"pynn:{self._simulator}",
            overwrite=True,
        )

    # --- cancelling ----------------------------------------------------------------------

    async def kill(self, job: Job) -> None:
        item = self._followed.get(job.job_id)
        if item is None:
            # Adoption after a restart may still be under way: cancel once it is followed.
            self._kill_when_followed.add(job.job_id)
            return
        await self._cancel(item)

    async def _cancel(self, item: _Followed) -> None:
        item.cancelling = True
        try:
            await asyncio.to_thread(item.client.cancel, item.queue_id)
        except EbrainsError as exc:
            self._say(item.job, f"cancelling EBRAINS job {item.queue_id} failed: {exc}")
        else:
            self._say(item.job, f"cancelling: EBRAINS job {item.queue_id} deleted from the queue")
        item.wakeup.set()

    # --- restarts ------------------------------------------------------------------------

    def _launch_info(self, job: Job) -> str | None:
        """The queue's id of the job's current run, from ``launch.json``."""
        try:
            info = json.loads(self._data_root.job(job.job_id).launch_info.read_text("utf-8"))
            if int(info.get("segment", 1)) != job.segment:
                return None
            return str(info["queue_id"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _find(self, job: Job) -> str | None:
        """The queue's id of the job's current run: ``launch.json``, else its tag."""
        found = self._launch_info(job)
        if found is not None:
            return found
        try:
            credentials = read_credentials(self._data_root.job(job.job_id), self._config)
            jobs = self._client(credentials.token).find(credentials.collab, job_tag(job))
        except (CredentialsError, EbrainsError) as exc:
            log.warning("job %s: cannot look for it in the EBRAINS queue: %s", job.job_id, exc)
            return None
        return min((r.job_id for r in jobs), key=lambda i: (len(i), i), default=None)

    async def locate(self, job: Job) -> str | None:
        return await asyncio.to_thread(self._find, job)

    async def adopt(self, job: Job) -> None:
        job_dir = self._data_root.job(job.job_id)
        queue_id = await asyncio.to_thread(self._launch_info, job) or job.external_id
        try:
            credentials = await asyncio.to_thread(read_credentials, job_dir, self._config)
        except CredentialsError as exc:
            reason = f"cannot follow EBRAINS job {queue_id} after a restart: {exc}"
            self._host.emit(Exited(job.job_id, JobState.FAILED, reason, self._host.now()))
            return
        self._say(job, f"server restarted; following EBRAINS job {queue_id}")
        self._follow(job, queue_id, self._client(credentials.token))

    async def close(self) -> None:
        followed = list(self._followed.values())
        self._followed.clear()
        for item in followed:
            if item.task is not None:
                item.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await item.task
        for task in list(self._cancelling):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _append(path: Path, text: str) -> None:
    if not text:
        return
    with path.open("a", encoding="utf-8") as out:
        out.write(text if text.endswith("\n") else text + "\n")


def _local_path(path: str, queue_id: str) -> Path | None:
    """Where an output file goes under ``artifacts/results``: its path (or its URL's) after
    the platform's ``job_<id>/`` folder, without ``results/``; ``None`` for a path that is not
    a plain relative one."""
    if "://" in path:
        path = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
    parts = [p for p in PurePosixPath(path).parts if p != "/"]
    folder = f"job_{queue_id}"
    if folder in parts:
        parts = parts[parts.index(folder) + 1 :]
    if len(parts) > 1 and parts[0] == RESULTS:
        parts = parts[1:]
    if not parts or any(p in (".", "..") or "\\" in p or "\0" in p for p in parts):
        return None
    return Path(*parts)
