"""Comparing recordings in tests: every array a store holds, and the check that two stores
recorded the same (a resumed run against an uninterrupted one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from brainsim.recording.checkpoint import CHECKPOINT

__all__ = ["assert_same_recording", "recorded_arrays"]


def recorded_arrays(store: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Every recorded array of ``store`` by its path (the checkpoint aside)."""
    found: dict[str, np.ndarray[Any, Any]] = {}

    def walk(group: zarr.Group, prefix: str) -> None:
        for name, member in group.members():
            if name.startswith(CHECKPOINT):
                continue
            if isinstance(member, zarr.Group):
                walk(member, f"{prefix}{name}/")
            else:
                found[f"{prefix}{name}"] = np.asarray(member[...])

    walk(zarr.open_group(str(store), mode="r"), "")
    return found


def assert_same_recording(expected: dict[str, np.ndarray[Any, Any]], store: Path) -> None:
    """``store`` holds exactly the arrays ``expected`` (paths, shapes and values, NaN = NaN)."""
    got = recorded_arrays(store)
    assert sorted(got) == sorted(expected)
    for name, values in expected.items():
        assert got[name].shape == values.shape, name
        assert np.array_equal(got[name], values, equal_nan=True), name
