"""Spike-train statistics of one population: rates, ISI CV, Fano factor, count correlations, PSTH.

The definitions are those of the NEST reference (``shared/reference/brunel_delta_nest.json``)
so that the engine's Brunel test can compare like with like:

- A window is half-open, ``t_start_ms <= t < t_stop_ms``; a spike within 1 ns of a boundary
  counts as on it (grid times such as ``2050 * 0.1`` carry float64 rounding).
- Firing rate of neuron i: ``n_i / T`` in Hz with ``T = (t_stop_ms - t_start_ms) / 1000`` s;
  population mean and standard deviation (ddof 0) over *all* neurons, silent ones included.
- ISI CV of neuron i: ``std(ISI_i) / mean(ISI_i)`` (ddof 0) over the intervals between its
  spikes in the window; the population value is the mean over neurons with >= 3 spikes.
- Fano factor: ``var(c) / mean(c)`` (ddof 0) of the population spike counts ``c`` in
  consecutive ``bin_ms`` bins from ``t_start_ms`` (5 ms by default; a last, partial bin is
  dropped).
- Spike-count correlation: Pearson correlation of the binned counts of pairs of neurons from a
  seeded sample of the neurons that fire in the window.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from brainsim.recording import SpikeTrains

__all__ = [
    "CorrelationResult",
    "PopulationStats",
    "RateHistogram",
    "cv_isi",
    "fano_factor",
    "firing_rates_hz",
    "mean_cv_isi",
    "population_rate",
    "population_stats",
    "spike_count_correlation",
]

_EDGE_TOLERANCE_MS = 1e-6
"""Spikes this close to a window or bin boundary count as on it (absorbs grid rounding)."""


@dataclass(frozen=True, slots=True)
class PopulationStats:
    """Summary statistics of one population in one window (see the module docstring)."""

    population: str
    n_neurons: int
    n_spikes: int
    """Spikes in the window."""
    t_start_ms: float
    t_stop_ms: float
    mean_rate_hz: float
    std_rate_hz: float
    cv_isi_mean: float
    """NaN when no neuron has >= 3 spikes in the window."""
    n_cv_neurons: int
    """Neurons that entered ``cv_isi_mean``."""
    fano_factor: float
    """NaN when the window holds no spikes or no complete bin."""
    bin_ms: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (NaN becomes ``None``)."""
        return {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in asdict(self).items()
        }


@dataclass(frozen=True, slots=True)
class RateHistogram:
    """Population rate (PSTH): ``rate_hz[k]`` is the mean rate per neuron in bin ``k``.

    Bin ``k`` spans ``[edges_ms[k], edges_ms[k + 1])``; ``counts[k]`` is its spike count.
    """

    edges_ms: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]
    rate_hz: npt.NDArray[np.float64]

    @property
    def centers_ms(self) -> npt.NDArray[np.float64]:
        return 0.5 * (self.edges_ms[:-1] + self.edges_ms[1:])


@dataclass(frozen=True, slots=True)
class CorrelationResult:
    """Pairwise spike-count correlations of a sample of neurons.

    ``matrix[i, j]`` correlates ``node_ids[i]`` with ``node_ids[j]``; ``mean`` is the mean over
    pairs ``i < j`` (NaN with fewer than two neurons).
    """

    node_ids: npt.NDArray[np.int64]
    matrix: npt.NDArray[np.float64]
    mean: float
    bin_ms: float


def _check_window(t_start_ms: float, t_stop_ms: float) -> None:
    if not t_stop_ms > t_start_ms:
        raise ValueError(
            f"the window needs t_stop_ms > t_start_ms, got [{t_start_ms}, {t_stop_ms})"
        )


def _in_window(
    spikes: SpikeTrains, t_start_ms: float, t_stop_ms: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The spikes in ``[t_start_ms, t_stop_ms)``, still sorted by time (a binary search)."""
    _check_window(t_start_ms, t_stop_ms)
    times = spikes.times_ms
    lo = int(np.searchsorted(times, t_start_ms - _EDGE_TOLERANCE_MS, side="left"))
    hi = int(np.searchsorted(times, t_stop_ms - _EDGE_TOLERANCE_MS, side="left"))
    return times[lo:hi], spikes.node_ids[lo:hi]


def _n_bins(t_start_ms: float, t_stop_ms: float, bin_ms: float) -> int:
    """Complete bins of ``bin_ms`` in the window (tolerant to rounding of the duration)."""
    if not bin_ms > 0:
        raise ValueError(f"bin_ms must be > 0, got {bin_ms}")
    return math.floor((t_stop_ms - t_start_ms) / bin_ms + 1e-9)


def _bin_index(
    times_ms: npt.NDArray[np.float64], t_start_ms: float, bin_ms: float
) -> npt.NDArray[np.int64]:
    return np.floor((times_ms - t_start_ms + _EDGE_TOLERANCE_MS) / bin_ms).astype(np.int64)


def firing_rates_hz(
    spikes: SpikeTrains, t_start_ms: float, t_stop_ms: float
) -> npt.NDArray[np.float64]:
    """Rate of every neuron of the population in the window, in Hz (length ``population_size``)."""
    _, ids = _in_window(spikes, t_start_ms, t_stop_ms)
    counts = np.bincount(ids, minlength=spikes.population_size)
    return counts / ((t_stop_ms - t_start_ms) / 1000.0)


def cv_isi(
    spikes: SpikeTrains, t_start_ms: float, t_stop_ms: float, *, min_spikes: int = 3
) -> npt.NDArray[np.float64]:
    """ISI coefficient of variation of every neuron; NaN where it has < ``min_spikes`` spikes."""
    if min_spikes < 2:
        raise ValueError("an ISI needs two spikes: min_spikes must be >= 2")
    times, ids = _in_window(spikes, t_start_ms, t_stop_ms)
    size = spikes.population_size
    order = np.argsort(ids, kind="stable")  # per neuron, spikes stay in time order
    times, ids = times[order], ids[order]
    same = ids[1:] == ids[:-1]
    isi = np.diff(times)[same]
    owner = ids[1:][same]
    n_isi = np.bincount(owner, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(owner, weights=isi, minlength=size) / n_isi
        var = np.bincount(owner, weights=(isi - mean[owner]) ** 2, minlength=size) / n_isi
        cv = np.sqrt(var) / mean
    cv[n_isi < min_spikes - 1] = np.nan
    return cv


def mean_cv_isi(
    spikes: SpikeTrains, t_start_ms: float, t_stop_ms: float, *, min_spikes: int = 3
) -> tuple[float, int]:
    """Mean ISI CV over neurons with >= ``min_spikes`` spikes, and how many there are."""
    cv = cv_isi(spikes, t_start_ms, t_stop_ms, min_spikes=min_spikes)
    valid = cv[~np.isnan(cv)]
    return (float(valid.mean()) if valid.size else math.nan), int(valid.size)


def population_rate(
    spikes: SpikeTrains, t_start_ms: float, t_stop_ms: float, *, bin_ms: float = 5.0
) -> RateHistogram:
    """PSTH of the population: spike counts per bin and the mean rate per neuron in Hz."""
    times, _ = _in_window(spikes, t_start_ms, t_stop_ms)
    n_bins = _n_bins(t_start_ms, t_stop_ms, bin_ms)
    index = _bin_index(times, t_start_ms, bin_ms)
    counts = np.bincount(index[index < n_bins], minlength=n_bins).astype(np.int64)
    edges = t_start_ms + bin_ms * np.arange(n_bins + 1, dtype=np.float64)
    rate = counts / (max(spikes.population_size, 1) * bin_ms / 1000.0)
    return RateHistogram(edges_ms=edges, counts=counts, rate_hz=rate)


def fano_factor(
    spikes: SpikeTrains, t_start_ms: float, t_stop_ms: float, *, bin_ms: float = 5.0
) -> float:
    """``var / mean`` (ddof 0) of the population spike count in ``bin_ms`` bins; NaN if empty."""
    counts = population_rate(spikes, t_start_ms, t_stop_ms, bin_ms=bin_ms).counts
    if counts.size == 0 or counts.sum() == 0:
        return math.nan
    return float(counts.var() / counts.mean())


def spike_count_correlation(
    spikes: SpikeTrains,
    t_start_ms: float,
    t_stop_ms: float,
    *,
    bin_ms: float = 5.0,
    n_sample: int = 100,
    seed: int = 0,
) -> CorrelationResult:
    """Pearson correlation of binned spike counts on a seeded sample of firing neurons.

    Up to ``n_sample`` neurons are drawn without replacement (``numpy.random.default_rng(seed)``)
    from those with a spike in the window; neurons whose binned count never varies are
    dropped, since their correlation is undefined.
    """
    times, ids = _in_window(spikes, t_start_ms, t_stop_ms)
    n_bins = _n_bins(t_start_ms, t_stop_ms, bin_ms)
    if n_bins == 0:
        raise ValueError(f"the window is shorter than one {bin_ms} ms bin")
    active = np.unique(ids)
    rng = np.random.default_rng(seed)
    picked = rng.choice(active.size, size=min(n_sample, active.size), replace=False)
    sample = np.sort(active[picked])
    row_of = np.full(spikes.population_size, -1, dtype=np.int64)
    row_of[sample] = np.arange(sample.size)
    bins = _bin_index(times, t_start_ms, bin_ms)
    keep = (row_of[ids] >= 0) & (bins < n_bins)
    flat = row_of[ids[keep]] * n_bins + bins[keep]
    counts = np.bincount(flat, minlength=sample.size * n_bins).reshape(sample.size, n_bins)
    centred = counts - counts.mean(axis=1, keepdims=True)
    std = np.sqrt((centred**2).mean(axis=1))
    varies = std > 0
    centred, std, sample = centred[varies], std[varies], sample[varies]
    matrix = (centred @ centred.T) / n_bins / np.outer(std, std)
    upper = matrix[np.triu_indices(sample.size, k=1)]
    mean = float(upper.mean()) if upper.size else math.nan
    return CorrelationResult(node_ids=sample, matrix=matrix, mean=mean, bin_ms=bin_ms)


def population_stats(
    spikes: SpikeTrains, t_start_ms: float, t_stop_ms: float, *, bin_ms: float = 5.0
) -> PopulationStats:
    """Neurons, spikes, mean/std rate, mean ISI CV and Fano factor of one population."""
    rates = firing_rates_hz(spikes, t_start_ms, t_stop_ms)
    cv, n_cv = mean_cv_isi(spikes, t_start_ms, t_stop_ms)
    times, _ = _in_window(spikes, t_start_ms, t_stop_ms)
    return PopulationStats(
        population=spikes.population,
        n_neurons=spikes.population_size,
        n_spikes=int(times.size),
        t_start_ms=float(t_start_ms),
        t_stop_ms=float(t_stop_ms),
        mean_rate_hz=float(rates.mean()) if rates.size else math.nan,
        std_rate_hz=float(rates.std()) if rates.size else math.nan,
        cv_isi_mean=cv,
        n_cv_neurons=n_cv,
        fano_factor=fano_factor(spikes, t_start_ms, t_stop_ms, bin_ms=bin_ms),
        bin_ms=float(bin_ms),
    )
