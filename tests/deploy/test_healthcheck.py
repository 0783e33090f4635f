"""deploy/healthcheck.py against a real job server on loopback (plaintext and TLS)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.bench_service import launch_server
from tests.deploy.lint import DEPLOY

PROBE = DEPLOY / "healthcheck.py"


def start_server(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    return launch_server(tmp_path, *extra, log=tmp_path / "server.log")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROBE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[str]:
    process, address = start_server(tmp_path, "--insecure-no-auth")
    yield address
    stop(process)


def test_serving_server(plain_server: str) -> None:
    result = probe("--address", plain_server)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{plain_server}: SERVING"
    assert probe("--address", plain_server, "--service", "brainsim.v1.JobService").returncode == 0
    assert probe("--address", plain_server, "-q").stdout == ""


def test_unknown_service_fails(plain_server: str) -> None:
    result = probe("--address", plain_server, "--service", "no.such.Service")
    assert result.returncode == 1
    assert "NOT_FOUND" in result.stderr


def test_nothing_listening_fails(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = probe("--address", f"127.0.0.1:{port}", "--timeout", "1")
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr or "DEADLINE_EXCEEDED" in result.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_tls_server(tmp_path: Path) -> None:
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
            "/CN=brainsim.test",
            "-addext",
            "subjectAltName=DNS:brainsim.test",
        ],
        check=True,
        capture_output=True,
    )
    tokens = tmp_path / "tokens"
    tokens.write_text("alice sha256:" + "0" * 64 + "\n", encoding="utf-8")
    tokens.chmod(0o600)
    process, address = start_server(
        tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), "--token-file", str(tokens)
    )
    try:
        ok = probe("--address", address, "--ca", str(cert), "--server-name", "brainsim.test")
        assert ok.returncode == 0, ok.stderr
        assert probe("--address", address, "--timeout", "2").returncode == 1  # plaintext to TLS
        wrong = probe("--address", address, "--ca", str(cert), "--timeout", "2")
        assert wrong.returncode == 1  # the certificate is not for 127.0.0.1
    finally:
        stop(process)


def test_environment_gives_the_defaults(plain_server: str) -> None:
    import os

    env = {**os.environ, "BRAINSIM_HEALTH_ADDRESS": plain_server}
    result = subprocess.run(
        [sys.executable, str(PROBE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
