"""Stimuli on one rank: which local neurons each stimulus drives, and with what.

Poisson inputs generated in step ``g`` arrive after the stimulus delay of ``d`` steps, in step
``g + d``, as a network spike emitted in step ``g`` would; their count is keyed by the
generation step, so the input sequence is a property of the neuron, not of the rank.
Spike-source arrays are expanded at build time into a schedule sorted by arrival step. Both go
into the ring buffers an interval at a time. Current stimuli (DC, noise) become each
population's :class:`~brainsim.engine.populations.CurrentTable`, applied step by step by the
population's kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
from brainsim.engine.populations import CurrentTable, LocalPopulation
from brainsim.engine.values import per_neuron, stream_of
from brainsim.kernels.stimuli import poisson_cdf_tables, poisson_drive

__all__ = ["LocalStimuli", "PoissonTable", "build_stimuli", "selection_indices"]

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


def selection_indices(nodes: NodeSelection, size: int) -> Int64Array:
    """Population-local ids selected by ``nodes``, ascending."""
    if nodes.ids is not None:
        return np.asarray(nodes.ids, dtype=np.int64)
    stop = size if nodes.stop is None else min(nodes.stop, size)
    return np.arange(nodes.start, stop, nodes.step, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class PoissonTable:
    """Every (Poisson stimulus, local neuron) pair of a rank, for one
    :func:`~brainsim.kernels.stimuli.poisson_drive` call per interval: one segment per stimulus
    and population (``lo, hi, stream, delay_steps, draw_lo, draw_hi``), the targets end to end.
    """

    segments: Int64Array
    gids: Int64Array
    columns: Int64Array
    lam: Float64Array
    table_of: Int64Array
    cdf: Float64Array
    guide: Int64Array
    weight: Float64Array

    @classmethod
    def merge(cls, parts: list[PoissonTable]) -> PoissonTable:
        """One table of several, with their targets and CDF tables laid end to end."""
        rows = np.cumsum([0, *[p.cdf.shape[0] for p in parts]])
        starts = np.cumsum([0, *[p.gids.shape[0] for p in parts]])
        segments = np.concatenate([p.segments for p in parts])
        segments[:, :2] += np.repeat(starts[:-1], [p.segments.shape[0] for p in parts])[:, None]
        return cls(
            segments=segments,
            gids=np.concatenate([p.gids for p in parts]),
            columns=np.concatenate([p.columns for p in parts]),
            lam=np.concatenate([p.lam for p in parts]),
            table_of=np.concatenate(
                [
                    np.where(p.table_of >= 0, p.table_of + r, -1)
                    for p, r in zip(parts, rows[:-1], strict=True)
                ]
            ),
            cdf=np.concatenate([p.cdf for p in parts]),
            guide=np.concatenate([p.guide for p in parts]),
            weight=np.concatenate([p.weight for p in parts]),
        )


@dataclass(slots=True)
class LocalStimuli:
    """The spike inputs (Poisson drive, spike trains) of one rank, into its ring buffers.

    Current stimuli (DC, noise) live with each population as a
    :class:`~brainsim.engine.populations.CurrentTable`.
    """

    poisson: PoissonTable | None = None
    schedule_steps: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    schedule_cols: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    schedule_w: Float64Array = field(default_factory=lambda: np.zeros(0))
    cursor: int = 0

    def apply_interval(
        self,
        first_step: int,
        n_steps: int,
        seed: int,
        buf_exc: Float64Array,
        buf_inh: Float64Array,
    ) -> None:
        """Add the spike inputs of an interval to the ring buffers.

        The rows of the interval already hold the network spikes delivered before it; adding
        these afterwards keeps each cell's summation order independent of the decomposition.
        """
        d = self.poisson
        if d is not None:
            poisson_drive(
                seed, d.segments, d.gids, d.columns, d.lam, d.table_of, d.cdf, d.guide, d.weight,
                first_step, n_steps, buf_exc, buf_inh,
            )  # fmt: skip
        steps = self.schedule_steps
        end = first_step + n_steps
        n_slots = buf_exc.shape[0]
        while self.cursor < steps.shape[0] and steps[self.cursor] < end:
            row = int(steps[self.cursor]) % n_slots
            c, w = self.schedule_cols[self.cursor], self.schedule_w[self.cursor]
            if w >= 0.0:
                buf_exc[row, c] += w
            else:
                buf_inh[row, c] += w
            self.cursor += 1


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


def _table(parts: list[tuple[int, int, Int64Array, Any]], extra: list[int]) -> tuple[Any, ...]:
    """Flat ``(meta, idx, values)`` of per-stimulus ``(first, stop, idx, values)`` parts."""
    width = 4 + (1 if extra else 0)
    meta = np.zeros((len(parts), width), dtype=np.int64)
    pos = 0
    for d, (first, stop, idx, _) in enumerate(parts):
        meta[d, :4] = (first, stop, pos, pos + idx.shape[0])
        if extra:
            meta[d, 4] = extra[d]
        pos += idx.shape[0]
    if not parts:
        return meta, np.zeros(0, dtype=np.int64), None
    idx = np.concatenate([p[2] for p in parts])
    return meta, idx, np.concatenate([p[3] for p in parts])


def build_stimuli(circuit: Circuit, pops: dict[str, LocalPopulation]) -> LocalStimuli:
    """The rank's spike inputs; sets each population's :class:`CurrentTable`."""
    dt = circuit.simulation.dt_ms
    seed = circuit.simulation.seed
    n_steps = circuit.n_steps
    out = LocalStimuli()
    poisson: list[PoissonTable] = []
    sched: list[tuple[Int64Array, Int64Array, Float64Array]] = []
    dc_parts: dict[str, list[tuple[int, int, Int64Array, Float64Array]]] = {n: [] for n in pops}
    noise_parts: dict[str, list[tuple[int, int, Int64Array, Float64Array]]] = {n: [] for n in pops}
    noise_streams: dict[str, list[int]] = {n: [] for n in pops}
    noise_gids: dict[str, list[Int64Array]] = {n: [] for n in pops}

    def steps_of(start_ms: float, stop_ms: float | None) -> tuple[int, int]:
        first = round(start_ms / dt)
        return first, n_steps if stop_ms is None else round(stop_ms / dt)

    for name, stim in circuit.stimuli.items():
        path = f"stimuli.{name}"
        for pname, pop in pops.items():
            idx = _local_targets(stim.targets, pop, circuit.populations[pname].size)
            if idx is None or idx.size == 0:
                continue
            gids = idx + pop.first_gid

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
            if isinstance(stim, PoissonStimulus):
                first, stop = steps_of(stim.start_ms, stim.stop_ms)
                lam = value("rate_hz", stim.rate_hz) * dt / 1000.0
                table_of, cdf, guide = poisson_cdf_tables(lam)
                segment = [0, idx.shape[0], stream_of(path), max(1, round(stim.delay_ms / dt)),
                           first, stop]  # fmt: skip
                poisson.append(
                    PoissonTable(
                        segments=np.array([segment], dtype=np.int64),
                        gids=gids,
                        columns=idx + pop.col,
                        lam=lam,
                        table_of=table_of,
                        cdf=cdf,
                        guide=guide,
                        weight=weight,
                    )
                )
            elif isinstance(stim, DCStimulus):
                first, stop = steps_of(stim.start_ms, stim.stop_ms)
                amp = value("amplitude_pA", stim.amplitude_pA) * weight
                dc_parts[pname].append((first, stop, idx, amp))
            elif isinstance(stim, NoiseStimulus):
                first, stop = steps_of(stim.start_ms, stim.stop_ms)
                vals = np.stack(
                    [value("mean_pA", stim.mean_pA), value("std_pA", stim.std_pA), weight], axis=1
                )
                noise_parts[pname].append((first, stop, idx, vals))
                noise_streams[pname].append(stream_of(path))
                noise_gids[pname].append(gids)
            elif isinstance(stim, SpikeSourceArray):
                d = max(1, round(stim.delay_ms / dt))
                # A spike at t = m * dt with delay d arrives in the update of step m + d - 1.
                arrival = np.rint(np.asarray(stim.spike_times_ms) / dt).astype(np.int64) + d - 1
                arrival = arrival[(arrival >= 0) & (arrival < n_steps)]
                n_t = idx.shape[0]
                sched.append(
                    (np.repeat(arrival, n_t), np.tile(idx + pop.col, arrival.shape[0]),
                     np.tile(weight, arrival.shape[0]))
                )  # fmt: skip
    for pname, pop in pops.items():
        dc_meta, dc_idx, dc_amp = _table(dc_parts[pname], [])
        nz_meta, nz_idx, nz_val = _table(noise_parts[pname], noise_streams[pname])
        gid_parts = noise_gids[pname]
        pop.currents = CurrentTable(
            dc_meta=dc_meta,
            dc_idx=dc_idx,
            dc_amp=np.zeros(0) if dc_amp is None else dc_amp,
            noise_meta=nz_meta,
            noise_idx=nz_idx,
            noise_gid=np.concatenate(gid_parts) if gid_parts else np.zeros(0, dtype=np.int64),
            noise_val=np.zeros((0, 3)) if nz_val is None else nz_val,
        )
    if poisson:
        out.poisson = PoissonTable.merge(poisson)
    if sched:
        steps = np.concatenate([p[0] for p in sched])
        order = np.argsort(steps, kind="stable")
        out.schedule_steps = steps[order]
        out.schedule_cols = np.concatenate([p[1] for p in sched])[order]
        out.schedule_w = np.concatenate([p[2] for p in sched])[order]
    return out
