"""The user's handle on a recording: the store's contents plus population statistics."""

from __future__ import annotations

import os
from dataclasses import dataclass

from brainsim.analysis.stats import PopulationStats, population_stats
from brainsim.recording import RecordingStore

__all__ = ["Recording", "open_recording"]


@dataclass(frozen=True, slots=True)
class Recording(RecordingStore):
    """A recording opened for analysis (everything :class:`RecordingStore` gives, and stats).

    ``spikes(population)`` gives numpy arrays, ``report(population, variable)`` an xarray
    DataArray ``(time, node_ids)``; ``circuit``, ``provenance``, ``status`` and ``populations``
    come from the root metadata.
    """

    def window(
        self, t_start_ms: float | None = None, t_stop_ms: float | None = None
    ) -> tuple[float, float]:
        """The analysis window, defaulting to everything recorded: ``[0, simulated_ms)``."""
        start = 0.0 if t_start_ms is None else float(t_start_ms)
        stop = self.simulated_ms if t_stop_ms is None else float(t_stop_ms)
        if not stop > start:
            raise ValueError(
                f"empty analysis window [{start}, {stop}) ms "
                f"(the store has {self.simulated_ms} ms simulated)"
            )
        return start, stop

    def stats(
        self,
        t_start_ms: float | None = None,
        t_stop_ms: float | None = None,
        *,
        bin_ms: float = 5.0,
    ) -> dict[str, PopulationStats]:
        """Summary statistics of every recorded spike population in the window."""
        start, stop = self.window(t_start_ms, t_stop_ms)
        return {
            population: population_stats(self.spikes(population), start, stop, bin_ms=bin_ms)
            for population in self.spike_populations
        }


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Open the recording at ``path`` for analysis; a bad path raises RecordingFormatError."""
    return Recording.open(path)
