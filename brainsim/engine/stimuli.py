"""Stimuli on one rank: which local neurons each stimulus drives, and with what.

Poisson inputs generated in step ``g`` arrive after the stimulus delay of ``d`` steps, in step
``g + d``, as a network spike emitted in step ``g`` would; their count is keyed by the
generation step, so the input sequence is a property of the neuron, not of the rank.
Rate and population encoders draw the same way, per step, with the rate of the sample shown;
their table holds each local target's expected count per step for every sample and the
presentations in steps. Spike-source arrays, latency and delta encoders and spike trains are
deterministic: they are expanded at build time into a schedule sorted by arrival step. All go
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
    DeltaStimulus,
    LatencyStimulus,
    NodeSelection,
    NoiseStimulus,
    PoissonStimulus,
    PopulationStimulus,
    RateStimulus,
    SpikeSourceArray,
    SpikeTrains,
    Target,
)
from brainsim.engine.encoders import (
    delta_events,
    encoder_values,
    latency_steps,
    population_probabilities,
    presentations,
    rate_probabilities,
)
from brainsim.engine.populations import CurrentTable, LocalPopulation
from brainsim.engine.values import per_neuron, stream_of
from brainsim.kernels.stimuli import (
    GUIDE_BITS,
    MODE_BERNOULLI,
    MODE_POISSON,
    POISSON_TABLE_LENGTH,
    RATE_META_COLUMNS,
    poisson_cdf_tables,
)

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
    yet applied. ``rate_*`` are the rate encoders' arguments of
    :func:`~brainsim.kernels.stimuli.rate_drive` (``rate_meta``, ``rate_gids``, ``rate_cols``
    as its ``local_idx``, ``rate_weight``, ``rate_lam``, ``rate_shows``).
    """

    currents: CurrentTable = field(default_factory=CurrentTable)
    poisson: PoissonTable = field(default_factory=PoissonTable.empty)
    schedule_steps: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    schedule_cols: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    schedule_w: Float64Array = field(default_factory=lambda: np.zeros(0))
    cursor: int = 0
    rate_meta: Int64Array = field(
        default_factory=lambda: np.zeros((0, RATE_META_COLUMNS), dtype=np.int64)
    )
    rate_gids: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rate_cols: Int64Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rate_weight: Float64Array = field(default_factory=lambda: np.zeros(0))
    rate_lam: Float64Array = field(default_factory=lambda: np.zeros(0))
    rate_shows: Int64Array = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))


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


def _data_targets(
    targets: tuple[Target, ...], pop: LocalPopulation, sizes: dict[str, int]
) -> tuple[Int64Array, Int64Array]:
    """``(idx, index)``: the local indices of ``pop`` that ``targets`` select, ascending, and
    each one's target index, which counts the neurons of ``targets`` in order (validation
    made sure that no neuron is selected twice)."""
    idx: list[Int64Array] = []
    index: list[Int64Array] = []
    base = 0
    for t in targets:
        ids = selection_indices(t.nodes, sizes[t.population])
        if t.population == pop.name:
            mine = (ids >= pop.lo) & (ids < pop.hi)
            idx.append(ids[mine] - pop.lo)
            index.append(base + np.flatnonzero(mine))
        base += ids.shape[0]
    if not idx:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    local, order = np.concatenate(idx), np.concatenate(index)
    ascending = np.argsort(local, kind="stable")
    return local[ascending], order[ascending]


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

    sizes = {name: p.size for name, p in circuit.populations.items()}
    rates = _RateParts()
    for name, stim in circuit.stimuli.items():
        path = f"stimuli.{name}"
        if isinstance(stim, DeltaStimulus):
            for pop in pops.values():
                _delta_stimulus(stim, pop, sizes, circuit, sched)
            continue
        if isinstance(stim, RateStimulus | LatencyStimulus | PopulationStimulus | SpikeTrains):
            for pop in pops.values():
                _data_stimulus(stim, pop, sizes, circuit, sched, rates)
            continue
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
    rates.fill(out)
    if sched:
        steps = np.concatenate([p[0] for p in sched])
        order = np.argsort(steps, kind="stable")
        out.schedule_steps = steps[order]
        out.schedule_cols = np.concatenate([p[1] for p in sched])[order]
        out.schedule_w = np.concatenate([p[2] for p in sched])[order]
    return out


@dataclass(slots=True)
class _RateParts:
    """The rate encoder segments of a rank as they are built, for :class:`LocalStimuli`."""

    meta: list[list[int]] = field(default_factory=list)
    gids: list[Int64Array] = field(default_factory=list)
    cols: list[Int64Array] = field(default_factory=list)
    weight: list[Float64Array] = field(default_factory=list)
    lam: list[Float64Array] = field(default_factory=list)
    shows: list[Int64Array] = field(default_factory=list)
    n_targets: int = 0
    n_lam: int = 0
    n_shows: int = 0

    def add(
        self,
        stream: int,
        delay_steps: int,
        mode: int,
        gids: Int64Array,
        cols: Int64Array,
        weight: Float64Array,
        lam: Float64Array,
        shows: Int64Array,
    ) -> None:
        """One segment: targets ``gids`` (ring-buffer columns ``cols``), ``lam`` of shape
        ``[n_samples, n_targets]``, presentations ``(onset, end, sample)``."""
        n = gids.shape[0]
        self.meta.append([self.n_targets, self.n_targets + n, stream, delay_steps, mode,
                          self.n_lam, self.n_shows, self.n_shows + shows.shape[0]])  # fmt: skip
        self.gids.append(gids)
        self.cols.append(cols)
        self.weight.append(weight)
        self.lam.append(lam.ravel())
        self.shows.append(shows)
        self.n_targets += n
        self.n_lam += lam.size
        self.n_shows += shows.shape[0]

    def fill(self, out: LocalStimuli) -> None:
        """Set ``out``'s ``rate_*`` tables (left empty without segments)."""
        if not self.meta:
            return
        out.rate_meta = np.array(self.meta, dtype=np.int64)
        out.rate_gids = np.concatenate(self.gids)
        out.rate_cols = np.concatenate(self.cols)
        out.rate_weight = np.concatenate(self.weight)
        out.rate_lam = np.concatenate(self.lam)
        out.rate_shows = np.ascontiguousarray(np.concatenate(self.shows))


def _data_stimulus(
    stim: RateStimulus | LatencyStimulus | PopulationStimulus | SpikeTrains,
    pop: LocalPopulation,
    sizes: dict[str, int],
    circuit: Circuit,
    sched: list[tuple[Int64Array, Int64Array, Float64Array]],
    rates: _RateParts,
) -> None:
    """Add ``stim``'s input to the local neurons of ``pop``: rate and population encoders to
    ``rates``, latency encoders and spike trains (deterministic) to the spike schedule
    ``sched``."""
    idx, index = _data_targets(stim.targets, pop, sizes)
    if idx.size == 0:
        return
    dt = circuit.simulation.dt_ms
    n_steps = circuit.n_steps
    path = f"stimuli.{stim.name}"
    gids = idx + pop.first_gid
    cols = idx + pop.col
    weight = _weights(stim, circuit, gids)
    delay_steps = max(1, round(stim.delay_ms / dt))
    if isinstance(stim, SpikeTrains):
        rows = stim.data.values
        starts = np.searchsorted(rows[:, 0], index, side="left")
        stops = np.searchsorted(rows[:, 0], index, side="right")
        counts = stops - starts
        picked = np.concatenate(
            [np.arange(a, b, dtype=np.int64) for a, b in zip(starts, stops, strict=True)]
        )
        steps = np.rint(rows[picked, 1] / dt).astype(np.int64)
        _schedule_spikes(steps, np.repeat(cols, counts), np.repeat(weight, counts),
                         delay_steps, n_steps, sched)  # fmt: skip
        return
    x = encoder_values(stim.data, stim.features)
    onsets, samples, window = presentations(stim.schedule, x.shape[0], dt, n_steps)
    if isinstance(stim, RateStimulus | PopulationStimulus):
        if isinstance(stim, RateStimulus):
            lam = rate_probabilities(stim, x[:, index], dt)
            mode = MODE_BERNOULLI if stim.mode == "bernoulli" else MODE_POISSON
        else:
            lam = population_probabilities(stim, x, dt, index)
            mode = MODE_POISSON
        shows = np.stack([onsets, onsets + window, samples], axis=1)
        rates.add(stream_of(path), delay_steps, mode, gids, cols, weight, lam, shows)
        return
    # The code of a sample may normalize over all its inputs: computed for every target.
    offsets = latency_steps(x, stim, dt, window)[samples][:, index]
    fires = offsets >= 0
    steps = (onsets[:, None] + offsets)[fires]
    n_shows = onsets.shape[0]
    _schedule_spikes(steps, np.tile(cols, n_shows)[fires.ravel()],
                     np.tile(weight, n_shows)[fires.ravel()], delay_steps, n_steps,
                     sched)  # fmt: skip


def _delta_stimulus(
    stim: DeltaStimulus,
    pop: LocalPopulation,
    sizes: dict[str, int],
    circuit: Circuit,
    sched: list[tuple[Int64Array, Int64Array, Float64Array]],
) -> None:
    """Add a delta encoder's events to the spike schedule ``sched``: rises to the local neurons
    of ``pop`` among ``targets``, falls (with ``off_spikes``) to those among ``targets_off``;
    row ``k`` of the series is at step ``round(start_ms / dt) + k round(step_ms / dt)``."""
    dt = circuit.simulation.dt_ms
    x = encoder_values(stim.data, stim.features)
    rises, falls = delta_events(x, stim.threshold, padding=stim.padding)
    row_steps = round(stim.start_ms / dt) + round(stim.step_ms / dt) * np.arange(
        x.shape[0], dtype=np.int64
    )
    delay_steps = max(1, round(stim.delay_ms / dt))
    for targets, events in ((stim.targets, rises), (stim.targets_off, falls)):
        if not targets:
            continue
        idx, index = _data_targets(targets, pop, sizes)
        if idx.size == 0:
            continue
        weight = _weights(stim, circuit, idx + pop.first_gid)
        rows, which = np.nonzero(events[:, index])
        _schedule_spikes(row_steps[rows], (idx + pop.col)[which], weight[which], delay_steps,
                         circuit.n_steps, sched)  # fmt: skip


def _weights(
    stim: RateStimulus | LatencyStimulus | PopulationStimulus | DeltaStimulus | SpikeTrains,
    circuit: Circuit,
    gids: Int64Array,
) -> Float64Array:
    """The weight of each target (one draw per neuron, keyed by gid)."""
    return per_neuron(
        stim.weight,
        seed=circuit.simulation.seed,
        path=f"stimuli.{stim.name}.weight",
        gids=gids,
        variables={},
    )


def _schedule_spikes(
    steps: Int64Array,
    cols: Int64Array,
    weight: Float64Array,
    delay_steps: int,
    n_steps: int,
    sched: list[tuple[Int64Array, Int64Array, Float64Array]],
) -> None:
    """Spikes at ``steps * dt`` into the schedule: a spike at ``t = m dt`` with a delay of
    ``d`` steps arrives in the update of step ``m + d - 1`` (as for spike-source arrays)."""
    arrival = steps + delay_steps - 1
    keep = (arrival >= 0) & (arrival < n_steps)
    sched.append((arrival[keep], cols[keep], weight[keep]))
