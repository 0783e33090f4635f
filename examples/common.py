"""What the learning examples share: writing circuits and connection files, reading learned
weights back, and running a circuit file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from brainsim.analysis import Recording
from brainsim.api import run

__all__ = ["final_weights", "run_circuit", "write_circuit", "write_connections"]


def write_circuit(document: dict[str, Any], path: Path) -> Path:
    """Write ``document`` as a YAML circuit file (the data files it names sit beside it)."""
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def write_connections(
    path: Path,
    source: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike,
) -> Path:
    """A ``from_file`` connection list (population-local ids) with its weights."""
    np.savez(
        path,
        source=np.asarray(source, dtype=np.int64),
        target=np.asarray(target, dtype=np.int64),
        weight=np.asarray(weight, dtype=np.float64),
    )
    return path


def final_weights(
    recording: Recording, projection: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """``(source, target, weight)`` of a plastic projection at the end of the run."""
    weights = recording.weights(projection)
    return (
        np.asarray(weights["source"].values, dtype=np.int64),
        np.asarray(weights["target"].values, dtype=np.int64),
        np.asarray(weights.isel(time=-1).values, dtype=np.float64),
    )


def run_circuit(circuit: Path, out: Path, ranks: int) -> Recording:
    """Run a circuit file into the store ``out`` (replaced if it exists)."""
    return run(circuit, out, ranks=ranks, overwrite=True)
