"""Benchmark of the Zarr recorder: write time and store size per compression and chunk size.

Two synthetic loads, fed to :class:`brainsim.recording.ZarrRecorder` the way the engine does on
one rank (spikes every exchange interval, a flush every 100 ms of simulated time):

- spikes: a Brunel-like network of 12,500 neurons (10,000 E + 2,500 I) firing Poisson at
  38 Hz for 1 s at dt = 0.1 ms (~475k spikes), handed over every 1.5 ms (the minimum delay);
- voltage: 1,000 neurons recorded at every step for 1 s (10,000 samples of float32).

The spike trains and voltages are generated before the clock starts; the timed part is
``open`` .. ``close``. Each configuration is run ``--reps`` times (>= 3) and the median is
printed, with the store size on disk. Run ``python -m bench.bench_recording`` from the
repository root (or the file as a script); ``--quick`` runs a 0.2 s load for a smoke test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from brainsim.exchange import LocalCommunicator
from brainsim.recording import PopulationInfo, ReportSpec, RunInfo, ZarrRecorder
from brainsim.recording.layout import (
    COMPRESSIONS,
    DEFAULT_REPORT_CHUNK_BYTES,
    DEFAULT_REPORT_COMPRESSION,
    DEFAULT_SPIKE_CHUNK,
    DEFAULT_SPIKE_COMPRESSION,
)

DT_MS = 0.1
RATE_HZ = 38.0
SIZES = {"E": 10_000, "I": 2_500}
INTERVAL_STEPS = 15
"""Steps per exchange interval (1.5 ms minimum delay)."""
FLUSH_STEPS = 1_000
"""Steps between flushes (100 ms, the recorder's default flush interval)."""
N_VOLTAGE = 1_000


@dataclass(frozen=True, slots=True)
class Load:
    """A pre-generated workload: per population, the (steps, ids) of every exchange interval."""

    n_steps: int
    spikes: dict[str, list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]]
    voltage: npt.NDArray[np.float32]

    @property
    def n_spikes(self) -> int:
        return sum(s.size for intervals in self.spikes.values() for s, _ in intervals)


def make_load(duration_ms: float, seed: int = 1) -> Load:
    rng = np.random.default_rng(seed)
    n_steps = round(duration_ms / DT_MS)
    spikes: dict[str, list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]] = {}
    p_spike = RATE_HZ * DT_MS / 1000.0
    for name, size in SIZES.items():
        intervals = []
        for first in range(0, n_steps, INTERVAL_STEPS):
            n = min(INTERVAL_STEPS, n_steps - first)
            steps, ids = np.nonzero(rng.random((n, size)) < p_spike)
            intervals.append(((steps + first).astype(np.int64), ids.astype(np.int64)))
        spikes[name] = intervals
    t = np.arange(n_steps, dtype=np.float32)[:, None] * np.float32(DT_MS)
    phase = rng.uniform(0, 2 * np.pi, size=N_VOLTAGE).astype(np.float32)
    voltage = (-65.0 + 10.0 * np.sin(t / 7.0 + phase)).astype(np.float32)
    voltage += rng.normal(0, 0.5, size=voltage.shape).astype(np.float32)
    return Load(n_steps=n_steps, spikes=spikes, voltage=voltage)


def info(load: Load, *, spikes: bool, voltage: bool) -> RunInfo:
    reports = ()
    if voltage:
        reports = (
            ReportSpec(
                population="E",
                variable="v",
                units="mV",
                interval_ms=DT_MS,
                node_ids=np.arange(N_VOLTAGE, dtype=np.int64),
                n_samples=load.n_steps,
            ),
        )
    return RunInfo(
        circuit_document={"name": "bench"},
        circuit_sha256="0" * 64,
        seed=1,
        dt_ms=DT_MS,
        duration_ms=load.n_steps * DT_MS,
        populations={
            "E": PopulationInfo(SIZES["E"], "iaf_psc_delta", 0),
            "I": PopulationInfo(SIZES["I"], "iaf_psc_delta", SIZES["E"]),
        },
        spike_populations=tuple(SIZES) if spikes else (),
        reports=reports,
    )


def write_spikes(load: Load, recorder: ZarrRecorder) -> None:
    recorder.open(info(load, spikes=True, voltage=False))
    n_intervals = len(load.spikes["E"])
    for i in range(n_intervals):
        for name in SIZES:
            recorder.add_spikes(name, *load.spikes[name][i])
        done = min((i + 1) * INTERVAL_STEPS, load.n_steps)
        if done % FLUSH_STEPS < INTERVAL_STEPS:
            recorder.flush(done * DT_MS)
    recorder.close("complete", build_s=0.0)


def write_voltage(load: Load, recorder: ZarrRecorder) -> None:
    recorder.open(info(load, spikes=False, voltage=True))
    positions = np.arange(N_VOLTAGE, dtype=np.int64)
    for step in range(load.n_steps):
        recorder.add_state(0, step, positions, load.voltage[step])
        if (step + 1) % FLUSH_STEPS == 0:
            recorder.flush((step + 1) * DT_MS)
    recorder.close("complete", build_s=0.0)


def store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(
    write: Callable[[Load, ZarrRecorder], None], load: Load, reps: int, **options: object
) -> tuple[float, float, int]:
    """Median wall and CPU seconds of ``write`` over ``reps`` fresh stores, and store bytes.

    CPU time (this process, all threads) is less disturbed by other work on the machine.
    """
    walls, cpus, size = [], [], 0
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as folder:
        for rep in range(reps):
            path = Path(folder) / f"run{rep}.zarr"
            recorder = ZarrRecorder(path, LocalCommunicator(), **options)  # type: ignore[arg-type]
            wall, cpu = time.perf_counter(), time.process_time()
            write(load, recorder)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            size = store_bytes(path)
    return statistics.median(walls), statistics.median(cpus), size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per row (>= 3)")
    parser.add_argument("--quick", action="store_true", help="0.2 s of activity instead of 1 s")
    args = parser.parse_args(argv)
    reps = max(3, args.reps)
    load = make_load(200.0 if args.quick else 1000.0)
    raw_spikes = load.n_spikes * 16
    raw_voltage = load.voltage.nbytes
    print(
        f"spikes: {load.n_spikes} in {load.n_steps} steps "
        f"({raw_spikes / 2**20:.1f} MiB raw); voltage: {load.voltage.shape} float32 "
        f"({raw_voltage / 2**20:.1f} MiB raw); median of {reps}"
    )
    print(
        f"{'load':<9}{'compression':<23}{'chunk':>8}{'wall s':>8}{'cpu s':>7}{'MiB':>7}{'ratio':>7}"
    )

    def row(
        name: str, compression: str, chunk: str, raw: int, result: tuple[float, float, int]
    ) -> None:
        wall, cpu, size = result
        print(
            f"{name:<9}{compression:<23}{chunk:>8}{wall:>8.3f}{cpu:>7.3f}"
            f"{size / 2**20:>7.2f}{raw / max(size, 1):>7.1f}"
        )

    spike_chunk = f"{DEFAULT_SPIKE_CHUNK >> 10}K"
    for compression in COMPRESSIONS:
        result = measure(write_spikes, load, reps, spike_compression=compression)
        row("spikes", compression, spike_chunk, raw_spikes, result)
    for chunk in (1 << 15, 1 << 16, 1 << 18, 1 << 19):
        result = measure(write_spikes, load, reps, spike_chunk=chunk)
        row("spikes", DEFAULT_SPIKE_COMPRESSION, f"{chunk >> 10}K", raw_spikes, result)
    report_chunk = f"{DEFAULT_REPORT_CHUNK_BYTES >> 10}KiB"
    for compression in COMPRESSIONS:
        result = measure(write_voltage, load, reps, report_compression=compression)
        row("voltage", compression, report_chunk, raw_voltage, result)
    for chunk_bytes in (1 << 18, 1 << 19, 1 << 21, 1 << 22):
        result = measure(write_voltage, load, reps, report_chunk_bytes=chunk_bytes)
        row("voltage", DEFAULT_REPORT_COMPRESSION, f"{chunk_bytes >> 10}KiB", raw_voltage, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
