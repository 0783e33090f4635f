"""Run a circuit through PyNN on this machine: ``brainsim run CIRCUIT --target pynn``.

The circuit is compiled into a work folder (``run.py`` and ``data/``, as ``brainsim compile
--target pynn`` writes it), the script runs on pyNN.nest in a Python that has PyNN and NEST
(``--pynn-python``; brainsim's own environment need not have them), and the spikes it writes
(``results/<population>.spikes.npz``, beside PyNN's Neo files) become a brainsim recording
(:func:`brainsim.engine.external.record_external_spikes`). The same conversion serves the
EBRAINS platforms' results (:func:`read_results`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from brainsim.backends.pynn import PynnBackend
from brainsim.circuit.spec import Circuit
from brainsim.engine.external import SpikeTimes, record_external_spikes
from brainsim.errors import EngineError, RecordingError, TargetError

__all__ = ["SPIKES_SUFFIX", "read_results", "run_pynn", "write_recording"]

SPIKES_SUFFIX = ".spikes.npz"
"""``run.py`` writes each recorded population's spikes to ``<population>.spikes.npz``
(``times_ms`` float64, ``node_ids`` int64) beside the Neo pickle."""


def read_results(circuit: Circuit, results: Path) -> dict[str, SpikeTimes]:
    """The spikes of every recorded population from a results folder of ``run.py``;
    :class:`TargetError` naming what is missing or unreadable."""
    found: dict[str, SpikeTimes] = {}
    problems: list[str] = []
    for name in circuit.recordings.spikes:
        path = results / f"{name}{SPIKES_SUFFIX}"
        try:
            with np.load(path) as data:
                found[name] = (np.asarray(data["times_ms"]), np.asarray(data["node_ids"]))
        except (OSError, KeyError, ValueError) as exc:
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
    if problems:
        raise TargetError(f"the results in {results} are incomplete", problems)
    return found


def write_recording(
    circuit: Circuit,
    results: Path,
    store: Path,
    *,
    backend: str = "pynn",
    overwrite: bool = False,
    wall_s: float | None = None,
    count_use: bool = False,
) -> None:
    """Turn the results folder of a run of ``circuit``'s PyNN script into a complete brainsim
    recording at ``store`` (its provenance names ``backend``, e.g. ``pynn:spiNNaker``;
    ``count_use``: see :func:`~brainsim.engine.external.record_external_spikes`)."""
    record_external_spikes(
        circuit,
        read_results(circuit, results),
        store,
        backend=backend,
        overwrite=overwrite,
        wall_s=wall_s,
        count_use=count_use,
    )


def run_pynn(
    circuit: Circuit,
    store: Path,
    *,
    python: str,
    work: Path,
    overwrite: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    poll_s: float = 0.2,
) -> str:
    """Compile ``circuit`` into ``work``, run it on pyNN.nest with ``python`` and record its
    spikes into ``store``; the final status (``complete``, or ``cancelled`` when
    ``should_stop`` turned true while it ran, which ends the PyNN process).

    :class:`TargetError` when the circuit cannot be expressed in PyNN (every violation),
    :class:`RecordingError` when ``store`` exists and ``overwrite`` is false,
    :class:`EngineError` when ``python`` cannot be started or the script fails.
    """
    if store.exists() and not overwrite:
        raise RecordingError(f"{store} exists: pass --overwrite to replace it")
    PynnBackend("nest").compile(circuit, work)
    results = work / "results"
    argv = [python, str(work / "run.py"), "nest", "--out", str(results)]
    started = time.perf_counter()
    out, err = stdout or sys.stdout, stderr or sys.stderr
    out.flush()
    err.flush()
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out.fileno(), stderr=err.fileno()
        )
    except OSError as exc:
        raise EngineError(
            f"cannot start the PyNN run with {python}: {exc.strerror or exc} "
            "(--pynn-python names a Python with PyNN and NEST)"
        ) from None
    while process.poll() is None:
        if should_stop():
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            return "cancelled"
        time.sleep(poll_s)
    wall_s = time.perf_counter() - started
    if process.returncode != 0:
        raise EngineError(
            f"the PyNN script {work / 'run.py'} failed on nest (exit status "
            f"{process.returncode}); its output is above"
        )
    write_recording(
        circuit,
        results,
        store,
        backend="pynn:nest",
        overwrite=overwrite,
        wall_s=wall_s,
        count_use=True,
    )
    return "complete"
