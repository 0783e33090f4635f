"""A small synchronous client of the job service, and readable messages for its errors.

    with JobClient("cluster-login:50051", token, root_certificates=ca_pem) as client:
        text = Path("circuit.yaml").read_text()
        files = circuit_attachments(text, Path("."))  # the files the circuit names
        job = client.submit(text, n_ranks=4, attachments=files)
        for update in client.watch(job.job_id):
            ...

Every call sends ``authorization: Bearer <token>``. TLS is used when ``root_certificates`` is
given (a PEM bundle) or ``tls=True`` (the system's roots).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import cast

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from brainsim.circuit.files import ConnectionFileError
from brainsim.circuit.references import referenced_files_of_text
from services.downloads import DownloadError, local_path, receive
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.gen.brainsim.v1 import job_service_pb2_grpc as pb_grpc
from services.live import ActivityFrame, frame_of, selection_messages

__all__ = [
    "DEFAULT_ADDRESS",
    "AttachmentError",
    "DownloadError",
    "JobClient",
    "circuit_attachments",
    "describe_error",
]

DEFAULT_ADDRESS = "127.0.0.1:50051"
_TRANSPORT_TOO_LARGE = re.compile(r"[Rr]eceived message larger than max \((\d+) vs\. (\d+)\)")
"""gRPC's own answer to a message above a receiver's limit (no ``google.rpc.Status``)."""
_MAX_RECEIVE_BYTES = 8 * 2**20
_UNLIMITED = -1


class AttachmentError(ValueError):
    """A file the circuit names cannot be sent; the message names the field and says why."""


def circuit_attachments(circuit: str | bytes, base_dir: Path) -> dict[str, bytes]:
    """The files a circuit (YAML or JSON text) names, read from ``base_dir`` (the circuit
    file's folder), keyed by their path relative to it: ``attachments`` for
    :meth:`JobClient.submit`.

    Files are located by the simulator's own rules (:mod:`brainsim.circuit.references`), so
    what the server would refuse (absolute paths, ``..`` out of the folder, links out of it,
    the wrong kind of file, a missing file) is refused here, before anything is sent:
    :class:`AttachmentError` names the field (``circuit.stimuli.pixels.data: ...``). A file
    named twice is sent once; a text that cannot be read names no files (the server then says
    what is wrong with it).
    """
    found: dict[str, tuple[str, bytes]] = {}
    for reference in referenced_files_of_text(circuit):
        where = f"circuit.{reference.field}"
        try:
            resolved = reference.resolve(os.fspath(base_dir))
        except ConnectionFileError as error:
            raise AttachmentError(f"{where}: {error}") from None
        name = reference.relative_path
        if name in found:
            if found[name][0] == resolved:  # both real paths
                continue
            raise AttachmentError(
                f"{where}: {reference.name!r} and another reference both lie at {name!r} in the "
                "job's folder but are different files here (through a link)"
            )
        try:
            content = Path(resolved).read_bytes()
        except OSError as error:
            raise AttachmentError(
                f"{where}: cannot read {reference.name!r}: {error.strerror or error}"
            ) from None
        found[name] = (resolved, content)
    return {name: content for name, (_, content) in found.items()}


def describe_error(error: grpc.RpcError) -> str:
    """One readable text for a failed call: code, message, and every field violation or limit."""
    code = error.code()
    name = code.name if code is not None else "UNKNOWN"
    # Errors raised by calls are also grpc.Call objects (with the trailing metadata).
    call = cast(grpc.Call, error)
    status = rpc_status.from_call(call) if hasattr(call, "trailing_metadata") else None
    if status is None:
        if code is grpc.StatusCode.UNAVAILABLE:
            return f"UNAVAILABLE: cannot reach the server ({error.details()})"
        too_large = _TRANSPORT_TOO_LARGE.search(error.details() or "")
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED and too_large is not None:
            # Refused by gRPC before the service saw it: the same answer as the service's own.
            size, limit = too_large.groups()
            return (
                f"{name}: the request is too large\n  request_bytes: {size} bytes, this server "
                f"takes at most {limit} in one request (the circuit and its attachments together)"
            )
        return f"{name}: {error.details()}"
    lines = [f"{name}: {status.message.splitlines()[0] if status.message else ''}"]
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            lines += [f"  {v.subject}: {v.description}" for v in quota.violations]
    return "\n".join(lines)


class JobClient:
    """Calls ``brainsim.v1.JobService`` (see ``proto/brainsim/v1/job_service.proto``)."""

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        token: str | None = None,
        *,
        root_certificates: bytes | None = None,
        tls: bool = False,
        timeout_s: float = 30.0,
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", _MAX_RECEIVE_BYTES),
            # Submissions carry attachments: the server's max_message_bytes decides.
            ("grpc.max_send_message_length", _UNLIMITED),
        ]
        if tls or root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates)
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._stub = pb_grpc.JobServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout_s = timeout_s
        self.address = address

    def __enter__(self) -> JobClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def submit(
        self,
        circuit: str,
        *,
        n_ranks: int = 1,
        target: pb.Target.ValueType = pb.TARGET_LOCAL,
        duration_ms: float | None = None,
        seed: int | None = None,
        time_limit_s: float | None = None,
        partition: str = "",
        account: str = "",
        validate_only: bool = False,
        attachments: Mapping[str, bytes] | Iterable[tuple[str, bytes]] = (),
        checkpoint_every_ms: float | None = None,
        max_retries: int = 0,
        ebrains_token: str = "",
        ebrains_collab: str = "",
    ) -> pb.Job:
        """Submit a circuit document (YAML/JSON text); returns the queued ``Job``.

        ``ebrains_token`` and ``ebrains_collab``: the EBRAINS targets' credentials (empty:
        the server's own, where it has them).

        ``attachments``: the files the circuit names, as ``{path relative to the circuit:
        content}`` (see :func:`circuit_attachments`) or ``(path, content)`` pairs; each is sent
        with its SHA-256, and the server stores them in the job's folder next to the circuit.
        """
        pairs = attachments.items() if isinstance(attachments, Mapping) else attachments
        request = pb.SubmitJobRequest(
            circuit=circuit,
            n_ranks=n_ranks,
            target=target,
            slurm=pb.SlurmOptions(partition=partition, account=account),
            validate_only=validate_only,
            max_retries=max_retries,
            attachments=[
                pb.Attachment(
                    path=path, content=content, sha256=hashlib.sha256(content).hexdigest()
                )
                for path, content in pairs
            ],
        )
        if duration_ms is not None:
            request.duration_ms = duration_ms
        if seed is not None:
            request.seed = seed
        if checkpoint_every_ms is not None:
            request.checkpoint_every_ms = checkpoint_every_ms
        if ebrains_token or ebrains_collab:
            request.ebrains.CopyFrom(pb.EbrainsOptions(token=ebrains_token, collab=ebrains_collab))
        if time_limit_s is not None:
            whole = int(time_limit_s)
            request.time_limit.CopyFrom(
                Duration(seconds=whole, nanos=round((time_limit_s - whole) * 1e9))
            )
        return self._stub.SubmitJob(request, metadata=self._metadata, timeout=self._timeout_s).job

    def get(self, job_id: str) -> pb.Job:
        """The ``Job`` with this id."""
        return self._stub.GetJob(
            pb.GetJobRequest(job_id=job_id), metadata=self._metadata, timeout=self._timeout_s
        ).job

    def list_jobs(
        self, states: Iterable[pb.JobState.ValueType] = (), page_size: int = 0
    ) -> Iterator[pb.Job]:
        """The caller's jobs, newest first (following pages as needed)."""
        token = ""
        while True:
            request = pb.ListJobsRequest(page_size=page_size, page_token=token, states=list(states))
            response = self._stub.ListJobs(
                request, metadata=self._metadata, timeout=self._timeout_s
            )
            yield from response.jobs
            token = response.next_page_token
            if not token:
                return

    def cancel(self, job_id: str) -> pb.Job:
        """Ask for cancellation; returns the ``Job`` as it is then."""
        return self._stub.CancelJob(
            pb.CancelJobRequest(job_id=job_id), metadata=self._metadata, timeout=self._timeout_s
        ).job

    def validate(self, circuit: str) -> pb.ValidateCircuitResponse:
        """Check a circuit without submitting it (``ValidateCircuitResponse``)."""
        return self._stub.ValidateCircuit(
            pb.ValidateCircuitRequest(circuit=circuit),
            metadata=self._metadata,
            timeout=self._timeout_s,
        )

    def watch(self, job_id: str) -> Iterator[pb.WatchJobResponse]:
        """``WatchJobResponse`` messages until the job has ended (no deadline); the returned
        iterator is also the call (``.cancel()`` stops watching)."""
        return self._stub.WatchJob(pb.WatchJobRequest(job_id=job_id), metadata=self._metadata)

    def activity(
        self,
        job_id: str,
        *,
        bin_ms: float = 0.0,
        populations: Sequence[str] = (),
        neurons: Mapping[str, Iterable[int]] | None = None,
        from_ms: float = 0.0,
        reconnect_s: float = 30.0,
    ) -> Iterator[ActivityFrame]:
        """The job's activity as it runs (``StreamActivity``): an :class:`ActivityFrame` per
        message, until the job has ended. ``bin_ms`` 0 is the server's 10 ms; ``populations``
        empty is every population that records spikes; ``neurons`` maps a population to the
        node ids whose spikes to send.

        A stream that breaks (the server restarts, the network drops) is opened again from the
        last frame's ``next_from_ms``, so no bin is lost or repeated, for up to ``reconnect_s``
        seconds of failed attempts; other errors are raised as ``grpc.RpcError``.
        """
        selections = selection_messages(neurons)
        next_from = from_ms
        failing_since: float | None = None
        while True:
            request = pb.StreamActivityRequest(
                job_id=job_id,
                bin_ms=bin_ms,
                populations=list(populations),
                neurons=selections,
                from_ms=next_from,
            )
            try:
                for message in self._stub.StreamActivity(request, metadata=self._metadata):
                    failing_since = None
                    frame = frame_of(message)
                    next_from = frame.next_from_ms
                    yield frame
                return
            except grpc.RpcError as error:
                code = cast(grpc.Call, error).code()
                if code != grpc.StatusCode.UNAVAILABLE:
                    raise
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since > reconnect_s:
                    raise
                time.sleep(min(1.0, 0.1 + (now - failing_since) / 4))

    def targets(self) -> list[pb.TargetInfo]:
        """Every target, what it supports and whether this server can run jobs on it now."""
        return list(
            self._stub.ListTargets(
                pb.ListTargetsRequest(), metadata=self._metadata, timeout=self._timeout_s
            ).targets
        )

    def health(self, service: str = "") -> str:
        """The server's health status name (``SERVING``, ``NOT_SERVING``, ...)."""
        check = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        response = check(health_pb2.HealthCheckRequest(service=service), timeout=self._timeout_s)
        name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return name

    def delete(self, job_id: str) -> int:
        """Delete an ended job (its folder and its record); returns the bytes freed.
        FAILED_PRECONDITION for a job that has not ended (cancel it first)."""
        response = self._stub.DeleteJob(
            pb.DeleteJobRequest(job_id=job_id), metadata=self._metadata, timeout=self._timeout_s
        )
        return int(response.freed_bytes)

    def logs(
        self,
        job_id: str,
        stream: pb.LogStream.ValueType = pb.LOG_STREAM_STDOUT,
        *,
        follow: bool = False,
        poll_s: float = 1.0,
        max_lines: int = 0,
    ) -> Iterator[pb.LogLine]:
        """The job's log lines (``GetJobLogs``, page after page) from the beginning: standard
        output, standard error or the service's lines. Without ``follow`` it stops at the
        end of what is there; with it, it waits for more (asking every ``poll_s``) until the
        job has ended."""
        cursor = ""
        while True:
            request = pb.GetJobLogsRequest(
                job_id=job_id, stream=stream, cursor=cursor, max_lines=max_lines
            )
            page = self._stub.GetJobLogs(request, metadata=self._metadata, timeout=self._timeout_s)
            yield from page.lines
            cursor = page.next_cursor
            if page.complete:
                return
            if not page.lines:
                if not follow:
                    return
                time.sleep(poll_s)

    def artifacts(self, job_id: str) -> list[pb.Artifact]:
        """What the job's results can be downloaded as (``ListArtifacts``)."""
        response = self._stub.ListArtifacts(
            pb.ListArtifactsRequest(job_id=job_id), metadata=self._metadata, timeout=self._timeout_s
        )
        return list(response.artifacts)

    def download(
        self, job_id: str, name: str, dest_path: Path | str, *, resume: bool = True
    ) -> int:
        """Download artefact ``name`` to ``dest_path``; returns its size. The file appears
        only once complete with the SHA-256 the server sent (:class:`DownloadError`
        otherwise); ``resume`` continues what an earlier, broken-off download left in
        ``<dest_path>.part`` (see :mod:`services.downloads`). No deadline: zipping a large
        recording on the server comes first."""

        def open_stream(offset: int) -> Iterator[pb.DownloadArtifactResponse]:
            request = pb.DownloadArtifactRequest(job_id=job_id, name=name, offset=offset)
            return cast(
                Iterator[pb.DownloadArtifactResponse],
                self._stub.DownloadArtifact(request, metadata=self._metadata),
            )

        return receive(open_stream, name, Path(dest_path), resume=resume)

    def fetch(
        self, job_id: str, out_dir: Path | str, names: Iterable[str] | None = None
    ) -> list[tuple[str, Path, int]]:
        """Download every artefact of the job (or those in ``names``) below ``out_dir``, each
        at its name (``attachments/digits.npy`` -> ``out_dir/attachments/digits.npy``);
        ``(name, path, size)`` of each, in order."""
        wanted = [a.name for a in self.artifacts(job_id)] if names is None else list(names)
        written = []
        for name in wanted:
            path = local_path(Path(out_dir), name)
            written.append((name, path, self.download(job_id, name, path)))
        return written
