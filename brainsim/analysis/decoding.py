"""Decoders and scoring: responses per sample window, rate, latency and label-assignment
decoders, accuracy and the confusion matrix.

Definitions (docs/analysis.md gives them as equations):

- Presentation ``k`` began at ``onset_k``; its window is ``[onset_k + lag_ms, onset_k + lag_ms
  + window_ms)`` (``window_ms`` defaults to the stimulus' ``present_ms``; ``lag_ms`` allows for
  the network's delay), half-open with the 1 ns tolerance of :mod:`brainsim.analysis.stats`.
- ``counts[k, i]``: spikes of neuron ``i`` in window ``k``. ``latencies_ms[k, i]``: time of
  neuron ``i``'s first spike in window ``k`` minus ``onset_k`` (ms); ``inf`` if it is silent.
- A decoder's candidates are the neurons (the answer is a neuron's index) or groups of neurons
  (``{label: node_ids}``; the answer is a label). A group's activity is the mean count of its
  neurons (so that groups of different sizes compare fairly); its latency is that of its
  earliest neuron.
- Rate decoding: the candidate with the highest activity wins. Latency decoding: the one with
  the smallest latency wins.
- No answer, :data:`NO_ANSWER` (-1), when no candidate responded (all counts 0, all latencies
  infinite) or when several candidates share the best value (a tie: spike times on the grid
  tie often). A missing answer counts as wrong.
- Label assignment (Diehl & Cook 2015): neuron ``i`` gets the label ``c`` whose training
  samples it responds to most on average; it stays unassigned (-1) if it never fired in
  training or if its best mean is shared by several labels. A held-out sample gets the label
  whose assigned neurons respond most on average (rate decoding over those groups).
- Labels are class indices ``0 .. n_classes - 1``; ``labels[j]`` is the label of data row ``j``
  (presentation ``k`` has the label ``labels[sample_index[k]]``).
- Accuracy: the fraction of samples whose answer equals their label.
- Confusion matrix ``[n_classes, n_classes + 1]``: entry ``[c, p]`` counts samples of label
  ``c`` answered ``p``; the last column counts samples without an answer, so each row sums to
  the samples of its label.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from brainsim.analysis.stats import _EDGE_TOLERANCE_MS
from brainsim.recording import RecordingStore, SpikeTrains

__all__ = [
    "DECODING_METHODS",
    "NO_ANSWER",
    "DecodingResult",
    "SampleResponses",
    "accuracy",
    "assign_labels",
    "classify_by_assignment",
    "confusion_matrix",
    "decode_latency",
    "decode_rate",
    "decode_responses",
    "first_spike_latencies_ms",
    "parse_labels",
    "sample_responses",
    "spike_counts",
]

NO_ANSWER = -1
"""The answer of a decoder that has none (silent window, tie), and an unassigned neuron."""

DECODING_METHODS = ("rate", "latency", "assign")

Method = Literal["rate", "latency", "assign"]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Groups = Mapping[int, Sequence[int] | npt.NDArray[np.integer[Any]]]
"""Candidate groups: label -> node ids (indices of the columns of a response matrix)."""


# --- responses per sample window ------------------------------------------------------------


def _window_spikes(
    spikes: SpikeTrains, onsets_ms: npt.ArrayLike, window_ms: float, lag_ms: float
) -> tuple[FloatArray, IntArray, IntArray]:
    """``(onsets, window, spike)``: spike ``spike[j]`` (an index into ``spikes``) lies in the
    window of presentation ``window[j]``; spikes in overlapping windows appear once per window,
    in time order within each."""
    onsets = np.asarray(onsets_ms, dtype=np.float64)
    if onsets.ndim != 1:
        raise ValueError(f"onsets_ms must be 1-D, got shape {onsets.shape}")
    if not window_ms > 0 or not math.isfinite(window_ms):
        raise ValueError(f"window_ms must be a finite number > 0, got {window_ms}")
    if not math.isfinite(lag_ms):
        raise ValueError(f"lag_ms must be finite, got {lag_ms}")
    starts = onsets + lag_ms - _EDGE_TOLERANCE_MS
    lo = np.searchsorted(spikes.times_ms, starts, side="left")
    hi = np.searchsorted(spikes.times_ms, starts + window_ms, side="left")
    sizes = hi - lo
    window = np.repeat(np.arange(onsets.size, dtype=np.int64), sizes)
    within = np.arange(window.size, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return onsets, window, (lo[window] + within).astype(np.int64)


def spike_counts(
    spikes: SpikeTrains, onsets_ms: npt.ArrayLike, window_ms: float, *, lag_ms: float = 0.0
) -> IntArray:
    """``[n_windows, population_size]``: spikes of each neuron in each window
    ``[onset + lag_ms, onset + lag_ms + window_ms)``. ``spikes`` must be sorted by time, as
    recordings are."""
    onsets, window, spike = _window_spikes(spikes, onsets_ms, window_ms, lag_ms)
    n = spikes.population_size
    flat = np.bincount(window * n + spikes.node_ids[spike], minlength=onsets.size * n)
    return flat.astype(np.int64).reshape(onsets.size, n)


def first_spike_latencies_ms(
    spikes: SpikeTrains, onsets_ms: npt.ArrayLike, window_ms: float, *, lag_ms: float = 0.0
) -> FloatArray:
    """``[n_windows, population_size]``: time of each neuron's first spike in each window
    minus the window's onset (not counting ``lag_ms`` out), in ms; ``inf`` where it is silent."""
    onsets, window, spike = _window_spikes(spikes, onsets_ms, window_ms, lag_ms)
    n = spikes.population_size
    keys, first = np.unique(window * n + spikes.node_ids[spike], return_index=True)
    out = np.full(onsets.size * n, np.inf)
    out[keys] = spikes.times_ms[spike[first]] - onsets[window[first]]
    return out.reshape(onsets.size, n)


@dataclass(frozen=True, slots=True)
class SampleResponses:
    """How one population responded to the presentations of one data stimulus.

    Row ``k`` of ``counts`` and ``latencies_ms`` is presentation ``k``, which showed data row
    ``sample_index[k]`` from ``onsets_ms[k]``. Presentations whose window runs past the end of
    the recording are left out (``n_left_out``), so every row saw a whole window.
    """

    stimulus: str
    population: str
    sample_index: IntArray
    onsets_ms: FloatArray
    window_ms: float
    lag_ms: float
    counts: IntArray
    """``[n_presentations, n_neurons]`` spike counts (see :func:`spike_counts`)."""
    latencies_ms: FloatArray
    """``[n_presentations, n_neurons]`` first-spike latencies (see
    :func:`first_spike_latencies_ms`)."""
    n_left_out: int

    @property
    def n_presentations(self) -> int:
        return int(self.sample_index.size)


def sample_responses(
    recording: RecordingStore | str | os.PathLike[str],
    stimulus: str,
    population: str,
    *,
    lag_ms: float = 0.0,
    window_ms: float | None = None,
) -> SampleResponses:
    """Counts and first-spike latencies of ``population`` per presentation of ``stimulus``
    (``stimuli/<stimulus>/`` of the store, as :meth:`RecordingStore.stimulus_presentations`
    reads it).

    ``window_ms`` defaults to the stimulus' ``present_ms``; ``lag_ms`` (>= 0) shifts every
    window by the network's delay. Raises RecordingError for a stimulus or population the
    store did not record.
    """
    store = recording if isinstance(recording, RecordingStore) else RecordingStore.open(recording)
    if not lag_ms >= 0:
        raise ValueError(f"lag_ms must be >= 0, got {lag_ms}")
    shown = store.stimulus_presentations(stimulus)
    spikes = store.spikes(population)
    window = shown.present_ms if window_ms is None else float(window_ms)
    ends = shown.onsets_ms + lag_ms + window
    whole = ends <= store.simulated_ms + _EDGE_TOLERANCE_MS
    onsets = shown.onsets_ms[whole]
    return SampleResponses(
        stimulus=stimulus,
        population=population,
        sample_index=shown.sample_index[whole],
        onsets_ms=onsets,
        window_ms=window,
        lag_ms=float(lag_ms),
        counts=spike_counts(spikes, onsets, window, lag_ms=lag_ms),
        latencies_ms=first_spike_latencies_ms(spikes, onsets, window, lag_ms=lag_ms),
        n_left_out=int(shown.onsets_ms.size - onsets.size),
    )


# --- decoders -------------------------------------------------------------------------------


def _matrix(values: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n_samples, n_neurons], got {array.shape}")
    return array


def _integers(values: npt.ArrayLike, name: str, *, lowest: int) -> IntArray:
    """A 1-D integer array with values >= ``lowest`` (integral floats are accepted)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array))):
        raise ValueError(f"{name} must hold whole numbers, got non-integral values")
    out = array.astype(np.int64)
    if out.size and out.min() < lowest:
        raise ValueError(f"{name} must be >= {lowest}, found {out.min()}")
    return out


def parse_labels(values: npt.ArrayLike, name: str = "labels") -> IntArray:
    """Class labels as int64: a 1-D array of whole numbers >= 0 (floats such as 3.0 are
    accepted); a ValueError naming ``name`` says what was found otherwise."""
    return _integers(values, name, lowest=0)


def _winners(scores: FloatArray, keys: IntArray, floor: float) -> IntArray:
    """Per row of ``scores [n, m]``: the key of the unique highest score above ``floor``,
    else NO_ANSWER."""
    if keys.size == 0:
        return np.full(scores.shape[0], NO_ANSWER, dtype=np.int64)
    best = scores.max(axis=1)
    tied = (scores == best[:, np.newaxis]).sum(axis=1) > 1
    answers = keys[scores.argmax(axis=1)]
    return np.where(tied | ~(best > floor), NO_ANSWER, answers).astype(np.int64)


def _candidates(
    values: FloatArray, groups: Groups | None, reduce: Literal["mean", "min"]
) -> tuple[FloatArray, IntArray]:
    """``(scores [n_samples, n_candidates], keys)``: one column per neuron, or per group."""
    if groups is None:
        return values, np.arange(values.shape[1], dtype=np.int64)
    keys = sorted(groups)
    columns = []
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or key < 0:
            raise ValueError(f"group labels must be integers >= 0, got {key!r}")
        ids = _integers(np.asarray(groups[key]), f"group {key}", lowest=0)
        if ids.size == 0:
            raise ValueError(f"group {key} has no neurons")
        if ids.max() >= values.shape[1]:
            raise ValueError(
                f"group {key} names neuron {ids.max()}, but there are {values.shape[1]}"
            )
        chosen = values[:, ids]
        columns.append(chosen.mean(axis=1) if reduce == "mean" else chosen.min(axis=1))
    scores = np.stack(columns, axis=1) if columns else np.empty((values.shape[0], 0))
    return scores, np.asarray(keys, dtype=np.int64)


def decode_rate(counts: npt.ArrayLike, groups: Groups | None = None) -> IntArray:
    """The most active neuron (or group: highest mean count per neuron) of each row of
    ``counts [n_samples, n_neurons]``; NO_ANSWER for a silent row or a tie."""
    scores, keys = _candidates(_matrix(counts, "counts"), groups, "mean")
    return _winners(scores, keys, floor=0.0)


def decode_latency(latencies_ms: npt.ArrayLike, groups: Groups | None = None) -> IntArray:
    """The earliest-firing neuron (or group: its earliest neuron) of each row of
    ``latencies_ms [n_samples, n_neurons]`` (``inf``: silent); NO_ANSWER for a silent row or a
    tie."""
    scores, keys = _candidates(_matrix(latencies_ms, "latencies_ms"), groups, "min")
    return _winners(-scores, keys, floor=-np.inf)


def assign_labels(
    counts: npt.ArrayLike, labels: npt.ArrayLike, n_classes: int | None = None
) -> IntArray:
    """The label of each neuron from its responses to training samples (Diehl & Cook 2015).

    ``counts [n_samples, n_neurons]``, ``labels [n_samples]``; neuron ``i`` gets the label with
    the highest mean ``counts[:, i]`` over that label's samples (labels without samples cannot
    win), or NO_ANSWER if it never fired in training or its best mean is shared by two labels.
    """
    matrix = _matrix(counts, "counts")
    classes = parse_labels(labels)
    if classes.size != matrix.shape[0]:
        raise ValueError(f"{classes.size} labels for {matrix.shape[0]} samples of counts")
    if classes.size == 0:
        raise ValueError("assigning labels needs at least one training sample")
    n = int(classes.max()) + 1 if n_classes is None else n_classes
    if classes.max() >= n:
        raise ValueError(f"labels must be < n_classes ({n}), found {classes.max()}")
    mean = np.full((n, matrix.shape[1]), -np.inf)
    for label in np.unique(classes):
        mean[label] = matrix[classes == label].mean(axis=0)
    return _winners(mean.T, np.arange(n, dtype=np.int64), floor=0.0)


def classify_by_assignment(counts: npt.ArrayLike, assignments: npt.ArrayLike) -> IntArray:
    """The label whose assigned neurons respond most on average, per row of ``counts``
    (:func:`decode_rate` over the groups of neurons that ``assignments`` gives each label;
    unassigned neurons, -1, take no part)."""
    matrix = _matrix(counts, "counts")
    assigned = _integers(assignments, "assignments", lowest=NO_ANSWER)
    if assigned.size != matrix.shape[1]:
        raise ValueError(f"{assigned.size} assignments for {matrix.shape[1]} neurons of counts")
    groups = {
        int(label): np.flatnonzero(assigned == label)
        for label in np.unique(assigned[assigned != NO_ANSWER])
    }
    return decode_rate(matrix, groups)


# --- scores ---------------------------------------------------------------------------------


def _labels_and_answers(labels: npt.ArrayLike, answers: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    true = parse_labels(labels)
    given = _integers(answers, "answers", lowest=NO_ANSWER)
    if true.size != given.size:
        raise ValueError(f"{true.size} labels but {given.size} answers")
    return true, given


def accuracy(labels: npt.ArrayLike, answers: npt.ArrayLike) -> float:
    """The fraction of samples whose answer equals their label (NO_ANSWER is wrong)."""
    true, given = _labels_and_answers(labels, answers)
    if true.size == 0:
        raise ValueError("accuracy of no samples is undefined")
    return float(np.mean(true == given))


def confusion_matrix(
    labels: npt.ArrayLike, answers: npt.ArrayLike, n_classes: int | None = None
) -> IntArray:
    """``[n_classes, n_classes + 1]``: entry ``[c, p]`` counts samples of label ``c`` answered
    ``p``; the last column those without an answer. ``n_classes`` defaults to one more than the
    largest label or answer."""
    true, given = _labels_and_answers(labels, answers)
    largest = max(int(true.max(initial=-1)), int(given.max(initial=-1)))
    n = largest + 1 if n_classes is None else n_classes
    if largest >= n:
        raise ValueError(f"labels and answers must be < n_classes ({n}), found {largest}")
    column = np.where(given == NO_ANSWER, n, given)
    flat = np.bincount(true * (n + 1) + column, minlength=n * (n + 1))
    return flat.astype(np.int64).reshape(n, n + 1)


@dataclass(frozen=True, slots=True)
class DecodingResult:
    """A decoder scored on the test presentations (see :func:`decode_responses`)."""

    method: Method
    n_classes: int
    n_train: int
    """Presentations used to assign labels (the first ones; 0 for ``rate`` and ``latency``)."""
    labels: IntArray
    """True label of each test presentation."""
    answers: IntArray
    """Decoded label of each test presentation (NO_ANSWER: none)."""
    assignments: IntArray | None
    """Label of each neuron (``assign`` only; NO_ANSWER: unassigned)."""
    accuracy: float
    confusion: IntArray
    """``[n_classes, n_classes + 1]``, the last column: no answer."""

    @property
    def n_test(self) -> int:
        return int(self.labels.size)

    @property
    def n_correct(self) -> int:
        return int(np.sum(self.labels == self.answers))

    @property
    def n_no_answer(self) -> int:
        return int(np.sum(self.answers == NO_ANSWER))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "method": self.method,
            "n_classes": self.n_classes,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_correct": self.n_correct,
            "n_no_answer": self.n_no_answer,
            "accuracy": self.accuracy,
            "confusion": self.confusion.tolist(),
            "assignments": None if self.assignments is None else self.assignments.tolist(),
        }


def _n_train(n: int, n_train: int | None, train_fraction: float | None) -> int:
    if n_train is not None and train_fraction is not None:
        raise ValueError("give n_train or train_fraction, not both")
    if train_fraction is not None:
        if not 0 < train_fraction < 1:
            raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
        n_train = math.floor(train_fraction * n)
    if n_train is None:
        raise ValueError("method 'assign' needs n_train or train_fraction")
    if not 1 <= n_train < n:
        raise ValueError(
            f"training on {n_train} of {n} presentations leaves no training or no test "
            "samples (need 1 <= n_train < the number of presentations)"
        )
    return n_train


def decode_responses(
    responses: SampleResponses,
    labels: npt.ArrayLike,
    *,
    method: Method = "rate",
    groups: Groups | None = None,
    n_train: int | None = None,
    train_fraction: float | None = None,
) -> DecodingResult:
    """Decode every presentation of ``responses`` and score it against ``labels`` (one label
    per data row, indexed by ``responses.sample_index``).

    ``rate`` and ``latency`` decode every presentation, over the neurons or over ``groups``.
    ``assign`` labels the neurons from the first ``n_train`` presentations (or
    ``floor(train_fraction * n)``) and classifies the rest. ``n_classes`` is one more than the
    largest label or answer.
    """
    if method not in DECODING_METHODS:
        raise ValueError(f"unknown decoding method {method!r}; choose one of {DECODING_METHODS}")
    per_row = parse_labels(labels)
    shown = responses.sample_index
    if shown.size and (shown.min() < 0 or shown.max() >= per_row.size):
        raise ValueError(
            f"there are {per_row.size} labels, but stimulus {responses.stimulus!r} showed "
            f"data rows {shown.min()} to {shown.max()}"
        )
    true = per_row[shown]
    assignments = None
    if method == "assign":
        if groups is not None:
            raise ValueError("method 'assign' finds its own groups; do not pass groups")
        train = _n_train(true.size, n_train, train_fraction)
        n_labels = int(per_row.max()) + 1
        assignments = assign_labels(responses.counts[:train], true[:train], n_labels)
        answers = classify_by_assignment(responses.counts[train:], assignments)
        true = true[train:]
    else:
        if n_train is not None or train_fraction is not None:
            raise ValueError(f"method {method!r} needs no training samples (only 'assign' does)")
        train = 0
        answers = (
            decode_rate(responses.counts, groups)
            if method == "rate"
            else decode_latency(responses.latencies_ms, groups)
        )
    if true.size == 0:
        raise ValueError(f"no presentations of {responses.stimulus!r} to score")
    n_classes = max(int(per_row.max(initial=-1)), int(answers.max(initial=-1))) + 1
    return DecodingResult(
        method=method,
        n_classes=n_classes,
        n_train=train,
        labels=true,
        answers=answers,
        assignments=assignments,
        accuracy=accuracy(true, answers),
        confusion=confusion_matrix(true, answers, n_classes),
    )
