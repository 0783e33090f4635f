"""Export a recording's spikes to NWB (pynwb Units table) and Neo (SpikeTrains for Elephant).

Both need the optional extra ``nwb`` (``pip install -e ".[nwb]"``: pynwb, neo, quantities).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from brainsim.analysis.recording import Recording

__all__ = ["to_neo", "to_nwb"]


def _optional(module: str) -> Any:
    try:
        return import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"exporting needs {module}; install the extra: pip install -e '.[nwb]'"
        ) from exc


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


def to_nwb(recording: Recording, path: str | os.PathLike[str]) -> Path:
    """Write the spikes to an NWB file: one unit per neuron that fired, times in seconds.

    The Units table has the columns ``population``, ``node_id`` (index in the population) and
    ``gid`` (``gid_offset + node_id``); units are ordered by population, then node id. An
    existing file at ``path`` is refused.
    """
    pynwb = _optional("pynwb")
    out = Path(path)
    if out.exists():
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
    with pynwb.NWBHDF5IO(str(out), "w") as io:
        io.write(nwbfile)
    return out


def to_neo(recording: Recording) -> Any:
    """A ``neo.Block`` with one Segment holding a SpikeTrain (ms) for every neuron.

    Silent neurons get empty trains so rates computed from the Block count them. Trains span
    ``[0, simulated_ms]``; each is annotated with ``population`` and ``node_id`` and belongs to
    the ``neo.Group`` named after its population.
    """
    neo = _optional("neo")
    quantities = _optional("quantities")
    block = neo.Block(name=str(recording.path.name), circuit_sha256=recording.circuit_sha256)
    segment = neo.Segment(name="run")
    block.segments.append(segment)
    for population in recording.spike_populations:
        spikes = recording.spikes(population)
        t_stop = max(recording.simulated_ms, float(spikes.times_ms.max(initial=0.0)))
        order = np.argsort(spikes.node_ids, kind="stable")
        counts = np.bincount(spikes.node_ids, minlength=spikes.population_size)
        per_neuron = np.split(spikes.times_ms[order], np.cumsum(counts)[:-1])
        group = neo.Group(name=population)
        for node, times in enumerate(per_neuron):
            train = neo.SpikeTrain(
                times,
                units=quantities.ms,
                t_start=0.0 * quantities.ms,
                t_stop=t_stop * quantities.ms,
                name=f"{population}[{node}]",
                population=population,
                node_id=node,
            )
            segment.spiketrains.append(train)
            group.add(train)
        block.groups.append(group)
    return block
