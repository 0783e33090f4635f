"""Follow a job's output files: progress reports become events, other lines become log lines.

``brainsim run --progress json`` prints one JSON object per line on stdout::

    {"event": "started", "n_ranks": 2, "duration_ms": 100.0}
    {"event": "progress", "simulated_ms": 12.5, "duration_ms": 100.0, "wall_s": 0.31}
    {"event": "finished", "status": "complete"}

and, on a run that compiles kernels (a fresh kernel cache), ``{"event": "compiling", "kernels":
12, "kernel": "run_intervals", "wall_s": 3.0}`` about once a second and ``{"event":
"compiled", ...}`` at the end, which become log lines for watchers.

Both launchers send stdout and stderr to files in the job's folder (never to pipes, so a job
outlives a server restart), and this follower reads what was appended every ``interval_s``.
File reads run on a worker thread; the final read happens when the follower is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.jobs import LogStream
from services.launchers.base import LauncherHost
from services.machine import ProgressMade, Started

__all__ = ["OutputFollower", "file_sizes", "output_tail", "tail_text"]

_MAX_LINE_CHARS = 4096
_CATCH_UP_BYTES = 64 * 1024


def tail_text(
    path: Path,
    max_lines: int = 5,
    max_chars: int = 2000,
    keep: Callable[[str], bool] | None = None,
) -> str:
    """The last non-empty lines of a text file (for failure reasons), only those ``keep``
    accepts if given; empty if unreadable."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 16 * max_chars))
            data = fh.read()
    except OSError:
        return ""
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    if keep is not None:
        lines = [ln for ln in lines if keep(ln)]
    return "\n".join(lines[-max_lines:])[-max_chars:]


def file_sizes(*paths: Path) -> tuple[int, ...]:
    """The size of each file (0 for a missing one): where a later run's output will start."""
    sizes = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            sizes.append(0)
    return tuple(sizes)


def _worth_showing(line: str) -> bool:
    """Not a progress report, not a rule of ``=`` (mpiexec's banners)."""
    return not line.startswith('{"event"') and bool(line.strip("= "))


def output_tail(stdout: Path, stderr: Path, max_lines: int = 6) -> str:
    """The end of a job's output for its failure reason: the last lines of stderr, then of
    stdout (without progress reports), each under a heading; empty if there is none."""
    parts = []
    for name, path in (("stderr", stderr), ("stdout", stdout)):
        text = tail_text(path, max_lines, 1000, _worth_showing)
        if text:
            parts.append(f"{name} ends with:\n" + "\n".join(f"  {ln}" for ln in text.splitlines()))
    return "\n".join(parts)


@dataclass(slots=True)
class _File:
    path: Path
    stream: LogStream
    offset: int = 0
    partial: bytes = b""

    def read_lines(self) -> list[str]:
        """Complete lines appended since the last call."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        chunks = (self.partial + data).split(b"\n")
        self.partial = chunks.pop()
        return [c.decode("utf-8", "replace").rstrip("\r")[:_MAX_LINE_CHARS] for c in chunks]

    def skip_to_recent(self) -> None:
        """Start near the end (an adopted job's old output was already published once)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size > _CATCH_UP_BYTES:
            self.offset = size - _CATCH_UP_BYTES
            self.read_lines()  # drops the first, probably partial, line


@dataclass(slots=True)
class OutputFollower:
    """Reads ``stdout`` and ``stderr`` of one job and reports to ``host``.

    With ``publish_backlog=False`` (adopting a job after a restart) the output already there is
    scanned for progress but not republished as log lines. With ``start_at`` (a later run of a
    job, appending to the same files) reading starts at those offsets of stdout and stderr (their
    sizes before the run started): the earlier runs' output is not read again.
    """

    host: LauncherHost
    job_id: str
    stdout: Path
    stderr: Path
    interval_s: float
    publish_backlog: bool = True
    start_at: tuple[int, int] = (0, 0)
    _files: tuple[_File, ...] = ()
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin following (as a task of the running loop)."""
        self._files = (_File(self.stdout, LogStream.STDOUT), _File(self.stderr, LogStream.STDERR))
        for file, offset in zip(self._files, self.start_at, strict=True):
            file.offset = offset
        self._task = asyncio.create_task(self._run(), name=f"output-{self.job_id}")

    async def stop(self) -> None:
        """Read what is left, then stop."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def cancel(self) -> None:
        """Stop at once, without a final read (server shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _read(self) -> list[tuple[LogStream, list[str]]]:
        return [(f.stream, f.read_lines()) for f in self._files]

    async def _run(self) -> None:
        publish = self.publish_backlog
        if not publish:
            for file in self._files:
                await asyncio.to_thread(file.skip_to_recent)
        while True:
            stopping = self._stop.is_set()
            for stream, lines in await asyncio.to_thread(self._read):
                for line in lines:
                    self._line(stream, line, publish)
            publish = True
            if stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)

    def _line(self, stream: LogStream, line: str, publish: bool) -> None:
        if stream is LogStream.STDOUT and line.startswith("{"):
            try:
                report = json.loads(line)
            except ValueError:
                report = None
            if isinstance(report, dict) and "event" in report:
                self._report(report)
                return
        if publish and line.strip():
            self.host.log(self.job_id, stream, line)

    def _report(self, report: dict[str, object]) -> None:
        at = self.host.now()
        event = report.get("event")
        if event == "started":
            self.host.emit(Started(self.job_id, at))
        elif event == "progress":
            simulated, wall = report.get("simulated_ms"), report.get("wall_s", 0.0)
            if isinstance(simulated, int | float) and isinstance(wall, int | float):
                self.host.emit(ProgressMade(self.job_id, float(simulated), float(wall), at))
        elif event in ("compiling", "compiled"):
            # A first run on a fresh kernel cache: say so to watchers (one line a second at most).
            kernels, wall = report.get("kernels"), report.get("wall_s")
            helped = report.get("helper_kernels")
            also = (
                f" and {helped} in a helper process" if isinstance(helped, int) and helped else ""
            )
            if isinstance(kernels, int) and isinstance(wall, int | float):
                text = (
                    f"compiling numba kernels: {kernels} so far, now {report.get('kernel')} "
                    f"({wall:.0f} s)"
                    if event == "compiling"
                    else f"compiled {kernels} numba kernels{also} in {wall:.1f} s "
                    "(cached for later runs)"
                )
                self.host.log(self.job_id, LogStream.STDOUT, text)
