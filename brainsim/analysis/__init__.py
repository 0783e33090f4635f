"""Analysis of recordings: open a store, population statistics, figures and export."""

from brainsim.analysis.recording import Recording, open_recording
from brainsim.analysis.stats import (
    CorrelationResult,
    PopulationStats,
    RateHistogram,
    cv_isi,
    fano_factor,
    firing_rates_hz,
    mean_cv_isi,
    population_rate,
    population_stats,
    spike_count_correlation,
)
from brainsim.recording import SpikeTrains

__all__ = [
    "CorrelationResult",
    "PopulationStats",
    "RateHistogram",
    "Recording",
    "SpikeTrains",
    "cv_isi",
    "fano_factor",
    "firing_rates_hz",
    "mean_cv_isi",
    "open_recording",
    "population_rate",
    "population_stats",
    "spike_count_correlation",
]
