"""Zarr recordings (RECORDING.md): the recorder interface, the parallel writer and the reader.

The names below load their modules on first use, so that ``brainsim.recording.paths`` (what a
launcher needs) imports without zarr.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brainsim.recording.base import (
        Collectives,
        FinalStatus,
        IdsOf,
        PopulationInfo,
        RankResources,
        Recorder,
        ReportSpec,
        RunInfo,
        StimulusSpec,
        ValuesOf,
        WeightSpec,
    )
    from brainsim.recording.layout import FORMAT
    from brainsim.recording.paths import check_writable
    from brainsim.recording.reader import RecordingStore, SpikeTrains, open_store
    from brainsim.recording.writer import ZarrRecorder, mark_store_failed, settle_store

_HOME = {
    "Collectives": "base",
    "FinalStatus": "base",
    "IdsOf": "base",
    "PopulationInfo": "base",
    "RankResources": "base",
    "Recorder": "base",
    "ReportSpec": "base",
    "RunInfo": "base",
    "StimulusSpec": "base",
    "ValuesOf": "base",
    "WeightSpec": "base",
    "FORMAT": "layout",
    "check_writable": "paths",
    "RecordingStore": "reader",
    "SpikeTrains": "reader",
    "open_store": "reader",
    "ZarrRecorder": "writer",
    "mark_store_failed": "writer",
    "settle_store": "writer",
}

__all__ = [
    "FORMAT",
    "Collectives",
    "FinalStatus",
    "IdsOf",
    "PopulationInfo",
    "RankResources",
    "Recorder",
    "RecordingStore",
    "ReportSpec",
    "RunInfo",
    "SpikeTrains",
    "StimulusSpec",
    "ValuesOf",
    "WeightSpec",
    "ZarrRecorder",
    "check_writable",
    "mark_store_failed",
    "open_store",
    "settle_store",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
