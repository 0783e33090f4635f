"""Build and check the records of data-driven stimuli: ``rate``, ``latency``, ``population``,
``delta``, ``spike_trains``.

:mod:`brainsim.circuit.build` calls :func:`build_data_stimulus` for these kinds with what it has
already checked (targets, weight, delay). This module reads the data (:mod:`.data`) and checks
what needs them: the features against the number of target neurons, the sample order against
the number of samples, the presentation window (or the time series' step) against ``dt_ms``,
the value ranges each encoder accepts and the spike trains' target indices and times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from brainsim.circuit.data import first_index, load_encoder_data, load_spike_trains
from brainsim.circuit.grid import check_grid_time, is_multiple
from brainsim.circuit.problems import Path, ProblemLog
from brainsim.circuit.spec import (
    DeltaStimulus,
    LatencyStimulus,
    PopulationStimulus,
    RateStimulus,
    SampleSchedule,
    SpikeTrains,
    Stimulus,
    StimulusData,
    Target,
    Value,
)

__all__ = ["DATA_STIMULI", "build_data_stimulus"]

DATA_STIMULI = ("rate", "latency", "population", "delta", "spike_trains")
"""Stimulus types that read ``data``."""


def build_data_stimulus(
    name: str,
    data: Mapping[str, Any],
    path: Path,
    *,
    targets: tuple[Target, ...],
    n_targets: int | None,
    weight: Value | None,
    delay_ms: float | None,
    dt_ms: float | None,
    base_dir: str | None,
    log: ProblemLog,
    targets_off: tuple[Target, ...] = (),
    n_targets_off: int | None = None,
) -> Stimulus | None:
    """The record of stimulus ``name`` (of a type in :data:`DATA_STIMULI`), or ``None`` with
    every problem logged. ``n_targets`` is the number of target neurons (``None``: unknown,
    as a target is invalid), ``weight`` and ``delay_ms`` ``None`` when they are invalid;
    ``targets_off`` and ``n_targets_off`` the same for a delta encoder's ``targets_off``."""
    where: Path = (*path, "data")
    kind = data["type"]
    loaded: StimulusData | None = None
    if "data" in data and log.is_clean(where):
        if kind == "spike_trains":
            loaded = load_spike_trains(data["data"], base_dir, log, where)
        else:
            loaded = load_encoder_data(data["data"], base_dir, log, where)
    if kind == "spike_trains":
        if loaded is not None and n_targets is not None:
            _check_trains(loaded, data["data"], n_targets, log, where)
        if loaded is None or weight is None or delay_ms is None or not log.is_clean(path):
            return None
        return SpikeTrains(
            name=name, targets=targets, data=loaded, weight=weight, delay_ms=delay_ms
        )
    per_feature = _per_feature(data, log, path)
    features = _features(data, loaded, n_targets, per_feature, log, path)
    if kind == "delta":
        return _delta(
            name, data, path, loaded, features, targets, n_targets, targets_off, n_targets_off,
            weight, delay_ms, dt_ms, log,
        )  # fmt: skip
    schedule = _schedule(data, loaded, dt_ms, log, path)
    if loaded is not None and log.is_clean((*path, "features")):
        values = loaded.values if features is None else loaded.values[:, list(features)]
        _check_range(data, values, log, where, dt_ms)
    if kind == "population":
        _check_interval(data, log, path)
    if (
        loaded is None
        or schedule is None
        or weight is None
        or delay_ms is None
        or not log.is_clean(path)
    ):
        return None
    common: dict[str, Any] = {
        "name": name, "targets": targets, "data": loaded, "schedule": schedule,
        "weight": weight, "delay_ms": delay_ms, "features": features,
        "max_rate_hz": float(data.get("max_rate_hz", 0.0)),
    }  # fmt: skip
    if kind == "rate":
        return RateStimulus(
            **common,
            gain=float(data.get("gain", 1.0)),
            offset=float(data.get("offset", 0.0)),
            mode=data.get("mode", "bernoulli"),
        )
    if kind == "population":
        assert per_feature is not None
        return PopulationStimulus(
            **common,
            n_neurons_per_feature=per_feature,
            sigma=float(data["sigma"]),
            low=float(data.get("low", 0.0)),
            high=float(data.get("high", 1.0)),
        )
    del common["max_rate_hz"]
    return LatencyStimulus(
        **common,
        tau_ms=float(data["tau_ms"]),
        threshold=float(data.get("threshold", 0.01)),
        linear=bool(data.get("linear", False)),
        normalize=bool(data.get("normalize", False)),
        clip=bool(data.get("clip", False)),
    )


def _per_feature(data: Mapping[str, Any], log: ProblemLog, path: Path) -> int | None:
    """Target neurons per feature: ``n_neurons_per_feature`` of a population code, else 1
    (``None`` when it is invalid)."""
    if data["type"] != "population":
        return 1
    key = (*path, "n_neurons_per_feature")
    if "n_neurons_per_feature" not in data or not log.is_clean(key):
        return None
    return int(data["n_neurons_per_feature"])


def _check_interval(data: Mapping[str, Any], log: ProblemLog, path: Path) -> None:
    """A population code's centres span ``[low, high]``, which must not be empty."""
    if not (log.is_clean((*path, "low")) and log.is_clean((*path, "high"))):
        return
    low, high = float(data.get("low", 0.0)), float(data.get("high", 1.0))
    if not high > low:
        log.add((*path, "high"), f"must be > low ({low}), got {high}")


def _delta(
    name: str,
    data: Mapping[str, Any],
    path: Path,
    loaded: StimulusData | None,
    features: tuple[int, ...] | None,
    targets: tuple[Target, ...],
    n_targets: int | None,
    targets_off: tuple[Target, ...],
    n_targets_off: int | None,
    weight: Value | None,
    delay_ms: float | None,
    dt_ms: float | None,
    log: ProblemLog,
) -> DeltaStimulus | None:
    """A delta encoder: its time step on the grid, ``targets_off`` exactly with ``off_spikes``
    and as many neurons there as in ``targets``."""
    off_spikes = bool(data.get("off_spikes", False))
    where_off: Path = (*path, "targets_off")
    if off_spikes and "targets_off" not in data:
        log.add(where_off, "required when off_spikes is true: the neurons that falls drive")
    elif not off_spikes and "targets_off" in data:
        log.add(where_off, "only with off_spikes: true (without it, falls send no spikes)")
    elif off_spikes and n_targets_off not in (None, n_targets) and n_targets is not None:
        log.add(
            where_off,
            f"hold {n_targets_off} neurons but targets hold {n_targets}; target neuron i of "
            "targets_off receives the falls of the feature that target neuron i reads",
        )
    step_ms: float | None = None
    if "step_ms" in data and log.is_clean((*path, "step_ms")):
        step_ms = float(data["step_ms"])
        if dt_ms is not None:
            check_grid_time(log, (*path, "step_ms"), step_ms, dt_ms)
    if (
        loaded is None
        or step_ms is None
        or weight is None
        or delay_ms is None
        or not log.is_clean(path)
    ):
        return None
    return DeltaStimulus(
        name=name,
        targets=targets,
        data=loaded,
        step_ms=step_ms,
        weight=weight,
        delay_ms=delay_ms,
        features=features,
        start_ms=float(data.get("start_ms", 0.0)),
        threshold=float(data.get("threshold", 0.1)),
        padding=bool(data.get("padding", False)),
        off_spikes=off_spikes,
        targets_off=targets_off,
    )


def _features(
    data: Mapping[str, Any],
    loaded: StimulusData | None,
    n_targets: int | None,
    per_feature: int | None,
    log: ProblemLog,
    path: Path,
) -> tuple[int, ...] | None:
    """The chosen columns (``None``: all), checked against the data and the targets,
    ``per_feature`` target neurons per feature (``None``: unknown)."""
    features: tuple[int, ...] | None = None
    if "features" in data and log.is_clean((*path, "features")):
        features = tuple(int(index) for index in data["features"])
    if loaded is None:
        return features
    n_columns = int(loaded.values.shape[1])
    if features is not None:
        for index, column in enumerate(features):
            if column >= n_columns:
                log.add(
                    (*path, "features", index),
                    f"must be < {n_columns}, the number of features (columns) of the data; "
                    f"got {column}",
                )
    n_features = n_columns if features is None else len(features)
    if n_targets is None or per_feature is None or n_features * per_feature == n_targets:
        return features
    if per_feature == 1:
        reads = "each target neuron reads one feature"
    else:
        reads = (
            f"each feature is read by n_neurons_per_feature ({per_feature}) target neurons, "
            f"so the targets must hold {n_features} * {per_feature} = "
            f"{n_features * per_feature}"
        )
    if features is None:
        pick = (
            ""
            if n_targets % per_feature
            else f" (give features: [...] to pick {n_targets // per_feature})"
        )
        log.add(
            (*path, "data"),
            f"has {n_columns} features (columns) but the targets hold {n_targets} neurons; "
            f"{reads}{pick}",
        )
    else:
        log.add(
            (*path, "features"),
            f"picks {len(features)} features but the targets hold {n_targets} neurons; {reads}",
        )
    return features


def _schedule(
    data: Mapping[str, Any],
    loaded: StimulusData | None,
    dt_ms: float | None,
    log: ProblemLog,
    path: Path,
) -> SampleSchedule | None:
    """When the samples are shown; windows on the grid of ``dt_ms``, indices in the data."""
    order: tuple[int, ...] | None = None
    if "order" in data and log.is_clean((*path, "order")):
        order = tuple(int(index) for index in data["order"])
        if loaded is not None:
            for index, sample in enumerate(order):
                if sample >= loaded.n_samples:
                    log.add(
                        (*path, "order", index),
                        f"must be < {loaded.n_samples}, the number of samples; got {sample}",
                    )
    times: dict[str, float] = {}
    for key in ("start_ms", "present_ms", "rest_ms"):
        if key in data and log.is_clean((*path, key)):
            times[key] = float(data[key])
    if dt_ms is not None:
        if "present_ms" in times:
            check_grid_time(log, (*path, "present_ms"), times["present_ms"], dt_ms)
        if "rest_ms" in times and not is_multiple(times["rest_ms"], dt_ms):
            log.add(
                (*path, "rest_ms"), f"must be a multiple of dt_ms ({dt_ms}), got {times['rest_ms']}"
            )
    if "present_ms" not in times or not log.is_clean(path):
        return None
    return SampleSchedule(
        start_ms=times.get("start_ms", 0.0),
        present_ms=times["present_ms"],
        rest_ms=times.get("rest_ms", 0.0),
        order=order,
    )


def _check_range(
    data: Mapping[str, Any],
    values: np.ndarray[Any, np.dtype[np.float64]],
    log: ProblemLog,
    where: Path,
    dt_ms: float | None,
) -> None:
    """Rate data are >= 0, latency data in [0, 1]; a Bernoulli rate is a probability per step.
    Population codes take any finite values."""
    if data["type"] == "rate":
        negative = values < 0
        if negative.any():
            sample, feature = first_index(negative)
            log.add(
                where,
                f"rate data must be >= 0 (intensities that gain and offset scale); found "
                f"{values[sample, feature]} at sample {sample}, feature {feature}",
            )
        if (
            dt_ms is not None
            and data.get("mode", "bernoulli") == "bernoulli"
            and "max_rate_hz" in data
            and log.is_clean((*where[:-1], "max_rate_hz"))
        ):
            p = float(data["max_rate_hz"]) * dt_ms / 1000.0
            if p > 1.0:
                log.add(
                    (*where[:-1], "max_rate_hz"),
                    f"with mode bernoulli, max_rate_hz * dt_ms / 1000 is a spike probability "
                    f"per step and must be <= 1; got {p:g} (at most {1000.0 / dt_ms:g} Hz, or "
                    "use mode: poisson)",
                )
        return
    if data["type"] != "latency":
        return
    outside = (values < 0) | (values > 1)
    if outside.any():
        sample, feature = first_index(outside)
        log.add(
            where,
            f"latency data must lie in [0, 1]; found {values[sample, feature]} at sample "
            f"{sample}, feature {feature}",
        )


def _check_trains(
    loaded: StimulusData, spec: Any, n_targets: int, log: ProblemLog, where: Path
) -> None:
    """One train per target neuron: an inline list per target, file indices below the count."""
    if isinstance(spec, list) and len(spec) != n_targets:
        log.add(
            where,
            f"has {len(spec)} spike trains but the targets hold {n_targets} neurons; give one "
            "list of times per target neuron",
        )
        return
    rows = loaded.values
    if rows.shape[0] and int(rows[-1, 0]) >= n_targets:
        log.add(
            where,
            f"{loaded.file!r}: node_ids must be < {n_targets}, the number of target neurons; "
            f"found {int(rows[-1, 0])}",
        )
    if rows.shape[0] and float(rows[:, 1].min()) < 0.0:
        log.add(where, f"spike times must be >= 0 ms; found {float(rows[:, 1].min())}")
