"""zarr_local against zarr-python 3: the same calls must leave the same files.

The recorder writes its stores with :mod:`brainsim.recording.zarr_local` so that simulation
processes need not import zarr-python, while every reader (brainsim's own, xarray, users'
scripts) keeps using zarr-python. That only holds if zarr_local writes what zarr-python writes,
byte for byte: the same ``zarr.json`` documents (key order and indentation included), the same
chunk files for every codec configuration the recorder uses, no file for a chunk equal to the
fill value (``write_empty_chunks=False``), no chunk left wholly outside a shrunk shape, and the
same consolidated metadata as ``zarr.consolidate_metadata``.

Each scenario below runs once through zarr-python and once through zarr_local, in lock step,
and compares every file of the two stores after each step (an assertion names the differing
paths and, for ``zarr.json``, the JSON difference). The stores are then read across: zarr-python
reads what zarr_local wrote, zarr_local reads slices of what zarr-python wrote. Bad input must
raise :class:`~brainsim.errors.RecordingError`.

A gzip stream's header holds the time it was written (RFC 1952's MTIME), so two gzip writers,
zarr-python included, agree byte for byte only within one second; the tests fix the clock the
``gzip`` module reads, which both implementations go through (numcodecs' ``GZip``).
"""

from __future__ import annotations

import difflib
import gzip
import json
import math
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import zarr
from zarr.errors import ContainsArrayError, ZarrUserWarning

from brainsim.errors import RecordingError
from brainsim.recording import zarr_local
from brainsim.recording.layout import compressors as recorder_compressors

# ------------------------------------------------------------------ configurations

CodecDicts = tuple[dict[str, Any], ...]


def _blosc(cname: str, clevel: int, shuffle: str, typesize: int) -> CodecDicts:
    configuration = {
        "typesize": typesize,
        "cname": cname,
        "clevel": clevel,
        "shuffle": shuffle,
        "blocksize": 0,
    }
    return ({"name": "blosc", "configuration": configuration},)


COMPRESSORS: dict[str, Callable[[int], CodecDicts]] = {
    "blosc-zstd": lambda itemsize: _blosc("zstd", 3, "shuffle", itemsize),
    "blosc-zstd-bitshuffle": lambda itemsize: _blosc("zstd", 3, "bitshuffle", itemsize),
    "blosc-lz4": lambda itemsize: _blosc("lz4", 5, "shuffle", itemsize),
    "zstd": lambda _: ({"name": "zstd", "configuration": {"level": 3, "checksum": False}},),
    "gzip": lambda _: ({"name": "gzip", "configuration": {"level": 5}},),
    "none": lambda _: (),
}
"""The recorder's compression options as JSON codec dicts (blosc's typesize is the itemsize)."""

DTYPES = ("float64", "int64", "float32")


@dataclass(frozen=True)
class Case:
    """One dtype under one compression: how arrays are created and filled in a scenario."""

    dtype: np.dtype[Any]
    compressors: CodecDicts

    @property
    def fill(self) -> Any:
        return math.nan if self.dtype.kind == "f" else -1

    def create(
        self, group: Any, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], **extra: Any
    ) -> Any:
        return group.create_array(
            name,
            shape=shape,
            chunks=chunks,
            dtype=self.dtype,
            fill_value=self.fill,
            compressors=self.compressors,
            **extra,
        )

    def values(self, shape: tuple[int, ...], seed: int) -> npt.NDArray[Any]:
        """Compressible values (sorted, like spike times and ids); from three elements on,
        the second is the fill value, so that a chunk holding it somewhere is still written."""
        rng = np.random.default_rng(seed)
        if self.dtype.kind == "f":
            values = np.cumsum(rng.random(shape), axis=-1).astype(self.dtype)
        else:
            values = np.sort(rng.integers(0, 1000, shape), axis=-1).astype(self.dtype)
        if values.size >= 3:
            values.reshape(-1)[1] = self.fill
        return values

    def filled(self, shape: tuple[int, ...]) -> npt.NDArray[Any]:
        return np.full(shape, self.fill, dtype=self.dtype)


def _case(compression: str, dtype: str) -> Case:
    kind = np.dtype(dtype)
    return Case(kind, COMPRESSORS[compression](kind.itemsize))


ALL_CASES = [
    pytest.param(_case(compression, dtype), id=f"{compression}-{dtype}")
    for compression in COMPRESSORS
    for dtype in DTYPES
]
FLOAT32_CASES = [
    pytest.param(_case(compression, "float32"), id=f"{compression}-float32")
    for compression in COMPRESSORS
]
COVERING_CASES = [
    pytest.param(_case(compression, dtype), id=f"{compression}-{dtype}")
    for compression, dtype in zip(COMPRESSORS, DTYPES * 2, strict=True)
]
"""Every compression once and every dtype twice, for checks where the codec matters less."""
ONE_CASE_PER_DTYPE = [pytest.param(_case("blosc-zstd", dtype), id=dtype) for dtype in DTYPES]

ATTRIBUTES: dict[str, Any] = {
    "float": 0.1,
    "whole_float": 3.0,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308,
    "negative": -2.5,
    "int": 7,
    "none": None,
    "bool": True,
    "text": "E → I, 10 µs",
    "nested": {"list": [1, 2.5, None, "x", [True, False]], "empty": {}, "empty_list": []},
}
"""Attributes of the kinds brainsim writes (floats, None, nested dicts and lists)."""


# ------------------------------------------------------------------ the two implementations


@pytest.fixture(autouse=True)
def _fixed_gzip_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every gzip header written in a test carries the same MTIME."""
    monkeypatch.setattr(gzip, "time", SimpleNamespace(time=lambda: 1_700_000_000.0))


class ZarrPython:
    """zarr-python's calls for what the scenarios do."""

    name = "zarr-python"

    @staticmethod
    def create_group(path: Path) -> Any:
        return zarr.create_group(store=str(path), zarr_format=3)

    @staticmethod
    def with_shape(array: Any, shape: tuple[int, ...]) -> Any:
        """A handle on ``array`` that believes in ``shape``, writing no metadata."""
        wider = zarr.AsyncArray(
            metadata=array.metadata.update_shape(shape),
            store_path=array.store_path,
            config=array.config,
        )
        return zarr.Array(wider)

    @staticmethod
    def consolidate(path: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ZarrUserWarning)
            zarr.consolidate_metadata(str(path))


class ZarrLocal:
    """zarr_local's calls for what the scenarios do."""

    name = "zarr_local"

    @staticmethod
    def create_group(path: Path) -> Any:
        return zarr_local.create_group(path)

    @staticmethod
    def with_shape(array: Any, shape: tuple[int, ...]) -> Any:
        return array.with_shape(shape)

    @staticmethod
    def consolidate(path: Path) -> None:
        zarr_local.consolidate_metadata(path)


Backend = type[ZarrPython] | type[ZarrLocal]
Scenario = Callable[[Backend, Path], Iterator[str]]
"""A scenario does the same calls through either backend and yields a label after each step
at which the two stores are compared."""


# ------------------------------------------------------------------ comparing stores


def _tree(store: Path) -> dict[str, bytes]:
    """Every file under ``store``, by its path relative to ``store``, ignoring nothing."""
    return {
        path.relative_to(store).as_posix(): path.read_bytes()
        for path in sorted(store.rglob("*"))
        if path.is_file()
    }


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float):
        return ours == theirs or (math.isnan(ours) and math.isnan(theirs))
    return type(ours) is type(theirs) and ours == theirs


def _json_differences(ours: Any, theirs: Any, where: str = "$") -> list[str]:
    """Where two parsed JSON documents differ, key order of objects included."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        if set(ours) == set(theirs) and list(ours) != list(theirs):
            found.append(f"{where}: key order {list(ours)} (zarr_local) != {list(theirs)}")
        for key in [*ours, *(k for k in theirs if k not in ours)]:
            if key not in theirs:
                found.append(f"{where}.{key}: only zarr_local writes it: {ours[key]!r}")
            elif key not in ours:
                found.append(f"{where}.{key}: only zarr-python writes it: {theirs[key]!r}")
            else:
                found += _json_differences(ours[key], theirs[key], f"{where}.{key}")
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [
            difference
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for difference in _json_differences(a, b, f"{where}[{i}]")
        ]
    if _same(ours, theirs):
        return []
    return [f"{where}: zarr_local {ours!r} != zarr-python {theirs!r}"]


def _describe(path: str, ours: bytes, theirs: bytes) -> str:
    if path.endswith("zarr.json"):
        differences = _json_differences(json.loads(ours), json.loads(theirs))
        if not differences:
            text = difflib.unified_diff(
                theirs.decode().splitlines(),
                ours.decode().splitlines(),
                "zarr-python",
                "zarr_local",
                lineterm="",
                n=1,
            )
            differences = ["same JSON, different text:", *text]
        return f"{path}:\n    " + "\n    ".join(differences)
    first = next(
        (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
        min(len(ours), len(theirs)),
    )
    return (
        f"{path}: chunk bytes differ (zarr_local {len(ours)} bytes, zarr-python "
        f"{len(theirs)} bytes, first difference at byte {first})"
    )


def assert_same_files(ours: Path, theirs: Path, after: str = "") -> None:
    """Both stores hold the same files with the same bytes."""
    mine, reference = _tree(ours), _tree(theirs)
    problems = [f"only zarr_local wrote {path}" for path in sorted(mine.keys() - reference)]
    problems += [f"only zarr-python wrote {path}" for path in sorted(reference.keys() - mine)]
    problems += [
        _describe(path, mine[path], reference[path])
        for path in sorted(mine.keys() & reference.keys())
        if mine[path] != reference[path]
    ]
    assert not problems, f"stores differ after {after or 'the scenario'}:\n" + "\n".join(problems)


def assert_no_partial_files(store: Path) -> None:
    """Every file was replaced atomically: no temporary file is left behind."""
    left = sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if "partial" in p.name)
    assert not left, f"temporary files left in {store}: {left}"


def run_both(
    tmp_path: Path, scenario: Scenario, same_values: Sequence[str] = ()
) -> tuple[Path, Path]:
    """Run ``scenario`` through both backends in lock step, comparing the stores at each
    step, then the values zarr-python reads from the arrays ``same_values`` of both; the
    paths of zarr_local's and zarr-python's stores."""
    ours, theirs = tmp_path / "zarr_local.zarr", tmp_path / "zarr_python.zarr"
    steps = zip(scenario(ZarrLocal, ours), scenario(ZarrPython, theirs), strict=True)
    for mine, reference in steps:
        assert mine == reference
        assert_same_files(ours, theirs, after=mine)
        assert_no_partial_files(ours)
    for name in same_values:
        np.testing.assert_array_equal(_read(ours, name), _read(theirs, name))
    return ours, theirs


def _read(store: Path, name: str) -> npt.NDArray[Any]:
    array = zarr.open_group(str(store), mode="r")[name]
    assert isinstance(array, zarr.Array)
    return np.asarray(array[...])


def _chunk(store: Path, name: str, *index: int) -> Path:
    return store.joinpath(name, "c", *(str(i) for i in index))


# ------------------------------------------------------------------ configurations used


@pytest.mark.parametrize("compression", COMPRESSORS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_codec_dicts_are_the_recorders(compression: str, dtype: str) -> None:
    """The configurations compared here are those the recorder asks zarr-python for."""
    itemsize = np.dtype(dtype).itemsize
    assert recorder_compressors(compression, itemsize) == COMPRESSORS[compression](itemsize)


# ------------------------------------------------------------------ scenarios


def test_nested_groups_attributes_and_consolidation(tmp_path: Path) -> None:
    case = _case("blosc-zstd", "float64")

    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        yield "creating the root"
        spikes = root.create_group("spikes/E", attributes=ATTRIBUTES)
        yield "creating spikes/E (and spikes between)"
        root.create_group("spikes/I", attributes={"n": 2})
        root.create_group("report")
        root.create_group("report/E/v", attributes={"units": "mV", "scale": 0.001})
        yield "creating groups below existing and new groups"
        case.create(
            spikes,
            "timestamps",
            (0,),
            (4,),
            dimension_names=["spike"],
            attributes={"units": "ms", "nested": {"a": [1.5, None]}},
        )
        case.create(spikes, "node_ids", (3,), (4,))
        yield "creating arrays with and without dimension names"
        root.attrs["brainsim"] = {"format": "brainsim-recording/1", "dt": 0.1, "end": None}
        yield "setting a root attribute"
        root.attrs["brainsim"] = {"format": "brainsim-recording/1", "dt": 0.1, "end": 100.0}
        root.attrs["status"] = "complete"
        yield "updating root attributes"
        backend.consolidate(path)
        yield "consolidating"

    ours, _ = run_both(tmp_path, scenario)
    root = zarr.open_group(str(ours), mode="r")
    assert root.attrs["status"] == "complete"
    assert dict(root["spikes/E"].attrs) == ATTRIBUTES


def test_consolidation_after_writes_and_resizes(tmp_path: Path) -> None:
    case = _case("blosc-lz4", "float32")

    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        group = root.create_group("report/E/v", attributes={"units": "mV"})
        array = case.create(group, "data", (6, 5), (4, 3), dimension_names=["time", "node"])
        array[:] = case.values((6, 5), 1)
        array.resize((9, 5))
        root.attrs["brainsim"] = {"complete": True}
        yield "writes and a resize"
        backend.consolidate(path)
        yield "consolidating"
        backend.consolidate(path)
        yield "consolidating again"

    run_both(tmp_path, scenario)


def test_consolidated_metadata_of_siblings(tmp_path: Path) -> None:
    """Members of one depth, named with upper and lower case (populations such as ``I`` and
    ``exc``), listed in the root in zarr-python's order."""
    case = _case("zstd", "int64")

    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        for name in ("I", "exc", "Zeta", "alpha", "b_2", "B1"):
            root.create_group(name, attributes={"name": name})
        case.create(root, "Ids", (3,), (2,))
        case.create(root, "counts", (3,), (2,))
        yield "siblings"
        backend.consolidate(path)
        yield "consolidating"

    run_both(tmp_path, scenario)


@pytest.mark.parametrize("case", ALL_CASES)
def test_one_dimensional_writes(tmp_path: Path, case: Case) -> None:
    name = "spikes/timestamps"

    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        array = case.create(root.create_group("spikes"), "timestamps", (10,), (4,))
        yield "creating the array"
        array[:] = case.values((10,), 1)
        yield "a whole-array write whose last chunk is partial"
        array[0:4] = case.values((4,), 2)
        array[4:8] = case.values((4,), 3)
        yield "rewriting single whole chunks"
        array[4:8] = case.filled((4,))
        assert not _chunk(path, name, 1).exists(), f"{backend.name} kept an all-fill chunk"
        yield "writing fill values over a stored chunk"
        array[8:10] = case.filled((2,))
        assert not _chunk(path, name, 2).exists(), f"{backend.name} kept an all-fill chunk"
        yield "writing fill values over the stored last (partial) chunk"
        other = case.create(root, "other", (12,), (4,))
        other[4:8] = case.filled((4,))
        other[8:12] = case.values((4,), 4)
        assert not _chunk(path, "other", 1).exists(), f"{backend.name} wrote an all-fill chunk"
        yield "an all-fill chunk is never written"
        other[:] = case.filled((12,))
        yield "a whole-array write of fill values"

    ours, theirs = run_both(tmp_path, scenario)
    assert sorted(_tree(ours)) == [
        "other/zarr.json",
        "spikes/timestamps/c/0",
        "spikes/timestamps/zarr.json",
        "spikes/zarr.json",
        "zarr.json",
    ]
    np.testing.assert_array_equal(_read(ours, name), _read(theirs, name))


@pytest.mark.parametrize("case", FLOAT32_CASES)
def test_two_dimensional_writes(tmp_path: Path, case: Case) -> None:
    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        array = case.create(root, "v", (10, 7), (4, 3), dimension_names=["time", "node"])
        array[0:4, 0:3] = case.values((4, 3), 1)
        array[4:8, 3:6] = case.values((4, 3), 2)
        yield "whole inner chunks"
        array[8:10, 6:7] = case.values((2, 1), 3)
        array[0:4, 6:7] = case.values((4, 1), 4)
        array[8:10, 0:3] = case.values((2, 3), 5)
        yield "whole edge and corner chunks (partial chunks inside the shape)"
        array[:] = case.values((10, 7), 6)
        yield "a full-array write"
        array[4:8, 0:3] = case.filled((4, 3))
        array[8:10, 6:7] = case.filled((2, 1))
        assert not _chunk(path, "v", 1, 0).exists()
        assert not _chunk(path, "v", 2, 2).exists()
        yield "fill values over stored chunks"

    run_both(tmp_path, scenario, same_values=["v"])


@pytest.mark.parametrize("case", ONE_CASE_PER_DTYPE)
def test_resize_grows_and_shrinks_one_dimensional(tmp_path: Path, case: Case) -> None:
    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        array = case.create(root, "x", (10,), (4,))
        array[:] = case.values((10,), 1)
        array.resize((17,))
        yield "growing"
        array[10:17] = case.values((7,), 2)
        yield "writing the grown part"
        array.resize((5,))
        for index in (2, 3, 4):
            assert not _chunk(path, "x", index).exists(), f"{backend.name} kept chunk {index}"
        assert _chunk(path, "x", 1).exists()
        yield "shrinking (chunks wholly outside deleted, the straddling one kept)"
        array.resize((9,))
        yield "growing again"
        array.resize((8,))
        yield "shrinking to a chunk boundary"
        array.resize((0,))
        yield "shrinking to nothing"

    run_both(tmp_path, scenario)


@pytest.mark.parametrize("case", FLOAT32_CASES[:1] + FLOAT32_CASES[-1:])
def test_resize_grows_and_shrinks_two_dimensional(tmp_path: Path, case: Case) -> None:
    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        array = case.create(root, "v", (10, 7), (4, 3))
        array[:] = case.values((10, 7), 1)
        array.resize((13, 7))
        array[10:13, :] = case.values((3, 7), 2)
        yield "growing along time"
        array.resize((5, 4))
        assert not _chunk(path, "v", 2, 0).exists()
        assert not _chunk(path, "v", 0, 2).exists()
        assert _chunk(path, "v", 1, 1).exists()
        yield "shrinking both dimensions"
        array.resize((5, 9))
        yield "growing one dimension, keeping the other"
        array.resize((10, 7))
        yield "growing back"

    run_both(tmp_path, scenario, same_values=["v"])


@pytest.mark.parametrize("case", ONE_CASE_PER_DTYPE)
def test_writes_beyond_the_published_shape(tmp_path: Path, case: Case) -> None:
    """The recorder's chunk owners write whole chunks through a wider handle before rank 0
    publishes the shape with a resize."""

    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        array = case.create(root, "x", (6,), (4,))
        array[:] = case.values((6,), 1)
        yield "the published part"
        wider = backend.with_shape(array, (16,))
        wider[4:8] = case.values((4,), 2)
        wider[8:12] = case.values((4,), 3)
        wider[12:16] = case.values((4,), 4)
        yield "whole chunks beyond the published shape (metadata unchanged)"
        array.resize((16,))
        yield "publishing the shape"
        report = case.create(root, "report", (4, 3), (4, 3))
        report[:] = case.values((4, 3), 5)
        wider_report = backend.with_shape(report, (12, 3))
        wider_report[4:8, :] = case.values((4, 3), 6)
        wider_report[8:12, :] = case.values((4, 3), 7)
        yield "whole 2-D chunks beyond the published shape"
        report.resize((12, 3))
        yield "publishing the 2-D shape"

    run_both(tmp_path, scenario, same_values=["x", "report"])


@pytest.mark.parametrize("case", ONE_CASE_PER_DTYPE)
def test_published_write_of_a_chunk_stored_beyond_the_shape(tmp_path: Path, case: Case) -> None:
    """A handle on the published shape that writes the whole in-shape part of the last chunk
    pads it with the fill value, as zarr-python does, whatever lay beyond the shape."""

    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        array = case.create(root, "x", (6,), (4,))
        backend.with_shape(array, (8,))[4:8] = case.values((4,), 1)
        yield "a whole chunk through a wider handle"
        array[4:6] = case.values((2,), 2)
        yield "the in-shape part of that chunk through the published handle"
        array.resize((8,))
        yield "publishing"

    run_both(tmp_path, scenario)


@pytest.mark.parametrize("case", COVERING_CASES)
def test_partial_chunk_writes_merge_with_stored_chunks(tmp_path: Path, case: Case) -> None:
    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        array = case.create(root, "x", (10,), (4,))
        array[0:4] = case.values((4,), 1)
        array[1:3] = case.values((2,), 2)
        yield "a sub-range of a stored chunk"
        array[5:6] = case.values((1,), 3)
        yield "a sub-range of a missing chunk"
        array[2:7] = case.values((5,), 4)
        yield "a range crossing a chunk boundary, partial on both sides"
        array[8:9] = case.values((1,), 5)
        array[8:9] = case.filled((1,))
        assert not _chunk(path, "x", 2).exists(), f"{backend.name} kept an all-fill chunk"
        yield "a partial write that leaves the chunk all fill"
        array[4:8] = case.values((4,), 6)
        array[4:8] = case.filled((4,))
        array[5:7] = case.values((2,), 7)
        yield "a partial write into a chunk deleted as all fill"
        grid = case.create(root, "grid", (10, 7), (4, 3))
        grid[:] = case.values((10, 7), 8)
        grid[1:6, 2:5] = case.values((5, 3), 9)
        yield "a 2-D sub-block across four chunks"
        grid[9:10, 0:1] = case.values((1, 1), 10)
        grid[0:1, 6:7] = case.filled((1, 1))
        yield "single elements in edge chunks"

    run_both(tmp_path, scenario, same_values=["x", "grid"])


# ------------------------------------------------------------------ reading across


@pytest.mark.parametrize("case", COVERING_CASES)
def test_zarr_python_reads_what_zarr_local_wrote(tmp_path: Path, case: Case) -> None:
    store = tmp_path / "local.zarr"
    root = zarr_local.create_group(store)
    group = root.create_group("spikes/E", attributes=ATTRIBUTES)
    line = case.create(group, "timestamps", (10,), (4,), dimension_names=["spike"])
    expected_line = case.filled((10,))
    for selection, seed in ((slice(0, 10), 1), (slice(4, 8), 2), (slice(1, 3), 3)):
        values = case.values((selection.stop - selection.start,), seed)
        line[selection] = values
        expected_line[selection] = values
    line.resize((14,))
    expected_line = np.concatenate([expected_line, case.filled((4,))])
    grid = case.create(root, "grid", (10, 7), (4, 3))
    expected_grid = case.filled((10, 7))
    values = case.values((5, 4), 4)
    grid[2:7, 1:5] = values
    expected_grid[2:7, 1:5] = values
    root.attrs["brainsim"] = {"complete": True}
    zarr_local.consolidate_metadata(store)
    assert_no_partial_files(store)

    opened = zarr.open_group(str(store), mode="r")
    assert dict(opened["spikes/E"].attrs) == ATTRIBUTES
    assert opened.attrs["brainsim"] == {"complete": True}
    read_line = opened["spikes/E/timestamps"]
    assert isinstance(read_line, zarr.Array)
    assert read_line.dtype == case.dtype
    assert read_line.shape == (14,)
    np.testing.assert_array_equal(read_line[...], expected_line)
    np.testing.assert_array_equal(_read(store, "grid"), expected_grid)


LINE_SELECTIONS = [
    slice(None),
    slice(0, 4),
    slice(3, 9),
    slice(5, 6),
    slice(8, 11),
    slice(-3, None),
    slice(6, 6),
]
GRID_SELECTIONS = [
    (slice(None), slice(None)),
    (slice(2, 9), slice(1, 6)),
    (slice(8, 10), slice(6, 7)),
    (slice(3, 4), slice(2, 4)),
    (slice(0, 10), slice(5, 7)),
    (slice(4, 8), slice(3, 6)),
]


@pytest.mark.parametrize("case", COVERING_CASES)
def test_zarr_local_reads_what_zarr_python_wrote(tmp_path: Path, case: Case) -> None:
    store = tmp_path / "python.zarr"
    root = zarr.create_group(store=str(store), zarr_format=3)
    line = case.create(root, "line", (11,), (4,))
    line[0:9] = case.values((9,), 1)  # the last chunk is missing; the one before it partial
    line[5:7] = case.filled((2,))
    grid = case.create(root, "grid", (10, 7), (4, 3))
    grid[1:9, 0:5] = case.values((8, 5), 2)  # some chunks missing, others partly fill

    local = zarr_local.open_group(store)
    local_line, local_grid = local["line"], local["grid"]
    assert isinstance(local_line, zarr_local.Array)
    assert isinstance(local_grid, zarr_local.Array)
    for selection in LINE_SELECTIONS:
        ours = local_line[selection]
        assert ours.dtype == case.dtype
        np.testing.assert_array_equal(ours, line[selection], err_msg=f"line[{selection}]")
    for pair in GRID_SELECTIONS:
        ours = local_grid[pair]
        assert ours.dtype == case.dtype
        np.testing.assert_array_equal(ours, grid[pair], err_msg=f"grid[{pair}]")
    np.testing.assert_array_equal(local_grid[2:5], grid[2:5])


# ------------------------------------------------------------------ bad input


def test_opening_a_directory_without_metadata_fails(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-store"
    folder.mkdir()
    with pytest.raises(RecordingError, match=r"is not a Zarr v3 node \(no zarr\.json\)"):
        zarr_local.open_group(folder)
    root = zarr_local.create_group(tmp_path / "store")
    (tmp_path / "store" / "empty").mkdir()
    with pytest.raises(RecordingError, match=r"no zarr\.json"):
        root["empty"]


def test_unsupported_codec_fails(tmp_path: Path) -> None:
    root = zarr_local.create_group(tmp_path / "local.zarr")
    with pytest.raises(RecordingError, match=r"unsupported codec 'lz4'"):
        root.create_array(
            "x",
            shape=(4,),
            chunks=(2,),
            dtype="float64",
            fill_value=math.nan,
            compressors=[{"name": "lz4", "configuration": {"acceleration": 1}}],
        )
    python = zarr.create_group(store=str(tmp_path / "python.zarr"), zarr_format=3)
    python.create_array(
        "x",
        shape=(4,),
        chunks=(2,),
        dtype="float64",
        fill_value=0.0,
        compressors=[{"name": "crc32c"}],
    )
    with pytest.raises(RecordingError, match=r"unsupported codec 'crc32c'"):
        zarr_local.open_group(tmp_path / "python.zarr")["x"]


def test_strided_selection_fails(tmp_path: Path) -> None:
    case = _case("none", "float64")
    root = zarr_local.create_group(tmp_path / "local.zarr")
    line = case.create(root, "line", (10,), (4,))
    grid = case.create(root, "grid", (10, 7), (4, 3))
    with pytest.raises(RecordingError, match="only contiguous selections are supported"):
        line[::2]
    with pytest.raises(RecordingError, match="only contiguous selections are supported"):
        line[0:10:3] = case.values((4,), 1)
    with pytest.raises(RecordingError, match="only contiguous selections are supported"):
        grid[:, 0:7:3]
    assert sorted(_tree(tmp_path / "local.zarr")) == [
        "grid/zarr.json",
        "line/zarr.json",
        "zarr.json",
    ]


def test_ellipsis_selects_the_whole_array(tmp_path: Path) -> None:
    """``array[...]`` means the whole array, as in zarr-python and numpy."""
    case = _case("blosc-zstd", "float64")

    def scenario(backend: Backend, path: Path) -> Iterator[str]:
        root = backend.create_group(path)
        line = case.create(root, "line", (10,), (4,))
        line[...] = case.values((10,), 1)
        np.testing.assert_array_equal(line[...], case.values((10,), 1))
        grid = case.create(root, "grid", (10, 7), (4, 3))
        grid[...] = case.values((10, 7), 2)
        np.testing.assert_array_equal(grid[...], case.values((10, 7), 2))
        yield "whole-array writes and reads through an ellipsis"

    run_both(tmp_path, scenario)


def test_creating_over_an_existing_node_fails_like_zarr_python(tmp_path: Path) -> None:
    """A node is never silently replaced: zarr-python refuses too (``overwrite=False``)."""
    root = zarr_local.create_group(tmp_path / "local.zarr")
    root.create_group("spikes/E", attributes={"units": "ms"})
    root.create_array("x", shape=(4,), chunks=(2,), dtype="int64", fill_value=-1)
    with pytest.raises(RecordingError, match="already holds a Zarr node"):
        root.create_group("spikes/E")
    with pytest.raises(RecordingError, match="already holds a Zarr node"):
        root.create_array("x", shape=(4,), chunks=(2,), dtype="int64", fill_value=-1)
    python = zarr.create_group(store=str(tmp_path / "python.zarr"), zarr_format=3)
    python.create_array("x", shape=(4,), chunks=(2,), dtype="int64", fill_value=-1)
    with pytest.raises(ContainsArrayError, match="An array exists"):
        python.create_array("x", shape=(4,), chunks=(2,), dtype="int64", fill_value=-1)
    # Leftovers that are no node (an interrupted write) make room for the new one.
    (tmp_path / "local.zarr" / "y" / "c").mkdir(parents=True)
    (tmp_path / "local.zarr" / "y" / "c" / "0").write_bytes(b"stale")
    root.create_array("y", shape=(4,), chunks=(2,), dtype="int64", fill_value=-1)
    assert sorted(_tree(tmp_path / "local.zarr" / "y")) == ["zarr.json"]
    assert root.attrs.asdict() == {}
    assert zarr_local.open_group(tmp_path / "local.zarr")["spikes/E"].attrs.asdict() == {
        "units": "ms"
    }


def test_files_are_replaced_through_zarr_pythons_temporary_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file is written under a temporary name and renamed over its target, and the
    temporary names are zarr-python's (``zarr.<hex>.partial`` beside ``zarr.json``), which
    readers of a live store skip (brainsim.recording.reader)."""
    renames: list[tuple[str, str]] = []
    replace = Path.replace

    def recording(self: Path, target: Any) -> Any:
        renames.append((self.name, Path(target).name))
        return replace(self, target)

    monkeypatch.setattr(Path, "replace", recording)
    root = zarr_local.create_group(tmp_path / "local.zarr")
    array = root.create_array("x", shape=(4,), chunks=(2,), dtype="int64", fill_value=-1)
    array[:] = np.arange(4)
    root.attrs["brainsim"] = {"status": "running"}
    assert {target for _, target in renames} == {"zarr.json", "0", "1"}
    for temporary, target in renames:
        stem = "zarr" if target == "zarr.json" else target
        assert re.fullmatch(rf"{stem}\.[0-9a-f]{{32}}\.partial", temporary), temporary
    assert not list((tmp_path / "local.zarr").rglob("*.partial"))


_FORKED = """
import os, signal, sys, time
import numpy as np
from brainsim.recording import zarr_local
root = zarr_local.create_group(sys.argv[1])
first = root.create_array("x", shape=(256,), chunks=(2,), dtype="int64", fill_value=-1)
first[:] = np.arange(256)  # 128 chunks: every writing thread starts
time.sleep(0.2)  # and waits, idle
pid = os.fork()
if pid == 0:  # the parent's idle threads are not in the child: it must start its own
    signal.alarm(20)  # a child that waits for them forever dies instead
    second = root.create_array("y", shape=(4,), chunks=(2,), dtype="int64", fill_value=-1)
    second[:] = np.arange(4)
    os._exit(0 if (second[:] == np.arange(4)).all() else 1)
print(os.waitpid(pid, 0)[1])
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_writes_with_threads_of_its_own(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FORKED, str(tmp_path / "store.zarr")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]
