"""The ``checkpoint/`` group of a recording: stored atomically, found again after a crash.

What a checkpoint holds is the engine's business (:mod:`brainsim.engine.checkpoint`, and
docs/recording.md for the layout); this module stores a set of named arrays with the
checkpoint's attributes and reads them back.

Atomicity: a new checkpoint is written to ``checkpoint.next/``, its files synced, its
attributes written last (a group without them is incomplete); then the old ``checkpoint/`` is
renamed to ``checkpoint.old/``, ``checkpoint.next/`` to ``checkpoint/``, and
``checkpoint.old/`` removed. A crash at any point leaves one complete checkpoint, which
:func:`latest_checkpoint` finds: the new one once it is complete, else the old.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from brainsim.recording.base import RecorderPosition

if TYPE_CHECKING:
    import zarr

__all__ = ["CHECKPOINT", "CHECKPOINT_FORMAT", "StoredCheckpoint", "latest_checkpoint",
           "store_checkpoint"]  # fmt: skip

CHECKPOINT = "checkpoint"
CHECKPOINT_FORMAT = "brainsim-checkpoint/1"
_NEXT = "checkpoint.next"
_OLD = "checkpoint.old"


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A complete checkpoint of a store: its attributes, and its arrays on demand."""

    path: Path
    step: int
    time_ms: float
    circuit_sha256: str
    n_ranks: int
    recorder: RecorderPosition

    def _array(self, name: str) -> zarr.Array[Any]:
        import zarr  # a run that never checkpoints does without it (0.14 s of imports)

        group = zarr.open_group(store=str(self.path), mode="r", zarr_format=3)
        return cast(zarr.Array[Any], group[name])

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of array ``name``."""
        return tuple(int(n) for n in self._array(name).shape)

    def read(self, name: str, *index: slice) -> npt.NDArray[Any]:
        """Array ``name`` (or the part ``index`` selects) as numpy."""
        array = self._array(name)
        return np.asarray(array[index] if index else array[...])


def _complete(path: Path) -> StoredCheckpoint | None:
    if not (path / "zarr.json").is_file():
        return None
    try:
        import zarr

        attrs = zarr.open_group(store=str(path), mode="r", zarr_format=3).attrs.asdict()
        if attrs.get("format") != CHECKPOINT_FORMAT:
            return None
        return StoredCheckpoint(
            path=path,
            step=int(cast(int, attrs["step"])),
            time_ms=float(cast(float, attrs["time_ms"])),
            circuit_sha256=str(attrs["circuit_sha256"]),
            n_ranks=int(cast(int, attrs["n_ranks"])),
            recorder=RecorderPosition.from_document(cast(Mapping[str, Any], attrs["recorder"])),
        )
    except Exception:  # being written (or damaged): not a checkpoint to resume from
        return None


def latest_checkpoint(store: str | os.PathLike[str]) -> StoredCheckpoint | None:
    """The store's last complete checkpoint (``None``: there is none)."""
    root = Path(store)
    for name in (CHECKPOINT, _NEXT, _OLD):  # the order a crash between renames leaves them
        found = _complete(root / name)
        if found is not None:
            return found
    return None


def store_checkpoint(
    store: str | os.PathLike[str],
    arrays: Mapping[str, npt.NDArray[Any]],
    *,
    step: int,
    time_ms: float,
    circuit_sha256: str,
    n_ranks: int,
    recorder: RecorderPosition,
) -> None:
    """Write ``arrays`` (by path within the group) as the store's checkpoint, atomically."""
    root = Path(store)
    target = root / _NEXT
    if target.exists():
        shutil.rmtree(target)
    try:
        import zarr

        group = zarr.open_group(store=str(target), mode="w", zarr_format=3)
        for name, values in arrays.items():
            group.create_array(name, data=np.ascontiguousarray(values))
        _sync_tree(target)
        group.attrs.update(
            {
                "format": CHECKPOINT_FORMAT,
                "step": int(step),
                "time_ms": float(time_ms),
                "circuit_sha256": circuit_sha256,
                "n_ranks": int(n_ranks),
                "recorder": recorder.document(),
            }
        )
        _sync_tree(target)
    except BaseException:
        # A disk that filled up: free what the new checkpoint took, so that the previous one
        # stays the last and the store can still say why the run failed.
        shutil.rmtree(target, ignore_errors=True)
        raise
    current, old = root / CHECKPOINT, root / _OLD
    if old.exists():
        shutil.rmtree(old)
    if current.exists():
        current.rename(old)
    target.rename(current)
    _sync_directory(root)
    if old.exists():
        shutil.rmtree(old)


def _sync_tree(path: Path) -> None:
    """fsync every file and directory under ``path`` (a checkpoint is on disk before it
    replaces the previous one)."""
    for directory, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _sync_directory(Path(directory))


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
