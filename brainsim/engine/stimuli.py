"""Stimuli on one rank: which local neurons each stimulus drives, and its input for a step.

Poisson inputs generated in step ``g`` arrive after the stimulus delay of ``d`` steps, in step
``g + d``, as a network spike emitted in step ``g`` would; their count is keyed by the generation
step, so the input sequence is a property of the neuron, not of
the rank. Spike-source arrays are expanded at build time into a per-population schedule sorted
by arrival step. Current stimuli (DC, noise) are added to the step's external current.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import (
    Circuit,
    DCStimulus,
    NodeSelection,
    NoiseStimulus,
    PoissonStimulus,
    SpikeSourceArray,
    Target,
)
from brainsim.engine.populations import LocalPopulation
from brainsim.engine.values import per_neuron, stream_of
from brainsim.kernels.stimuli import (
    add_current,
    noise_current,
    poisson_cdf_tables,
    poisson_drive,
)

__all__ = ["LocalStimuli", "build_stimuli", "selection_indices"]

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


def selection_indices(nodes: NodeSelection, size: int) -> Int64Array:
    """Population-local ids selected by ``nodes``, ascending."""
    if nodes.ids is not None:
        return np.asarray(nodes.ids, dtype=np.int64)
    stop = size if nodes.stop is None else min(nodes.stop, size)
    return np.arange(nodes.start, stop, nodes.step, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class _Drive:
    """One stimulus's targets among one population's local neurons, with per-target values."""

    stream: int
    gids: Int64Array
    local_idx: Int64Array
    first_step: int
    stop_step: int
    a: Float64Array
    b: Float64Array
    weight: Float64Array
    delay_steps: int = 0
    tables: tuple[Int64Array, Float64Array, Int64Array] = field(
        default_factory=lambda: (
            np.zeros(0, np.int64),
            np.zeros((0, 0)),
            np.zeros((0, 0), np.int64),
        )
    )


@dataclass(slots=True)
class LocalStimuli:
    """All stimuli acting on one :class:`LocalPopulation`."""

    poisson: list[_Drive] = field(default_factory=list)
    dc: list[_Drive] = field(default_factory=list)
    noise: list[_Drive] = field(default_factory=list)
    schedule_steps: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    schedule_idx: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    schedule_w: Float64Array = field(default_factory=lambda: np.zeros(0))
    cursor: int = 0

    def apply_interval(
        self, pop: LocalPopulation, first_step: int, n_steps: int, seed: int
    ) -> None:
        """Add the spike inputs (Poisson, spike trains) of an interval to ``pop``'s ring buffers.

        The rows of the interval already hold the network spikes delivered before it; adding
        these afterwards keeps each cell's summation order independent of the decomposition.
        """
        for d in self.poisson:
            table_of, cdf, guide = d.tables
            poisson_drive(
                seed, d.stream, d.gids, d.local_idx, d.a, table_of, cdf, guide, d.weight,
                first_step, n_steps, d.delay_steps, d.first_step, d.stop_step, pop.buf_exc,
                pop.buf_inh,
            )  # fmt: skip
        steps = self.schedule_steps
        end = first_step + n_steps
        while self.cursor < steps.shape[0] and steps[self.cursor] < end:
            row = int(steps[self.cursor]) % pop.n_slots
            i, w = self.schedule_idx[self.cursor], self.schedule_w[self.cursor]
            if w >= 0.0:
                pop.buf_exc[row, i] += w
            else:
                pop.buf_inh[row, i] += w
            self.cursor += 1

    def apply_currents(self, pop: LocalPopulation, step: int, seed: int) -> None:
        """Set ``pop``'s external current for ``step``: ``i_e`` plus DC and noise stimuli."""
        pop.i_ext_pA[:] = pop.i_base_pA
        for d in self.dc:
            if d.first_step <= step < d.stop_step:
                add_current(d.local_idx, d.a, pop.i_ext_pA)
        for d in self.noise:
            if d.first_step <= step < d.stop_step:
                noise_current(
                    seed, d.stream, d.gids, d.local_idx, step, d.a, d.b, d.weight, pop.i_ext_pA
                )


def _local_targets(
    targets: tuple[Target, ...], pop: LocalPopulation, size: int
) -> Int64Array | None:
    """Local indices of ``pop`` that ``targets`` select (``None`` when none do)."""
    chosen: list[Int64Array] = []
    for t in targets:
        if t.population == pop.name:
            ids = selection_indices(t.nodes, size)
            chosen.append(ids[(ids >= pop.lo) & (ids < pop.hi)] - pop.lo)
    if not chosen:
        return None
    return np.unique(np.concatenate(chosen))


def build_stimuli(circuit: Circuit, pops: dict[str, LocalPopulation]) -> dict[str, LocalStimuli]:
    """The stimuli of every local population."""
    dt = circuit.simulation.dt_ms
    seed = circuit.simulation.seed
    n_steps = circuit.n_steps
    out = {name: LocalStimuli() for name in pops}
    sched: dict[str, list[tuple[Int64Array, Int64Array, Float64Array]]] = {n: [] for n in pops}

    def steps_of(start_ms: float, stop_ms: float | None) -> tuple[int, int]:
        first = round(start_ms / dt)
        return first, n_steps if stop_ms is None else round(stop_ms / dt)

    for name, stim in circuit.stimuli.items():
        path = f"stimuli.{name}"
        for pname, pop in pops.items():
            idx = _local_targets(stim.targets, pop, circuit.populations[pname].size)
            if idx is None or idx.size == 0:
                continue
            gids = idx + pop.gid_offset + pop.lo

            def value(
                field_name: str, v: object, gids: Int64Array = gids, path: str = path
            ) -> Float64Array:
                return per_neuron(
                    v,  # type: ignore[arg-type]
                    seed=seed,
                    path=f"{path}.{field_name}",
                    gids=gids,
                    variables={},
                )

            weight = value("weight", stim.weight)
            zeros = np.zeros(idx.shape[0])
            if isinstance(stim, PoissonStimulus):
                first, stop = steps_of(stim.start_ms, stim.stop_ms)
                lam = value("rate_hz", stim.rate_hz) * dt / 1000.0
                out[pname].poisson.append(
                    _Drive(stream_of(path), gids, idx, first, stop, lam, zeros, weight,
                           delay_steps=max(1, round(stim.delay_ms / dt)),
                           tables=poisson_cdf_tables(lam))
                )  # fmt: skip
            elif isinstance(stim, DCStimulus):
                first, stop = steps_of(stim.start_ms, stim.stop_ms)
                amp = value("amplitude_pA", stim.amplitude_pA) * weight
                out[pname].dc.append(_Drive(0, gids, idx, first, stop, amp, zeros, weight))
            elif isinstance(stim, NoiseStimulus):
                first, stop = steps_of(stim.start_ms, stim.stop_ms)
                mean, std = value("mean_pA", stim.mean_pA), value("std_pA", stim.std_pA)
                out[pname].noise.append(
                    _Drive(stream_of(path), gids, idx, first, stop, mean, std, weight)
                )
            elif isinstance(stim, SpikeSourceArray):
                d = max(1, round(stim.delay_ms / dt))
                # A spike at t = m * dt with delay d arrives in the update of step m + d - 1.
                arrival = np.rint(np.asarray(stim.spike_times_ms) / dt).astype(np.int64) + d - 1
                arrival = arrival[(arrival >= 0) & (arrival < n_steps)]
                n_t = idx.shape[0]
                sched[pname].append(
                    (np.repeat(arrival, n_t), np.tile(idx, arrival.shape[0]),
                     np.tile(weight, arrival.shape[0]))
                )  # fmt: skip
    for pname, parts in sched.items():
        if parts:
            steps = np.concatenate([p[0] for p in parts])
            order = np.argsort(steps, kind="stable")
            out[pname].schedule_steps = steps[order]
            out[pname].schedule_idx = np.concatenate([p[1] for p in parts])[order]
            out[pname].schedule_w = np.concatenate([p[2] for p in parts])[order]
    return out
