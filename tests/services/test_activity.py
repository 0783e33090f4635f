"""StreamActivity and ``brainsim watch --activity``: live binned rates and chosen neurons'
spikes from a real server on loopback and real runs, checked against the finished recording
read with plain zarr."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import grpc
import numpy as np
import pytest
import yaml
import zarr

from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.live import ActivityFrame, frame_of
from tests.services.conftest import (
    BOB,
    FINAL,
    CliRun,
    ServerProcess,
    ServerThread,
    wait_for,
    wait_for_progress,
    write_tokens,
)
from tests.services.test_api import field_violations
from tests.services.test_local_jobs import store_path

SIZES = {"E": 80, "I": 20}
DT = 0.1


def spikes_of(store: Path, population: str) -> tuple[np.ndarray, np.ndarray]:
    root = zarr.open_group(str(store), mode="r")
    return root[f"spikes/{population}/timestamps"][:], root[f"spikes/{population}/node_ids"][:]


def expected_counts(times: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Spikes per bin [a, b): a spike stamped t (the end of its step) lies in (a, b]."""
    return np.array(
        [
            np.count_nonzero((times > a + 1e-9) & (times <= b + 1e-9))
            for a, b in zip(starts, ends, strict=True)
        ]
    )


def joined(frames: Iterable[ActivityFrame]) -> dict[str, np.ndarray]:
    """All bins of ``frames`` in one set of arrays."""
    frames = list(frames)
    out = {
        "start": np.concatenate([f.start_ms for f in frames]),
        "end": np.concatenate([f.end_ms for f in frames]),
    }
    for name in SIZES:
        out[f"rate:{name}"] = np.concatenate([f.rates_hz.get(name, np.zeros(0)) for f in frames])
        out[f"count:{name}"] = np.concatenate([f.counts.get(name, np.zeros(0)) for f in frames])
    times = [f.spikes["E"][0] for f in frames if "E" in f.spikes]
    ids = [f.spikes["E"][1] for f in frames if "E" in f.spikes]
    out["E.times"] = np.concatenate(times) if times else np.zeros(0)
    out["E.ids"] = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    return out


def check_against_store(
    bins: dict[str, np.ndarray],
    store: Path,
    from_ms: float,
    end_ms: float,
    bin_ms: float,
    chosen: list[int],
) -> None:
    """The bins tile [from_ms, end_ms) and hold exactly the store's spikes."""
    n = round((end_ms - from_ms) / bin_ms)
    np.testing.assert_allclose(bins["start"], from_ms + bin_ms * np.arange(n), atol=1e-9)
    np.testing.assert_allclose(bins["end"], from_ms + bin_ms * np.arange(1, n + 1), atol=1e-9)
    for name, size in SIZES.items():
        times, _ = spikes_of(store, name)
        counts = expected_counts(times, bins["start"], bins["end"])
        np.testing.assert_array_equal(bins[f"count:{name}"], counts)
        np.testing.assert_allclose(bins[f"rate:{name}"], counts / (size * bin_ms / 1000.0))
    times, ids = spikes_of(store, "E")
    mine = np.isin(ids, chosen) & (times > from_ms + 1e-9)
    np.testing.assert_array_equal(bins["E.times"], times[mine])
    np.testing.assert_array_equal(bins["E.ids"], ids[mine])


def test_the_stream_of_a_run_equals_its_recording_bin_for_bin(
    server: ServerThread, tiny_circuit: str
) -> None:
    chosen = [0, 3, 79]
    with server.client() as client:
        job = client.submit(tiny_circuit, duration_ms=20_000.0)
        frames = list(client.activity(job.job_id, bin_ms=5.0, neurons={"E": chosen}))
        final = client.get(job.job_id)
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert frames[-1].state == "SUCCEEDED"
    assert frames[-1].simulated_ms == 20_000.0
    # The final state only at the end (a backlog of over 500 bins comes in several messages,
    # each saying it), and only the last message ends the stream.
    states = [f.state for f in frames]
    assert states == sorted(states, key=lambda state: state == "SUCCEEDED")
    assert [f.ended for f in frames].index(True) == len(frames) - 1
    # Activity arrived while the job ran, not only at its end.
    assert any(f.state == "RUNNING" and f.n_bins > 0 for f in frames)
    simulated = [f.simulated_ms for f in frames]
    assert simulated == sorted(simulated)
    bins = joined(frames)
    assert bins["count:E"].sum() > 10_000  # the tiny network fires at tens of Hz
    check_against_store(bins, store_path(final), 0.0, 20_000.0, 5.0, chosen)


def test_a_client_that_reconnects_continues_where_it_stopped(
    server: ServerThread, tiny_circuit: str
) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, duration_ms=1000.0)
        wait_for(client, job.job_id, FINAL)
        whole = list(client.activity(job.job_id, bin_ms=1.0, from_ms=100.0, neurons={"E": [1]}))
        pieces: list[ActivityFrame] = []
        next_from = 100.0
        while not pieces or not pieces[-1].ended:
            # A fresh call each time, from the cursor of the last frame received.
            request = pb.StreamActivityRequest(
                job_id=job.job_id,
                bin_ms=1.0,
                from_ms=next_from,
                neurons=[pb.NeuronSelection(population="E", node_ids=[1])],
            )
            call = client._stub.StreamActivity(request, metadata=client._metadata)
            frame = frame_of(next(call))
            call.cancel()
            pieces.append(frame)
            next_from = frame.next_from_ms
    # A finished job's backlog comes in messages of at most 500 bins.
    assert [f.n_bins for f in whole] == [500, 400]
    assert len(pieces) == 2
    a, b = joined(whole), joined(pieces)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    with server.client() as client:
        final = client.get(job.job_id)
    check_against_store(a, store_path(final), 100.0, 1000.0, 1.0, [1])


def test_the_last_bin_of_a_cancelled_run_is_shorter(
    server: ServerThread, tiny_circuit: str
) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, duration_ms=600_000.0)
        wait_for_progress(client, job.job_id)
        frames = []
        for frame in client.activity(job.job_id, bin_ms=100.0):
            frames.append(frame)
            if frame.n_bins and len(frames) >= 2 and frame.state == "RUNNING":
                client.cancel(job.job_id)
        final = client.get(job.job_id)
    assert final.state == pb.JOB_STATE_CANCELLED
    assert frames[-1].state == "CANCELLED"
    bins = joined(frames)
    end = frames[-1].simulated_ms
    assert bins["end"][-1] == pytest.approx(end)
    assert 0 < end < 600_000.0
    width = bins["end"] - bins["start"]
    assert np.all(width[:-1] == pytest.approx(100.0))
    assert 0 < width[-1] <= 100.0 + 1e-9
    times, _ = spikes_of(store_path(final), "I")
    np.testing.assert_array_equal(
        bins["count:I"], expected_counts(times, bins["start"], bins["end"])
    )


def test_the_stream_survives_a_restart_of_the_server(tmp_path: Path, tiny_circuit: str) -> None:
    data_root, tokens = tmp_path / "data", write_tokens(tmp_path)
    first = ServerProcess(data_root, tokens)
    second: ServerProcess | None = None
    frames: list[ActivityFrame] = []
    try:
        with first.client() as client:
            job = client.submit(tiny_circuit, duration_ms=40_000.0)
            wait_for_progress(client, job.job_id)
            stream = client.activity(job.job_id, bin_ms=10.0, neurons={"E": [5]}, reconnect_s=60)
            while not frames or frames[-1].n_bins == 0:
                frames.append(next(stream))
            port = first.address.rsplit(":", 1)[1]
            first.kill()
            # The same port again, so the client's channel finds the new server.
            second = ServerProcess(data_root, tokens, "--listen", f"127.0.0.1:{port}")
            frames.extend(stream)
            final = wait_for(second.client(), job.job_id, FINAL)
    finally:
        first.kill()
        if second is not None:
            second.terminate()
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    check_against_store(joined(frames), store_path(final), 0.0, 40_000.0, 10.0, [5])


def test_bad_requests_name_their_fields(server: ServerThread, tiny_circuit: str) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit)
        cases = [
            ({"bin_ms": 0.05}, "bin_ms"),
            ({"bin_ms": 0.25}, "bin_ms"),
            ({"bin_ms": float("nan")}, "bin_ms"),
            ({"bin_ms": 120_000.0}, "bin_ms"),
            ({"bin_ms": 10.0, "from_ms": 15.0}, "from_ms"),
            ({"from_ms": -10.0}, "from_ms"),
            ({"from_ms": 1.797e307}, "from_ms"),
            ({"populations": ["E", "X"]}, "populations[1]"),
            ({"populations": ["E", "E"]}, "populations[1]"),
            (
                {"neurons": [pb.NeuronSelection(population="E", node_ids=[80])]},
                "neurons[0].node_ids",
            ),
            (
                {"neurons": [pb.NeuronSelection(population="E", node_ids=[-1])]},
                "neurons[0].node_ids",
            ),
            (
                {"neurons": [pb.NeuronSelection(population="Q", node_ids=[1])]},
                "neurons[0].population",
            ),
            (
                {
                    "neurons": [
                        pb.NeuronSelection(population="E", node_ids=list(range(80))),
                        pb.NeuronSelection(population="I", node_ids=list(range(20))),
                    ]
                    * 12
                },
                "neurons",
            ),
        ]
        for fields, path in cases:
            request = pb.StreamActivityRequest(job_id=job.job_id, **fields)
            with pytest.raises(grpc.RpcError) as caught:
                list(client._stub.StreamActivity(request, metadata=client._metadata))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
            assert path in field_violations(caught.value), (fields, caught.value.details())
        # Someone else's job is not found; a malformed id is a field violation.
        with server.client(BOB) as bob, pytest.raises(grpc.RpcError) as caught:
            list(bob.activity(job.job_id))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as caught:
            list(client.activity("nope"))
        assert "job_id" in field_violations(caught.value)


def test_a_circuit_without_spike_recordings_is_a_failed_precondition(
    server: ServerThread, tiny_circuit: str
) -> None:
    document = yaml.safe_load(tiny_circuit)
    document["recordings"] = {
        "state": [{"population": "E", "variables": ["v"], "node_ids": {"first": 1}}]
    }
    with server.client() as client:
        job = client.submit(yaml.safe_dump(document))
        with pytest.raises(grpc.RpcError) as caught:
            list(client.activity(job.job_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "records no spikes" in caught.value.details()


def test_a_job_that_never_wrote_a_recording_ends_the_stream_with_its_reason(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(local={"python": "/nonexistent/python3"})
    with server.client() as client:
        job = client.submit(tiny_circuit)
        with pytest.raises(grpc.RpcError) as caught:
            list(client.activity(job.job_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "without a readable recording" in caught.value.details()
    assert "/nonexistent/python3" in caught.value.details()


def test_watch_activity_shows_every_population(
    server: ServerThread, tiny_circuit: str, cli: Callable[[ServerThread], CliRun]
) -> None:
    run = cli(server)
    with server.client() as client:
        job = client.submit(tiny_circuit, duration_ms=2000.0)
    code, out, err = run("watch", job.job_id, "--activity", "--bin-ms", "50")
    assert code == 0, err
    last_block = out.strip().split(f"job {job.job_id}")[-1]
    assert "SUCCEEDED  2000/2000 ms (100%)" in last_block
    lines = {line.split()[0]: line for line in last_block.splitlines()[1:]}
    assert set(lines) == {"E", "I"}
    store = store_path(wait_for(server.client(), job.job_id, FINAL))
    for name, size in SIZES.items():
        times, _ = spikes_of(store, name)
        shown = float(lines[name].split("(mean")[1].split(")")[0])
        # Printed with 2 decimals (a count / 160 can end in 5 in the third: either way).
        assert shown == pytest.approx(times.size / size / 2.0, abs=0.0051)
    code, out, err = run("watch", job.job_id, "--activity", "--population", "X")
    assert code == 1
    assert "populations[0]" in err


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster")
def test_a_slurm_job_streams_its_activity_like_a_local_one(
    make_server: Callable[..., ServerThread], tiny_circuit: str
) -> None:
    server = make_server(slurm={"poll_interval_s": 0.5, "default_time_limit_s": 600.0})
    with server.client() as client:
        job = client.submit(tiny_circuit, n_ranks=2, target=pb.TARGET_SLURM, duration_ms=20_000.0)
        frames = list(client.activity(job.job_id, bin_ms=20.0, neurons={"E": [7]}))
        final = client.get(job.job_id)
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    assert frames[-1].ended
    check_against_store(joined(frames), store_path(final), 0.0, 20_000.0, 20.0, [7])
