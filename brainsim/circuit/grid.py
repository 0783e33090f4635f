"""Times on the simulation's grid: the one tolerance and checks that validation uses for them."""

from __future__ import annotations

from brainsim.circuit.problems import Path, ProblemLog

__all__ = ["RELATIVE_TOLERANCE", "check_grid_time", "is_multiple"]

RELATIVE_TOLERANCE = 1e-9
"""How far (relative) a time may be from a multiple of dt_ms and still count as on the grid."""


def is_multiple(value: float, step: float) -> bool:
    """Whether ``value`` is a whole multiple of ``step`` (within :data:`RELATIVE_TOLERANCE`)."""
    ratio = value / step
    return abs(ratio - round(ratio)) <= RELATIVE_TOLERANCE * max(1.0, ratio)


def check_grid_time(log: ProblemLog, where: Path, value: float, dt_ms: float) -> None:
    """Record at ``where`` a time shorter than ``dt_ms`` or, if not, off its grid."""
    if value < dt_ms * (1 - RELATIVE_TOLERANCE):
        log.add(where, f"must be >= dt_ms ({dt_ms}), got {value}")
    elif not is_multiple(value, dt_ms):
        log.add(where, f"must be a multiple of dt_ms ({dt_ms}), got {value}")
