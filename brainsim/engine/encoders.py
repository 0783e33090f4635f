"""Codes of the data-driven stimuli: when samples are shown, latency-coded spike steps, the
expected counts of rate and population codes, and the events of delta codes.

All are pure functions of the circuit (never of the rank), evaluated by every rank for all of a
stimulus' targets before it keeps its own, so a latency code normalized over a sample's
features sees the same features on every rank.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import (
    Circuit,
    LatencyStimulus,
    PopulationStimulus,
    RateStimulus,
    SampleSchedule,
    SampleStimulus,
    StimulusData,
)
from brainsim.recording.base import StimulusSpec

__all__ = [
    "LATENCY_EPSILON",
    "delta_events",
    "encoder_values",
    "latency_steps",
    "population_probabilities",
    "presentation_specs",
    "presentations",
    "rate_probabilities",
    "tuning_centres",
]

LATENCY_EPSILON = 1e-7
"""What the logarithmic latency code adds to ``threshold`` as the smallest input (snnTorch's
``epsilon``)."""

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def encoder_values(data: StimulusData, features: tuple[int, ...] | None) -> Float64Array:
    """``[n_samples, n_targets]``: column ``i`` is what target neuron ``i`` reads."""
    if features is None:
        return data.values
    return np.ascontiguousarray(data.values[:, list(features)])


def presentations(
    schedule: SampleSchedule, n_samples: int, dt_ms: float, n_steps: int
) -> tuple[Int64Array, Int64Array, int]:
    """``(onset_steps, samples, window_steps)`` of the presentations that begin before step
    ``n_steps``: presentation ``k`` shows sample ``samples[k]`` in steps
    ``onset_steps[k] .. onset_steps[k] + window_steps - 1``, with
    ``onset_steps[k] = round(start_ms / dt) + k (window_steps + rest_steps)``."""
    order = (
        np.arange(n_samples, dtype=np.int64)
        if schedule.order is None
        else np.asarray(schedule.order, dtype=np.int64)
    )
    window = round(schedule.present_ms / dt_ms)
    period = window + round(schedule.rest_ms / dt_ms)
    first = round(schedule.start_ms / dt_ms)
    shown = 0 if first >= n_steps else min(order.shape[0], (n_steps - first - 1) // period + 1)
    onsets = first + period * np.arange(shown, dtype=np.int64)
    return onsets, order[:shown].copy(), window


def presentation_specs(circuit: Circuit) -> tuple[StimulusSpec, ...]:
    """When each sample-schedule stimulus shows which sample, for the recording, in the
    circuit's order: onsets ``onset_step * dt_ms`` (ms, float64, as spike times are stamped)."""
    dt = circuit.simulation.dt_ms
    specs: list[StimulusSpec] = []
    for name, stimulus in circuit.stimuli.items():
        if not isinstance(stimulus, SampleStimulus):
            continue
        onsets, samples, _ = presentations(
            stimulus.schedule, stimulus.data.n_samples, dt, circuit.n_steps
        )
        specs.append(
            StimulusSpec(
                name=name,
                type=stimulus.type,
                present_ms=stimulus.schedule.present_ms,
                rest_ms=stimulus.schedule.rest_ms,
                onsets_ms=onsets.astype(np.float64) * dt,
                sample_index=samples,
            )
        )
    return tuple(specs)


def latency_steps(
    x: Float64Array, stimulus: LatencyStimulus, dt_ms: float, window_steps: int
) -> Int64Array:
    """The step of each input's spike after its sample's onset (-1: no spike), for ``x`` of
    shape ``[n_samples, n_targets]``, with snnTorch's ``spikegen.latency`` definitions in
    steps of ``dt_ms`` (``tau = tau_ms / dt_ms``, ``N = window_steps``):

    - logarithmic: ``t = tau ln(x' / (x' - threshold))``, ``x' = max(x, threshold + 1e-7)``;
      ``normalize``: ``t <- t (N - 1) / max(t)``, the maximum over the sample's inputs;
    - linear: ``t = min(-tau (x - 1), -tau (threshold - 1))``; ``normalize``: ``tau = N - 1``;
    - the spike is at ``round(t)`` (half to even, as ``torch.round``), moved to ``N - 1`` when
      later; with ``clip``, inputs below ``threshold`` do not fire.
    """
    tau = stimulus.tau_ms / dt_ms
    threshold = stimulus.threshold
    last = window_steps - 1
    if stimulus.linear:
        if stimulus.normalize:
            tau = float(last)
        t = np.minimum(-tau * (x - 1.0), -tau * (threshold - 1.0))
    else:
        raised = np.maximum(x, threshold + LATENCY_EPSILON)
        t = tau * np.log(raised / (raised - threshold))
        if stimulus.normalize:
            t = t * last / np.max(t, axis=1, keepdims=True)
    steps = np.minimum(np.rint(t), last).astype(np.int64)
    if stimulus.clip:
        steps[x < threshold] = -1
    return steps


def rate_probabilities(stimulus: RateStimulus, x: Float64Array, dt_ms: float) -> Float64Array:
    """Spikes expected per step: ``max_rate_hz clip(x gain + offset, 0, 1) dt_ms / 1000``."""
    scaled = np.clip(x * stimulus.gain + stimulus.offset, 0.0, 1.0)
    return np.ascontiguousarray(stimulus.max_rate_hz * scaled * dt_ms / 1000.0)


def tuning_centres(stimulus: PopulationStimulus) -> Float64Array:
    """The centres of one feature's ``n`` tuning curves, evenly over ``[low, high]``:
    ``c_j = low + j (high - low) / (n - 1)``, computed as ``low (1 - t) + high t`` with
    ``t = j / (n - 1)`` so that the ends are ``low`` and ``high`` exactly."""
    t = np.arange(stimulus.n_neurons_per_feature, dtype=np.float64)
    t /= stimulus.n_neurons_per_feature - 1
    return stimulus.low * (1.0 - t) + stimulus.high * t


def population_probabilities(
    stimulus: PopulationStimulus, x: Float64Array, dt_ms: float, index: Int64Array
) -> Float64Array:
    """Spikes expected per step of the target neurons ``index``, ``[n_samples, len(index)]``,
    for ``x`` of shape ``[n_samples, n_features]``. Target ``i = f n + j`` is neuron ``j`` of
    feature ``f`` (feature-major): ``max_rate_hz exp(-(x_f - c_j)^2 / (2 sigma^2)) dt_ms /
    1000`` with the centres ``c_j`` of :func:`tuning_centres`."""
    n = stimulus.n_neurons_per_feature
    distance = x[:, index // n] - tuning_centres(stimulus)[index % n]
    rate_hz = stimulus.max_rate_hz * np.exp(-(distance * distance) / (2.0 * stimulus.sigma**2))
    return np.ascontiguousarray(rate_hz * dt_ms / 1000.0)


def delta_events(
    x: Float64Array, threshold: float, *, padding: bool
) -> tuple[BoolArray, BoolArray]:
    """``(rises, falls)``, both ``[n_rows, n_features]``, of the time series ``x`` with
    snnTorch's ``spikegen.delta`` definitions: the change of row ``k`` is ``x_k - x_{k-1}``,
    row ``-1`` being zeros (or row 0 itself with ``padding``, so that row 0 has no event); a
    rise is a change ``>= threshold``, a fall one ``<= -threshold``."""
    first = x[:1] if padding else np.zeros_like(x[:1])
    change = x - np.concatenate([first, x[:-1]])
    return change >= threshold, change <= -threshold
