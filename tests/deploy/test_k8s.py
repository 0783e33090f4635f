"""deploy/k8s: rendered by kustomize, every object valid for Kubernetes 1.30 (kubernetes-validate,
strict: unknown fields fail), and consistent with the server's configuration and the image."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from services.config import parse_config
from tests.deploy.lint import DEPLOY, ROOT

KUBERNETES_VERSION = "1.30.0"
"""The Kubernetes version the manifests are validated against (native sidecars and gRPC probes
need 1.29 or later)."""

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) is not installed")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY / "k8s")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = find(objects, kind)
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def validate(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_renders_the_control_plane(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(o["kind"] for o in rendered)
    assert kinds == sorted(
        [
            "Namespace",
            "ConfigMap",
            "ConfigMap",
            "Secret",
            "Secret",
            "Secret",
            "Service",
            "PersistentVolumeClaim",
            "Deployment",
            "Ingress",
            "NetworkPolicy",
        ]
    )
    for obj in rendered:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "brainsim", obj["metadata"]["name"]


def test_every_object_validates(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        validate(obj)


@pytest.mark.parametrize(
    "breakage",
    ["probe port as text", "unknown container field", "replicas as text", "no selector"],
)
def test_validation_catches_mistakes(rendered: list[dict[str, Any]], breakage: str) -> None:
    deployment = copy.deepcopy(one(rendered, "Deployment"))
    spec = deployment["spec"]
    container = spec["template"]["spec"]["containers"][0]
    if breakage == "probe port as text":
        container["livenessProbe"]["grpc"]["port"] = "grpc"  # gRPC probes need a number
    elif breakage == "unknown container field":
        container["healthCheck"] = {"grpc": {"port": 50051}}
    elif breakage == "replicas as text":
        spec["replicas"] = "one"
    else:
        del spec["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


def server_config(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    maps = [m for m in find(rendered, "ConfigMap") if "server.yaml" in m.get("data", {})]
    assert len(maps) == 1
    document: dict[str, Any] = yaml.safe_load(maps[0]["data"]["server.yaml"])
    return document


def mounts(container: dict[str, Any]) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container["volumeMounts"]}


def volume_of(path: str, container: dict[str, Any]) -> tuple[str, str]:
    """(volume name, mount path) of the mount holding ``path``."""
    best = max(
        (p for p in mounts(container) if PurePosixPath(path).is_relative_to(p)),
        key=len,
        default=None,
    )
    assert best is not None, f"{path} is on no volume"
    return mounts(container)[best], best


def test_probes_are_native_grpc_on_the_served_port(rendered: list[dict[str, Any]]) -> None:
    config = server_config(rendered)
    port = int(config["listen"].rpartition(":")[2])
    container = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["grpc"]["port"] == port, probe
    assert container["readinessProbe"]["grpc"]["service"] == "brainsim.v1.JobService"
    service = one(rendered, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert (
        service["spec"]["selector"]
        == one(rendered, "Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_server_config_is_accepted_by_the_server(rendered: list[dict[str, Any]]) -> None:
    """The ConfigMap's server.yaml passes the server's own parser and safety checks."""
    config = parse_config(server_config(rendered), Path("/etc/brainsim/config"))
    assert config.problems() == []
    assert config.slurm is not None
    assert config.slurm.python == "/opt/venv/bin/python"
    assert config.slurm.mpiexec == "/opt/venv/bin/mpiexec"
    # The template is one the image ships (deploy/Containerfile copies it there).
    name = config.slurm.template.name
    assert (DEPLOY / "slurm" / name).exists()
    assert f"deploy/slurm/{name}" in (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    assert f"/opt/brainsim/slurm/{name}" == str(config.slurm.template)


def test_every_configured_path_is_mounted(rendered: list[dict[str, Any]]) -> None:
    config = server_config(rendered)
    deployment = one(rendered, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}

    data, _ = volume_of(config["data_root"], container)
    claim = volumes[data]["persistentVolumeClaim"]["claimName"]
    pvc = one(rendered, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == claim
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]  # Slurm's compute nodes share it

    tokens, at = volume_of(config["token_file"], container)
    secret_name = volumes[tokens]["secret"]["secretName"]
    secret = next(s for s in find(rendered, "Secret") if s["metadata"]["name"] == secret_name)
    assert PurePosixPath(config["token_file"]).relative_to(at).as_posix() in secret["stringData"]

    config_volume, at = volume_of("/etc/brainsim/config/server.yaml", container)
    assert container["args"][-1] == "/etc/brainsim/config/server.yaml"
    assert volumes[config_volume]["configMap"]["name"].startswith("brainsim-config")

    assert volume_of("/etc/slurm/slurm.conf", container)[0] == "slurm-conf"
    sidecar = pod["initContainers"][0]
    assert sidecar["restartPolicy"] == "Always"
    assert mounts(sidecar)["/run/munge"] == mounts(container)["/run/munge"]


def test_tls_secret_serves_the_ingress(rendered: list[dict[str, Any]]) -> None:
    ingress = one(rendered, "Ingress")
    tls_name = ingress["spec"]["tls"][0]["secretName"]
    secret = next(s for s in find(rendered, "Secret") if s["metadata"]["name"] == tls_name)
    assert secret["type"] == "kubernetes.io/tls"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == (
        "GRPC"
    )
    # Plain text inside the pod network only behind the policy.
    config = server_config(rendered)
    assert config["allow_plaintext"] is True
    policy = one(rendered, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["ports"][0]["port"] == int(
        config["listen"].rpartition(":")[2]
    )


def test_secrets_are_templates_only(rendered: list[dict[str, Any]]) -> None:
    for secret in find(rendered, "Secret"):
        assert "data" not in secret, secret["metadata"]["name"]
        for key, value in secret["stringData"].items():
            assert "REPLACE" in value, f"{secret['metadata']['name']}/{key} holds a value"
            assert not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", value)


def test_runs_as_the_image_user(rendered: list[dict[str, Any]]) -> None:
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    containerfile = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    uid = re.search(r"useradd .*--uid (\d+)", containerfile)
    assert uid is not None
    assert pod["securityContext"]["runAsUser"] == int(uid.group(1))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert one(rendered, "Deployment")["spec"]["strategy"]["type"] == "Recreate"
    assert one(rendered, "Deployment")["spec"]["replicas"] == 1


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    listed |= {f for g in kustomization["configMapGenerator"] for f in g["files"]}
    present = {p.name for p in (DEPLOY / "k8s").iterdir() if p.name != "kustomization.yaml"}
    assert present - listed == set(), "files kustomize does not use"
    assert ROOT.joinpath("deploy/k8s").is_dir()
