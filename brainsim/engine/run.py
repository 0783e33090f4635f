"""Run a validated circuit on the ranks of this process group and record it.

:func:`execute` is what every rank calls (directly for one rank, under ``mpiexec`` for several):
it opens the recording, builds the rank's network, runs the loop and closes the store with its
final status. :func:`communicator` picks the MPI or the single-process implementation from the
environment the launcher left, so the same entry point serves both.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import os
import platform
import resource
import socket
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from brainsim.circuit import parse_circuit
from brainsim.circuit.overrides import with_overrides
from brainsim.circuit.spec import Circuit
from brainsim.engine.checkpoint import (
    StoredCheckpoint,
    latest_checkpoint,
    restore,
    write_checkpoint,
)
from brainsim.engine.encoders import presentation_specs
from brainsim.engine.launch import launched_ranks
from brainsim.engine.plasticity import WeightSnapshots
from brainsim.engine.simulator import (
    Checkpointer,
    LocalNetwork,
    RunConfig,
    build_network,
    cached_step_loop,
    early_jobs,
    expected_variant,
    report_specs,
    simulate,
    start_numba,
    weight_specs,
)
from brainsim.errors import EngineError
from brainsim.exchange import Communicator, LocalCommunicator, LocalExchanger, SpikeExchanger
from brainsim.kernels.compiler import CompileHelper
from brainsim.recording import ZarrRecorder
from brainsim.recording.base import FinalStatus, PopulationInfo, RankResources, RunInfo

__all__ = [
    "communicator",
    "execute",
    "launched_ranks",
    "preload",
    "process_resources",
    "resume",
    "with_overrides",
]
# launched_ranks and with_overrides live in light modules (the launcher imports only those);
# they are re-exported here for the ranks' side.


def communicator() -> tuple[Communicator, SpikeExchanger]:
    """MPI collectives when launched on several ranks, in-process ones otherwise."""
    if launched_ranks() > 1:
        from brainsim.exchange.mpi import MpiCommunicator, MpiExchanger

        comm = MpiCommunicator()
        return comm, MpiExchanger(comm)
    return LocalCommunicator(), LocalExchanger()


def preload(circuit: Circuit, n_ranks: int) -> bool:
    """Load into this process what each rank of a run of ``circuit`` on ``n_ranks`` ranks
    loads from numba's cache before its first step (numba's runtime, then the step loop of
    :func:`~brainsim.engine.simulator.expected_variant`), so that ranks forked from it
    (:mod:`brainsim.exchange.forked`) start with them. Compiles nothing; returns whether the
    cache had them (a cold cache: the ranks compile, as in any cold run).

    The loop is loaded for single-process collectives, whose native signature is MPICH's (the
    family that forked ranks need), and called on empty tables, so nothing is exchanged."""
    if not start_numba():
        return False
    return cached_step_loop(LocalExchanger(), expected_variant(circuit, n_ranks)) is not None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("brainsim", "numpy", "numba", "zarr", "mpi4py"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def run_info(circuit: Circuit, n_ranks: int, checkpoint_every_ms: float | None = None) -> RunInfo:
    """The recording metadata of a run of ``circuit`` on ``n_ranks`` ranks (writing a
    checkpoint every ``checkpoint_every_ms``, which a resumed run keeps doing)."""
    canonical = json.dumps(circuit.document, sort_keys=True, separators=(",", ":"))
    return RunInfo(
        circuit_document=circuit.document,
        circuit_sha256=hashlib.sha256(canonical.encode()).hexdigest(),
        seed=circuit.simulation.seed,
        dt_ms=circuit.simulation.dt_ms,
        duration_ms=circuit.simulation.duration_ms,
        populations={
            name: PopulationInfo(size=p.size, model=p.model, gid_offset=p.gid_offset)
            for name, p in circuit.populations.items()
        },
        spike_populations=tuple(circuit.recordings.spikes),
        reports=report_specs(circuit),
        weights=weight_specs(circuit),
        stimuli=presentation_specs(circuit),
        provenance={
            "versions": _versions(),
            "n_ranks": n_ranks,
            "backend": "numba_mpi",
            "start_time": datetime.now(UTC).isoformat(timespec="seconds"),
            # Where the circuit's relative file paths resolve: what a resumed run reads.
            "circuit_dir": os.path.abspath(circuit.base_dir) if circuit.base_dir else None,
            "checkpoint_every_ms": checkpoint_every_ms,
        },
    )


def process_resources() -> RankResources:
    """What this process used so far: user + system CPU time of all its threads and its
    peak resident set size (``getrusage(RUSAGE_SELF)``; ``ru_maxrss`` is in KiB on Linux and
    in bytes on macOS). A rank started for one run (by ``mpiexec`` or Slurm) counts its whole
    life, start-up included; a resident rank of ``brainsim pool`` counts since the pool
    started."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    scale = 1 if sys.platform == "darwin" else 1024
    return RankResources(usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss) * scale)


_M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter for the size above which allocations are served by mmap."""


def return_freed_memory() -> None:
    """Have glibc serve every allocation above 128 KiB by mmap, so that freed construction
    buffers go back to the operating system at once.

    By default glibc raises its mmap threshold to the size of each freed mmapped block (up to
    32 MiB); later blocks of that size then come from the heap and stay resident after they are
    freed. Construction frees such blocks all the time: fixing the threshold lowered the peak
    memory of the microcircuit at scale 0.1 by a fifth. A no-op where libc has no ``mallopt``.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def execute(
    circuit: Circuit,
    out: str | os.PathLike[str],
    *,
    comm: Communicator,
    exchanger: SpikeExchanger,
    overwrite: bool = False,
    config: RunConfig | None = None,
) -> FinalStatus:
    """Simulate ``circuit`` on this rank and record to ``out``; collective over ``comm``.

    An exception on this rank marks the store failed (without a collective call, as other
    ranks may be stuck in one) and propagates; the caller decides whether to abort the job.
    """
    config = config or RunConfig()
    return_freed_memory()
    # Start-up: numba's runtime starts here, before construction is timed; the step loop is
    # loaded (or compiled) by simulate(), after construction, since which variant it needs
    # follows from the built tables (brainsim.engine.simulator.load_step_loop). In a cold run
    # (an empty kernel cache) a compile helper starts on the loop's parts that construction
    # does not decide while this process builds (brainsim.kernels.compiler).
    cold = not start_numba()
    helper = None
    if cold and comm.rank == 0:
        helper = CompileHelper.start()
        if helper is not None:
            helper.submit(early_jobs(circuit, exchanger.native()))
    # Ranks on one machine compile construction's kernels once, not all at once (build_network)
    stagger = False
    if comm.size > 1:
        seen = comm.allgather((cold, socket.gethostname()))
        stagger = bool(seen[0][0]) and len({host for _, host in seen}) == 1
    try:
        recorder = ZarrRecorder(
            os.fspath(out), comm, overwrite=overwrite, flush_interval_ms=config.flush_interval_ms
        )
        info = run_info(circuit, comm.size, config.checkpoint_every_ms)
        recorder.open(info)
        return _simulate_into(
            out, circuit, info, recorder, comm, exchanger, config, None, helper, stagger
        )
    finally:
        if helper is not None:
            helper.close(wait=False)


def _simulate_into(
    out: str | os.PathLike[str],
    circuit: Circuit,
    info: RunInfo,
    recorder: ZarrRecorder,
    comm: Communicator,
    exchanger: SpikeExchanger,
    config: RunConfig,
    checkpoint: StoredCheckpoint | None,
    helper: CompileHelper | None = None,
    stagger: bool = False,
) -> FinalStatus:
    """Build this rank's network, simulate it into the open ``recorder`` (from
    ``checkpoint`` when given) and close the store with the final status; an exception marks
    the store failed and propagates. ``helper`` compiles kernels beside this process;
    ``stagger`` as for :func:`~brainsim.engine.simulator.build_network`."""
    try:
        network = build_network(circuit, comm, stagger=stagger)
        checkpointer = _checkpointer(out, circuit, info, network, comm, recorder, config)

        def restored(snapshots: WeightSnapshots) -> int:
            assert checkpoint is not None
            restore(checkpoint, network, comm, snapshots)
            return checkpoint.step

        done = simulate(
            circuit, network, comm, exchanger, recorder, config, checkpointer=checkpointer,
            resume=None if checkpoint is None else restored, helper=helper,
        )  # fmt: skip
    except BaseException as exc:
        recorder.mark_failed(f"{type(exc).__name__}: {exc}")
        raise
    recorder.close(
        done.status,
        build_s=network.build_s,
        sim_s=done.sim_s,
        weights_s=done.weights_s,
        checkpoint_s=done.checkpoint_s if checkpointer is not None else None,
        n_synapses=network.n_synapses,
        resources=process_resources(),
    )
    return done.status


def _checkpointer(
    out: str | os.PathLike[str],
    circuit: Circuit,
    info: RunInfo,
    network: LocalNetwork,
    comm: Communicator,
    recorder: ZarrRecorder,
    config: RunConfig,
) -> Checkpointer | None:
    """What writes the run's checkpoints, when it asked for any (or may be asked by signal)."""
    if config.checkpoint_every_ms is None and config.should_checkpoint is None:
        return None

    def write(step: int) -> None:
        write_checkpoint(
            out, circuit, info.circuit_sha256, network, comm, step, recorder.position()
        )

    return write


def _without_final_snapshots(checkpoint: StoredCheckpoint, circuit: Circuit) -> StoredCheckpoint:
    """``checkpoint`` with its recorder position before each weight recording's final
    snapshot of the shorter run, where that one is not also a regular snapshot: a run extended
    to a later end then records what an uninterrupted run to that end does."""
    dt = circuit.simulation.dt_ms
    taken = list(checkpoint.recorder.weights)
    for index, spec in enumerate(circuit.recordings.weights):
        regular = (
            spec.interval_ms is not None
            and checkpoint.step % max(1, round(spec.interval_ms / dt)) == 0
        )
        if taken[index] > 0 and not regular:
            taken[index] -= 1
    recorder = dataclasses.replace(checkpoint.recorder, weights=tuple(taken))
    return dataclasses.replace(checkpoint, recorder=recorder)


def resume(
    store: str | os.PathLike[str],
    *,
    comm: Communicator,
    exchanger: SpikeExchanger,
    config: RunConfig | None = None,
    until_ms: float | None = None,
) -> FinalStatus:
    """Continue the run recorded in ``store`` from its last checkpoint, on this process
    group's ranks (any number), into the same store; collective. What the store recorded after
    the checkpoint is replaced, so the result equals an uninterrupted run's. ``until_ms``
    moves the end to a later time (a complete run with checkpoints has one at its end): the
    store then holds what an uninterrupted run of that duration records (the shorter run's
    final weight snapshots are dropped where they are not regular ones)."""
    config = config or RunConfig()
    return_freed_memory()
    checkpoint = latest_checkpoint(store)
    if checkpoint is None:
        raise EngineError(f"{store} holds no checkpoint to resume from")
    from brainsim.recording.reader import RecordingStore  # zarr-python: a plain run does without

    recorded = RecordingStore.open(store)
    circuit = parse_circuit(recorded.circuit, base_dir=recorded.provenance.get("circuit_dir"))
    if config.checkpoint_every_ms is None:  # go on checkpointing as the run did
        every = recorded.provenance.get("checkpoint_every_ms")
        config = dataclasses.replace(config, checkpoint_every_ms=every)
    info = run_info(circuit, comm.size)
    if info.circuit_sha256 != checkpoint.circuit_sha256:
        raise EngineError(
            f"the checkpoint in {store} was written for another circuit "
            f"(sha256 {checkpoint.circuit_sha256}, the store's circuit {info.circuit_sha256})"
        )
    if until_ms is None and checkpoint.step >= circuit.n_steps:
        raise EngineError(
            f"the run in {store} is complete (its last checkpoint is at its end, "
            f"{checkpoint.time_ms:g} ms); --until-ms extends it to a later end"
        )
    if until_ms is not None:
        if until_ms <= checkpoint.time_ms:
            raise EngineError(
                f"--until-ms {until_ms:g} must be after the checkpoint ({checkpoint.time_ms:g} ms)"
            )
        circuit = with_overrides(circuit, duration_ms=until_ms)
        info = run_info(circuit, comm.size)
        checkpoint = _without_final_snapshots(checkpoint, circuit)
    start_numba()
    # Every rank has read the store and its checkpoint before rank 0 rewrites them (reopen):
    # a rank that read the rewritten circuit would find it another circuit's.
    comm.barrier()
    recorder = ZarrRecorder(os.fspath(store), comm, flush_interval_ms=config.flush_interval_ms)
    recorder.reopen(
        info,
        checkpoint.recorder,
        checkpoint.time_ms,
        {
            "from_ms": checkpoint.time_ms,
            "n_ranks": comm.size,
            "checkpoint_n_ranks": checkpoint.n_ranks,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "circuit_sha256": checkpoint.circuit_sha256,
            "until_ms": circuit.simulation.duration_ms,
        },
    )
    return _simulate_into(store, circuit, info, recorder, comm, exchanger, config, checkpoint)
