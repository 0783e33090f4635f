"""What the learning examples share: writing circuits and connection files, reading learned
weights back, and running a circuit file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from brainsim.analysis import Recording
from brainsim.api import run

__all__ = [
    "additive_stdp",
    "example_parser",
    "final_weights",
    "run_circuit",
    "save_scores",
    "split_data",
    "write_circuit",
    "write_connections",
]


def example_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The command line every example takes: ``--out DIR`` and ``--ranks N``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}", description=(doc or "").split("\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for every file")
    parser.add_argument("--ranks", type=int, default=1)
    return parser


def save_scores(out: Path, result: dict[str, Any]) -> None:
    """The figures of a run, as ``DIR/scores.json``."""
    (out / "scores.json").write_text(json.dumps(result, indent=2))


def additive_stdp(
    tau_plus_ms: float,
    tau_minus_ms: float,
    learning_rate: float,
    depression_ratio: float,
    w_max_pA: float,
) -> dict[str, Any]:
    """A ``synapse`` block of NEST's ``stdp_synapse``, additive (``mu_plus = mu_minus = 0``):
    ``learning_rate`` is its ``lambda``, ``depression_ratio`` its ``alpha``."""
    return {
        "model": "stdp",
        "tau_plus_ms": tau_plus_ms,
        "tau_minus_ms": tau_minus_ms,
        "lambda": learning_rate,
        "alpha": depression_ratio,
        "mu_plus": 0.0,
        "mu_minus": 0.0,
        "w_max": w_max_pA,
    }


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


def split_data(
    features: npt.ArrayLike, labels: npt.ArrayLike, n_train: int, seed: int
) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]
]:
    """``(train features, train labels, test features, test labels)``: the samples in a random
    order drawn with ``seed``, the first ``n_train`` for training and the rest held out."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if not 0 < n_train < y.size:
        raise ValueError(f"n_train must lie in 1 .. {y.size - 1}, got {n_train}")
    order = np.random.default_rng(seed).permutation(y.size)
    train, test = order[:n_train], order[n_train:]
    return x[train], y[train], x[test], y[test]
