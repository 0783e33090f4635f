"""The committed gRPC stubs match the protos, and the protos pass buf's STANDARD lint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_committed_stubs_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        "the stubs in services/gen differ from what proto/ gives now; "
        "run `python scripts/gen_protos.py` and commit the result\n" + result.stdout + result.stderr
    )


def test_stale_stubs_are_detected(tmp_path: Path) -> None:
    """The check is not vacuous: a changed stub is reported as stale."""
    committed = ROOT / "services" / "gen"
    copy = tmp_path / "gen"
    shutil.copytree(committed, copy, ignore=shutil.ignore_patterns("__pycache__"))
    stub = copy / "brainsim" / "v1" / "job_service_pb2.py"
    stub.write_text(stub.read_text() + "\n# edited\n")
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check", "--out", str(copy)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "job_service_pb2.py" in result.stdout


def test_generated_modules_import_the_service_package_not_the_simulator() -> None:
    from services.gen.brainsim.v1 import job_service_pb2, job_service_pb2_grpc

    assert job_service_pb2_grpc.brainsim_dot_v1_dot_job__service__pb2 is job_service_pb2
    assert job_service_pb2.DESCRIPTOR.package == "brainsim.v1"


@pytest.mark.skipif(
    shutil.which("buf") is None, reason="buf is not installed (pip install buf-bin)"
)
def test_protos_pass_buf_lint() -> None:
    result = subprocess.run(
        ["buf", "lint"],
        cwd=ROOT / "proto",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
