"""What the service checks before it accepts a job: the circuit, file references, and the limits.

All functions here are synchronous and free of gRPC; the servicer runs :func:`check_circuit` on a
worker thread (parsing and validating a large document takes a while) and turns the results into
status codes: violations -> INVALID_ARGUMENT, limit breaches -> RESOURCE_EXHAUSTED.

Circuits arrive as text without a folder (``base_dir=None``), so the validator rejects every
file reference (``from_file`` connectivity): no path a client writes is ever resolved on the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from brainsim.circuit import estimate_resources, parse_circuit, validate
from brainsim.errors import CircuitError
from services.config import Limits

__all__ = ["CircuitCheck", "LimitBreach", "Violation", "check_circuit", "check_limits"]


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
    seed: int = 0
    n_neurons: int = 0
    n_synapses: int = 0
    bytes_total: int = 0

    @property
    def valid(self) -> bool:
        """True when nothing is wrong."""
        return not self.violations


@dataclass(frozen=True, slots=True)
class LimitBreach:
    """A limit the job would exceed: what (``subject``) and by how much (``description``)."""

    subject: str
    description: str


def check_circuit(text: str) -> CircuitCheck:
    """Validate a circuit document given as YAML or JSON text; report every problem at once.

    The machine's memory is not a limit here (``memory_limit_bytes=0``): a job may run on other
    machines, and the server's own ``max_bytes_total`` decides (RESOURCE_EXHAUSTED).
    """
    try:
        circuit = parse_circuit(text, memory_limit_bytes=0)
    except Exception as exc:  # CircuitError, or a validator bug that validate() reports
        # Validate again for the problems as records (path, message); validate never raises.
        problems = validate(text, memory_limit_bytes=0)
        found = [Violation(p.path, p.message) for p in problems]
        if not isinstance(exc, CircuitError):
            found.append(Violation("", f"internal error while validating: {exc!r}"))
        return CircuitCheck(tuple(found))
    estimate = estimate_resources(circuit)
    return CircuitCheck(
        violations=(),
        circuit_name=circuit.name,
        duration_ms=circuit.simulation.duration_ms,
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
