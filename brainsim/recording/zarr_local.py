"""Zarr v3 groups and arrays in a local directory, written without zarr-python.

The recorder runs in every rank of every run, and importing zarr-python (with its asyncio
machinery, numcodecs registry, dtype registry and fsspec) takes a fresh process 0.14-0.25 s:
a fifth of a small warm run. The recorder needs little of it: groups with attributes,
arrays on a regular chunk grid with the default chunk keys (``c/0/1``), the ``bytes`` codec
and one optional compressor (blosc, zstd or gzip, through numcodecs as zarr-python uses
them), whole-chunk writes, resizes, and reading a few slices back when a run resumes.

What this module writes is what zarr-python 3 writes for the same calls, byte for byte: the
same ``zarr.json`` documents (key order and two-space indentation included), the same chunk
files (zarr-python's codecs are numcodecs' with the same configuration), chunks equal to the
fill value left out (zarr-python's ``write_empty_chunks=False``), chunks outside a shrunk
shape deleted, every file replaced atomically (a temporary file renamed over it), and the
consolidated metadata of the root in zarr-python's form. tests/recording/test_zarr_local.py
compares the two implementations file by file; readers keep using zarr-python.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import unicodedata
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import EllipsisType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from brainsim.errors import RecordingError

__all__ = [
    "Array",
    "Attributes",
    "Group",
    "consolidate_metadata",
    "create_group",
    "open_group",
    "write_all",
]

_META: Final = "zarr.json"
_CONSOLIDATED_KEY: Final = "consolidated_metadata"

Selection = tuple[slice, ...]
Codec = Mapping[str, Any]
"""A codec as its Zarr v3 JSON: ``{"name": ..., "configuration": {...}}``."""


# ------------------------------------------------------------------ files


def _dumps(doc: Mapping[str, Any]) -> bytes:
    """A metadata document as zarr-python writes it (``json_indent`` 2, NaN allowed)."""
    return json.dumps(doc, indent=2, allow_nan=True).encode()


def _put(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # zarr-python's name for it (``zarr.<hex>.partial`` beside ``zarr.json``), which readers
    # of a live store know to skip (brainsim.recording.reader._TEMPORARY)
    partial = path.with_suffix(f".{uuid.uuid4().hex}.partial")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _read_document(folder: Path) -> dict[str, Any]:
    try:
        with (folder / _META).open("rb") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise RecordingError(f"{folder} is not a Zarr v3 node (no {_META})") from None
    except ValueError as exc:
        raise RecordingError(f"{folder / _META} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3:
        raise RecordingError(f"{folder / _META} is not Zarr v3 metadata")
    return doc


# ------------------------------------------------------------------ codecs


class _Pipeline:
    """The ``bytes`` codec (little endian) and at most one bytes-to-bytes compressor."""

    __slots__ = ("_compressor",)

    def __init__(self, codecs: Sequence[Codec]) -> None:
        if not codecs or codecs[0].get("name") != "bytes":
            raise RecordingError(f"unsupported codecs {list(codecs)}: 'bytes' must come first")
        if codecs[0].get("configuration", {}).get("endian", "little") != "little":
            raise RecordingError("only little-endian arrays are supported")
        if len(codecs) > 2:
            raise RecordingError(f"unsupported codecs {list(codecs)}: one compressor at most")
        self._compressor = _numcodecs(codecs[1]) if len(codecs) == 2 else None

    def encode(self, chunk: npt.NDArray[Any]) -> bytes:
        raw = np.ascontiguousarray(chunk, dtype=chunk.dtype.newbyteorder("<"))
        if self._compressor is None:
            return raw.tobytes()
        return bytes(self._compressor.encode(raw.reshape(-1).view(np.uint8)))

    def decode(self, data: bytes, dtype: np.dtype[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
        """A chunk's values: a new, writable array (``astype`` copies)."""
        raw = data if self._compressor is None else self._compressor.decode(data)
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _numcodecs(codec: Codec) -> Any:
    """The numcodecs object that zarr-python uses for ``codec``."""
    name, config = codec.get("name"), dict(codec.get("configuration", {}))
    if name == "blosc":
        from numcodecs import Blosc

        shuffles = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
        return Blosc.from_config(
            {
                "cname": config["cname"],
                "clevel": config["clevel"],
                "shuffle": shuffles[config["shuffle"]],
                "blocksize": config.get("blocksize", 0),
                "typesize": config["typesize"],
            }
        )
    if name == "zstd":
        from numcodecs import Zstd

        return Zstd(level=config["level"], checksum=config.get("checksum", False))
    if name == "gzip":
        from numcodecs import GZip

        return GZip(config["level"])
    raise RecordingError(f"unsupported codec {name!r}")


# ------------------------------------------------------------------ fill values


def _fill_to_json(value: Any, dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "f":
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return number
    if dtype.kind == "b":
        return bool(value)
    return int(value)


def _fill_from_json(value: Any, dtype: np.dtype[Any]) -> Any:
    if isinstance(value, str):
        named = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value not in named:
            raise RecordingError(f"unsupported fill value {value!r}")
        return dtype.type(named[value])
    return dtype.type(value)


# ------------------------------------------------------------------ nodes


class Attributes:
    """A node's user attributes; setting one rewrites the node's metadata at once."""

    __slots__ = ("_node",)

    def __init__(self, node: _Node) -> None:
        self._node = node

    def __getitem__(self, key: str) -> Any:
        return self._node.document["attributes"][key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._node.document["attributes"].get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, values: Mapping[str, Any]) -> None:
        self._node.document["attributes"].update(values)
        self._node.write_metadata()

    def asdict(self) -> dict[str, Any]:
        return dict(self._node.document["attributes"])


class _Node:
    __slots__ = ("document", "path")

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = path
        self.document = document

    @property
    def attrs(self) -> Attributes:
        return Attributes(self)

    def write_metadata(self) -> None:
        _put(self.path / _META, _dumps(self.document))


class Array(_Node):
    """A Zarr v3 array of a regular chunk grid with default (``/``) chunk keys."""

    __slots__ = ("_pipeline", "chunks", "dtype", "fill_value", "shape")

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        super().__init__(path, document)
        grid = document["chunk_grid"]
        keys = document["chunk_key_encoding"]
        if grid.get("name") != "regular" or keys.get("name") != "default":
            raise RecordingError(f"{path}: unsupported chunk grid or chunk key encoding")
        if keys.get("configuration", {}).get("separator", "/") != "/":
            raise RecordingError(f"{path}: unsupported chunk key separator")
        self.shape: tuple[int, ...] = tuple(int(n) for n in document["shape"])
        self.chunks: tuple[int, ...] = tuple(int(n) for n in grid["configuration"]["chunk_shape"])
        self.dtype: np.dtype[Any] = np.dtype(document["data_type"])
        self.fill_value = _fill_from_json(document["fill_value"], self.dtype)
        self._pipeline = _Pipeline(document["codecs"])

    def with_shape(self, shape: tuple[int, ...]) -> Array:
        """A handle on this array that believes in ``shape``, writing no metadata (the writer's
        chunk owners write beyond the published shape before rank 0 publishes it)."""
        return Array(self.path, {**self.document, "shape": list(shape)})

    def resize(self, shape: tuple[int, ...]) -> None:
        """Publish ``shape``: delete the chunks wholly outside it, then rewrite the
        metadata (as zarr-python's ``resize``)."""
        shape = tuple(int(n) for n in shape)
        if len(shape) != len(self.shape):
            raise RecordingError(f"{self.path}: cannot resize {self.shape} to {shape}")
        old = _grid(self.shape, self.chunks)
        new = _grid(shape, self.chunks)
        if any(n < o for n, o in zip(new, old, strict=True)):
            for index in itertools.product(*(range(n) for n in old)):
                if any(i >= n for i, n in zip(index, new, strict=True)):
                    self._chunk_path(index).unlink(missing_ok=True)
        self.shape = shape
        self.document["shape"] = list(shape)
        self.write_metadata()

    def _chunk_path(self, index: Sequence[int]) -> Path:
        return self.path.joinpath("c", *(str(i) for i in index))

    def chunk_writes(
        self, selection: Selection, values: npt.NDArray[Any]
    ) -> list[tuple[Array, tuple[int, ...], npt.NDArray[Any]]]:
        """The chunks that writing ``values`` at ``selection`` makes, as ``(array, chunk
        index, whole chunk)``. Chunks the selection covers within the shape are built from
        the values and the fill value; one it covers in part is read back and merged. A part
        of ``values`` that is a whole chunk is kept as it is (not copied) until written."""
        bounds = self._bounds(selection)
        values = np.broadcast_to(
            np.asarray(values, dtype=self.dtype), tuple(hi - lo for lo, hi in bounds)
        )
        out = []
        for index, in_chunk, in_selection, covered in _overlaps(bounds, self.chunks, self.shape):
            part = values[in_selection]
            if part.shape == self.chunks:  # a whole chunk: written as it is, not copied
                out.append((self, index, part))
                continue
            chunk = (
                np.full(self.chunks, self.fill_value, dtype=self.dtype)
                if covered
                else self._read_chunk(index)
            )
            chunk[in_chunk] = part
            out.append((self, index, chunk))
        return out

    def write_chunk(self, index: tuple[int, ...], chunk: npt.NDArray[Any]) -> None:
        """Store one whole chunk; one equal to the fill value everywhere is deleted instead
        (zarr-python's default ``write_empty_chunks=False``)."""
        path = self._chunk_path(index)
        if _all_fill(chunk, self.fill_value):
            path.unlink(missing_ok=True)
            return
        _put(path, self._pipeline.encode(chunk))

    def __setitem__(
        self, selection: slice | Selection | EllipsisType, values: npt.NDArray[Any]
    ) -> None:
        write_all(self.chunk_writes(_as_selection(selection, len(self.shape)), values))

    def __getitem__(self, selection: slice | Selection | EllipsisType) -> npt.NDArray[Any]:
        bounds = self._bounds(_as_selection(selection, len(self.shape)))
        out = np.empty(tuple(hi - lo for lo, hi in bounds), dtype=self.dtype)
        for index, in_chunk, in_selection, _ in _overlaps(bounds, self.chunks, self.shape):
            out[in_selection] = self._read_chunk(index)[in_chunk]
        return out

    def _read_chunk(self, index: tuple[int, ...]) -> npt.NDArray[Any]:
        try:
            data = self._chunk_path(index).read_bytes()
        except FileNotFoundError:
            return np.full(self.chunks, self.fill_value, dtype=self.dtype)
        return self._pipeline.decode(data, self.dtype, self.chunks)

    def _bounds(self, selection: Selection) -> list[tuple[int, int]]:
        if len(selection) != len(self.shape):
            raise RecordingError(f"{self.path}: selection {selection} does not fit {self.shape}")
        bounds = []
        for part, n in zip(selection, self.shape, strict=True):
            lo, hi, step = part.indices(n)
            if step != 1:
                raise RecordingError(f"{self.path}: only contiguous selections are supported")
            bounds.append((lo, max(lo, hi)))
        return bounds


class Group(_Node):
    """A Zarr v3 group."""

    __slots__ = ()

    def _child(self, name: str) -> Path:
        parts = [p for p in name.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise RecordingError(f"invalid node path {name!r}")
        return self.path.joinpath(*parts)

    def create_group(self, name: str, *, attributes: Mapping[str, Any] | None = None) -> Group:
        """A new group at ``name`` (below this one); missing groups between get created."""
        folder = self._child(name)
        for parent in reversed(folder.relative_to(self.path).parents):
            between = self.path / parent
            if parent != Path(".") and not (between / _META).is_file():
                _new_group(between, {})
        _make_room(folder)
        return _new_group(folder, dict(attributes or {}))

    def create_array(
        self,
        name: str,
        *,
        shape: tuple[int, ...],
        chunks: tuple[int, ...],
        dtype: npt.DTypeLike,
        fill_value: Any,
        compressors: Sequence[Codec] = (),
        dimension_names: Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Array:
        """A new array at ``name``, with no chunk written."""
        folder = self._child(name)
        kind = np.dtype(dtype)
        if len(chunks) != len(shape) or any(int(c) < 1 for c in chunks):
            raise RecordingError(f"{folder}: chunks {chunks} do not fit shape {shape}")
        document: dict[str, Any] = {
            "shape": [int(n) for n in shape],
            "data_type": kind.name,
            "chunk_grid": {
                "name": "regular",
                "configuration": {"chunk_shape": [int(c) for c in chunks]},
            },
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": _fill_to_json(fill_value, kind),
            "codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                *(dict(codec) for codec in compressors),
            ],
            "attributes": dict(attributes or {}),
        }
        if dimension_names is not None:
            document["dimension_names"] = list(dimension_names)
        document.update(zarr_format=3, node_type="array", storage_transformers=[])
        array = Array(folder, document)
        _make_room(folder)
        array.write_metadata()
        return array

    def __getitem__(self, name: str) -> Array | Group:
        folder = self._child(name)
        return _node(folder, _read_document(folder))

    def __contains__(self, name: str) -> bool:
        return (self._child(name) / _META).is_file()

    def __delitem__(self, name: str) -> None:
        folder = self._child(name)
        if not (folder / _META).is_file():
            raise KeyError(name)
        shutil.rmtree(folder)


def _make_room(folder: Path) -> None:
    """Refuse to create a node where one exists (as zarr-python does); clear leftovers that
    are not a node (files of an interrupted write)."""
    if (folder / _META).is_file():
        raise RecordingError(f"{folder} already holds a Zarr node")
    if folder.exists():
        shutil.rmtree(folder)


def _new_group(folder: Path, attributes: dict[str, Any]) -> Group:
    group = Group(folder, {"attributes": attributes, "zarr_format": 3, "node_type": "group"})
    group.write_metadata()
    return group


def _node(folder: Path, document: dict[str, Any]) -> Array | Group:
    kind = document.get("node_type")
    if kind == "array":
        return Array(folder, document)
    if kind == "group":
        return Group(folder, document)
    raise RecordingError(f"{folder / _META}: unknown node type {kind!r}")


def create_group(store: str | os.PathLike[str]) -> Group:
    """A new root group at ``store`` (a directory, created if missing)."""
    root = Path(store)
    root.mkdir(parents=True, exist_ok=True)
    return _new_group(root, {})


def open_group(store: str | os.PathLike[str]) -> Group:
    """The existing root group at ``store``."""
    root = Path(store)
    node = _node(root, _read_document(root))
    if not isinstance(node, Group):
        raise RecordingError(f"{root} is an array, not a group")
    return node


def _members(folder: Path, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir() and os.path.isfile(os.path.join(entry.path, _META)):
            name = f"{prefix}{entry.name}"
            doc = _read_document(Path(entry.path))
            yield name, doc
            if doc.get("node_type") == "group":
                yield from _members(Path(entry.path), f"{name}/")


def consolidate_metadata(store: str | os.PathLike[str]) -> None:
    """Gather every node's metadata into the root's, as zarr-python's
    ``consolidate_metadata`` does (a cache outside the v3 specification that lets xarray open
    a finished store in one read)."""
    root = open_group(store)
    empty = {"kind": "inline", "must_understand": False, "metadata": {}}
    metadata: dict[str, Any] = {}
    for name, doc in sorted(_members(root.path), key=lambda member: _listed(member[0])):
        metadata[name] = (
            {
                "attributes": doc.get("attributes", {}),
                "zarr_format": 3,
                _CONSOLIDATED_KEY: dict(empty),
                "node_type": "group",
            }
            if doc.get("node_type") == "group"
            else doc
        )
    root.document = {
        "attributes": root.document.get("attributes", {}),
        "zarr_format": 3,
        _CONSOLIDATED_KEY: {**empty, "metadata": metadata},
        "node_type": "group",
    }
    root.write_metadata()


# ------------------------------------------------------------------ writing chunks

_POOL: list[ThreadPoolExecutor] = []
_WORKERS: Final = 4
"""Threads that encode and write chunks (blosc, zstd and file writes release the GIL)."""


if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's threads
    os.register_at_fork(after_in_child=_POOL.clear)


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(_WORKERS, thread_name_prefix="brainsim-zarr"))
    return _POOL[0]


def write_all(chunks: Sequence[tuple[Array, tuple[int, ...], npt.NDArray[Any]]]) -> None:
    """Store whole chunks (from :meth:`Array.chunk_writes`), several at once."""
    if len(chunks) == 1:
        array, index, chunk = chunks[0]
        array.write_chunk(index, chunk)
        return
    for done in list(_pool().map(lambda job: job[0].write_chunk(job[1], job[2]), chunks)):
        del done


def _as_selection(selection: slice | Selection | EllipsisType, ndim: int) -> Selection:
    if selection is Ellipsis:
        return (slice(None),) * ndim
    if isinstance(selection, slice):
        selection = (selection,)
    if not isinstance(selection, tuple) or not all(isinstance(s, slice) for s in selection):
        raise RecordingError(f"unsupported selection {selection!r}: slices only")
    return selection + (slice(None),) * (ndim - len(selection))


def _listed(name: str) -> tuple[int, str]:
    """Where zarr-python lists node ``name`` in consolidated metadata: by depth, then by
    case-folded name."""
    return name.count("/"), unicodedata.normalize("NFKC", name).casefold()


def _overlaps(
    bounds: Sequence[tuple[int, int]], chunks: tuple[int, ...], shape: tuple[int, ...]
) -> Iterator[tuple[tuple[int, ...], Selection, Selection, bool]]:
    """The chunks that the region ``bounds`` (``(lo, hi)`` per axis) meets: ``(chunk index,
    the region's part in the chunk, that part in the region, whether the region covers the
    chunk's whole extent within ``shape``)``."""
    ranges = [range(lo // c, -(-hi // c)) for (lo, hi), c in zip(bounds, chunks, strict=True)]
    for index in itertools.product(*ranges):
        in_chunk, in_selection, covered = [], [], True
        for i, (lo, hi), c, n in zip(index, bounds, chunks, shape, strict=True):
            start = i * c
            a, b = max(lo, start), min(hi, start + c)
            in_chunk.append(slice(a - start, b - start))
            in_selection.append(slice(a - lo, b - lo))
            covered = covered and a == start and b >= min(start + c, n)
        yield index, tuple(in_chunk), tuple(in_selection), covered


def _grid(shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-(-n // c) for n, c in zip(shape, chunks, strict=True))


def _all_fill(chunk: npt.NDArray[Any], fill: Any) -> bool:
    if chunk.dtype.kind == "f" and math.isnan(float(fill)):
        return bool(np.isnan(chunk).all())
    return bool((chunk == fill).all())
