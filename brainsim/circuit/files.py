"""Connection files of ``from_file`` projections: locate them safely and check their contents.

(:func:`resolve_relative_file` also locates the data files of stimuli.)

A connection file is a ``.npz`` archive with 1-D arrays of equal length: ``source`` and
``target`` (integers, population-local node ids), and optionally ``weight`` and ``delay_ms``
(numbers) that replace the projection's ``weight`` / ``delay_ms``. Its path is relative to the
circuit file's directory and may not leave it (no absolute paths, no ``..`` or links out), so a
circuit cannot make brainsim read arbitrary files.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from brainsim.circuit.problems import Path, ProblemLog

__all__ = [
    "CONNECTION_ARRAYS",
    "ConnectionFileError",
    "ConnectionFileInfo",
    "check_connection_file",
    "connection_file_info",
    "resolve_connection_file",
    "resolve_relative_file",
]

CONNECTION_ARRAYS = ("source", "target", "weight", "delay_ms")
"""Arrays a connection file may hold; the first two are required."""


class ConnectionFileError(Exception):
    """A connection file cannot be located or read; the message says why."""


@dataclass(frozen=True, slots=True)
class ConnectionFileInfo:
    """What the archive's headers say, without reading the data."""

    n_connections: int
    has_weight: bool
    has_delay: bool


def resolve_connection_file(relative: str, base_dir: str | None) -> str:
    """The real path of ``relative`` inside ``base_dir``; :class:`ConnectionFileError` if it is
    absolute, leaves ``base_dir``, is not a ``.npz`` file, or there is no base directory."""
    return resolve_relative_file(relative, base_dir, (".npz",), "from_file")


def resolve_relative_file(
    relative: str, base_dir: str | None, suffixes: tuple[str, ...], what: str
) -> str:
    """The real path of ``relative`` inside ``base_dir``; :class:`ConnectionFileError` if it is
    absolute, leaves ``base_dir``, has none of ``suffixes``, or there is no base directory
    (``what`` names the feature that reads it in that message)."""
    if base_dir is None:
        raise ConnectionFileError(
            f"{what} needs a circuit file on disk: the path is relative to the circuit's "
            "directory, and this circuit was given as text"
        )
    if os.path.isabs(relative):
        raise ConnectionFileError(
            f"must be relative to the circuit's directory, got the absolute path {relative!r}"
        )
    if not relative.endswith(suffixes):
        raise ConnectionFileError(f"must name a {' or '.join(suffixes)} file, got {relative!r}")
    base = os.path.realpath(base_dir)
    resolved = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, resolved]) != base:
        raise ConnectionFileError(f"{relative!r} leads outside the circuit's directory")
    if not os.path.isfile(resolved):
        raise ConnectionFileError(f"cannot read {relative!r}: no such file")
    return resolved


def connection_file_info(resolved: str) -> ConnectionFileInfo:
    """Read the number of connections and which optional arrays exist from the headers."""
    try:
        with zipfile.ZipFile(resolved) as archive:
            names = set(archive.namelist())
            with archive.open("source.npy") as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, _ = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, _ = np.lib.format.read_array_header_2_0(member)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ConnectionFileError(f"cannot read {os.path.basename(resolved)!r}: {error}") from None
    return ConnectionFileInfo(
        n_connections=int(np.prod(shape)),
        has_weight="weight.npy" in names,
        has_delay="delay_ms.npy" in names,
    )


def check_connection_file(
    relative: str,
    base_dir: str | None,
    sizes: tuple[int, int] | None,
    dt_ms: float | None,
    log: ProblemLog,
    path: Path,
) -> None:
    """Report at ``path`` everything wrong with the file: location, format, lengths, node ids
    outside the (source, target) ``sizes``, non-finite weights, delays below ``dt_ms``."""
    try:
        resolved = resolve_connection_file(relative, base_dir)
        arrays = _load(resolved)
    except ConnectionFileError as error:
        log.add(path, str(error))
        return
    for message in _content_problems(arrays, sizes, dt_ms):
        log.add(path, f"{relative}: {message}")


def _load(resolved: str) -> dict[str, npt.NDArray[np.generic]]:
    try:
        with np.load(resolved, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ConnectionFileError(
            f"cannot read {os.path.basename(resolved)!r} as .npz: {error}"
        ) from None


def _content_problems(
    arrays: dict[str, npt.NDArray[np.generic]],
    sizes: tuple[int, int] | None,
    dt_ms: float | None,
) -> list[str]:
    unknown = sorted(set(arrays) - set(CONNECTION_ARRAYS))
    if unknown:
        return [f"unknown arrays {', '.join(unknown)}; valid: {', '.join(CONNECTION_ARRAYS)}"]
    missing = [name for name in CONNECTION_ARRAYS[:2] if name not in arrays]
    if missing:
        return [f"missing array(s) {', '.join(missing)}"]
    problems: list[str] = []
    length = len(arrays["source"]) if arrays["source"].ndim == 1 else -1
    for name, array in arrays.items():
        numeric = np.integer if name in ("source", "target") else np.number
        if array.ndim != 1 or len(array) != length:
            problems.append(f"{name} must be a 1-D array as long as source")
        elif not np.issubdtype(array.dtype, numeric):
            kind = "integers" if numeric is np.integer else "numbers"
            problems.append(f"{name} must hold {kind}, found {array.dtype}")
    if problems or length == 0:
        return problems
    for name, size in zip(("source", "target"), sizes or (), strict=False):
        ids = arrays[name]
        if int(ids.min()) < 0 or int(ids.max()) >= size:
            problems.append(f"{name} ids must be in [0, {size}), found {ids.min()}..{ids.max()}")
    problems.extend(
        f"{name} holds values that are not finite"
        for name in ("weight", "delay_ms")
        if name in arrays and not np.all(np.isfinite(arrays[name]))
    )
    if "delay_ms" in arrays and dt_ms is not None and not problems:
        smallest = float(np.min(arrays["delay_ms"]))
        if smallest < dt_ms * (1 - 1e-9):
            problems.append(f"delay_ms must be >= dt_ms ({dt_ms}), found {smallest}")
    return problems
