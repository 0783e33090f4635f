"""Checks on a store's path that need no zarr (launchers call them before starting the ranks)."""

from __future__ import annotations

import os
from pathlib import Path

from brainsim.errors import RecordingExistsError

__all__ = ["check_writable"]


def check_writable(path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Raise RecordingExistsError unless a recorder may create its store at ``path``.

    Allowed: a path that does not exist, an empty directory, and (with ``overwrite``) an
    existing Zarr store, i.e. a directory with a root ``zarr.json``. Anything else that exists
    is refused even with ``overwrite``, so that a typo never deletes unrelated files. Nothing
    is changed; launchers call this before they start the ranks.
    """
    store = Path(path)
    if not store.exists() and not store.is_symlink():
        return
    if not store.is_dir() or store.is_symlink():
        raise RecordingExistsError(f"{store} exists and is not a Zarr store directory; refusing")
    if not any(store.iterdir()):
        return
    if not (store / "zarr.json").is_file():
        raise RecordingExistsError(
            f"{store} is an existing directory that is not a Zarr store; refusing to write into it"
        )
    if not overwrite:
        raise RecordingExistsError(
            f"{store} already holds a recording; pass overwrite=True (--overwrite) to replace it"
        )
