"""The google.rpc error protos shipped in proto/google/rpc are enough for a client in any language
to read the service's field violations and quota failures (issue 18)."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.rpc import error_details_pb2, status_pb2

from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.server import SERVICE_NAME
from tests.services.conftest import ALICE, ServerThread

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ("google/rpc/status.proto", "google/rpc/error_details.proto")


@pytest.fixture(scope="module")
def vendored_set(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    """The vendored files compiled by protoc, as a client's build would (with the well-known
    types, which every protobuf distribution has)."""
    out = tmp_path_factory.mktemp("protos") / "set.pb"
    well_known = resources.files("grpc_tools") / "_proto"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={ROOT / 'proto'}",
            f"--proto_path={well_known}",
            "--include_imports",
            f"--descriptor_set_out={out}",
            *VENDORED,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def test_the_vendored_protos_keep_their_licence_header() -> None:
    for name in VENDORED:
        text = (ROOT / "proto" / name).read_text(encoding="utf-8")
        assert text.startswith("// Copyright ")
        assert "Licensed under the Apache License, Version 2.0" in text.splitlines()[2]
        assert "package google.rpc;" in text


def test_the_vendored_protos_describe_what_the_server_sends(
    vendored_set: descriptor_pb2.FileDescriptorSet,
) -> None:
    """Same messages, fields, numbers and types as the Python runtime the server packs with."""
    files = {f.name: f for f in vendored_set.file}
    for name, runtime in (
        ("google/rpc/status.proto", status_pb2.DESCRIPTOR),
        ("google/rpc/error_details.proto", error_details_pb2.DESCRIPTOR),
    ):
        expected = descriptor_pb2.FileDescriptorProto()
        runtime.CopyToProto(expected)
        shipped = files[name]
        assert shipped.package == expected.package == "google.rpc"
        assert wire_shape(shipped) == wire_shape(expected)
    assert "BadRequest.FieldViolation" in wire_shape(files["google/rpc/error_details.proto"])


def wire_shape(proto: descriptor_pb2.FileDescriptorProto) -> dict[str, object]:
    """Each message (nested ones too) with its fields' names, numbers, labels and types."""
    shape: dict[str, object] = {}

    def add(message: descriptor_pb2.DescriptorProto, prefix: str) -> None:
        name = prefix + message.name
        shape[name] = sorted(
            (f.name, f.number, f.label, f.type, f.type_name) for f in message.field
        )
        for nested in message.nested_type:
            add(nested, name + ".")

    for message in proto.message_type:
        add(message, "")
    return shape


def test_a_client_built_from_the_vendored_protos_reads_field_violations(
    make_server: object, vendored_set: descriptor_pb2.FileDescriptorSet
) -> None:
    """No googleapis package on the client's side: messages made from the shipped files alone
    (a fresh descriptor pool) unpack the trailer of a refused submission."""
    server = make_server(local={"max_concurrent_jobs": 0})  # type: ignore[operator]
    assert isinstance(server, ServerThread)
    pool = descriptor_pool.DescriptorPool()
    for proto in vendored_set.file:
        pool.Add(proto)
    status_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))
    bad_request_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("google.rpc.BadRequest")
    )
    request = pb.SubmitJobRequest(circuit="apiVersion: brainsim/v1", seed=2**40, n_ranks=-3)
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(
            f"/{SERVICE_NAME}/SubmitJob", request_serializer=pb.SubmitJobRequest.SerializeToString
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(request, metadata=(("authorization", f"Bearer {ALICE}"),), timeout=30)
    error = caught.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_class.FromString(trailers["grpc-status-details-bin"])
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    (detail,) = status.details
    assert detail.type_url == "type.googleapis.com/google.rpc.BadRequest"
    bad = bad_request_class.FromString(detail.value)
    assert {v.field for v in bad.field_violations} == {"seed", "n_ranks"}
