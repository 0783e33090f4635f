"""The server's configuration: typed records, read from a YAML file and overridden by flags.

Example (``deploy/server.example.yaml`` has every key with its default)::

    listen: "0.0.0.0:50051"
    data_root: /srv/brainsim
    token_file: /etc/brainsim/tokens
    tls: {cert: /etc/brainsim/tls.crt, key: /etc/brainsim/tls.key}
    limits: {max_ranks: 64, max_neurons: 2000000}
    local: {max_concurrent_jobs: 2}
    slurm: {partition: compute, default_time_limit_s: 3600}

Relative paths in a file are relative to that file's folder. A missing ``slurm`` section means the
server has no Slurm target. Every problem in a file is reported at once (:class:`ConfigError`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_SBATCH_TEMPLATE",
    "ConfigError",
    "EbrainsConfig",
    "Limits",
    "LocalConfig",
    "PynnConfig",
    "RetentionConfig",
    "ServerConfig",
    "SlurmConfig",
    "TlsConfig",
    "default_mpiexec",
    "is_loopback",
    "load_config",
    "parse_config",
]

DEFAULT_SBATCH_TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "slurm" / "job.sbatch"
"""The batch-script template of a source checkout (installations set ``slurm.template``)."""


def default_mpiexec() -> str:
    """The ``mpiexec`` beside this Python (the pip ``mpich`` wheel puts it there), else PATH's."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else "mpiexec"


_MESSAGE_OVERHEAD = 1 * 2**20
"""Room in a SubmitJob message beside the circuit and the attachments' contents (paths, hashes,
the other fields)."""


class ConfigError(ValueError):
    """The configuration cannot be used; one line per problem."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-job and per-user limits, checked before a job is accepted (RESOURCE_EXHAUSTED)."""

    max_ranks: int = 16
    """MPI ranks of one job."""
    max_neurons: int = 10_000_000
    """Neurons of one circuit."""
    max_synapses: int = 10_000_000_000
    """Synapses of one circuit."""
    max_bytes_total: int = 64 * 2**30
    """Estimated network memory of one circuit, all ranks together, in bytes."""
    max_duration_ms: float = 3_600_000.0
    """Simulated time of one job, in ms."""
    max_time_limit_s: float = 7 * 24 * 3600.0
    """Wall-clock limit one job may ask for, in s."""
    max_circuit_bytes: int = 4 * 2**20
    """Size of a submitted circuit document, in bytes (also bounds the gRPC message size)."""
    max_attachments: int = 100
    """Files sent with one job (``SubmitJob`` attachments: the files its circuit names)."""
    max_attachment_bytes: int = 64 * 2**20
    """Size of all files sent with one job together, in bytes (``max_message_bytes`` must leave
    room for them and the circuit)."""
    max_active_jobs_per_user: int = 100
    """Queued plus running jobs of one user."""


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """The local target: ``brainsim run --ranks N`` on the server's machine."""

    max_concurrent_jobs: int = 1
    """Local jobs running at once; later ones wait in the queue (0 holds them all)."""
    mpiexec: str = field(default_factory=default_mpiexec)
    """The ``mpiexec`` that ``brainsim run`` starts ranks with where it does not fork them
    (:mod:`brainsim.exchange.forked`)."""
    python: str = sys.executable
    """The Python that runs ``-m brainsim run``."""
    kill_grace_s: float = 10.0
    """After SIGTERM to a cancelled job's process group, seconds before SIGKILL."""
    poll_interval_s: float = 0.25
    """How often output files and adopted processes are checked, in s."""


@dataclass(frozen=True, slots=True)
class SlurmConfig:
    """The Slurm target: ``sbatch`` from a template, polled with ``squeue``/``sacct``."""

    template: Path = DEFAULT_SBATCH_TEMPLATE
    """Batch-script template (``string.Template`` with ``$job_dir``, ``$command``, ...)."""
    partition: str = ""
    """Default ``--partition`` (empty: the cluster's default)."""
    account: str = ""
    """Default ``--account`` (empty: the user's default)."""
    default_time_limit_s: float = 3600.0
    """``--time`` for jobs that ask for none, in s."""
    poll_interval_s: float = 2.0
    """How often ``squeue`` is asked about the active jobs, in s."""
    use_jobcomp: bool = True
    """Read finished jobs with ``sacct -c`` (jobcomp text log) rather than the accounting DB."""
    mpiexec: str = field(default_factory=default_mpiexec)
    """``mpiexec`` as seen on the compute nodes."""
    python: str = sys.executable
    """Python as seen on the compute nodes."""
    sbatch: str = "sbatch"
    squeue: str = "squeue"
    sacct: str = "sacct"
    scancel: str = "scancel"
    extra_sbatch_args: tuple[str, ...] = ()
    """More ``sbatch`` options for every job (e.g. ``--qos=normal``)."""
    checkpoint_signal_s: int = 300
    """A job with checkpoints is submitted with ``--signal=B:USR1@S``: this many seconds
    before its time limit (at most half the limit) the run writes a checkpoint and stops, and
    the next Slurm job of the chain resumes it. Slurm may send the signal up to a minute early."""


@dataclass(frozen=True, slots=True)
class PynnConfig:
    """The ``pynn`` target: the circuit's PyNN script run on pyNN.nest on the server's machine
    (jobs share the local target's ``max_concurrent_jobs`` slots)."""

    python: str = ""
    """A Python that imports PyNN 0.13 and NEST (``import pyNN.nest``), e.g. the bench's
    reference environment. Empty: the target is unavailable."""


@dataclass(frozen=True, slots=True)
class EbrainsConfig:
    """The EBRAINS targets: PyNN scripts run on SpiNNaker or BrainScaleS-2 through the EBRAINS
    neuromorphic job queue (its REST API, version 3)."""

    url: str = "https://nmpi-v3.hbpneuromorphic.eu"
    """The job queue's base URL."""
    data_proxy_url: str = "https://data-proxy.ebrains.eu/api"
    """The EBRAINS data-proxy (collab Buckets), where a job's code archive is uploaded."""
    collab: str = ""
    """The collab whose quota jobs use when a request names none."""
    token_file: Path | None = None
    """A file holding the server's own EBRAINS token, used for jobs that bring none."""
    poll_interval_s: float = 30.0
    """How often the queue is asked about active jobs, in s."""
    request_timeout_s: float = 60.0
    """Limit of one HTTP request to the queue, in s."""


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """Which ended jobs the server deletes by itself (folder and record, as ``DeleteJob``
    does); a job that has not ended never is. The defaults keep everything."""

    max_age_days: float | None = None
    """Delete jobs that ended more than this many days ago (``None``: keep them)."""
    max_bytes_per_user: int | None = None
    """When the folders of a user's ended jobs take more than this many bytes together, delete
    that user's jobs that ended first until they take no more (``None``: no limit)."""
    sweep_every_s: float = 600.0
    """How often the policy is applied, in s (also once when the server starts)."""

    @property
    def active(self) -> bool:
        """True if the policy deletes anything at all."""
        return self.max_age_days is not None or self.max_bytes_per_user is not None


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Server certificate and key (PEM); with ``client_ca``, clients must present certificates."""

    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``brainsim serve`` needs."""

    data_root: Path
    """The only folder the server writes (job store, job folders, recordings)."""
    listen: str = "127.0.0.1:50051"
    """``HOST:PORT`` to listen on (port 0: any free port)."""
    token_file: Path | None = None
    """Bearer tokens (see :mod:`services.auth`); required unless ``insecure_no_auth``."""
    insecure_no_auth: bool = False
    """Serve everyone as ``anonymous``: only allowed on a loopback address."""
    allow_plaintext: bool = False
    """Allow a non-loopback address without TLS (tokens then travel in clear text)."""
    tls: TlsConfig | None = None
    recording_uri_base: str = ""
    """Prefix for recording URIs instead of ``file://<data_root>`` (where clients mount it)."""
    max_message_bytes: int = 72 * 2**20
    """Largest gRPC message the server receives or sends, in bytes: room for a circuit of
    ``limits.max_circuit_bytes`` and attachments of ``limits.max_attachment_bytes``. A larger
    request is refused by gRPC itself (RESOURCE_EXHAUSTED) before anything else is checked."""
    default_time_limit_s: float | None = None
    """Wall-clock limit of local jobs that ask for none (``None``: unlimited), in s."""
    address_file: Path | None = None
    """Write the bound ``HOST:PORT`` here once serving (useful with port 0)."""
    limits: Limits = field(default_factory=Limits)
    local: LocalConfig = field(default_factory=LocalConfig)
    slurm: SlurmConfig | None = None
    """``None``: this server has no Slurm target."""
    pynn: PynnConfig = field(default_factory=PynnConfig)
    """The ``pynn`` target (unavailable unless ``pynn.python`` is set)."""
    ebrains: EbrainsConfig | None = None
    """``None``: this server has no EBRAINS targets."""
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    """Which ended jobs are deleted by the server itself."""

    def problems(self) -> list[str]:
        """What makes this configuration unsafe or unusable (empty: fine)."""
        found: list[str] = []
        host = self.listen.rpartition(":")[0]
        if not host:
            found.append(f"listen: expected HOST:PORT, found {self.listen!r}")
        loopback = is_loopback(self.listen)
        if self.insecure_no_auth and not loopback:
            found.append(f"insecure_no_auth is only allowed on a loopback address, not {host}")
        if not self.insecure_no_auth and self.token_file is None:
            found.append("token_file is required (or insecure_no_auth for loopback development)")
        if self.tls is None and not loopback and not self.allow_plaintext:
            found.append(
                f"listening on {host} without TLS would send tokens in clear text: "
                "configure tls (cert, key) or set allow_plaintext"
            )
        if self.local.max_concurrent_jobs < 0:
            found.append("local.max_concurrent_jobs must be >= 0")
        if self.limits.max_circuit_bytes + 64 * 2**10 > self.max_message_bytes:
            found.append(
                "max_message_bytes must exceed limits.max_circuit_bytes by at least 64 KiB"
            )
        if self.limits.max_attachments < 0 or self.limits.max_attachment_bytes < 0:
            found.append("limits.max_attachments and limits.max_attachment_bytes must be >= 0")
        if self.slurm is not None and self.slurm.checkpoint_signal_s < 1:
            found.append("slurm.checkpoint_signal_s must be >= 1")
        if self.ebrains is not None and not (
            self.ebrains.poll_interval_s > 0 and self.ebrains.request_timeout_s > 0
        ):
            found.append("ebrains.poll_interval_s and ebrains.request_timeout_s must be > 0")
        found += _retention_problems(self.retention)
        return found

    def warnings(self) -> list[str]:
        """What works but is probably not meant (logged when the server starts)."""
        found: list[str] = []
        needed = (
            self.limits.max_circuit_bytes + self.limits.max_attachment_bytes + _MESSAGE_OVERHEAD
        )
        if self.limits.max_attachment_bytes > 0 and needed > self.max_message_bytes:
            found.append(
                f"max_message_bytes ({self.max_message_bytes}) leaves no room for attachments of "
                f"limits.max_attachment_bytes ({self.limits.max_attachment_bytes}) beside a "
                f"circuit of limits.max_circuit_bytes ({self.limits.max_circuit_bytes}): larger "
                f"submissions are refused by gRPC as RESOURCE_EXHAUSTED (set max_message_bytes "
                f"to at least {needed})"
            )
        return found


def _retention_problems(retention: RetentionConfig) -> list[str]:
    found = []
    age = retention.max_age_days
    if age is not None and not (math.isfinite(age) and age > 0):
        found.append(f"retention.max_age_days must be > 0 days (or null: keep), found {age!r}")
    size = retention.max_bytes_per_user
    if size is not None and size < 0:
        found.append(f"retention.max_bytes_per_user must be >= 0 (or null: no limit), found {size}")
    every = retention.sweep_every_s
    if not (math.isfinite(every) and every > 0):
        found.append(f"retention.sweep_every_s must be > 0 s, found {every!r}")
    return found


def is_loopback(listen: str) -> bool:
    """True if ``HOST:PORT`` is on a loopback interface only (``localhost``, 127/8, ``[::1]``)."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- reading a file ------------------------------------------------------------------------------


def _convert(value: Any, annotation: Any, where: str, base_dir: Path) -> Any:
    """``value`` as ``annotation`` (int, float, str, bool, Path, tuple[str, ...], X | None, or a
    config dataclass); :class:`ConfigError` says what was expected and what was found."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return None if value is None else _convert(value, options[0], where, base_dir)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, found {type(value).__name__}")
        return _build(annotation, value, where, base_dir)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, found {value!r}")
        return tuple(value)
    expected: dict[Any, tuple[type, ...]] = {
        bool: (bool,),
        int: (int,),
        float: (int, float),
        str: (str,),
        Path: (str, Path),
    }
    kinds = expected[annotation]
    if not isinstance(value, kinds) or (annotation is not bool and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {annotation.__name__}, found {value!r}")
    if annotation is Path:
        return base_dir / Path(str(value)).expanduser()
    return annotation(value)


def _build(cls: type[Any], mapping: Mapping[str, Any], where: str, base_dir: Path) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    problems = [
        f"{where}.{key}: unknown key (expected one of {', '.join(sorted(names))})".lstrip(".")
        for key in mapping
        if key not in names
    ]
    values: dict[str, Any] = {}
    for key, value in mapping.items():
        if key in names:
            try:
                values[key] = _convert(value, hints[key], f"{where}.{key}".lstrip("."), base_dir)
            except ConfigError as exc:
                problems.append(str(exc))
    missing = [
        f"{where}.{f.name}: required".lstrip(".")
        for f in dataclasses.fields(cls)
        if f.name not in mapping
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    problems += missing
    if problems:
        raise ConfigError("\n".join(problems))
    return cls(**values)


def parse_config(mapping: Mapping[str, Any], base_dir: Path) -> ServerConfig:
    """A :class:`ServerConfig` from a parsed document; relative paths resolve against ``base_dir``.

    ``slurm: {}`` (or ``slurm: true``) enables the Slurm target with its defaults.
    """
    document = dict(mapping)
    if document.get("slurm") is True:
        document["slurm"] = {}
    elif document.get("slurm") is False:
        document["slurm"] = None
    config: ServerConfig = _build(ServerConfig, document, "", base_dir)
    return config


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> ServerConfig:
    """Read a YAML configuration file (``None``: none) with ``overrides`` merged on top.

    ``overrides`` has the file's shape (e.g. from command-line flags); a section given there
    replaces only the keys it names. Its relative paths resolve against the working directory.
    """
    document: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        document = dict(loaded)
    base_dir = path.resolve().parent if path is not None else Path.cwd()
    for key, given in (overrides or {}).items():
        value = given.expanduser().resolve() if isinstance(given, Path) else given
        section = document.get(key)
        if isinstance(value, Mapping) and isinstance(section, Mapping):
            value = {**section, **value}
        document[key] = value
    try:
        return parse_config(document, base_dir)
    except ConfigError as exc:
        raise ConfigError(f"{path}:\n{exc}" if path is not None else str(exc)) from exc
