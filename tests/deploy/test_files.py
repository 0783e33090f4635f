"""The Containerfile, the Apptainer definition and the batch scripts, checked by rules written as
code (tests/deploy/lint.py); each rule is also shown to fail on a broken copy."""

from __future__ import annotations

import shutil
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.config import ServerConfig, load_config
from tests.deploy.lint import (
    DEPLOY,
    ROOT,
    apptainer_problems,
    containerfile_problems,
    parse_containerfile,
    sbatch_problems,
)

CONTAINERFILE = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
DEFINITION = (DEPLOY / "brainsim.def").read_text(encoding="utf-8")
SBATCH = DEPLOY / "slurm" / "brainsim-apptainer.sbatch"
SERVICE_SBATCH = DEPLOY / "slurm" / "job-apptainer.sbatch"


def test_containerfile_follows_the_rules() -> None:
    assert containerfile_problems(CONTAINERFILE) == []


def test_containerfile_stages() -> None:
    _, stages = parse_containerfile(CONTAINERFILE)
    assert [s.name for s in stages] == ["builder", "runtime-common", "slurm", "runtime"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("python:3.11.11-slim-bookworm", "python:latest", "latest"),
        ("python:3.11.11-slim-bookworm", "python", "no tag"),
        ("python:3.11.11-slim-bookworm", "python:slim", "not pinned"),
        ("USER brainsim:brainsim\nCMD", "USER root\nCMD", "runs as root"),
        ("HEALTHCHECK --interval", "# HEALTHCHECK --interval", "no HEALTHCHECK"),
        ("NUMBA_CACHE_DIR=/opt/brainsim/numba-cache", "NUMBA_X=1", "NUMBA_CACHE_DIR"),
        ('chown -R brainsim:brainsim "$NUMBA_CACHE_DIR"', "true", "runtime user"),
        ("brainsim run", "brainsim validate", "not compiled at build time"),
        ("COPY brainsim ./brainsim", "COPY . .", "whole build context"),
        ("COPY services ./services", "COPY deploy/tls.key ./services", "secret-like"),
        ("COPY services ./services", "COPY nowhere ./services", "not in the repository"),
        ("--no-index --find-links /tmp/wheels", "--find-links /tmp/wheels", "from an index"),
        ("--no-install-recommends", "", "--no-install-recommends"),
        ("pip wheel", "pip download", "no builder stage"),
        ("COPY --from=builder", "COPY --from=elsewhere", "builder stage's output"),
    ],
)
def test_containerfile_rules_can_fail(old: str, new: str, problem: str) -> None:
    assert old in CONTAINERFILE
    broken = CONTAINERFILE.replace(old, new)
    found = containerfile_problems(broken)
    assert any(problem in p for p in found), found


def test_single_stage_is_refused() -> None:
    assert containerfile_problems("FROM python:3.11.11\nUSER app\nCMD x\n") == [
        "not a multi-stage build (a builder stage and a runtime stage)"
    ]


def test_user_after_cmd_is_refused() -> None:
    final = CONTAINERFILE.rstrip() + "\nUSER brainsim\n"
    assert "USER comes after CMD" in containerfile_problems(final)


def test_container_server_config_is_valid() -> None:
    config = load_config(DEPLOY / "container" / "server.yaml")
    assert isinstance(config, ServerConfig)
    assert config.problems() == []
    assert str(config.data_root) == "/srv/brainsim"
    assert 'VOLUME ["/srv/brainsim"]' in CONTAINERFILE
    assert config.listen.endswith(":50051")
    assert "EXPOSE 50051" in CONTAINERFILE


def test_apptainer_definition_follows_the_rules() -> None:
    assert apptainer_problems(DEFINITION) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("%runscript", "%other", "%runscript is missing"),
        ("%test", "%tests", "%test is missing"),
        ("%post", "%postx", "%post is missing"),
        ("From: python:3.11.11-slim-bookworm", "From: python:latest", "not pinned"),
        (
            "    export NUMBA_CACHE_DIR=/opt/brainsim/numba-cache\n"
            "    export NUMBA_CPU_NAME=generic\n"
            "    export NUMBA_CPU_FEATURES=\n    export MPLCONFIGDIR",
            "    export MPLCONFIGDIR",
            "NUMBA_CACHE_DIR",
        ),
        ("    services /opt/brainsim/src/services", "    secrets/tls.key /x", "secret-like"),
        ("NUMBA_CPU_NAME=generic NUMBA_CPU_FEATURES= MPLCONFIG", "MPLCONFIG", "NUMBA_CPU_NAME"),
    ],
)
def test_apptainer_rules_can_fail(old: str, new: str, problem: str) -> None:
    assert old in DEFINITION
    found = apptainer_problems(DEFINITION.replace(old, new))
    assert any(problem in p for p in found), found


def test_sbatch_template_follows_the_rules() -> None:
    text = SBATCH.read_text(encoding="utf-8")
    assert sbatch_problems(text) == []
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("#!/bin/bash", "#!/bin/sh", "#!/bin/bash"),
        ("#SBATCH --time=01:00:00\n", "", None),
        ("set -euo pipefail\n", "set -euo pipefail\n#SBATCH --mem=1G\n", "after the first"),
        ("#SBATCH --nodes=1", "#SBATCH nodes=1", "malformed"),
        ('sif="${BRAINSIM_SIF:-/shared/containers/brainsim.sif}"', 'sif="$IMAGE"', "Apptainer"),
    ],
)
def test_sbatch_rules_can_fail(old: str, new: str, problem: str | None) -> None:
    text = SBATCH.read_text(encoding="utf-8")
    assert old in text
    found = sbatch_problems(text.replace(old, new))
    if problem is None:
        assert found == []  # dropping one optional line breaks nothing
    else:
        assert any(problem in p for p in found), found


FAKE_APPTAINER = """#!/bin/bash
# Stands in for apptainer: records its arguments, then runs the command after the image.
printf '%s\\n' "$@" > "$FAKE_LOG"
while [ "$#" -gt 0 ]; do
    case "$1" in
        exec) shift ;;
        --bind|--env) shift 2 ;;
        --*) shift ;;
        *.sif) shift; break ;;
        *) echo "fake apptainer: unexpected $1" >&2; exit 9 ;;
    esac
done
exec "$@"
"""


@pytest.mark.slow
@pytest.mark.mpi
def test_sbatch_template_runs_a_circuit(tmp_path: Path) -> None:
    """The template's default (wheel MPI) path, with Apptainer replaced by a script that runs
    the command on this machine: 2 ranks of the tiny circuit end complete."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apptainer"
    fake.write_text(FAKE_APPTAINER, encoding="utf-8")
    fake.chmod(0o755)
    venv_bin = shutil.which("mpiexec")
    assert venv_bin is not None
    env = {
        "PATH": f"{bin_dir}:{venv_bin.rsplit('/', 1)[0]}:/usr/bin:/bin",
        "FAKE_LOG": str(tmp_path / "apptainer-args"),
        "SLURM_NTASKS": "2",
        "BRAINSIM_SIF": str(tmp_path / "brainsim.sif"),
        "HOME": str(tmp_path),
        "BRAINSIM_POOL_DIR": str(tmp_path / "pool"),
    }
    store = tmp_path / "out" / "tiny.zarr"
    result = subprocess.run(
        [
            "bash",
            str(SBATCH),
            str(ROOT / "circuits" / "tiny.yaml"),
            str(store),
            "--duration-ms",
            "20",
            "--progress",
            "none",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "apptainer-args").read_text().split("\n")
    assert args[:4] == ["exec", "--writable-tmpfs", "--bind", f"{ROOT / 'circuits'},{store.parent}"]
    assert "--cleanenv" in args
    assert args[args.index(env["BRAINSIM_SIF"]) + 1 : args.index(env["BRAINSIM_SIF"]) + 4] == [
        "mpiexec",
        "-n",
        "2",
    ]
    import zarr

    meta: Any = zarr.open_group(str(store), mode="r").attrs["brainsim"]
    assert meta["status"] == "complete"
    assert meta["provenance"]["n_ranks"] == 2


def test_sbatch_template_needs_its_arguments(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(SBATCH), "only-one"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_service_template_renders_to_valid_bash(tmp_path: Path) -> None:
    """The job service's Apptainer template, rendered as services/launchers/slurm.py does."""
    text = SERVICE_SBATCH.read_text(encoding="utf-8")
    assert sbatch_problems(text) == []
    rendered = string.Template(text).substitute(
        job_id="j-1",
        job_dir="/srv/brainsim/jobs/j-1",
        n_ranks="4",
        command="/opt/venv/bin/mpiexec -n 4 /opt/venv/bin/python -m brainsim run c.yaml",
    )
    script = tmp_path / "job.sbatch"
    script.write_text(rendered, encoding="utf-8")
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert '"${BRAINSIM_SIF:-/shared/containers/brainsim.sif}"' in rendered
    assert "exec apptainer exec --cleanenv --bind /srv/brainsim/jobs/j-1" in rendered
