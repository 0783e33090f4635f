"""Run a command and measure it: whole-process wall time and the peak memory of its process tree.

A simulator run is often several processes (``mpiexec`` with its proxy and one Python per
rank; Python driving a compiled Brian2 binary), so peak memory is measured over the process
tree: every ``sample_interval_s`` each process of the tree has its own peak resident set
(``VmHWM``) read and the live ones are summed; the largest such sum is the run's peak RSS. The
tree itself is listed from ``/proc`` every ``TREE_INTERVAL_S`` (listing ``/proc`` costs far
more than reading a few status files). Summing can overstate a tree whose members peak at
different times, never understate a live one.

Per-process high-water marks catch peaks between samples, but what a process grows after the
last sample before it exits is lost. A short run reaches its peak in its last 0.1 s (a
2-rank run of the 100-neuron baseline circuit grows until about 60 ms before it exits), so
sampled every 0.1 s it measured anywhere from 395 to 413 MiB, up to 17 bytes per synapse on a
million-synapse network; every 10 ms (``MEMORY_SAMPLE_INTERVAL_S``) it measures 411-414 MiB.
Sampling that often disturbs the run, though: 2-rank Brunel simulated 6 % slower (paired
runs, 1.41 against 1.50 s) while 1 rank, with a core to spare, did not slow down. Timed runs
are therefore sampled every ``SAMPLE_INTERVAL_S`` and the suite measures memory in runs of
its own (:mod:`bench.suite`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MEMORY_SAMPLE_INTERVAL_S",
    "SAMPLE_INTERVAL_S",
    "TREE_INTERVAL_S",
    "Measured",
    "available_memory_bytes",
    "process_tree",
    "run_measured",
]

SAMPLE_INTERVAL_S = 0.1
"""How often the memory of a timed run's processes is read."""
MEMORY_SAMPLE_INTERVAL_S = 0.01
"""How often the memory of a run made for its peak memory is read."""
TREE_INTERVAL_S = 0.1
"""How often the tree is listed again (for processes started since)."""


@dataclass(frozen=True, slots=True)
class Measured:
    """Outcome of one measured command."""

    returncode: int
    """Exit status (negative: killed by that signal; -9 also after a timeout)."""
    wall_s: float
    """Wall time from start to exit (s)."""
    peak_rss_bytes: int
    """Largest sum of the tree's per-process peak RSS (bytes)."""
    stdout: str
    stderr: str
    timed_out: bool
    over_memory_cap: bool = False
    """Killed because the tree's resident memory exceeded the cap."""


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces; fields follow the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def _memory_kib(pid: int) -> tuple[int, int]:
    """(peak RSS, current RSS) of a process in KiB; zeros when it is gone."""
    try:
        status = Path("/proc", str(pid), "status").read_text(encoding="utf-8")
    except OSError:
        return 0, 0
    found = {"VmHWM:": 0, "VmRSS:": 0}
    for line in status.splitlines():
        key = line[:6]
        if key in found:
            found[key] = int(line.split()[1])
    return found["VmHWM:"], found["VmRSS:"]


def _sum_memory_bytes(pids: Sequence[int]) -> tuple[int, int]:
    """(sum of peak RSS, sum of current RSS) over those of ``pids`` still alive, in bytes."""
    peak = current = 0
    for pid in pids:
        hwm, rss = _memory_kib(pid)
        peak += hwm
        current += rss
    return 1024 * peak, 1024 * current


def available_memory_bytes() -> int:
    """``MemAvailable`` of /proc/meminfo: what new processes can use without swapping."""
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemAvailable:"):
            return 1024 * int(line.split()[1])
    raise RuntimeError("/proc/meminfo has no MemAvailable")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_measured(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 3600.0,
    memory_cap_bytes: int | None = None,
    sample_interval_s: float = SAMPLE_INTERVAL_S,
) -> Measured:
    """Run ``command`` to completion, reading its tree's memory every ``sample_interval_s``.

    Its whole process group is killed after ``timeout_s``, or as soon as the tree's resident
    memory exceeds ``memory_cap_bytes`` (so a run that outgrows the machine fails alone
    instead of waking the kernel's OOM killer, which may pick another process).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        peak = 0
        over_cap = False
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, over_cap
            tree: list[int] = []
            listed = -float("inf")
            while not done.is_set():
                now = time.monotonic()
                if now - listed >= TREE_INTERVAL_S:
                    tree, listed = process_tree(process.pid), now
                tree_peak, tree_current = _sum_memory_bytes(tree)
                peak = max(peak, tree_peak)
                if memory_cap_bytes is not None and tree_current > memory_cap_bytes:
                    over_cap = True
                    _kill_group(process.pid)
                    return
                done.wait(sample_interval_s)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process.pid)
            process.wait()
        wall_s = time.perf_counter() - start
        done.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        return Measured(
            returncode=process.returncode,
            wall_s=wall_s,
            peak_rss_bytes=peak,
            stdout=out.read().decode("utf-8", errors="replace"),
            stderr=err.read().decode("utf-8", errors="replace"),
            timed_out=timed_out,
            over_memory_cap=over_cap,
        )
