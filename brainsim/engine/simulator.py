"""One rank's network and its step loop.

The loop advances time in *intervals* of ``k`` steps, where ``k`` is the smallest synaptic delay
in steps (ARCHITECTURE.md, decision 4; Arbor calls these epochs). Within an interval no spike
can reach any neuron before the interval ends, so every rank can update its neurons for all
``k`` steps without hearing from the others::

    for each interval [t0, t0 + k):
        add the interval's Poisson and spike-train input to the ring buffers
        for each population, one numba call for the interval's steps:
            currents(s) -> update(s) -> spike keys of s -> state samples due after s
        exchange the interval's keys (Allgatherv; sorted by step, then source gid)
        deliver the keys into ring buffers (rows s + delay >= t0 + k: never the current interval)
        record spikes; flush if due; stop if cancelled

Control messages ride on the exchange as negative keys, so deciding to flush or to stop needs no
collective of its own: rank 0 adds :data:`CONTROL_FLUSH` when a flush is due by the wall clock,
and any rank adds :data:`CONTROL_STOP` when it was asked to stop; sorted, they come first.

Delivering in key order, with every random draw keyed by gid (see :mod:`brainsim.engine.values`),
makes spike trains and sampled state bit-identical for any number of ranks. Spikes are stamped on
the grid: a neuron that crosses threshold in step ``s`` (from ``s * dt`` to ``(s + 1) * dt``)
spikes at ``(s + 1) * dt``, and a spike with delay ``d`` steps is felt in the update of step
``s + d``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import Circuit
from brainsim.engine.connectivity import DeliveryPlan, build_projection
from brainsim.engine.populations import (
    SAMPLE_CODES,
    STATE_UNITS,
    LocalPopulation,
    Sampler,
    build_population,
    separates_inhibition,
)
from brainsim.engine.stimuli import LocalStimuli, build_stimuli, selection_indices
from brainsim.exchange import Communicator, SpikeExchanger
from brainsim.partition import Decomposition, block_decomposition
from brainsim.recording.base import FinalStatus, Recorder, ReportSpec

__all__ = [
    "CONTROL_FLUSH",
    "CONTROL_STOP",
    "LocalNetwork",
    "RunConfig",
    "build_network",
    "report_specs",
    "simulate",
]

CONTROL_STOP = -2
CONTROL_FLUSH = -1

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class RunConfig:
    """How to run (not what): passed explicitly, never global.

    The recording is flushed (made durable and readable, progress published) when
    ``flush_every_s`` wall-clock seconds have passed on rank 0, and at the latest every
    ``flush_interval_ms`` of simulated time: fast runs then pay a flush's fixed cost rarely,
    slow ones show progress often. ``progress(simulated_ms, duration_ms)`` is called on rank 0
    after every interval;
    ``should_stop()`` is polled on every rank at each flush and stops the run as cancelled
    when it returns True on any rank.
    """

    flush_interval_ms: float = 1000.0
    flush_every_s: float = 2.0
    progress: Callable[[float, float], None] | None = None
    should_stop: Callable[[], bool] | None = None


@dataclass(slots=True)
class _Report:
    """Where one state report's samples come from on this rank."""

    population: str
    variable: str
    interval_steps: int
    local_idx: Int64Array
    positions: Int64Array
    columns: slice = field(default_factory=lambda: slice(0, 0))
    """This report's columns in its population's sample rows."""


@dataclass(slots=True)
class LocalNetwork:
    """Everything one rank simulates: its neurons, their stimuli and incoming synapses."""

    decomposition: Decomposition
    rank: int
    populations: dict[str, LocalPopulation]
    stimuli: LocalStimuli
    plan: DeliveryPlan
    buf_exc: npt.NDArray[np.float64]
    buf_inh: npt.NDArray[np.float64]
    min_delay_steps: int
    build_s: float
    reports: list[_Report] = field(default_factory=list)

    @property
    def reports_of(self) -> dict[str, list[tuple[int, _Report]]]:
        """The state reports of each population, with their indices."""
        out: dict[str, list[tuple[int, _Report]]] = {name: [] for name in self.populations}
        for idx, rep in enumerate(self.reports):
            out[rep.population].append((idx, rep))
        return out

    @property
    def n_synapses(self) -> int:
        """Synapses stored on this rank."""
        return self.plan.n_synapses

    @property
    def synapse_bytes(self) -> int:
        """Bytes of synapse storage on this rank."""
        return self.plan.nbytes


def report_specs(circuit: Circuit) -> tuple[ReportSpec, ...]:
    """One :class:`ReportSpec` per recorded (population, variable), in document order."""
    dt = circuit.simulation.dt_ms
    specs: list[ReportSpec] = []
    for rec in circuit.recordings.state:
        pop = circuit.populations[rec.population]
        interval = max(1, round(rec.interval_ms / dt))
        specs.extend(
            ReportSpec(
                population=rec.population,
                variable=var,
                units=STATE_UNITS[pop.model][var],
                interval_ms=interval * dt,
                start_ms=interval * dt,
                node_ids=selection_indices(rec.nodes, pop.size),
                n_samples=circuit.n_steps // interval,
            )
            for var in rec.variables
        )
    return tuple(specs)


def build_network(circuit: Circuit, comm: Communicator) -> LocalNetwork:
    """Build this rank's part of ``circuit`` (collective: agrees on the global minimum delay)."""
    start = time.perf_counter()
    names = list(circuit.populations)
    dec = block_decomposition(names, [p.size for p in circuit.populations.values()], comm.size)
    rank = comm.rank
    projections = [
        build_projection(circuit, proj, *dec.local_range(proj.target, rank))
        for proj in circuit.projections.values()
    ]
    local_delays = [(p.min_delay_steps, p.max_delay_steps) for p in projections if p.n_synapses > 0]
    all_delays = [d for part in comm.allgather(local_delays) for d in part]
    min_delay = min((d[0] for d in all_delays), default=1)
    max_delay = max((d[1] for d in all_delays), default=1)
    # Rows s .. s + max_delay can be pending at once; an interval's deliveries land at most
    # max_delay steps ahead of its first step.
    n_slots = max_delay + min_delay
    seed = circuit.simulation.seed
    dt = circuit.simulation.dt_ms
    ranges = {name: dec.local_range(name, rank) for name in names}
    columns: dict[str, int] = {}
    n_local = 0
    for name in names:
        columns[name] = n_local
        n_local += ranges[name][1] - ranges[name][0]
    split = {name: separates_inhibition(pop) for name, pop in circuit.populations.items()}
    buf_exc = np.zeros((n_slots, n_local), dtype=np.float64)
    buf_inh = np.zeros_like(buf_exc) if any(split.values()) else buf_exc
    populations = {
        name: build_population(spec, *ranges[name], seed=seed, dt_ms=dt, col=columns[name])
        for name, spec in circuit.populations.items()
    }
    plan = DeliveryPlan.build(
        projections,
        [(name, p.gid_offset, p.size) for name, p in circuit.populations.items()],
        columns,
        split,
    )
    del projections  # the plan holds the synapses now
    network = LocalNetwork(
        decomposition=dec,
        rank=rank,
        populations=populations,
        stimuli=build_stimuli(circuit, populations),
        plan=plan,
        buf_exc=buf_exc,
        buf_inh=buf_inh,
        min_delay_steps=min_delay,
        build_s=0.0,
    )
    for report in report_specs(circuit):
        local = populations[report.population]
        inside = (report.node_ids >= local.lo) & (report.node_ids < local.hi)
        network.reports.append(
            _Report(
                population=report.population,
                variable=report.variable,
                interval_steps=round(report.interval_ms / dt),
                local_idx=report.node_ids[inside] - local.lo,
                positions=np.flatnonzero(inside).astype(np.int64),
            )
        )
    for name, pop in populations.items():
        pop.sampler = _sampler(pop, network.reports_of[name], min_delay)
    network.build_s = time.perf_counter() - start
    return network


def _sampler(pop: LocalPopulation, reports: list[tuple[int, _Report]], k: int) -> Sampler:
    """One sampler for all of ``pop``'s reports: every gcd of their intervals, report after
    report in its columns (each report learns its columns)."""
    if not reports:
        return Sampler()
    every = math.gcd(*[rep.interval_steps for _, rep in reports])
    codes, idx = [], []
    col = 0
    for _, rep in reports:
        rep.columns = slice(col, col + rep.local_idx.shape[0])
        col += rep.local_idx.shape[0]
        codes.append(np.full(rep.local_idx.shape[0], SAMPLE_CODES[pop.model][rep.variable]))
        idx.append(rep.local_idx)
    rows = k // every + 1
    return Sampler(
        every=every,
        var=np.concatenate(codes).astype(np.int64),
        idx=np.concatenate(idx).astype(np.int64),
        samples=np.zeros((rows, col), dtype=np.float32),
    )


def _record_samples(
    recorder: Recorder,
    pop: LocalPopulation,
    reports: list[tuple[int, _Report]],
    t0: int,
    n_rows: int,
) -> None:
    """Hand the sample rows a population's kernel took in an interval to the recorder.

    Row ``r`` was taken once ``first + r * every`` steps were complete (``first``: the first
    multiple of ``every`` after ``t0``); a report gets the rows that fall on its own interval,
    as one block.
    """
    every = pop.sampler.every
    first = -(-(t0 + 1) // every) * every  # steps completed when row 0 was taken
    for idx, rep in reports:
        stride = rep.interval_steps // every
        # The report's rows are those after a multiple of its interval: an arithmetic run.
        start = (-first // every) % stride
        if start >= n_rows:
            continue
        rows = pop.sampler.samples[start:n_rows:stride, rep.columns]
        recorder.add_state_block(
            idx, (first + start * every) // rep.interval_steps - 1, rep.positions, rows
        )


def _record_spikes(
    recorder: Recorder,
    pending: list[Int64Array],
    recorded: list[tuple[str, int, int]],
    n_gids: int,
) -> None:
    """Hand the spikes since the last flush to the recorder, one call per population.

    ``pending`` holds keys ``step * n_gids + gid`` in ascending order; the spike of step ``s``
    is stamped ``(s + 1) * dt``.
    """
    if not pending:
        return
    keys = np.concatenate(pending)
    steps = keys // n_gids
    gids = keys - steps * n_gids
    for name, offset, size in recorded:
        sel = (gids >= offset) & (gids < offset + size)
        if sel.any():
            recorder.add_spikes(name, steps[sel] + 1, gids[sel] - offset)


def simulate(
    circuit: Circuit,
    network: LocalNetwork,
    comm: Communicator,
    exchanger: SpikeExchanger,
    recorder: Recorder,
    config: RunConfig,
) -> FinalStatus:
    """Run the step loop to the end (or until cancelled); returns the final status."""
    dt = circuit.simulation.dt_ms
    seed = circuit.simulation.seed
    n_steps = circuit.n_steps
    dec = network.decomposition
    n_gids = dec.n_gids
    k = network.min_delay_steps
    pops = list(network.populations.values())
    max_local = sum(p.n for p in pops) * k
    keys = np.empty(max_local + 2, dtype=np.int64)  # + the control keys
    reports_of = network.reports_of
    recorded = [
        (name, int(dec.gid_offsets[dec.index(name)]), int(dec.sizes[dec.index(name)]))
        for name in circuit.recordings.spikes
    ]
    flush_steps = max(1, round(config.flush_interval_ms / dt))
    last_flush = 0
    last_flush_wall = time.monotonic()
    pending: list[Int64Array] = []  # exchanged spikes not yet handed to the recorder
    t0 = 0
    while t0 < n_steps:
        t1 = min(t0 + k, n_steps)
        n_keys = 0
        network.stimuli.apply_interval(t0, t1 - t0, seed, network.buf_exc, network.buf_inh)
        for pop in pops:
            n_keys, n_rows = pop.advance(t0, t1, n_gids, seed, network.buf_exc,
                                         network.buf_inh, keys, n_keys)  # fmt: skip
            if n_rows:
                _record_samples(recorder, pop, reports_of[pop.name], t0, n_rows)
        if config.should_stop is not None and config.should_stop():
            keys[n_keys] = CONTROL_STOP
            n_keys += 1
        if comm.rank == 0 and time.monotonic() - last_flush_wall >= config.flush_every_s:
            keys[n_keys] = CONTROL_FLUSH
            n_keys += 1
        received = exchanger.exchange(keys[:n_keys])
        n_control = int(np.searchsorted(received, 0))
        stop = n_control > 0 and received[0] == CONTROL_STOP
        flush_due = n_control > 0 and received[n_control - 1] == CONTROL_FLUSH
        spikes = received[n_control:]
        network.plan.deliver(spikes, t0, n_gids, network.buf_exc, network.buf_inh)
        if recorded and spikes.shape[0]:
            pending.append(spikes + t0 * n_gids)  # keys of absolute steps
        t0 = t1
        if comm.rank == 0 and config.progress is not None:
            config.progress(t0 * dt, n_steps * dt)
        if flush_due or stop or t0 - last_flush >= flush_steps or t0 >= n_steps:
            last_flush, last_flush_wall = t0, time.monotonic()
            _record_spikes(recorder, pending, recorded, n_gids)
            pending.clear()
            recorder.flush(t0 * dt)
            if stop and t0 < n_steps:
                return "cancelled"
    return "complete"
