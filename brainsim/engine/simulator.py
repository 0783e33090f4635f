"""One rank's network and its step loop.

The loop advances time in *intervals* of ``k`` steps, where ``k`` is the smallest synaptic delay
in steps (ARCHITECTURE.md, decision 4; Arbor calls these epochs). Within an interval no spike
can reach any neuron before the interval ends, so every rank can update its neurons for all
``k`` steps without hearing from the others::

    for each interval [t0, t0 + k):
        add the interval's Poisson and spike-train input to the ring buffers
        for each step s: currents(s) -> every population's update(s) -> spike keys, samples
        exchange the interval's keys (Allgatherv; sorted by step, then source gid)
        deliver the keys into ring buffers (rows s + delay >= t0 + k: never the current interval)

Many intervals run in one call of compiled code (:func:`brainsim.kernels.loop.run_intervals`),
which calls the MPI collectives itself; Python only sees the loop between calls, to hand spikes
and samples to the recorder, flush, report progress and poll for cancellation. Calls are sized
to take a few tens of milliseconds, so the per-interval cost is that of the compiled code alone.

Control messages ride on the exchange as negative keys, so deciding to flush or to stop needs no
collective of its own: rank 0 adds :data:`CONTROL_FLUSH` when a flush is due by the wall clock,
and any rank adds :data:`CONTROL_STOP` when it was asked to stop; sorted, they come first, and
every rank's call returns after the interval that carried them.

Delivering in key order, with every random draw keyed by gid (see :mod:`brainsim.engine.values`),
makes spike trains and sampled state bit-identical for any number of ranks, and for any split of
the run into calls. Spikes are stamped on the grid: a neuron that crosses threshold in step
``s`` (from ``s * dt`` to ``(s + 1) * dt``) spikes at ``(s + 1) * dt``, and a spike with delay
``d`` steps is felt in the update of step ``s + d``.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import (
    Circuit,
    NoiseStimulus,
    PoissonStimulus,
    PopulationStimulus,
    RateStimulus,
)
from brainsim.engine.connectivity import DeliveryPlan, count_projection, expected_mode
from brainsim.engine.plasticity import PlasticPlan, WeightSnapshots
from brainsim.engine.populations import (
    SAMPLE_CODES,
    STATE_UNITS,
    CurrentTable,
    LocalPopulation,
    NeuronTable,
    build_population,
    separates_inhibition,
)
from brainsim.engine.stimuli import (
    LocalStimuli,
    PoissonTable,
    build_stimuli,
    selection_indices,
)
from brainsim.engine.values import draws_per_neuron, sampling_kernel
from brainsim.errors import EngineError
from brainsim.exchange import Communicator, NativeExchange, SpikeExchanger
from brainsim.kernels.advance import KINDS
from brainsim.kernels.compiler import CompileHelper, Job, compile_job, job
from brainsim.kernels.delivery import encode_spikes
from brainsim.kernels.loop import (
    CONTROL_CHECKPOINT,
    CONTROL_FLUSH,
    CONTROL_STOP,
    EVERYTHING,
    MPI_FAILED,
    PART_COMPILE_S,
    SAW_CHECKPOINT,
    SAW_FLUSH,
    SAW_STOP,
    Currents,
    Neurons,
    Poisson,
    Schedule,
    Synapses,
    Variant,
    gather,
    kind_switches,
    loaded,
    loop_parts,
    mode_switches,
    run_intervals,
    run_variant,
    variant_of,
)
from brainsim.kernels.plasticity import PlasticArrays
from brainsim.models import SYNAPSE_MODELS
from brainsim.partition import Decomposition, block_decomposition
from brainsim.recording.base import FinalStatus, Recorder, ReportSpec, WeightSpec

__all__ = [
    "CONTROL_FLUSH",
    "CONTROL_STOP",
    "LocalNetwork",
    "RunConfig",
    "Simulated",
    "build_network",
    "cached_step_loop",
    "early_jobs",
    "expected_variant",
    "load_step_loop",
    "network_variant",
    "report_specs",
    "simulate",
    "start_numba",
    "weight_specs",
]

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class RunConfig:
    """How to run (not what): passed explicitly, never global.

    The recording is flushed (made durable and readable, progress published) when
    ``flush_every_s`` wall-clock seconds have passed on rank 0, and at the latest every
    ``flush_interval_ms`` of simulated time: fast runs then pay a flush's fixed cost rarely,
    slow ones show progress often. ``progress(simulated_ms, duration_ms)`` is called on rank 0
    between calls of the compiled loop (every ``call_s`` or so of wall clock, at most one call
    per exchange interval); ``should_stop()`` is polled on every rank before each call and
    stops the run as cancelled, at the end of the next interval, when it returns True on any
    rank.
    """

    flush_interval_ms: float = 1000.0
    flush_every_s: float = 1.0
    progress: Callable[[float, float], None] | None = None
    should_stop: Callable[[], bool] | None = None
    call_s: float = 0.02
    checkpoint_every_ms: float | None = None
    """Write a checkpoint every this much simulated time (rounded to whole steps); ``None``:
    none (see :mod:`brainsim.engine.checkpoint`)."""
    should_checkpoint: Callable[[], bool] | None = None
    """Polled like ``should_stop``; True on any rank: checkpoint at the end of the next
    interval and stop (status ``checkpointed``), as Slurm's signal before a time limit asks."""
    step_loop: Literal["auto", "general", "circuit"] = "auto"
    """Which compiled step loop runs: ``auto`` as :func:`load_step_loop` chooses, ``general``
    the one with every part, ``circuit`` the circuit's own variant (the results are the same,
    bit for bit: a test runs both)."""


@dataclass(frozen=True, slots=True)
class Simulated:
    """How :func:`simulate` ended: the final status, the wall-clock seconds of the step loop
    (first step to last, with the flushes during the run; not the final write, nor the weight
    recordings) and of the weight recordings' synapse ids and snapshots (``weights_s``: like
    NEST's reading of weights after its ``Simulate``, a write, not simulation)."""

    status: FinalStatus
    sim_s: float
    weights_s: float = 0.0
    checkpoint_s: float = 0.0
    """Wall-clock seconds spent writing checkpoints (left out of ``sim_s`` too)."""

    @classmethod
    def ended(
        cls, status: FinalStatus, began: float, weights_s: float, checkpoint_s: float = 0.0
    ) -> Simulated:
        """``status``, with the seconds since ``began`` (``time.perf_counter``) less
        ``weights_s`` and ``checkpoint_s``."""
        elapsed = time.perf_counter() - began - weights_s - checkpoint_s
        return cls(status, elapsed, weights_s, checkpoint_s)


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
    neurons: NeuronTable
    stimuli: LocalStimuli
    plan: DeliveryPlan
    plastic: PlasticPlan
    buf_exc: npt.NDArray[np.float64]
    buf_inh: npt.NDArray[np.float64]
    min_delay_steps: int
    build_s: float
    reports: list[_Report] = field(default_factory=list)

    @property
    def reports_of(self) -> dict[str, list[tuple[int, _Report]]]:
        """The state reports of each population, with their indices."""
        return _by_population(self.reports, self.populations)

    @property
    def n_synapses(self) -> int:
        """Synapses stored on this rank (static and plastic)."""
        return self.plan.n_synapses + self.plastic.n_synapses

    @property
    def synapse_bytes(self) -> int:
        """Bytes of synapse storage on this rank (static and plastic; the plastic traces and
        post-spike histories are neuron state, :attr:`PlasticPlan.state_bytes`)."""
        return self.plan.nbytes + self.plastic.synapse_bytes


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


def weight_specs(circuit: Circuit) -> tuple[WeightSpec, ...]:
    """One :class:`WeightSpec` per weight recording (the plastic projections), in order."""
    n_steps = circuit.n_steps
    specs = []
    for rec in circuit.recordings.weights:
        projection = circuit.projections[rec.projection]
        target = circuit.populations[projection.target].variant
        interval = (
            None
            if rec.interval_ms is None
            else max(1, round(rec.interval_ms / circuit.simulation.dt_ms))
        )
        specs.append(
            WeightSpec(
                projection=rec.projection,
                model=projection.synapse.model,
                units=target.weight_unit,
                max_snapshots=1 if interval is None else n_steps // interval + 2,
                interval_ms=None if interval is None else interval * circuit.simulation.dt_ms,
            )
        )
    return tuple(specs)


def build_network(circuit: Circuit, comm: Communicator, *, stagger: bool = False) -> LocalNetwork:
    """Build this rank's part of ``circuit`` (collective: agrees on the global minimum delay).

    ``stagger`` (collective, the same on every rank; for cold runs whose ranks share one
    machine): the other ranks sleep until rank 0 has built its synapses, compiling the
    construction kernels, and then build theirs with the kernels from numba's cache, instead
    of every rank compiling the same kernels at once on the same cores."""
    if stagger and comm.rank != 0:
        _sleeping_barrier(comm)
    start = time.perf_counter()
    names = list(circuit.populations)
    dec = block_decomposition(names, [p.size for p in circuit.populations.values()], comm.size)
    rank = comm.rank
    counted = [
        count_projection(circuit, proj, *dec.local_range(proj.target, rank))
        for proj in circuit.projections.values()
    ]
    plastic_counted = [c for c in counted if c.proj.plastic]
    for c in plastic_counted:
        c.const_weight = None  # a plastic synapse's weight is its own state
    ranges = {name: dec.local_range(name, rank) for name in names}
    columns: dict[str, int] = {}
    n_local = 0
    for name in names:
        columns[name] = n_local
        n_local += ranges[name][1] - ranges[name][0]
    split = {name: separates_inhibition(pop) for name, pop in circuit.populations.items()}
    gid_blocks = [(name, p.gid_offset, p.size) for name, p in circuit.populations.items()]
    static_counted = [c for c in counted if not c.proj.plastic]
    plan, delay_ranges = DeliveryPlan.build(circuit, static_counted, gid_blocks, columns, split)
    plastic_store, plastic_delays = DeliveryPlan.build(
        circuit, plastic_counted, gid_blocks, columns, split
    )
    plastic = PlasticPlan.build(
        circuit,
        plastic_store,
        [c.proj for c in plastic_counted],
        [ranges[c.proj.target] for c in plastic_counted],
        [
            d_max if c.n_synapses > 0 else 0
            for (_, d_max), c in zip(plastic_delays, plastic_counted, strict=True)
        ],
    )
    local_delays = [
        d
        for d, c in zip(
            delay_ranges + plastic_delays, static_counted + plastic_counted, strict=True
        )
        if c.n_synapses > 0
    ]
    del counted, static_counted, plastic_counted, plastic_store
    if stagger and comm.rank == 0:
        _sleeping_barrier(comm)  # the synapse kernels are in the cache: the others go on
    all_delays = [d for part in comm.allgather(local_delays) for d in part]
    min_delay = min((d[0] for d in all_delays), default=1)
    max_delay = max((d[1] for d in all_delays), default=1)
    # An interval [t, t + k) is delivered after its last step, when rows up to t + k - 1 are
    # consumed (and cleared): its spikes land in steps t + k .. t + k - 1 + max_delay, which
    # are max_delay consecutive steps, so max_delay rows hold everything pending. (A ring of
    # max_delay + min_delay rows would leave half of Brunel's rows idle and out of the cache.)
    n_slots = max_delay
    seed = circuit.simulation.seed
    dt = circuit.simulation.dt_ms
    buf_exc = np.zeros((n_slots, n_local), dtype=np.float64)
    buf_inh = np.zeros_like(buf_exc) if any(split.values()) else buf_exc
    populations = {
        name: build_population(spec, *ranges[name], seed=seed, dt_ms=dt, col=columns[name])
        for name, spec in circuit.populations.items()
    }
    reports = _local_reports(circuit, populations)
    reports_of = _by_population(reports, populations)
    samples = {
        name: _sampling(pop, reports_of[name])
        for name, pop in populations.items()
        if reports_of[name]
    }
    network = LocalNetwork(
        decomposition=dec,
        rank=rank,
        populations=populations,
        neurons=NeuronTable.build(list(populations.values()), samples),
        stimuli=build_stimuli(circuit, populations),
        plan=plan,
        plastic=plastic,
        buf_exc=buf_exc,
        buf_inh=buf_inh,
        min_delay_steps=min_delay,
        build_s=0.0,
        reports=reports,
    )
    network.build_s = time.perf_counter() - start
    return network


def _by_population(
    reports: list[_Report], populations: Iterable[str]
) -> dict[str, list[tuple[int, _Report]]]:
    """The reports of each population, with their indices in ``reports``."""
    out: dict[str, list[tuple[int, _Report]]] = {name: [] for name in populations}
    for idx, rep in enumerate(reports):
        out[rep.population].append((idx, rep))
    return out


def _local_reports(circuit: Circuit, populations: dict[str, LocalPopulation]) -> list[_Report]:
    """Where each state report's samples come from on this rank (document order)."""
    dt = circuit.simulation.dt_ms
    out = []
    for report in report_specs(circuit):
        local = populations[report.population]
        inside = (report.node_ids >= local.lo) & (report.node_ids < local.hi)
        out.append(
            _Report(
                population=report.population,
                variable=report.variable,
                interval_steps=round(report.interval_ms / dt),
                local_idx=report.node_ids[inside] - local.lo,
                positions=np.flatnonzero(inside).astype(np.int64),
            )
        )
    return out


def _sampling(
    pop: LocalPopulation, reports: list[tuple[int, _Report]]
) -> tuple[int, Int64Array, Int64Array]:
    """What ``pop`` samples for all of its reports: every gcd of their intervals, report after
    report in its columns (each report learns its columns); ``(every, state rows, indices)``."""
    every = math.gcd(*[rep.interval_steps for _, rep in reports])
    codes, idx = [], []
    col = 0
    for _, rep in reports:
        rep.columns = slice(col, col + rep.local_idx.shape[0])
        col += rep.local_idx.shape[0]
        codes.append(np.full(rep.local_idx.shape[0], SAMPLE_CODES[pop.model][rep.variable]))
        idx.append(rep.local_idx)
    return every, np.concatenate(codes).astype(np.int64), np.concatenate(idx).astype(np.int64)


def _record_samples(
    recorder: Recorder,
    every: int,
    block: npt.NDArray[np.float32],
    reports: list[tuple[int, _Report]],
    t0: int,
) -> None:
    """Hand the sample rows a population took in a call of the loop (from step ``t0``) to the
    recorder.

    Row ``r`` was taken once ``first + r * every`` steps were complete (``first``: the first
    multiple of ``every`` after ``t0``); a report gets the rows that fall on its own interval,
    as one block.
    """
    n_rows = block.shape[0]
    first = -(-(t0 + 1) // every) * every  # steps completed when row 0 was taken
    for idx, rep in reports:
        stride = rep.interval_steps // every
        # The report's rows are those after a multiple of its interval: an arithmetic run.
        start = (-first // every) % stride
        if start >= n_rows:
            continue
        recorder.add_state_block(
            idx,
            (first + start * every) // rep.interval_steps - 1,
            rep.positions,
            block[start:n_rows:stride, rep.columns],
        )


def _record_spikes(
    recorder: Recorder,
    keys: Int64Array,
    recorded: list[tuple[str, int, int]],
    n_gids: int,
) -> None:
    """Hand the spikes since the last flush to the recorder, one call per population.

    ``keys`` are ``step * n_gids + gid`` in ascending order; the spike of step ``s`` is
    stamped ``(s + 1) * dt``.
    """
    if not keys.shape[0]:
        return
    steps = keys // n_gids
    gids = keys - steps * n_gids
    for name, offset, size in recorded:
        sel = (gids >= offset) & (gids < offset + size)
        if sel.any():
            recorder.add_spikes(name, steps[sel] + 1, gids[sel] - offset)


class _Loop:
    """The buffers of the compiled loop, kept across its calls (see :func:`simulate`)."""

    def __init__(
        self,
        network: LocalNetwork,
        native: NativeExchange,
        max_steps: int,
        compiled: tuple[StepLoop, Variant],
    ) -> None:
        self.network = network
        self.native = native
        self.compiled, self.variant = compiled
        n_local = network.buf_exc.shape[1]
        self.keys = np.empty(n_local * network.min_delay_steps + 2, dtype=np.int64)
        self.pending = np.empty(1024, dtype=np.int64)
        self.n_pending = 0
        self.recv = np.empty(1024 if native.n_ranks > 1 else 0, dtype=np.int64)
        self.counts = np.zeros(native.n_ranks + 1, dtype=np.int64)
        self.counts32 = np.zeros(native.n_ranks, dtype=np.int32)
        self.displs32 = np.zeros(native.n_ranks, dtype=np.int32)
        self.samples, self.rows = network.neurons.sample_buffer(max_steps)

    def run(
        self,
        t0: int,
        t_end: int,
        t_stop: int,
        circuit: Circuit,
        max_intervals: int,
        control: list[int],
    ) -> tuple[int, int]:
        """Run intervals from ``t0`` (see :func:`~brainsim.kernels.loop.run_intervals`), none
        past ``t_stop``; return the step reached and the control bits seen."""
        net, nat = self.network, self.native
        nr, st, plan = net.neurons, net.stimuli, net.plan
        po, cur = st.poisson, st.currents
        sim = circuit.simulation
        t, self.n_pending, self.pending, self.recv, st.cursor, seen, plastic = self.compiled(
            t0, t_end, t_stop, circuit.n_steps, net.min_delay_steps, max_intervals,
            net.decomposition.n_gids, sim.seed, sim.dt_ms, np.array(control, dtype=np.int64),
            gather(Neurons, nr), gather(Currents, cur), gather(Poisson, po),
            gather(Schedule, st), st.cursor, gather(Synapses, plan), net.plastic.arrays,
            self.samples, self.rows, net.buf_exc, net.buf_inh, self.keys, self.pending,
            self.n_pending, nat.n_ranks, nat.allgather, nat.allgatherv, nat.comm,
            nat.int64_type, self.counts, self.counts32, self.displs32, self.recv, *self.variant,
        )  # fmt: skip
        net.plastic.arrays = plastic
        if seen & MPI_FAILED:
            raise EngineError("the MPI spike exchange returned an error")
        return int(t), int(seen)


StepLoop = Callable[..., tuple[int, int, Int64Array, Int64Array, int, int, PlasticArrays]]
"""A compiled step loop: :data:`~brainsim.kernels.loop.run_intervals` or
:data:`~brainsim.kernels.loop.run_variant`."""


def network_variant(network: LocalNetwork) -> Variant:
    """The smallest step loop that runs ``network``'s tables (its models, inputs, plastic
    projections) on its ranks."""
    st = network.stimuli
    return variant_of(
        gather(Neurons, network.neurons), gather(Currents, st.currents),
        gather(Poisson, st.poisson), gather(Schedule, st), gather(Synapses, network.plan),
        network.plastic.arrays, network.decomposition.n_ranks,
    )  # fmt: skip


def start_numba() -> bool:
    """Start numba's compiler and runtime in this process (about 0.4 s: its code generator,
    its runtime library, a first kernel from the cache) without loading the step loop, whose
    variant follows from the built tables. A run does this before construction, so that the
    construction time (``build_s``) is construction alone, as when the loop loaded there.

    Return whether that first kernel (one every run uses) was in numba's cache: when it was
    not, the cache is empty (a fresh installation) and the run is a cold one."""
    i8 = np.zeros(0, np.int64)
    args = (i8, 0, i8, 0, 0)
    cached = loaded(encode_spikes, args)
    encode_spikes(*args)
    return cached


def probe_args(native: NativeExchange) -> tuple[Any, ...]:
    """Arguments of the types the step loop gets from :class:`_Loop` (its arguments before the
    switches), for empty tables: what loading, compiling or listing its parts calls it with."""
    i8 = np.zeros(0, np.int64)
    empty = LocalStimuli()
    return (
        0, 0, 0, 0, 1, 0, 1, 0, 0.1, i8, gather(Neurons, NeuronTable.build([], {})),
        gather(Currents, CurrentTable()), gather(Poisson, PoissonTable.empty()),
        gather(Schedule, empty), 0, gather(Synapses, DeliveryPlan.empty()),
        PlasticArrays.empty(), np.zeros(0, np.float32), i8, np.zeros((0, 1)), np.zeros((0, 1)),
        i8, i8, 0, native.n_ranks, native.allgather, native.allgatherv, native.comm,
        native.int64_type, i8, np.zeros(0, np.int32), np.zeros(0, np.int32), i8,
    )  # fmt: skip


def expected_variant(circuit: Circuit, n_ranks: int) -> Variant:
    """The loop variant ``circuit``'s tables will most likely need on ``n_ranks`` ranks, from
    the circuit alone: its models, inputs and plastic projections (a rank without neurons of a
    population needs less) and the storage modes :func:`expected_mode` guesses (the built
    synapses decide them)."""
    stimuli = circuit.stimuli.values()
    kinds = {KINDS[pop.variant.kernel] for pop in circuit.populations.values()}
    modes = {expected_mode(circuit, p, n_ranks) for p in circuit.projections.values()}
    return Variant(
        poisson=True if any(isinstance(s, PoissonStimulus) for s in stimuli) else None,
        rate=True
        if any(isinstance(s, RateStimulus | PopulationStimulus) for s in stimuli)
        else None,
        noise=True if any(isinstance(s, NoiseStimulus) for s in stimuli) else None,
        plastic=True
        if any(SYNAPSE_MODELS[p.synapse.model].plastic for p in circuit.projections.values())
        else None,
        exchange=True if n_ranks > 1 else None,
        **kind_switches(kinds),
        **mode_switches(modes),
    )


def early_jobs(circuit: Circuit, native: NativeExchange) -> list[Job]:
    """The step loop's parts that :func:`expected_variant` calls, those not in numba's cache,
    largest first (:data:`~brainsim.kernels.loop.PART_COMPILE_S`: the plastic delivery,
    then the post-spike histories, ...; this process takes the next ones when it is free, so
    the small ones come last), and before them the per-neuron sampling kernel if construction
    will draw values: a compile helper starts on them while construction runs. A wrong guess
    costs the helper's time only (a kernel missing from the cache is compiled where it is
    needed)."""
    variant = expected_variant(circuit, native.n_ranks)
    parts = sorted(loop_parts(probe_args(native), variant), key=lambda p: -PART_COMPILE_S[p[0]])
    kernels = [(kernel, args) for _, kernel, args in parts]
    if draws_per_neuron(circuit):  # needed during construction: first
        kernels.insert(0, sampling_kernel())
    return [job(kernel, args) for kernel, args in kernels if not loaded(kernel, args)]


def load_step_loop(
    exchanger: SpikeExchanger,
    variant: Variant = EVERYTHING,
    choice: Literal["auto", "general", "circuit"] = "auto",
    helper: CompileHelper | None = None,
    helper_jobs: Iterable[Job] = (),
) -> tuple[StepLoop, Variant]:
    """:func:`cached_step_loop`, compiling the chosen loop when it is not in numba's cache
    (with ``helper``, its parts in two processes: :func:`_compile_parts`; ``helper_jobs``
    are given to the helper after its part of the loop)."""
    found = cached_step_loop(
        exchanger, variant, choice, may_compile=True, helper=helper, helper_jobs=helper_jobs
    )
    assert found is not None
    return found


def _compile_parts(
    args: tuple[Any, ...], variant: Variant, helper: CompileHelper, extra: Iterable[Job]
) -> None:
    """Compile the parts of ``variant``'s loop that are not in numba's cache, in this process
    and ``helper``, so that the loop's own compilation loads them all from there.

    The helper has the parts :func:`early_jobs` gave it and gets the plastic delivery (the
    largest part, about a quarter of the loop's compilation), then ``extra``; this process
    compiles the parts the helper does not have, then takes those the helper has not started
    yet, and waits for the rest."""
    parts = [(job(kernel, a), name) for name, kernel, a in loop_parts(args, variant)
             if not loaded(kernel, a)]  # fmt: skip
    helper.submit(j for j, name in parts if name == "deliver_plastic")
    helper.submit(extra)
    for j, _ in parts:
        if not helper.has(j):
            compile_job(j)
    theirs = [j for j, _ in parts if helper.has(j)]
    helper.steal(theirs)
    helper.wait(theirs)


def cached_step_loop(
    exchanger: SpikeExchanger,
    variant: Variant = EVERYTHING,
    choice: Literal["auto", "general", "circuit"] = "auto",
    *,
    may_compile: bool = False,
    helper: CompileHelper | None = None,
    helper_jobs: Iterable[Job] = (),
) -> tuple[StepLoop, Variant] | None:
    """Load the compiled step loop for ``exchanger``'s collectives and ``variant`` from
    numba's cache (or, with ``may_compile``, compile it) without simulating anything, so that
    start-up work is done before the run; return the loop and the variant to call it with.

    The general loop (:data:`~brainsim.kernels.loop.EVERYTHING`) serves every variant, so it
    is used when it is already loaded in this process (a pool's ranks load it at start) or,
    failing the variant itself, in numba's cache (``brainsim compile-kernels`` put it there);
    only when neither is there is ``variant`` compiled, which compiles only the kernels it
    uses (a cold first run of a small circuit compiles a fraction of the kernels).

    ``choice`` other than ``auto`` takes the general loop, or ``variant``'s, whatever is
    loaded (:attr:`RunConfig.step_loop`). Without ``may_compile``, ``None`` when the chosen
    loop would have to be compiled.

    The arrays have the types :class:`_Loop` passes (a test checks that a run adds no second
    compiled signature).
    """
    args = probe_args(exchanger.native())
    general = (*args, *EVERYTHING)
    if choice != "auto":
        use_general = choice == "general" or variant == EVERYTHING
    else:
        use_general = variant == EVERYTHING or loaded(run_intervals, general, from_cache=False)
        if not use_general and not loaded(run_variant, (*args, *variant)):
            use_general = loaded(run_intervals, general)
    chosen: tuple[StepLoop, Variant] = (
        (run_intervals, EVERYTHING) if use_general else (run_variant, variant)
    )
    if not loaded(chosen[0], (*args, *chosen[1])):
        if not may_compile:
            return None
        if helper is not None:
            _compile_parts(args, chosen[1], helper, helper_jobs)
    chosen[0](*args, *chosen[1])
    return chosen


def _load_once_per_host(
    comm: Communicator,
    exchanger: SpikeExchanger,
    variant: Variant,
    choice: Literal["auto", "general", "circuit"] = "auto",
    helper: CompileHelper | None = None,
    helper_jobs: Sequence[Job] = (),
) -> tuple[StepLoop, Variant]:
    """:func:`load_step_loop` on every rank (collective). Every rank loads its loop from
    numba's cache at once where it is there; otherwise, when all ranks share one host, rank 0
    compiles first and the others then load what it compiled, instead of every rank compiling
    the same loop at once (on a busy or small machine they would share its cores; a rank whose
    variant differs still compiles its own). A rank with a compile ``helper`` hands it part of
    the loop and then ``helper_jobs``, and waits for all of them before the others go on."""

    def load() -> tuple[StepLoop, Variant]:
        found = load_step_loop(exchanger, variant, choice, helper, helper_jobs)
        if helper is not None:  # the weight recordings' kernels, in the cache before going on
            helper.steal(helper_jobs)
            helper.close()
        return found

    if comm.size == 1:
        return load()
    cached = cached_step_loop(exchanger, variant, choice)
    missing = comm.allgather((cached is None, socket.gethostname()))
    if not any(absent for absent, _ in missing):
        assert cached is not None
        return cached
    if cached is not None:
        first: tuple[StepLoop, Variant] | None = cached
    elif len({host for _, host in missing}) > 1 or comm.rank == 0:
        first = load()
    else:
        first = None
    _sleeping_barrier(comm)  # rank 0's loop is in the cache now
    return first if first is not None else load_step_loop(exchanger, variant, choice)


def _sleeping_barrier(comm: Communicator) -> None:
    """A barrier whose waiting ranks sleep: a rank waiting in a blocking MPI collective polls
    and keeps a core busy, which the compiling rank may need. Over MPI it polls a non-blocking
    barrier every 10 ms; other communicators' barriers."""
    raw = getattr(comm, "comm", None)
    if raw is None or not hasattr(raw, "Ibarrier"):
        comm.barrier()
        return
    request = raw.Ibarrier()
    while not request.Test():
        time.sleep(0.01)


_HANDOVER_SPIKES = 1 << 15
"""Spikes the loop keeps before handing them to the recorder between flushes (which writes
complete chunks behind), so that neither holds a whole flush interval of spikes."""

_SAMPLE_BYTES = 32 << 20
"""Upper bound of the sample scratch of one call of the loop."""


Checkpointer = Callable[[int], None]
"""Writes the checkpoint of a step (collective), the recorder flushed up to it."""


def simulate(
    circuit: Circuit,
    network: LocalNetwork,
    comm: Communicator,
    exchanger: SpikeExchanger,
    recorder: Recorder,
    config: RunConfig,
    *,
    checkpointer: Checkpointer | None = None,
    resume: Callable[[WeightSnapshots], int] | None = None,
    helper: CompileHelper | None = None,
) -> Simulated:
    """Run the step loop to the end (or until cancelled, or checkpointed and stopped).

    The recorder has every spike and sample when this returns; what was added after the last
    flush is written by the recorder's ``close`` (the caller's), which is not simulation time.
    With ``config.checkpoint_every_ms`` (or a checkpoint request) ``checkpointer(step)`` is
    called at those interval boundaries, after a flush. ``resume(snapshots)`` loads a
    checkpoint into the network (and the snapshots' counts) and returns its step, from which
    the loop continues.
    """
    variant = network_variant(network)
    owned = None  # a helper started here, for a loop this warm cache lacks
    if (
        helper is None
        and comm.rank == 0
        and not cached_step_loop(exchanger, variant, config.step_loop)
    ):
        helper = owned = CompileHelper.start()
    helper_jobs: list[Job] = []
    if helper is not None:
        weights = (w.projection for w in circuit.recordings.weights)
        helper_jobs = [job(k, a) for k, a in network.plastic.recording_kernels(weights)
                       if not loaded(k, a)]  # fmt: skip
    try:
        compiled = _load_once_per_host(
            comm, exchanger, variant, config.step_loop, helper, helper_jobs
        )
    finally:
        if owned is not None:
            owned.close(wait=False)
    began = time.perf_counter()
    dt = circuit.simulation.dt_ms
    n_steps = circuit.n_steps
    dec = network.decomposition
    n_gids = dec.n_gids
    k = network.min_delay_steps
    neurons = network.neurons
    reports_of = network.reports_of
    recorded = [
        (name, int(dec.gid_offsets[dec.index(name)]), int(dec.sizes[dec.index(name)]))
        for name in circuit.recordings.spikes
    ]
    flush_steps = max(1, round(config.flush_interval_ms / dt))
    # Steps per call, bounded so that the samples of a call fit the scratch.
    per_step = max(neurons.sample_bytes_per_step(), 1e-9)
    max_steps = max(k, min(flush_steps, int(_SAMPLE_BYTES / per_step)))
    loop = _Loop(network, exchanger.native(), max_steps + k, compiled)
    snapshots = WeightSnapshots(circuit, network.plastic, comm, recorder)
    t0 = 0
    if resume is not None:
        t0 = resume(snapshots)
    else:
        snapshots.take(0)
    every = None
    if config.checkpoint_every_ms is not None and checkpointer is not None:
        every = max(1, round(config.checkpoint_every_ms / dt))
    next_checkpoint = n_steps if every is None else min(n_steps, (t0 // every + 1) * every)
    if t0 >= n_steps:
        raise EngineError(f"nothing to simulate: the run is at step {t0} of {n_steps}")
    pops = list(network.populations.values())
    last_flush = t0
    last_flush_wall = time.monotonic()
    intervals = 1  # per call, adapted to take about config.call_s
    writing = 0.0  # seconds spent writing checkpoints
    while t0 < n_steps:
        control = []
        if config.should_stop is not None and config.should_stop():
            control.append(CONTROL_STOP)
        if config.should_checkpoint is not None and config.should_checkpoint():
            control.append(CONTROL_CHECKPOINT)
        if comm.rank == 0 and time.monotonic() - last_flush_wall >= config.flush_every_s:
            control.append(CONTROL_FLUSH)
        t_flush = min(last_flush + flush_steps, n_steps)
        started = time.perf_counter()
        t_stop = min(snapshots.next_due(t0), next_checkpoint)
        t1, seen = loop.run(t0, min(t_flush, t0 + max_steps), t_stop, circuit, intervals, control)
        took = time.perf_counter() - started
        if took < config.call_s / 2:
            intervals = min(2 * intervals, 1 << 30)
        elif took > 2 * config.call_s:
            intervals = max(1, intervals // 2)
        for p, pop in enumerate(pops):
            if loop.rows[p]:
                block = neurons.sample_rows(loop.samples, loop.rows, p)
                _record_samples(recorder, neurons.sample_every(p), block, reports_of[pop.name], t0)
        loop.rows[:] = 0
        t0 = t1
        stop = bool(seen & SAW_STOP)
        # Every `every` steps and at the end (from which `resume --until-ms` extends the run),
        # or where a rank asked for one.
        checkpoint_now = checkpointer is not None and (
            (every is not None and t0 == next_checkpoint)
            or (t0 < n_steps and bool(seen & SAW_CHECKPOINT))
        )
        if t0 == snapshots.next_due(t0 - 1) or stop:
            snapshots.take(t0, final=t0 == n_steps or stop)
        if comm.rank == 0 and config.progress is not None:
            config.progress(t0 * dt, n_steps * dt)
        flushing = stop or checkpoint_now or seen & SAW_FLUSH or t0 >= t_flush
        if flushing or loop.n_pending >= _HANDOVER_SPIKES:
            _record_spikes(recorder, loop.pending[: loop.n_pending], recorded, n_gids)
            loop.n_pending = 0
        if flushing:
            last_flush, last_flush_wall = t0, time.monotonic()
            if t0 < n_steps or checkpoint_now:  # else the recorder's close writes the rest
                recorder.flush(t0 * dt)
            if stop and t0 < n_steps:
                return Simulated.ended("cancelled", began, snapshots.seconds, writing)
        if checkpoint_now:
            assert checkpointer is not None
            started = time.perf_counter()
            checkpointer(t0)
            writing += time.perf_counter() - started
            if every is not None:
                next_checkpoint = min(n_steps, (t0 // every + 1) * every)
            if seen & SAW_CHECKPOINT and t0 < n_steps:
                return Simulated.ended("checkpointed", began, snapshots.seconds, writing)
    return Simulated.ended("complete", began, snapshots.seconds, writing)
