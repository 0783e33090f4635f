"""Izhikevich kernel: the 2003 paper's firing patterns, its integration loop, references, golden.

Firing patterns are asserted with dt = 0.1 ms under both schemes. At the paper's dt = 1 ms spike
times are quantised to 1 ms, which is 15 % of a fast-spiking ISI (about 7.5 ms) and half of a
chattering intra-burst ISI (about 2 ms), so ISI statistics there say more about the grid than the
neuron; at 0.1 ms the ISIs are within about 3 % of their dt -> 0 values. The dt = 1 ms scheme is
instead checked operation for operation against a transliteration of the paper's loop.

Regenerate the pinned traces (only after a deliberate numerical change) with
``python -m tests.kernels.test_izhikevich`` from the repository root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from brainsim.kernels.izhikevich import (
    izhikevich_step,
    izhikevich_step_ref,
)

FloatArray = npt.NDArray[np.float64]

GOLDEN_PATH = Path(__file__).parent / "golden" / "izhikevich.json"
# (a, b, c_mV, d) of Izhikevich (2003), Fig. 2
PATTERNS = {
    "RS": (0.02, 0.2, -65.0, 8.0),
    "IB": (0.02, 0.2, -55.0, 4.0),
    "CH": (0.02, 0.2, -50.0, 2.0),
    "FS": (0.1, 0.2, -65.0, 2.0),
    "LTS": (0.02, 0.25, -65.0, 2.0),
}
SCHEMES = {"euler": False, "published_2003": True}
PATTERN_DT_MS = 0.1
PATTERN_DURATION_MS = 1000.0


@dataclass(frozen=True)
class Trace:
    """``v`` and ``u`` at t_0 .. t_{n_steps} (rows) per neuron (columns), and the spikes."""

    v_mV: FloatArray
    u_pA: FloatArray
    spikes: list[tuple[int, int]]
    """``(grid index k + 1, lid)`` of each spike emitted in step ``k``, in the kernel's order."""
    spike_times_ms: list[FloatArray]
    """Spike times of each neuron."""


def simulate(
    params: list[tuple[float, float, float, float]],
    n_steps: int,
    dt_ms: float,
    published_2003: bool,
    *,
    i_ext_pA: npt.ArrayLike = 10.0,
    in_pA: npt.ArrayLike = 0.0,
    in_mV: npt.ArrayLike = 0.0,
    v0_mV: npt.ArrayLike = -65.0,
    u0_pA: npt.ArrayLike | None = None,
    v_peak_mV: npt.ArrayLike = 30.0,
    reference: bool = False,
) -> Trace:
    """Run one neuron per ``(a, b, c, d)`` (inputs: scalar, per neuron or (n_steps, n))."""
    n = len(params)
    a, b, c, d = (np.array(column, dtype=np.float64) for column in zip(*params, strict=True))

    def per_step(value: npt.ArrayLike) -> FloatArray:
        return np.array(np.broadcast_to(value, (n_steps, n)), dtype=np.float64)

    i_ext, pulse_pA, pulse_mV = per_step(i_ext_pA), per_step(in_pA), per_step(in_mV)
    v = np.array(np.broadcast_to(v0_mV, n), dtype=np.float64)
    u = b * v if u0_pA is None else np.array(np.broadcast_to(u0_pA, n), dtype=np.float64)
    v_peak = np.array(np.broadcast_to(v_peak_mV, n), dtype=np.float64)
    out = np.full(n, -1, dtype=np.int64)
    step: Callable[..., int] = izhikevich_step_ref if reference else izhikevich_step
    vs, us = [v.copy()], [u.copy()]
    spikes: list[tuple[int, int]] = []
    for k in range(n_steps):
        count = step(
            v, u, pulse_pA[k], pulse_mV[k], i_ext[k], a, b, c, d, v_peak, dt_ms, published_2003, out
        )
        spikes.extend((k + 1, int(lid)) for lid in out[:count])
        vs.append(v.copy())
        us.append(u.copy())
    times = [np.array([k * dt_ms for k, i in spikes if i == lid]) for lid in range(n)]
    return Trace(np.stack(vs), np.stack(us), spikes, times)


def paper_loop(a: float, b: float, c: float, d: float, n_ms: int) -> tuple[list[float], list[int]]:
    """The loop of the 2003 paper's code for one neuron with I = 10, transliterated.

    The threshold is checked at the start of each 1 ms step; with a 0-based loop index the check
    at index t finds the crossing of the step that ended at t ms. Returns ``v`` at 0 .. n_ms - 1
    (after any reset) and the spike times (ms).
    """
    v, u, current = -65.0, b * -65.0, 10.0
    vs, spikes = [], []
    for t in range(n_ms):
        if v >= 30.0:
            spikes.append(t)
            v, u = c, u + d
        vs.append(v)
        v = v + 0.5 * (0.04 * (v * v) + 5 * v + 140 - u + current)
        v = v + 0.5 * (0.04 * (v * v) + 5 * v + 140 - u + current)
        u = u + a * (b * v - u)
    return vs, spikes


@pytest.fixture(scope="module", params=list(SCHEMES))
def spike_times(request: pytest.FixtureRequest) -> dict[str, FloatArray]:
    """Spike times (ms) of each Fig. 2 pattern under I = 10 for 1 s, at dt = 0.1 ms."""
    n_steps = round(PATTERN_DURATION_MS / PATTERN_DT_MS)
    trace = simulate(list(PATTERNS.values()), n_steps, PATTERN_DT_MS, SCHEMES[request.param])
    return dict(zip(PATTERNS, trace.spike_times_ms, strict=True))


def cv(values: FloatArray) -> float:
    return float(np.std(values) / np.mean(values))


def bursts(times_ms: FloatArray, gap_ms: float) -> list[FloatArray]:
    """Split spike times into groups separated by more than ``gap_ms``."""
    return np.split(times_ms, np.flatnonzero(np.diff(times_ms) > gap_ms) + 1)


# --- firing patterns (Izhikevich 2003, Fig. 2) --------------------------------------------------


def test_regular_spiking_adapts_then_settles(spike_times: dict[str, FloatArray]) -> None:
    isi = np.diff(spike_times["RS"])
    assert isi.size >= 15
    steady = isi[2:]
    # first ISI about 24 ms, later about 45 ms (rate falls from ~42 Hz to ~22 Hz)
    assert isi[0] < 0.6 * np.median(steady)
    assert 40.0 < np.median(steady) < 50.0
    assert cv(steady) < 0.01


def test_fast_spiking_fires_fast_with_little_adaptation(spike_times: dict[str, FloatArray]) -> None:
    times = spike_times["FS"]
    isi = np.diff(times)
    # about 130 Hz; the ISI lengthens from ~4.6 ms to ~7.7 ms within the first four spikes
    assert times.size > 110
    assert 1000.0 / np.median(isi) > 100.0
    assert isi[0] > 0.5 * np.median(isi)
    assert cv(isi[3:]) < 0.03
    # versus regular spiking under the same input: several times faster
    assert np.median(isi) < 0.25 * np.median(np.diff(spike_times["RS"]))


def test_chattering_fires_bursts(spike_times: dict[str, FloatArray]) -> None:
    isi = np.diff(spike_times["CH"])
    # bimodal ISIs: 1.5-7 ms inside a burst, about 47 ms between bursts, nothing in between
    short, long = isi[isi < 20.0], isi[isi >= 20.0]
    assert np.all(short < 7.0)
    assert np.all(long > 40.0)
    assert long.size >= 15
    groups = bursts(spike_times["CH"], gap_ms=20.0)
    assert all(group.size >= 3 for group in groups[:-1])
    assert np.mean([group.size for group in groups]) >= 3.5


def test_intrinsically_bursting_bursts_then_spikes_tonically(
    spike_times: dict[str, FloatArray],
) -> None:
    groups = bursts(spike_times["IB"], gap_ms=20.0)
    # an initial burst of three spikes (ISIs ~2.5 and ~4.7 ms), then single spikes ~31.5 ms apart
    assert groups[0].size == 3
    assert np.all(np.diff(groups[0]) < 6.0)
    assert all(group.size == 1 for group in groups[1:])
    tonic = np.diff(spike_times["IB"][3:])
    assert tonic.size >= 20
    assert 28.0 < np.median(tonic) < 35.0
    assert cv(tonic[1:]) < 0.01


def test_low_threshold_spiking_fires_fast_with_strong_adaptation(
    spike_times: dict[str, FloatArray],
) -> None:
    isi = np.diff(spike_times["LTS"])
    # ISIs grow from ~3 ms to ~13.7 ms (about 73 Hz), no bursts
    assert isi[0] < 4.0
    assert np.all(np.diff(isi[:6]) > 0.0)
    assert 60.0 < 1000.0 / np.median(isi) < 90.0
    assert np.median(isi) > 3.0 * isi[0]
    assert cv(isi[8:]) < 0.02


# --- numerics --------------------------------------------------------------------------------


def test_published_scheme_at_1ms_reproduces_the_papers_loop() -> None:
    n_ms = 1000
    trace = simulate(list(PATTERNS.values()), n_ms, 1.0, published_2003=True)
    for lid, (a, b, c, d) in enumerate(PATTERNS.values()):
        vs, spikes = paper_loop(a, b, c, d, n_ms)
        assert trace.v_mV[:n_ms, lid].tolist() == vs
        # the loop sees a crossing only at the start of the next step, so not one at t = n_ms
        times = trace.spike_times_ms[lid]
        assert times[times < n_ms].tolist() == spikes
        assert len(spikes) >= 10


@pytest.mark.parametrize(
    ("published_2003", "v_mV", "u_pA"),
    [
        # Euler: v += 1 * 7, u += 1 * 0.02 (0.2 (-65) + 13)
        (False, -58.0, -13.0),
        # two half steps: -65 + 3.5 = -61.5, then -61.5 + 0.5 * 6.79 = -58.105;
        # u += 0.02 (0.2 (-58.105) + 13) = 0.02758
        (True, -58.105, -12.97242),
    ],
)
def test_one_step_by_hand(published_2003: bool, v_mV: float, u_pA: float) -> None:
    trace = simulate([PATTERNS["RS"]], 1, 1.0, published_2003)
    assert trace.v_mV[1, 0] == pytest.approx(v_mV, rel=1e-14)
    assert trace.u_pA[1, 0] == pytest.approx(u_pA, rel=1e-14)


@pytest.mark.parametrize("published_2003", [False, True])
def test_current_pulse_adds_to_the_external_current(published_2003: bool) -> None:
    pulses = np.where(np.arange(200) % 7 == 0, 25.0, 0.0)[:, None]
    with_pulses = simulate([PATTERNS["RS"]], 200, 0.5, published_2003, in_pA=pulses)
    summed = simulate([PATTERNS["RS"]], 200, 0.5, published_2003, i_ext_pA=10.0 + pulses)
    assert np.array_equal(with_pulses.v_mV, summed.v_mV)
    assert np.array_equal(with_pulses.u_pA, summed.u_pA)
    without = simulate([PATTERNS["RS"]], 200, 0.5, published_2003)
    assert not np.array_equal(with_pulses.v_mV, without.v_mV)


@pytest.mark.parametrize("published_2003", [False, True])
def test_delta_input_is_added_after_integration_and_can_fire(published_2003: bool) -> None:
    in_mV = np.array([[0.0, 2.0, 200.0]])
    kicked = simulate([PATTERNS["RS"]] * 3, 1, 0.1, published_2003, in_mV=in_mV)
    free = simulate([PATTERNS["RS"]] * 3, 1, 0.1, published_2003)
    # same integration, then the jump: the u update did not see the delta input
    assert kicked.v_mV[1, 1] == free.v_mV[1, 1] + 2.0
    assert kicked.u_pA[1, 1] == free.u_pA[1, 1]
    # pushed past v_peak in the same step: spike at t_1, v <- c, u <- u + d
    assert [t.tolist() for t in kicked.spike_times_ms] == [[], [], [0.1]]
    assert kicked.v_mV[1, 2] == -65.0
    assert kicked.u_pA[1, 2] == free.u_pA[1, 2] + 8.0


@pytest.mark.parametrize("reference", [False, True])
def test_threshold_is_inclusive_and_spikes_are_ascending(reference: bool) -> None:
    # each neuron's v_peak is set to exactly the v it reaches (kernel and reference agree, see
    # below), minus 1e-9 for neurons 0, 2, 5 and plus 1e-9 for the others
    v0 = np.array([-60.0, -50.0, -40.0, -30.0, -20.0, -10.0])
    reached = simulate([PATTERNS["CH"]] * 6, 1, 0.1, False, v0_mV=v0, v_peak_mV=1e3).v_mV[1]
    offset = np.array([-1e-9, 1e-9, -1e-9, 1e-9, 1e-9, -1e-9])
    trace = simulate(
        [PATTERNS["CH"]] * 6,
        1,
        0.1,
        False,
        v0_mV=v0,
        v_peak_mV=reached + offset,
        reference=reference,
    )
    assert trace.spikes == [(1, 0), (1, 2), (1, 5)]
    exact = simulate(
        [PATTERNS["CH"]] * 6, 1, 0.1, False, v0_mV=v0, v_peak_mV=reached, reference=reference
    )
    assert exact.spikes == [(1, lid) for lid in range(6)]


@pytest.mark.parametrize("published_2003", [False, True])
@pytest.mark.parametrize("dt_ms", [0.1, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_equals_numpy_reference_bit_for_bit(
    published_2003: bool, dt_ms: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n, n_steps = 300, 200
    params = list(
        zip(
            rng.uniform(0.01, 0.1, n),
            rng.uniform(0.15, 0.3, n),
            rng.uniform(-70.0, -45.0, n),
            rng.uniform(0.0, 10.0, n),
            strict=True,
        )
    )
    drive: dict[str, Any] = {
        "i_ext_pA": rng.normal(8.0, 5.0, (n_steps, n)),
        "in_pA": rng.normal(0.0, 5.0, (n_steps, n)) * (rng.random((n_steps, n)) < 0.2),
        "in_mV": rng.normal(0.0, 2.0, (n_steps, n)) * (rng.random((n_steps, n)) < 0.2),
        "v0_mV": rng.uniform(-80.0, 35.0, n),
        "u0_pA": rng.uniform(-20.0, 5.0, n),
        "v_peak_mV": rng.uniform(25.0, 35.0, n),
    }
    kernel = simulate(params, n_steps, dt_ms, published_2003, **drive)
    reference = simulate(params, n_steps, dt_ms, published_2003, reference=True, **drive)
    assert kernel.v_mV.tobytes() == reference.v_mV.tobytes()
    assert kernel.u_pA.tobytes() == reference.u_pA.tobytes()
    for got, want in zip(kernel.spike_times_ms, reference.spike_times_ms, strict=True):
        assert np.array_equal(got, want)
    assert sum(t.size for t in kernel.spike_times_ms) > n


# --- golden traces ------------------------------------------------------------------------------

GOLDEN_SETUPS = {"published_2003": (1.0, True), "euler": (0.1, False)}


def golden_traces() -> dict[str, Any]:
    """Per scheme and Fig. 2 pattern (I = 10): the first 20 v values, spike times in 200 steps."""
    traces: dict[str, Any] = {"regenerate": "python -m tests.kernels.test_izhikevich"}
    for scheme, (dt_ms, published_2003) in GOLDEN_SETUPS.items():
        run = simulate(list(PATTERNS.values()), 200, dt_ms, published_2003)
        traces[scheme] = {"dt_ms": dt_ms}
        for lid, name in enumerate(PATTERNS):
            traces[scheme][name] = {
                "v_mV": run.v_mV[:20, lid].tolist(),
                "spike_times_ms": run.spike_times_ms[lid].tolist(),
            }
    return traces


def test_golden_traces_are_unchanged() -> None:
    pinned = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))
    current = golden_traces()
    for scheme in GOLDEN_SETUPS:
        for name in PATTERNS:
            got, want = current[scheme][name], pinned[scheme][name]
            np.testing.assert_allclose(got["v_mV"], want["v_mV"], rtol=1e-12, atol=0)
            np.testing.assert_allclose(got["spike_times_ms"], want["spike_times_ms"], rtol=1e-12)
            assert len(want["spike_times_ms"]) >= 1


if __name__ == "__main__":
    GOLDEN_PATH.write_text(json.dumps(golden_traces(), indent=1) + "\n", encoding="utf-8")
