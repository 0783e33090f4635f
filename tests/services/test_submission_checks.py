"""SubmitJob refuses at submission what the simulator would refuse at launch (issue 18): the
request's fields get the engine's own checks, with field violations naming the field, and what
it accepts, the engine runs (real mpiexec)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from brainsim.circuit import parse_circuit
from brainsim.circuit.overrides import with_overrides
from brainsim.circuit.resources import physical_memory_bytes
from brainsim.errors import CircuitError
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.gen.brainsim.v1 import job_service_pb2_grpc as pb_grpc
from tests.services.conftest import ALICE, FINAL, TINY, ServerThread, wait_for
from tests.services.test_api import field_violations, quota_subjects, rpc_error

OFF_GRID = (0.05, 10.05, 1e-9, 1e-11, 0.15, 99.99)
"""Durations the tiny circuit (dt_ms 0.1) cannot run for."""
ON_GRID = (0.1, 10.0, 0.1 * 3, 100.0, 1234.5)
BAD_SEEDS = (2**32, 2**32 + 1, 2**40, 2**63 - 1, 2**63, 2**64 - 1)


@pytest.fixture
def held(make_server: Callable[..., ServerThread]) -> ServerThread:
    """A server that queues local jobs but never starts them."""
    return make_server(local={"max_concurrent_jobs": 0})


def engine_refuses(*, duration_ms: float | None = None, seed: int | None = None) -> bool:
    circuit = parse_circuit(TINY.read_text(), memory_limit_bytes=0)
    try:
        with_overrides(circuit, duration_ms=duration_ms, seed=seed)
    except CircuitError:
        return True
    return False


@pytest.mark.parametrize("validate_only", [False, True])
def test_seeds_the_engine_refuses_are_refused_with_the_field(
    held: ServerThread, tiny_circuit: str, validate_only: bool
) -> None:
    with held.client() as client:
        for seed in BAD_SEEDS:
            assert engine_refuses(seed=seed)
            error = rpc_error(
                lambda s=seed: client.submit(tiny_circuit, seed=s, validate_only=validate_only)
            )
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, seed
            violations = field_violations(error)
            assert set(violations) == {"seed"}
            assert violations["seed"] == f"must be in [0, 2**32), got {seed}"
        for seed in (0, 2**32 - 1):
            assert not engine_refuses(seed=seed)
            job = client.submit(tiny_circuit, seed=seed, validate_only=validate_only)
            assert job.seed == seed
    assert len(list((held.config.data_root / "jobs").iterdir())) == (0 if validate_only else 2)


@pytest.mark.parametrize("validate_only", [False, True])
def test_durations_off_the_dt_grid_are_refused_with_the_field(
    held: ServerThread, tiny_circuit: str, validate_only: bool
) -> None:
    with held.client() as client:
        for duration in OFF_GRID:
            assert engine_refuses(duration_ms=duration), duration
            error = rpc_error(
                lambda d=duration: client.submit(
                    tiny_circuit, duration_ms=d, validate_only=validate_only
                )
            )
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, duration
            violations = field_violations(error)
            assert set(violations) == {"duration_ms"}
            assert "dt_ms (0.1)" in violations["duration_ms"], violations
        for duration in ON_GRID:
            assert not engine_refuses(duration_ms=duration), duration
            job = client.submit(tiny_circuit, duration_ms=duration, validate_only=validate_only)
            assert job.duration_ms == duration
    assert not list((held.config.data_root / "incoming").iterdir())


def test_the_service_and_the_engine_agree_on_every_duration_and_seed(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    """One definition: the service refuses exactly what ``brainsim run`` refuses (the server's
    own limits lifted, so that only the engine's rules decide)."""
    server = make_server(
        local={"max_concurrent_jobs": 0},
        limits={"max_duration_ms": 1e308},
    )
    durations = [*OFF_GRID, *ON_GRID, 0.0, -0.1, math.nan, math.inf, -math.inf, 1e300, 1e13, 1e9]
    with server.client() as client:
        for duration in durations:
            error = refusal(
                lambda d=duration: client.submit(tiny_circuit, duration_ms=d, validate_only=True)
            )
            if error is not None:
                assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, duration
                assert set(field_violations(error)) == {"duration_ms"}
            assert (error is not None) == engine_refuses(duration_ms=duration), duration
        for seed in (0, 1, 2**31, 2**32 - 1, *BAD_SEEDS):
            error = refusal(lambda s=seed: client.submit(tiny_circuit, seed=s, validate_only=True))
            if error is not None:
                assert set(field_violations(error)) == {"seed"}
            assert (error is not None) == engine_refuses(seed=seed), seed


def refusal(call: Callable[[], Any]) -> grpc.RpcError | None:
    """The error ``call`` raises, or ``None`` if it succeeds."""
    try:
        call()
    except grpc.RpcError as error:
        return error
    return None


def call_submit(server: ServerThread, **fields: Any) -> grpc.RpcError:
    """SubmitJob with raw request fields (what JobClient would not send)."""
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        request = pb.SubmitJobRequest(circuit=TINY.read_text(), **fields)
        with pytest.raises(grpc.RpcError) as caught:
            stub.SubmitJob(request, metadata=(("authorization", f"Bearer {ALICE}"),), timeout=30)
    return caught.value


def test_time_limits_and_ranks_are_checked_with_the_field(held: ServerThread) -> None:
    for duration, needle in (
        (Duration(seconds=0), "must be positive"),
        (Duration(seconds=-5), "must be positive"),
        (Duration(seconds=0, nanos=-1), "must be positive"),
        (Duration(seconds=1, nanos=-5), "not a valid google.protobuf.Duration"),
        (Duration(seconds=0, nanos=1_000_000_000), "not a valid google.protobuf.Duration"),
        (Duration(seconds=2**62), "not a valid google.protobuf.Duration"),
    ):
        error = call_submit(held, time_limit=duration)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert needle in field_violations(error)["time_limit"]
    error = call_submit(held, n_ranks=-1, seed=2**33, duration_ms=0.05)
    assert set(field_violations(error)) == {"n_ranks", "seed"}  # the grid needs the circuit
    # Beyond the server's own limits: RESOURCE_EXHAUSTED with the subject.
    error = call_submit(held, time_limit=Duration(seconds=10**9))
    assert set(quota_subjects(error)) == {"time_limit_s"}
    error = call_submit(held, n_ranks=2**31 - 1)
    assert set(quota_subjects(error)) == {"n_ranks"}
    assert not list((held.config.data_root / "jobs").iterdir())


def test_a_local_one_rank_job_gets_the_simulators_memory_check(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    """``brainsim run`` on one rank refuses a circuit larger than this machine's memory before
    it starts; a local one-rank job is refused the same at submission."""
    physical = physical_memory_bytes()
    if physical is None:
        pytest.skip("the physical memory of this machine is unknown")
    # About 3.75 bytes per synapse: indegree k onto a million neurons needs ~3.75 MB per k.
    indegree = math.ceil(2 * physical / 3.75e6)
    huge = tiny_circuit.replace("size: 80", "size: 1000000", 1).replace(
        "indegree: 8}, weight: 0.1, delay_ms: 1.5}\n  EI",
        f"indegree: {indegree}}}, weight: 0.1, delay_ms: 1.5}}\n  EI",
        1,
    )
    server = make_server(
        local={"max_concurrent_jobs": 0},
        limits={"max_synapses": 10**15, "max_bytes_total": 10**16, "max_neurons": 10**7},
    )
    with server.client() as client:
        error = rpc_error(lambda: client.submit(huge, validate_only=True))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "physical memory of this machine" in field_violations(error)["circuit"]
        # On several ranks brainsim run checks no machine's memory (they may be spread).
        assert client.submit(huge, n_ranks=2, validate_only=True).n_ranks == 2


@pytest.mark.mpi
def test_what_is_accepted_runs(server: ServerThread, tiny_circuit: str) -> None:
    """Edge values the service accepts, the simulator runs: the largest seed, and a duration
    that is a multiple of dt_ms only up to rounding (0.1 * 3)."""
    with server.client() as client:
        job = client.submit(tiny_circuit, seed=2**32 - 1, duration_ms=0.1 * 3, n_ranks=2)
        final = wait_for(client, job.job_id, FINAL)
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert final.seed == 2**32 - 1
