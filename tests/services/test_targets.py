"""The service's compilation targets on a real loopback server: ListTargets, NIR jobs (the
graph is the result, downloadable), PyNN jobs run on pyNN.nest (a real NEST in the reference
environment) whose spikes become the job's recording, and every refusal at submission: what
a target cannot express (FAILED_PRECONDITION with the circuit's field paths), request fields
a target does not take, and the EBRAINS targets' credentials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import nir
import numpy as np
import pytest
import yaml

from brainsim.backends import BACKENDS
from brainsim.circuit import parse_circuit
from brainsim.recording import open_store
from services.gen.brainsim.v1 import job_service_pb2 as pb
from tests.services.conftest import (
    FINAL,
    TINY,
    ServerThread,
    wait_for,
)
from tests.services.ebrains_standin import COLLAB, TOKEN, StandinQueue
from tests.services.test_api import field_violations, rpc_error

NIR_CIRCUIT: dict[str, Any] = {
    "apiVersion": "brainsim/v1",
    "name": "feedforward",
    "simulation": {"dt_ms": 0.1, "duration_ms": 50.0, "seed": 3},
    "populations": {
        "In": {"size": 4, "model": "parrot"},
        "R": {"size": 3, "model": "lif", "params": {"t_ref_ms": 0.0}},
    },
    "projections": {
        "InR": {
            "source": "In",
            "target": "R",
            "connectivity": {"rule": "fixed_indegree", "indegree": 2},
            "weight": {"uniform": {"low": 1.0, "high": 3.0}},
        }
    },
    "stimuli": {
        "replay": {
            "type": "spike_trains",
            "targets": ["In"],
            "data": [[1.0, 5.0], [2.0], [], [7.5]],
            "weight": 1.0,
        }
    },
    "recordings": {"spikes": ["R"]},
}


def pynn_circuit() -> str:
    """circuits/tiny.yaml recording spikes only (the PyNN script records no state)."""
    document = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    document["recordings"] = {"spikes": "all"}
    return yaml.safe_dump(document)


def test_list_targets_says_what_each_takes_and_whether_it_runs(
    make_server: Callable[..., ServerThread],
) -> None:
    bare = {t.name: t for t in make_server().client().targets()}
    assert list(bare) == [
        "local",
        "slurm",
        "pynn",
        "nir",
        "ebrains:spinnaker",
        "ebrains:brainscales2",
    ]
    assert bare["local"].available
    assert bare["nir"].available
    assert not bare["pynn"].available
    assert "pynn.python" in bare["pynn"].unavailable_reason
    assert "no ebrains:spinnaker target configured" in bare["ebrains:spinnaker"].unavailable_reason
    for info in bare.values():  # the capabilities are the backends' own declarations
        capabilities = BACKENDS[
            {"local": "numba_mpi", "slurm": "numba_mpi", "pynn": "pynn", "nir": "nir"}.get(
                info.name, "pynn:spiNNaker" if "spinnaker" in info.name else "pynn:brainscales2"
            )
        ].capabilities()
        assert list(info.neuron_models) == list(capabilities.neuron_models)
        assert info.plasticity == capabilities.plasticity
        assert info.simulates == (info.name != "nir")
    configured = make_server(
        pynn={"python": "python3"}, ebrains={"collab": "demo", "url": "http://127.0.0.1:9"}
    )
    names = {t.name: t for t in configured.client().targets()}
    assert names["pynn"].available
    assert names["ebrains:spinnaker"].available


def test_a_nir_job_compiles_and_its_graph_is_the_result(
    server: ServerThread, tmp_path: Path
) -> None:
    client = server.client()
    job = client.submit(yaml.safe_dump(NIR_CIRCUIT), target=pb.TARGET_NIR, seed=11)
    assert job.recording_uri == ""
    done = wait_for(client, job.job_id, FINAL, timeout=120)
    assert done.state == pb.JOB_STATE_SUCCEEDED, done.failure_reason
    names = [a.name for a in client.artifacts(job.job_id)]
    assert "artifacts/nir/feedforward.nir" in names
    assert "recording.zarr.zip" not in names
    client.download(job.job_id, "artifacts/nir/feedforward.nir", tmp_path / "got.nir")
    got = nir.read(tmp_path / "got.nir")
    # The same graph as compiling here with the job's seed (which drew the weights).
    document = {**NIR_CIRCUIT, "simulation": {**NIR_CIRCUIT["simulation"], "seed": 11}}
    here = nir.read(BACKENDS["nir"].compile(parse_circuit(document), tmp_path).paths[0])
    assert sorted(got.nodes) == sorted(here.nodes)
    np.testing.assert_array_equal(got.nodes["InR"].weight, here.nodes["InR"].weight)
    assert not np.array_equal(  # the seed mattered: another one draws other weights
        here.nodes["InR"].weight,
        nir.read(BACKENDS["nir"].compile(parse_circuit(NIR_CIRCUIT), tmp_path / "b").paths[0])
        .nodes["InR"]
        .weight,
    )


def test_what_a_target_cannot_express_is_refused_with_its_paths(
    make_server: Callable[..., ServerThread],
) -> None:
    client = make_server(pynn={"python": "python3"}).client()
    izhikevich = (TINY.parent / "izhikevich_2003.yaml").read_text(encoding="utf-8")
    error = rpc_error(lambda: client.submit(izhikevich, target=pb.TARGET_NIR))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    violations = field_violations(error)
    assert "NIR has no izhikevich neuron" in violations["circuit.populations.excitatory.model"]
    assert "circuit.stimuli.thalamic_excitatory.type" in violations
    # The PyNN target refuses state recordings (it records spikes only), with the path.
    error = rpc_error(
        lambda: client.submit(TINY.read_text(encoding="utf-8"), target=pb.TARGET_PYNN)
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "circuit.recordings.state" in field_violations(error)
    assert list(client.list_jobs()) == []  # nothing was queued


def test_request_fields_a_target_does_not_take_are_named(server: ServerThread) -> None:
    client = server.client()
    text = yaml.safe_dump(NIR_CIRCUIT)
    error = rpc_error(
        lambda: client.submit(text, target=pb.TARGET_NIR, n_ranks=2, checkpoint_every_ms=10.0)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert "one process" in violations["n_ranks"]
    assert "no checkpoints" in violations["checkpoint_every_ms"]
    error = rpc_error(lambda: client.submit(text, ebrains_token="abc", ebrains_collab="x"))
    assert field_violations(error) == {"ebrains": "is only for the EBRAINS targets"}


def test_ebrains_targets_need_a_configuration_and_credentials(
    make_server: Callable[..., ServerThread],
) -> None:
    text = yaml.safe_dump(NIR_CIRCUIT)
    bare = make_server().client()
    error = rpc_error(
        lambda: bare.submit(text, target=pb.TARGET_EBRAINS_SPINNAKER, ebrains_token="t")
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no ebrains:spinnaker target configured" in str(error.details())
    configured = make_server(ebrains={"url": "http://127.0.0.1:9"})
    client = configured.client()
    error = rpc_error(lambda: client.submit(text, target=pb.TARGET_EBRAINS_SPINNAKER))
    violations = field_violations(error)
    assert "no EBRAINS token of its own" in violations["ebrains.token"]
    assert "no default collab" in violations["ebrains.collab"]
    error = rpc_error(
        lambda: client.submit(
            text,
            target=pb.TARGET_EBRAINS_SPINNAKER,
            ebrains_token="has spaces",
            ebrains_collab="../etc",
        )
    )
    assert set(field_violations(error)) == {"ebrains.token", "ebrains.collab"}
    # SpiNNaker's own limits, checked with the job's circuit before anything is queued.
    izhikevich = (TINY.parent / "izhikevich_2003.yaml").read_text(encoding="utf-8")
    error = rpc_error(
        lambda: client.submit(
            izhikevich,
            target=pb.TARGET_EBRAINS_SPINNAKER,
            ebrains_token="t",
            ebrains_collab="demo",
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "circuit.populations.excitatory.model" in field_violations(error)
    # An accepted dry run keeps nothing, credentials included.
    job = client.submit(
        pynn_circuit(),
        target=pb.TARGET_EBRAINS_SPINNAKER,
        ebrains_token="t",
        ebrains_collab="demo",
        validate_only=True,
    )
    assert job.job_id == ""
    assert list((configured.config.data_root / "jobs").iterdir()) == []


def _spikes_in(results: Path, population: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(results / f"{population}.spikes.npz") as data:
        return np.asarray(data["times_ms"]), np.asarray(data["node_ids"])


def test_a_pynn_job_runs_on_nest_and_its_spikes_are_the_recording(
    make_server: Callable[..., ServerThread], nest_python: Path
) -> None:
    server = make_server(pynn={"python": str(nest_python)})
    client = server.client()
    job = client.submit(pynn_circuit(), target=pb.TARGET_PYNN, seed=5)
    done = wait_for(client, job.job_id, FINAL, timeout=240)
    assert done.state == pb.JOB_STATE_SUCCEEDED, done.failure_reason
    folder = server.config.data_root / "jobs" / job.job_id
    store = open_store(folder / "recording.zarr")
    assert store.status == "complete"
    assert store.provenance["backend"] == "pynn:nest"
    assert store.seed == 5
    for population, size in (("E", 80), ("I", 20)):
        times, ids = _spikes_in(folder / "artifacts" / "pynn" / "results", population)
        recorded = store.spikes(population)
        assert recorded.node_ids.size == times.size > size  # every neuron fires, regularly
        order = np.lexsort((ids, times))
        np.testing.assert_allclose(recorded.times_ms, times[order], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(recorded.node_ids, ids[order])
    names = {a.name for a in client.artifacts(job.job_id)}
    assert {"artifacts/pynn/run.py", "artifacts/pynn/results/E.pkl", "recording.zarr.zip"} <= names
    # The PyNN process's CPU time and memory are the job's (NEST alone takes more than 50 MB).
    assert done.usage.cpu_time.ToTimedelta().total_seconds() > 0.5
    assert done.usage.peak_rank_memory_bytes > 50 * 2**20


def test_a_pynn_job_can_be_cancelled(
    make_server: Callable[..., ServerThread], nest_python: Path
) -> None:
    server = make_server(pynn={"python": str(nest_python)})
    client = server.client()
    job = client.submit(pynn_circuit(), target=pb.TARGET_PYNN, duration_ms=600_000.0)
    wait_for(client, job.job_id, (pb.JOB_STATE_RUNNING, *FINAL), timeout=60)
    lines: list[Any] = []
    for update in client.watch(job.job_id):  # wait until brainsim has started NEST's run
        lines.append(update)
        if update.WhichOneof("update") == "log" and "started" in update.log.text:
            break
    client.cancel(job.job_id)
    done = wait_for(client, job.job_id, FINAL, timeout=60)
    assert done.state == pb.JOB_STATE_CANCELLED, done.failure_reason


@pytest.mark.parametrize("python", ["", "no-such-python-here"])
def test_an_unusable_pynn_python_makes_the_target_unavailable(
    make_server: Callable[..., ServerThread], python: str
) -> None:
    client = make_server(pynn={"python": python}).client()
    error = rpc_error(lambda: client.submit(pynn_circuit(), target=pb.TARGET_PYNN))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "pynn.python" in str(error.details())


def test_an_ebrains_job_through_the_service_end_to_end(
    make_server: Callable[..., ServerThread], nest_python: Path, tmp_path: Path
) -> None:
    """SubmitJob with the user's token -> the EBRAINS launcher -> the stand-in queue (the real
    one cannot be reached from here), which runs the script on pyNN.nest -> the recording.
    The token is in the job's folder only while the job is active, and never served."""
    with StandinQueue(nest_python, tmp_path / "platform") as queue:
        server = make_server(
            ebrains={
                "url": queue.url,
                "data_proxy_url": queue.data_proxy_url,
                "poll_interval_s": 0.1,
            }
        )
        client = server.client()
        job = client.submit(
            pynn_circuit(),
            target=pb.TARGET_EBRAINS_SPINNAKER,
            duration_ms=150.0,
            ebrains_token=TOKEN,
            ebrains_collab=COLLAB,
        )
        folder = server.config.data_root / "jobs" / job.job_id
        assert (folder / "credentials.json").stat().st_mode & 0o077 == 0
        error = rpc_error(lambda: client.download(job.job_id, "credentials.json", tmp_path / "c"))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        done = wait_for(client, job.job_id, FINAL, timeout=240)
        assert done.state == pb.JOB_STATE_SUCCEEDED, done.failure_reason
        assert done.external_id  # the queue's job id
        assert not (folder / "credentials.json").exists()
        store = open_store(folder / "recording.zarr")
        assert store.provenance["backend"] == "pynn:spiNNaker"
        for population in ("E", "I"):
            times, _ = _spikes_in(folder / "artifacts" / "results", population)
            assert store.spikes(population).times_ms.size == times.size > 0
        names = {a.name for a in client.artifacts(job.job_id)}
        assert {"artifacts/pynn/run.py", "artifacts/results/E.spikes.npz"} <= names
        service_lines = [line.text for line in client.logs(job.job_id, pb.LOG_STREAM_SERVICE)]
        assert f"launched EBRAINS job {done.external_id} (ebrains:spinnaker)" in service_lines
