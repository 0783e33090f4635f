"""A small client of the EBRAINS neuromorphic job queue (REST API v3) and of the collab Buckets.

The EBRAINS targets (:mod:`services.launchers.ebrains`) use it from asyncio through
``asyncio.to_thread``: every call here blocks on one HTTP request (``urllib``, no dependency
beyond the standard library) of at most ``timeout_s``.

The subset of the API used (docs/targets.md, "EBRAINS", cites the sources):

* every request to the queue carries the user's EBRAINS token as ``Authorization: Bearer``;
* ``PUT {data_proxy}/v1/buckets/{collab}/{object}`` (with the token) answers ``{"url": ...}``,
  a temporary address to ``PUT`` the object's bytes to (without the token): how a job's code
  archive reaches the collab's Bucket. The archive's address in the Bucket is the job's ``code``;
* ``POST /jobs/`` with ``code``, ``command``, ``collab``, ``hardware_platform`` (and optionally
  ``hardware_config``, ``input_data``, ``tags``) answers 201 with the accepted job (its ``id``,
  ``status`` ``submitted``);
* ``GET /jobs/{id}``: the job; ``status`` is ``submitted``, ``validated``, ``running``,
  ``mapped``, ``finished``, ``error`` or ``removed``, and a finished job has ``output_data``
  (``{"repository": ..., "files": [{"url", "path", "size", "hash", ...}]}``);
* ``GET /jobs/{id}/log``: the job's log, plain text;
* ``GET /jobs/?tags=...&collab=...``: the jobs with those tags (finding a job again);
* ``DELETE /jobs/{id}``: the job's status becomes ``removed``.

Errors answer ``{"detail": ...}`` (a message, or FastAPI's list of field problems for a body it
refuses, status 422); each becomes an :class:`EbrainsError` with the status and that message,
:class:`TokenRefusedError` for 401 and 403. Output files are fetched from the address the queue
gives; the token goes only to the queue's and the data-proxy's own hosts.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.config import EbrainsConfig
from services.jobdir import JobDir

__all__ = [
    "ACTIVE_STATUSES",
    "Credentials",
    "CredentialsError",
    "EbrainsError",
    "OutputFile",
    "QueueClient",
    "RemoteJob",
    "TokenRefusedError",
    "read_credentials",
    "write_credentials",
]

ACTIVE_STATUSES = frozenset({"submitted", "validated", "running", "mapped"})
"""Statuses of a job the queue has not finished with."""

_CHUNK = 1 << 20
_MAX_MESSAGE = 2000
"""The most characters of an error answer kept in an :class:`EbrainsError`."""


class EbrainsError(Exception):
    """A request to the queue or the Bucket failed: ``status`` is the HTTP status (0: no
    answer at all: the network, a timeout), ``message`` what the server said."""

    def __init__(self, what: str, status: int, message: str) -> None:
        super().__init__(what, status, message)
        self.what = what
        self.status = status
        self.message = message

    def __str__(self) -> str:
        answer = f"HTTP {self.status}" if self.status else "no answer"
        return f"{self.what}: {answer}" + (f": {self.message}" if self.message else "")


class TokenRefusedError(EbrainsError):
    """The server refused the EBRAINS token (HTTP 401 or 403: expired, invalid, or without
    access to the collab or the job)."""

    def __str__(self) -> str:
        said = f": {self.message}" if self.message else ""
        refused = "was refused" if self.status == 401 else "does not allow this"
        return f"{self.what}: the EBRAINS token {refused} (HTTP {self.status}{said})"


def _http_error(what: str, exc: urllib.error.HTTPError, *, with_token: bool) -> EbrainsError:
    """The error for an HTTP error answer (:class:`TokenRefusedError` for 401/403 to a request
    that carried the token)."""
    try:
        body = exc.read() or b""
    except OSError:
        body = b""
    finally:
        exc.close()
    status = exc.code
    if with_token and status in (401, 403):
        return TokenRefusedError(what, status, _message(body))
    return EbrainsError(what, status, _message(body))


class CredentialsError(ValueError):
    """No usable EBRAINS token or collab for a job."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a job is submitted with."""

    token: str = field(repr=False)
    collab: str


def write_credentials(path: Path, token: str, collab: str) -> None:
    """Write a job's credentials (JSON, mode 0600 from the start)."""
    data = json.dumps({"token": token, "collab": collab}).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def read_credentials(job_dir: JobDir, config: EbrainsConfig) -> Credentials:
    """The job's token and collab: those of its credentials file, else the server's own
    (``config.token_file``, ``config.collab``); :class:`CredentialsError` if either is missing."""
    stored: Mapping[str, Any] = {}
    try:
        loaded = json.loads(job_dir.credentials.read_text(encoding="utf-8"))
    except FileNotFoundError:
        loaded = {}
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"the job's credentials cannot be read: {exc}") from exc
    if isinstance(loaded, Mapping):
        stored = loaded
    token = str(stored.get("token") or "").strip()
    collab = str(stored.get("collab") or "").strip() or config.collab.strip()
    if not token and config.token_file is not None:
        try:
            token = config.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CredentialsError(
                f"ebrains.token_file {config.token_file} cannot be read: {exc.strerror}"
            ) from exc
    if not token:
        raise CredentialsError(
            "no EBRAINS token: the job brought none and the server has none (ebrains.token_file)"
        )
    if not collab:
        raise CredentialsError(
            "no EBRAINS collab: the job named none and the server has no default (ebrains.collab)"
        )
    return Credentials(token, collab)


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One file of a finished job's ``output_data``."""

    url: str
    path: str
    """Where the platform put it (often ``<collab>/job_<id>/<file>``)."""
    size: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteJob:
    """What the queue says about a job."""

    job_id: str
    status: str
    output: tuple[OutputFile, ...] = ()
    log: str = ""
    """Only when asked for (``QueueClient.job(with_log=True)``)."""

    @property
    def active(self) -> bool:
        """The queue has not finished with it."""
        return self.status in ACTIVE_STATUSES


def _message(body: bytes) -> str:
    """What an error answer says: its ``detail`` (a message, or FastAPI's field problems) or
    ``error``, else its text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:_MAX_MESSAGE]
    if isinstance(data, Mapping):
        detail = data.get("detail", data.get("error"))
        if isinstance(detail, str):
            return detail[:_MAX_MESSAGE]
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, Mapping):
                    where = ".".join(str(p) for p in item.get("loc", ()))
                    parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
                else:
                    parts.append(str(item))
            return "; ".join(parts)[:_MAX_MESSAGE]
    return text[:_MAX_MESSAGE]


def _check_scheme(what: str, url: str) -> None:
    """Only ``http`` and ``https`` addresses are fetched (never ``file:`` or others)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise EbrainsError(what, 0, f"not an http(s) address: {url!r}")


def _remote_job(data: object) -> RemoteJob:
    if not isinstance(data, Mapping) or "id" not in data or "status" not in data:
        raise EbrainsError("the queue's answer", 200, f"not a job: {str(data)[:200]}")
    files: list[OutputFile] = []
    output = data.get("output_data")
    if isinstance(output, Mapping):
        for item in output.get("files") or ():
            if isinstance(item, Mapping) and isinstance(item.get("url"), str):
                size = item.get("size")
                files.append(
                    OutputFile(
                        url=item["url"],
                        path=str(item.get("path") or ""),
                        size=size if isinstance(size, int) else None,
                    )
                )
    log = data.get("log")
    text = log if isinstance(log, str) else ""
    return RemoteJob(str(data["id"]), str(data["status"]), tuple(files), text)


class QueueClient:
    """Requests to one queue (and its data-proxy) with one user's token."""

    def __init__(
        self, url: str, token: str, *, data_proxy_url: str, timeout_s: float = 60.0
    ) -> None:
        self.url = url.rstrip("/")
        self.data_proxy_url = data_proxy_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s
        self._trusted = {
            urllib.parse.urlsplit(u).netloc.lower() for u in (self.url, self.data_proxy_url)
        }

    # --- HTTP ------------------------------------------------------------------------------

    def _request(
        self,
        what: str,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        auth: bool = True,
    ) -> bytes:
        """The answer's body; :class:`EbrainsError` for any failure."""
        _check_scheme(what, url)
        request = urllib.request.Request(url, data=body, method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        if content_type is not None:
            request.add_header("Content-Type", content_type)
        if auth:
            # Unredirected: a redirect to another host never carries the token.
            request.add_unredirected_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310
                data: bytes = answer.read()
                return data
        except urllib.error.HTTPError as exc:
            raise _http_error(what, exc, with_token=auth) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise EbrainsError(what, 0, str(getattr(exc, "reason", exc))) from None

    def _json(self, what: str, method: str, path: str, payload: object = None) -> object:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        content_type = None if payload is None else "application/json"
        text = self._request(what, method, self.url + path, body=body, content_type=content_type)
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            raise EbrainsError(what, 200, f"not JSON: {text[:200]!r}") from None

    # --- the Bucket ----------------------------------------------------------------------

    def upload_code(self, archive: Path, bucket: str, name: str) -> str:
        """Put ``archive`` into the collab's Bucket as object ``name``; its address there
        (what the job's ``code`` names)."""
        quoted = "/".join(urllib.parse.quote(part, safe="") for part in (bucket, *name.split("/")))
        object_url = f"{self.data_proxy_url}/v1/buckets/{quoted}"
        what = f"uploading the code to Bucket {bucket!r}"
        answer = self._request(what, "PUT", object_url)
        try:
            target = json.loads(answer)["url"]
        except (ValueError, KeyError, TypeError):
            raise EbrainsError(what, 200, "the data-proxy gave no upload address") from None
        if not isinstance(target, str):
            raise EbrainsError(what, 200, "the data-proxy gave no upload address")
        self._request(
            what,
            "PUT",
            target,
            body=archive.read_bytes(),
            content_type="application/octet-stream",
            auth=self._is_trusted(target),
        )
        return object_url

    # --- the queue ------------------------------------------------------------------------

    def submit(
        self,
        *,
        code: str,
        command: str,
        collab: str,
        hardware_platform: str,
        hardware_config: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
    ) -> RemoteJob:
        """``POST /jobs/``: the accepted job."""
        body: dict[str, Any] = {
            "code": code,
            "command": command,
            "collab": collab,
            "hardware_platform": hardware_platform,
        }
        if hardware_config:
            body["hardware_config"] = dict(hardware_config)
        if tags:
            body["tags"] = list(tags)
        return _remote_job(self._json(f"submitting to {hardware_platform}", "POST", "/jobs/", body))

    def job(self, job_id: str, *, with_log: bool = False) -> RemoteJob:
        """``GET /jobs/{id}``."""
        query = "?with_log=true" if with_log else ""
        path = f"/jobs/{urllib.parse.quote(job_id, safe='')}{query}"
        return _remote_job(self._json(f"asking about job {job_id}", "GET", path))

    def log(self, job_id: str) -> str:
        """``GET /jobs/{id}/log``: the job's log (plain text; a JSON string is unquoted)."""
        path = f"{self.url}/jobs/{urllib.parse.quote(job_id, safe='')}/log"
        text = self._request(f"fetching the log of job {job_id}", "GET", path).decode(
            "utf-8", "replace"
        )
        if text.startswith('"'):
            with contextlib.suppress(ValueError):
                decoded = json.loads(text)
                if isinstance(decoded, str):
                    return decoded
        return text

    def find(self, collab: str, tag: str) -> list[RemoteJob]:
        """``GET /jobs/?tags=TAG&collab=COLLAB``: the collab's jobs with that tag."""
        query = urllib.parse.urlencode({"tags": tag, "collab": collab, "size": 100})
        found = self._json(f"looking for jobs tagged {tag!r}", "GET", f"/jobs/?{query}")
        return [_remote_job(item) for item in found] if isinstance(found, list) else []

    def cancel(self, job_id: str) -> None:
        """``DELETE /jobs/{id}``: the queue marks the job ``removed``."""
        path = f"/jobs/{urllib.parse.quote(job_id, safe='')}"
        self._json(f"cancelling job {job_id}", "DELETE", path)

    def download(self, url: str, dest: Path) -> int:
        """Fetch ``url`` into ``dest`` (through a temporary file beside it); its size."""
        what = f"downloading {url}"
        _check_scheme(what, url)
        request = urllib.request.Request(url, method="GET")  # noqa: S310
        auth = self._is_trusted(url)
        if auth:
            request.add_unredirected_header("Authorization", f"Bearer {self._token}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        size = 0
        try:
            with (
                urllib.request.urlopen(request, timeout=self.timeout_s) as answer,  # noqa: S310
                partial.open("wb") as out,
            ):
                while chunk := answer.read(_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            partial.replace(dest)
        except urllib.error.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise _http_error(what, exc, with_token=auth) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            partial.unlink(missing_ok=True)
            raise EbrainsError(what, 0, str(getattr(exc, "reason", exc))) from None
        return size

    def _is_trusted(self, url: str) -> bool:
        """Whether ``url`` is on the queue's or the data-proxy's host (the token may go there)."""
        return urllib.parse.urlsplit(url).netloc.lower() in self._trusted
