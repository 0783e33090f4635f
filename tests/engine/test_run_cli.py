"""``brainsim run`` as users meet it: progress, bad input, existing stores, failures, cancel."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import brainsim.cli
from tests.engine.conftest import (
    ROOT,
    assert_cancelled_mid_run,
    brainsim_run,
    interrupt_long_run,
    root_attrs,
    start_long_run,
)

TINY = ROOT / "circuits" / "tiny.yaml"


def test_json_progress_and_complete_store(tmp_path: Path) -> None:
    out = tmp_path / "tiny.zarr"
    cmd = [sys.executable, "-m", "brainsim", "run", str(TINY), "--out", str(out)]
    result = subprocess.run(
        [*cmd, "--progress", "json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "started"
    assert events[-1] == {"event": "finished", "status": "complete"}
    progress = [e["simulated_ms"] for e in events if e["event"] == "progress"]
    assert progress == sorted(progress)
    assert progress[-1] == events[0]["duration_ms"]
    assert root_attrs(out)["status"] == "complete"


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_an_invalid_circuit_is_reported_once_and_nothing_is_written(
    tmp_path: Path, ranks: int
) -> None:
    """Each rank of a multi-rank run checks the circuit; rank 0 alone reports it."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("dt_ms: 0.1", "dt_ms: -0.1"))
    out = tmp_path / "never.zarr"
    result = brainsim_run(bad, out, "--no-pool", ranks=ranks)
    assert result.returncode == 2
    assert result.stderr.count("simulation.dt_ms") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_circuit_too_large_for_this_machine_is_refused(tmp_path: Path, ranks: int) -> None:
    """The memory estimate is checked for the whole circuit on one machine, by the ranks when
    brainsim starts them, and an existing recording is left as it was."""
    huge = tmp_path / "huge.yaml"
    huge.write_text(TINY.read_text().replace("size: 80", "size: 2000000000"))
    out = tmp_path / "kept.zarr"
    assert brainsim_run(TINY, out).returncode == 0
    before = root_attrs(out)
    result = brainsim_run(huge, out, "--overwrite", "--no-pool", ranks=ranks)
    assert result.returncode == 2
    assert result.stderr.count("more than the memory limit") == 1, result.stderr
    assert root_attrs(out) == before


def test_missing_circuit_file_is_a_clear_error(tmp_path: Path) -> None:
    result = brainsim_run(tmp_path / "nope.yaml", tmp_path / "x.zarr")
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("ranks", [1, 2])
def test_existing_store_is_not_overwritten_unless_asked(tmp_path: Path, ranks: int) -> None:
    out = tmp_path / "kept.zarr"
    assert brainsim_run(TINY, out).returncode == 0
    before = root_attrs(out)["provenance"]
    again = brainsim_run(TINY, out, ranks=ranks)
    assert again.returncode == 2
    assert "already holds a recording" in again.stderr
    assert "--overwrite" in again.stderr
    assert root_attrs(out)["provenance"] == before
    assert brainsim_run(TINY, out, "--overwrite", ranks=ranks).returncode == 0


def test_bad_overrides_are_rejected(tmp_path: Path) -> None:
    result = brainsim_run(TINY, tmp_path / "x.zarr", "--duration-ms", "0.05")
    assert result.returncode == 2
    assert "--duration-ms" in result.stderr


def _parent_pid(pid: int) -> int:
    """The parent of ``pid``, from ``/proc`` (OSError once it is gone)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _descendants(parent: int) -> dict[int, str]:
    """The processes below ``parent``, with their command lines."""
    children: dict[int, list[int]] = {}
    cmdlines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = _parent_pid(int(entry.name))
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry.name))
        cmdlines[int(entry.name)] = cmd
    found, todo = {}, [parent]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            todo.append(child)
            found[child] = cmdlines.get(child, "")
    return found


def _rank_pids(parent: int) -> list[int]:
    """Python processes below ``parent`` that run ``brainsim run`` (the ranks)."""
    return [pid for pid, cmd in _descendants(parent).items() if "brainsim run" in cmd]


@pytest.mark.mpi
def test_a_killed_rank_stops_the_whole_run(tmp_path: Path) -> None:
    out = tmp_path / "killed.zarr"
    launcher: list[int] = []

    def kill_a_rank(proc: subprocess.Popen[str]) -> None:
        launcher.append(proc.pid)
        ranks = [p for p in _rank_pids(proc.pid) if p != proc.pid]
        assert len(ranks) >= 2, ranks
        os.kill(ranks[-1], signal.SIGKILL)

    code, err = interrupt_long_run(out, kill_a_rank)
    assert code == 1  # the run failed
    attrs = root_attrs(out)
    assert attrs["status"] == "failed"
    said = re.fullmatch(r"rank [01] was ended by SIGKILL before MPI_Finalize; the other ranks "
                        r"were stopped", str(attrs["reason"]))  # fmt: skip
    assert said is not None, attrs["reason"]
    assert f"error: {attrs['reason']}" in err
    assert _rank_pids(launcher[0]) == []


@pytest.mark.mpi
def test_sigterm_cancels_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "cancel.zarr"

    def terminate(proc: subprocess.Popen[str]) -> None:
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)

    assert interrupt_long_run(out, terminate)[0] == 130
    assert_cancelled_mid_run(out)


_FREED_AFTER = """
import sys
import numpy as np
from brainsim.engine.run import return_freed_memory

def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

if sys.argv[1] == "fixed":
    return_freed_memory()
before = resident()
big = np.ones(2 << 20)  # 16 MiB, mmapped; freeing it raises glibc's threshold by default
del big
block = np.ones(1 << 20)  # 8 MiB: from the heap once the threshold has risen
pinned = np.ones(1000)  # keeps the heap top, so the freed block cannot be trimmed
del block
print((resident() - before) / 2**20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_construction_buffers_go_back_to_the_system() -> None:
    def grown(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", _FREED_AFTER, mode], check=True,
                             capture_output=True, text=True)  # fmt: skip
        return float(out.stdout)

    assert grown("default") > 4.0  # the behaviour being fixed
    assert grown("fixed") < 1.0


def test_the_launcher_and_the_run_load_only_what_they_need(tmp_path: Path) -> None:
    """The launcher of a multi-rank run imports neither numba nor zarr (the ranks do); a run
    imports no scipy (numba's check of its version and its BLAS probe, an import of
    scipy.linalg, are skipped) and leaves scipy importable after; it
    loads the engine with the garbage collector paused, then freezes what is alive (so neither
    later collections nor the interpreter's exit walk the engine's modules) and turns it back
    on."""
    pytest.importorskip("scipy")
    script = """
import sys
from brainsim.engine.launch import launched_ranks, mpiexec_command, run_child
from brainsim.recording.paths import check_writable
import brainsim.cli
import gc
light = not ({"numba", "zarr"} & set(sys.modules))
unfrozen = gc.get_freeze_count() == 0
brainsim.cli.main(["run", sys.argv[1], "--out", sys.argv[2], "--progress", "none"])
assert "grpc" not in sys.modules, "a built-in command loaded the plug-in commands"
probed = "scipy" in sys.modules
import scipy.linalg.cython_blas
frozen = gc.get_freeze_count() > len(gc.get_objects()) and sys.modules["numba"] is not None
print(light, probed, unfrozen, frozen, gc.isenabled())
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(TINY), str(tmp_path / "t.zarr")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "True", "True", "True"]


def test_the_launcher_of_mpiexec_ranks_leaves_the_circuit_to_them(tmp_path: Path) -> None:
    """``brainsim run --ranks 2 --launcher mpiexec`` starts mpiexec without importing numpy or
    the circuit's checks (about 0.2 s before the ranks could start), nor dataclasses (the ranks
    take their compiled methods from the cache, brainsim.dataclass_code); the ranks load and
    check it. Its ranks load UCX without its memory hooks, unless the environment says."""
    script = """
import os, sys
import brainsim.cli
code = brainsim.cli.main(["run", sys.argv[1], "--ranks", "2", "--no-pool", "--out", sys.argv[2],
                          "--progress", "none", "--launcher", "mpiexec"])
print(code, sorted({"numpy", "jsonschema", "yaml", "numba", "dataclasses"} & set(sys.modules)))
"""
    out = tmp_path / "t.zarr"
    result = subprocess.run(
        [sys.executable, "-c", script, str(TINY), str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "[]"]
    assert root_attrs(out)["status"] == "complete"


_FORKING = """
import os, sys
import brainsim.cli
before = "UCX_MEM_EVENTS" in os.environ
code = brainsim.cli.main(["run", sys.argv[1], "--ranks", "2", "--no-pool", "--out", sys.argv[2],
                          "--progress", "none"])
print(code, before, os.environ.get("UCX_MEM_EVENTS"), "numba" in sys.modules,
      "mpi4py.MPI" in sys.modules and not sys.modules["mpi4py.MPI"].Is_initialized())
"""


@pytest.mark.mpi
@pytest.mark.parametrize("user_setting", [None, "yes"])
def test_forked_ranks_start_from_a_process_that_loaded_the_engine(
    tmp_path: Path, user_setting: str | None
) -> None:
    """``brainsim run --ranks 2`` (``--launcher auto``, here: fork) loads the circuit, the
    engine and the MPI library (without starting MPI) in its own process, then forks the ranks;
    it loads the MPI library with UCX's memory hooks off unless the environment sets them."""
    env = {k: v for k, v in os.environ.items() if k != "UCX_MEM_EVENTS"}
    if user_setting is not None:
        env["UCX_MEM_EVENTS"] = user_setting
    out = tmp_path / "t.zarr"
    result = subprocess.run(
        [sys.executable, "-c", _FORKING, str(TINY), str(out)],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = "yes" if user_setting else "no"
    assert result.stdout.split() == ["0", str(user_setting is not None), expected, "True", "True"]
    assert root_attrs(out)["status"] == "complete"


@pytest.mark.mpi
def test_forked_ranks_stop_when_the_command_is_killed(tmp_path: Path) -> None:
    """SIGKILL to ``brainsim run --ranks 2`` itself: its ranks get SIGTERM from the kernel
    (nothing is left running for ever), stop together and close the store ``cancelled``."""
    out = tmp_path / "orphaned.zarr"
    ranks: list[int] = []

    def kill_the_command(proc: subprocess.Popen[str]) -> None:
        ranks.extend(p for p in _rank_pids(proc.pid) if p != proc.pid)
        assert len(ranks) == 2, ranks
        proc.kill()

    code, _ = interrupt_long_run(out, kill_the_command)
    assert code == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in ranks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in ranks)
    assert_cancelled_mid_run(out)


@pytest.mark.mpi
def test_forked_ranks_are_children_of_the_command_and_no_mpiexec_runs(tmp_path: Path) -> None:
    with start_long_run(tmp_path / "tree.zarr") as proc:
        try:
            ranks = [p for p in _rank_pids(proc.pid) if p != proc.pid]
            parents = {_parent_pid(p) for p in ranks}
            names = {Path(f"/proc/{p}/comm").read_text().strip() for p in _descendants(proc.pid)}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
    assert len(ranks) == 2
    assert parents == {proc.pid}
    assert not names & {"mpiexec", "hydra_pmi_proxy"}
    assert proc.returncode == 130


def test_built_in_commands_skip_the_plug_ins_and_help_lists_them() -> None:
    """Plug-in commands (the job service's) import grpc, about 0.1 s that ``run`` and the
    other built-in commands do without; the top-level help still lists them."""
    script = """
import sys
import brainsim.cli
parser = brainsim.cli.build_parser(plugins=False)
assert "grpc" not in sys.modules
brainsim.cli.main(["pool", "status"])
assert "grpc" not in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no pool is running"
    shown = subprocess.run([sys.executable, "-m", "brainsim", "--help"], capture_output=True,
                           text=True, timeout=120, check=True).stdout  # fmt: skip
    for command in ("run", "pool", "serve", "submit"):
        assert command in shown


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "c.yaml", "--out", "o.zarr", "--ranks", "2", "--param", "g=5", "--no-pool"],
        ["resume", "o.zarr", "--until-ms", "20", "--progress", "none"],
        ["compile-kernels", "--ranks", "2"],
        ["validate", "a.yaml", "b.yaml", "--json"],
        ["analyze", "o.zarr", "--decode", "digits", "--method", "assign", "--train", "3"],
        ["export", "o.zarr", "--to", "nwb", "-o", "o.nwb"],
        ["compile", "c.yaml", "--target", "nir", "-o", "out"],
        ["import", "m.nir", "-o", "c.yaml", "--dt-ms", "1"],
        ["targets", "--json"],
        ["pool", "start", "--ranks", "2"],
    ],
)
def test_a_built_in_command_builds_its_own_parser_alone(argv: list[str]) -> None:
    """``main`` builds only the parser of the command it runs (all of them cost every process,
    a run's ranks included, about 4 ms); it parses what the whole parser parses."""
    alone = brainsim.cli.build_parser(plugins=False, only=argv[0])
    (commands,) = [a for a in alone._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(commands.choices) == [argv[0]]
    whole = brainsim.cli.build_parser(plugins=False)
    assert vars(alone.parse_args(argv)) == vars(whole.parse_args(argv))
