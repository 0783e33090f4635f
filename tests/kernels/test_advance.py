"""Advancing a population over a run of steps equals stepping it one step at a time."""

from __future__ import annotations

import numpy as np

from brainsim.kernels.advance import (
    advance_izhikevich,
    advance_lif_delta,
    step_currents,
    step_currents_ref,
)
from brainsim.kernels.izhikevich import izhikevich_step_ref
from brainsim.kernels.lif import lif_delta_step_ref, lif_propagators

N = 12


def _currents() -> tuple[np.ndarray, ...]:
    """A DC stimulus on neurons 1, 4 during steps [3, 9) and noise on 0, 4, 7 from step 5."""
    dc_meta = np.array([[3, 9, 0, 2]], dtype=np.int64)
    dc_idx = np.array([1, 4], dtype=np.int64)
    dc_amp = np.array([120.0, -40.0])
    noise_meta = np.array([[5, 100, 0, 3, 991]], dtype=np.int64)
    noise_idx = np.array([0, 4, 7], dtype=np.int64)
    noise_gid = noise_idx + 500
    noise_val = np.array([[10.0, 30.0, 1.0], [0.0, 50.0, 2.0], [-5.0, 10.0, 0.5]])
    return dc_meta, dc_idx, dc_amp, noise_meta, noise_idx, noise_gid, noise_val


def test_step_currents_equals_reference() -> None:
    base = np.linspace(0.0, 100.0, N)
    for step in (0, 3, 6, 8, 9, 40):
        a, b = np.zeros(N), np.zeros(N)
        step_currents(step, 7, base, a, *_currents())
        step_currents_ref(step, 7, base, b, *_currents())
        assert np.array_equal(a, b), step
    a = np.zeros(N)
    step_currents(6, 7, base, a, *_currents())
    assert a[1] == base[1] + 120.0
    assert a[0] != base[0]  # noise is on
    assert a[2] == base[2]  # untouched


def test_lif_run_equals_step_by_step_reference() -> None:
    rng = np.random.default_rng(3)
    props = lif_propagators(np.full(N, 10.0), np.full(N, 250.0), np.full(N, 2.0),
                            np.full(N, 2.0), 0.1)  # fmt: skip
    n_slots, col, n_gids, first_gid = 6, 2, 100, 40
    buf = np.zeros((n_slots, N + 5))
    buf[:, col : col + N] = rng.uniform(0.0, 6.0, (n_slots, N))
    v0 = rng.uniform(0.0, 15.0, N)
    params = (props.p_mm, props.p_me, np.zeros(N), np.full(N, 15.0), np.zeros(N),
              np.full(N, 20, dtype=np.int64))  # fmt: skip
    base = np.full(N, 300.0)
    # Kernel: steps 10..15 in one call.
    v, refr, sp = v0.copy(), np.zeros(N, np.int64), np.zeros(N, np.int64)
    keys = np.zeros(N * 6, np.int64)
    kbuf = buf.copy()
    # Sample v of neurons 3 and 0 after every second step (steps 11, 13, 15 complete 12, 14, 16).
    samples = np.zeros((4, 2), np.float32)
    n_keys, n_rows = advance_lif_delta(
        10, 16, 9, first_gid, n_gids, 7, kbuf, col, v, refr, *params, sp, base, np.zeros(N),
        *_currents(), 2, np.zeros(2, np.int64), np.array([3, 0]), samples, keys, 0,
    )  # fmt: skip
    # Reference: one step at a time with the reference kernels.
    rv, rrefr, rsp = v0.copy(), np.zeros(N, np.int64), np.zeros(N, np.int64)
    rbuf = buf.copy()
    ref_keys, ref_samples = [], []
    i_ext = np.zeros(N)
    for step in range(10, 16):
        step_currents_ref(step, 7, base, i_ext, *_currents())
        row = rbuf[step % n_slots, col : col + N]
        count = lif_delta_step_ref(rv, rrefr, row, i_ext, *params, rsp)
        ref_keys += [(step - 9) * n_gids + first_gid + i for i in rsp[:count]]
        row[:] = 0.0
        if (step + 1) % 2 == 0:
            ref_samples.append(rv[[3, 0]].astype(np.float32))
    assert np.array_equal(v, rv)
    assert n_rows == 3
    assert np.array_equal(samples[:3], np.array(ref_samples))
    assert list(keys[:n_keys]) == ref_keys
    assert n_keys > 0
    assert np.array_equal(kbuf, rbuf)


def test_izhikevich_run_equals_step_by_step_reference() -> None:
    a, b, c, d = (np.full(N, x) for x in (0.02, 0.2, -65.0, 8.0))
    peak = np.full(N, 30.0)
    buf = np.zeros((3, N))
    buf[:, :] = 4.0
    v0 = np.linspace(-70.0, -50.0, N)
    u0 = b * v0
    base = np.full(N, 8.0)
    zeros = np.zeros(N)
    v, u, sp = v0.copy(), u0.copy(), np.zeros(N, np.int64)
    keys = np.zeros(N * 40, np.int64)
    kbuf = buf.copy()
    samples = np.zeros((41, 2), np.float32)  # u then v of neuron 5 after every step
    n_keys, n_rows = advance_izhikevich(
        0, 40, 0, 0, 1000, 7, kbuf, 0, True, v, u, a, b, c, d, peak, 1.0, True, zeros, sp, base,
        np.zeros(N), *_currents(), 1, np.array([1, 0]), np.array([5, 5]), samples, keys, 0,
    )  # fmt: skip
    rv, ru, rsp = v0.copy(), u0.copy(), np.zeros(N, np.int64)
    rbuf = buf.copy()
    ref_keys, ref_samples = [], []
    i_ext = np.zeros(N)
    for step in range(40):
        step_currents_ref(step, 7, base, i_ext, *_currents())
        row = rbuf[step % 3]
        count = izhikevich_step_ref(rv, ru, row, zeros, i_ext, a, b, c, d, peak, 1.0, True, rsp)
        ref_keys += [step * 1000 + i for i in rsp[:count]]
        row[:] = 0.0
        ref_samples.append(np.array([ru[5], rv[5]], dtype=np.float32))
    assert n_rows == 40
    assert np.array_equal(samples[:40], np.array(ref_samples))
    assert np.array_equal(v, rv)
    assert np.array_equal(u, ru)
    assert list(keys[:n_keys]) == ref_keys
    assert n_keys > 0
