"""Start-up benchmark: a whole ``brainsim run`` process on fresh ranks, cold and warm, against
NEST's whole process on the same circuit.

For each case (a benchmark case of :mod:`bench.cases`, written as the suite writes it) and
each rank count, ``--reps`` rounds, each alternating:

- **nest**: the suite's generated NEST script (``--threads R``) in the reference environment,
  the wall clock of the whole process (interpreter, ``import nest``, build, simulate, exit);
- **warm**: ``brainsim run CASE --ranks R --no-pool --progress json`` (the suite's command line,
  :func:`bench.runners.brainsim_command`) with a kernel cache filled beforehand
  (``NUMBA_CACHE_DIR``, an untimed run first): the whole process, and
  the time from its start to its first ``progress`` report (the first interval of steps done:
  interpreter, imports, MPI start, circuit, build, store creation and kernel loading before
  it);
- **cold**: the same with an empty kernel cache of its own (what a fresh install, container
  or virtual environment pays: every kernel the circuit needs compiled), unless ``--no-cold``.

A case is a benchmark case of :mod:`bench.cases` or the name of a file of ``circuits/``
(``tiny``: brainsim alone, at the file's duration).

Prints a row per run and the medians per (case, ranks, kind), with ``warm / nest`` and
``cold first step`` against the issue's targets (at most NEST's; 15 s).

    python -m bench.bench_startup [--cases izhikevich,brunel] [--ranks 1,2] [--reps 3]
        [--quick] [--no-cold] [--venv bench/.venv-ref] [--json]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.cases import CASES, write_variant
from bench.nest_script import nest_script
from bench.runners import brainsim_command
from brainsim.circuit import load_circuit

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


@dataclass(frozen=True, slots=True)
class Timing:
    """One measured process."""

    case: str
    ranks: int
    kind: str
    """``nest``, ``warm`` or ``cold``."""
    total_s: float
    """Start to exit, wall clock."""
    first_step_s: float | None
    """brainsim: start to the first progress report."""


def _timed_brainsim(variant: Path, ranks: int, cache: Path, out: Path) -> tuple[float, float]:
    """Run brainsim on ``variant``; (seconds to the first progress report, seconds in all)."""
    command = brainsim_command(variant, out, ranks, progress="json")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    first = None
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if first is None and line.startswith('{"event": "progress"'):
                first = time.perf_counter() - started
        _, err = process.communicate()
    total = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"brainsim run failed ({process.returncode}):\n{err[-2000:]}")
    return (total if first is None else first), total


def _timed_nest(python: Path, script: Path, ranks: int) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [str(python), str(script), "--threads", str(ranks)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    total = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"the NEST script failed:\n{result.stderr[-2000:]}")
    return total


def measure(
    case_name: str,
    ranks: int,
    reps: int,
    folder: Path,
    python: Path | None,
    cold: bool = True,
    quick: bool = False,
) -> list[Timing]:
    """Every timed run of ``case_name`` on ``ranks`` (NEST skipped without ``python``)."""
    case = next((c for c in CASES if c.name == case_name), None)
    if case is None:  # a circuit file of circuits/ by name (no NEST script)
        variant = ROOT / "circuits" / f"{case_name}.yaml"
        if not variant.exists():
            raise SystemExit(f"no benchmark case or circuits/{case_name}.yaml")
        python = None
    else:
        variant = write_variant(case, ROOT, folder / "circuits", quick)
    script = None
    if python is not None:
        script = folder / "scripts" / f"{variant.stem}.nest.py"
        script.parent.mkdir(parents=True, exist_ok=True)
        circuit = load_circuit(variant, memory_limit_bytes=0)
        script.write_text(nest_script(circuit, variant.name), encoding="utf-8")
    warm_cache = folder / "cache-warm"
    store = folder / f"{variant.stem}.zarr"
    _timed_brainsim(variant, ranks, warm_cache, store)  # fills the warm cache, untimed
    if script is not None and python is not None:
        _timed_nest(python, script, ranks)  # NEST's files in the page cache, as brainsim's
    found = []
    for rep in range(reps):
        if script is not None and python is not None:
            found.append(Timing(case_name, ranks, "nest", _timed_nest(python, script, ranks), None))
        first, total = _timed_brainsim(variant, ranks, warm_cache, store)
        found.append(Timing(case_name, ranks, "warm", total, first))
        if cold:
            cache = folder / f"cache-cold-{rep}"
            first, total = _timed_brainsim(variant, ranks, cache, store)
            shutil.rmtree(cache, ignore_errors=True)
            found.append(Timing(case_name, ranks, "cold", total, first))
    return found


@dataclass(frozen=True, slots=True)
class Median:
    """The median of the runs of one (case, ranks, kind)."""

    case: str
    ranks: int
    kind: str
    total_s: float
    first_step_s: float | None
    runs: int


def medians(timings: list[Timing]) -> list[Median]:
    """Per (case, ranks, kind): the median whole-process and first-step seconds."""
    keys = sorted({(t.case, t.ranks, t.kind) for t in timings})
    rows = []
    for case, ranks, kind in keys:
        mine = [t for t in timings if (t.case, t.ranks, t.kind) == (case, ranks, kind)]
        firsts = [t.first_step_s for t in mine if t.first_step_s is not None]
        rows.append(
            Median(
                case,
                ranks,
                kind,
                statistics.median(t.total_s for t in mine),
                statistics.median(firsts) if firsts else None,
                len(mine),
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="izhikevich,brunel")
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the cases' short variants")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold runs")
    parser.add_argument("--no-nest", action="store_true", help="skip NEST")
    parser.add_argument("--venv", type=Path, default=BENCH / ".venv-ref")
    parser.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = parser.parse_args()
    python = None
    if not args.no_nest:
        from bench.refenv import ensure_reference_env

        python = ensure_reference_env(args.venv, BENCH / "results" / "reference-install.log")
    # As after an installation (pip compiles every module): the processes then read bytecode.
    # Without this, where PYTHONDONTWRITEBYTECODE is set (as on some shared machines), every
    # module edited since its bytecode was written is compiled again by every run.
    for package in ("brainsim", "services"):
        compileall.compile_dir(ROOT / package, quiet=1)
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        for case in args.cases.split(","):
            for ranks in (int(r) for r in args.ranks.split(",")):
                found = measure(
                    case, ranks, args.reps, Path(folder), python, not args.no_cold, args.quick
                )
                for t in found:
                    first = "" if t.first_step_s is None else f", first step {t.first_step_s:.2f} s"
                    print(f"{t.case} {t.ranks} rank(s) {t.kind}: {t.total_s:.2f} s{first}")
                timings += found
    rows = medians(timings)
    if args.json:
        print(
            json.dumps({"medians": [asdict(r) for r in rows], "runs": [asdict(t) for t in timings]})
        )
        return 0
    print("\nmedians:")
    for row in rows:
        shown = "" if row.first_step_s is None else f"  first step {row.first_step_s:.2f} s"
        print(f"  {row.case:>12} {row.ranks} rank(s) {row.kind:>4}: {row.total_s:.2f} s{shown}")
    nest = {(r.case, r.ranks): r.total_s for r in rows if r.kind == "nest"}
    for row in rows:
        if row.kind == "warm" and (row.case, row.ranks) in nest:
            ratio = row.total_s / nest[row.case, row.ranks]
            print(f"  {row.case} {row.ranks} rank(s): warm / NEST whole process = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
