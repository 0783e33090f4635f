"""The built OCI image (opt-in: it needs a container engine and the image).

    podman build -f deploy/Containerfile -t localhost/brainsim:0.1.0 .
    BRAINSIM_TEST_IMAGE=localhost/brainsim:0.1.0 python -m pytest tests/deploy/test_image.py

BRAINSIM_TEST_ENGINE is the engine's command (default: podman, else docker), and
BRAINSIM_TEST_RUN_ARGS extra `run` options (where the host needs them, e.g. lower ulimits).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

IMAGE = os.environ.get("BRAINSIM_TEST_IMAGE", "")
ENGINE = shlex.split(
    os.environ.get("BRAINSIM_TEST_ENGINE", "")
    or next((e for e in ("podman", "docker") if shutil.which(e)), "podman")
)
RUN_ARGS = shlex.split(os.environ.get("BRAINSIM_TEST_RUN_ARGS", ""))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not IMAGE, reason="set BRAINSIM_TEST_IMAGE to test a built image"),
]


def engine(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENGINE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_runs_as_non_root_and_the_tiny_circuit_uses_the_built_kernels() -> None:
    script = (
        "id -u; cd /tmp; start=$(date +%s.%N); "
        "brainsim run /opt/brainsim/circuits/tiny.yaml --out t.zarr --progress none 2> log; "
        "echo rc=$?; end=$(date +%s.%N); "
        'python -c "print(round($end - $start, 2))"; grep -c "data saved" log || true'
    )
    result = engine(
        "run",
        "--rm",
        *RUN_ARGS,
        "-e",
        "NUMBA_DEBUG_CACHE=1",
        "--entrypoint",
        "sh",
        IMAGE,
        "-c",
        script,
    )
    assert result.returncode == 0, result.stderr
    uid, rc, wall, saved = result.stdout.split()[-4:]
    assert uid != "0"
    assert rc == "rc=0"
    assert saved == "0", "numba compiled kernels: the image's cache was not used"
    assert float(wall) < 30.0  # a cold cache takes over a minute


@pytest.fixture
def container() -> Iterator[str]:
    name = f"brainsim-test-{uuid.uuid4().hex[:8]}"
    started = engine(
        "run",
        "-d",
        "--name",
        name,
        *RUN_ARGS,
        IMAGE,
        "brainsim",
        "serve",
        "--data-root",
        "/srv/brainsim",
        "--insecure-no-auth",
        "--listen",
        "127.0.0.1:50051",
    )
    assert started.returncode == 0, started.stderr
    yield name
    engine("rm", "-f", "-t", "5", name, timeout=60)


def test_health_answers_on_loopback(container: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        result = engine("exec", container, "python", "/opt/brainsim/healthcheck.py")
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert result.returncode == 0, result.stderr
    assert "SERVING" in result.stdout
    submitted = engine(
        "exec",
        container,
        "sh",
        "-c",
        "cd /tmp && brainsim submit /opt/brainsim/circuits/tiny.yaml --server 127.0.0.1:50051 "
        "--ranks 2 --wait",
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "SUCCEEDED" in submitted.stdout
