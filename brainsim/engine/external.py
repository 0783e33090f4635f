"""Recordings of runs made by another simulator: the spikes a target returned (PyNN on NEST,
SpiNNaker or BrainScaleS-2) written as a brainsim recording, so that ``brainsim analyze``,
the job service's activity stream and downloads, and any Zarr reader treat them like a run of
brainsim's own engine.

The store has the layout of docs/recording.md with the circuit, its populations and the
presentations of its data-driven stimuli; its provenance names the ``backend`` that ran it.
It holds spikes only: state and weight recordings are not part of what such targets return.
A spike at time ``t`` is stored at step ``round(t / dt_ms)`` (brainsim's times are
``step * dt_ms``; NEST's and PyNN's lie on the same grid).
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import Circuit
from brainsim.engine.run import process_resources, run_info
from brainsim.errors import EngineError
from brainsim.exchange import LocalCommunicator
from brainsim.recording import ZarrRecorder
from brainsim.recording.base import RankResources

__all__ = ["SpikeTimes", "record_external_spikes"]

SpikeTimes = tuple[npt.NDArray[np.floating], npt.NDArray[np.integer]]
"""``(times_ms, node_ids)`` of one population's spikes, in any order."""


def _steps(
    circuit: Circuit, population: str, spikes: SpikeTimes
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The spikes of ``population`` as ``(steps, node_ids)`` sorted by step, then node id;
    :class:`EngineError` for a spike off the grid, outside the run or of a node that does not
    exist."""
    times = np.asarray(spikes[0], dtype=np.float64)
    ids = np.asarray(spikes[1])
    if times.shape != ids.shape or times.ndim != 1:
        raise EngineError(
            f"spikes of {population!r}: times {times.shape} and node ids {ids.shape} must be "
            "1-D and of equal length"
        )
    sim = circuit.simulation
    size = circuit.populations[population].size
    if ids.size and (not np.all(np.isfinite(times)) or ids.min() < 0 or ids.max() >= size):
        raise EngineError(
            f"spikes of {population!r}: node ids must lie in [0, {size}) and times be finite"
        )
    exact = times / sim.dt_ms
    steps = np.rint(exact).astype(np.int64)
    off_grid = np.abs(exact - steps) > 1e-6 * np.maximum(1.0, np.abs(exact))
    if np.any(off_grid):
        first = float(times[np.argmax(off_grid)])
        raise EngineError(
            f"spikes of {population!r}: the time {first!r} ms is not on the {sim.dt_ms} ms grid"
        )
    n_steps = round(sim.duration_ms / sim.dt_ms)
    if steps.size and (steps.min() < 0 or steps.max() > n_steps):
        raise EngineError(
            f"spikes of {population!r}: times must lie in [0, {sim.duration_ms}] ms, found "
            f"{float(times.min())!r} .. {float(times.max())!r}"
        )
    ids64 = ids.astype(np.int64)
    order = np.lexsort((ids64, steps))
    steps, ids64 = steps[order], ids64[order]
    twice = (np.diff(steps) == 0) & (np.diff(ids64) == 0)
    if np.any(twice):
        at = int(np.argmax(twice))
        raise EngineError(
            f"spikes of {population!r}: node {int(ids64[at])} spikes twice in the step at "
            f"{float(steps[at] * sim.dt_ms)!r} ms"
        )
    return steps, ids64


def record_external_spikes(
    circuit: Circuit,
    spikes: Mapping[str, SpikeTimes],
    store: str | Path,
    *,
    backend: str,
    overwrite: bool = False,
    wall_s: float | None = None,
    count_use: bool = False,
) -> None:
    """Write the spikes of a run of ``circuit`` made by ``backend`` (``pynn:nest``, ...) as a
    complete recording at ``store``.

    ``spikes`` holds every population the circuit records spikes of (others are an error);
    ``wall_s`` is how long the run took, recorded as its simulation time. ``count_use``: this
    process ran the simulator as its child and waited for it, so the CPU time and peak memory
    of both are the run's (``provenance.runs``); a run made elsewhere records none.
    """
    recorded = tuple(circuit.recordings.spikes)
    missing = [name for name in recorded if name not in spikes]
    extra = sorted(set(spikes) - set(recorded))
    if missing or extra:
        raise EngineError(
            f"the {backend} run returned spikes of {sorted(spikes)}; the circuit records "
            f"{list(recorded)} (missing: {missing}, not recorded: {extra})"
        )
    sorted_spikes = {name: _steps(circuit, name, spikes[name]) for name in recorded}
    info = run_info(circuit, 1)
    info = dataclasses.replace(
        info,
        reports=(),
        weights=(),
        provenance={**info.provenance, "backend": backend, "circuit_dir": None},
    )
    started = time.perf_counter()
    recorder = ZarrRecorder(store, LocalCommunicator(), overwrite=overwrite)
    recorder.open(info)
    try:
        for name, (steps, ids) in sorted_spikes.items():
            recorder.add_spikes(name, steps, ids)
        recorder.flush(circuit.simulation.duration_ms)
    except BaseException as exc:
        recorder.close("failed", build_s=0.0, reason=f"{type(exc).__name__}: {exc}")
        raise
    recorder.close(
        "complete",
        build_s=time.perf_counter() - started,
        sim_s=wall_s,
        resources=_with_children(process_resources()) if count_use else None,
    )


def _with_children(own: RankResources) -> RankResources:
    """``own`` plus the CPU time of the children this process waited for, and the larger of
    its peak memory and theirs."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    scale = 1 if sys.platform == "darwin" else 1024
    return RankResources(
        own.cpu_s + children.ru_utime + children.ru_stime,
        max(own.peak_rss_bytes, int(children.ru_maxrss) * scale),
    )
