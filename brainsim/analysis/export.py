"""Export a recording's spikes to NWB (pynwb Units table) and Neo (SpikeTrains for Elephant).

Both need the optional extra ``nwb`` (``pip install -e ".[nwb]"``: pynwb, neo, quantities);
without it they raise :class:`MissingExtraError`, which names the missing module and the pip
command. ``brainsim export STORE --to nwb|neo -o FILE`` is the command line for both.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any, Literal

import numpy as np

from brainsim.analysis.recording import Recording
from brainsim.errors import BrainsimError

__all__ = [
    "EXPORT_FORMATS",
    "NEO_SUFFIXES",
    "MissingExtraError",
    "check_export_path",
    "export_recording",
    "require_extra",
    "to_neo",
    "to_nwb",
    "write_neo",
]

ExportFormat = Literal["nwb", "neo"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("nwb", "neo")

EXTRA_INSTALL = 'pip install -e ".[nwb]"'
"""How to install the ``nwb`` extra from a brainsim checkout (its root directory)."""

NEO_SUFFIXES: dict[str, tuple[str, tuple[str, ...]]] = {
    ".pkl": ("PickleIO", ()),
    ".pickle": ("PickleIO", ()),
    ".mat": ("NeoMatlabIO", ("scipy",)),
}
"""The files ``brainsim export --to neo`` writes, by extension: the Neo IO that writes it and
the modules it needs besides neo. A pickle (``neo.io.PickleIO``) needs nothing more and keeps
everything (annotations, groups) but only loads with a compatible neo and runs code when
loaded; a MATLAB file (``neo.io.NeoMatlabIO``, needs scipy) is safe to open and readable
without neo (``scipy.io.loadmat``), and keeps the annotations and groups too."""

_SUFFIXES: dict[ExportFormat, tuple[str, ...]] = {"nwb": (".nwb",), "neo": tuple(NEO_SUFFIXES)}


class MissingExtraError(BrainsimError, ImportError):
    """An export needs a module that is not installed (an ImportError, as before there was
    this class); the message names the module, the extra that brings it and the pip command."""


def require_extra(module: str, purpose: str = "exporting") -> Any:
    """Import ``module`` of the ``nwb`` extra (or scipy, which neo's MATLAB writer needs), or
    raise :class:`MissingExtraError` saying how to install it."""
    try:
        return import_module(module)
    except ImportError as exc:
        if module == "scipy":
            how = "pip install scipy (it comes with brainsim's dev extra)"
        else:
            how = f"install brainsim's nwb extra (pynwb, neo, quantities): {EXTRA_INSTALL}"
        raise MissingExtraError(
            f"{purpose} needs the Python package {module.partition('.')[0]}, which is not "
            f"installed ({type(exc).__name__}: {exc}); {how}"
        ) from exc


def check_export_path(
    path: str | os.PathLike[str], to: ExportFormat, *, overwrite: bool = False
) -> Path:
    """``path`` as an export of format ``to``: its extension must be one the format writes
    (``.nwb``; for neo ``.pkl``/``.pickle`` or ``.mat``) and it must not exist unless
    ``overwrite`` (a directory is always refused). Raises ValueError or FileExistsError."""
    if to not in _SUFFIXES:
        raise ValueError(f"unknown export format {to!r}; use one of {', '.join(EXPORT_FORMATS)}")
    out = Path(path)
    if out.suffix.lower() not in _SUFFIXES[to]:
        raise ValueError(
            f"{to} output {out} must end in {' or '.join(_SUFFIXES[to])}"
            + (
                " (.pkl: neo.io.PickleIO; .mat: neo.io.NeoMatlabIO, needs scipy)"
                if to == "neo"
                else ""
            )
        )
    if out.is_dir():
        raise FileExistsError(f"{out} is a directory; refusing to replace it")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; refusing to overwrite it")
    return out


def _write_atomically(out: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write`` on a temporary file beside ``out``, then rename it to ``out``: a failed
    export leaves no partial file, and a replaced file is whole until the new one is."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # The writer creates the file (not mkstemp), so it gets the permissions of any new file.
    temporary = out.with_name(f".{out.stem}.{os.getpid()}-{secrets.token_hex(4)}{out.suffix}")
    try:
        write(temporary)
        os.replace(temporary, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return out


def _start_time(recording: Recording) -> datetime:
    """The run's start (provenance ``start_time``), or the Unix epoch when it is unknown."""
    text = recording.provenance.get("start_time")
    if isinstance(text, str):
        try:
            started = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return started if started.tzinfo else started.replace(tzinfo=UTC)
    return datetime.fromtimestamp(0, tz=UTC)


def to_nwb(recording: Recording, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write the spikes to an NWB file: one unit per neuron that fired, times in seconds.

    The Units table has the columns ``population``, ``node_id`` (index in the population) and
    ``gid`` (``gid_offset + node_id``); units are ordered by population, then node id. An
    existing file at ``path`` is refused unless ``overwrite``; the file appears whole or not
    at all.
    """
    pynwb = require_extra("pynwb", "exporting to NWB")
    out = Path(path)
    if out.is_dir() or (out.exists() and not overwrite):
        raise FileExistsError(f"{out} exists; refusing to overwrite it")
    nwbfile = pynwb.NWBFile(
        session_description=f"brainsim simulation, circuit {recording.circuit.get('name', '?')}",
        identifier=f"brainsim-{recording.circuit_sha256[:16]}-seed{recording.seed}",
        session_start_time=_start_time(recording),
        source_script="brainsim",
        source_script_file_name=str(recording.path),
    )
    nwbfile.add_unit_column(name="population", description="brainsim population name")
    nwbfile.add_unit_column(name="node_id", description="neuron index within the population")
    nwbfile.add_unit_column(name="gid", description="global neuron id (gid_offset + node_id)")
    for population in recording.spike_populations:
        spikes = recording.spikes(population)
        offset = recording.populations[population].gid_offset
        order = np.argsort(spikes.node_ids, kind="stable")
        ids, times_s = spikes.node_ids[order], spikes.times_ms[order] / 1000.0
        neurons, starts = np.unique(ids, return_index=True)
        for node, trains in zip(neurons, np.split(times_s, starts[1:]), strict=True):
            nwbfile.add_unit(
                spike_times=trains,
                population=population,
                node_id=int(node),
                gid=offset + int(node),
            )

    def write(temporary: Path) -> None:
        with pynwb.NWBHDF5IO(str(temporary), "w") as io:
            io.write(nwbfile)

    return _write_atomically(out, write)


def to_neo(recording: Recording) -> Any:
    """A ``neo.Block`` with one Segment holding a SpikeTrain (ms) for every neuron.

    Silent neurons get empty trains so rates computed from the Block count them. Trains span
    ``[0, simulated_ms]``; each is annotated with ``population`` and ``node_id`` and belongs to
    the ``neo.Group`` named after its population.

    The lists are handed to neo whole: appending one train at a time makes neo check it
    against every train already there, quadratic in the number of neurons (for Brunel's 12,500
    trains, 80 % of the export's time; for the 77,000 of Potjans and Diesmann's circuit, minutes).
    """
    neo = require_extra("neo", "exporting to Neo")
    quantities = require_extra("quantities", "exporting to Neo")
    train_list = require_extra("neo.core.spiketrainlist", "exporting to Neo").SpikeTrainList
    block = neo.Block(name=str(recording.path.name), circuit_sha256=recording.circuit_sha256)
    segment = neo.Segment(name="run")
    block.segments.append(segment)
    every: list[Any] = []
    for population in recording.spike_populations:
        spikes = recording.spikes(population)
        t_stop = max(recording.simulated_ms, float(spikes.times_ms.max(initial=0.0)))
        order = np.argsort(spikes.node_ids, kind="stable")
        counts = np.bincount(spikes.node_ids, minlength=spikes.population_size)
        per_neuron = np.split(spikes.times_ms[order], np.cumsum(counts)[:-1])
        trains = [
            neo.SpikeTrain(
                times,
                units=quantities.ms,
                t_start=0.0 * quantities.ms,
                t_stop=t_stop * quantities.ms,
                name=f"{population}[{node}]",
                population=population,
                node_id=node,
            )
            for node, times in enumerate(per_neuron)
        ]
        group = neo.Group(name=population)
        group.spiketrains = train_list(items=trains)
        block.groups.append(group)
        every.extend(trains)
    for train in every:
        train.segment = segment  # what segment.spiketrains.append sets
    segment.spiketrains = train_list(items=every, parent=segment)
    return block


def write_neo(
    recording: Recording, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write :func:`to_neo`'s Block to a file that neo reads back, in the format the extension
    names (:data:`NEO_SUFFIXES`): ``.pkl``/``.pickle`` with ``neo.io.PickleIO``, ``.mat`` with
    ``neo.io.NeoMatlabIO`` (needs scipy). Read it with the same IO class:
    ``neo.io.PickleIO(path).read_block()``. An existing file is refused unless ``overwrite``;
    the file appears whole or not at all.
    """
    out = check_export_path(path, "neo", overwrite=overwrite)
    io_name, needs = NEO_SUFFIXES[out.suffix.lower()]
    for module in ("neo", "quantities"):
        require_extra(module, "exporting to Neo")
    neo_io = require_extra("neo.io", "exporting to Neo")
    for module in needs:
        require_extra(module, f"writing Neo's {out.suffix} files ({io_name})")
    block = to_neo(recording)

    def write(temporary: Path) -> None:
        getattr(neo_io, io_name)(str(temporary)).write_block(block)

    return _write_atomically(out, write)


def export_recording(
    recording: Recording,
    path: str | os.PathLike[str],
    to: ExportFormat,
    *,
    overwrite: bool = False,
) -> Path:
    """Export ``recording``'s spikes to ``path`` as ``to`` (``nwb``: :func:`to_nwb`; ``neo``:
    :func:`write_neo`); what ``brainsim export`` runs."""
    out = check_export_path(path, to, overwrite=overwrite)
    if to == "nwb":
        return to_nwb(recording, out, overwrite=overwrite)
    return write_neo(recording, out, overwrite=overwrite)
