"""Encoders in whole runs, seen through relay neurons that fire in the step an input arrives:
latency spikes at snnTorch's steps after each onset, rate counts with snnTorch's statistics,
population codes with Poisson statistics, delta events at snnTorch's rows, spike trains at their
times; and the presentations the recording holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import zarr
from snntorch import spikegen

from brainsim.engine.simulator import load_step_loop
from brainsim.exchange import LocalExchanger
from brainsim.kernels.loop import run_intervals
from brainsim.recording import open_store
from tests.stimuli.conftest import relay_document, run_relay


def test_latency_spikes_fall_on_snntorchs_steps_after_each_onset(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    samples = rng.random((3, 12))
    samples[:, 0] = 0.0  # below threshold: the window's last step
    stimulus = {"type": "latency", "targets": ["In"], "data": samples.tolist(), "start_ms": 5.0,
                "present_ms": 20.0, "rest_ms": 4.0, "order": [2, 0, 2, 1], "tau_ms": 3.0,
                "threshold": 0.02, "normalize": True, "weight": 5.0}  # fmt: skip
    times, ids = run_relay(tmp_path, relay_document({"onset": stimulus}, size=12))
    expected_t, expected_id = [], []
    for k, sample in enumerate([2, 0, 2, 1]):
        spikes = spikegen.latency(
            torch.tensor(samples[sample], dtype=torch.float64), num_steps=20, tau=3.0,
            threshold=0.02, normalize=True,
        ).numpy()  # fmt: skip
        steps = spikes.argmax(axis=0)
        onset = 5 + 24 * k
        # A spike at step m arrives with the 1 ms delay in step m; the relay fires then (m + 1).
        expected_t += list(onset + steps + 1.0)
        expected_id += list(range(12))
    order = np.lexsort((expected_id, expected_t))
    assert np.array_equal(times, np.array(expected_t)[order])
    assert np.array_equal(ids, np.array(expected_id)[order])
    assert times[ids == 0].tolist() == [5 + 24 * k + 20.0 for k in range(4)]


def test_rate_counts_match_snntorchs_bernoulli_statistics(tmp_path: Path) -> None:
    n_steps, size = 1000, 20
    samples = np.stack([np.linspace(0.0, 1.25, size), np.linspace(1.0, -0.25, size) ** 2])
    gain, offset = 0.9, -0.05
    stimulus = {"type": "rate", "targets": ["In"], "data": samples.tolist(), "present_ms": 1000.0,
                "rest_ms": 100.0, "max_rate_hz": 1000.0, "gain": gain, "offset": offset,
                "weight": 5.0}  # fmt: skip
    document = relay_document({"pixels": stimulus}, size=size, duration_ms=2200.0)
    times, ids = run_relay(tmp_path, document)
    torch.manual_seed(0)
    for k in range(2):
        onset = 1100.0 * k
        # Draws of steps onset .. onset + 999 arrive one step later; relays fire a step after.
        inside = (times >= onset + 2) & (times <= onset + n_steps + 1)
        ours = np.bincount(ids[inside], minlength=size)
        data = torch.tensor(samples[k], dtype=torch.float64)
        theirs = spikegen.rate(data, num_steps=n_steps, gain=gain, offset=offset).sum(0).numpy()
        p = np.clip(samples[k] * gain + offset, 0.0, 1.0)
        se = np.sqrt(n_steps * p * (1 - p))
        assert np.all(np.abs(ours - n_steps * p) <= 4.5 * se), (ours, n_steps * p)
        assert np.all(np.abs(theirs - n_steps * p) <= 4.5 * se), (theirs, n_steps * p)
        assert np.all(np.abs(ours - theirs) <= 4.5 * np.sqrt(2) * se)
        assert ours[p == 1.0].tolist() == [n_steps] * int((p == 1.0).sum())
    in_windows = ((times >= 2) & (times <= 1001)) | ((times >= 1102) & (times <= 2101))
    assert in_windows.all()


def test_population_counts_are_poisson_with_the_tuning_curves_rates(tmp_path: Path) -> None:
    n_steps, n = 2000, 5
    samples = np.array([[0.0, 0.5], [1.0, 0.3]])
    sigma, max_rate_hz = 0.3, 600.0
    stimulus = {"type": "population", "targets": ["In"], "data": samples.tolist(),
                "present_ms": 2000.0, "rest_ms": 100.0, "n_neurons_per_feature": n,
                "sigma": sigma, "max_rate_hz": max_rate_hz, "weight": 5.0}  # fmt: skip
    document = relay_document({"petals": stimulus}, size=2 * n, duration_ms=4200.0)
    times, ids = run_relay(tmp_path, document)
    centres = np.linspace(0.0, 1.0, n)
    for k in range(2):
        onset = 2100.0 * k
        inside = (times >= onset + 2) & (times <= onset + n_steps + 1)
        # A relay fires once in a step with one input or more: P(count >= 1) = 1 - exp(-lam).
        fired = np.bincount(ids[inside], minlength=2 * n)
        lam = (
            max_rate_hz
            / 1000.0
            * np.exp(-((samples[k][:, None] - centres[None, :]) ** 2) / (2 * sigma**2)).ravel()
        )
        p = 1.0 - np.exp(-lam)
        se = np.sqrt(n_steps * p * (1 - p))
        assert np.all(np.abs(fired - n_steps * p) <= 4.5 * se), (fired, n_steps * p)
        # Not Bernoulli with probability lam: the strongest neuron is far from n_steps * lam.
        top = int(np.argmax(lam))
        assert n_steps * lam[top] - fired[top] > 8 * se[top]
    assert (((times >= 2) & (times <= 2001)) | ((times >= 2102) & (times <= 4101))).all()


def test_delta_events_reach_on_and_off_targets_at_snntorchs_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    series = rng.normal(0.0, 0.3, size=(30, 4)).cumsum(axis=0)
    stimulus = {"type": "delta", "targets": [{"population": "In", "node_ids": {"first": 4}}],
                "targets_off": [{"population": "In", "node_ids": {"range": {"start": 4}}}],
                "data": series.tolist(), "start_ms": 2.0, "step_ms": 1.5, "threshold": 0.2,
                "off_spikes": True, "weight": 5.0}  # fmt: skip
    document = relay_document({"sensor": stimulus}, size=8, dt_ms=0.5, duration_ms=60.0)
    times, ids = run_relay(tmp_path, document)
    events = spikegen.delta(
        torch.tensor(series, dtype=torch.float64), threshold=0.2, off_spike=True
    ).numpy()
    rows, features = np.nonzero(events)
    # Row k is at step 4 + 3k; with the delay of one step the relay fires in that step.
    expected_t = (4 + 3 * rows + 1) * 0.5
    expected_id = features + 4 * (events[rows, features] < 0)
    order = np.lexsort((expected_id, expected_t))
    assert rows.size > 30
    assert np.array_equal(times, expected_t[order])
    assert np.array_equal(ids, expected_id[order])
    assert "stimuli" not in zarr.open_group(str(tmp_path / "out.zarr"), mode="r")


def test_the_recording_holds_when_each_sample_was_shown(tmp_path: Path) -> None:
    samples = [[0.2, 0.9], [0.6, 0.1], [1.0, 0.0]]
    two = [{"population": "In", "node_ids": {"first": 2}}]
    schedule = {"data": samples, "targets": two, "weight": 5.0}
    stimuli = {
        "pixels": {"type": "rate", "start_ms": 0.3, "present_ms": 0.7, "rest_ms": 0.2,
                   "order": [2, 0, 2, 1, 1, 0, 2, 2, 1, 0, 0, 1, 2], "max_rate_hz": 500.0,
                   **schedule},
        "onset": {"type": "latency", "present_ms": 2.0, "tau_ms": 0.5, **schedule},
        "petals": {"type": "population", "start_ms": 6.0, "present_ms": 1.0,
                   "n_neurons_per_feature": 2, "sigma": 0.2, "max_rate_hz": 100.0,
                   **schedule, "targets": ["In"]},
        "late": {"type": "rate", "start_ms": 11.0, "present_ms": 1.0, "max_rate_hz": 10.0,
                 **schedule},
        "replay": {"type": "spike_trains", "targets": two, "data": [[1.0], []], "weight": 5.0},
    }  # fmt: skip
    run_relay(tmp_path, relay_document(stimuli, size=4, dt_ms=0.1, duration_ms=10.0))
    root = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
    assert sorted(root["stimuli"].group_keys()) == ["late", "onset", "petals", "pixels"]
    pixels = root["stimuli/pixels"]
    assert dict(pixels.attrs) == {"type": "rate", "present_ms": 0.7, "rest_ms": 0.2}
    onsets, shown = pixels["sample_onsets_ms"][...], pixels["sample_index"][...]
    assert onsets.dtype == np.float64
    assert shown.dtype == np.int64
    assert pixels["sample_onsets_ms"].metadata.dimension_names == ("sample",)
    # Onset k in steps: 3 + 9k, before the run's end at step 100 (k <= 10 of 13).
    assert np.array_equal(onsets, (3 + 9 * np.arange(11)) * 0.1)
    np.testing.assert_allclose(onsets, 0.3 + 0.9 * np.arange(11), rtol=0, atol=1e-12)
    assert shown.tolist() == [2, 0, 2, 1, 1, 0, 2, 2, 1, 0, 0]
    assert root["stimuli/onset/sample_onsets_ms"][...].tolist() == [0.0, 2.0, 4.0]
    assert root["stimuli/onset/sample_index"][...].tolist() == [0, 1, 2]
    assert root["stimuli/petals/sample_onsets_ms"][...].tolist() == [6.0, 7.0, 8.0]
    assert root["stimuli/petals"].attrs["type"] == "population"
    assert root["stimuli/late/sample_onsets_ms"].shape == (0,)  # begins after the run's end
    store = open_store(tmp_path / "out.zarr")
    assert store.stimulus_names == ("late", "onset", "petals", "pixels")
    read = store.stimulus_presentations("pixels")
    assert (read.type, read.present_ms, read.rest_ms) == ("rate", 0.7, 0.2)
    assert np.array_equal(read.onsets_ms, onsets)
    assert np.array_equal(read.sample_index, shown)


def test_spike_trains_reach_each_target_at_its_own_times(tmp_path: Path) -> None:
    trains = [[1.0, 3.5], [], [0.5, 2.0, 2.5]]
    stimulus = {"type": "spike_trains",
                "targets": [{"population": "In", "node_ids": [4]},
                            {"population": "In", "node_ids": [1, 2]}],
                "data": trains, "weight": 5.0, "delay_ms": 1.0}  # fmt: skip
    document = relay_document({"replay": stimulus}, size=5, dt_ms=0.5, duration_ms=10.0)
    times, ids = run_relay(tmp_path, document)
    # Target 0 is node 4, target 1 node 1, target 2 node 2; a spike at t arrives after the
    # delay, and the relay's spike is stamped at the end of that step: t + 1 ms.
    assert list(zip(times.tolist(), ids.tolist(), strict=True)) == [
        (1.5, 2), (2.0, 4), (3.0, 2), (3.5, 2), (4.5, 4),
    ]  # fmt: skip


def test_encoder_tables_have_the_types_the_start_up_load_compiles(tmp_path: Path) -> None:
    """A run with every encoder calls the step loop with the signature ``load_step_loop``
    loaded from empty tables: nothing is compiled at run time."""
    load_step_loop(LocalExchanger())
    samples = [[0.2, 0.9, 0.0], [0.6, 0.1, 1.0]]
    stimuli = {
        "pixels": {"type": "rate", "targets": ["In"], "data": samples, "present_ms": 5.0,
                   "max_rate_hz": 500.0, "mode": "poisson", "weight": 5.0},
        "onset": {"type": "latency", "targets": ["In"], "data": samples, "present_ms": 5.0,
                  "tau_ms": 1.0, "weight": 5.0},
        "replay": {"type": "spike_trains", "targets": ["In"], "data": [[1.0], [], [2.0]],
                   "weight": 5.0},
        "petals": {"type": "population", "targets": ["In"], "data": [[0.5], [1.0], [0.0]],
                   "present_ms": 5.0, "n_neurons_per_feature": 3, "sigma": 0.5,
                   "max_rate_hz": 200.0, "weight": 5.0},
        "sensor": {"type": "delta", "targets": ["In"], "data": samples, "step_ms": 3.0,
                   "threshold": 0.3, "weight": 5.0},
    }  # fmt: skip
    times, _ = run_relay(tmp_path, relay_document(stimuli, size=3, duration_ms=20.0))
    assert times.size > 5
    assert len(run_intervals.signatures) == 1
