"""A synthetic run for the recorder: deterministic spikes and state, written by 1..n MPI ranks.

Imported by the tests (which compute the expected content with the same functions) and run as
``mpiexec -n N python recording_synthetic.py STORE [options]``. Every rank feeds the recorder
what an engine would: the same global spikes of each interval, state values only for the
report positions it owns, and weight snapshots only for the synapses onto the neurons it owns
(round-robin-like splits that depend on the rank count, so a bug that makes content depend on
it shows up). Chunks are small and flushes irregular so that chunks cross flush boundaries
many times, and weight chunks cut through the runs of synapses a rank owns.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from brainsim.errors import RecordingError
from brainsim.exchange.base import Communicator
from brainsim.recording import (
    IdsOf,
    PopulationInfo,
    RankResources,
    ReportSpec,
    RunInfo,
    StimulusSpec,
    ValuesOf,
    WeightSpec,
)

SEED = 20240601
STORE_STEPS = 600
"""Steps of the in-process store the tests share: dozens of chunks and flushes in about a second."""
DT_MS = 0.1
POPULATIONS = {"E": (40, "lif", 0), "I": (13, "lif", 40)}
SPIKE_PROBABILITY = {"E": 0.3, "I": 0.45}
SPIKE_CHUNK = 257
REPORT_CHUNK_BYTES = 23 * 4 * 14
"""23 samples per chunk of the 14-node report, 24 of the 13-node one."""
INTERVAL_STEPS = 3
"""Steps per exchange interval: add_spikes receives three steps at a time."""
REPORTS = (
    # population, variable, units, sampled every n steps, node_ids
    ("E", "v", "mV", 2, np.arange(0, 40, 3, dtype=np.int64)),
    ("I", "u", "pA", 1, np.arange(13, dtype=np.int64)),
)
WEIGHT_CHUNK = 21
"""Weights per chunk: 21 EE synapses of one snapshot (chunk boundaries fall inside the runs
of synapses a rank owns), or 7 snapshots of the 3 II synapses (chunk rows cross flushes)."""
WEIGHTS = (
    # projection, source population, units, snapshot every n steps (None: only the final one)
    ("EE", "E", "mV", 70),
    ("IE", "I", "pA", None),
    ("II", "I", "pA", 20),
)

STIMULI = (
    # stimulus, type, present_ms, rest_ms, onsets_ms, sample_index (fixed, whatever the steps)
    ("pixels", "rate", 5.0, 1.0, 0.5 + 6.0 * np.arange(7), np.array([3, 1, 4, 1, 5, 9, 2])),
    ("unseen", "latency", 2.0, 0.0, np.zeros(0), np.zeros(0, dtype=np.int64)),
)
"""Presentations of data-driven stimuli; written whole when the store is opened."""


def synapses(weights: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(sources, targets) of projection ``weights``, ordered by target, then source.

    EE: 0 to 4 synapses onto each E neuron, multapses included. IE: six synapses, all onto E
    neuron 0, so that only the rank owning that neuron has any (the others have none). II:
    three synapses onto I neurons 0, 1 and 2.
    """
    if WEIGHTS[weights][0] == "IE":
        return np.array([0, 2, 2, 5, 9, 12], dtype=np.int64), np.zeros(6, dtype=np.int64)
    if WEIGHTS[weights][0] == "II":
        return np.array([4, 0, 7], dtype=np.int64), np.arange(3, dtype=np.int64)
    rng = np.random.default_rng([SEED, 99])
    counts = rng.integers(0, 5, size=POPULATIONS["E"][0])
    targets = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    sources = rng.integers(0, POPULATIONS["E"][0], size=targets.size).astype(np.int64)
    order = np.lexsort((sources, targets))
    return sources[order], targets[order]


def owned_synapses(weights: int, rank: int, size: int) -> tuple[int, int]:
    """The synapse columns ``(first, count)`` of projection ``weights`` that rank ``rank`` of
    ``size`` owns: those onto its block of the target population (uneven blocks, so that chunk
    boundaries fall inside a rank's columns)."""
    _, targets = synapses(weights)
    n_targets = int(targets.max()) + 1
    edges = [n_targets * r * r // (size * size) for r in range(size + 1)]
    first, last = np.searchsorted(targets, [edges[rank], edges[rank + 1]])
    return int(first), int(last - first)


def weight_values(
    weights: int, snapshot: int, positions: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """The weights of synapse columns ``positions`` of projection ``weights`` at ``snapshot``."""
    return (0.5 + weights + 0.1 * np.sin(0.3 * snapshot + 0.7 * positions)).astype(np.float32)


def snapshot_steps(weights: int, n_steps: int, *, finished: bool = True) -> list[int]:
    """Steps of the snapshots of projection ``weights`` taken by step ``n_steps``: at 0 and
    every interval, and (once the run has ``finished``) at the end."""
    every = WEIGHTS[weights][3]
    steps = [] if every is None else list(range(0, n_steps + 1, every))
    if finished and (not steps or steps[-1] != n_steps):
        steps.append(n_steps)
    return steps


def interval_spikes(
    population: str, first_step: int, n_steps: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Spikes of ``population`` in steps ``[first_step, first_step + n_steps)``, sorted."""
    size = POPULATIONS[population][0]
    rng = np.random.default_rng([SEED, ord(population[0]), first_step])
    fired = rng.random((n_steps, size)) < SPIKE_PROBABILITY[population]
    steps, ids = np.nonzero(fired)
    return (steps + first_step).astype(np.int64), ids.astype(np.int64)


def state_values(
    report: int, sample: int, positions: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """The value of report ``report`` at ``sample`` for node positions ``positions``."""
    node_ids = REPORTS[report][4][positions]
    return (np.sin(0.01 * sample + node_ids) * 10.0 - 65.0 + report).astype(np.float32)


def owned_positions(report: int, rank: int, size: int) -> npt.NDArray[np.int64]:
    """The report positions rank ``rank`` of ``size`` owns (each position has one owner)."""
    positions = np.arange(REPORTS[report][4].size, dtype=np.int64)
    return positions[(positions * 7 + 3) % size == rank]


def n_samples(report: int, n_steps: int) -> int:
    every = REPORTS[report][3]
    return -(-n_steps // every)


def flush_steps(n_steps: int) -> list[int]:
    """Irregular flush points (steps completed, at interval ends), ending with ``n_steps``."""
    points, step, gap = [], 0, 1
    while step < n_steps:
        step = min(n_steps, step + gap * INTERVAL_STEPS)
        points.append(step)
        gap = gap % 13 + 4
    return points


def expected(n_steps: int, *, finished: bool = True) -> dict[str, object]:
    """The content a store of this run must hold after ``n_steps`` steps (any rank count);
    the final weight snapshots only once the run has ``finished``."""
    out: dict[str, object] = {}
    for population in POPULATIONS:
        steps, ids = [], []
        for first in range(0, n_steps, INTERVAL_STEPS):
            s, i = interval_spikes(population, first, min(INTERVAL_STEPS, n_steps - first))
            steps.append(s)
            ids.append(i)
        all_steps = np.concatenate(steps)
        out[f"spikes/{population}/timestamps"] = all_steps.astype(np.float64) * DT_MS
        out[f"spikes/{population}/node_ids"] = np.concatenate(ids)
    for index, (population, variable, _, every, node_ids) in enumerate(REPORTS):
        count = n_samples(index, n_steps)
        group = f"report/{population}/{variable}"
        positions = np.arange(node_ids.size, dtype=np.int64)
        out[f"{group}/data"] = np.stack([state_values(index, k, positions) for k in range(count)])
        out[f"{group}/time"] = np.arange(count, dtype=np.float64) * (every * DT_MS)
        out[f"{group}/node_ids"] = node_ids
    for index, (projection, *_) in enumerate(WEIGHTS):
        group = f"weights/{projection}"
        sources, targets = synapses(index)
        steps = snapshot_steps(index, n_steps, finished=finished)
        rows = [weight_values(index, k, np.arange(sources.size)) for k in range(len(steps))]
        out[f"{group}/data"] = np.array(rows, dtype=np.float32).reshape(len(steps), sources.size)
        out[f"{group}/time"] = np.array(steps, dtype=np.float64) * DT_MS
        out[f"{group}/source"] = sources
        out[f"{group}/target"] = targets
    for name, _, _, _, onsets, samples in STIMULI:
        out[f"stimuli/{name}/sample_onsets_ms"] = onsets.astype(np.float64)
        out[f"stimuli/{name}/sample_index"] = samples.astype(np.int64)
    return out


def run_info(n_steps: int) -> RunInfo:
    """The RunInfo of this synthetic run."""
    return RunInfo(
        circuit_document={"name": "synthetic", "populations": sorted(POPULATIONS)},
        circuit_sha256="0" * 64,
        seed=SEED,
        dt_ms=DT_MS,
        duration_ms=n_steps * DT_MS,
        populations={
            name: PopulationInfo(size=size, model=model, gid_offset=offset)
            for name, (size, model, offset) in POPULATIONS.items()
        },
        spike_populations=tuple(POPULATIONS),
        reports=tuple(
            ReportSpec(
                population=population,
                variable=variable,
                units=units,
                interval_ms=every * DT_MS,
                node_ids=node_ids,
                n_samples=n_samples(index, n_steps),
            )
            for index, (population, variable, units, every, node_ids) in enumerate(REPORTS)
        ),
        weights=tuple(
            WeightSpec(
                projection=projection,
                model="stdp",
                units=units,
                max_snapshots=len(snapshot_steps(index, n_steps)),
                interval_ms=None if every is None else every * DT_MS,
            )
            for index, (projection, _, units, every) in enumerate(WEIGHTS)
        ),
        provenance={"backend": "synthetic"},
        stimuli=tuple(
            StimulusSpec(
                name=name,
                type=kind,
                present_ms=present_ms,
                rest_ms=rest_ms,
                onsets_ms=onsets.astype(np.float64),
                sample_index=samples.astype(np.int64),
            )
            for name, kind, present_ms, rest_ms, onsets, samples in STIMULI
        ),
    )


def synapses_of(rank: int) -> int:
    """The synapse count rank ``rank`` reports when it closes the store."""
    return 1000 + rank


def resources_of(rank: int) -> RankResources:
    """What rank ``rank`` reports having used when it closes the store."""
    return RankResources(cpu_s=1.5 + rank, peak_rss_bytes=(100 + 10 * rank) * 2**20)


def run(
    store: Path,
    n_steps: int,
    comm: Communicator | None = None,
    *,
    pause_after_flush: int | None = None,
    fail_at_step: int | None = None,
    skew_snapshot: int | None = None,
    duplicate_synapse: bool = False,
    compression: str | None = None,
) -> None:
    """Write the synthetic run with ``comm`` (default: every rank of MPI_COMM_WORLD).

    ``skew_snapshot``: the last rank stamps that EE snapshot half a step late, which the
    recorder must refuse on every rank; the run then closes its store as failed and raises.
    ``duplicate_synapse``: the last rank also claims EE synapse 0 (another rank's), which the
    owner of its chunk must refuse.
    """
    from brainsim.recording import ZarrRecorder

    if comm is None:
        from brainsim.exchange.mpi import MpiCommunicator

        comm = MpiCommunicator()
    recorder = ZarrRecorder(
        store,
        comm,
        spike_chunk=SPIKE_CHUNK,
        report_chunk_bytes=REPORT_CHUNK_BYTES,
        weight_chunk=WEIGHT_CHUNK,
        **(
            {}
            if compression is None
            else {"spike_compression": compression, "report_compression": compression}
        ),
    )
    recorder.open(run_info(n_steps))
    owned = [owned_positions(r, comm.rank, comm.size) for r in range(len(REPORTS))]
    owned_weights = [owned_synapses(w, comm.rank, comm.size) for w in range(len(WEIGHTS))]
    if duplicate_synapse and comm.rank == comm.size - 1:
        first, count = owned_weights[0]
        owned_weights[0] = (first - 1, count + 1)
    try:
        for index, (first, count) in enumerate(owned_weights):
            recorder.write_weight_ids(index, first, count, _ids_of(index, first))
    except RecordingError as exc:
        recorder.close("failed", build_s=0.25, reason=str(exc))
        raise

    added = [0] * len(WEIGHTS)

    def snapshots(steps_done: int, *, finished: bool = False) -> None:
        """Add the snapshots taken by ``steps_done`` steps that are not added yet."""
        for index, (first, _) in enumerate(owned_weights):
            steps = snapshot_steps(index, steps_done, finished=finished)
            for snapshot in range(added[index], len(steps)):
                late = snapshot == skew_snapshot and index == 0 and comm.rank == comm.size - 1
                time_ms = (steps[snapshot] + 0.5 * late) * DT_MS
                recorder.write_weights(index, snapshot, time_ms, _values_of(index, snapshot, first))
            added[index] = len(steps)

    flushes = set(flush_steps(n_steps))
    n_flushes = 0
    try:
        snapshots(0)
        for first in range(0, n_steps, INTERVAL_STEPS):
            last = min(first + INTERVAL_STEPS, n_steps)
            if fail_at_step is not None and first >= fail_at_step and comm.rank == comm.size - 1:
                recorder.mark_failed(f"synthetic failure at step {first}")
                comm.abort(3)  # type: ignore[attr-defined]
            for population in POPULATIONS:
                recorder.add_spikes(population, *interval_spikes(population, first, last - first))
            for step in range(first, last):
                for index, positions in enumerate(owned):
                    every = REPORTS[index][3]
                    if step % every == 0:
                        sample = step // every
                        values = state_values(index, sample, positions)
                        recorder.add_state(index, sample, positions, values)
            snapshots(last)
            if last in flushes:
                recorder.flush(last * DT_MS)
                n_flushes += 1
                if n_flushes == pause_after_flush:
                    _pause(store, comm.rank, last)
                    comm.barrier()
        snapshots(n_steps, finished=True)
    except RecordingError as exc:
        recorder.close("failed", build_s=0.25, n_synapses=synapses_of(comm.rank), reason=str(exc))
        raise
    recorder.close(
        "complete",
        build_s=0.25,
        sim_s=0.5,
        n_synapses=synapses_of(comm.rank),
        resources=resources_of(comm.rank),
    )


def _ids_of(weights: int, first: int) -> IdsOf:
    """A rank's synapse ids of projection ``weights``, its columns starting at ``first``."""
    sources, targets = synapses(weights)
    return lambda lo, hi: (sources[first + lo : first + hi], targets[first + lo : first + hi])


def _values_of(weights: int, snapshot: int, first: int) -> ValuesOf:
    """A rank's weights of projection ``weights`` at ``snapshot``, its columns from ``first``."""
    return lambda lo, hi: weight_values(weights, snapshot, np.arange(first + lo, first + hi))


def _pause(store: Path, rank: int, steps_done: int) -> None:
    """Tell the test how far the run is (rank 0), then wait until the test says go."""
    ready = store.with_name(store.name + ".ready")
    go = store.with_name(store.name + ".go")
    if rank == 0:
        ready.write_text(json.dumps({"steps_done": steps_done}))
    deadline = time.monotonic() + 120.0
    while not go.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said go")
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("store", type=Path)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--pause-after-flush", type=int)
    parser.add_argument("--fail-at-step", type=int)
    parser.add_argument("--skew-snapshot", type=int)
    parser.add_argument("--duplicate-synapse", action="store_true")
    args = parser.parse_args(argv)
    run(
        args.store,
        args.steps,
        None,
        pause_after_flush=args.pause_after_flush,
        fail_at_step=args.fail_at_step,
        skew_snapshot=args.skew_snapshot,
        duplicate_synapse=args.duplicate_synapse,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
