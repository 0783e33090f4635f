"""Stimuli on one rank: which local neurons each stimulus drives, and with what.

Poisson inputs generated in step ``g`` arrive after the stimulus delay of ``d`` steps, in step
``g + d``, as a network spike emitted in step ``g`` would; their count is keyed by the
generation step, so the input sequence is a property of the neuron, not of the rank.
Spike-source arrays are expanded at build time into a schedule sorted by arrival step. Both go
into the ring buffers an interval at a time. Current stimuli (DC, noise) become the rank's
:class:`~brainsim.engine.populations.CurrentTable`, added to the external current step by step.
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
from brainsim.kernels.stimuli import GUIDE_BITS, POISSON_TABLE_LENGTH, poisson_cdf_tables

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
    words: npt.NDArray[np.uint32] = field(init=False, repr=False, compare=False)
    """Each target's last four Philox words (see the kernel), kept across intervals."""
    block: Int64Array = field(init=False, repr=False, compare=False)
    """The index of each target's ``words`` (-1: none yet)."""

    def __post_init__(self) -> None:
        # A fresh, empty cache for these targets (the table is frozen; its cache is not).
        n = self.gids.shape[0]
        object.__setattr__(self, "words", np.zeros((n, 4), dtype=np.uint32))
        object.__setattr__(self, "block", np.full(n, -1, dtype=np.int64))

    @classmethod
    def empty(cls) -> PoissonTable:
        """A table without targets (a rank no Poisson stimulus reaches)."""
        no_int, no_float = np.zeros(0, dtype=np.int64), np.zeros(0)
        return cls(
            segments=np.zeros((0, 6), dtype=np.int64),
            gids=no_int,
            columns=no_int,
            lam=no_float,
            table_of=no_int,
            cdf=np.zeros((0, POISSON_TABLE_LENGTH)),
            guide=np.zeros((0, 1 << GUIDE_BITS), dtype=np.int64),
            weight=no_float,
        )

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
    """The stimuli of one rank: spike inputs (Poisson drive, spike trains), which the step loop
    adds into the ring buffers at the start of each interval, and current inputs (DC, noise),
    added to each step's external current.

    ``schedule_*`` lists every spike-train input by arrival step; ``cursor`` is the first not
    yet applied.
    """

    currents: CurrentTable = field(default_factory=CurrentTable)
    poisson: PoissonTable = field(default_factory=PoissonTable.empty)
    schedule_steps: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    schedule_cols: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    schedule_w: Float64Array = field(default_factory=lambda: np.zeros(0))
    cursor: int = 0


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
    """The rank's stimuli, for ``pops`` laid out in the rank's ring-buffer columns."""
    dt = circuit.simulation.dt_ms
    seed = circuit.simulation.seed
    n_steps = circuit.n_steps
    out = LocalStimuli()
    poisson: list[PoissonTable] = []
    sched: list[tuple[Int64Array, Int64Array, Float64Array]] = []
    dc_parts: list[tuple[int, int, Int64Array, Float64Array]] = []
    noise_parts: list[tuple[int, int, Int64Array, Float64Array]] = []
    noise_streams: list[int] = []
    noise_gids: list[Int64Array] = []

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
                dc_parts.append((first, stop, idx + pop.col, amp))
            elif isinstance(stim, NoiseStimulus):
                first, stop = steps_of(stim.start_ms, stim.stop_ms)
                vals = np.stack(
                    [value("mean_pA", stim.mean_pA), value("std_pA", stim.std_pA), weight], axis=1
                )
                noise_parts.append((first, stop, idx + pop.col, vals))
                noise_streams.append(stream_of(path))
                noise_gids.append(gids)
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
    dc_meta, dc_idx, dc_amp = _table(dc_parts, [])
    nz_meta, nz_idx, nz_val = _table(noise_parts, noise_streams)
    out.currents = CurrentTable(
        dc_meta=dc_meta,
        dc_idx=dc_idx,
        dc_amp=np.zeros(0) if dc_amp is None else dc_amp,
        noise_meta=nz_meta,
        noise_idx=nz_idx,
        noise_gid=np.concatenate(noise_gids) if noise_gids else np.zeros(0, dtype=np.int64),
        noise_val=np.zeros((0, 3)) if nz_val is None else nz_val,
        noise_cache=np.zeros((nz_idx.shape[0], 4)),
        noise_block=np.full(nz_idx.shape[0], -1, dtype=np.int64),
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
