"""The ``brainsim.v1.JobService`` servicer: authenticate, check the request, call the manager.

It holds no job state of its own. Every method maps failures to status codes through
:class:`RequestError` and never lets an exception escape as anything but INTERNAL (logged with its
traceback), so no request can take the server down:

* no or unknown bearer token -> UNAUTHENTICATED;
* malformed request, bad attachments or invalid circuit -> INVALID_ARGUMENT with a
  ``google.rpc.BadRequest`` listing every field violation (circuit problems under
  ``circuit.<path in the document>``, attachments as ``attachments[<index>].path``, request
  fields by name: ``seed``, ``duration_ms``, ``job_id``, ...). SubmitJob checks the request's
  fields with the simulator's own functions (:mod:`brainsim.circuit.overrides`), so a job it
  accepts does not fail at launch for them; bytes that are no message of the method are
  refused by :class:`UndecodableRequests` (field ``""``);
* a per-job or per-user limit -> RESOURCE_EXHAUSTED with a ``google.rpc.QuotaFailure``;
* a target that cannot run the job -> FAILED_PRECONDITION;
* an empty or malformed job id -> INVALID_ARGUMENT; well-formed ids of unknown jobs and of
  other users' jobs -> NOT_FOUND (the same answer, so ids leak nothing);
* results (:mod:`services.logs`, :mod:`services.artifacts`): a cursor this server did not give
  -> INVALID_ARGUMENT (``cursor``); an artefact the job does not have -> NOT_FOUND; the
  recording of a job that has not ended -> FAILED_PRECONDITION; an offset past an artefact's
  end -> OUT_OF_RANGE.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar, cast

import grpc
from google.protobuf import any_pb2
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from brainsim import backends
from brainsim.circuit.overrides import duration_problem, seed_problem
from services import artifacts, logs
from services.activity import (
    MAX_BINS_PER_MESSAGE,
    ActivityBinner,
    ActivityPlan,
    plan_activity,
)
from services.auth import Authenticator
from services.config import EbrainsConfig, Limits
from services.ebrains import write_credentials
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.gen.brainsim.v1 import job_service_pb2_grpc as pb_grpc
from services.jobdir import JOB_ID_PATTERN, DataRoot, JobDir, remove_tree, write_files
from services.jobs import Job, LogStream, Target
from services.manager import JobManager
from services.protos import (
    STATE_FROM_PROTO,
    STATE_TO_PROTO,
    TARGET_FROM_PROTO,
    TARGET_TO_PROTO,
    job_to_proto,
    timestamp,
    update_to_proto,
)
from services.store import JobNotEndedError, PageKey, UnknownJobError
from services.validation import (
    Attachment,
    CircuitCheck,
    Violation,
    check_attachments,
    check_circuit,
    check_limits,
)

__all__ = ["MAX_RETRIES", "JobServiceServicer", "RequestError", "UndecodableRequests"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

_SLURM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DEFAULT_PAGE = 100
_MAX_PAGE = 1000
_MAX_DURATION_S = 315_576_000_000
"""The range of a ``google.protobuf.Duration`` (+-10,000 years), in s."""
_MAX_NANOS = 999_999_999
MAX_RETRIES = 10
"""The most retries a job may ask for (``max_retries``)."""
_ACTIVITY_POLL_S = 0.25
"""How often StreamActivity looks at a running job's recording (runs flush about once a
second, so activity reaches a client within about 1.25 s of wall clock)."""
_LOG_STREAMS = {
    pb.LOG_STREAM_UNSPECIFIED: LogStream.STDOUT,
    pb.LOG_STREAM_STDOUT: LogStream.STDOUT,
    pb.LOG_STREAM_STDERR: LogStream.STDERR,
    pb.LOG_STREAM_SERVICE: LogStream.SERVICE,
}
_ARTIFACT_CODES = {
    artifacts.ArtifactNotFoundError: grpc.StatusCode.NOT_FOUND,
    artifacts.ArtifactNotReadyError: grpc.StatusCode.FAILED_PRECONDITION,
    artifacts.OffsetOutOfRangeError: grpc.StatusCode.OUT_OF_RANGE,
}
_COLLAB = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_TOKEN = re.compile(r"[\x21-\x7e]{1,8192}")
"""An OIDC access token: printable ASCII without spaces (a JWT is letters, digits, - _ .)."""


class RequestError(Exception):
    """A request that fails with ``code``; ``details`` are google.rpc detail messages."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = tuple(details)

    def to_status(self) -> Any:
        """As a ``grpc.Status`` (code, message and the details in the trailing metadata)."""
        packed = []
        for detail in self.details:
            message = any_pb2.Any()
            message.Pack(detail)
            packed.append(message)
        status = status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)
        return rpc_status.to_status(status)


def _bad_request(
    message: str,
    violations: Sequence[Violation],
    code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
) -> RequestError:
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.path, description=v.message)
            for v in violations
        ]
    )
    lines = "".join(f"\n  {v.path or '(the request)'}: {v.message}" for v in violations)
    return RequestError(code, message + lines, [detail])


def _quota_failure(message: str, breaches: Sequence[tuple[str, str]]) -> RequestError:
    detail = error_details_pb2.QuotaFailure(
        violations=[
            error_details_pb2.QuotaFailure.Violation(subject=subject, description=description)
            for subject, description in breaches
        ]
    )
    lines = "".join(f"\n  {subject}: {description}" for subject, description in breaches)
    return RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, message + lines, [detail])


def _seconds(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def _time_limit_problem(duration: Duration) -> str | None:
    """What is wrong with a job's wall-clock limit (``None``: nothing)."""
    seconds, nanos = duration.seconds, duration.nanos
    if (
        abs(seconds) > _MAX_DURATION_S
        or abs(nanos) > _MAX_NANOS
        or (seconds > 0 > nanos)
        or (seconds < 0 < nanos)
    ):
        return (
            "not a valid google.protobuf.Duration (seconds within +-315576000000, nanos within "
            f"+-999999999 and of the same sign), got seconds={seconds}, nanos={nanos}"
        )
    if _seconds(duration) <= 0:
        return f"must be positive, got {_seconds(duration):g} s"
    return None


def _watched_fields(job: Job) -> tuple[object, ...]:
    """What of a job a change of makes WatchJob send it again."""
    return (job.state, job.cancel_requested, job.attempt, job.segment)


def _job_id_violation(job_id: str) -> Violation | None:
    """A malformed job id: empty, or not the 12 lowercase hex digits this server gives."""
    if not job_id:
        return Violation("job_id", "is required")
    if not JOB_ID_PATTERN.fullmatch(job_id):
        shown = job_id if len(job_id) <= 40 else job_id[:37] + "..."
        return Violation(
            "job_id", f"must be 12 lowercase hex digits (an id this server gave), got {shown!r}"
        )
    return None


def _encode_page(key: PageKey) -> str:
    raw = json.dumps({"t": key.submit_time, "id": key.job_id}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_page(token: str) -> PageKey | None:
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        key = PageKey(float(data["t"]), str(data["id"]))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _bad_request(
            "invalid request", [Violation("page_token", "not a token this server gave")]
        ) from exc
    return key


@dataclass(frozen=True, slots=True)
class _Undecodable:
    """What a request that is not a valid message of its method decodes to."""

    status: Any
    """The ``grpc.Status`` to answer with."""


class UndecodableRequests(grpc.aio.ServerInterceptor):
    """Answers a request that does not parse as its method's message (broken bytes, a string
    field that is not UTF-8) with INVALID_ARGUMENT and a ``google.rpc.BadRequest`` (field ``""``:
    the request as a whole), where gRPC itself would answer UNKNOWN with the parser's exception.

    Only the methods of ``service`` are wrapped; the authentication and every other check stay
    in the servicer (such a request never reaches it).
    """

    def __init__(self, service: str) -> None:
        self._prefix = f"/{service}/"

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.request_streaming or not method.startswith(self._prefix):
            return handler
        decode = handler.request_deserializer
        if decode is None:
            return handler
        name = method.rpartition("/")[2]

        def tolerant(raw: bytes) -> Any:
            try:
                return decode(raw)
            except Exception as exc:  # DecodeError, or a string field that is not UTF-8
                message = f"the request is not a valid {name} request message"
                refusal = _bad_request(message, [Violation("", f"cannot parse it: {exc}")])
                return _Undecodable(refusal.to_status())

        serialize = handler.response_serializer
        # On an aio server the behaviors are coroutines and async generators.
        unary = cast(Callable[[Any, Context], Awaitable[Any]] | None, handler.unary_unary)
        stream = cast(
            Callable[[Any, Context], AsyncGenerator[Any, None]] | None, handler.unary_stream
        )
        if unary is not None:

            async def checked_unary(request: Any, context: Context) -> Any:
                if isinstance(request, _Undecodable):
                    status = request.status
                    await context.abort(status.code, status.details, status.trailing_metadata)
                return await unary(request, context)

            return grpc.unary_unary_rpc_method_handler(checked_unary, tolerant, serialize)
        if stream is not None:

            async def checked_stream(request: Any, context: Context) -> AsyncIterator[Any]:
                if isinstance(request, _Undecodable):
                    status = request.status
                    await context.abort(status.code, status.details, status.trailing_metadata)
                responses = stream(request, context)
                try:
                    async for response in responses:
                        yield response
                finally:
                    await responses.aclose()

            return grpc.unary_stream_rpc_method_handler(checked_stream, tolerant, serialize)
        return handler


class JobServiceServicer(pb_grpc.JobServiceServicer):
    """``brainsim.v1.JobService`` (register with ``add_JobServiceServicer_to_server``)."""

    def __init__(
        self,
        manager: JobManager,
        authenticator: Authenticator,
        data_root: DataRoot,
        limits: Limits,
        validation_pool: Executor,
        ebrains: EbrainsConfig | None = None,
    ) -> None:
        self._manager = manager
        self._ebrains = ebrains
        self._auth = authenticator
        self._data_root = data_root
        self._limits = limits
        self._validation_pool = validation_pool
        self._results = artifacts.JobResults(data_root)

    # --- shared steps ----------------------------------------------------------------------

    async def _guard(self, context: Context, work: Awaitable[_T]) -> _T:
        """Await ``work``; turn failures into status codes (the server never crashes on a call)."""
        try:
            return await work
        except RequestError as failure:
            status = failure.to_status()
            await context.abort(status.code, status.details, status.trailing_metadata)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception:
            log.exception("unexpected error in a request")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error (see the server log)")
        raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises

    def _user(self, context: Context) -> str:
        user = self._auth.authenticate(context.invocation_metadata())
        if user is None:
            raise RequestError(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or unknown bearer token (metadata 'authorization: Bearer <token>')",
            )
        return user

    async def _owned_job(self, job_id: str, user: str) -> Job:
        malformed = _job_id_violation(job_id)
        if malformed is not None:
            raise _bad_request("invalid request", [malformed])
        job = await self._manager.get(job_id)
        if job is None or job.owner != user:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"job {job_id!r} not found")
        return job

    def _check_size(self, text: str) -> None:
        size = len(text.encode("utf-8"))
        if size > self._limits.max_circuit_bytes:
            breach = f"{size} bytes, this server allows at most {self._limits.max_circuit_bytes}"
            raise _quota_failure("the circuit document is too large", [("circuit_bytes", breach)])

    async def _check_circuit(self, text: str) -> CircuitCheck:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._validation_pool, check_circuit, text)

    def _stage_and_check(
        self,
        request: pb.SubmitJobRequest,
        target: Target,
        attachments: Sequence[Attachment],
        memory_limit_bytes: int | None,
    ) -> tuple[Path, CircuitCheck]:
        """Write the attachments into a new submission folder and validate the circuit there
        (for ``target``, with the request's duration and seed); returns the folder (the caller
        removes it or makes it the job's) and the result."""
        staged = self._data_root.new_submission()
        try:
            write_files(staged, ((a.path, a.content) for a in attachments))
            check = check_circuit(
                request.circuit,
                base_dir=str(staged),
                memory_limit_bytes=memory_limit_bytes,
                backend=target.backend,
                duration_ms=request.duration_ms if request.HasField("duration_ms") else None,
                seed=request.seed if request.HasField("seed") else None,
            )
            return staged, check
        except BaseException:
            remove_tree(staged)
            raise

    async def _staged_check(
        self,
        request: pb.SubmitJobRequest,
        target: Target,
        attachments: Sequence[Attachment],
        memory_limit_bytes: int | None,
    ) -> tuple[Path, CircuitCheck]:
        """:meth:`_stage_and_check` on the validation pool. If the call is cancelled meanwhile
        (the client went away), the folder is removed once the worker is done with it."""
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(
            self._validation_pool,
            self._stage_and_check,
            request,
            target,
            attachments,
            memory_limit_bytes,
        )
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:

            def discard(done: asyncio.Future[tuple[Path, CircuitCheck]]) -> None:
                if not done.cancelled() and done.exception() is None:
                    self._validation_pool.submit(remove_tree, done.result()[0])

            work.add_done_callback(discard)
            raise

    # --- SubmitJob ---------------------------------------------------------------------------

    def _request_violations(self, request: pb.SubmitJobRequest) -> list[Violation]:
        """Every problem with the request's own fields that needs no circuit: the simulator's
        limits (``brainsim.circuit.overrides``) and the service's."""
        found = []
        if not request.circuit.strip():
            found.append(Violation("circuit", "is empty"))
        if request.n_ranks < 0:
            found.append(Violation("n_ranks", f"must be >= 1 (0 means 1), got {request.n_ranks}"))
        if request.target not in TARGET_FROM_PROTO:
            found.append(Violation("target", f"unknown target {request.target}"))
        else:
            found += self._target_violations(request, TARGET_FROM_PROTO[request.target])
        if request.HasField("duration_ms"):
            problem = duration_problem(request.duration_ms, None)
            if problem is not None:
                found.append(Violation("duration_ms", problem))
        if request.HasField("seed"):
            problem = seed_problem(request.seed)
            if problem is not None:
                found.append(Violation("seed", problem))
        if request.HasField("checkpoint_every_ms"):
            every = request.checkpoint_every_ms
            if not (math.isfinite(every) and every > 0):
                found.append(
                    Violation("checkpoint_every_ms", f"must be a finite number > 0, got {every!r}")
                )
        if not 0 <= request.max_retries <= MAX_RETRIES:
            found.append(
                Violation("max_retries", f"must be 0 to {MAX_RETRIES}, got {request.max_retries}")
            )
        if request.HasField("time_limit"):
            problem = _time_limit_problem(request.time_limit)
            if problem is not None:
                found.append(Violation("time_limit", problem))
        for name in ("partition", "account"):
            value = getattr(request.slurm, name)
            if value and not _SLURM_NAME.fullmatch(value):
                found.append(
                    Violation(f"slurm.{name}", "letters, digits and _ . - only (at most 64)")
                )
        return found

    def _target_violations(self, request: pb.SubmitJobRequest, target: Target) -> list[Violation]:
        """The request fields a target does not take: several ranks, checkpoints (targets other
        than brainsim's engine), EBRAINS options (other targets), bad or missing credentials."""
        found = []
        if target.backend != "numba_mpi":
            if request.n_ranks > 1:
                found.append(
                    Violation("n_ranks", f"target {target.value} runs in one process: 0 or 1")
                )
            if request.HasField("checkpoint_every_ms"):
                message = f"target {target.value} writes no checkpoints"
                found.append(Violation("checkpoint_every_ms", message))
        options = request.ebrains
        if not target.ebrains:
            if request.HasField("ebrains"):
                found.append(Violation("ebrains", "is only for the EBRAINS targets"))
            return found
        config = self._ebrains
        if config is None:  # no such target here: FAILED_PRECONDITION says so
            return found
        if options.token and not _TOKEN.fullmatch(options.token):
            found.append(Violation("ebrains.token", "printable ASCII without spaces, at most 8192"))
        elif not options.token and config.token_file is None:
            message = "required: this server has no EBRAINS token of its own"
            found.append(Violation("ebrains.token", message))
        if options.collab and not _COLLAB.fullmatch(options.collab):
            message = "letters, digits and _ . - only (at most 100)"
            found.append(Violation("ebrains.collab", message))
        elif not options.collab and not config.collab:
            found.append(Violation("ebrains.collab", "required: this server has no default collab"))
        return found

    def _check_target(self, request: pb.SubmitJobRequest) -> Target:
        target = TARGET_FROM_PROTO[request.target]
        reason = self._manager.unavailable_reason(target)
        if reason is not None:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"target {target.value} cannot run jobs: {reason}",
            )
        return target

    async def _submit(self, request: pb.SubmitJobRequest, context: Context) -> pb.SubmitJobResponse:
        user = self._user(context)
        self._check_size(request.circuit)
        attachments = [Attachment(a.path, a.content, a.sha256) for a in request.attachments]
        violations = self._request_violations(request)
        if attachments:  # hashing up to max_attachment_bytes: not on the event loop
            violations += await asyncio.get_running_loop().run_in_executor(
                self._validation_pool, check_attachments, attachments, self._limits
            )
        if violations:
            raise _bad_request("invalid request", violations)
        target = self._check_target(request)
        # A one-rank run on this machine checks its memory before it starts: so does the check.
        local_one_rank = target is Target.LOCAL and request.n_ranks <= 1
        memory_limit = None if local_one_rank else 0
        staged, check = await self._staged_check(request, target, attachments, memory_limit)
        try:
            response = await self._accept(request, user, target, check, staged)
        except BaseException:
            await asyncio.to_thread(remove_tree, staged)  # a refused submission leaves nothing
            raise
        if request.validate_only:
            await asyncio.to_thread(remove_tree, staged)
        return response

    async def _accept(
        self,
        request: pb.SubmitJobRequest,
        user: str,
        target: Target,
        check: CircuitCheck,
        staged: Path,
    ) -> pb.SubmitJobResponse:
        """The rest of :meth:`_submit` once the circuit was checked against its files in
        ``staged``: limits, the user's active jobs, then the job (unless ``validate_only``)."""
        if not check.valid:
            raise _bad_request(
                f"invalid circuit ({len(check.violations)} problem(s))",
                [Violation(f"circuit.{v.path}".rstrip("."), v.message) for v in check.violations],
            )
        if request.HasField("duration_ms"):
            problem = duration_problem(request.duration_ms, check.dt_ms)
            if problem is not None:
                raise _bad_request("invalid request", [Violation("duration_ms", problem)])
        if check.target_violations:
            raise _bad_request(
                f"target {target.value} cannot express this circuit "
                f"({len(check.target_violations)} violation(s))",
                [Violation(f"circuit.{v.path}", v.message) for v in check.target_violations],
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        checkpoint_every_ms = None
        if request.HasField("checkpoint_every_ms"):
            checkpoint_every_ms = request.checkpoint_every_ms
            if checkpoint_every_ms < check.dt_ms:
                message = (
                    f"must be at least the circuit's dt_ms ({check.dt_ms:g}), "
                    f"got {checkpoint_every_ms!r}"
                )
                raise _bad_request("invalid request", [Violation("checkpoint_every_ms", message)])
        n_ranks = request.n_ranks or 1
        duration_ms = request.duration_ms if request.HasField("duration_ms") else check.duration_ms
        time_limit_s = _seconds(request.time_limit) if request.HasField("time_limit") else None
        breaches = check_limits(
            self._limits,
            n_ranks=n_ranks,
            duration_ms=duration_ms,
            time_limit_s=time_limit_s,
            circuit=check,
        )
        if breaches:
            raise _quota_failure(
                "the job exceeds this server's limits",
                [(b.subject, b.description) for b in breaches],
            )
        limit = self._limits.max_active_jobs_per_user
        has_room = (
            self._manager.active_count(user) < limit
            if request.validate_only
            else self._manager.reserve(user, limit)
        )
        if not has_room:
            raise _quota_failure(
                "too many active jobs",
                [("active_jobs", f"{user} has {limit} queued or running jobs, the most allowed")],
            )
        job = Job(
            job_id="" if request.validate_only else self._manager.new_job_id(),
            owner=user,
            target=target,
            n_ranks=n_ranks,
            circuit_name=check.circuit_name,
            duration_ms=duration_ms,
            seed=request.seed if request.HasField("seed") else check.seed,
            submit_time=self._manager.now(),
            time_limit_s=time_limit_s,
            slurm_partition=request.slurm.partition,
            slurm_account=request.slurm.account,
            checkpoint_every_ms=checkpoint_every_ms,
            max_retries=request.max_retries,
        )
        if not request.validate_only:
            if target.ebrains and (request.ebrains.token or request.ebrains.collab):
                await asyncio.to_thread(
                    write_credentials,
                    JobDir(staged).credentials,
                    request.ebrains.token,
                    request.ebrains.collab,
                )
            job = await self._manager.submit(job, request.circuit, staged)
            log.info(
                "job %s submitted by %s (%s, %d ranks, %d attachment(s))",
                job.job_id,
                user,
                target.value,
                n_ranks,
                len(request.attachments),
            )
        return pb.SubmitJobResponse(job=job_to_proto(job, self._data_root))

    async def SubmitJob(
        self, request: pb.SubmitJobRequest, context: Context
    ) -> pb.SubmitJobResponse:
        """See ``proto/brainsim/v1/job_service.proto``."""
        return await self._guard(context, self._submit(request, context))

    # --- GetJob, ListJobs, CancelJob -------------------------------------------------------

    async def _get(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        job = await self._owned_job(request.job_id, self._user(context))
        return pb.GetJobResponse(job=job_to_proto(job, self._data_root))

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        """See ``proto/brainsim/v1/job_service.proto``."""
        return await self._guard(context, self._get(request, context))

    async def _list(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        user = self._user(context)
        if request.page_size < 0:
            raise _bad_request("invalid request", [Violation("page_size", "must be >= 0")])
        unknown = [s for s in request.states if s not in STATE_FROM_PROTO]
        if unknown:
            raise _bad_request(
                "invalid request", [Violation("states", f"unknown states {unknown}")]
            )
        limit = min(request.page_size or _DEFAULT_PAGE, _MAX_PAGE)
        states = frozenset(STATE_FROM_PROTO[s] for s in request.states)
        jobs = await self._manager.list_jobs(
            user, states, limit + 1, _decode_page(request.page_token)
        )
        next_token = ""
        if len(jobs) > limit:
            jobs = jobs[:limit]
            next_token = _encode_page(PageKey(jobs[-1].submit_time, jobs[-1].job_id))
        return pb.ListJobsResponse(
            jobs=[job_to_proto(job, self._data_root) for job in jobs], next_page_token=next_token
        )

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        """See ``proto/brainsim/v1/job_service.proto``."""
        return await self._guard(context, self._list(request, context))

    async def _cancel(self, request: pb.CancelJobRequest, context: Context) -> pb.CancelJobResponse:
        user = self._user(context)
        job = await self._owned_job(request.job_id, user)
        if not job.state.terminal:
            await self._manager.cancel(job.job_id, user)
            job = await self._owned_job(request.job_id, user)
            log.info("job %s: cancel requested by %s", job.job_id, user)
        return pb.CancelJobResponse(job=job_to_proto(job, self._data_root))

    async def CancelJob(
        self, request: pb.CancelJobRequest, context: Context
    ) -> pb.CancelJobResponse:
        """See ``proto/brainsim/v1/job_service.proto``."""
        return await self._guard(context, self._cancel(request, context))

    # --- DeleteJob ---------------------------------------------------------------------------

    async def _delete(self, request: pb.DeleteJobRequest, context: Context) -> pb.DeleteJobResponse:
        user = self._user(context)
        job = await self._owned_job(request.job_id, user)
        refusal = RequestError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"job {job.job_id} has not ended ({job.state.value}): cancel it first",
        )
        if not job.state.terminal:
            raise refusal
        try:
            freed = await self._manager.delete(job.job_id, user, f"deleted by {user}")
        except UnknownJobError:  # deleted meanwhile (by another call or the retention policy)
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"job {job.job_id!r} not found") from None
        except JobNotEndedError:
            raise refusal from None
        log.info("job %s: deleted by %s (%d bytes freed)", job.job_id, user, freed)
        return pb.DeleteJobResponse(freed_bytes=freed)

    async def DeleteJob(
        self, request: pb.DeleteJobRequest, context: Context
    ) -> pb.DeleteJobResponse:
        """See ``proto/brainsim/v1/job_service.proto``."""
        return await self._guard(context, self._delete(request, context))

    # --- ListTargets ---------------------------------------------------------------------------

    async def _targets(
        self, request: pb.ListTargetsRequest, context: Context
    ) -> pb.ListTargetsResponse:
        self._user(context)
        found = []
        for target, value in TARGET_TO_PROTO.items():
            reason = self._manager.unavailable_reason(target)
            c = backends.backend(target.backend).capabilities()
            found.append(
                pb.TargetInfo(
                    target=value,
                    name=target.value,
                    summary=c.summary,
                    available=reason is None,
                    unavailable_reason=reason or "",
                    neuron_models=c.neuron_models,
                    synapse_models=c.synapse_models,
                    plasticity=c.plasticity,
                    stimuli=c.stimuli,
                    connection_rules=c.connection_rules,
                    delays=c.delays,
                    output=c.output,
                    simulates=target.simulates,
                )
            )
        return pb.ListTargetsResponse(targets=found)

    async def ListTargets(
        self, request: pb.ListTargetsRequest, context: Context
    ) -> pb.ListTargetsResponse:
        """See ``proto/brainsim/v1/job_service.proto``."""
        return await self._guard(context, self._targets(request, context))

    # --- ValidateCircuit -----------------------------------------------------------------------

    async def _validate(
        self, request: pb.ValidateCircuitRequest, context: Context
    ) -> pb.ValidateCircuitResponse:
        self._user(context)
        self._check_size(request.circuit)
        check = await self._check_circuit(request.circuit)
        response = pb.ValidateCircuitResponse(
            valid=check.valid,
            violations=[pb.Violation(path=v.path, message=v.message) for v in check.violations],
        )
        if check.valid:
            response.estimate.CopyFrom(
                pb.ResourceEstimate(
                    n_neurons=check.n_neurons,
                    n_synapses=check.n_synapses,
                    bytes_total=check.bytes_total,
                )
            )
            response.circuit_name = check.circuit_name
            response.duration_ms = check.duration_ms
        return response

    async def ValidateCircuit(
        self, request: pb.ValidateCircuitRequest, context: Context
    ) -> pb.ValidateCircuitResponse:
        """See ``proto/brainsim/v1/job_service.proto``."""
        return await self._guard(context, self._validate(request, context))

    # --- GetJobLogs, ListArtifacts, DownloadArtifact (services.logs, services.artifacts) -----

    async def _logs(self, request: pb.GetJobLogsRequest, context: Context) -> pb.GetJobLogsResponse:
        job = await self._owned_job(request.job_id, self._user(context))
        stream = _LOG_STREAMS.get(request.stream)
        problems = []
        if stream is None:
            problems.append(Violation("stream", f"unknown log stream {request.stream}"))
        if request.max_lines < 0:
            problems.append(Violation("max_lines", f"must be >= 0, got {request.max_lines}"))
        if stream is None or problems:
            raise _bad_request("invalid request", problems)
        max_lines = logs.page_size(request.max_lines)
        ended = job.state.terminal  # before reading: what ended before is in what is read
        try:
            if stream is LogStream.SERVICE:
                events = await self._manager.events(job.job_id)
                page = logs.service_page(job, events, request.cursor, max_lines, ended)
            else:
                job_dir = self._data_root.job(job.job_id)
                path = job_dir.stdout if stream is LogStream.STDOUT else job_dir.stderr
                page = await asyncio.to_thread(
                    logs.file_page, job.job_id, stream, path, request.cursor, max_lines, ended
                )
        except logs.CursorError as error:
            raise _bad_request("invalid request", [Violation("cursor", str(error))]) from None
        proto_stream = pb.LOG_STREAM_STDOUT if stream is LogStream.STDOUT else request.stream
        lines = []
        for line in page.lines:
            message = pb.LogLine(stream=proto_stream, text=line.text)
            if line.time is not None:
                message.time.CopyFrom(timestamp(line.time))
            lines.append(message)
        return pb.GetJobLogsResponse(
            lines=lines, next_cursor=page.next_cursor, complete=page.complete
        )

    async def GetJobLogs(
        self, request: pb.GetJobLogsRequest, context: Context
    ) -> pb.GetJobLogsResponse:
        """See ``proto/brainsim/v1/job_service.proto``."""
        return await self._guard(context, self._logs(request, context))

    async def _artifacts(
        self, request: pb.ListArtifactsRequest, context: Context
    ) -> pb.ListArtifactsResponse:
        job = await self._owned_job(request.job_id, self._user(context))
        found = await self._results.list(job)
        return pb.ListArtifactsResponse(
            artifacts=[
                pb.Artifact(
                    name=a.name,
                    size_bytes=a.size_bytes,
                    media_type=a.media_type,
                    description=a.description,
                )
                for a in found
            ]
        )

    async def ListArtifacts(
        self, request: pb.ListArtifactsRequest, context: Context
    ) -> pb.ListArtifactsResponse:
        """See ``proto/brainsim/v1/job_service.proto``."""
        return await self._guard(context, self._artifacts(request, context))

    async def _open_artifact(
        self, request: pb.DownloadArtifactRequest, context: Context
    ) -> artifacts.Download:
        job = await self._owned_job(request.job_id, self._user(context))
        if request.offset < 0:
            raise _bad_request(
                "invalid request", [Violation("offset", f"must be >= 0, got {request.offset}")]
            )
        try:
            return await self._results.open(job, request.name, request.offset)
        except artifacts.ArtifactError as error:
            raise RequestError(_ARTIFACT_CODES[type(error)], str(error)) from None

    async def DownloadArtifact(
        self, request: pb.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[pb.DownloadArtifactResponse]:
        """See ``proto/brainsim/v1/job_service.proto``."""
        download = await self._guard(context, self._open_artifact(request, context))
        try:
            chunks = download.chunks()
            while True:
                chunk = await self._guard(context, anext(chunks, None))
                if chunk is None:
                    return
                offset, data, digest = chunk
                yield pb.DownloadArtifactResponse(
                    data=data, offset=offset, total_bytes=download.size, sha256=digest
                )
        finally:
            download.close()

    # --- WatchJob --------------------------------------------------------------------------

    async def _watched_job(self, request: pb.WatchJobRequest, context: Context) -> Job:
        return await self._owned_job(request.job_id, self._user(context))

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.WatchJobResponse]:
        """See ``proto/brainsim/v1/job_service.proto``."""
        job = await self._guard(context, self._watched_job(request, context))
        subscription = self._manager.subscribe(job.job_id)
        try:
            # Subscribed before the snapshot: a change in between arrives twice, never not at
            # all. A job update is sent only when it changes what a watcher sees of the job's
            # state (state, cancel_requested, the attempt and run), so that arrives once, and
            # the initial QUEUED is not followed by another QUEUED when the job is handed to
            # its target.
            current = await self._manager.current(job.job_id)
            job = current if current is not None else job
            yield pb.WatchJobResponse(job=job_to_proto(job, self._data_root))
            shown = _watched_fields(job)
            while not job.state.terminal:
                update = await subscription.get()
                if isinstance(update, Job):
                    job = update
                    if _watched_fields(job) == shown:
                        continue
                    shown = _watched_fields(job)
                yield update_to_proto(update, self._data_root)
        finally:
            self._manager.unsubscribe(job.job_id, subscription)

    # --- StreamActivity ----------------------------------------------------------------------

    async def _activity_plan(
        self, request: pb.StreamActivityRequest, context: Context
    ) -> tuple[Job, ActivityPlan]:
        job = await self._owned_job(request.job_id, self._user(context))
        circuit = self._data_root.job(job.job_id).circuit
        loop = asyncio.get_running_loop()
        plan, violations, precondition = await loop.run_in_executor(
            self._validation_pool, plan_activity, circuit, request
        )
        if violations:
            raise _bad_request("invalid request", violations)
        if precondition is not None:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, precondition)
        assert plan is not None
        return job, plan

    def _activity_message(
        self, job: Job, binner: ActivityBinner, bins: Sequence[pb.ActivityBin], next_from_ms: float
    ) -> pb.StreamActivityResponse:
        started = job.start_time
        wall_s = (
            0.0 if started is None else max(0.0, (job.end_time or self._manager.now()) - started)
        )
        return pb.StreamActivityResponse(
            bins=bins,
            state=STATE_TO_PROTO[job.state],
            progress=pb.Progress(
                simulated_ms=binner.simulated_ms, duration_ms=job.duration_ms, wall_s=wall_s
            ),
            next_from_ms=next_from_ms,
        )

    async def _activity(
        self, job: Job, plan: ActivityPlan
    ) -> AsyncGenerator[pb.StreamActivityResponse | RequestError, None]:
        """The stream's messages: one at once, then one whenever the recording or the job's
        state moved on, until the job has ended and every bin was sent. A failure to go on is
        yielded as the RequestError to end the call with."""
        binner = ActivityBinner(plan)
        store = self._data_root.job(job.job_id).recording
        shown: tuple[object, ...] | None = None
        while True:
            current = await self._manager.current(job.job_id)
            if current is None:  # deleted meanwhile
                yield RequestError(grpc.StatusCode.NOT_FOUND, f"job {job.job_id!r} not found")
                return
            job = current
            ended = job.state.terminal
            bins = await asyncio.to_thread(binner.poll, store, ended) or []
            if ended and not binner.readable:
                yield RequestError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"job {job.job_id} ended ({job.state.value}) without a readable recording"
                    + (f": {job.reason}" if job.reason else ""),
                )
                return
            now = (job.state, binner.simulated_ms)
            for first in range(0, max(len(bins), 1), MAX_BINS_PER_MESSAGE):
                batch = bins[first : first + MAX_BINS_PER_MESSAGE]
                after = first + MAX_BINS_PER_MESSAGE
                # A reconnecting client continues at the first bin this message does not hold.
                next_from = bins[after].start_ms if after < len(bins) else binner.next_from_ms()
                if batch or now != shown:
                    yield self._activity_message(job, binner, batch, next_from)
            shown = now
            if ended:
                return
            await asyncio.sleep(_ACTIVITY_POLL_S)

    async def StreamActivity(
        self, request: pb.StreamActivityRequest, context: Context
    ) -> AsyncIterator[pb.StreamActivityResponse]:
        """See ``proto/brainsim/v1/job_service.proto``."""
        job, plan = await self._guard(context, self._activity_plan(request, context))
        messages = self._activity(job, plan)
        try:
            while True:
                item = await self._guard(context, anext(messages, None))
                if item is None:
                    return
                if isinstance(item, RequestError):
                    status = item.to_status()
                    await context.abort(status.code, status.details, status.trailing_metadata)
                yield item
        finally:
            await messages.aclose()
