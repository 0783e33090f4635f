"""50 concurrent clients, each its own user, submitting and polling: every answer is right."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from services.client import JobClient
from services.gen.brainsim.v1 import job_service_pb2 as pb
from tests.services.conftest import ServerThread

N_CLIENTS = 50
JOBS_EACH = 3
POLLS_EACH = 20


def test_fifty_concurrent_clients_get_correct_answers(
    make_server: Callable[..., ServerThread], tmp_path: Path, tiny_circuit: str
) -> None:
    tokens = {f"user{i:02d}": f"token-of-user-{i:02d}-0123456789" for i in range(N_CLIENTS)}
    token_file = tmp_path / "many-tokens"
    token_file.write_text("".join(f"{user} {token}\n" for user, token in tokens.items()))
    token_file.chmod(0o600)
    # Jobs are queued and never started: this measures the service, not the simulator.
    server = make_server(token_file=token_file, local={"max_concurrent_jobs": 0})
    submitted: dict[str, list[str]] = {}
    start = threading.Barrier(N_CLIENTS)

    def client_session(user: str) -> list[str]:
        with JobClient(server.address, tokens[user]) as client:
            start.wait()
            ids = [
                client.submit(tiny_circuit, seed=index, duration_ms=10.0 + index).job_id
                for index in range(JOBS_EACH)
            ]
            for poll in range(POLLS_EACH):
                job = client.get(ids[poll % JOBS_EACH])
                assert job.owner == user
                assert job.state == pb.JOB_STATE_QUEUED
                assert job.seed == poll % JOBS_EACH
                assert job.duration_ms == 10.0 + poll % JOBS_EACH
            listed = [job.job_id for job in client.list_jobs()]
            assert listed == ids[::-1], f"{user} sees {listed}, submitted {ids}"
            return ids

    with ThreadPoolExecutor(N_CLIENTS) as pool:
        futures = {user: pool.submit(client_session, user) for user in tokens}
        for user, future in futures.items():
            submitted[user] = future.result(timeout=300)

    all_ids = [job_id for ids in submitted.values() for job_id in ids]
    assert len(set(all_ids)) == N_CLIENTS * JOBS_EACH
    # Nobody sees anyone else's job, and every job can be cancelled by its owner.
    with JobClient(server.address, tokens["user00"]) as intruder:
        with pytest.raises(grpc.RpcError) as caught:
            intruder.get(submitted["user01"][0])
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    for user, ids in submitted.items():
        with JobClient(server.address, tokens[user]) as client:
            for job_id in ids:
                assert client.cancel(job_id).state == pb.JOB_STATE_CANCELLED
