"""Open a recording store for reading: its metadata, spikes and stimulus presentations as numpy
arrays, reports and weight snapshots as xarray.

Every way a path can fail to be a readable recording (missing, not a Zarr store, a Zarr store
that brainsim did not write, half written, an unknown format version) raises
:class:`~brainsim.errors.RecordingFormatError` with a message that says which; nothing from
zarr leaks out as a traceback. A store that is still being written (status ``running``) opens
normally and shows what has been flushed so far; open it again to see more.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import numpy.typing as npt
import zarr
from zarr.errors import ZarrUserWarning

from brainsim.errors import RecordingError, RecordingFormatError
from brainsim.recording.base import PopulationInfo, StimulusSpec
from brainsim.recording.layout import (
    FORMAT,
    FORMAT_PREFIX,
    ROOT_KEY,
    report_path,
    spikes_path,
    stimulus_path,
    weights_path,
)

if TYPE_CHECKING:
    import xarray

__all__ = ["RecordingStore", "SpikeTrains", "open_store"]

_REQUIRED_KEYS = (
    "format",
    "status",
    "simulated_ms",
    "dt_ms",
    "duration_ms",
    "seed",
    "circuit",
    "circuit_sha256",
    "populations",
    "provenance",
)


@dataclass(frozen=True, slots=True)
class SpikeTrains:
    """All spikes of one population, sorted by time, then node id (the statistics rely on it).

    ``times_ms[i]`` (float64, ms) is the time of spike ``i`` of neuron ``node_ids[i]`` (int64,
    0 <= id < ``population_size``).
    """

    population: str
    times_ms: npt.NDArray[np.float64]
    node_ids: npt.NDArray[np.int64]
    population_size: int

    def __post_init__(self) -> None:
        if self.times_ms.shape != self.node_ids.shape or self.times_ms.ndim != 1:
            raise ValueError("times_ms and node_ids must be 1-D arrays of equal length")

    @property
    def n_spikes(self) -> int:
        return int(self.times_ms.size)


@dataclass(frozen=True, slots=True)
class RecordingStore:
    """A brainsim recording opened for reading (a snapshot of its root metadata).

    Attributes mirror the root ``brainsim`` attributes of RECORDING.md. ``spike_populations``,
    ``reports`` (``(population, variable)`` pairs), ``weight_projections`` and
    ``stimulus_names`` (data-driven stimuli with recorded presentations) list what the store
    holds.
    """

    path: Path
    format: str
    status: str
    reason: str | None
    simulated_ms: float
    dt_ms: float
    duration_ms: float
    seed: int
    circuit: Mapping[str, Any]
    circuit_sha256: str
    provenance: Mapping[str, Any]
    populations: Mapping[str, PopulationInfo]
    spike_populations: tuple[str, ...]
    reports: tuple[tuple[str, str], ...]
    weight_projections: tuple[str, ...]
    stimulus_names: tuple[str, ...] = ()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Self:
        """Open the store at ``path``; raise RecordingFormatError if it is not a readable one."""
        store = Path(path)
        root = _open_root(store)
        doc = _root_document(store, root)
        try:
            populations = {
                str(name): PopulationInfo(
                    size=int(p["size"]), model=str(p["model"]), gid_offset=int(p["gid_offset"])
                )
                for name, p in doc["populations"].items()
            }
            return cls(
                path=store,
                format=str(doc["format"]),
                status=str(doc["status"]),
                reason=None if doc.get("reason") is None else str(doc["reason"]),
                simulated_ms=float(doc["simulated_ms"]),
                dt_ms=float(doc["dt_ms"]),
                duration_ms=float(doc["duration_ms"]),
                seed=int(doc["seed"]),
                circuit=doc["circuit"],
                circuit_sha256=str(doc["circuit_sha256"]),
                provenance=doc["provenance"],
                populations=populations,
                spike_populations=_members(root, "spikes", depth=1),
                reports=tuple(
                    (population, variable)
                    for population, variable in (
                        name.split("/", 1) for name in _members(root, "report", depth=2)
                    )
                ),
                weight_projections=_members(root, "weights", depth=1),
                stimulus_names=_members(root, "stimuli", depth=1),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordingFormatError(
                f"{store}: the root metadata is malformed ({type(exc).__name__}: {exc})"
            ) from None

    def spikes(self, population: str, *, start: int = 0) -> SpikeTrains:
        """The recorded spikes of ``population``: all of them, or those from index ``start`` on
        (none when ``start`` is past the end), which lets a reader of a live store fetch only
        what was flushed since it last looked.

        While a run is flushing, ``timestamps`` and ``node_ids`` may briefly differ in length;
        the common prefix is returned (it is complete: chunks are written before shapes grow).
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if population not in self.spike_populations:
            raise RecordingError(
                f"no spikes of population {population!r} in {self.path}; "
                f"recorded: {list(self.spike_populations)}"
            )
        group = spikes_path(population)
        with _reading(self.path, group):
            root = _open_root(self.path)
            times = _read_array(root, f"{group}/timestamps", start)
            ids = _read_array(root, f"{group}/node_ids", start)
        n = min(times.size, ids.size)
        return SpikeTrains(
            population=population,
            times_ms=np.asarray(times[:n], dtype=np.float64),
            node_ids=np.asarray(ids[:n], dtype=np.int64),
            population_size=self.populations[population].size,
        )

    def stimulus_presentations(self, name: str) -> StimulusSpec:
        """When stimulus ``name`` showed its samples: presentation ``k`` showed data row
        ``sample_index[k]`` from ``onsets_ms[k]`` (ms) for ``present_ms``, then ``rest_ms`` of
        silence; ``type`` is the stimulus' kind. These are written whole when the store is
        created, so they list every presentation the run was to show."""
        if name not in self.stimulus_names:
            raise RecordingError(
                f"no presentations of stimulus {name!r} in {self.path}; recorded: "
                f"{list(self.stimulus_names)}"
            )
        group = stimulus_path(name)
        with _reading(self.path, group):
            root = _open_root(self.path)
            attributes: Mapping[str, Any] = _group(root, group).attrs.asdict()
            onsets = _read_array(root, f"{group}/sample_onsets_ms")
            samples = _read_array(root, f"{group}/sample_index")
            return StimulusSpec(
                name=name,
                type=str(attributes["type"]),
                present_ms=float(attributes["present_ms"]),
                rest_ms=float(attributes["rest_ms"]),
                onsets_ms=np.asarray(onsets, dtype=np.float64),
                sample_index=np.asarray(samples, dtype=np.int64),
            )

    def report(self, population: str, variable: str) -> xarray.DataArray:
        """The report ``variable`` of ``population`` as a lazy DataArray ``(time, node_ids)``.

        Named ``variable``; its attributes hold ``units``, ``interval_ms``, ``start_ms`` and
        ``population``. Values are loaded when indexed or computed. While a run is flushing,
        ``data`` may briefly have more samples than ``time``; the common prefix is returned.
        """
        if (population, variable) not in self.reports:
            raise RecordingError(
                f"no report {population}/{variable} in {self.path}; recorded: "
                f"{[f'{p}/{v}' for p, v in self.reports]}"
            )
        group = report_path(population, variable)
        return self._dense(group, variable, "node_ids", ("node_ids",), {"population": population})

    def weights(self, projection: str) -> xarray.DataArray:
        """The weight snapshots of ``projection`` as a lazy DataArray ``(time, synapse)``.

        Named ``weight``; coordinates ``time`` (ms) and, along ``synapse``, ``source`` and
        ``target`` (node ids within the projection's source and target populations; synapses
        are ordered by target, then source, then creation). Its attributes hold ``units``,
        ``interval_ms`` (``None``: only the final weights), ``model`` and ``projection``.
        While a run is flushing, the arrays may briefly disagree in length; the common prefix
        is returned.
        """
        if projection not in self.weight_projections:
            raise RecordingError(
                f"no weights of projection {projection!r} in {self.path}; recorded: "
                f"{list(self.weight_projections)}"
            )
        return self._dense(
            weights_path(projection),
            "weight",
            "synapse",
            ("source", "target"),
            {"projection": projection},
        )

    def _dense(
        self,
        group: str,
        name: str,
        column_dimension: str,
        column_coordinates: tuple[str, ...],
        attributes: Mapping[str, Any],
    ) -> xarray.DataArray:
        """``data`` of ``group`` as a lazy DataArray named ``name``, with ``time`` and the
        ``column_coordinates`` (read eagerly) cut to the prefix they share with it."""
        import xarray

        with _reading(self.path, group):
            root = _open_root(self.path)
            times = _read_array(root, f"{group}/time")
            columns = {c: _read_array(root, f"{group}/{c}") for c in column_coordinates}
            dataset = xarray.open_zarr(
                str(self.path),
                group=group,
                consolidated=False,
                chunks=None,
                drop_variables=["time", *column_coordinates],
            )
            data: xarray.DataArray = dataset["data"]
        n = min(data.sizes["time"], times.size)
        m = min(data.sizes[column_dimension], *(values.size for values in columns.values()))
        coordinates: dict[str, tuple[Any, ...]] = {"time": ("time", times[:n], {"units": "ms"})}
        coordinates.update({c: (column_dimension, values[:m]) for c, values in columns.items()})
        data = data.isel({"time": slice(0, n), column_dimension: slice(0, m)})
        data = data.assign_coords(coordinates)
        data.attrs = {**dataset.attrs, **data.attrs, **attributes}
        return data.rename(name)


def open_store(path: str | os.PathLike[str]) -> RecordingStore:
    """Open the recording at ``path`` (see :class:`RecordingStore`)."""
    return RecordingStore.open(path)


@contextmanager
def _reading(path: Path, group: str) -> Iterator[None]:
    """Turn any failure to read ``group`` of the store into a RecordingFormatError."""
    try:
        yield
    except RecordingFormatError:
        raise
    except Exception as exc:
        raise RecordingFormatError(
            f"{path}: cannot read {group} ({type(exc).__name__}: {exc})"
        ) from None


def _open_root(store: Path) -> zarr.Group:
    if not store.exists():
        raise RecordingFormatError(f"{store}: no such file or directory")
    if not store.is_dir():
        raise RecordingFormatError(f"{store} is a file, not a recording (a Zarr store directory)")
    if not (store / "zarr.json").is_file():
        raise RecordingFormatError(
            f"{store} is not a Zarr v3 store (no zarr.json at its root), so not a recording"
        )
    try:
        return zarr.open_group(store=str(store), mode="r", zarr_format=3, use_consolidated=False)
    except Exception as exc:
        raise RecordingFormatError(
            f"{store} is not a readable Zarr v3 group ({type(exc).__name__}: {exc})"
        ) from None


def _root_document(store: Path, root: zarr.Group) -> Mapping[str, Any]:
    """The ``brainsim`` root attributes, after checking they are there and of a known format."""
    doc = root.attrs.get(ROOT_KEY)
    if doc is None:
        if any(store.glob(_TEMPORARY)):
            raise RecordingFormatError(
                f"{store} is a recording being created or a half-written one (a write of its "
                "root metadata is in progress or was interrupted)"
            )
        try:
            groups = set(_group_names(root))
        except Exception as exc:
            raise RecordingFormatError(
                f"{store} is a Zarr store whose groups cannot be listed ({type(exc).__name__}: "
                f"{exc})"
            ) from None
        if groups & {"spikes", "report", "weights", "stimuli"}:
            raise RecordingFormatError(
                f"{store} is a half-written recording: it has groups but no root metadata "
                f"('{ROOT_KEY}' attributes); the run stopped while creating the store"
            )
        raise RecordingFormatError(
            f"{store} is a Zarr store but not a brainsim recording (no '{ROOT_KEY}' attributes)"
        )
    fmt = doc.get("format") if isinstance(doc, Mapping) else None
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        raise RecordingFormatError(
            f"{store} is not a brainsim recording (format {fmt!r}, expected {FORMAT!r})"
        )
    if fmt != FORMAT:
        raise RecordingFormatError(
            f"{store} has the unknown format version {fmt!r}; this brainsim reads {FORMAT!r} "
            "(a newer brainsim may read it)"
        )
    assert isinstance(doc, Mapping)
    missing = [key for key in _REQUIRED_KEYS if key not in doc]
    if missing:
        raise RecordingFormatError(
            f"{store} is a half-written recording: the root metadata lacks {missing}"
        )
    return doc


def _members(root: zarr.Group, top: str, depth: int) -> tuple[str, ...]:
    """Group paths ``depth`` levels below ``top`` (``"E"`` or ``"E/v"``), sorted."""
    if top not in _group_names(root):
        return ()
    paths = [""]
    for _ in range(depth):
        paths = [
            f"{prefix}{name}/"
            for prefix in paths
            for name in sorted(_group_names(_group(root, f"{top}/{prefix}")))
        ]
    return tuple(p.rstrip("/") for p in paths)


_TEMPORARY = "zarr.*.partial"
"""The name of the temporary file of a metadata document being replaced (zarr-python's LocalStore
and brainsim.recording.zarr_local)."""


def _group_names(group: zarr.Group) -> list[str]:
    """The names of ``group``'s subgroups. A run that is writing the store leaves short-lived
    temporary files beside the metadata it replaces (``zarr.<hex>.partial``); zarr warns that
    they are not part of the hierarchy and skips them, and so does a reader of a live store."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Object at .* is not recognized", category=ZarrUserWarning
        )
        return list(group.group_keys())


def _group(root: zarr.Group, path: str) -> zarr.Group:
    node = root[path.rstrip("/")]
    if not isinstance(node, zarr.Group):
        raise RecordingFormatError(f"{path} in the store is not a group")
    return node


def _read_array(root: zarr.Group, path: str, start: int = 0) -> npt.NDArray[Any]:
    """The array at ``path``, from index ``start`` of its first axis on."""
    if path not in root:
        raise RecordingFormatError(f"the store lacks the array {path}")
    node = root[path]
    if not isinstance(node, zarr.Array):
        raise RecordingFormatError(f"{path} in the store is not an array")
    if start:
        return np.asarray(node[start:]) if start < node.shape[0] else np.asarray(node[:0])
    return np.asarray(node[...])
