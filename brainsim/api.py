"""The Python entry point for running circuits: ``brainsim.run(circuit, out, ...)``.

One rank runs in this process (no subprocess, handy in notebooks and tests); several ranks are
started by a ``brainsim run --ranks N`` process, exactly as on the command line. Either way the
result is the recording, opened for analysis.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from brainsim.analysis import Recording, open_recording
from brainsim.circuit import load_circuit, parse_circuit
from brainsim.circuit.spec import Circuit
from brainsim.engine.launch import run_child
from brainsim.engine.run import communicator, execute, with_overrides
from brainsim.engine.simulator import RunConfig
from brainsim.errors import EngineError

__all__ = ["as_circuit", "run"]


def as_circuit(circuit: Circuit | Mapping[str, Any] | str | os.PathLike[str]) -> Circuit:
    """Accept a loaded circuit, a document mapping, a path, or YAML/JSON text."""
    if isinstance(circuit, Circuit):
        return circuit
    if isinstance(circuit, Mapping):
        return parse_circuit(circuit)
    text = os.fspath(circuit)
    if "\n" not in text and Path(text).suffix.lower() in {".yaml", ".yml", ".json"}:
        return load_circuit(text)
    return parse_circuit(text)


def run(
    circuit: Circuit | Mapping[str, Any] | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    ranks: int = 1,
    duration_ms: float | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    progress: Callable[[float, float], None] | None = None,
) -> Recording:
    """Simulate ``circuit`` and record it to the Zarr store ``out``; return the recording.

    ``ranks > 1`` runs ``brainsim run --ranks ranks`` in a child process, which forks the
    ranks or starts them with ``mpiexec`` (results are identical for any rank count).
    Invalid circuits raise :class:`~brainsim.errors.CircuitError` before anything starts; an
    existing ``out`` is kept unless ``overwrite``.
    """
    spec = with_overrides(as_circuit(circuit), duration_ms=duration_ms, seed=seed)
    if ranks < 1:
        raise EngineError(f"ranks must be >= 1, got {ranks}")
    if ranks == 1:
        comm, exchanger = communicator()
        execute(
            spec,
            out,
            comm=comm,
            exchanger=exchanger,
            overwrite=overwrite,
            config=RunConfig(progress=progress),
        )
        return open_recording(os.fspath(out))
    with tempfile.TemporaryDirectory(prefix="brainsim-") as tmp:
        doc_path = Path(tmp) / "circuit.json"
        doc_path.write_text(json.dumps(dict(spec.document)))
        args = [sys.executable, "-m", "brainsim", "run", str(doc_path), "--out", os.fspath(out)]
        args += ["--progress", "none", "--ranks", str(ranks), "--no-pool"]
        if spec.base_dir is not None:
            args += ["--base-dir", spec.base_dir]
        if overwrite:
            args.append("--overwrite")
        code, stderr = run_child(args, os.fspath(out))
    if code != 0:
        raise EngineError(f"the {ranks}-rank run failed (exit code {code}): {stderr.strip()}")
    return open_recording(os.fspath(out))
