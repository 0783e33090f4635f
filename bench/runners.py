"""Run one case on one simulator configuration and return what was measured.

- brainsim runs as a user runs it: ``brainsim run CIRCUIT --out STORE --overwrite --progress
  none`` (plus ``--ranks N`` for N > 1), whole process timed from outside, on fresh ranks
  (``--no-pool``) or, for a pool configuration, on the resident ranks of a pool the suite has
  started (a run that the pool did not take fails); ``build_s`` and ``sim_s`` come from the
  store's ``brainsim.provenance`` (``sim_s``: the step loop from the first step to the last,
  with the flushes during the run), ``write_s`` is the rest of the store's ``wall_s`` (the
  final flush and status after the last step); the synapses every rank built
  (``n_synapses_per_rank``, summed in ``n_synapses``), the spike counts and the final weights'
  statistics of every plastic projection (count, mean, sd of ``weights/<projection>/data[-1]``)
  come from the store read with plain zarr.
- NEST and Brian2 run the script generated from the same circuit file in the reference
  environment; the script prints its own build/simulation times, the synapses it created and
  its spike counts (NEST's also the short first ``Simulate`` that its ``build_s`` includes:
  ``presim_ms`` and the spikes in it, and the same statistics of each plastic projection's final
  weights, read from its connections).

Every run's peak memory is that of its whole process tree (:mod:`bench.measure`), except a
run through a pool: its tree is only the client, the ranks belong to the pool, so it has none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import zarr

from bench.measure import MEMORY_SAMPLE_INTERVAL_S, SAMPLE_INTERVAL_S, Measured, run_measured
from bench.script_runtime import RESULT_MARKER, weight_moments
from brainsim.pool.client import list_pools

__all__ = [
    "Config",
    "RunResult",
    "brainsim_command",
    "parse_script_result",
    "read_store",
    "run_brainsim",
    "run_reference",
    "start_brainsim_pool",
]


@dataclass(frozen=True, slots=True)
class Config:
    """A simulator with a number of workers (MPI ranks for brainsim, threads for the others)."""

    name: str
    """Label in tables: ``brainsim``, ``brainsim-pool``, ``brainsim-1rank``, ``nest``,
    ``brian2``."""
    simulator: str
    """``brainsim``, ``nest`` or ``brian2``."""
    workers: int
    pool: bool = False
    """brainsim only: runs go to a pool of ``workers`` resident ranks (``brainsim pool
    start``) instead of starting fresh ranks each."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """One measured run (or the reason it did not happen)."""

    case: str
    config: str
    rep: int
    ok: bool
    error: str = ""
    wall_s: float | None = None
    """Whole process, start to exit (s)."""
    build_s: float | None = None
    """Network construction (s), as the simulator's own clock reports it."""
    sim_s: float | None = None
    """Simulation phase (s)."""
    compile_s: float | None = None
    """Brian2 only: code generation and (warm) compilation (s)."""
    write_s: float | None = None
    """brainsim only: writing the recording's last flush and final status after the last
    step (s); NEST's and Brian2's recorders hold spikes in memory, so they have none."""
    peak_rss_bytes: int | None = None
    n_synapses: int | None = None
    """Synapses the simulator built (brainsim: summed over its ranks; NEST: its
    ``num_connections`` before devices are connected; Brian2: its synapses' ``N``)."""
    n_synapses_per_rank: list[int] | None = None
    """brainsim only: the synapses each rank built, in rank order."""
    n_spikes: dict[str, int] = field(default_factory=dict)
    """Spikes per population over the whole simulated duration."""
    presim_ms: float | None = None
    """NEST only: simulated time of the short first ``Simulate`` that finalizes its connection
    infrastructure, counted in ``build_s``; ``sim_s`` covers the rest of the duration. None:
    ``sim_s`` covers the whole duration."""
    n_spikes_presim: dict[str, int] = field(default_factory=dict)
    """NEST only: the spikes of ``n_spikes`` that fell in the first ``presim_ms``."""
    weights: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The final weights of each plastic projection: ``count``, ``mean`` and ``sd``
    (population standard deviation) over its synapses (:func:`weight_statistics`)."""
    weights_s: float | None = None
    """NEST only: reading the final weights after the run (s), in the whole process only."""
    load_1min: float | None = None
    """The machine's 1-minute load average when the run started (others' work included)."""
    memory_run: bool = False
    """Made for its peak memory alone: sampled every 10 ms, which slows a run that uses every
    core, so its times are not used (:mod:`bench.measure`)."""
    seed: int | None = None
    """Set on a run of another realization of the case (the circuit with this seed), made for
    its population rates alone; its times and memory are not used (:mod:`bench.stats`)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _brainsim_executable() -> list[str]:
    """How to start brainsim: the console script next to this interpreter, else the one on
    ``PATH``, else ``python -m brainsim``.

    The script next to the interpreter comes first: where pyenv manages Python, the one on
    ``PATH`` is a bash shim that adds about 60 ms to every start.
    """
    script = Path(sys.executable).parent / "brainsim"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("brainsim")
    return [found] if found else [sys.executable, "-m", "brainsim"]


def brainsim_command(
    circuit: Path,
    store: Path,
    ranks: int,
    duration_ms: float | None = None,
    pool: bool = False,
    progress: str = "none",
) -> list[str]:
    """The ``brainsim run`` command line a user would type for this run.

    Without ``pool`` it says ``--no-pool``, so a pool running on the machine never takes a run
    that is meant to start fresh ranks; with ``pool`` it is the plain command, which a running
    pool of ``ranks`` ranks takes. ``progress`` is the ``--progress`` display.
    """
    command = _brainsim_executable()
    command += ["run", str(circuit), "--out", str(store), "--overwrite", "--progress", progress]
    if ranks > 1:
        command += ["--ranks", str(ranks)]
    if duration_ms is not None:
        command += ["--duration-ms", repr(duration_ms)]
    if not pool:
        command.append("--no-pool")
    return command


def start_brainsim_pool(ranks: int) -> str | None:
    """Start a pool of ``ranks`` resident ranks as a user does (``brainsim pool start``, no idle
    timeout) unless one runs; None once it runs, else why it does not."""
    command = _brainsim_executable()
    command += ["pool", "start", "--ranks", str(ranks), "--idle-timeout-s", "0"]
    result = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    output = result.stderr.strip() or result.stdout.strip()
    return output.splitlines()[-1] if output else f"exit status {result.returncode}"


def _pool_jobs_done(ranks: int) -> int | None:
    """Jobs the running pool of ``ranks`` ranks has done (None when none answers)."""
    return next((info["jobs_done"] for info in list_pools() if info["ranks"] == ranks), None)


WEIGHT_READ_CHUNK = 1 << 22
"""Weights read from a store at a time for their statistics (16 MiB of float32)."""


def weight_statistics(data: Any) -> dict[str, Any]:
    """Count, mean and sd of a projection's final weights: the last row of its weight
    recording's ``data`` (zarr array ``[n_snapshots, n_syn]``), read in chunks."""
    n_snapshots, n_synapses = data.shape
    if n_snapshots == 0:
        return weight_moments([])
    return weight_moments(
        data[n_snapshots - 1, first : first + WEIGHT_READ_CHUNK]
        for first in range(0, n_synapses, WEIGHT_READ_CHUNK)
    )


def read_store(store: Path) -> dict[str, Any]:
    """Status, provenance times, synapses built, spike counts and the final weights' statistics
    of every plastic projection (:func:`weight_statistics`) of a recording, with plain zarr
    (``n_synapses`` and ``n_synapses_per_rank`` are None in a store that lacks them)."""
    # zarr's node types are a wide union; the layout (RECORDING.md) fixes what is where.
    root: Any = zarr.open_group(str(store), mode="r")
    attrs = dict(root.attrs)["brainsim"]
    spikes = root["spikes"]
    counts = {name: int(spikes[name]["node_ids"].shape[0]) for name in spikes.group_keys()}
    weights = {}
    if "weights" in root:
        recorded = root["weights"]
        weights = {
            name: weight_statistics(recorded[name]["data"]) for name in recorded.group_keys()
        }
    provenance = attrs["provenance"]
    build_s, wall_s = provenance["build_s"], provenance["wall_s"]
    # Stores from before ``sim_s`` was recorded: everything after construction is simulation.
    sim_s = provenance.get("sim_s")
    if sim_s is None and build_s is not None and wall_s is not None:
        sim_s = wall_s - build_s
    write_s = None
    if None not in (build_s, wall_s, sim_s):
        write_s = max(wall_s - build_s - sim_s, 0.0)
    return {
        "status": attrs["status"],
        "build_s": build_s,
        "sim_s": sim_s,
        "write_s": write_s,
        "wall_s": wall_s,
        "n_synapses": provenance.get("n_synapses"),
        "n_synapses_per_rank": provenance.get("n_synapses_per_rank"),
        "n_spikes": counts,
        "weights": weights,
    }


def _interval(memory_run: bool) -> float:
    return MEMORY_SAMPLE_INTERVAL_S if memory_run else SAMPLE_INTERVAL_S


def _measured_result(
    config: Config, case: str, rep: int, measured: Measured, memory_run: bool
) -> RunResult:
    """The result of a run that has not (yet) succeeded: its time and memory only (none for a
    run through a pool, whose measured tree is only the client)."""
    return RunResult(
        case,
        config.name,
        rep,
        ok=False,
        wall_s=measured.wall_s,
        peak_rss_bytes=None if config.pool else measured.peak_rss_bytes,
        memory_run=memory_run,
    )


def _failure(measured: Measured) -> str:
    if measured.over_memory_cap:
        return f"killed at {measured.peak_rss_bytes / 2**30:.1f} GiB: over the memory cap"
    if measured.timed_out:
        return f"timed out after {measured.wall_s:.0f} s"
    tail = (measured.stderr.strip() or measured.stdout.strip()).splitlines()[-5:]
    return f"exit status {measured.returncode}: " + " | ".join(tail)


def run_brainsim(
    config: Config,
    case: str,
    rep: int,
    circuit: Path,
    store: Path,
    timeout_s: float,
    memory_cap_bytes: int | None = None,
    memory_run: bool = False,
) -> RunResult:
    """One ``brainsim run`` of ``circuit``, with the synapses its ranks built as the store
    records them.

    A pool configuration's run fails unless the pool's count of jobs done went up by one: a
    run that the pool refused (other code, say) and that started fresh ranks is not one. A
    store without the synapse count (a brainsim older than this benchmark) fails the run
    rather than have bytes per synapse use another count.
    """
    jobs_before = _pool_jobs_done(config.workers) if config.pool else None
    measured = run_measured(
        brainsim_command(circuit, store, config.workers, pool=config.pool),
        timeout_s=timeout_s,
        memory_cap_bytes=memory_cap_bytes,
        sample_interval_s=_interval(memory_run),
    )
    failed = _measured_result(config, case, rep, measured, memory_run)
    if measured.returncode != 0:
        return replace(failed, error=_failure(measured))
    if config.pool and (jobs_before is None or _pool_jobs_done(config.workers) != jobs_before + 1):
        return replace(failed, error="did not go through the pool")
    found = read_store(store)
    if found["status"] != "complete":
        error = f"store status {found['status']!r}"
        return replace(failed, error=error)
    if found["n_synapses"] is None:
        return replace(failed, error="the store records no synapse count (provenance.n_synapses)")
    per_rank = found["n_synapses_per_rank"]
    return replace(
        failed,
        ok=True,
        build_s=float(found["build_s"]),
        sim_s=float(found["sim_s"]),
        write_s=float(found["write_s"]),
        n_synapses=int(found["n_synapses"]),
        n_synapses_per_rank=None if per_rank is None else [int(n) for n in per_rank],
        n_spikes=found["n_spikes"],
        weights=found["weights"],
    )


def parse_script_result(stdout: str) -> dict[str, Any]:
    """The JSON a reference script printed after :data:`~bench.script_runtime.RESULT_MARKER`."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            found: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return found
    raise ValueError("the script printed no result line")


def run_reference(
    config: Config,
    case: str,
    rep: int,
    python: Path,
    script: Path,
    extra_args: list[str],
    timeout_s: float,
    memory_cap_bytes: int | None = None,
    memory_run: bool = False,
) -> RunResult:
    """One run of a generated NEST or Brian2 script in the reference interpreter."""
    command = [str(python), str(script), "--threads", str(config.workers), *extra_args]
    measured = run_measured(
        command,
        cwd=script.parent,
        timeout_s=timeout_s,
        memory_cap_bytes=memory_cap_bytes,
        sample_interval_s=_interval(memory_run),
    )
    failed = _measured_result(config, case, rep, measured, memory_run)
    if measured.returncode != 0:
        return replace(failed, error=_failure(measured))
    try:
        found = parse_script_result(measured.stdout)
    except ValueError as error:
        return replace(failed, error=str(error))
    presim_ms = found.get("presim_ms")
    return replace(
        failed,
        ok=True,
        build_s=float(found["build_s"]),
        sim_s=float(found["sim_s"]),
        compile_s=found.get("compile_s"),
        n_synapses=int(found["n_synapses"]),
        n_spikes=_counts(found["n_spikes"]),
        presim_ms=None if presim_ms is None else float(presim_ms),
        n_spikes_presim=_counts(found.get("n_spikes_presim", {})),
        weights=dict(found.get("weights", {})),
        weights_s=found.get("weights_s"),
    )


def _counts(found: dict[str, Any]) -> dict[str, int]:
    return {name: int(count) for name, count in found.items()}
