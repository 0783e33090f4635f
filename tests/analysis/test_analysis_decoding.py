"""Decoders and scores on plain arrays (hand-computed cases, loop references of the documented
definitions, scikit-learn's accuracy_score and confusion_matrix) and on a real run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import analysis_decoding
import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from test_analysis_plots import ink

from brainsim.analysis import (
    NO_ANSWER,
    SpikeTrains,
    accuracy,
    assign_labels,
    classify_by_assignment,
    confusion_matrix,
    decode_latency,
    decode_rate,
    decode_responses,
    first_spike_latencies_ms,
    open_recording,
    parse_labels,
    sample_responses,
    spike_counts,
)
from brainsim.analysis.plots import plot_confusion_matrix
from brainsim.errors import RecordingError

INF = np.inf


def trains(times: list[float], ids: list[int], size: int) -> SpikeTrains:
    return SpikeTrains("P", np.array(times), np.array(ids, dtype=np.int64), size)


# Three neurons; spikes on a 0.1 ms grid, one at 3 * 0.1 (0.30000000000000004) and one exactly
# on a window's end.
SPIKES = trains(
    [3 * 0.1, 1.0, 2.0, 2.0, 4.0, 10.0, 10.5, 12.0, 19.9, 25.0],
    [2, 0, 0, 1, 0, 2, 1, 2, 0, 1],
    size=3,
)


def test_counts_per_window_are_half_open_and_tolerate_grid_rounding() -> None:
    counts = spike_counts(SPIKES, [0.3, 10.0, 30.0], window_ms=9.7)
    # [0.3, 10.0): 0.3 (id 2), 1.0 2.0 4.0 (id 0), 2.0 (id 1); 10.0 starts the next window.
    # [10.0, 19.7): 10.0 12.0 (id 2), 10.5 (id 1); 19.9 lies past the end. [30, 39.7): none.
    assert counts.tolist() == [[3, 1, 1], [0, 1, 2], [0, 0, 0]]
    assert counts.dtype == np.int64


def test_lag_shifts_windows_and_overlapping_windows_share_spikes() -> None:
    counts = spike_counts(SPIKES, [0.0, 10.0], window_ms=10.0, lag_ms=0.5)
    # [0.5, 10.5): 1.0 2.0 4.0 (id 0), 2.0 (id 1), 10.0 (id 2); [10.5, 20.5): 19.9, 10.5, 12.0.
    assert counts.tolist() == [[3, 1, 1], [1, 1, 1]]
    overlapping = spike_counts(SPIKES, [0.0, 2.0], window_ms=10.5)
    # [0, 10.5) and [2, 12.5): the spikes at 2.0, 4.0 and 10.0 count in both.
    assert overlapping.tolist() == [[3, 1, 2], [2, 2, 2]]
    assert spike_counts(SPIKES, [], window_ms=5.0).shape == (0, 3)


def test_first_spike_latencies_count_from_the_onset_and_are_inf_when_silent() -> None:
    latencies = first_spike_latencies_ms(SPIKES, [0.0, 10.0, 30.0], window_ms=10.0, lag_ms=0.5)
    # Windows [0.5, 10.5), [10.5, 20.5), [30.5, 40.5); latencies measured from 0, 10, 30.
    expected = [[1.0, 2.0, 10.0], [9.9, 0.5, 2.0], [INF, INF, INF]]
    np.testing.assert_allclose(latencies, expected, rtol=0, atol=1e-12)


def test_counts_and_latencies_equal_a_loop_over_windows() -> None:
    rng = np.random.default_rng(3)
    times = np.sort(rng.integers(0, 2000, 600)) * 0.1
    spikes = trains(times.tolist(), rng.integers(0, 7, 600).tolist(), size=7)
    onsets = np.arange(0.0, 190.0, 13.7)
    counts = spike_counts(spikes, onsets, window_ms=20.0, lag_ms=1.3)
    latencies = first_spike_latencies_ms(spikes, onsets, window_ms=20.0, lag_ms=1.3)
    for k, onset in enumerate(onsets):
        inside = (spikes.times_ms >= onset + 1.3 - 1e-6) & (spikes.times_ms < onset + 21.3 - 1e-6)
        for neuron in range(7):
            mine = spikes.times_ms[inside & (spikes.node_ids == neuron)]
            assert counts[k, neuron] == mine.size
            assert latencies[k, neuron] == (mine.min() - onset if mine.size else INF)


def test_rate_decoding_has_a_winner_or_no_answer() -> None:
    counts = np.array([[0, 5, 2], [3, 3, 1], [0, 0, 0], [1, 0, 0]])
    # a clear winner; a tie between neurons 0 and 1; a silent window; a single spike wins.
    assert decode_rate(counts).tolist() == [1, NO_ANSWER, NO_ANSWER, 0]


def test_group_activity_is_the_mean_count_of_its_neurons() -> None:
    counts = np.array([[2, 2, 2, 3, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    groups = {7: [0, 1, 2], 4: [3], 1: np.array([4])}
    # Row 0: group 7 fires 6 spikes but 2 per neuron; group 4's one neuron fires 3: 4 wins.
    # Row 1: 1/3 per neuron (group 7) against 1 (group 1). Row 2: silent.
    assert decode_rate(counts, groups).tolist() == [4, 1, NO_ANSWER]
    tied = np.array([[2, 2, 2, 2, 0]])
    assert decode_rate(tied, {0: [0, 1, 2], 1: [3]}).tolist() == [NO_ANSWER]


def test_latency_decoding_takes_the_earliest_neuron_or_group() -> None:
    latencies = np.array([[3.0, 1.5, INF], [2.0, 2.0, 4.0], [INF, INF, INF], [INF, 0.1, INF]])
    assert decode_latency(latencies).tolist() == [1, NO_ANSWER, NO_ANSWER, 1]
    groups = {0: [0, 2], 1: [1]}
    # A group fires when its earliest neuron does: row 1 is a tie at 2.0 ms.
    assert decode_latency(latencies, groups).tolist() == [1, NO_ANSWER, NO_ANSWER, 1]
    assert decode_latency(np.array([[5.0, INF, 1.0]]), groups).tolist() == [0]


def test_assignment_by_mean_response_to_each_label() -> None:
    counts = np.array(
        [
            [4, 0, 1, 0, 2],  # label 0
            [2, 0, 1, 0, 2],  # label 0
            [0, 5, 1, 0, 1],  # label 1
            [1, 1, 3, 0, 2],  # label 2
        ]
    )
    labels = np.array([0, 0, 1, 2])
    # Means per label (rows) and neuron (columns): 0: [3, 0, 1, 0, 2], 1: [0, 5, 1, 0, 1],
    # 2: [1, 1, 3, 0, 2]. Neuron 3 never fired; neuron 4 ties between labels 0 and 2.
    assert assign_labels(counts, labels).tolist() == [0, 1, 2, NO_ANSWER, NO_ANSWER]
    # A label without training samples (3) cannot win, even against silence.
    assert assign_labels(counts, labels, n_classes=4).tolist() == [0, 1, 2, NO_ANSWER, NO_ANSWER]


def test_classification_by_the_mean_response_of_each_labels_neurons() -> None:
    assignments = np.array([0, 0, 1, NO_ANSWER, 2])
    counts = np.array(
        [
            [3, 1, 1, 9, 0],  # label 0: mean 2 of neurons 0 and 1, label 1: 1; neuron 3 ignored
            [1, 0, 1, 0, 0],  # 0.5 against 1: label 1
            [2, 0, 0, 0, 1],  # 1 against 1 (label 2): a tie
            [0, 0, 0, 5, 0],  # only an unassigned neuron fired: no answer
        ]
    )
    assert classify_by_assignment(counts, assignments).tolist() == [0, 1, NO_ANSWER, NO_ANSWER]
    nobody = classify_by_assignment(counts, np.full(5, NO_ANSWER))
    assert nobody.tolist() == [NO_ANSWER] * 4


def _assign_loop(counts: np.ndarray, labels: np.ndarray, n_classes: int) -> list[int]:
    """The documented definition, one neuron at a time."""
    out = []
    for neuron in range(counts.shape[1]):
        means = {
            c: counts[labels == c, neuron].mean() for c in range(n_classes) if (labels == c).any()
        }
        best = max(means.values())
        winners = [c for c, m in means.items() if m == best]
        out.append(winners[0] if best > 0 and len(winners) == 1 else NO_ANSWER)
    return out


def _classify_loop(counts: np.ndarray, assignments: np.ndarray) -> list[int]:
    out = []
    for row in counts:
        means = {
            int(c): row[assignments == c].mean() for c in np.unique(assignments) if c != NO_ANSWER
        }
        best = max(means.values(), default=0.0)
        winners = [c for c, m in means.items() if m == best]
        out.append(winners[0] if best > 0 and len(winners) == 1 else NO_ANSWER)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_assignment_and_classification_equal_loops_over_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 30)
    counts = rng.poisson(0.7, (30, 12))  # small counts: many ties and silent neurons
    assignments = assign_labels(counts, labels, n_classes=5)
    assert assignments.tolist() == _assign_loop(counts, labels, 5)
    held_out = rng.poisson(0.7, (20, 12))
    assert classify_by_assignment(held_out, assignments).tolist() == _classify_loop(
        held_out, assignments
    )


def test_diehl_cook_pipeline_recovers_the_labels_of_tuned_neurons() -> None:
    """Neuron i prefers label i % 4; assignment on 100 samples, then 100 held out."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 200)
    preferred = np.arange(40) % 4
    rates = np.where(preferred[np.newaxis, :] == labels[:, np.newaxis], 6.0, 1.0)
    counts = rng.poisson(rates)
    assignments = assign_labels(counts[:100], labels[:100])
    assert assignments.tolist() == preferred.tolist()
    answers = classify_by_assignment(counts[100:], assignments)
    assert accuracy(labels[100:], answers) == 1.0


def test_accuracy_and_confusion_by_hand() -> None:
    labels = [0, 0, 1, 1, 2, 2, 2]
    answers = [0, 1, 1, NO_ANSWER, 2, 2, 0]
    assert accuracy(labels, answers) == pytest.approx(4 / 7)
    assert confusion_matrix(labels, answers).tolist() == [
        [1, 1, 0, 0],
        [0, 1, 0, 1],
        [1, 0, 2, 0],
    ]
    assert confusion_matrix([1], [1], n_classes=3).tolist() == [[0] * 4, [0, 1, 0, 0], [0] * 4]


@pytest.mark.parametrize("seed", range(4))
def test_accuracy_and_confusion_equal_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, 300)
    answers = np.where(rng.random(300) < 0.6, labels, rng.integers(-1, 5, 300))
    assert accuracy(labels, answers) == pytest.approx(accuracy_score(labels, answers), abs=1e-15)
    # scikit-learn with "no answer" as a sixth label: its row is empty, its column is ours.
    theirs = sklearn_confusion_matrix(labels, answers, labels=[0, 1, 2, 3, 4, NO_ANSWER])
    mine = confusion_matrix(labels, answers, n_classes=5)
    assert np.array_equal(mine, theirs[:5])
    assert not theirs[5].any()
    assert mine.sum(axis=1).tolist() == np.bincount(labels, minlength=5).tolist()
    answered = answers != NO_ANSWER
    square = sklearn_confusion_matrix(labels[answered], answers[answered], labels=range(5))
    assert np.array_equal(mine[:, :5], square)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_labels([0.0, 1.5]), "whole numbers"),
        (lambda: parse_labels(["a", "b"]), "must hold integers"),
        (lambda: parse_labels([[0, 1]]), "1-D"),
        (lambda: parse_labels([0, -2]), ">= 0"),
        (lambda: accuracy([0, 1], [0]), "2 labels but 1 answers"),
        (lambda: accuracy([], []), "no samples"),
        (lambda: confusion_matrix([0, 3], [0, 0], n_classes=3), "< n_classes"),
        (lambda: confusion_matrix([0], [-2]), "answers must be >= -1"),
        (lambda: decode_rate(np.zeros(3)), "2-D"),
        (lambda: decode_rate(np.zeros((2, 3)), {0: [0, 3]}), "names neuron 3"),
        (lambda: decode_rate(np.zeros((2, 3)), {0: []}), "no neurons"),
        (lambda: decode_rate(np.zeros((2, 3)), {-1: [0]}), "integers >= 0"),
        (lambda: assign_labels(np.zeros((2, 3)), [0]), "1 labels for 2 samples"),
        (lambda: classify_by_assignment(np.zeros((2, 3)), [0, 1]), "2 assignments for 3"),
        (lambda: spike_counts(SPIKES, [0.0], window_ms=0.0), "window_ms"),
    ],
)
def test_bad_input_is_refused_with_what_was_found(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_confusion_matrix_figure(tmp_path: Path) -> None:
    confusion = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, NO_ANSWER])
    out = plot_confusion_matrix(confusion, tmp_path / "confusion.png", title="test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ink(out) > 0.05
    square = plot_confusion_matrix(confusion[:, :3], tmp_path / "square.svg")
    assert "<svg" in square.read_text()
    with pytest.raises(ValueError, match="confusion matrix"):
        plot_confusion_matrix(np.zeros((2, 4)), tmp_path / "bad.png")


# --- on a real run (analysis_decoding: each sample drives one group of neurons) ------------


def test_responses_of_a_real_run_count_every_whole_window(decoding_store: Path) -> None:
    recording = open_recording(decoding_store)
    lag = analysis_decoding.LAG_MS
    responses = sample_responses(recording, "pixels", "InR", lag_ms=lag["InR"])
    onsets, index = analysis_decoding.shown()
    # The last presentation began at 330 ms, but its window [332, 352) outlasts the 345 ms run.
    assert responses.n_left_out == 1
    assert responses.n_presentations == 11
    assert np.array_equal(responses.onsets_ms, onsets[:11])
    assert np.array_equal(responses.sample_index, index[:11])
    assert responses.window_ms == analysis_decoding.PRESENT_MS
    spikes = recording.spikes("InR")
    for k, onset in enumerate(responses.onsets_ms):
        inside = (spikes.times_ms >= onset + 2.0) & (spikes.times_ms < onset + 22.0)
        expected = np.bincount(spikes.node_ids[inside], minlength=12)
        assert responses.counts[k].tolist() == expected.tolist()
    # OutR repeats InR 2 ms later: with 2 ms more lag, the same counts and latencies.
    relayed = sample_responses(decoding_store, "pixels", "OutR", lag_ms=lag["OutR"])
    assert np.array_equal(relayed.counts, responses.counts)
    assert np.array_equal(relayed.latencies_ms, responses.latencies_ms + 2.0)
    # Without the lag each window loses the spikes of its last steps.
    unshifted = sample_responses(decoding_store, "pixels", "OutR")
    assert (unshifted.counts <= relayed.counts).all()
    assert unshifted.counts.sum() < relayed.counts.sum()


def test_rate_and_assignment_decoding_of_a_real_run_find_every_class(decoding_store: Path) -> None:
    responses = sample_responses(decoding_store, "pixels", "OutR", lag_ms=4.0)
    labels = analysis_decoding.LABELS
    true = labels[responses.sample_index]
    rate = decode_responses(responses, labels, groups=analysis_decoding.GROUPS)
    assert rate.accuracy == 1.0
    assert rate.n_train == 0
    assert rate.n_test == 11
    expected = np.zeros((3, 4), dtype=np.int64)
    expected[[0, 1, 2], [0, 1, 2]] = np.bincount(true, minlength=3)
    assert np.array_equal(rate.confusion, expected)
    assign = decode_responses(responses, labels, method="assign", n_train=6)
    assert assign.assignments is not None
    assert assign.assignments.tolist() == np.repeat([0, 1, 2], 4).tolist()
    assert (assign.n_train, assign.n_test, assign.accuracy) == (6, 5, 1.0)
    assert np.array_equal(assign.labels, true[6:])
    by_fraction = decode_responses(responses, labels, method="assign", train_fraction=0.5)
    assert by_fraction.n_train == 5


def test_latency_decoding_of_a_real_run(decoding_store: Path) -> None:
    responses = sample_responses(decoding_store, "onset", "InL")
    true = analysis_decoding.LABELS[responses.sample_index]
    # The latency code puts the shown class's group in the window's first step and the others
    # two steps later (stamped 1 and 3 ms after the onset).
    in_group = np.repeat(np.arange(3), 4)[np.newaxis, :] == true[:, np.newaxis]
    assert np.array_equal(responses.latencies_ms, np.where(in_group, 1.0, 3.0))
    by_group = decode_responses(responses, analysis_decoding.LABELS, method="latency",
                                groups=analysis_decoding.GROUPS)  # fmt: skip
    assert by_group.accuracy == 1.0
    # Neuron by neuron, the group's four neurons tie: no answer, all counted as wrong.
    by_neuron = decode_responses(responses, analysis_decoding.LABELS, method="latency")
    assert by_neuron.n_no_answer == 11
    assert by_neuron.accuracy == 0.0
    assert by_neuron.confusion[:, -1].tolist() == np.bincount(true, minlength=3).tolist()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "assign"}, "needs n_train or train_fraction"),
        ({"method": "assign", "n_train": 11}, "leaves no training or no test"),
        ({"method": "assign", "n_train": 2, "train_fraction": 0.5}, "not both"),
        ({"method": "assign", "train_fraction": 1.0}, r"\(0, 1\)"),
        ({"method": "rate", "n_train": 3}, "needs no training samples"),
        ({"method": "assign", "n_train": 3, "groups": {0: [0]}}, "do not pass groups"),
        ({"method": "vote"}, "unknown decoding method"),
    ],
)
def test_decode_responses_refuses_inconsistent_options(
    decoding_store: Path, options: dict[str, object], message: str
) -> None:
    responses = sample_responses(decoding_store, "pixels", "InR", lag_ms=2.0)
    with pytest.raises(ValueError, match=message):
        decode_responses(responses, analysis_decoding.LABELS, **options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="there are 3 labels"):
        decode_responses(responses, [0, 1, 2])


def test_what_the_store_lacks_is_named(decoding_store: Path, poisson_store: Path) -> None:
    with pytest.raises(RecordingError, match=r"'digits'.*recorded: \['onset', 'pixels'\]"):
        sample_responses(decoding_store, "digits", "InR")
    with pytest.raises(RecordingError, match=r"recorded: \[\]"):
        sample_responses(poisson_store, "pixels", "E")
    with pytest.raises(RecordingError, match="no spikes of population 'Nope'"):
        sample_responses(decoding_store, "pixels", "Nope")
    with pytest.raises(ValueError, match="lag_ms must be >= 0"):
        sample_responses(decoding_store, "pixels", "InR", lag_ms=-1.0)
