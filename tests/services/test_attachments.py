"""SubmitJob attachments on a real loopback server: the files a circuit names travel with it
(``brainsim submit`` finds and sends them), are stored next to the circuit in the job's folder and
used by the run; bad paths, clashes, oversized sets and files the circuit needs but did not get
are refused with their field path, leaving nothing behind."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import grpc
import numpy as np
import pytest
import yaml
import zarr

from services.client import AttachmentError, circuit_attachments
from services.config import ServerConfig, load_config
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.jobdir import DataRoot, write_files
from tests.services.conftest import ALICE, ROOT, ServerThread
from tests.services.test_api import field_violations, rpc_error

RELAY = {"tau_m_ms": 10.0, "v_th_mV": 1.0, "v_reset_mV": 0.0, "e_l_mV": 0.0, "t_ref_ms": 0.0}
"""LIF neurons that fire in the step an input of weight >= 1 mV arrives, and only then."""

PIXELS = np.array([[1.0, 0.0, 1.0, 0.0]])
"""Rate data: In 0 and 2 fire in every step (p = 1), In 1 and 3 never."""
CONNECTIONS = {"source": np.array([2]), "target": np.array([1])}
"""The connection list: In 2 -> Out 1 only, so Out 1 fires and Out 0 never."""


def circuit_document(data: object = "data.npy", path: str = "inputs/conn.npz") -> dict:
    return {
        "apiVersion": "brainsim/v1",
        "name": "attached",
        "simulation": {"dt_ms": 1.0, "duration_ms": 20.0, "seed": 3},
        "populations": {
            "In": {"size": 4, "model": "lif", "params": RELAY},
            "Out": {"size": 2, "model": "lif", "params": RELAY},
        },
        "projections": {
            "InOut": {
                "source": "In",
                "target": "Out",
                "weight": 5.0,
                "delay_ms": 1.0,
                "connectivity": {"rule": "from_file", "path": path},
            },
        },
        "stimuli": {
            "pixels": {
                "type": "rate",
                "targets": ["In"],
                "data": data,
                "present_ms": 20.0,
                "max_rate_hz": 1000.0,
                "weight": 5.0,
            },
        },
        "recordings": {"spikes": "all"},
    }


def write_circuit(folder: Path, document: dict | None = None) -> Path:
    """The circuit and its two files (``data.npy``, ``inputs/conn.npz``) in ``folder``."""
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    np.save(folder / "data.npy", PIXELS)
    np.savez(folder / "inputs" / "conn.npz", **CONNECTIONS)
    path = folder / "circuit.yaml"
    path.write_text(yaml.safe_dump(document or circuit_document()), encoding="utf-8")
    return path


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        "data.npy": (folder / "data.npy").read_bytes(),
        "inputs/conn.npz": (folder / "inputs" / "conn.npz").read_bytes(),
    }


def leftovers(server: ServerThread) -> list[str]:
    """Everything under jobs/ and incoming/ of the server's data root."""
    root = server.config.data_root
    return sorted(
        str(p.relative_to(root)) for d in ("jobs", "incoming") for p in (root / d).rglob("*")
    )


def submit_raw(server: ServerThread, request: pb.SubmitJobRequest) -> pb.SubmitJobResponse:
    """SubmitJob as given (the client would add hashes and cannot send a path twice)."""
    with grpc.insecure_channel(server.address) as channel:
        stub = channel.unary_unary(
            "/brainsim.v1.JobService/SubmitJob",
            request_serializer=pb.SubmitJobRequest.SerializeToString,
            response_deserializer=pb.SubmitJobResponse.FromString,
        )
        response: pb.SubmitJobResponse = stub(
            request, metadata=(("authorization", f"Bearer {ALICE}"),), timeout=30
        )
        return response


@pytest.fixture
def held(make_server: Callable[..., ServerThread]) -> ServerThread:
    """A server that queues local jobs but never starts them."""
    return make_server(local={"max_concurrent_jobs": 0})


# --- the whole way ------------------------------------------------------------------------------


@pytest.mark.mpi
def test_cli_submit_sends_the_files_and_the_run_uses_them(
    server: ServerThread,
    cli: Callable[[ServerThread], Callable[..., tuple[int, str, str]]],
    tmp_path: Path,
) -> None:
    circuit = write_circuit(tmp_path / "model")
    run = cli(server)
    code, out, err = run("submit", str(circuit), "--ranks", "2", "--wait")
    assert code == 0, out + err
    job_id = out.split()[2]
    assert f"job {job_id}: SUCCEEDED" in out
    assert "attached:  inputs/conn.npz, data.npy (" in out

    job_dir = server.config.data_root.resolve() / "jobs" / job_id
    for name, content in files_of(tmp_path / "model").items():
        assert (job_dir / name).read_bytes() == content  # next to the stored circuit
    assert (job_dir / "circuit.yaml").read_text() == circuit.read_text()

    with server.client() as client:
        job = client.get(job_id)
    assert job.state == pb.JOB_STATE_SUCCEEDED
    root = zarr.open_group(unquote(urlparse(job.recording_uri).path), mode="r")
    assert root.attrs["brainsim"]["status"] == "complete"
    inputs = np.asarray(root["spikes/In/node_ids"][:])
    outputs = np.asarray(root["spikes/Out/node_ids"][:])
    # The rate data: In 0 and 2 (value 1) fire in every step, In 1 and 3 (value 0) never.
    assert set(inputs.tolist()) == {0, 2}
    assert np.count_nonzero(inputs == 0) >= 15
    # The connection list: only In 2 -> Out 1.
    assert set(outputs.tolist()) == {1}
    assert not list(server.config.data_root.joinpath("incoming").iterdir())


def test_the_runner_finds_the_stored_files_next_to_the_stored_circuit(
    held: ServerThread, tmp_path: Path
) -> None:
    """The runner gets the stored circuit's path; its references resolve in the job's folder
    (the launchers pass that path, and Slurm's --chdir is the same folder)."""
    from brainsim.circuit import load_circuit
    from services.launchers.local import simulator_argv

    folder = tmp_path / "model"
    circuit = write_circuit(folder)
    with held.client() as client:
        job = client.submit(circuit.read_text(), attachments=files_of(folder))
    data_root = DataRoot(held.config.data_root.resolve())
    job_dir = data_root.job(job.job_id)
    queued = held.running.manager.active_job(job.job_id)
    assert queued is not None
    argv = simulator_argv(queued, job_dir, "python")
    assert str(job_dir.circuit) in argv
    loaded = load_circuit(job_dir.circuit, memory_limit_bytes=0)
    assert loaded.base_dir == str(job_dir.path)
    assert np.array_equal(loaded.stimuli["pixels"].data.values, PIXELS)


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("../x.npy", "must not contain '..'"),
        ("inputs/../../x.npy", "must not contain '..'"),
        ("/etc/passwd", "absolute path '/etc/passwd'"),
        ("", "is empty"),
        ("a//b.npy", "must be normalized"),
        ("./x.npy", "must be normalized"),
        ("dir/", "must be normalized"),
        ("a\\b.npy", "backslash"),
        ("x\0.npy", "NUL"),
        ("x\n.npy", "control character"),
        ("circuit.yaml", "the server's own file"),
        ("recording.zarr/zarr.json", "the server's own file"),
        ("x" * 256 + ".npy", "longer than 255 bytes"),
        ("a/" * 600 + "x.npy", "at most 1024 allowed"),
    ],
)
def test_bad_paths_are_refused_with_their_field(
    held: ServerThread, tmp_path: Path, path: str, needle: str
) -> None:
    folder = tmp_path / "model"
    circuit = write_circuit(folder)
    attachments = [*files_of(folder).items(), (path, b"\x93NUMPY")]
    with held.client() as client:
        error = rpc_error(lambda: client.submit(circuit.read_text(), attachments=attachments))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert list(violations) == ["attachments[2].path"]
    assert needle in violations["attachments[2].path"]
    assert "attachments[2].path: " in error.details()
    assert leftovers(held) == []
    assert not (held.config.data_root.parent / "x.npy").exists()


def test_clashing_paths_are_refused(held: ServerThread, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    circuit = write_circuit(folder)
    files = files_of(folder)
    with held.client() as client:
        error = rpc_error(
            lambda: client.submit(
                circuit.read_text(),
                attachments=[
                    *files.items(),
                    ("data.npy", files["data.npy"]),  # the same path twice
                    ("inputs", b"a file where a folder is"),
                    ("data.npy/x.npy", b"inside a file"),
                ],
            )
        )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert set(violations) == {"attachments[2].path", "attachments[3].path", "attachments[4].path"}
    assert "attached twice (also attachments[0])" in violations["attachments[2].path"]
    assert "is a folder of attachments[1]" in violations["attachments[3].path"]
    assert "lies inside 'data.npy', which is a file" in violations["attachments[4].path"]
    assert leftovers(held) == []


def test_too_many_or_too_large_attachments_are_refused(
    make_server: Callable[..., ServerThread], tmp_path: Path
) -> None:
    server = make_server(
        local={"max_concurrent_jobs": 0},
        limits={"max_attachments": 3, "max_attachment_bytes": 2000},
    )
    folder = tmp_path / "model"
    circuit = write_circuit(folder)
    files = files_of(folder)
    assert sum(map(len, files.values())) < 2000  # the circuit's own files fit
    with server.client() as client:
        big = rpc_error(
            lambda: client.submit(
                circuit.read_text(), attachments={**files, "extra.bin": b"\0" * 2000}
            )
        )
        assert big.code() is grpc.StatusCode.INVALID_ARGUMENT
        total = 2000 + sum(map(len, files.values()))
        assert field_violations(big) == {
            "attachments": f"{total} bytes in all, this server takes at most 2000 per job"
        }
        many = {**files, "a.npy": b"", "b.npy": b""}
        error = rpc_error(lambda: client.submit(circuit.read_text(), attachments=many))
        assert field_violations(error) == {
            "attachments": "4 files, this server takes at most 3 per job"
        }
        # Within both limits: accepted.
        assert client.submit(circuit.read_text(), attachments=files).job_id
    jobs = list((server.config.data_root / "jobs").iterdir())
    assert len(jobs) == 1


def test_a_damaged_file_is_refused_by_its_hash(held: ServerThread, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    circuit = write_circuit(folder)
    files = files_of(folder)
    attachments = [
        pb.Attachment(path=path, content=content, sha256=hashlib.sha256(content).hexdigest())
        for path, content in files.items()
    ]
    attachments[0].content = attachments[0].content[:-1] + b"\1"
    attachments[1].sha256 = "NOT-HEX"
    error = rpc_error(
        lambda: submit_raw(
            held, pb.SubmitJobRequest(circuit=circuit.read_text(), attachments=attachments)
        )
    )
    violations = field_violations(error)
    assert set(violations) == {"attachments[0].sha256", "attachments[1].sha256"}
    assert "not the one given" in violations["attachments[0].sha256"]
    assert "64 lowercase hex digits" in violations["attachments[1].sha256"]
    # Without hashes the same content is taken as it is.
    plain = [pb.Attachment(path=a.path, content=a.content) for a in attachments]
    plain[0].content = files["data.npy"]
    response = submit_raw(held, pb.SubmitJobRequest(circuit=circuit.read_text(), attachments=plain))
    assert response.job.state == pb.JOB_STATE_QUEUED


def test_a_file_the_circuit_names_but_that_is_not_attached_is_refused(
    held: ServerThread, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    circuit = write_circuit(folder)
    files = files_of(folder)
    with held.client() as client:
        for missing, field in (
            ("data.npy", "circuit.stimuli.pixels.data"),
            ("inputs/conn.npz", "circuit.projections.InOut.connectivity.path"),
        ):
            partial = {path: content for path, content in files.items() if path != missing}
            error = rpc_error(lambda p=partial: client.submit(circuit.read_text(), attachments=p))
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
            violations = field_violations(error)
            assert list(violations) == [field]
            assert f"cannot read {missing!r}: no such file" in violations[field]
            assert f"{field}: cannot read" in error.details()
        # A file that is there but is not what the circuit needs (a 1-D array): refused too.
        flat = {**files, "data.npy": _npy(np.ones(4))}
        error = rpc_error(lambda: client.submit(circuit.read_text(), attachments=flat))
        assert (
            "expected [n_samples, n_features]"
            in field_violations(error)["circuit.stimuli.pixels.data"]
        )
        # A reference that leaves the folder is refused however it is attached.
        escaping = yaml.safe_dump(circuit_document(data="../data.npy"))
        error = rpc_error(lambda: client.submit(escaping, attachments=files))
        assert "leads outside" in field_violations(error)["circuit.stimuli.pixels.data"]
    assert leftovers(held) == []


def test_validate_only_checks_the_attachments_and_keeps_nothing(
    held: ServerThread, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    circuit = write_circuit(folder)
    files = files_of(folder)
    with held.client() as client:
        job = client.submit(circuit.read_text(), attachments=files, validate_only=True)
        assert job.job_id == ""
        assert job.circuit_name == "attached"
        assert job.duration_ms == 20.0
        bad_path = rpc_error(
            lambda: client.submit(
                circuit.read_text(), attachments={**files, "../x.npy": b""}, validate_only=True
            )
        )
        assert set(field_violations(bad_path)) == {"attachments[2].path"}
        no_data = rpc_error(
            lambda: client.submit(
                circuit.read_text(),
                attachments={"inputs/conn.npz": files["inputs/conn.npz"]},
                validate_only=True,
            )
        )
        assert set(field_violations(no_data)) == {"circuit.stimuli.pixels.data"}
        assert list(client.list_jobs()) == []
    assert leftovers(held) == []


def test_bad_requests_lose_nothing(held: ServerThread, tmp_path: Path, tiny_circuit: str) -> None:
    """A queued job and its files are untouched by refused submissions; the server serves on."""
    folder = tmp_path / "model"
    circuit = write_circuit(folder)
    files = files_of(folder)
    with held.client() as client:
        first = client.submit(circuit.read_text(), attachments=files)
        job_dir = held.config.data_root / "jobs" / first.job_id
        before = sorted(p.name for p in job_dir.iterdir())
        assert before == ["circuit.yaml", "data.npy", "inputs"]
        for attachments in (
            {**files, f"../{first.job_id}/data.npy": b"overwritten"},
            {**files, f"/{job_dir}/data.npy": b"overwritten"},
            [*files.items(), ("data.npy", b"overwritten")],
        ):
            error = rpc_error(lambda a=attachments: client.submit(tiny_circuit, attachments=a))
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert sorted(p.name for p in job_dir.iterdir()) == before
        assert (job_dir / "data.npy").read_bytes() == files["data.npy"]
        assert client.get(first.job_id).state == pb.JOB_STATE_QUEUED
        assert client.health() == "SERVING"
        # A circuit without files is submitted as before.
        assert client.submit(tiny_circuit).state == pb.JOB_STATE_QUEUED
    assert not list((held.config.data_root / "incoming").iterdir())


# --- the client ---------------------------------------------------------------------------------


def test_the_client_refuses_what_the_server_would_before_sending(
    held: ServerThread,
    cli: Callable[[ServerThread], Callable[..., tuple[int, str, str]]],
    tmp_path: Path,
) -> None:
    run = cli(held)
    folder = tmp_path / "model"
    write_circuit(folder)
    np.save(tmp_path / "secret.npy", PIXELS)
    (folder / "link.npy").symlink_to(tmp_path / "secret.npy")
    for data, needle in (
        ("../secret.npy", "leads outside the circuit's directory"),
        ("link.npy", "leads outside the circuit's directory"),
        (str(tmp_path / "secret.npy"), "absolute path"),
        ("missing.npy", "cannot read 'missing.npy': no such file"),
    ):
        path = folder / "bad.yaml"
        path.write_text(yaml.safe_dump(circuit_document(data=data)), encoding="utf-8")
        code, out, err = run("submit", str(path))
        assert code == 2, out + err
        assert err.startswith("error: circuit.stimuli.pixels.data: "), err
        assert needle in err
    assert leftovers(held) == []


def test_circuit_attachments_reads_each_named_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    document = circuit_document(data={"file": "./inputs/../data.npy"})
    document["stimuli"]["again"] = {**document["stimuli"]["pixels"], "data": "data.npy"}
    write_circuit(folder, document)
    (folder / "unused.npy").write_bytes(b"not named by the circuit")
    text = (folder / "circuit.yaml").read_text()
    assert circuit_attachments(text, folder) == files_of(folder)
    inline = yaml.safe_dump(circuit_document(data=[[1.0] * 4]))
    assert circuit_attachments(inline, folder) == {
        "inputs/conn.npz": files_of(folder)["inputs/conn.npz"]
    }
    monkeypatch.chdir(folder)  # a relative folder, as `brainsim submit circuit.yaml` gives
    assert set(circuit_attachments(text, Path())) == {"data.npy", "inputs/conn.npz"}
    with pytest.raises(AttachmentError, match=r"^circuit\.projections\.InOut\.connectivity\.path"):
        circuit_attachments(text, tmp_path)


# --- the job folder -----------------------------------------------------------------------------


def test_files_are_never_written_through_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.npy").write_bytes(b"kept")
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "sub").symlink_to(outside)
    (folder / "kept.npy").symlink_to(outside / "kept.npy")
    for path in ("sub/new.npy", "kept.npy"):
        with pytest.raises(OSError):  # ELOOP or EEXIST: both refusals
            write_files(folder, [(path, b"written")])
    for path in ("../outside/new.npy", "/tmp/new.npy", "a/./b.npy"):
        with pytest.raises(ValueError, match="not a normalized relative path"):
            write_files(folder, [(path, b"written")])
    assert sorted(p.name for p in outside.iterdir()) == ["kept.npy"]
    assert (outside / "kept.npy").read_bytes() == b"kept"
    write_files(folder, [("a/b/c.npy", b"abc"), ("a/d.npy", b"d")])
    assert (folder / "a" / "b" / "c.npy").read_bytes() == b"abc"
    assert (folder / "a" / "d.npy").read_bytes() == b"d"


def test_a_new_server_removes_unfinished_submissions(
    make_server: Callable[..., ServerThread], tmp_path: Path
) -> None:
    data_root = DataRoot.create(tmp_path / "data-0")
    leftover = data_root.new_submission()
    write_files(leftover, [("data.npy", b"half a submission")])
    server = make_server()
    assert server.config.data_root.resolve() == data_root.path
    assert not list(data_root.incoming.iterdir())


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_the_message_size_must_leave_room_for_the_attachments(tmp_path: Path) -> None:
    defaults = ServerConfig(data_root=tmp_path)
    assert defaults.limits.max_attachments == 100
    assert defaults.limits.max_attachment_bytes == 64 * 2**20
    assert defaults.problems() == [
        "token_file is required (or insecure_no_auth for loopback development)"
    ]
    assert defaults.warnings() == []
    example = load_config(ROOT / "deploy" / "server.example.yaml")
    assert example.warnings() == []
    assert example.max_message_bytes == defaults.max_message_bytes
    small = load_config(None, {"data_root": tmp_path, "max_message_bytes": 8 * 2**20})
    (warning,) = small.warnings()
    assert "leaves no room for attachments" in warning
    assert "limits.max_attachment_bytes (67108864)" in warning
    no_files = load_config(
        None,
        {
            "data_root": tmp_path,
            "max_message_bytes": 8 * 2**20,
            "limits": {"max_attachment_bytes": 0},
        },
    )
    assert no_files.warnings() == []
    negative = load_config(None, {"data_root": tmp_path, "limits": {"max_attachments": -1}})
    assert "limits.max_attachments and limits.max_attachment_bytes must be >= 0" in (
        negative.problems()
    )
