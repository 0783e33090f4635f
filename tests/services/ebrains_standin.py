"""A stand-in for the EBRAINS neuromorphic job queue (REST API v3) and the data-proxy's Buckets,
on loopback, for the tests of the EBRAINS targets (the real queue cannot be reached from the
test machines).

It implements the subset :mod:`services.ebrains` uses, as the queue's and the data-proxy's
documentation and code describe it (docs/targets.md, "EBRAINS", cites them):

* ``Authorization: Bearer TOKEN`` on every request but the uploads to a temporary address and
  the output files: no header -> 403 ``Not authenticated`` (FastAPI's ``HTTPBearer``), an
  unknown token -> 401 ``Token may have expired``;
* ``PUT /data-proxy/v1/buckets/{collab}/{object}`` -> ``{"url": <temporary upload address>}``;
  ``PUT`` to that address stores the object; ``GET`` of the object's address (with a token)
  returns it;
* ``POST /jobs/`` with a JSON body: ``code``, ``collab``, ``hardware_platform`` (strings)
  required, ``command`` (string), ``tags`` (strings of 2-100 characters), ``hardware_config``
  (object), ``input_data`` (list) optional; a body it cannot take -> 422 with FastAPI's
  ``detail`` list; a collab the token's user is not a member of -> 404; a platform without
  quota -> 403; else 201 and the job (``status`` ``submitted``);
* ``GET /jobs/{id}`` (``?with_log=true``), ``GET /jobs/{id}/log`` (text), ``GET /jobs/?tags=
  &collab=&status=``, ``DELETE /jobs/{id}`` (status ``removed``); a job the user may not see ->
  404;
* output files at ``/data/<collab>/job_<id>/<path>`` (no token, as a platform's data server).

A job "runs" as the platforms' job runner does (``nmpi_saga.py`` of hbp-neuromorphic-client):
``submitted``, then ``running`` once :attr:`StandinQueue.release` is set: the code archive is
fetched from the Bucket and unpacked into a working folder, the command's first word is the
script and its second, the simulator, is replaced by :attr:`StandinQueue.simulator` (``nest``:
the script runs on pyNN.nest in ``python``); every new file is an output file; ``finished``
(exit status 0) or ``error`` with the script's output as the log.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import secrets
import subprocess
import tarfile
import threading
import urllib.parse
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["COLLAB", "TOKEN", "USER", "StandinQueue"]

TOKEN = "ebrains-token-of-alice-0123456789"
USER = "alice"
COLLAB = "brainsim-tests"
QUOTA_PLATFORMS = frozenset({"SpiNNaker", "BrainScaleS-2"})
"""Platforms every collab of the stand-in has quota on."""
_ACTIVE = ("submitted", "running")


class _Answer(Exception):
    """An error answer: status and the ``detail`` of its JSON body."""

    def __init__(self, status: int, detail: object) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


def _now() -> str:
    return datetime.now(UTC).isoformat()


class StandinQueue:
    """The stand-in: an HTTP server on 127.0.0.1 (port 0) with jobs that run ``python``."""

    def __init__(
        self,
        python: Path | str,
        work: Path,
        *,
        tokens: Mapping[str, str] | None = None,
        members: Mapping[str, frozenset[str]] | None = None,
        run_timeout_s: float = 120.0,
    ) -> None:
        self.python = str(python)
        self.work = work
        self.tokens = dict(tokens or {TOKEN: USER})
        self.members = dict(members or {USER: frozenset({COLLAB})})
        self.run_timeout_s = run_timeout_s
        self.simulator = "nest"
        """What replaces the command's simulator argument (anything else makes scripts fail)."""
        self.release = threading.Event()
        """Jobs stay ``submitted`` until this is set (it is, at first)."""
        self.release.set()
        self.down = threading.Event()
        """While set, every request but ``GET /`` answers 503 ``{"error": ...}``, as the queue
        does when its status is ``down``."""
        self.jobs: dict[int, dict[str, Any]] = {}
        self.submitted: list[dict[str, Any]] = []
        """The bodies of accepted ``POST /jobs/`` requests."""
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request."""
        self.objects: dict[tuple[str, str], bytes] = {}
        self._logs: dict[int, str] = {}
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._files: dict[int, Path] = {}
        self._lock = threading.Lock()
        self._next_id = 4100
        self._secret = secrets.token_bytes(16)
        self._closing = threading.Event()
        self._runners: list[threading.Thread] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- life ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def data_proxy_url(self) -> str:
        return f"{self.url}/data-proxy"

    def start(self) -> StandinQueue:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self.release.set()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.kill()
        for runner in self._runners:
            runner.join(10)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> StandinQueue:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self, job_id: str | int) -> str:
        with self._lock:
            return str(self.jobs[int(job_id)]["status"])

    # --- HTTP ------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        queue = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                split = urllib.parse.urlsplit(self.path)
                queue.requests.append((method, split.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    status, content, kind = queue._route(
                        method, split.path, urllib.parse.parse_qs(split.query), body, self.headers
                    )
                except _Answer as answer:
                    status, kind = answer.status, "application/json"
                    key = "error" if answer.status == 503 else "detail"
                    content = json.dumps({key: answer.detail}).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler

    def _user(self, headers: Message) -> str:
        value = headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Answer(403, "Not authenticated")
        user = self.tokens.get(token.strip())
        if user is None:
            raise _Answer(401, "Token may have expired")
        return user

    def _route(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: bytes,
        headers: Message,
    ) -> tuple[int, bytes, str]:
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")] if path != "/" else []
        if parts[:1] == ["temp-upload"] and method == "PUT":
            return self._store(parts[1:], query, body)
        if parts[:1] == ["data"] and method == "GET":
            return self._output_file(parts[1:])
        if parts and self.down.is_set():
            raise _Answer(503, "the service is down for maintenance")
        if not parts and method == "GET":
            about = {"about": "stand-in of the EBRAINS neuromorphic job queue", "version": "3"}
            return _json(200, about)
        user = self._user(headers)
        if parts[:3] == ["data-proxy", "v1", "buckets"] and len(parts) >= 5:
            return self._bucket(method, user, parts[3], "/".join(parts[4:]))
        if parts == ["jobs"] and method == "POST":
            return self._submit(user, body)
        if parts == ["jobs"] and method == "GET":
            return self._query(user, query)
        if len(parts) >= 2 and parts[0] == "jobs":
            job = self._visible(user, parts[1])
            if len(parts) == 2 and method == "GET":
                with_log = query.get("with_log", ["false"])[0].lower() == "true"
                return _json(200, self._job_view(job, with_log=with_log))
            if len(parts) == 2 and method == "DELETE":
                self._remove(job)
                return _json(200, None)
            if parts[2:] == ["log"] and method == "GET":
                with self._lock:
                    text = self._logs.get(job["id"], "")
                return 200, text.encode(), "text/plain; charset=utf-8"
        raise _Answer(404, "Not Found")

    # --- the Bucket ------------------------------------------------------------------------

    def _signature(self, bucket: str, name: str) -> str:
        return hmac.new(self._secret, f"{bucket}/{name}".encode(), hashlib.sha256).hexdigest()

    def _bucket(self, method: str, user: str, bucket: str, name: str) -> tuple[int, bytes, str]:
        if bucket not in self.members.get(user, frozenset()):
            raise _Answer(403, f"{user} has no access to bucket {bucket}")
        if method == "PUT":
            quoted = urllib.parse.quote(f"{bucket}/{name}")
            target = f"{self.url}/temp-upload/{quoted}?temp_url_sig={self._signature(bucket, name)}"
            return _json(200, {"url": target})
        if method == "GET":
            with self._lock:
                content = self.objects.get((bucket, name))
            if content is None:
                raise _Answer(404, f"no object {name} in bucket {bucket}")
            return 200, content, "application/octet-stream"
        raise _Answer(405, "Method Not Allowed")

    def _store(
        self, parts: list[str], query: Mapping[str, list[str]], body: bytes
    ) -> tuple[int, bytes, str]:
        if len(parts) < 2:
            raise _Answer(404, "Not Found")
        bucket, name = parts[0], "/".join(parts[1:])
        given = query.get("temp_url_sig", [""])[0]
        if not hmac.compare_digest(given, self._signature(bucket, name)):
            raise _Answer(401, "Temp URL invalid")
        with self._lock:
            self.objects[(bucket, name)] = body
        return 201, b"", "text/plain"

    def _object_of(self, code: str) -> tuple[str, str] | None:
        """(bucket, name) of a code address in this data-proxy's Buckets, if it is one."""
        prefix = f"{self.data_proxy_url}/v1/buckets/"
        if not code.startswith(prefix):
            return None
        bucket, _, name = urllib.parse.unquote(code[len(prefix) :]).partition("/")
        return bucket, name

    # --- jobs ------------------------------------------------------------------------------

    def _submit(self, user: str, body: bytes) -> tuple[int, bytes, str]:
        try:
            data = json.loads(body)
        except ValueError:
            raise _Answer(
                422, [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]
            ) from None
        problems = _body_problems(data)
        if problems:
            raise _Answer(422, problems)
        if data["collab"] not in self.members.get(user, frozenset()):
            raise _Answer(
                404, "You do not have access to this collab or there is no collab with this id"
            )
        if data["hardware_platform"] not in QUOTA_PLATFORMS:
            raise _Answer(403, "You do not have sufficient compute quota to submit this job")
        with self._lock:
            job_id = self._next_id
            self._next_id += 1
            job = {
                "id": job_id,
                "code": data["code"],
                "command": data.get("command"),
                "collab": data["collab"],
                "input_data": data.get("input_data"),
                "hardware_platform": data["hardware_platform"],
                "hardware_config": data.get("hardware_config"),
                "tags": list(data.get("tags") or []),
                "user_id": user,
                "status": "submitted",
                "timestamp_submission": _now(),
                "resource_uri": f"/jobs/{job_id}",
            }
            self.jobs[job_id] = job
            self.submitted.append(data)
            self._logs[job_id] = ""
        runner = threading.Thread(target=self._run, args=(job_id,), daemon=True)
        self._runners.append(runner)
        runner.start()
        return _json(201, self._job_view(job, with_log=False))

    def _visible(self, user: str, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self.jobs.get(int(job_id)) if job_id.isdigit() else None
        if job is None or (
            job["user_id"] != user and job["collab"] not in self.members.get(user, frozenset())
        ):
            raise _Answer(
                404, f"Either there is no job with id {job_id}, or you do not have access to it"
            )
        return job

    def _job_view(self, job: Mapping[str, Any], *, with_log: bool) -> dict[str, Any]:
        with self._lock:
            view = {k: v for k, v in job.items() if v is not None}
            if with_log:
                view["log"] = self._logs.get(job["id"], "")
        return view

    def _query(self, user: str, query: Mapping[str, list[str]]) -> tuple[int, bytes, str]:
        collabs = query.get("collab", [])
        if any(c not in self.members.get(user, frozenset()) for c in collabs):
            raise _Answer(403, f"You do not have permission to view collab {collabs[0]}")
        tags, statuses = set(query.get("tags", [])), set(query.get("status", []))
        with self._lock:
            found = [
                job
                for job in self.jobs.values()
                if job["status"] != "removed"
                and (job["collab"] in collabs if collabs else job["user_id"] == user)
                and tags <= set(job["tags"])
                and (not statuses or job["status"] in statuses)
            ]
        size = int(query.get("size", ["10"])[0])
        return _json(200, [self._job_view(job, with_log=False) for job in found[:size]])

    def _remove(self, job: dict[str, Any]) -> None:
        with self._lock:
            job["status"] = "removed"
            proc = self._procs.get(job["id"])
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()

    def _output_file(self, parts: list[str]) -> tuple[int, bytes, str]:
        if len(parts) < 3 or not parts[1].startswith("job_") or not parts[1][4:].isdigit():
            raise _Answer(404, "Not Found")
        with self._lock:
            root = self._files.get(int(parts[1][4:]))
        relative = PurePosixPath(*parts[2:])
        if root is None or ".." in relative.parts:
            raise _Answer(404, "Not Found")
        path = root / relative
        if not path.is_file():
            raise _Answer(404, "Not Found")
        return 200, path.read_bytes(), "application/octet-stream"

    # --- running ---------------------------------------------------------------------------

    def _set(self, job_id: int, **values: Any) -> bool:
        """Update a job unless it was removed (then False)."""
        with self._lock:
            job = self.jobs[job_id]
            if job["status"] == "removed":
                return False
            job.update(values)
            return True

    def _run(self, job_id: int) -> None:
        while not self.release.wait(0.05):
            if self._closing.is_set():
                return
        if self._closing.is_set() or not self._set(job_id, status="running"):
            return
        with self._lock:
            job = dict(self.jobs[job_id])
        folder = self.work / f"job_{job_id}"
        folder.mkdir(parents=True)
        log = f"{_now()}    running\n"
        try:
            self._unpack(job["code"], folder)
        except (ValueError, OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
            self._end(job_id, "error", log + f"cannot get the code: {exc}\n", [])
            return
        tokens = (job.get("command") or "run.py {system}").format(system=self.simulator).split()
        if len(tokens) > 1:
            tokens[1] = self.simulator
        before = {p for p in folder.rglob("*") if p.is_file()}
        proc = subprocess.Popen(
            [self.python, *tokens],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        with self._lock:
            self._procs[job_id] = proc
        try:
            out, err = proc.communicate(timeout=self.run_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        with self._lock:
            del self._procs[job_id]
            self._files[job_id] = folder
        stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        new = sorted(p for p in folder.rglob("*") if p.is_file() and p not in before)
        where = f"{job['collab']}/job_{job_id}"
        files = [
            {
                "url": f"{self.url}/data/{where}/{p.relative_to(folder).as_posix()}",
                "path": f"{where}/{p.relative_to(folder).as_posix()}",
                "content_type": "application/octet-stream",
                "size": p.stat().st_size,
                "hash": hashlib.sha1(p.read_bytes()).hexdigest(),
            }
            for p in new
        ]
        if proc.returncode == 0:
            text = f"{log}{_now()}    finished\n\n{stdout}\n\n{stderr}"
            self._end(job_id, "finished", text, files)
        else:
            text = f"{log}{_now()}    failed\n\n{stderr}\n\nstdout\n------\n\n{stdout}"
            self._end(job_id, "error", text, files)

    def _unpack(self, code: str, folder: Path) -> None:
        found = self._object_of(code)
        if found is None:
            raise ValueError(f"the stand-in fetches code from its own Buckets only, not {code!r}")
        with self._lock:
            content = self.objects.get(found)
        if content is None:
            raise ValueError(f"no object {found[1]!r} in bucket {found[0]!r}")
        if found[1].endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(content)) as zipped:
                for name in zipped.namelist():
                    if name.startswith("/") or ".." in PurePosixPath(name).parts:
                        raise ValueError(f"archive member escapes the folder: {name!r}")
                zipped.extractall(folder)
        elif found[1].endswith((".tar.gz", ".tgz")):
            with tarfile.open(fileobj=io.BytesIO(content)) as tarred:
                tarred.extractall(folder, filter="data")
        else:
            raise ValueError(f"not a .zip or .tar.gz archive: {found[1]!r}")

    def _end(self, job_id: int, status: str, log: str, files: list[dict[str, Any]]) -> None:
        with self._lock:
            job = self.jobs[job_id]
            if job["status"] == "removed":
                return
            job["status"] = status
            job["timestamp_completion"] = _now()
            if files:
                job["output_data"] = {"repository": "stand-in data server", "files": files}
            self._logs[job_id] = log


def _json(status: int, value: object) -> tuple[int, bytes, str]:
    return status, json.dumps(value).encode(), "application/json"


def _body_problems(data: object) -> list[dict[str, Any]]:
    """FastAPI's field problems for a ``POST /jobs/`` body (``SubmittedJob``)."""
    if not isinstance(data, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    problems = []

    def problem(field: str, msg: str, kind: str) -> None:
        problems.append({"loc": ["body", field], "msg": msg, "type": kind})

    for field in ("code", "collab", "hardware_platform"):
        if field not in data:
            problem(field, "Field required", "missing")
        elif not isinstance(data[field], str):
            problem(field, "Input should be a valid string", "string_type")
    if data.get("command") is not None and not isinstance(data["command"], str):
        problem("command", "Input should be a valid string", "string_type")
    tags = data.get("tags")
    if tags is not None:
        if not isinstance(tags, list):
            problem("tags", "Input should be a valid list", "list_type")
        else:
            for tag in tags:
                if not isinstance(tag, str) or not 2 <= len(tag.strip()) <= 100:
                    problem("tags", "String should have 2 to 100 characters", "string_length")
    config = data.get("hardware_config")
    if config is not None and not isinstance(config, dict):
        problem("hardware_config", "Input should be a valid dictionary", "dict_type")
    inputs = data.get("input_data")
    if inputs is not None and not isinstance(inputs, list):
        problem("input_data", "Input should be a valid list", "list_type")
    return problems
