"""The run-time overrides of a circuit: ``brainsim run --duration-ms/--seed`` and the Python API.

:func:`duration_problem` and :func:`seed_problem` are the one definition of what an override may
be; the job service checks submissions with them before it queues a job.
"""

from __future__ import annotations

import dataclasses
import math

from brainsim.circuit.build import MAX_STEPS
from brainsim.circuit.grid import check_grid_time
from brainsim.circuit.problems import ProblemLog
from brainsim.circuit.spec import Circuit
from brainsim.errors import CircuitError

__all__ = ["MAX_SEED", "duration_problem", "seed_problem", "with_overrides"]

MAX_SEED = 2**32 - 1
"""The largest seed (seeds are unsigned 32-bit numbers, as in the circuit format)."""


def duration_problem(duration_ms: float, dt_ms: float | None) -> str | None:
    """What is wrong with ``duration_ms`` as the simulated time of a run with time step
    ``dt_ms`` (``None``: not known yet, only the checks that need no time step); ``None``:
    nothing. It must be finite and > 0, at least one step, on the grid of ``dt_ms`` and at
    most :data:`~brainsim.circuit.build.MAX_STEPS` steps."""
    if not 0 < duration_ms < math.inf:
        return f"must be > 0, got {duration_ms}"
    if dt_ms is None:
        return None
    steps = duration_ms / dt_ms
    if steps > MAX_STEPS:
        return f"is {steps:.3g} steps of dt_ms; at most 2**40 ({MAX_STEPS:,}) are supported"
    log = ProblemLog()
    check_grid_time(log, (), duration_ms, dt_ms)
    problems = log.problems()
    return problems[0].message if problems else None


def seed_problem(seed: int) -> str | None:
    """What is wrong with ``seed`` as the seed of a run (``None``: nothing)."""
    if not 0 <= seed <= MAX_SEED:
        return f"must be in [0, 2**32), got {seed}"
    return None


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
    duration = None if duration_ms is None else duration_problem(new.duration_ms, new.dt_ms)
    if duration is not None:
        problems.append(f"--duration-ms: {duration}")
    bad_seed = None if seed is None else seed_problem(new.seed)
    if bad_seed is not None:
        problems.append(f"--seed: {bad_seed}")
    if problems:
        raise CircuitError(problems)
    document = dict(circuit.document)
    document["simulation"] = {
        **dict(document.get("simulation", {})),
        "duration_ms": new.duration_ms,
        "seed": new.seed,
    }
    return dataclasses.replace(circuit, simulation=new, document=document)
