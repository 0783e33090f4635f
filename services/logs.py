"""A job's logs after the fact, in pages (``GetJobLogs``): its output files and the service's
own lines.

* ``stdout`` / ``stderr``: the lines of ``stdout.log`` / ``stderr.log`` in the job's folder, as
  written (progress reports included, the line break left off, bytes that are not UTF-8
  replaced by U+FFFD). Every run of a job (retries, the links of a Slurm chain) appends to the
  same two files, so a page is a stretch of one growing file and a position in it stays valid
  for the job's whole life. Only complete lines are returned: a last line without its line
  break comes once the job has ended (a running job may still finish it). The files carry no
  time per line, so these lines have none. A line longer than :data:`LONG_LINE_BYTES` comes in
  pieces of that size (each a line of its own); a page holds at most :data:`PAGE_BYTES` of text
  (at least one line), so that it fits in a message.
* ``service``: the job's event log in the job store (``submitted``, ``launched``, ``started``,
  ``cancel_requested``, ``recovered``, ``retrying``, ``continuing``, ``finished``), one line
  per event in words (several for a reason of several lines), each with the event's time. The
  retry and continuation lines are those ``WatchJob`` sends (:func:`services.machine.retry_message`,
  :func:`~services.machine.continue_message`). Lines launchers send only to watchers
  (``Slurm job 123: RUNNING``, ``time limit of 60 s reached``) are not stored and not here.

A cursor is base64url of a small JSON object: the job id, the stream and the position (a byte
offset in the file; for the service's lines the event's sequence number and the line within
it). It is opaque to clients; one of another job or stream, or one that does not decode, is a
:class:`CursorError`. A page is ``complete`` when the job has ended and nothing follows it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.jobs import Job, LogStream
from services.machine import continue_message, retry_message
from services.store import EventRecord

__all__ = [
    "DEFAULT_MAX_LINES",
    "LONG_LINE_BYTES",
    "MAX_LINES",
    "PAGE_BYTES",
    "CursorError",
    "LogPage",
    "PageLine",
    "event_lines",
    "file_page",
    "page_size",
    "service_page",
]

DEFAULT_MAX_LINES = 1000
"""Lines per page when the request says 0."""
MAX_LINES = 10_000
"""The most lines of one page (a larger request is treated as this)."""
PAGE_BYTES = 1 << 20
"""The most text of one page, in bytes (clients accept messages of 8 MiB)."""
LONG_LINE_BYTES = 1 << 20
"""A longer line is returned in pieces of this many bytes."""
_READ_BYTES = 64 * 1024
_CURSOR_VERSION = 1
_FOREIGN = "not a cursor this server gave (pass next_cursor back as it was)"


class CursorError(ValueError):
    """A cursor this server did not give for this job and stream; the message says why."""


@dataclass(frozen=True, slots=True)
class PageLine:
    """One line of a page."""

    text: str
    """Without its line break."""
    time: float | None
    """When it was logged (epoch s); ``None`` where unknown (the output files)."""


@dataclass(frozen=True, slots=True)
class LogPage:
    """One answer of ``GetJobLogs``."""

    lines: tuple[PageLine, ...]
    next_cursor: str
    complete: bool
    """The job has ended and nothing follows ``next_cursor``."""


def page_size(max_lines: int) -> int:
    """The lines of a page for a request's ``max_lines`` (>= 0): 0 means the default."""
    return min(max_lines or DEFAULT_MAX_LINES, MAX_LINES)


# --- cursors ------------------------------------------------------------------------------------


def _encode(job_id: str, stream: LogStream, position: Sequence[int]) -> str:
    document = {"v": _CURSOR_VERSION, "job": job_id, "stream": stream.value, "at": list(position)}
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode(cursor: str, job_id: str, stream: LogStream, length: int) -> tuple[int, ...]:
    """The position a cursor holds (``length`` numbers, each >= 0); zeros for an empty one."""
    if not cursor:
        return (0,) * length
    try:
        document = json.loads(base64.b64decode(cursor.encode(), altchars=b"-_", validate=True))
    except (ValueError, binascii.Error, UnicodeError):
        raise CursorError(_FOREIGN) from None
    if not isinstance(document, dict) or document.get("v") != _CURSOR_VERSION:
        raise CursorError(_FOREIGN)
    if document.get("job") != job_id:
        raise CursorError("a cursor of another job's log")
    if document.get("stream") != stream.value:
        raise CursorError(
            f"a cursor of the {document.get('stream')!r} log, not of {stream.value!r}"
        )
    position = document.get("at")
    if (
        not isinstance(position, list)
        or len(position) != length
        or not all(type(n) is int and n >= 0 for n in position)
    ):
        raise CursorError(_FOREIGN)
    return tuple(position)


# --- the output files ---------------------------------------------------------------------------


def _text(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", "replace")


def file_page(
    job_id: str, stream: LogStream, path: Path, cursor: str, max_lines: int, ended: bool
) -> LogPage:
    """The page of ``path`` (the job's ``stdout.log`` or ``stderr.log``) at ``cursor``.
    ``ended``: the job has ended (its files no longer grow), read before calling this."""
    (offset,) = _decode(cursor, job_id, stream, 1)
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        if offset:
            raise CursorError(f"points past the end of the log (byte {offset} of 0)") from None
        return LogPage((), _encode(job_id, stream, (0,)), ended)
    lines: list[PageLine] = []
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if offset > size:
            raise CursorError(f"points past the end of the log (byte {offset} of {size})")
        fh.seek(offset)
        buffer = bytearray()
        start = 0  # of the unreturned bytes in buffer, which begin at file offset `offset`
        read_to = offset
        text_bytes = 0
        while len(lines) < max_lines and text_bytes < PAGE_BYTES:
            newline = buffer.find(b"\n", start)
            if newline >= 0:
                lines.append(PageLine(_text(buffer[start:newline]), None))
                text_bytes += newline + 1 - start
                offset += newline + 1 - start
                start = newline + 1
                continue
            if len(buffer) - start >= LONG_LINE_BYTES:
                end = start + LONG_LINE_BYTES
                lines.append(PageLine(_text(buffer[start:end]), None))
                text_bytes += LONG_LINE_BYTES
                offset += LONG_LINE_BYTES
                start = end
                continue
            if read_to >= size:
                if ended and start < len(buffer):  # the last line has no line break: it is all
                    lines.append(PageLine(_text(buffer[start:]), None))
                    offset += len(buffer) - start
                break
            more = fh.read(min(_READ_BYTES, size - read_to))
            if not more:  # the file shrank: logs only grow, but never loop on it
                break
            del buffer[:start]
            start = 0
            buffer += more
            read_to += len(more)
    return LogPage(tuple(lines), _encode(job_id, stream, (offset,)), ended and offset >= size)


# --- the service's lines ------------------------------------------------------------------------


def _lines_of(kind: str, detail: Mapping[str, Any], job: Job) -> str:
    match kind:
        case "submitted":
            n_ranks, target = detail.get("n_ranks", job.n_ranks), detail.get("target")
            return f"submitted by {detail.get('owner', job.owner)}: {n_ranks} rank(s), {target}"
        case "launched":
            return f"launched {job.target.launched_as(str(detail['external_id']), job.n_ranks)}"
        case "started":
            return "running"
        case "cancel_requested":
            return f"cancel requested by {detail['by']}"
        case "recovered" if detail.get("external_id"):
            following = job.target.launched_as(str(detail["external_id"]), job.n_ranks)
            return f"server restarted; following {following}"
        case "recovered":
            return "server restarted; the job waits to be launched"
        case "retrying":
            resume = detail["resume_from_ms"]
            return retry_message(
                int(detail["attempt"]),
                int(detail["of"]),
                None if resume is None else float(resume),
                str(detail["reason"]),
            )
        case "continuing":
            return continue_message(int(detail["segment"]), float(detail["resume_from_ms"]))
        case "finished":
            reason = detail.get("reason") or ""
            return f"finished: {detail['state']}" + (f": {reason}" if reason else "")
    raise KeyError(kind)


def event_lines(event: EventRecord, job: Job) -> list[str]:
    """The service's lines for one event of ``job`` (at least one)."""
    try:
        text = _lines_of(event.kind, event.detail, job)
    except (KeyError, TypeError, ValueError):  # a kind or detail this version does not know
        text = f"{event.kind}: {json.dumps(event.detail, sort_keys=True, default=str)}"
    return text.splitlines() or [""]


def service_page(
    job: Job, events: Sequence[EventRecord], cursor: str, max_lines: int, ended: bool
) -> LogPage:
    """The page of the service's lines at ``cursor``; ``events``: the job's event log, read
    after ``ended`` (the job had ended, so the log is whole)."""
    seq, index = _decode(cursor, job.job_id, LogStream.SERVICE, 2)
    lines: list[PageLine] = []
    remaining = False
    for event in events:
        if event.seq < seq:
            continue
        for number, text in enumerate(event_lines(event, job)):
            if (event.seq, number) < (seq, index):
                continue
            if len(lines) >= max_lines:
                remaining = True
                break
            lines.append(PageLine(text, event.at))
            seq, index = event.seq, number + 1
        if remaining:
            break
    cursor = _encode(job.job_id, LogStream.SERVICE, (seq, index))
    return LogPage(tuple(lines), cursor, ended and not remaining)
