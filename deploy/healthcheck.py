#!/usr/bin/env python3
"""Ask a brainsim job server for its gRPC health (grpc.health.v1), exit 0 only if SERVING.

The image's HEALTHCHECK and Kubernetes exec probes run it (the kubelet's native gRPC probe
cannot speak TLS; this can). It needs only ``grpcio`` and ``grpcio-health-checking``, which the
service depends on anyway::

    python healthcheck.py                                  # 127.0.0.1:50051, plaintext
    python healthcheck.py --address 127.0.0.1:50051 --ca /etc/brainsim/tls/ca.crt \
        --server-name brainsim.example.org                 # TLS, trusting this CA
    python healthcheck.py --service brainsim.v1.JobService # one service, not the server

Exit status: 0 SERVING, 1 anything else (NOT_SERVING, unknown service, unreachable, timeout).
The environment variables BRAINSIM_HEALTH_ADDRESS, BRAINSIM_HEALTH_CA and
BRAINSIM_HEALTH_SERVER_NAME give the defaults of the matching options.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2


def check(
    address: str,
    service: str = "",
    timeout_s: float = 3.0,
    ca: Path | None = None,
    server_name: str | None = None,
) -> tuple[bool, str]:
    """(SERVING?, what was found) for ``service`` ("" = the whole server) at ``address``."""
    options: list[tuple[str, str | int]] = []
    if ca is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        channel = grpc.secure_channel(address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    with channel:
        check_rpc = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            reply = check_rpc(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code()
            name = code.name if code is not None else "UNKNOWN"
            return False, f"{address}: {name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{address}: {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--address", default=os.environ.get("BRAINSIM_HEALTH_ADDRESS", "127.0.0.1:50051")
    )
    parser.add_argument("--service", default="", help='service name ("": the whole server)')
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    parser.add_argument(
        "--ca",
        type=Path,
        default=os.environ.get("BRAINSIM_HEALTH_CA") or None,
        help="use TLS, trusting this CA certificate (PEM)",
    )
    parser.add_argument(
        "--server-name",
        default=os.environ.get("BRAINSIM_HEALTH_SERVER_NAME") or None,
        help="name the server's certificate is for (TLS), when not the address's host",
    )
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        serving, found = check(args.address, args.service, args.timeout, args.ca, args.server_name)
    except OSError as exc:
        serving, found = False, f"{args.address}: {exc}"
    if not args.quiet:
        print(found, file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main())
