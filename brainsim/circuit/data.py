"""Data of data-driven stimuli: read them from the document or a file and check their form.

``data`` is a file next to the circuit (``.npy``, ``.csv``: numbers separated by commas, ``#``
comments), ``{file: d.npz, key: X}`` for one array of an ``.npz``, or an inline list of lists.
Files resolve like connection files (:func:`~brainsim.circuit.files.resolve_relative_file`:
relative to the circuit's directory, never out of it). Every array is read as float64 and
hashed (:func:`array_sha256`); the normalized document keeps the file's name and that hash
(``{file, key, sha256}``), so a recording names exactly the data it ran with, and a document
carrying a ``sha256`` is refused when its file has changed since.

Encoders read ``[n_samples, n_features]``; spike trains read one list of times (ms) per target
neuron, or an ``.npz`` with 1-D ``times`` and ``node_ids`` (indices of the target neurons),
and keep rows ``(target index, time_ms)`` sorted by target, then time.
"""

from __future__ import annotations

import hashlib
import zipfile
from typing import Any

import numpy as np
import numpy.typing as npt

from brainsim.circuit.files import ConnectionFileError, resolve_relative_file
from brainsim.circuit.problems import Path, ProblemLog
from brainsim.circuit.spec import StimulusData

__all__ = [
    "DATA_SUFFIXES",
    "SPIKE_TRAIN_ARRAYS",
    "array_sha256",
    "data_document",
    "first_index",
    "load_encoder_data",
    "load_spike_trains",
]

DATA_SUFFIXES = (".npy", ".csv", ".npz")
"""File kinds ``data`` may name (an ``.npz`` with ``key``)."""

SPIKE_TRAIN_ARRAYS = ("node_ids", "times")
"""The arrays of a spike-train ``.npz``."""

Float64Array = npt.NDArray[np.float64]


class _DataError(Exception):
    """Data cannot be read or have the wrong form; the message says why."""


def array_sha256(values: Float64Array) -> str:
    """SHA-256 of a float64 array's shape and little-endian C-order bytes."""
    digest = hashlib.sha256(repr(tuple(values.shape)).encode())
    digest.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
    return digest.hexdigest()


def first_index(mask: npt.NDArray[np.bool_]) -> tuple[int, ...]:
    """The index of the first true element of ``mask`` (row-major)."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def data_document(data: StimulusData) -> Any:
    """The normalized document form of ``data``: the inline list, or ``{file, key, sha256}``."""
    if data.file is None:
        return data.inline
    entry: dict[str, Any] = {"file": data.file}
    if data.key is not None:
        entry["key"] = data.key
    return entry | {"sha256": data.sha256}


def load_encoder_data(
    spec: Any, base_dir: str | None, log: ProblemLog, path: Path
) -> StimulusData | None:
    """An encoder's ``[n_samples, n_features]`` array, or ``None`` with the problems logged."""
    try:
        if isinstance(spec, list):
            values = _inline_matrix(spec)
            return _record(None, None, values, spec, log, path)
        file, key = _file_entry(spec)
        values = _matrix(_read_array(file, key, base_dir), file)
    except _DataError as error:
        log.add(path, str(error))
        return None
    return _record(file, key, values, None, log, path, expected=_given_sha256(spec))


def load_spike_trains(
    spec: Any, base_dir: str | None, log: ProblemLog, path: Path
) -> StimulusData | None:
    """Spike trains as rows ``(target index, time_ms)``, or ``None`` with the problems logged."""
    try:
        if isinstance(spec, list):
            rows = _inline_trains(spec)
            return _record(None, None, rows, spec, log, path)
        file, key = _file_entry(spec)
        if key is not None or not file.endswith(".npz"):
            raise _DataError(
                f"spike trains come from an .npz with arrays {' and '.join(SPIKE_TRAIN_ARRAYS)} "
                f"(or an inline list of lists), got {file!r}"
                + (f" with key {key!r}" if key else "")
            )
        rows = _npz_trains(resolve_relative_file(file, base_dir, (".npz",), "data"), file)
    except (_DataError, ConnectionFileError) as error:
        log.add(path, str(error))
        return None
    return _record(file, None, rows, None, log, path, expected=_given_sha256(spec))


def _record(
    file: str | None,
    key: str | None,
    values: Float64Array,
    inline: Any,
    log: ProblemLog,
    path: Path,
    *,
    expected: str | None = None,
) -> StimulusData | None:
    values.setflags(write=False)
    sha256 = array_sha256(values)
    if expected is not None and expected != sha256:
        log.add(
            (*path, "sha256"),
            f"the data of {file!r} have sha256 {sha256}, not the one given: the file changed "
            "since this document was written",
        )
        return None
    return StimulusData(file=file, key=key, sha256=sha256, values=values, inline=inline)


def _given_sha256(spec: Any) -> str | None:
    return spec.get("sha256") if isinstance(spec, dict) else None


def _file_entry(spec: Any) -> tuple[str, str | None]:
    if isinstance(spec, str):
        return spec, None
    return str(spec["file"]), spec.get("key")


def _inline_matrix(rows: list[Any]) -> Float64Array:
    lengths = {len(row) for row in rows}
    if len(lengths) != 1:
        raise _DataError(
            f"inline data must be a list of samples of equal length; found lengths "
            f"{', '.join(str(n) for n in sorted(lengths))}"
        )
    return np.array(rows, dtype=np.float64)


def _read_array(file: str, key: str | None, base_dir: str | None) -> npt.NDArray[Any]:
    try:
        resolved = resolve_relative_file(file, base_dir, DATA_SUFFIXES, "data")
    except ConnectionFileError as error:
        raise _DataError(str(error)) from None
    if file.endswith(".npz") and key is None:
        raise _DataError(f"{file!r} is an .npz archive: give {{file: {file}, key: NAME}}")
    if not file.endswith(".npz") and key is not None:
        raise _DataError(f"key names an array of an .npz archive; {file!r} is not one")
    try:
        if file.endswith(".csv"):
            return np.loadtxt(resolved, delimiter=",", ndmin=2, dtype=np.float64)
        if file.endswith(".npy"):
            return np.asarray(np.load(resolved, allow_pickle=False))
        with np.load(resolved, allow_pickle=False) as archive:
            if key not in archive.files:
                raise _DataError(
                    f"{file!r} has no array {key!r}; it has {', '.join(archive.files) or 'none'}"
                )
            return np.asarray(archive[key])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _DataError(f"cannot read {file!r}: {error}") from None


def _matrix(array: npt.NDArray[Any], file: str) -> Float64Array:
    if array.ndim != 2:
        raise _DataError(
            f"{file!r} holds an array of shape {array.shape}; expected [n_samples, n_features]"
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise _DataError(f"{file!r} must hold numbers, found {array.dtype}")
    if array.size == 0:
        raise _DataError(f"{file!r} holds no samples (shape {array.shape})")
    values = np.array(array, dtype=np.float64, order="C")
    if not np.all(np.isfinite(values)):
        sample, feature = first_index(~np.isfinite(values))
        raise _DataError(
            f"{file!r} holds values that are not finite ({values[sample, feature]} at sample "
            f"{sample}, feature {feature})"
        )
    return values


def _inline_trains(lists: list[Any]) -> Float64Array:
    index = np.repeat(np.arange(len(lists), dtype=np.float64), [len(times) for times in lists])
    times = np.array([float(t) for times in lists for t in times], dtype=np.float64)
    return _sorted_rows(index, times)


def _npz_trains(resolved: str, file: str) -> Float64Array:
    try:
        with np.load(resolved, allow_pickle=False) as archive:
            arrays = {name: np.asarray(archive[name]) for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _DataError(f"cannot read {file!r} as .npz: {error}") from None
    if sorted(arrays) != sorted(SPIKE_TRAIN_ARRAYS):
        raise _DataError(
            f"{file!r} must hold exactly the arrays {', '.join(SPIKE_TRAIN_ARRAYS)}; "
            f"found {', '.join(sorted(arrays)) or 'none'}"
        )
    ids, times = arrays["node_ids"], arrays["times"]
    if ids.ndim != 1 or times.shape != ids.shape:
        raise _DataError(f"{file!r}: node_ids and times must be 1-D arrays of equal length")
    if not np.issubdtype(ids.dtype, np.integer):
        raise _DataError(f"{file!r}: node_ids must hold integers, found {ids.dtype}")
    if not np.issubdtype(times.dtype, np.number):
        raise _DataError(f"{file!r}: times must hold numbers, found {times.dtype}")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= 2**53):
        raise _DataError(f"{file!r}: node_ids must be >= 0, found {int(ids.min())}")
    times = times.astype(np.float64)
    if not np.all(np.isfinite(times)):
        raise _DataError(f"{file!r}: times holds values that are not finite")
    return _sorted_rows(ids.astype(np.float64), times)


def _sorted_rows(index: Float64Array, times: Float64Array) -> Float64Array:
    order = np.lexsort((times, index))
    return np.ascontiguousarray(np.stack([index[order], times[order]], axis=1))
