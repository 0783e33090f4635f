"""Server configuration: YAML files, flag overrides, and the safety checks before serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.auth import parse_token_file
from services.config import (
    ConfigError,
    EbrainsConfig,
    LocalConfig,
    PynnConfig,
    ServerConfig,
    SlurmConfig,
    TlsConfig,
    is_loopback,
    load_config,
)


def test_file_values_paths_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(
        "listen: '0.0.0.0:6000'\n"
        "data_root: data\n"
        "token_file: /etc/brainsim/tokens\n"
        "tls: {cert: tls.crt, key: tls.key}\n"
        "limits: {max_ranks: 4, max_duration_ms: 500}\n"
        "local: {max_concurrent_jobs: 3}\n"
        "slurm: {partition: debug, extra_sbatch_args: ['--qos=low']}\n"
    )
    config = load_config(path)
    assert config.listen == "0.0.0.0:6000"
    assert config.data_root == tmp_path / "data"
    assert config.token_file == Path("/etc/brainsim/tokens")
    assert config.tls == TlsConfig(tmp_path / "tls.crt", tmp_path / "tls.key")
    assert config.limits.max_ranks == 4
    assert config.limits.max_duration_ms == 500.0
    assert config.local.max_concurrent_jobs == 3
    assert config.slurm == SlurmConfig(partition="debug", extra_sbatch_args=("--qos=low",))
    assert config.problems() == []


def test_flags_override_single_keys_of_a_section(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(
        "data_root: d\ntoken_file: t\nlocal: {max_concurrent_jobs: 3, kill_grace_s: 2}\n"
    )
    config = load_config(path, {"local": {"max_concurrent_jobs": 5}, "listen": "127.0.0.1:0"})
    assert config.local == LocalConfig(max_concurrent_jobs=5, kill_grace_s=2.0)
    assert config.listen == "127.0.0.1:0"
    assert config.slurm is None


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("listen: 5\nlimits: {max_ranks: many, colour: red}\nlocal: []\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "listen: expected str, found 5" in message
    assert "limits.max_ranks: expected int, found 'many'" in message
    assert "limits.colour: unknown key" in message
    assert "local: expected a mapping, found list" in message
    assert "data_root: required" in message


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.3.2.1:0", True),
        ("localhost:1", True),
        ("[::1]:50051", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        ("login01:50051", False),
    ],
)
def test_loopback_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_unsafe_combinations_are_refused(tmp_path: Path) -> None:
    base = ServerConfig(data_root=tmp_path, token_file=tmp_path / "tokens")
    assert base.problems() == []
    no_auth_public = ServerConfig(data_root=tmp_path, listen="0.0.0.0:1", insecure_no_auth=True)
    assert any("insecure_no_auth is only allowed" in p for p in no_auth_public.problems())
    assert any("token_file is required" in p for p in ServerConfig(data_root=tmp_path).problems())
    public_plain = ServerConfig(data_root=tmp_path, listen="0.0.0.0:1", token_file=tmp_path)
    assert any("without TLS" in p for p in public_plain.problems())
    allowed = ServerConfig(
        data_root=tmp_path, listen="0.0.0.0:1", token_file=tmp_path, allow_plaintext=True
    )
    assert allowed.problems() == []
    with_tls = ServerConfig(
        data_root=tmp_path,
        listen="0.0.0.0:1",
        token_file=tmp_path,
        tls=TlsConfig(tmp_path, tmp_path),
    )
    assert with_tls.problems() == []


def test_the_deploy_examples_are_valid() -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    config = load_config(deploy / "server.example.yaml")
    assert config.problems() == []
    assert config.slurm is not None
    assert config.slurm.template == deploy / "slurm" / "job.sbatch"
    assert config.limits == ServerConfig(data_root=Path()).limits  # the file shows the defaults
    assert config.ebrains == EbrainsConfig()
    assert config.pynn == PynnConfig()
    users = parse_token_file((deploy / "tokens.example").read_text())
    assert sorted(users.values()) == ["alice", "bob"]
