"""The run-time overrides of a circuit: ``brainsim run --duration-ms/--seed`` and the Python API."""

from __future__ import annotations

import dataclasses

from brainsim.circuit.spec import Circuit
from brainsim.errors import CircuitError

__all__ = ["with_overrides"]


def with_overrides(
    circuit: Circuit, *, duration_ms: float | None = None, seed: int | None = None
) -> Circuit:
    """``circuit`` with the run's duration and seed replaced (the normalized document too)."""
    sim = circuit.simulation
    new = dataclasses.replace(
        sim,
        duration_ms=sim.duration_ms if duration_ms is None else float(duration_ms),
        seed=sim.seed if seed is None else int(seed),
    )
    problems = []
    if not 0 < new.duration_ms < float("inf"):
        problems.append(f"--duration-ms: must be > 0, got {new.duration_ms}")
    elif abs(new.duration_ms / new.dt_ms - round(new.duration_ms / new.dt_ms)) > 1e-9:
        problems.append(
            f"--duration-ms: must be a multiple of dt_ms ({new.dt_ms}), got {new.duration_ms}"
        )
    if not 0 <= new.seed < 2**32:
        problems.append(f"--seed: must be in [0, 2**32), got {new.seed}")
    if problems:
        raise CircuitError(problems)
    document = dict(circuit.document)
    document["simulation"] = {
        **dict(document.get("simulation", {})),
        "duration_ms": new.duration_ms,
        "seed": new.seed,
    }
    return dataclasses.replace(circuit, simulation=new, document=document)
