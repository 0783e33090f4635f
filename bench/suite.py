"""Run the benchmark: every selected case on every configuration, alternating, and save results.

Order of work (the comment in each step says why):

1. the reference environment is created or reused, and NEST/Brian2 probed; a simulator that
   cannot be installed or imported is dropped with a note and the rest still runs;
2. every configuration but the pool's runs the 100-neuron baseline circuit three times (after
   a warm-up, memory sampled every 10 ms), whose median peak RSS is subtracted for bytes per
   synapse (a run through a pool has no peak memory of its own: its ranks belong to the pool);
3. per case: the variant circuit file and the NEST/Brian2 scripts are written; brainsim warms
   its numba cache with a short run (of a smaller case with the same kernels where there is
   one) and Brian2 compiles its project, so the timed runs start warm as a user's would; the
   pool configuration starts its pool first (once; it lives in a directory of the session's
   own and is stopped at the end); then ``reps`` rounds run every configuration once each, in
   the same order (A B C A B C), memory sampled every 0.1 s so as not to slow them; then each
   configuration whose runs took under a minute runs the case once more for its peak memory,
   sampled every 10 ms (a short run peaks in its last 0.1 s; :mod:`bench.measure`);
4. before each run the peak memory is predicted (from the same circuit file measured earlier
   in this session or in an earlier results file, else a prior per simulator; a pool run as
   brainsim on fresh ranks) and the run is skipped with a note when it would not fit in the
   available memory; a run that outgrows it anyway is killed by the memory cap of
   :func:`bench.measure.run_measured`.

The results document is rewritten after every run, so an interrupted benchmark keeps what it
measured.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from bench.brian2_script import brian2_script
from bench.cases import BASELINE, Case, CaseInfo, case_info, seed_variant, write_variant
from bench.measure import available_memory_bytes, run_measured
from bench.nest_script import nest_script
from bench.refenv import ReferenceEnv, ensure_reference_env, probe_simulators
from bench.report import fmt, skipped_note, warm_up_failed_note
from bench.runners import (
    Config,
    RunResult,
    brainsim_command,
    run_brainsim,
    run_reference,
    start_brainsim_pool,
)
from bench.translate_common import UnsupportedCircuitError
from brainsim.circuit import load_circuit
from brainsim.circuit.spec import Circuit
from brainsim.errors import PoolError
from brainsim.pool.client import stop_pool

__all__ = [
    "PRIOR_BYTES_PER_SYNAPSE",
    "SIMULATORS",
    "Options",
    "configurations",
    "predict_peak_bytes",
    "run_suite",
]

SIMULATORS = ("brainsim", "nest", "brian2")

PRIOR_BYTES_PER_SYNAPSE = {"brainsim": 16.0, "nest": 80.0, "brian2": 60.0}
"""Generous peak bytes per synapse used to predict memory before a circuit family is measured."""

MEMORY_RESERVE_BYTES = 2 * 2**30
"""Memory left to the rest of the machine when deciding whether a run fits."""

WARMUP_DURATION_MS = 20.0
"""Simulated time of brainsim's JIT warm-up run."""

FORMAT = "brainsim-bench/1"


@dataclass(frozen=True, slots=True)
class Options:
    """What to run and where to put it."""

    cases: list[Case]
    reps: int
    quick: bool
    simulators: tuple[str, ...]
    cores: int
    single_rank: bool
    pool: bool
    out_dir: Path
    venv: Path
    timeout_s: float
    command: str
    rate_seeds: int | None = None
    """Realizations per case for the rate comparison; None: each case's own
    (:attr:`bench.cases.Case.rate_seeds`), 1 under ``quick``."""


def configurations(
    simulators: tuple[str, ...], cores: int, single_rank: bool, pool: bool
) -> list[Config]:
    """The configurations to alternate: brainsim on ``cores`` fresh ranks (and 1), and on
    ``cores`` ranks through a pool, the references on ``cores`` threads."""
    configs = []
    for simulator in simulators:
        configs.append(Config(simulator, simulator, cores))
        if simulator == "brainsim" and single_rank and cores > 1:
            configs.append(Config("brainsim-1rank", "brainsim", 1))
        if simulator == "brainsim" and pool:
            configs.append(Config("brainsim-pool", "brainsim", cores, pool=True))
    return configs


def predict_peak_bytes(
    simulator: str,
    n_synapses: int,
    baseline_bytes: float,
    measured_bytes_per_synapse: float | None,
    prior_bytes_per_synapse: float | None = None,
) -> float:
    """Expected peak RSS: the baseline plus synapses times a measured (+10%) or prior cost (the
    case's own prior where it has one, else the simulator's)."""
    if measured_bytes_per_synapse is not None:
        per_synapse = 1.1 * max(measured_bytes_per_synapse, 1.0)
    elif prior_bytes_per_synapse is not None:
        per_synapse = prior_bytes_per_synapse
    else:
        per_synapse = PRIOR_BYTES_PER_SYNAPSE[simulator]
    return baseline_bytes + per_synapse * n_synapses


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _machine() -> dict[str, Any]:
    cpu = "?"
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, timeout=60)
    for line in lscpu.stdout.splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    memory = 0
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemTotal:"):
            memory = 1024 * int(line.split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "os": f"{platform.system()} {platform.release()}",
    }


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("brainsim", "numpy", "numba", "mpi4py", "zarr", "mpich"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    found["mpiexec"] = _mpiexec_version()
    found["brainsim-commit"] = _commit()
    return found


def _mpiexec_version() -> str:
    """``mpiexec --version``'s Version line (MPICH's Hydra prints several lines)."""
    try:
        result = subprocess.run(
            ["mpiexec", "--version"], capture_output=True, text=True, check=False, timeout=60
        )
    except OSError:
        return "not found"
    for line in result.stdout.splitlines():
        if line.strip().startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return (result.stdout.strip() or "?").splitlines()[0]


def _commit() -> str:
    """The checkout's commit, ``+modified`` when brainsim/ differs from it (read-only git)."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, timeout=60
        )

    try:
        head, changes = (
            git("rev-parse", "--short", "HEAD"),
            git("status", "--porcelain", "brainsim"),
        )
    except OSError:
        return "?"
    if head.returncode != 0:
        return "?"
    return head.stdout.strip() + ("+modified" if changes.stdout.strip() else "")


def _earlier_bytes_per_synapse(folder: Path) -> dict[tuple[str, str], float]:
    """Largest bytes per synapse per (configuration, circuit file) in earlier results files.

    Memory predictions start from these, so a large case run on its own still has a
    measured cost per synapse (from a smaller case of the same circuit run before).
    """
    found: dict[tuple[str, str], float] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            cases, baselines = document["cases"], document["baselines"]
            runs = document["runs"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for run in runs:
            case, baseline = cases.get(run["case"]), baselines.get(run["config"])
            if not run["ok"] or case is None or baseline is None or not run["n_synapses"]:
                continue
            key = (run["config"], case["circuit"])
            per_synapse = (run["peak_rss_bytes"] - baseline) / run["n_synapses"]
            found[key] = max(per_synapse, found.get(key, 0.0))
    return found


class _Session:
    """State of one benchmark invocation: the results document and where things go."""

    def __init__(self, options: Options, root: Path) -> None:
        self.options = options
        self.root = root
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%S")
        suffix = "-quick" if options.quick else ""
        self.json_path = options.out_dir / f"{stamp}{suffix}.json"
        self.work = options.out_dir / "work"
        self.reference: ReferenceEnv | None = None
        self.measured_bps = _earlier_bytes_per_synapse(options.out_dir)
        self.document: dict[str, Any] = {
            "format": FORMAT,
            "started": _now(),
            "finished": None,
            "command": options.command,
            "options": {
                "cases": [case.name for case in options.cases],
                "reps": options.reps,
                "quick": options.quick,
                "simulators": list(options.simulators),
                "cores": options.cores,
            },
            "machine": _machine(),
            "versions": _versions(),
            "cases": {},
            "baselines": {},
            "runs": [],
            "notes": [],
            "load": [],
        }

    def relative(self, text: str) -> str:
        """``text`` with this checkout's path removed (RESULTS.md is committed)."""
        return text.replace(f"{self.root}/", "").replace(str(self.root), ".")

    def note(self, text: str) -> None:
        print(f"[bench] note: {text}", flush=True)
        self.document["notes"].append(self.relative(text))

    def sample_load(self, when: str) -> None:
        self.document["load"].append({"when": when, "load_1min": os.getloadavg()[0]})

    def save(self) -> None:
        self.options.out_dir.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text(json.dumps(self.document, indent=1) + "\n", encoding="utf-8")


def _prepare_reference(session: _Session, configs: list[Config]) -> list[Config]:
    """Install/probe the reference simulators; drop those that cannot run, with a note."""
    wanted = {c.simulator for c in configs} & {"nest", "brian2"}
    if not wanted:
        return configs
    log = session.options.out_dir / "reference-install.log"
    try:
        python = ensure_reference_env(session.options.venv, log)
    except (subprocess.CalledProcessError, OSError) as error:
        session.note(f"reference environment could not be created ({error}); see {log}")
        return [c for c in configs if c.simulator not in wanted]
    session.reference = probe_simulators(python)
    session.document["versions"].update(
        {f"ref-{key}": value for key, value in session.reference.versions.items()}
    )
    for simulator, reason in session.reference.errors.items():
        if simulator in wanted:
            session.note(f"{simulator} skipped: {reason}")
    return [c for c in configs if c.simulator not in session.reference.errors]


def _script(config: Config, circuit: Circuit, source: Path, folder: Path) -> Path:
    writer = nest_script if config.simulator == "nest" else brian2_script
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source.stem}.{config.simulator}.py"
    path.write_text(writer(circuit, source.name), encoding="utf-8")
    return path


class _CaseRun:
    """Everything needed to run one case on every configuration."""

    def __init__(self, session: _Session, case: Case, configs: list[Config], quick: bool) -> None:
        self.session = session
        self.case = case
        path = write_variant(case, session.root, session.work / "circuits", quick)
        self.info, self.circuit = case_info(case.name, path)
        self.path = path
        self.scripts: dict[str, Path] = {}
        self.configs = []
        for config in configs:
            if config.simulator in ("nest", "brian2"):
                try:
                    self.scripts[config.name] = _script(
                        config, self.circuit, path, session.work / "scripts"
                    )
                except UnsupportedCircuitError as error:
                    session.note(skipped_note(case.name, config.name, str(error)))
                    continue
            self.configs.append(config)

    def project(self, path: Path | None = None) -> Path:
        """The Brian2 project folder of the variant ``path`` (default: the case's own), kept
        between runs, so compiled objects are reused."""
        return self.session.work / "brian2" / (path or self.path).stem

    def store(self, config: Config) -> Path:
        return self.session.work / "stores" / f"{self.path.stem}-{config.name}.zarr"

    def realization(self, seed: int) -> tuple[Path, dict[str, Path]]:
        """The variant file of the case with ``seed`` and its reference scripts."""
        path = seed_variant(self.path, seed)
        circuit = load_circuit(path, memory_limit_bytes=0)
        folder = self.session.work / "scripts"
        references = [c for c in self.configs if c.simulator in ("nest", "brian2")]
        return path, {c.name: _script(c, circuit, path, folder) for c in references}

    def run(
        self,
        config: Config,
        rep: int,
        memory_run: bool = False,
        realization: tuple[int, Path, dict[str, Path]] | None = None,
    ) -> RunResult:
        """One run of ``config``; with ``realization`` (seed, variant file, scripts), a run of
        that realization of the case, for its rates."""
        load = os.getloadavg()[0]
        if realization is None:
            result = self._run(config, rep, memory_run, self.path, self.scripts)
        else:
            seed, path, scripts = realization
            result = replace(self._run(config, rep, False, path, scripts), seed=seed)
        return replace(result, load_1min=load)

    def _run(
        self,
        config: Config,
        rep: int,
        memory_run: bool,
        path: Path,
        scripts: dict[str, Path],
    ) -> RunResult:
        timeout = self.session.options.timeout_s
        cap = available_memory_bytes() - MEMORY_RESERVE_BYTES
        if config.simulator == "brainsim":
            store = self.store(config)
            result = run_brainsim(
                config,
                self.case.name,
                rep,
                path,
                store,
                timeout,
                cap,
                memory_run=memory_run,
            )
            shutil.rmtree(store, ignore_errors=True)
            return result
        assert self.session.reference is not None
        project = self.project(path)
        extra = ["--project", str(project)] if config.simulator == "brian2" else []
        result = run_reference(
            config,
            self.case.name,
            rep,
            self.session.reference.python,
            scripts[config.name],
            extra,
            timeout,
            cap,
            memory_run=memory_run,
        )
        if config.simulator == "brian2":
            shutil.rmtree(project / "results", ignore_errors=True)
        return result

    def warm_up(self, config: Config, warmup_path: Path) -> str | None:
        """Warm brainsim's JIT cache (in the pool's ranks for the pool configuration, after
        starting the pool unless it runs) or compile the Brian2 project; an error text or None.
        """
        timeout = self.session.options.timeout_s
        cap = available_memory_bytes() - MEMORY_RESERVE_BYTES
        if config.simulator == "brainsim":
            failure = start_brainsim_pool(config.workers) if config.pool else None
            if failure:
                return failure
            store = self.session.work / "stores" / "warmup.zarr"
            duration = min(WARMUP_DURATION_MS, self.info.duration_ms)
            command = brainsim_command(
                warmup_path, store, config.workers, duration, pool=config.pool
            )
            measured = run_measured(command, timeout_s=timeout, memory_cap_bytes=cap)
            shutil.rmtree(store, ignore_errors=True)
        elif config.simulator == "brian2":
            assert self.session.reference is not None
            command = [
                str(self.session.reference.python),
                str(self.scripts[config.name]),
                "--threads",
                str(config.workers),
                "--project",
                str(self.project()),
                "--compile-only",
            ]
            measured = run_measured(command, timeout_s=timeout, memory_cap_bytes=cap)
        else:
            return None
        if measured.returncode == 0:
            return None
        return (measured.stderr.strip() or measured.stdout.strip() or "failed").splitlines()[-1]


def _fits(session: _Session, case_run: _CaseRun, config: Config) -> str | None:
    """None when the run should fit in memory, else the reason to skip it."""
    # A pool run has no peak memory of its own; its ranks need what brainsim's on fresh ranks
    # (the configuration named after the simulator, on as many ranks) do.
    name = config.simulator if config.pool else config.name
    baseline = session.document["baselines"].get(name, 0.0)
    measured = session.measured_bps.get((name, case_run.case.circuit))
    prior = case_run.case.prior_bytes_per_synapse.get(config.simulator)
    predicted = predict_peak_bytes(
        config.simulator, case_run.info.n_synapses, baseline, measured, prior
    )
    available = available_memory_bytes() - MEMORY_RESERVE_BYTES
    if predicted <= available:
        return None
    return (
        f"needs about {predicted / 2**30:.1f} GiB "
        f"({'measured' if measured is not None else 'prior'} cost per synapse), "
        f"{max(available, 0) / 2**30:.1f} GiB available"
    )


def _record(session: _Session, case_run: _CaseRun, result: RunResult) -> None:
    result = replace(result, error=session.relative(result.error))
    session.document["runs"].append(result.as_dict())
    status = "ok" if result.ok else f"FAILED: {result.error}"
    which = "memory run" if result.memory_run else f"rep {result.rep}"
    if result.seed is not None:
        which = f"seed {result.seed}"
    # A pooled run's ranks are not in the measured process tree: no peak (as in the tables).
    peak = result.peak_rss_bytes
    peak_text = "–" if peak is None else f"{peak / 2**20:.0f} MiB"
    print(
        f"[bench] {result.case} {result.config} {which}: {status} "
        f"build {result.build_s} sim {result.sim_s} wall {fmt(result.wall_s)} "
        f"peak {peak_text} load {result.load_1min}",
        flush=True,
    )
    baseline = session.document["baselines"].get(result.config)
    if result.ok and baseline is not None and result.peak_rss_bytes and result.n_synapses:
        per_synapse = (result.peak_rss_bytes - baseline) / result.n_synapses
        key = (result.config, case_run.case.circuit)
        session.measured_bps[key] = max(per_synapse, session.measured_bps.get(key, 0.0))
    session.save()


BASELINE_REPS: Final = 3
"""Runs of the baseline circuit per configuration; the median peak is kept. A single run is
not enough: the peak of the same 2-rank baseline run varies by up to 18 MiB from run to run,
which on a network of a million synapses is 18 bytes per synapse."""


def baseline_peak(results: Sequence[RunResult]) -> int | None:
    """The median peak memory of the successful baseline runs (None if none succeeded)."""
    peaks = [r.peak_rss_bytes for r in results if r.ok and r.peak_rss_bytes]
    return int(statistics.median(peaks)) if peaks else None


def _run_baseline(session: _Session, configs: list[Config]) -> None:
    # A run through a pool measures only its client: no baseline to subtract from anything.
    baseline = _CaseRun(session, BASELINE, [c for c in configs if not c.pool], quick=False)
    for config in baseline.configs:
        failure = baseline.warm_up(config, baseline.path)
        results = (
            []
            if failure
            else [baseline.run(config, rep, memory_run=True) for rep in range(BASELINE_REPS)]
        )
        peak = baseline_peak(results)
        if peak is None:
            error = next((r.error for r in results if not r.ok), "no peak memory measured")
            session.note(f"baseline failed on {config.name}: {failure or error}")
            continue
        session.document["baselines"][config.name] = peak
    session.save()


MEMORY_RUN_BELOW_S: Final = 60.0
"""Configurations whose timed runs take less than this (median whole process) get one more run
of the case, sampled every 10 ms, for their peak memory (:mod:`bench.measure`): a short run
peaks in its last 0.1 s. Longer runs keep the peak of their timed runs, sampled every 0.1 s,
which then misses a negligible part of it."""


def _memory_runs(session: _Session, case_run: _CaseRun, skipped: set[str]) -> None:
    """One memory run of the case for each configuration with short successful timed runs."""
    for config in case_run.configs:
        if config.pool or config.name in skipped:
            continue  # a pooled run's memory is the pool's, not the measured client's
        walls = [
            run["wall_s"]
            for run in session.document["runs"]
            if run["case"] == case_run.case.name and run["config"] == config.name and run["ok"]
        ]
        if not walls or statistics.median(walls) >= MEMORY_RUN_BELOW_S:
            continue
        if _fits(session, case_run, config) is not None:
            continue
        result = case_run.run(config, session.options.reps, memory_run=True)
        _record(session, case_run, result)


def _rate_runs(session: _Session, case_run: _CaseRun, skipped: set[str]) -> None:
    """One run of each further realization of the case (the next seeds) on every configuration
    that ran, for the mean population rates (a single realization's vary by several per cent).
    """
    options = session.options
    count = options.rate_seeds
    if count is None:
        count = 1 if options.quick else case_run.case.rate_seeds
    base = case_run.circuit.simulation.seed
    for k in range(1, count):
        seed = base + k
        try:
            path, scripts = case_run.realization(seed)
        except UnsupportedCircuitError as error:  # as for the case's own seed
            session.note(f"{case_run.case.name}: realization with seed {seed} skipped: {error}")
            return
        for config in case_run.configs:
            if config.name in skipped or _fits(session, case_run, config) is not None:
                continue
            result = case_run.run(config, k, realization=(seed, path, scripts))
            _record(session, case_run, result)


def _case_record(info: CaseInfo, case: Case, circuit: Circuit) -> dict[str, Any]:
    record = asdict(info)
    record["description"] = case.description
    record["circuit"] = case.circuit
    # A plastic projection's weights are kept per synapse, whatever its initial weight.
    record["varying_weights"] = any(
        projection.plastic or not isinstance(projection.weight, float | int)
        for projection in circuit.projections.values()
    )
    record["static_twin"] = case.static_twin
    return record


@contextlib.contextmanager
def _pools(session: _Session, configs: list[Config]) -> Iterator[None]:
    """While the body runs, a pool directory of this session's own when a configuration goes
    through a pool; afterwards its pools are stopped and the directory removed.

    Short (a socket path longer than about 100 bytes makes runs start fresh ranks without a
    word) and fresh: no pool started outside the benchmark takes its runs, and none of the
    benchmark's outlives it.
    """
    sizes = sorted({config.workers for config in configs if config.pool})
    if not sizes:
        yield
        return
    previous = os.environ.get("BRAINSIM_POOL_DIR")
    directory = tempfile.mkdtemp(prefix="bench-pool-")
    os.environ["BRAINSIM_POOL_DIR"] = directory
    try:
        yield
    finally:
        for ranks in sizes:
            try:
                stop_pool(ranks)
            except (OSError, PoolError) as error:
                session.note(f"the pool of {ranks} rank(s) could not be stopped: {error}")
                session.save()
        if previous is None:
            del os.environ["BRAINSIM_POOL_DIR"]
        else:
            os.environ["BRAINSIM_POOL_DIR"] = previous
        shutil.rmtree(directory, ignore_errors=True)


def run_suite(options: Options, root: Path) -> tuple[dict[str, Any], Path]:
    """Run everything ``options`` asks for; the results document and the JSON file it is in."""
    session = _Session(options, root)
    configs = configurations(options.simulators, options.cores, options.single_rank, options.pool)
    if "brainsim" in options.simulators and shutil.which("mpiexec") is None and options.cores > 1:
        session.note("no mpiexec on PATH: brainsim runs on 1 rank only")
        configs = [c for c in configs if c.simulator != "brainsim" or c.workers == 1]
    with _pools(session, configs):
        return _run_configs(session, configs)


def _run_configs(session: _Session, configs: list[Config]) -> tuple[dict[str, Any], Path]:
    """The suite's work on ``configs`` once they are known (see the module docstring)."""
    options = session.options
    configs = _prepare_reference(session, configs)
    print(f"[bench] results: {session.json_path}", flush=True)
    session.sample_load("start")
    _run_baseline(session, configs)
    prepared: dict[str, _CaseRun] = {}
    for case in options.cases:
        case_run = _CaseRun(session, case, configs, options.quick)
        prepared[case.name] = case_run
        session.document["cases"][case.name] = _case_record(case_run.info, case, case_run.circuit)
        session.sample_load(f"before {case.name}")
        warmup = prepared.get(case.warmup or "", case_run).path
        skipped: set[str] = set()
        for config in case_run.configs:
            reason = _fits(session, case_run, config)
            if reason is not None:
                session.note(skipped_note(case.name, config.name, reason))
                skipped.add(config.name)
                continue
            failure = case_run.warm_up(config, warmup)
            if failure:
                session.note(warm_up_failed_note(case.name, config.name, failure))
        for rep in range(options.reps):
            for config in case_run.configs:
                if config.name in skipped:
                    continue
                reason = _fits(session, case_run, config)
                if reason is not None:
                    session.note(f"{case.name}: {config.name} rep {rep} skipped: {reason}")
                    continue
                result = case_run.run(config, rep)
                _record(session, case_run, result)
                if result.error.startswith(("timed out", "killed")):
                    # Later repetitions would fail the same way.
                    skipped.add(config.name)
        _memory_runs(session, case_run, skipped)
        _rate_runs(session, case_run, skipped)
        session.sample_load(f"after {case.name}")
        session.save()
    session.document["finished"] = _now()
    session.save()
    return session.document, session.json_path
