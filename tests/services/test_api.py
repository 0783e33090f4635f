"""The gRPC API on a real loopback server: authentication, per-user visibility, validation errors
with field paths, limits, targets, health, reflection, TLS, and robustness against bad requests."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from services.client import describe_error
from services.config import ConfigError, load_config
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.server import SERVICE_NAME
from tests.services.conftest import ALICE, BOB, ServerThread, wait_for

Rpc = Callable[[], Any]


def rpc_error(call: Rpc) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return {v.field: v.description for v in bad.field_violations}
    raise AssertionError("no BadRequest detail")


def quota_subjects(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            return {v.subject: v.description for v in quota.violations}
    raise AssertionError("no QuotaFailure detail")


@pytest.fixture
def held(make_server: Callable[..., ServerThread]) -> ServerThread:
    """A server that queues local jobs but never starts them (no local slots)."""
    return make_server(local={"max_concurrent_jobs": 0})


def test_calls_without_a_valid_token_are_unauthenticated(
    held: ServerThread, tiny_circuit: str
) -> None:
    for token in (None, "not-a-known-token-at-all"):
        with held.client(token) as client:
            calls: list[Rpc] = [
                lambda c=client: c.submit(tiny_circuit),
                lambda c=client: c.get("0" * 12),
                lambda c=client: list(c.list_jobs()),
                lambda c=client: c.cancel("0" * 12),
                lambda c=client: c.validate(tiny_circuit),
                lambda c=client: list(c.watch("0" * 12)),
            ]
            for call in calls:
                assert rpc_error(call).code() is grpc.StatusCode.UNAUTHENTICATED
    assert not list((held.config.data_root / "jobs").iterdir())


def test_users_see_and_cancel_only_their_own_jobs(held: ServerThread, tiny_circuit: str) -> None:
    with held.client(ALICE) as alice, held.client(BOB) as bob:
        job = alice.submit(tiny_circuit)
        assert job.owner == "alice"
        assert job.state == pb.JOB_STATE_QUEUED
        for call in (
            lambda: bob.get(job.job_id),
            lambda: bob.cancel(job.job_id),
            lambda: list(bob.watch(job.job_id)),
        ):
            error = rpc_error(call)
            assert error.code() is grpc.StatusCode.NOT_FOUND
            # The same answer as for a job that does not exist: ids leak nothing.
            assert error.details() == f"job {job.job_id!r} not found"
        assert list(bob.list_jobs()) == []
        assert [j.job_id for j in alice.list_jobs()] == [job.job_id]
        assert alice.get(job.job_id).state == pb.JOB_STATE_QUEUED  # bob's cancel did nothing


def test_unknown_job_ids_are_not_found_and_malformed_ones_invalid(held: ServerThread) -> None:
    """Every RPC that takes a job id: a well-formed unknown id is NOT_FOUND; an empty or
    malformed one (not 12 lowercase hex digits) is INVALID_ARGUMENT with the field."""
    with held.client() as client:
        calls: list[Callable[[str], Any]] = [
            client.get,
            client.cancel,
            lambda j: list(client.watch(j)),
        ]
        for call in calls:
            error = rpc_error(lambda c=call: c("0" * 12))
            assert error.code() is grpc.StatusCode.NOT_FOUND
            for job_id, needle in (
                ("", "is required"),
                ("../../etc/passwd", "12 lowercase hex digits"),
                ("ABCDEF012345", "12 lowercase hex digits"),
                ("0" * 13, "12 lowercase hex digits"),
                ("x" * 10_000, "..."),
            ):
                error = rpc_error(lambda c=call, j=job_id: c(j))
                assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, job_id
                violations = field_violations(error)
                assert set(violations) == {"job_id"}
                assert needle in violations["job_id"]
                assert len(violations["job_id"]) < 200


def test_invalid_circuit_reports_every_violation_with_its_path(
    held: ServerThread, tiny_circuit: str
) -> None:
    bad = tiny_circuit.replace("size: 20", "size: 0").replace(
        "weight: 0.1, delay_ms: 1.5}\n  EI", "weight: 0.1, delay_ms: -1.0}\n  EI"
    )
    with held.client() as client:
        error = rpc_error(lambda: client.submit(bad))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        violations = field_violations(error)
        assert set(violations) == {"circuit.populations.I.size", "circuit.projections.EE.delay_ms"}
        assert ">= 1" in violations["circuit.populations.I.size"]
        text = describe_error(error)
        assert "circuit.projections.EE.delay_ms: must be > 0" in text

        report = client.validate(bad)
        assert not report.valid
        assert {v.path for v in report.violations} == {
            "populations.I.size",
            "projections.EE.delay_ms",
        }
        syntax = rpc_error(lambda: client.submit("populations: [unclosed"))
        assert syntax.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(syntax)
    assert not list((held.config.data_root / "jobs").iterdir())


def test_file_references_are_rejected(held: ServerThread, tiny_circuit: str) -> None:
    """Recordings and inputs stay under the data root: a client path is never resolved."""
    escaping = tiny_circuit.replace(
        "connectivity: {rule: fixed_total_number, n: 40}",
        "connectivity: {rule: from_file, path: /etc/passwd}",
    )
    with held.client() as client:
        error = rpc_error(lambda: client.submit(escaping))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "circuit.projections.II.connectivity.path" in field_violations(error)


def test_request_fields_are_checked(held: ServerThread, tiny_circuit: str) -> None:
    with held.client() as client:
        error = rpc_error(
            lambda: client.submit(
                tiny_circuit, n_ranks=-2, duration_ms=-5.0, partition="debug; rm -rf /"
            )
        )
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert set(field_violations(error)) == {"n_ranks", "duration_ms", "slurm.partition"}
        empty = rpc_error(lambda: client.submit("  "))
        assert set(field_violations(empty)) == {"circuit"}


def test_limits_are_enforced_before_anything_is_launched(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(
        limits={
            "max_ranks": 2,
            "max_neurons": 50,
            "max_duration_ms": 1000.0,
            "max_circuit_bytes": 4000,
            "max_active_jobs_per_user": 2,
        },
        local={"max_concurrent_jobs": 0},
    )
    with server.client() as client:
        error = rpc_error(lambda: client.submit(tiny_circuit, n_ranks=4, duration_ms=5000.0))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert set(quota_subjects(error)) == {"n_ranks", "n_neurons", "duration_ms"}
        assert "100 neurons asked for" in quota_subjects(error)["n_neurons"]
        big = tiny_circuit + "#" * 4000
        assert "circuit_bytes" in quota_subjects(rpc_error(lambda: client.submit(big)))
    assert not list((server.config.data_root / "jobs").iterdir())

    relaxed = make_server(limits={"max_active_jobs_per_user": 2}, local={"max_concurrent_jobs": 0})
    with relaxed.client() as alice, relaxed.client(BOB) as bob:
        first = alice.submit(tiny_circuit)
        alice.submit(tiny_circuit)
        error = rpc_error(lambda: alice.submit(tiny_circuit))
        assert set(quota_subjects(error)) == {"active_jobs"}
        assert bob.submit(tiny_circuit).owner == "bob"  # the limit is per user
        alice.cancel(first.job_id)  # a finished job no longer counts
        assert alice.submit(tiny_circuit).state == pb.JOB_STATE_QUEUED


def test_targets_that_cannot_run_are_a_failed_precondition(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(local={"mpiexec": "/nonexistent/mpiexec"})
    with server.client() as client:
        for target, needle in (
            (pb.TARGET_SLURM, "no slurm target"),
            (pb.TARGET_PYNN, "pynn.python is not configured"),
            (pb.TARGET_EBRAINS_SPINNAKER, "no ebrains:spinnaker target configured"),
            (pb.TARGET_EBRAINS_BRAINSCALES2, "no ebrains:brainscales2 target configured"),
            (pb.TARGET_LOCAL, "mpiexec not found"),
        ):
            error = rpc_error(lambda t=target: client.submit(tiny_circuit, target=t))
            assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert needle in error.details()
        unknown = rpc_error(lambda: client.submit(tiny_circuit, target=9))  # type: ignore[arg-type]
        assert set(field_violations(unknown)) == {"target"}


def test_validate_only_creates_nothing(held: ServerThread, tiny_circuit: str) -> None:
    with held.client() as client:
        job = client.submit(tiny_circuit, n_ranks=2, seed=5, validate_only=True)
        assert job.job_id == ""
        assert (job.circuit_name, job.n_ranks, job.seed, job.duration_ms) == ("tiny", 2, 5, 100.0)
        assert list(client.list_jobs()) == []
        report = client.validate(tiny_circuit)
        assert report.valid
        assert report.estimate.n_neurons == 100
        assert report.estimate.n_synapses > 0
        assert report.circuit_name == "tiny"
    assert not list((held.config.data_root / "jobs").iterdir())


def test_listing_pages_through_all_jobs_newest_first(held: ServerThread, tiny_circuit: str) -> None:
    with held.client() as client:
        submitted = [client.submit(tiny_circuit).job_id for _ in range(7)]
        listed = [job.job_id for job in client.list_jobs(page_size=3)]
        assert listed == submitted[::-1]
        client.cancel(submitted[0])
        cancelled = list(client.list_jobs(states=[pb.JOB_STATE_CANCELLED]))
        assert [job.job_id for job in cancelled] == [submitted[0]]
        assert cancelled[0].failure_reason == "cancelled by alice"


def test_cancel_of_a_finished_job_changes_nothing(held: ServerThread, tiny_circuit: str) -> None:
    with held.client() as client:
        job = client.submit(tiny_circuit)
        first = client.cancel(job.job_id)
        assert first.state == pb.JOB_STATE_CANCELLED
        again = client.cancel(job.job_id)
        assert again == first
        # Watching a finished job returns it once and ends.
        updates = list(client.watch(job.job_id))
        assert [u.WhichOneof("update") for u in updates] == ["job"]
        assert updates[0].job.state == pb.JOB_STATE_CANCELLED


def test_health_and_reflection_serve_generic_tools(held: ServerThread) -> None:
    with grpc.insecure_channel(held.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME),
        ]
        listing, files = list(reflection.ServerReflectionInfo(iter(requests), timeout=10))
        names = {s.name for s in listing.list_services_response.service}
        assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names

        # Build the messages from the reflected descriptors alone (no generated stubs) and call.
        pool = descriptor_pool.DescriptorPool()
        protos = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in files.file_descriptor_response.file_descriptor_proto
        ]
        pending = list(protos)
        while pending:  # add dependencies first, whatever order they came in
            for proto in list(pending):
                try:
                    pool.Add(proto)
                    pending.remove(proto)
                except TypeError:
                    continue
        service = pool.FindServiceByName(SERVICE_NAME)
        method = service.methods_by_name["GetJob"]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            f"/{SERVICE_NAME}/GetJob",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        error = rpc_error(
            lambda: call(
                request_class(job_id="0" * 12),
                metadata=(("authorization", f"Bearer {ALICE}"),),
                timeout=10,
            )
        )
        assert error.code() is grpc.StatusCode.NOT_FOUND


def test_malformed_and_oversized_messages_get_clear_answers(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(
        max_message_bytes=200_000,
        limits={"max_circuit_bytes": 100_000, "max_attachment_bytes": 0},
    )
    metadata = (("authorization", f"Bearer {ALICE}"),)
    with grpc.insecure_channel(server.address) as channel:
        # Bytes that are no message of the method (or a string field that is not UTF-8): the
        # request as a whole is an INVALID_ARGUMENT, for every method.
        for method in ("SubmitJob", "GetJob", "ListJobs", "CancelJob", "ValidateCircuit"):
            raw = channel.unary_unary(f"/{SERVICE_NAME}/{method}")
            not_utf8 = b"\x0a\x02\xff\xfe"  # field 1, a string but for ListJobs
            for garbage in (b"\xff\xfe not a protobuf", *([not_utf8] * (method != "ListJobs"))):
                error = rpc_error(lambda r=raw, g=garbage: r(g, metadata=metadata, timeout=10))
                assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, method
                assert f"not a valid {method} request" in error.details()
                assert set(field_violations(error)) == {""}
        watch = channel.unary_stream(f"/{SERVICE_NAME}/WatchJob")
        error = rpc_error(lambda: list(watch(b"\xff\xfe", metadata=metadata, timeout=10)))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert set(field_violations(error)) == {""}
    with server.client() as client:
        # A circuit above the circuit limit but within the message limit: the service answers.
        above = rpc_error(lambda: client.submit("#" * 150_000))
        assert above.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "150000 bytes" in quota_subjects(above)["circuit_bytes"]
        assert describe_error(above).splitlines() == [
            "RESOURCE_EXHAUSTED: the circuit document is too large",
            "  circuit_bytes: 150000 bytes, this server allows at most 100000",
        ]
        # Above the message limit: gRPC refuses it before the service reads it (its memory
        # stays bounded); still RESOURCE_EXHAUSTED, and the client says it the same way.
        huge = rpc_error(lambda: client.submit("#" * 300_000))
        assert huge.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        lines = describe_error(huge).splitlines()
        assert lines[0] == "RESOURCE_EXHAUSTED: the request is too large"
        assert lines[1].startswith("  request_bytes: 3000")
        assert lines[1].endswith(
            "bytes, this server takes at most 200000 in one request "
            "(the circuit and its attachments together)"
        )
        # Still serving.
        assert client.validate(tiny_circuit).valid
        assert client.health() == "SERVING"


def test_insecure_no_auth_only_on_loopback(
    make_server: Callable[..., ServerThread], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="only allowed on a loopback address"):
        make_server(listen="0.0.0.0:0", insecure_no_auth=True, token_file=None)
    server = make_server(insecure_no_auth=True, token_file=None)
    with server.client(None) as client:
        assert list(client.list_jobs()) == []
        assert client.validate("apiVersion: brainsim/v1").valid is False


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is needed to make a test certificate"
)
def test_tls_with_a_given_certificate(
    make_server: Callable[..., ServerThread], tmp_path: Path
) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server = make_server(tls={"cert": cert, "key": key})
    with server.client(root_certificates=cert.read_bytes()) as client:
        assert list(client.list_jobs()) == []
    with server.client() as plaintext:
        assert rpc_error(lambda: list(plaintext.list_jobs())).code() is grpc.StatusCode.UNAVAILABLE


def test_a_second_server_on_the_same_port_is_refused(held: ServerThread, tmp_path: Path) -> None:
    config = load_config(
        None,
        {"listen": held.address, "data_root": tmp_path / "other", "insecure_no_auth": True},
    )
    with pytest.raises(ConfigError, match="cannot listen"):
        ServerThread(config)


def test_a_queued_job_is_watched_until_cancelled(held: ServerThread, tiny_circuit: str) -> None:
    with held.client() as client:
        job = client.submit(tiny_circuit)
        stream = client.watch(job.job_id)
        first = next(stream)
        assert first.job.state == pb.JOB_STATE_QUEUED
        client.cancel(job.job_id)
        rest = list(stream)
        assert rest[-1].job.state == pb.JOB_STATE_CANCELLED
        assert wait_for(client, job.job_id, (pb.JOB_STATE_CANCELLED,)).end_time.seconds > 0


def test_the_active_job_limit_holds_under_concurrent_submissions(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(limits={"max_active_jobs_per_user": 3}, local={"max_concurrent_jobs": 0})

    def submit() -> str:
        with server.client() as client:
            try:
                return client.submit(tiny_circuit).job_id
            except grpc.RpcError as error:
                return error.code().name

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: submit(), range(10)))
    accepted = [a for a in answers if a != "RESOURCE_EXHAUSTED"]
    assert len(accepted) == 3, answers


def test_a_watcher_that_goes_away_is_forgotten(held: ServerThread, tiny_circuit: str) -> None:
    with held.client() as client:
        job = client.submit(tiny_circuit)
        stream = client.watch(job.job_id)
        assert next(stream).job.job_id == job.job_id
        assert job.job_id in held.running.manager._watchers
        stream.cancel()
        deadline = time.monotonic() + 10
        while job.job_id in held.running.manager._watchers:
            assert time.monotonic() < deadline, "the subscription leaked"
            time.sleep(0.02)


def test_a_failing_job_store_turns_the_server_not_serving(
    held: ServerThread, tiny_circuit: str
) -> None:
    async def break_store() -> None:
        # Every later write fails as on a read-only or full disk.
        await held.running.store._call(lambda db: db.execute("PRAGMA query_only = 1"))

    held.call(break_store())
    with held.client() as client:
        error = rpc_error(lambda: client.submit(tiny_circuit))
        assert error.code() is grpc.StatusCode.INTERNAL
        deadline = time.monotonic() + 10
        while client.health() != "NOT_SERVING":
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_one_server_per_data_root(held: ServerThread, tiny_circuit: str) -> None:
    """A second server on the same data root would launch the same queued jobs: refused."""
    with held.client() as client:
        job = client.submit(tiny_circuit)
    config = load_config(
        None,
        {"listen": "127.0.0.1:0", "data_root": held.config.data_root, "insecure_no_auth": True},
    )
    with pytest.raises(ConfigError, match="another server is using the data root"):
        ServerThread(config)
    with held.client() as client:
        assert client.get(job.job_id).state == pb.JOB_STATE_QUEUED
