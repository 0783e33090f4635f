"""Command line of the benchmark suite: ``python -m bench all`` (or named cases) and re-rendering.

    python -m bench all                          # every case, 3 repetitions, all simulators
    python -m bench brunel izhikevich --reps 5
    python -m bench --quick                      # short, small cases: a smoke run of minutes
    python -m bench all --simulators brainsim,nest
    python -m bench --report-from bench/results/A.json bench/results/B.json

A full run writes ``bench/results/<date>.json``, ``bench/RESULTS.md`` and ``bench/rtf.png``;
``--quick`` writes its markdown and plot next to its JSON instead, leaving RESULTS.md alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from bench.cases import CASES, RATE_SEEDS, select_cases
from bench.report import merge, plot_rtf, render_markdown
from bench.suite import SIMULATORS, Options, run_suite

__all__ = ["main", "parser"]

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m bench``."""
    cases = ", ".join(case.name for case in CASES)
    found = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark brainsim against NEST and Brian2 on this machine.",
    )
    found.add_argument(
        "cases", nargs="*", default=[], help=f"'all' (default) or case names: {cases}"
    )
    found.add_argument(
        "--reps", type=int, default=None, help="repetitions (default 3; 1 with --quick)"
    )
    found.add_argument(
        "--quick", action="store_true", help="short durations and small cases (a smoke run)"
    )
    found.add_argument(
        "--simulators",
        default=",".join(SIMULATORS),
        help="comma-separated subset of brainsim,nest,brian2",
    )
    found.add_argument(
        "--cores",
        type=int,
        default=os.cpu_count() or 1,
        help="MPI ranks for brainsim, threads for NEST and Brian2 (default: all cores)",
    )
    found.add_argument(
        "--no-single-rank", action="store_true", help="skip brainsim's 1-rank runs (speed-up)"
    )
    found.add_argument(
        "--no-pool",
        action="store_true",
        help="skip brainsim's runs through a pool of resident ranks",
    )
    found.add_argument(
        "--rate-seeds",
        type=int,
        default=None,
        metavar="N",
        help="realizations (seeds) per case whose mean rates are compared (default: the "
        f"case's, {RATE_SEEDS} for all but the full microcircuit; 1 with --quick)",
    )
    found.add_argument("--out-dir", type=Path, default=BENCH / "results")
    found.add_argument("--venv", type=Path, default=BENCH / ".venv-ref", help="reference env")
    found.add_argument("--timeout-s", type=float, default=3600.0, help="limit per run")
    found.add_argument("--results-md", type=Path, default=None, help="markdown output")
    found.add_argument("--plot", type=Path, default=None, help="real-time-factor PNG output")
    found.add_argument(
        "--report-from",
        nargs="+",
        type=Path,
        default=None,
        metavar="JSON",
        help="render results JSON files (merged, later ones win per case) instead of running",
    )
    found.add_argument(
        "--note",
        action="append",
        default=[],
        help="with --report-from: a note to add to the rendered results (repeatable)",
    )
    return found


def _shown(path: Path) -> str:
    """A path as RESULTS.md shows it: relative to the repository when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else path.name


def _outputs(args: argparse.Namespace, json_stem: str, quick: bool) -> tuple[Path, Path]:
    if quick:
        folder = args.out_dir
        default_md, default_plot = folder / f"{json_stem}.md", folder / f"{json_stem}-rtf.png"
    else:
        default_md, default_plot = BENCH / "RESULTS.md", BENCH / "rtf.png"
    return args.results_md or default_md, args.plot or default_plot


def _write_outputs(document: dict[str, object], markdown: Path, plot: Path) -> None:
    markdown.parent.mkdir(parents=True, exist_ok=True)
    # RESULTS.md is committed: no paths of this checkout in it (run errors may quote some).
    text = render_markdown(document).replace(f"{ROOT}/", "").replace(str(ROOT), ".")
    markdown.write_text(text, encoding="utf-8")
    plot_rtf(document, plot)
    print(f"[bench] wrote {markdown} and {plot}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the suite or re-render results; the exit status."""
    args = parser().parse_args(argv)
    if args.report_from:
        documents = [json.loads(path.read_text(encoding="utf-8")) for path in args.report_from]
        document = merge(documents)
        document["notes"] += args.note
        rendering = ["python", "-m", "bench", "--report-from", *map(_shown, args.report_from)]
        document["commands"].append(shlex.join(rendering) + (" --note ..." if args.note else ""))
        markdown, plot = _outputs(
            args, args.report_from[-1].stem, bool(document["options"]["quick"])
        )
        _write_outputs(document, markdown, plot)
        return 0
    simulators = tuple(name.strip() for name in args.simulators.split(",") if name.strip())
    unknown = sorted(set(simulators) - set(SIMULATORS))
    if unknown:
        print(f"unknown simulator(s) {unknown}; valid: {', '.join(SIMULATORS)}", file=sys.stderr)
        return 2
    try:
        cases = select_cases(args.cases)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if args.quick and not args.cases:
        cases = [case for case in cases if case.quick]
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)
    if reps < 1:
        print("--reps must be at least 1", file=sys.stderr)
        return 2
    if args.rate_seeds is not None and args.rate_seeds < 1:
        print("--rate-seeds must be at least 1", file=sys.stderr)
        return 2
    options = Options(
        cases=cases,
        reps=reps,
        quick=args.quick,
        simulators=simulators,
        cores=args.cores,
        single_rank=not args.no_single_rank,
        pool=not args.no_pool,
        out_dir=args.out_dir,
        venv=args.venv,
        timeout_s=args.timeout_s,
        rate_seeds=args.rate_seeds,
        command=shlex.join(
            ["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]
        ),
    )
    document, json_path = run_suite(options, ROOT)
    markdown, plot = _outputs(args, json_path.stem, args.quick)
    _write_outputs(document, markdown, plot)
    return 0
