"""ListArtifacts and DownloadArtifact on a real loopback server with real jobs: every artefact
byte for byte with its SHA-256, the zipped recording read back with plain zarr, resumed and
damaged downloads, names that try to leave the job's folder, other users' jobs, a running job's
recording, one zip for concurrent downloads, and ``brainsim fetch``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import zarr

import services.artifacts
from services.client import DownloadError
from services.downloads import receive
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.gen.brainsim.v1 import job_service_pb2_grpc as pb_grpc
from tests.services.conftest import (
    ALICE,
    BOB,
    FINAL,
    CliRun,
    ServerThread,
    wait_for,
    wait_for_progress,
)
from tests.services.test_api import field_violations, rpc_error
from tests.services.test_attachments import files_of, write_circuit

LONG_MS = 600_000.0
"""A duration no test waits for: such jobs are cancelled."""
MiB = 1 << 20


ARTIFACTS = [
    "recording.zarr.zip",
    "circuit.yaml",
    "circuit.normalized.json",
    "stdout.log",
    "stderr.log",
    "attachments/data.npy",
    "attachments/inputs/conn.npz",
    "artifacts/loihi/net.bin",
]
"""What the finished job of these tests lists, in ListArtifacts' order."""


def stub_of(server: ServerThread, token: str = ALICE) -> tuple[pb_grpc.JobServiceStub, Any]:
    channel = grpc.insecure_channel(server.address)
    return pb_grpc.JobServiceStub(channel), (("authorization", f"Bearer {token}"),)


def download_raw(
    server: ServerThread, job_id: str, name: str, offset: int = 0, token: str = ALICE
) -> list[pb.DownloadArtifactResponse]:
    stub, metadata = stub_of(server, token)
    request = pb.DownloadArtifactRequest(job_id=job_id, name=name, offset=offset)
    return list(stub.DownloadArtifact(request, metadata=metadata, timeout=60))


def finished_job(server: ServerThread, folder: Path) -> tuple[str, Path]:
    """A job of the circuit with two attached files, run to SUCCEEDED; (id, its folder)."""
    circuit = write_circuit(folder)
    with server.client() as client:
        job = client.submit(circuit.read_text(), attachments=files_of(folder))
        final = wait_for(client, job.job_id, FINAL)
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.failure_reason
    return job.job_id, server.config.data_root.resolve() / "jobs" / job.job_id


@pytest.fixture
def done(server: ServerThread, tmp_path: Path) -> tuple[ServerThread, str, Path]:
    """The server, and a finished job with attachments and a compiled artefact of 2.5 MiB."""
    job_id, job_dir = finished_job(server, tmp_path / "model")
    (job_dir / "artifacts" / "loihi").mkdir(parents=True)
    big = np.random.default_rng(7).integers(0, 256, size=5 * MiB // 2, dtype=np.uint8)
    (job_dir / "artifacts" / "loihi" / "net.bin").write_bytes(big.tobytes())
    return server, job_id, job_dir


def spikes_of(root: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        population: (
            np.asarray(root[f"spikes/{population}/timestamps"][:]),
            np.asarray(root[f"spikes/{population}/node_ids"][:]),
        )
        for population in ("In", "Out")
    }


# --- listing and downloading --------------------------------------------------------------------


def test_every_listed_artifact_downloads_byte_for_byte_with_its_sha256(
    done: tuple[ServerThread, str, Path], tmp_path: Path
) -> None:
    server, job_id, job_dir = done
    with server.client() as client:
        listed = {a.name: a for a in client.artifacts(job_id)}
        assert list(listed) == ARTIFACTS
        assert listed["recording.zarr.zip"].size_bytes == -1  # not zipped yet
        assert listed["recording.zarr.zip"].media_type == "application/zip"
        assert listed["circuit.yaml"].media_type == "application/yaml"
        assert listed["stdout.log"].media_type == "text/plain"
        assert all(a.description for a in listed.values())

        originals = {
            "circuit.yaml": job_dir / "circuit.yaml",
            "stdout.log": job_dir / "stdout.log",
            "stderr.log": job_dir / "stderr.log",
            "attachments/data.npy": job_dir / "data.npy",
            "attachments/inputs/conn.npz": job_dir / "inputs" / "conn.npz",
            "artifacts/loihi/net.bin": job_dir / "artifacts" / "loihi" / "net.bin",
        }
        for name, original in originals.items():
            dest = tmp_path / "got" / name
            size = client.download(job_id, name, dest)
            assert dest.read_bytes() == original.read_bytes(), name
            assert size == original.stat().st_size == listed[name].size_bytes
            assert not dest.with_name(dest.name + ".part").exists()

        # The attachments are the files as submitted.
        for name, content in files_of(tmp_path / "model").items():
            assert (tmp_path / "got" / "attachments" / name).read_bytes() == content

        # The normalized circuit is the one the recording holds (what the run used).
        client.download(job_id, "circuit.normalized.json", tmp_path / "normalized.json")
        normalized = json.loads((tmp_path / "normalized.json").read_text())
        recorded = zarr.open_group(str(job_dir / "recording.zarr"), mode="r").attrs["brainsim"]
        assert normalized == recorded["circuit"]

        client.download(job_id, "recording.zarr.zip", tmp_path / "recording.zarr.zip")
        zipped = client.artifacts(job_id)[0]
        assert zipped.size_bytes == (tmp_path / "recording.zarr.zip").stat().st_size > 0

    # The server's SHA-256 is that of the whole artefact, in the last message only.
    for name, original in originals.items():
        responses = download_raw(server, job_id, name)
        assert [r.sha256 for r in responses[:-1]] == [""] * (len(responses) - 1)
        assert responses[-1].sha256 == hashlib.sha256(original.read_bytes()).hexdigest(), name


def test_chunks_offsets_and_the_end_of_an_artifact(done: tuple[ServerThread, str, Path]) -> None:
    server, job_id, job_dir = done
    name = "artifacts/loihi/net.bin"
    content = (job_dir / "artifacts" / "loihi" / "net.bin").read_bytes()
    digest = hashlib.sha256(content).hexdigest()

    responses = download_raw(server, job_id, name)
    assert len(responses) == 3  # 2.5 MiB in chunks of at most 1 MiB
    assert all(len(r.data) <= MiB for r in responses)
    assert [r.offset for r in responses] == [0, MiB, 2 * MiB]
    assert {r.total_bytes for r in responses} == {len(content)}
    assert b"".join(r.data for r in responses) == content

    # From an offset: the rest, and still the SHA-256 of the whole.
    middle = download_raw(server, job_id, name, offset=1234567)
    assert middle[0].offset == 1234567
    assert b"".join(r.data for r in middle) == content[1234567:]
    assert middle[-1].sha256 == digest

    # At the end: one message without data, with the SHA-256.
    (last,) = download_raw(server, job_id, name, offset=len(content))
    assert (last.data, last.offset, last.total_bytes, last.sha256) == (
        b"",
        len(content),
        len(content),
        digest,
    )

    error = rpc_error(lambda: download_raw(server, job_id, name, offset=len(content) + 1))
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "past the end" in (error.details() or "")
    error = rpc_error(lambda: download_raw(server, job_id, name, offset=-1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "offset" in field_violations(error)


def test_the_zipped_recording_opens_with_plain_zarr(
    done: tuple[ServerThread, str, Path], tmp_path: Path
) -> None:
    server, job_id, job_dir = done
    zipped = tmp_path / "recording.zarr.zip"
    with server.client() as client:
        client.download(job_id, "recording.zarr.zip", zipped)

    # A fresh interpreter that imports zarr and numpy only (no brainsim anywhere).
    script = """
import sys
import numpy as np
import zarr
from zarr.storage import ZipStore

store = ZipStore(sys.argv[1], mode="r")
root = zarr.open_group(store, mode="r")
arrays = {}
for population in ("In", "Out"):
    arrays[f"{population}_t"] = root[f"spikes/{population}/timestamps"][:]
    arrays[f"{population}_ids"] = root[f"spikes/{population}/node_ids"][:]
np.savez(sys.argv[2], status=root.attrs["brainsim"]["status"], **arrays)
store.close()
assert not [m for m in sys.modules if m.split(".")[0] in ("brainsim", "services")]
"""
    out = tmp_path / "spikes.npz"
    result = subprocess.run(
        [sys.executable, "-c", script, str(zipped), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr
    read = np.load(out)
    assert str(read["status"]) == "complete"
    expected = spikes_of(zarr.open_group(str(job_dir / "recording.zarr"), mode="r"))
    for population, (times, ids) in expected.items():
        assert times.size > 0
        np.testing.assert_array_equal(read[f"{population}_t"], times)
        np.testing.assert_array_equal(read[f"{population}_ids"], ids)

    # Made again from the same store (the cache removed), the zip has the same bytes.
    cached = job_dir / ".cache" / "recording.zarr.zip"
    first = cached.read_bytes()
    cached.unlink()
    assert b"".join(r.data for r in download_raw(server, job_id, "recording.zarr.zip")) == first


def test_a_download_continues_a_partial_file(
    done: tuple[ServerThread, str, Path], tmp_path: Path
) -> None:
    server, job_id, job_dir = done
    name = "artifacts/loihi/net.bin"
    content = (job_dir / name).read_bytes()
    dest = tmp_path / "net.bin"
    dest.with_name("net.bin.part").write_bytes(content[: MiB + 17])
    stub, metadata = stub_of(server)
    offsets: list[int] = []

    def open_stream(offset: int) -> Iterator[pb.DownloadArtifactResponse]:
        offsets.append(offset)
        request = pb.DownloadArtifactRequest(job_id=job_id, name=name, offset=offset)
        responses: Iterator[pb.DownloadArtifactResponse] = stub.DownloadArtifact(
            request, metadata=metadata
        )
        return responses

    assert receive(open_stream, name, dest) == len(content)
    assert offsets == [MiB + 17]  # only the rest was asked for
    assert dest.read_bytes() == content
    assert not dest.with_name("net.bin.part").exists()

    # A partial file longer than the artefact is no part of it: started over.
    dest.unlink()
    dest.with_name("net.bin.part").write_bytes(content + b"more")
    offsets.clear()
    assert receive(open_stream, name, dest) == len(content)
    assert offsets == [len(content) + 4, 0]
    assert dest.read_bytes() == content

    # The client does the same.
    dest.with_name("net.bin.part").write_bytes(content[:1000])
    with server.client() as client:
        assert client.download(job_id, name, dest) == len(content)
    assert dest.read_bytes() == content


def test_a_damaged_partial_download_is_detected(
    done: tuple[ServerThread, str, Path], tmp_path: Path
) -> None:
    server, job_id, job_dir = done
    content = (job_dir / "stdout.log").read_bytes()
    assert len(content) > 10
    dest = tmp_path / "stdout.log"
    part = tmp_path / "stdout.log.part"
    part.write_bytes(b"X" + content[1:10])  # the right length, one wrong byte
    with server.client() as client:
        with pytest.raises(DownloadError, match="SHA-256 mismatch") as caught:
            client.download(job_id, "stdout.log", dest)
        assert "download again" in str(caught.value)
        assert not dest.exists()
        assert not part.exists()
        client.download(job_id, "stdout.log", dest)  # again: from the beginning
    assert dest.read_bytes() == content


# --- what may not be read -----------------------------------------------------------------------


def test_names_that_leave_the_job_folder_are_not_found(
    done: tuple[ServerThread, str, Path], tmp_path: Path
) -> None:
    server, job_id, job_dir = done
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "key").write_text("not yours either")
    (job_dir / "artifacts" / "link").symlink_to(secret)
    (job_dir / "artifacts" / "folder").symlink_to(tmp_path / "secrets", target_is_directory=True)
    (job_dir / "outside.npy").symlink_to(secret)  # beside the attachments
    (job_dir / "inputs" / "up").symlink_to(tmp_path, target_is_directory=True)

    names = [
        "../../../secret.txt",
        "/etc/passwd",
        str(secret),
        "attachments/../circuit.yaml",
        "attachments/../../jobs.sqlite3",
        "attachments//etc/passwd",
        "attachments/./data.npy",
        "attachments/",
        "attachments/outside.npy",
        "attachments/inputs/up/secret.txt",
        "attachments/stdout.log",
        "attachments/recording.zarr/zarr.json",
        "attachments/.cache/recording.zarr.zip",
        "artifacts/../stdout.log",
        "artifacts/link",
        "artifacts/folder/key",
        "artifacts/loihi",
        "artifacts/",
        "recording.zarr",
        "recording.zarr/zarr.json",
        ".cache/recording.zarr.zip",
        "launch.json",
        "data.npy",
        "",
        "nope",
    ]
    for name in names:
        error = rpc_error(lambda name=name: download_raw(server, job_id, name))
        assert error.code() == grpc.StatusCode.NOT_FOUND, (name, error)
    with server.client() as client:
        listed = [a.name for a in client.artifacts(job_id)]
    assert not [n for n in listed if "link" in n or "folder" in n or "outside" in n or "up" in n]


def test_other_users_jobs_are_not_found_and_bad_ids_invalid(
    done: tuple[ServerThread, str, Path],
) -> None:
    server, job_id, _ = done
    stub, bob = stub_of(server, BOB)
    calls: list[Callable[[str], object]] = [
        lambda j: stub.ListArtifacts(pb.ListArtifactsRequest(job_id=j), metadata=bob, timeout=30),
        lambda j: list(
            stub.DownloadArtifact(
                pb.DownloadArtifactRequest(job_id=j, name="circuit.yaml"), metadata=bob, timeout=30
            )
        ),
    ]
    for call in calls:
        assert rpc_error(lambda c=call: c(job_id)).code() == grpc.StatusCode.NOT_FOUND
        for bad in ("", "ABC", "../" + job_id):
            error = rpc_error(lambda c=call, b=bad: c(b))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "job_id" in field_violations(error)
    _, nobody = stub_of(server, "no-such-token")
    error = rpc_error(
        lambda: stub.ListArtifacts(
            pb.ListArtifactsRequest(job_id=job_id), metadata=nobody, timeout=30
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_running_jobs_recording_is_refused_until_it_ends(
    server: ServerThread,
    tiny_circuit: str,
    tmp_path: Path,
    cli: Callable[[ServerThread], CliRun],
) -> None:
    with server.client() as client:
        job = client.submit(tiny_circuit, duration_ms=LONG_MS)
        try:
            wait_for_progress(client, job.job_id)
            names = [a.name for a in client.artifacts(job.job_id)]
            assert "recording.zarr.zip" not in names
            assert {"circuit.yaml", "circuit.normalized.json", "stdout.log"} <= set(names)
            error = rpc_error(lambda: download_raw(server, job.job_id, "recording.zarr.zip"))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "has not ended" in (error.details() or "")
            # The output so far can be had.
            size = client.download(job.job_id, "stdout.log", tmp_path / "stdout.log")
            assert size > 0
            code, out, err = cli(server)("fetch", job.job_id, "-o", str(tmp_path / "so-far"))
            assert code == 0, err
            assert "no recording.zarr.zip: the job has not ended" in out
            assert (tmp_path / "so-far" / "circuit.yaml").read_text() == tiny_circuit
        finally:
            client.cancel(job.job_id)
        assert wait_for(client, job.job_id, FINAL).state == pb.JOB_STATE_CANCELLED
        assert "recording.zarr.zip" in [a.name for a in client.artifacts(job.job_id)]
        client.download(job.job_id, "recording.zarr.zip", tmp_path / "cancelled.zip")
    store = zarr.storage.ZipStore(tmp_path / "cancelled.zip", mode="r")
    assert zarr.open_group(store, mode="r").attrs["brainsim"]["status"] == "cancelled"
    store.close()


def test_concurrent_downloads_zip_the_recording_once(
    done: tuple[ServerThread, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, job_id, job_dir = done
    zips: list[str] = []
    zip_store = services.artifacts.zip_store
    during = threading.Event()

    def slow_zip(store: Path, target: Path) -> None:
        zips.append(threading.current_thread().name)
        during.set()
        time.sleep(1.0)  # wide enough for every download to ask meanwhile
        zip_store(store, target)

    monkeypatch.setattr(services.artifacts, "zip_store", slow_zip)

    def fetch(index: int) -> bytes:
        with server.client() as client:
            dest = tmp_path / f"copy-{index}.zip"
            client.download(job_id, "recording.zarr.zip", dest)
            return dest.read_bytes()

    with ThreadPoolExecutor(4) as pool:
        downloads = pool.map(fetch, range(4))
        assert during.wait(30)
        # The zip runs on a worker thread: the server answers other calls meanwhile.
        with server.client() as client:
            asked = time.monotonic()
            assert client.get(job_id).job_id == job_id
            assert time.monotonic() - asked < 0.5
        copies = list(downloads)
    assert len(zips) == 1, zips
    assert all(copy == copies[0] for copy in copies)
    assert copies[0] == (job_dir / ".cache" / "recording.zarr.zip").read_bytes()
    assert not [p.name for p in (job_dir / ".cache").iterdir() if p.name.endswith(".tmp")]


# --- brainsim fetch -----------------------------------------------------------------------------


def test_cli_fetch_writes_every_artifact_and_says_what(
    done: tuple[ServerThread, str, Path],
    cli: Callable[[ServerThread], CliRun],
    tmp_path: Path,
) -> None:
    server, job_id, job_dir = done
    run = cli(server)
    out_dir = tmp_path / "results"
    code, out, err = run("fetch", job_id, "-o", str(out_dir))
    assert code == 0, err
    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    assert written == sorted(ARTIFACTS)
    size = (job_dir / "circuit.yaml").stat().st_size
    assert f"wrote {out_dir / 'circuit.yaml'} ({size} bytes)" in out
    assert "8 file(s)" in out
    assert (out_dir / "stdout.log").read_bytes() == (job_dir / "stdout.log").read_bytes()
    store = zarr.storage.ZipStore(out_dir / "recording.zarr.zip", mode="r")
    got = spikes_of(zarr.open_group(store, mode="r"))
    store.close()
    expected = spikes_of(zarr.open_group(str(job_dir / "recording.zarr"), mode="r"))
    for population, (times, ids) in expected.items():
        np.testing.assert_array_equal(got[population][0], times)
        np.testing.assert_array_equal(got[population][1], ids)

    only = tmp_path / "only"
    code, out, err = run("fetch", job_id, "-o", str(only), "--only", "stdout.log")
    assert code == 0, err
    assert [p.name for p in only.iterdir()] == ["stdout.log"]
    assert "1 file(s)" in out

    code, out, err = run("fetch", job_id, "-o", str(only), "--only", "nope.txt")
    assert code == 1
    assert err.startswith("error: NOT_FOUND: job ")
    code, out, err = run("fetch", job_id, "-o", str(only), "--only", "../secret")
    assert code == 1
    assert err.startswith("error: '../secret' is no artefact name (a relative path without")
    assert not (tmp_path / "secret").exists()

    # A damaged partial file (shorter than stdout.log, not its start): refused, then fetched.
    (only / "stdout.log").unlink()
    (only / "stdout.log.part").write_bytes(b"not the start of it")
    code, out, err = run("fetch", job_id, "-o", str(only), "--only", "stdout.log")
    assert code == 1
    assert err.startswith("error: stdout.log: SHA-256 mismatch")
    assert not (only / "stdout.log").exists()
    code, out, err = run("fetch", job_id, "-o", str(only), "--only", "stdout.log")
    assert code == 0, err
    assert (only / "stdout.log").read_bytes() == (job_dir / "stdout.log").read_bytes()
