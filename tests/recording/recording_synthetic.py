"""A synthetic run for the recorder: deterministic spikes and state, written by 1..n MPI ranks.

Imported by the tests (which compute the expected content with the same functions) and run as
``mpiexec -n N python recording_synthetic.py STORE [options]``. Every rank feeds the recorder
what an engine would: the same global spikes of each interval, and state values only for the
report positions it owns (a round-robin-like split that depends on the rank count, so a bug
that makes content depend on it shows up). Chunks are small and flushes irregular so that
chunks cross flush boundaries many times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from brainsim.exchange.base import Communicator
from brainsim.recording import PopulationInfo, ReportSpec, RunInfo

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


def expected(n_steps: int) -> dict[str, object]:
    """The content a store of this run must hold after ``n_steps`` steps (any rank count)."""
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
        provenance={"backend": "synthetic"},
    )


def run(
    store: Path,
    n_steps: int,
    comm: Communicator | None = None,
    *,
    pause_after_flush: int | None = None,
    fail_at_step: int | None = None,
    compression: str | None = None,
) -> None:
    """Write the synthetic run with ``comm`` (default: every rank of MPI_COMM_WORLD)."""
    from brainsim.recording import ZarrRecorder

    if comm is None:
        from brainsim.exchange.mpi import MpiCommunicator

        comm = MpiCommunicator()
    recorder = ZarrRecorder(
        store,
        comm,
        spike_chunk=SPIKE_CHUNK,
        report_chunk_bytes=REPORT_CHUNK_BYTES,
        **(
            {}
            if compression is None
            else {"spike_compression": compression, "report_compression": compression}
        ),
    )
    recorder.open(run_info(n_steps))
    owned = [owned_positions(r, comm.rank, comm.size) for r in range(len(REPORTS))]
    flushes = set(flush_steps(n_steps))
    n_flushes = 0
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
        if last in flushes:
            recorder.flush(last * DT_MS)
            n_flushes += 1
            if n_flushes == pause_after_flush:
                _pause(store, comm.rank, last)
                comm.barrier()
    recorder.close("complete", build_s=0.25, sim_s=0.5)


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
    args = parser.parse_args(argv)
    run(
        args.store,
        args.steps,
        None,
        pause_after_flush=args.pause_after_flush,
        fail_at_step=args.fail_at_step,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
