"""What the service checks before it accepts a job: attachments, the circuit, and the limits.

All functions here are synchronous and free of gRPC; the servicer runs :func:`check_circuit` on a
worker thread (parsing and validating a large document takes a while) and turns the results into
status codes: violations -> INVALID_ARGUMENT, limit breaches -> RESOURCE_EXHAUSTED.

A circuit's file references (``from_file`` connectivity, stimulus data) resolve only against the
files sent with it: :func:`check_attachments` checks their paths, count and size first, the
servicer writes them into a fresh folder (:func:`services.jobdir.write_files`), and
:func:`check_circuit` validates the circuit as if it lay there (``base_dir``), with brainsim's own
rules (relative, inside that folder, links included). No other path a client writes is ever
resolved on the server; ``ValidateCircuit`` passes no folder, so there every file reference is a
problem.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from brainsim import backends
from brainsim.circuit import estimate_resources, parse_circuit, validate
from brainsim.circuit.overrides import with_overrides
from brainsim.circuit.spec import Circuit
from brainsim.errors import CircuitError
from services.config import Limits
from services.jobdir import attachment_path_problem

__all__ = [
    "Attachment",
    "CircuitCheck",
    "LimitBreach",
    "Violation",
    "check_attachments",
    "check_circuit",
    "check_limits",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem: a dotted path into the document (or request) and what is wrong there."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class CircuitCheck:
    """The result of checking a circuit document.

    When ``violations`` is empty, the other fields describe the circuit; otherwise they are
    zero/empty.
    """

    violations: tuple[Violation, ...]
    circuit_name: str = ""
    duration_ms: float = 0.0
    dt_ms: float = 0.0
    seed: int = 0
    n_neurons: int = 0
    n_synapses: int = 0
    bytes_total: int = 0
    target_violations: tuple[Violation, ...] = ()
    """What the requested target cannot express (paths into the circuit document); the job is
    then refused with FAILED_PRECONDITION rather than INVALID_ARGUMENT: the circuit is valid."""

    @property
    def valid(self) -> bool:
        """True when nothing is wrong."""
        return not self.violations


@dataclass(frozen=True, slots=True)
class LimitBreach:
    """A limit the job would exceed: what (``subject``) and by how much (``description``)."""

    subject: str
    description: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a circuit (``SubmitJobRequest.attachments``)."""

    path: str
    """Relative to the circuit's folder, as the circuit names it."""
    content: bytes
    sha256: str = ""
    """The SHA-256 the client says ``content`` has (hex); empty: not given."""


def check_attachments(attachments: Sequence[Attachment], limits: Limits) -> list[Violation]:
    """Every problem with the files sent with a circuit, at ``attachments[i].path`` (or
    ``.sha256``), or ``attachments`` for their number and total size.

    Paths must pass :func:`~services.jobdir.attachment_path_problem`, be distinct, and none may
    lie inside another (``a.npy`` and ``a.npy/b.npy`` cannot both be files). Too many files are
    reported alone (their paths are not looked at: the answer stays small).
    """
    found: list[Violation] = []
    if len(attachments) > limits.max_attachments:
        found.append(
            Violation(
                "attachments",
                f"{len(attachments)} files, this server takes at most {limits.max_attachments} "
                "per job",
            )
        )
        return found
    total = sum(len(attachment.content) for attachment in attachments)
    if total > limits.max_attachment_bytes:
        found.append(
            Violation(
                "attachments",
                f"{total} bytes in all, this server takes at most {limits.max_attachment_bytes} "
                "per job",
            )
        )
    files: dict[str, int] = {}
    folders: dict[str, int] = {}
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        problem = attachment_path_problem(attachment.path)
        if problem is None:
            problem = _placement_problem(attachment.path, index, files, folders)
        if problem is not None:
            found.append(Violation(f"{where}.path", problem))
        if attachment.sha256:
            if not _SHA256.fullmatch(attachment.sha256):
                found.append(Violation(f"{where}.sha256", "must be 64 lowercase hex digits"))
            else:
                actual = hashlib.sha256(attachment.content).hexdigest()
                if actual != attachment.sha256:
                    found.append(
                        Violation(
                            f"{where}.sha256",
                            f"the content has SHA-256 {actual}, not the one given: the file "
                            "was damaged or changed on the way",
                        )
                    )
    return found


def _placement_problem(
    path: str, index: int, files: dict[str, int], folders: dict[str, int]
) -> str | None:
    """Whether ``path`` (attachment ``index``) clashes with an earlier one; records it if not."""
    if path in files:
        return f"{path!r} is attached twice (also attachments[{files[path]}])"
    if path in folders:
        return f"{path!r} is a folder of attachments[{folders[path]}] and cannot also be a file"
    parts = path.split("/")
    ancestors = ["/".join(parts[:end]) for end in range(1, len(parts))]
    for ancestor in ancestors:
        if ancestor in files:
            other = files[ancestor]
            return f"{path!r} lies inside {ancestor!r}, which is a file (attachments[{other}])"
    files[path] = index
    for ancestor in ancestors:
        folders.setdefault(ancestor, index)
    return None


def check_circuit(
    text: str,
    base_dir: str | None = None,
    *,
    memory_limit_bytes: int | None = 0,
    backend: str = "numba_mpi",
    duration_ms: float | None = None,
    seed: int | None = None,
) -> CircuitCheck:
    """Validate a circuit document given as YAML or JSON text; report every problem at once.

    ``base_dir`` is the folder the circuit's file references resolve in (the files sent with
    it); ``None``: the circuit may not name files.

    ``memory_limit_bytes`` is the simulator's own memory check: ``0`` (the default) none, as
    for a job whose ranks may run on other machines (the server's ``max_bytes_total`` decides,
    RESOURCE_EXHAUSTED); ``None`` the physical memory of this machine, which a one-rank run on
    it checks before it starts (``brainsim run``), so a local one-rank job is checked the same.

    ``backend``: the target's backend (``brainsim.backends``), whose check of the circuit with
    the job's ``duration_ms`` and ``seed`` (the synapses a PyNN script lists depend on the
    seed) gives ``target_violations``.
    """
    try:
        circuit = parse_circuit(text, base_dir=base_dir, memory_limit_bytes=memory_limit_bytes)
    except Exception as exc:  # CircuitError, or a validator bug that validate() reports
        # Validate again for the problems as records (path, message); validate never raises.
        problems = validate(text, base_dir=base_dir, memory_limit_bytes=memory_limit_bytes)
        found = [Violation(p.path, p.message) for p in problems]
        if not isinstance(exc, CircuitError):
            found.append(Violation("", f"internal error while validating: {exc!r}"))
        return CircuitCheck(tuple(found))
    estimate = estimate_resources(circuit)
    return CircuitCheck(
        target_violations=_target_violations(circuit, backend, duration_ms, seed),
        violations=(),
        circuit_name=circuit.name,
        duration_ms=circuit.simulation.duration_ms,
        dt_ms=circuit.simulation.dt_ms,
        seed=circuit.simulation.seed,
        n_neurons=int(estimate.n_neurons),
        n_synapses=int(estimate.n_synapses),
        bytes_total=int(estimate.bytes_total),
    )


def check_limits(
    limits: Limits,
    *,
    n_ranks: int,
    duration_ms: float,
    time_limit_s: float | None,
    circuit: CircuitCheck,
) -> list[LimitBreach]:
    """Every per-job limit the job would exceed (empty: within limits)."""
    measured: Mapping[str, tuple[float, float, str]] = {
        "n_ranks": (n_ranks, limits.max_ranks, "ranks"),
        "n_neurons": (circuit.n_neurons, limits.max_neurons, "neurons"),
        "n_synapses": (circuit.n_synapses, limits.max_synapses, "synapses"),
        "bytes_total": (circuit.bytes_total, limits.max_bytes_total, "bytes of network memory"),
        "duration_ms": (duration_ms, limits.max_duration_ms, "ms of simulated time"),
        "time_limit_s": (time_limit_s or 0.0, limits.max_time_limit_s, "s of wall-clock time"),
    }
    return [
        LimitBreach(subject, f"{value:g} {unit} asked for, this server allows at most {limit:g}")
        for subject, (value, limit, unit) in measured.items()
        if value > limit
    ]


def _target_violations(
    circuit: Circuit, backend: str, duration_ms: float | None, seed: int | None
) -> tuple[Violation, ...]:
    """What ``backend`` cannot express of ``circuit`` run for ``duration_ms`` with ``seed``
    (none when the overrides themselves are wrong: the request's violations say so)."""
    if backend == "numba_mpi":
        return ()
    try:
        circuit = with_overrides(circuit, duration_ms=duration_ms, seed=seed)
    except CircuitError:
        return ()
    return tuple(Violation(v.path, v.reason) for v in backends.backend(backend).check(circuit))
