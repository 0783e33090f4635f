"""The ``brainsim`` command line: run, validate, analyze, export, pool, compile (for a target),
import (a NIR graph), targets, plus plug-in commands (the job service).

``run`` goes to a pool of resident ranks when one of its size runs (:mod:`brainsim.pool`),
else starts ``mpiexec`` for several ranks, else runs in this process.

Exit codes: 0 success; 1 the run failed; 2 invalid input (circuit, arguments, store);
130 the run was cancelled (SIGINT/SIGTERM). Commands from other packages (``serve``, ``submit``,
``status``, ...) register through the ``brainsim.commands`` entry-point group, so this package
never imports the gRPC service.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO, TypeAlias

from brainsim.errors import (
    BrainsimError,
    CircuitError,
    EngineError,
    RecordingError,
    RecordingWriteError,
    TargetError,
)

__all__ = ["main", "program"]

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_CANCELLED = 130
EXIT_CHECKPOINTED = 75
"""The run wrote a checkpoint and stopped as asked (SIGUSR1): ``brainsim resume`` continues it
(75 is sysexits' EX_TEMPFAIL: try again later)."""


def _helper_kernels() -> int:
    """Kernels this process's compile helpers have compiled so far (imported when numba
    compiles, which has loaded the kernels package by then)."""
    from brainsim.kernels.compiler import COMPILED_BY_HELPERS

    return len(COMPILED_BY_HELPERS)


class Progress:
    """Progress of a run on rank 0: a bar on a terminal, plain lines or JSON lines otherwise."""

    def __init__(self, mode: str, stream: TextIO) -> None:
        if mode == "auto":
            mode = "bar" if stream.isatty() else "plain"
        self.mode = mode
        self.stream = stream
        self.start = time.monotonic()
        self.last_print = -1.0
        self.last_fraction = -1.0
        self.compile_started: float | None = None
        """When the current burst of kernel compilations began (``None``: none under way)."""
        self.compiled = 0
        self.helped_before = 0
        """Kernels compiled by compile helpers before the current burst."""
        self.last_compile_print = -1.0

    def compiling(self, kernel: str, count: int) -> None:
        """numba compiles ``kernel``, the ``count``-th kernel of this run: said at once, then
        every few seconds, so that a first run after an install does not sit silent."""
        if self.mode == "none":
            return
        now = time.monotonic()
        first = self.compile_started is None
        if first:
            self.compile_started = now
            self.helped_before = _helper_kernels()
        self.compiled = count
        assert self.compile_started is not None
        wall = now - self.compile_started
        if self.mode == "json":
            if first or now - self.last_compile_print >= 1.0:
                self._json(
                    {
                        "event": "compiling",
                        "kernels": count,
                        "kernel": kernel,
                        "wall_s": round(wall, 3),
                    }
                )
                self.last_compile_print = now
            return
        if first:
            self._write_line(
                "compiling numba kernels for this machine (once after an install or upgrade; "
                "'brainsim compile-kernels' does it ahead of time)"
            )
        interval = 0.1 if self.mode == "bar" else 5.0
        if now - self.last_compile_print < interval:
            return
        self.last_compile_print = now
        text = f"compiling: {count} kernels so far, now {kernel} ({wall:.0f} s)"
        if self.mode == "bar":
            self.stream.write(f"\r{text:<78}")
            self.stream.flush()
        elif not first:
            print(text, file=self.stream, flush=True)

    def _compiled(self) -> None:
        """The end of a burst of compilations (the run moved on): how many, how long."""
        if self.compile_started is None:
            return
        wall = time.monotonic() - self.compile_started
        self.compile_started = None
        helped = _helper_kernels() - self.helped_before  # this burst's
        if self.mode == "json":
            self._json({"event": "compiled", "kernels": self.compiled, "helper_kernels": helped,
                        "wall_s": round(wall, 3)})  # fmt: skip
        elif self.mode != "none":
            also = f" and {helped} in a helper process" if helped else ""
            self._write_line(
                f"compiled {self.compiled} kernels{also} in {wall:.1f} s (cached for later runs)"
            )

    def _write_line(self, text: str) -> None:
        if self.mode == "bar":
            self.stream.write(f"\r{text:<78}\n")
            self.stream.flush()
        else:
            print(text, file=self.stream, flush=True)

    def started(self, n_ranks: int, duration_ms: float) -> None:
        """Announce the run."""
        self.start = time.monotonic()
        if self.mode == "json":
            self._json({"event": "started", "n_ranks": n_ranks, "duration_ms": duration_ms})
        elif self.mode == "plain":
            print(f"running {duration_ms:g} ms on {n_ranks} rank(s)", file=self.stream)

    def __call__(self, simulated_ms: float, duration_ms: float) -> None:
        self._compiled()
        now = time.monotonic()
        wall = now - self.start
        fraction = simulated_ms / duration_ms if duration_ms else 1.0
        done = simulated_ms >= duration_ms
        if self.mode == "none":
            return
        if self.mode == "json":
            if done or fraction - self.last_fraction >= 0.01 or now - self.last_print >= 1.0:
                self._json(
                    {
                        "event": "progress",
                        "simulated_ms": simulated_ms,
                        "duration_ms": duration_ms,
                        "wall_s": round(wall, 3),
                    }
                )
                self.last_print, self.last_fraction = now, fraction
            return
        interval = 0.1 if self.mode == "bar" else 5.0
        if not done and now - self.last_print < interval:
            return
        self.last_print = now
        speed = simulated_ms / wall if wall > 0 else 0.0
        eta = (duration_ms - simulated_ms) / speed / 1000.0 if speed > 0 else float("nan")
        text = (
            f"{simulated_ms:9.1f}/{duration_ms:g} ms  {speed / 1000.0:6.3f} sim-s/s  "
            f"ETA {eta:5.1f} s"
        )
        if self.mode == "bar":
            width = 30
            filled = int(width * fraction)
            bar = "#" * filled + "." * (width - filled)
            end = "\n" if done else ""
            self.stream.write(f"\r[{bar}] {text}{end}")
            self.stream.flush()
        else:
            print(text, file=self.stream, flush=True)

    def finished(self, status: str) -> None:
        """Announce the end of the run."""
        self._compiled()
        if self.mode == "json":
            self._json({"event": "finished", "status": status})
        elif self.mode != "none":
            wall = time.monotonic() - self.start
            print(f"{status} in {wall:.2f} s", file=self.stream, flush=True)

    def _json(self, obj: dict[str, object]) -> None:
        print(json.dumps(obj), file=self.stream, flush=True)


def _cmd_validate(args: argparse.Namespace) -> int:
    from brainsim.circuit import validate_files

    results = validate_files(args.files, parameters=_parameters(args.param))
    bad = 0
    for path, problems in results.items():
        if args.json:
            continue
        if problems:
            bad += 1
            print(f"{path}: {len(problems)} problem(s)")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"{path}: valid")
    if args.json:
        report = {path: [str(p) for p in problems] for path, problems in results.items()}
        print(json.dumps(report, indent=2))
        bad = sum(1 for problems in results.values() if problems)
    return EXIT_INVALID if bad else 0


def _parameters(pairs: Sequence[str]) -> dict[str, float]:
    """``NAME=VALUE`` pairs from ``--param`` as a mapping (invalid ones are circuit problems)."""
    out: dict[str, float] = {}
    problems = []
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(raw)
        except ValueError:
            problems.append(f"--param: expected NAME=NUMBER, got {pair!r}")
    if problems:
        raise CircuitError(problems)
    return out


def _load_for_run(args: argparse.Namespace, *, check_memory: bool) -> object:
    from brainsim.circuit import load_circuit, parse_circuit
    from brainsim.circuit.overrides import with_overrides

    parameters = _parameters(args.param)
    # The memory estimate is for the whole circuit on one machine: a launcher checks it once,
    # ranks that may be spread over several machines do not.
    limit = None if check_memory else 0
    if args.base_dir is not None:
        try:
            with open(args.circuit, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise CircuitError([f"cannot read {args.circuit}: {exc.strerror}"]) from exc
        circuit = parse_circuit(
            text, base_dir=args.base_dir, parameters=parameters, memory_limit_bytes=limit
        )
    else:
        circuit = load_circuit(args.circuit, parameters=parameters, memory_limit_bytes=limit)
    return with_overrides(circuit, duration_ms=args.duration_ms, seed=args.seed)


def _cmd_run(args: argparse.Namespace) -> int:
    from brainsim.engine.launch import launched_rank, launched_ranks, under_mpi_launcher

    if args.target == "pynn":
        return _run_on_pynn(args)
    launcher = launched_ranks() == 1
    if not under_mpi_launcher() and not args.no_pool:
        code = _run_in_pool(args)
        if code is not None:
            return code
    if _only_launches_ranks(args):
        return _launch_ranks(args)
    # First thing on a rank: a SIGUSR1 that Slurm sends early must not kill it while it loads.
    stop = _stop_requests()
    try:
        circuit = _load_for_run(args, check_memory=launcher or args.launched)
    except CircuitError:
        if args.launched and launched_rank() != 0:
            return EXIT_INVALID  # every rank found the same problems; rank 0 reports them
        raise
    code = _run_loaded(circuit, args, sys.stdout, sys.stderr, lambda: stop["stop"], stop)
    _ENDING["skip_teardown"] = True  # the recording is closed: nothing left to tear down
    return code


def _run_on_pynn(args: argparse.Namespace) -> int:
    """``brainsim run --target pynn``: the circuit's PyNN script on pyNN.nest, its spikes
    recorded into ``--out`` (:func:`brainsim.backends.pynn_run.run_pynn`)."""
    from brainsim.backends.pynn_run import run_pynn

    refused = [
        option
        for option, given in (
            ("--ranks", args.ranks > 1),
            ("--checkpoint-every-ms", args.checkpoint_every_ms is not None),
        )
        if given
    ]
    if refused:
        print(f"error: --target pynn runs in one process without checkpoints: drop "
              f"{' and '.join(refused)}", file=sys.stderr)  # fmt: skip
        return EXIT_INVALID
    stop = _stop_requests()
    circuit = _load_for_run(args, check_memory=True)
    out = Path(args.out)
    work = Path(args.work) if args.work else out.with_name(out.name + ".pynn")
    progress = Progress(args.progress, sys.stdout)
    duration_ms = circuit.simulation.duration_ms  # type: ignore[attr-defined]
    progress.started(1, duration_ms)
    try:
        status = run_pynn(
            circuit,  # type: ignore[arg-type]
            out,
            python=args.pynn_python,
            work=work,
            overwrite=args.overwrite,
            should_stop=lambda: stop["stop"],
        )
    except BrainsimError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        # What PyNN cannot express, or a store in the way, is refused input (no retry).
        invalid = isinstance(exc, TargetError | RecordingError)
        return EXIT_INVALID if invalid else EXIT_FAILED
    if status == "complete":
        progress(duration_ms, duration_ms)
    progress.finished(status)
    return _exit_code(status)


def _stop_requests() -> dict[str, bool]:
    """Flags the signal handlers set: ``stop`` (SIGINT, SIGTERM: stop, cancelled) and
    ``checkpoint`` (SIGUSR1, as Slurm's ``--signal`` sends before a time limit: write a
    checkpoint at the end of the next interval and stop)."""
    flags = {"stop": False, "checkpoint": False}

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        flags["stop"] = True

    def request_checkpoint(_signum: int, _frame: FrameType | None) -> None:
        flags["checkpoint"] = True

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, request_stop)
    signal.signal(signal.SIGUSR1, request_checkpoint)
    return flags


def _cmd_resume(args: argparse.Namespace) -> int:
    if _only_launches_ranks(args):
        return _start_ranks(args, args.store, _resume_argv(args), lambda: _prepared_resume(args))
    flags = _stop_requests()  # before the engine loads (see _cmd_run)
    code = _resume_here(args, flags)
    _ENDING["skip_teardown"] = True  # the recording is closed: nothing left to tear down
    return code


def _resume_here(args: argparse.Namespace, flags: dict[str, bool]) -> int:
    """``resume`` on the ranks of this process group; the exit code."""
    with _loading_engine():
        from brainsim.engine.run import communicator, resume
        from brainsim.engine.simulator import RunConfig

    comm, exchanger = communicator()
    progress = Progress(args.progress, sys.stdout) if comm.rank == 0 else None
    try:
        with _without_blas_probe(), _reporting_compiles(progress):
            status = resume(
                args.store,
                comm=comm,
                exchanger=exchanger,
                config=RunConfig(
                    progress=progress,
                    should_stop=lambda: flags["stop"],
                    checkpoint_every_ms=args.checkpoint_every_ms,
                    should_checkpoint=lambda: flags["checkpoint"],
                ),
                until_ms=args.until_ms,
            )
    except BrainsimError as exc:
        _fail(comm, f"error: {exc}", sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        _fail(comm, f"error: rank {comm.rank} failed: {type(exc).__name__}: {exc}", sys.stderr)
        return EXIT_FAILED
    if progress is not None:
        progress.finished(status)
    return _exit_code(status)


def _resume_argv(args: argparse.Namespace) -> list[str]:
    """The ``resume`` arguments for the ranks (everything but ``--ranks``)."""
    argv = ["resume", args.store, "--progress", args.progress]
    if args.until_ms is not None:
        argv += ["--until-ms", repr(args.until_ms)]
    if args.checkpoint_every_ms is not None:
        argv += ["--checkpoint-every-ms", repr(args.checkpoint_every_ms)]
    return argv


def _exit_code(status: str) -> int:
    return {"cancelled": EXIT_CANCELLED, "checkpointed": EXIT_CHECKPOINTED}.get(status, 0)


def _launch_ranks(args: argparse.Namespace) -> int:
    """``run`` on ``--ranks`` ranks of this machine (:func:`_start_ranks`); the exit code."""
    from brainsim.recording.paths import check_writable

    check_writable(args.out, overwrite=args.overwrite)
    return _start_ranks(args, args.out, _run_argv(args), lambda: _prepared_run(args))


def _start_ranks(
    args: argparse.Namespace,
    store: str,
    argv: list[str],
    prepare: Callable[[], Callable[[], int]],
) -> int:
    """Run on ``--ranks`` ranks of this machine; the run's exit code.

    Forked ranks where this process can fork them (:func:`_forks_ranks`): ``prepare()`` loads
    here what every rank needs and returns what each runs. Otherwise fresh ranks under
    ``mpiexec`` run the command ``argv`` (``--launched``); for ``run`` they load and check the
    circuit themselves, the memory estimate included (they share this machine), rank 0 alone
    reporting what is wrong with it (checking it here first would add numpy, jsonschema and the
    parse, about 0.2 s, before ``mpiexec`` even starts). Either way with
    :data:`~brainsim.engine.launch.ONE_HOST_MPI_SETTINGS` where the environment lacks them:
    set before the MPI library loads here, and inherited by the ranks.
    """
    from brainsim.engine.launch import ONE_HOST_MPI_SETTINGS, mpiexec_command, run_child

    for name, value in ONE_HOST_MPI_SETTINGS.items():
        os.environ.setdefault(name, value)
    if _forks_ranks(args):
        return _forked(args, store, prepare())
    command = mpiexec_command(args.ranks, [sys.executable, "-m", "brainsim", *argv, "--launched"])
    code, _ = run_child(command, store, capture_stderr=False)
    return code


def _forks_ranks(args: argparse.Namespace) -> bool:
    """Whether this ``run`` or ``resume`` forks its ``--ranks`` ranks
    (:mod:`brainsim.exchange.forked`) rather than starting them with ``mpiexec``: with
    ``--launcher fork``, and with ``auto`` on Linux where the MPI library can be started that
    way (MPICH's family). ``--launcher fork`` where it cannot is refused."""
    if not _may_fork(args):
        return False
    from brainsim.exchange.forked import fork_unavailable

    reason = fork_unavailable()
    if reason is not None and args.launcher == "fork":
        raise EngineError(f"--launcher fork: {reason}; use --launcher mpiexec")
    return reason is None


def _may_fork(args: argparse.Namespace) -> bool:
    """Whether ``--launcher`` lets this process fork the ranks (before finding out whether it
    can: that loads the MPI library)."""
    return args.launcher == "fork" or (args.launcher == "auto" and sys.platform == "linux")


def _prepared_run(args: argparse.Namespace) -> Callable[[], int]:
    """What forked ranks of ``run`` start with: the circuit, loaded and checked here once (the
    memory estimate included: the ranks share this machine), the engine and the kernels
    numba has cached for it; returns what each rank runs."""
    stop = _stop_requests()  # the ranks' handlers: they inherit them (and the flags)
    circuit = _load_for_run(args, check_memory=True)
    with _loading_engine():
        from brainsim.engine.run import preload
    preload(circuit, args.ranks)  # type: ignore[arg-type]
    return lambda: _run_loaded(circuit, args, sys.stdout, sys.stderr, lambda: stop["stop"], stop)


def _prepared_resume(args: argparse.Namespace) -> Callable[[], int]:
    """What forked ranks of ``resume`` start with: the engine and numba's runtime (the store
    decides the rest); returns what each rank runs."""
    flags = _stop_requests()  # the ranks' handlers: they inherit them (and the flags)
    with _loading_engine():
        from brainsim.engine.run import resume  # noqa: F401 - loaded once, for every rank
        from brainsim.engine.simulator import start_numba
    start_numba()
    return lambda: _resume_here(args, flags)


def _forked(args: argparse.Namespace, store: str, rank_main: Callable[[], int]) -> int:
    """``rank_main`` on ``--ranks`` forked ranks; the run's exit code. A store the ranks left
    saying ``running`` is marked failed, as after ``mpiexec``."""
    from brainsim.exchange.forked import run_forked

    ended = run_forked(args.ranks, rank_main, failed_code=EXIT_FAILED)
    code = ended.code
    if code != 0:
        from brainsim.recording.writer import mark_store_failed

        mark_store_failed(store, ended.failure or f"exit code {code}")
    _ENDING["skip_teardown"] = True  # the ranks have ended; this process only waited
    return code


def _run_in_pool(args: argparse.Namespace) -> int | None:
    """The exit code of the run in a running pool of ``--ranks`` ranks; None without one."""
    from brainsim.errors import PoolError
    from brainsim.pool.client import run_in_pool

    progress = args.progress
    if progress == "auto":  # the client's terminal decides, not the pool's log
        progress = "bar" if sys.stdout.isatty() else "plain"
    argv = _run_argv(args, progress=progress)
    try:
        return run_in_pool(
            args.ranks,
            argv,
            out=args.out,
            overwrite=args.overwrite,
            quiet=progress == "none",
        )
    except PoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _run_loaded(
    circuit: object,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    should_stop: Callable[[], bool],
    flags: dict[str, bool] | None = None,
) -> int:
    """Run a loaded circuit on the ranks of this process group; the exit code."""
    # Only the ranks (and a one-rank run) load the engine: numba and zarr take about 0.5 s.
    with _loading_engine():
        from brainsim.engine.run import communicator, execute
        from brainsim.engine.simulator import RunConfig

    comm, exchanger = communicator()
    progress = Progress(args.progress, out) if comm.rank == 0 else None
    if progress is not None:
        progress.started(comm.size, circuit.simulation.duration_ms)  # type: ignore[attr-defined]
    try:
        with _without_blas_probe(), _reporting_compiles(progress):
            status = execute(
                circuit,  # type: ignore[arg-type]
                args.out,
                comm=comm,
                exchanger=exchanger,
                overwrite=args.overwrite,
                config=RunConfig(
                    progress=progress,
                    should_stop=should_stop,
                    checkpoint_every_ms=getattr(args, "checkpoint_every_ms", None),
                    should_checkpoint=None if flags is None else lambda: flags["checkpoint"],
                ),
            )
    except BrainsimError as exc:
        _fail(comm, f"error: {exc}", err)
        invalid = isinstance(exc, RecordingError) and not isinstance(exc, RecordingWriteError)
        return EXIT_INVALID if invalid else EXIT_FAILED
    except Exception as exc:
        _fail(comm, f"error: rank {comm.rank} failed: {type(exc).__name__}: {exc}", err)
        return EXIT_FAILED
    if progress is not None:
        progress.finished(status)
    return _exit_code(status)


def _pool_job(argv: list[str], out: TextIO, err: TextIO, should_stop: Callable[[], bool]) -> int:
    """One ``brainsim run`` on this rank of a pool (see :mod:`brainsim.pool.server`).

    Every rank loads the circuit and checks it, the memory estimate included (a pool lives on
    one machine), so an invalid one fails on all of them alike, before any collective call.
    """
    parser = argparse.ArgumentParser(prog="brainsim run", exit_on_error=False)
    _add_run_arguments(parser)
    try:
        args = parser.parse_args(argv[1:])
        circuit = _load_for_run(args, check_memory=True)
    except (argparse.ArgumentError, BrainsimError) as exc:
        print(f"error: {exc}", file=err, flush=True)
        return EXIT_INVALID
    except SystemExit:  # argparse has printed what was wrong with the arguments
        return EXIT_INVALID
    return _run_loaded(circuit, args, out, err, should_stop)


@contextlib.contextmanager
def _reporting_compiles(progress: Progress | None) -> Iterator[None]:
    """Tell ``progress`` about each kernel numba compiles meanwhile (none when every kernel
    is in the cache: numba reports compilations, not loads from its cache)."""
    if progress is None or progress.mode == "none":
        yield
        return
    from numba.core import event as numba_event

    class Compiles(numba_event.Listener):
        count = 0

        def on_start(self, event: numba_event.Event) -> None:
            self.count += 1
            dispatcher = event.data.get("dispatcher") if isinstance(event.data, dict) else None
            name = getattr(getattr(dispatcher, "py_func", None), "__name__", "a kernel")
            assert progress is not None
            progress.compiling(name, self.count)

        def on_end(self, event: numba_event.Event) -> None:
            pass

    with numba_event.install_listener("numba:compile", Compiles()):
        yield


@contextlib.contextmanager
def _loading_engine() -> Iterator[None]:
    """Load the engine with Python's cyclic garbage collector off, then exempt what loaded; and
    without numba's check of scipy's version.

    Importing numba, llvmlite and zarr allocates several hundred thousand long-lived objects;
    with the collector on, each full collection walks all of them again (about 0.1 s of a
    rank's start-up), and so does the collection at interpreter exit (0.2 s). They are moved to
    the collector's permanent generation instead (``gc.freeze``), which later collections skip.

    ``import numba`` imports scipy, where it is installed, only to check that its version is
    recent enough: about 10 ms of every rank's start-up for a module no kernel uses. While the
    engine loads, scipy is made to fail to import at once (numba then skips the check), unless
    this process has imported it already; it imports again afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with _blocked("scipy"):
            yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _blocked(module: str) -> Iterator[None]:
    """Make ``import module`` fail at once in this process (unless it is imported already)."""
    blocked = module not in sys.modules
    if blocked:
        sys.modules[module] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if blocked and sys.modules.get(module, 0) is None:
            del sys.modules[module]


_BLAS_PROBE = "scipy.linalg.cython_blas"


@contextlib.contextmanager
def _without_blas_probe() -> Iterator[None]:
    """Let numba find no BLAS while a run's process loads its kernels.

    When numba loads its array functions it probes for a BLAS by importing ``scipy.linalg``,
    which takes about 0.3 s of every rank's start-up where scipy is installed. No kernel uses a
    BLAS, and this process only runs the simulation, so the probe is made to fail at once; the
    import works again afterwards. (A library user's process is never changed this way.)
    """
    with _blocked(_BLAS_PROBE):
        yield


def _fail(comm: object, message: str, err: TextIO) -> None:
    """Report a rank's failure; on several ranks, abort them all so none waits forever."""
    print(message, file=err, flush=True)
    abort: Callable[[int], None] | None = getattr(comm, "abort", None)
    if abort is not None and getattr(comm, "size", 1) > 1:
        abort(EXIT_FAILED)


def _run_argv(args: argparse.Namespace, progress: str | None = None) -> list[str]:
    """The ``run`` arguments for the ranks (everything but ``--ranks``)."""
    argv = ["run", args.circuit, "--out", args.out, "--progress", progress or args.progress]
    for pair in args.param:
        argv += ["--param", pair]
    if args.duration_ms is not None:
        argv += ["--duration-ms", repr(args.duration_ms)]
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    if args.overwrite:
        argv.append("--overwrite")
    if args.base_dir is not None:
        argv += ["--base-dir", args.base_dir]
    if args.checkpoint_every_ms is not None:
        argv += ["--checkpoint-every-ms", repr(args.checkpoint_every_ms)]
    return argv


def _cmd_pool(args: argparse.Namespace) -> int:
    from brainsim.pool import client

    if args.action == "start":
        info, started = client.start_pool(args.ranks, idle_timeout_s=args.idle_timeout_s)
        state = "started" if started else "already running"
        print(f"pool of {info['ranks']} rank(s) {state}: {info['socket']}")
        return 0
    if args.action == "stop":
        sizes = [args.ranks] if args.ranks else [p["ranks"] for p in client.list_pools()]
        for ranks in sizes:
            last = client.stop_pool(ranks)
            if last is None:
                print(f"no pool of {ranks} rank(s) is running")
            elif last["stopped"]:
                print(f"pool of {ranks} rank(s) stopped after {last['jobs_done']} job(s)")
            else:
                print(f"pool of {ranks} rank(s) stops when its running and queued jobs end")
        if not sizes:
            print("no pool is running")
        return 0
    pools = client.list_pools()
    if args.json:
        print(json.dumps(pools, indent=2))
    elif not pools:
        print("no pool is running")
    for info in [] if args.json else pools:
        state = "busy" if info["busy"] else "idle"
        code = "" if info["current_code"] else ", runs other code (restart it)"
        print(
            f"{info['ranks']} rank(s): {state}, {info['jobs_done']} job(s) done, "
            f"{info['queued']} queued, since {info['started']}, pids "
            f"{' '.join(map(str, info['pids']))}{code}: {info['socket']}"
        )
    return 0


def _cmd_pool_serve(args: argparse.Namespace) -> int:
    """What each rank of a pool runs (started by ``brainsim pool start``)."""
    from pathlib import Path

    from brainsim.pool.server import serve

    with _loading_engine():
        from brainsim.engine.run import communicator, return_freed_memory
        from brainsim.engine.simulator import load_step_loop

    comm, exchanger = communicator()
    return_freed_memory()
    with _without_blas_probe():
        load_step_loop(exchanger)
    idle = args.idle_timeout_s if args.idle_timeout_s > 0 else None
    return serve(Path(args.socket), comm, _pool_job, idle_timeout_s=idle)


RASTER_NEURONS = 100
"""Neurons per population in ``analyze --plot``'s raster (``brainsim.analysis.plots`` has the
same default; not imported from there, which would load matplotlib for every command)."""


def _raster_neurons(text: str) -> int | str:
    """``--raster-neurons``: a whole number >= 1, or ``all``."""
    return "all" if text.strip().lower() == "all" else _positive_int(text)


_DECODE_ONLY = ("population", "labels", "method", "groups", "train", "train_fraction", "lag_ms")


def _cmd_analyze(args: argparse.Namespace) -> int:
    from brainsim.analysis.cli import analyze_main, decode_main

    given = [
        f"--{name.replace('_', '-')}" for name in _DECODE_ONLY if getattr(args, name) is not None
    ]
    if args.decode is None and given:
        print(f"brainsim analyze: error: {' '.join(given)}: only with --decode", file=sys.stderr)
        return EXIT_INVALID
    if args.raster_neurons is not None and (args.decode is not None or args.plot is None):
        print(
            "brainsim analyze: error: --raster-neurons: only with --plot, without --decode",
            file=sys.stderr,
        )
        return EXIT_INVALID
    if args.decode is not None:
        if args.t_start_ms is not None or args.t_stop_ms is not None:
            print(
                "brainsim analyze: error: --decode uses the stimulus' windows; "
                "--t-start-ms and --t-stop-ms do not apply",
                file=sys.stderr,
            )
            return EXIT_INVALID
        return decode_main(
            args.store,
            stimulus=args.decode,
            population=args.population,
            labels=args.labels,
            method=args.method or "rate",
            groups=args.groups,
            n_train=args.train,
            train_fraction=args.train_fraction,
            lag_ms=0.0 if args.lag_ms is None else args.lag_ms,
            plot=args.plot,
            as_json=args.json,
        )
    raster = args.raster_neurons
    return analyze_main(
        args.store,
        plot=args.plot,
        as_json=args.json,
        t_start_ms=args.t_start_ms,
        t_stop_ms=args.t_stop_ms,
        raster_neurons=RASTER_NEURONS if raster is None else None if raster == "all" else raster,
    )


def _cmd_export(args: argparse.Namespace) -> int:
    from brainsim.analysis.cli import export_main

    return export_main(args.store, to=args.to, out=args.output, overwrite=args.overwrite)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("circuit", help="circuit file (YAML or JSON)")
    p.add_argument("--out", required=True, help="output Zarr store (directory, e.g. run.zarr)")
    p.add_argument(
        "--ranks", type=_positive_int, default=1, help="MPI ranks on this machine (see --launcher)"
    )
    p.add_argument("--duration-ms", type=float, default=None, help="override the duration")
    p.add_argument("--seed", type=int, default=None, help="override the seed")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a value of the circuit's parameters: block (repeatable), e.g. scale=0.1",
    )
    p.add_argument(
        "--progress",
        choices=["auto", "bar", "plain", "json", "none"],
        default="auto",
        help="progress display (json: one JSON object per line, for services)",
    )
    p.add_argument(
        "--no-pool",
        action="store_true",
        help="start ranks for this run even when a pool of --ranks ranks is running",
    )
    p.add_argument(
        "--checkpoint-every-ms",
        type=_positive_float,
        default=None,
        metavar="T",
        help="write a checkpoint into the store every T ms of simulated time "
        "(brainsim resume continues from the last one, on any number of ranks)",
    )
    p.add_argument(
        "--target",
        choices=["numba_mpi", "pynn"],
        default="numba_mpi",
        help="numba_mpi: brainsim's engine; pynn: compile to a PyNN script and run it on "
        "pyNN.nest (one process, no checkpoints), its spikes recorded into --out",
    )
    p.add_argument(
        "--pynn-python",
        default=os.environ.get("BRAINSIM_PYNN_PYTHON", sys.executable),
        metavar="PYTHON",
        help="with --target pynn: a Python with PyNN 0.13 and NEST (default: "
        "$BRAINSIM_PYNN_PYTHON, else this one)",
    )
    p.add_argument(
        "--work",
        default=None,
        metavar="DIR",
        help="with --target pynn: where the script and PyNN's results go (default: "
        "OUT.pynn beside the store)",
    )
    _add_launcher_argument(p)
    p.add_argument("--base-dir", default=None, help=argparse.SUPPRESS)
    # Set by brainsim's own launcher for the ranks it starts (see _launch_ranks).
    p.add_argument("--launched", action="store_true", help=argparse.SUPPRESS)


def _add_launcher_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--launcher",
        choices=["auto", "fork", "mpiexec"],
        default="auto",
        help="how --ranks ranks start: fork (this process loads the engine once and forks "
        "them; MPICH's family of MPI libraries), mpiexec (fresh processes), auto (default): "
        "fork on Linux where the MPI library allows it, else mpiexec",
    )


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _cmd_compile_kernels(args: argparse.Namespace) -> int:
    from brainsim.engine.warmup import warm_up

    seconds = warm_up(args.ranks)
    print(f"kernels compiled and cached in {seconds:.1f} s (ranks: {args.ranks})")
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from brainsim.backends import backend
    from brainsim.circuit import load_circuit
    from brainsim.circuit.overrides import with_overrides

    target = backend(args.target)
    circuit = with_overrides(
        load_circuit(args.circuit, parameters=_parameters(args.param)),
        duration_ms=args.duration_ms,
        seed=args.seed,
    )
    artefact = target.compile(circuit, args.output)
    for path in artefact.paths:
        print(path)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from brainsim.backends import import_nir

    imported = import_nir(
        args.model,
        args.output,
        name=args.name,
        dt_ms=args.dt_ms,
        duration_ms=args.duration_ms,
        discretization=args.discretization,
        seed=args.seed,
        record_all=args.record_all,
    )
    print(imported.path)
    for node, population in imported.populations.items():
        print(f"  node {node} -> population {population}")
    return 0


def _cmd_targets(args: argparse.Namespace) -> int:
    from brainsim.backends import BACKENDS

    capabilities = [b.capabilities() for b in BACKENDS.values()]
    if args.json:
        print(json.dumps([c.as_dict() for c in capabilities], indent=2))
        return 0
    for c in capabilities:
        print(f"{c.target}: {c.summary}")
        print(f"  runs here: {'yes' if c.runs_here else 'no (compiles only)'}")
        print(f"  neuron models: {', '.join(c.neuron_models)}")
        print(f"  synapse models: {', '.join(c.synapse_models)}")
        print(f"  plasticity: {'yes' if c.plasticity else 'no'}")
        print(f"  stimuli: {', '.join(c.stimuli)}")
        print(f"  connection rules: {', '.join(c.connection_rules)}")
        print(f"  delays: {c.delays}")
        print(f"  output: {c.output}")
    return 0


class _VersionAction(argparse.Action):
    """``--version``: prints brainsim's version, read only then (``importlib.metadata`` costs
    every other command about 40 ms, a run's launching process included)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        import brainsim

        parser.exit(message=f"brainsim {brainsim.__version__}\n")


_Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``add_subparsers`` returns, where each command adds its parser."""


def _add_run_command(sub: _Subcommands) -> None:
    p = sub.add_parser("run", help="simulate a circuit and record it to a Zarr store")
    _add_run_arguments(p)
    p.set_defaults(func=_cmd_run)


def _add_resume_command(sub: _Subcommands) -> None:
    p = sub.add_parser(
        "resume",
        help="continue a run from the last checkpoint in its store, on any number of ranks",
    )
    p.add_argument("store", help="the run's Zarr store (written with --checkpoint-every-ms)")
    p.add_argument(
        "--ranks", type=_positive_int, default=1, help="MPI ranks on this machine (see --launcher)"
    )
    p.add_argument(
        "--checkpoint-every-ms",
        type=_positive_float,
        default=None,
        metavar="T",
        help="write a checkpoint every T ms of simulated time (default: as the run did)",
    )
    p.add_argument(
        "--until-ms",
        type=_positive_float,
        default=None,
        metavar="T",
        help="run on to T ms (a later end than the store's; a complete run with checkpoints "
        "continues from its last one, at its end)",
    )
    p.add_argument("--progress", choices=["auto", "bar", "plain", "json", "none"], default="auto")
    _add_launcher_argument(p)
    p.add_argument("--launched", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_resume)


def _add_compile_kernels_command(sub: _Subcommands) -> None:
    p = sub.add_parser(
        "compile-kernels",
        help="compile and cache every numba kernel now, so that the first run does not wait",
    )
    p.add_argument(
        "--ranks",
        type=_positive_int,
        default=1,
        help="also compile the MPI step loop (any value above 1: runs under mpiexec)",
    )
    p.set_defaults(func=_cmd_compile_kernels)


def _add_validate_command(sub: _Subcommands) -> None:
    p = sub.add_parser("validate", help="check circuit files; print every problem")
    p.add_argument("files", nargs="+", help="circuit files")
    p.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="override a parameter"
    )
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=_cmd_validate)


def _add_analyze_command(sub: _Subcommands) -> None:
    p = sub.add_parser("analyze", help="summarize a recording; optionally plot it")
    p.add_argument("store", help="recording (Zarr store)")
    p.add_argument(
        "--plot",
        default=None,
        help="write figures: the raster to this file, rate histogram and state traces beside it "
        "(PNG, SVG or PDF); with --decode, the confusion matrix",
    )
    p.add_argument(
        "--raster-neurons",
        type=_raster_neurons,
        default=None,
        metavar="N|all",
        help=f"neurons per population in the raster: N evenly spaced node ids (default "
        f"{RASTER_NEURONS}; smaller populations are shown whole) or all",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--t-start-ms", type=float, default=None)
    p.add_argument("--t-stop-ms", type=float, default=None)
    d = p.add_argument_group(
        "decoding",
        "with --decode STIMULUS: decode a population's responses to the samples a data stimulus "
        "showed, print the accuracy and the confusion matrix (--plot: its figure)",
    )
    d.add_argument("--decode", metavar="STIMULUS", default=None, help="the data stimulus")
    d.add_argument("--population", default=None, help="the population that answers")
    d.add_argument(
        "--labels", metavar="FILE", default=None, help=".npy: one integer label per data row"
    )
    d.add_argument(
        "--method",
        choices=["rate", "latency", "assign"],
        default=None,
        help="rate: the most active neuron (group) wins; latency: the earliest; assign: label "
        "neurons from training samples, then the most active label wins (default rate)",
    )
    d.add_argument(
        "--groups",
        metavar="FILE",
        default=None,
        help='JSON {"label": [node ids]}: candidate groups for rate and latency (default: '
        "neuron i answers label i)",
    )
    split = d.add_mutually_exclusive_group()
    split.add_argument(
        "--train", type=_positive_int, default=None, help="assign: train on the first N samples"
    )
    split.add_argument(
        "--train-fraction",
        type=float,
        default=None,
        help="assign: train on this fraction of the samples, the first ones (default 0.5)",
    )
    d.add_argument(
        "--lag-ms", type=float, default=None, help="shift each window by the network's delay"
    )
    p.set_defaults(func=_cmd_analyze)


def _add_export_command(sub: _Subcommands) -> None:
    p = sub.add_parser(
        "export",
        help="write a recording's spikes as NWB or Neo (needs the nwb extra)",
        description="Write the spikes of a recording as an NWB file (Units table, times in s) "
        "or a Neo Block (SpikeTrains in ms; .pkl: neo.io.PickleIO, .mat: neo.io.NeoMatlabIO, "
        'needs scipy). Needs the nwb extra: pip install -e ".[nwb]" in the brainsim checkout.',
    )
    p.add_argument("store", help="recording (Zarr store)")
    p.add_argument("--to", required=True, choices=["nwb", "neo"], help="the output format")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="output file: .nwb for nwb; .pkl (or .pickle) or .mat for neo",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_cmd_export)


def _add_compile_command(sub: _Subcommands) -> None:
    p = sub.add_parser(
        "compile",
        help="compile a circuit for a target (brainsim targets lists them), e.g. a NIR graph",
        description="Check CIRCUIT against the target's capabilities (every violation is "
        "reported with its field path) and write it for the target into DIR: nir writes "
        "DIR/<circuit name>.nir; numba_mpi the normalized circuit and its files.",
    )
    p.add_argument("circuit", help="circuit file (YAML or JSON)")
    p.add_argument(
        "--target",
        required=True,
        help="the target (numba_mpi, nir, pynn, pynn:spiNNaker, pynn:brainscales2)",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="override a parameter"
    )
    p.add_argument("--duration-ms", type=float, default=None, help="override the duration")
    p.add_argument(
        "--seed", type=int, default=None, help="override the seed (it draws the synapses)"
    )
    p.set_defaults(func=_cmd_compile)


def _add_import_command(sub: _Subcommands) -> None:
    p = sub.add_parser(
        "import",
        help="turn a NIR graph (e.g. a network trained in snnTorch) into a circuit",
        description="Write the NIR graph MODEL as a circuit with its connection files beside "
        "it; Input nodes become parrot populations, to be driven by a stimulus you add "
        "(docs/targets.md).",
    )
    p.add_argument("model", help="the NIR graph (.nir, written with nir.write)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="circuit file (.yaml)")
    p.add_argument("--name", default=None, help="circuit name (default: from the file name)")
    p.add_argument(
        "--dt-ms",
        type=_positive_float,
        default=None,
        help="time step (default: the graph's dt metadata, else 0.1 ms as snnTorch's export)",
    )
    p.add_argument("--duration-ms", type=_positive_float, default=1000.0, help="simulated time")
    p.add_argument(
        "--discretization",
        choices=["euler", "exact"],
        default=None,
        help="euler: brainsim steps as forward Euler does (snnTorch, Norse); exact: NIR's ODE "
        "integrated exactly (default: the graph's metadata, else euler)",
    )
    p.add_argument("--seed", type=int, default=0, help="the circuit's seed")
    p.add_argument(
        "--record-all",
        action="store_true",
        help="record every population's spikes (default: those feeding Output nodes)",
    )
    p.set_defaults(func=_cmd_import)


def _add_targets_command(sub: _Subcommands) -> None:
    p = sub.add_parser("targets", help="list the compilation targets and what each supports")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=_cmd_targets)


def _add_pool_command(sub: _Subcommands) -> None:
    p = sub.add_parser(
        "pool",
        help="keep ranks with the engine loaded, so that runs start at once",
        description="A pool of N ranks takes every 'brainsim run --ranks N' of this user on "
        "this machine (unless --no-pool), and skips the second or so each run spends starting "
        "mpiexec and loading the engine. Recordings are the same as without it.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("start", help="start a pool (returns once its ranks are ready)")
    a.add_argument("--ranks", type=_positive_int, default=1, help="MPI ranks of the pool")
    a.add_argument(
        "--idle-timeout-s",
        type=float,
        default=3600.0,
        help="stop after this long without a job (0: never; default one hour)",
    )
    a = actions.add_parser("stop", help="stop pools once their queued jobs are done")
    a.add_argument("--ranks", type=_positive_int, default=None, help="only this pool")
    a = actions.add_parser("status", help="list this user's pools")
    a.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=_cmd_pool)
    a = actions.add_parser("serve")  # what the ranks run; not listed
    a.add_argument("--socket", required=True)
    a.add_argument("--idle-timeout-s", type=float, default=0.0)
    a.set_defaults(func=_cmd_pool_serve)


_COMMANDS: dict[str, Callable[[_Subcommands], None]] = {
    "run": _add_run_command,
    "resume": _add_resume_command,
    "compile-kernels": _add_compile_kernels_command,
    "validate": _add_validate_command,
    "analyze": _add_analyze_command,
    "export": _add_export_command,
    "compile": _add_compile_command,
    "import": _add_import_command,
    "targets": _add_targets_command,
    "pool": _add_pool_command,
}
"""The built-in subcommands, in the order ``--help`` lists them."""


def build_parser(*, plugins: bool = True, only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with the built-in and (with ``plugins``) plug-in subcommands; with
    ``only``, that built-in subcommand alone (building all of them costs every process about
    4 ms, a run's launcher and each of its ranks included)."""
    parser = argparse.ArgumentParser(
        prog="brainsim", description="Distributed spiking circuit simulation."
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, add in _COMMANDS.items():
        if only is None or name == only:
            add(sub)
    if plugins:
        from importlib.metadata import entry_points

        for ep in entry_points(group="brainsim.commands"):
            ep.load()(sub)
    return parser


def _compile_dataclasses_once() -> None:
    """Take the compiled methods of this process's dataclasses from the cache
    (:mod:`brainsim.dataclass_code`; about 80 classes, 0.8 ms each, in a run's process)."""
    from brainsim import dataclass_code

    dataclass_code.install()


def _only_launches_ranks(args: argparse.Namespace) -> bool:
    """Whether this ``run`` or ``resume`` process starts ``--ranks`` ranks, which then do the
    work (forked from it, or under ``mpiexec``), rather than being a rank itself."""
    if args.ranks == 1:
        return False
    from brainsim.engine.launch import launched_ranks

    return launched_ranks() == 1


_ENDING = {"skip_teardown": False}
"""Set by a command whose process has nothing left to close when it returns (see
:func:`program`)."""


def program() -> NoReturn:
    """The ``brainsim`` program (and ``python -m brainsim``): :func:`main`, then exit.

    A process that ran a simulation, or waited for its forked ranks, ends without the
    interpreter's teardown, which would free one by one every object of numpy, numba, llvmlite
    and zarr (20-30 ms): its recording is closed by then; its exit handlers run and its output
    is flushed first. Other commands, and :func:`main` called from Python, end as usual."""
    code = main()
    if _ENDING["skip_teardown"]:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Plug-ins (the job service's commands) import grpc: about 0.1 s that a built-in command,
    # run once per simulation, does without.
    command = argv[0] if argv and argv[0] in _COMMANDS else None
    if command is None:
        _compile_dataclasses_once()  # before the plug-ins' modules define theirs
    parser = build_parser(plugins=command is None, only=command)
    args = parser.parse_args(argv)
    # A process that only starts mpiexec defines no dataclass (importing dataclasses would
    # cost it 12 ms); one that forks the ranks loads the engine for them.
    launching = command in ("run", "resume") and _only_launches_ranks(args) and not _may_fork(args)
    if command is not None and not launching:
        _compile_dataclasses_once()  # before the command's modules define theirs
    try:
        code: int = args.func(args)
    except CircuitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrainsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    return code
