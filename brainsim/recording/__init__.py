"""Zarr recordings (RECORDING.md): the recorder interface, the parallel writer and the reader."""

from brainsim.recording.base import (
    Collectives,
    FinalStatus,
    PopulationInfo,
    Recorder,
    ReportSpec,
    RunInfo,
)
from brainsim.recording.layout import FORMAT
from brainsim.recording.reader import RecordingStore, SpikeTrains, open_store
from brainsim.recording.writer import ZarrRecorder, check_writable, mark_store_failed

__all__ = [
    "FORMAT",
    "Collectives",
    "FinalStatus",
    "PopulationInfo",
    "Recorder",
    "RecordingStore",
    "ReportSpec",
    "RunInfo",
    "SpikeTrains",
    "ZarrRecorder",
    "check_writable",
    "mark_store_failed",
    "open_store",
]
