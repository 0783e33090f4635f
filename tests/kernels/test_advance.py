"""Advancing every population of a rank by a step: the kernel equals its reference."""

from __future__ import annotations

import dataclasses

import numpy as np

from brainsim.kernels.advance import (
    FLAG_CURRENT_PULSE,
    FLAG_PUBLISHED_2003,
    KIND_IZHIKEVICH,
    KIND_LIF_ALPHA,
    KIND_LIF_DELTA,
    KIND_LIF_EXP,
    PARAM_ROWS,
    POP_COLUMNS,
    STATE_ROWS,
    advance_step,
    advance_step_ref,
    step_currents,
    step_currents_ref,
)
from brainsim.kernels.lif import lif_alpha_propagators, lif_propagators

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
    cache, block = np.zeros((3, 4)), np.full(3, -1, dtype=np.int64)
    return dc_meta, dc_idx, dc_amp, noise_meta, noise_idx, noise_gid, noise_val, cache, block


def test_step_currents_equals_reference() -> None:
    base = np.linspace(0.0, 100.0, N)
    tables = _currents()  # one noise cache across the steps, as in a run
    for step in (0, 3, 5, 6, 7, 8, 9, 40, 41, 42, 43, 44, 38):
        a, b = np.zeros(N), np.zeros(N)
        step_currents(step, 7, base, a, *tables)
        step_currents_ref(step, 7, base, b, *_currents())
        assert np.array_equal(a, b), step
    a = np.zeros(N)
    step_currents(6, 7, base, a, *_currents())
    assert a[1] == base[1] + 120.0
    assert a[0] != base[0]  # noise is on
    assert a[2] == base[2]  # untouched


def _table() -> dict[str, np.ndarray]:
    """Five populations end to end: LIF delta (4), LIF exponential (3), Izhikevich with
    current pulses in published half steps (3) and with voltage jumps in Euler steps (2), LIF
    alpha (3); the parameter rows in :data:`PARAM_ROWS` order."""
    rng = np.random.default_rng(11)
    sizes = (4, 3, 3, 2, 3)
    n = sum(sizes)
    pops = np.zeros((len(sizes), len(POP_COLUMNS)), dtype=np.int64)
    kinds = (KIND_LIF_DELTA, KIND_LIF_EXP, KIND_IZHIKEVICH, KIND_IZHIKEVICH, KIND_LIF_ALPHA)
    flags = (0, 0, FLAG_CURRENT_PULSE | FLAG_PUBLISHED_2003, 0, 0)
    col = 0
    for p, (kind, size, flag) in enumerate(zip(kinds, sizes, flags, strict=True)):
        # Population p samples its first neuron's state row p % 3 (row 1 for Izhikevich:
        # u) every p + 1 steps.
        every = p + 1
        pops[p] = (kind, col, size, 100 + 10 * p, flag, every, p, 1, 0)
        col += size
    lif_cols = np.r_[0:7, 12:15]
    args = (np.full(10, 10.0), np.full(10, 250.0), np.full(10, 2.0), np.full(10, 5.0), 0.1)
    rows = {"e_l_mV": 0.0, "v_th_mV": 15.0, "v_reset_mV": 0.0}
    for props in (lif_propagators(*args), lif_alpha_propagators(*args)):
        rows |= {f.name: getattr(props, f.name) for f in dataclasses.fields(props)}
    params = np.zeros((len(PARAM_ROWS["lif"]), n))
    for row, name in enumerate(PARAM_ROWS["lif"]):
        params[row, lif_cols] = rows[name]
    for row, value in enumerate((0.02, 0.2, -65.0, 8.0, 30.0)):
        params[row, 7:12] = value
    state = np.zeros((len(STATE_ROWS["lif"]), n))
    state[0, lif_cols] = rng.uniform(0.0, 14.0, 10)
    state[1:3, 4:7] = rng.uniform(-50.0, 50.0, (2, 3))
    state[1:, 12:] = rng.uniform(-50.0, 50.0, (4, 3))
    state[0, 7:12] = rng.uniform(-70.0, -50.0, 5)
    state[1, 7:12] = 0.2 * state[0, 7:12]
    buf_exc = rng.uniform(0.0, 6.0, (5, n))
    buf_inh = -rng.uniform(0.0, 6.0, (5, n))
    return {
        "pops": pops, "state": state, "params": params,
        "refr": np.zeros(n, np.int64), "t_ref": np.full(n, 3, np.int64),
        "i_base": np.where(np.isin(np.arange(n), lif_cols), 1000.0, 260.0),
        "buf_exc": buf_exc, "buf_inh": buf_inh,
        "sample_var": np.array([0, 1, 1, 0, 2], np.int64),
        "sample_idx": np.array([0, 4, 7, 10, 12], np.int64),
    }  # fmt: skip


def test_advance_step_equals_the_reference_for_every_model() -> None:
    t = _table()
    n = t["state"].shape[1]
    results = []
    for step_fn, currents in ((advance_step, step_currents), (advance_step_ref, step_currents_ref)):
        state, refr = t["state"].copy(), t["refr"].copy()
        buf_exc, buf_inh = t["buf_exc"].copy(), t["buf_inh"].copy()
        i_ext, spikes = np.zeros(n), np.zeros(n, np.int64)
        samples, rows = np.zeros(80, np.float32), np.zeros(5, np.int64)
        t["pops"][:, 8] = (0, 16, 32, 48, 64)  # sample regions
        keys = np.zeros(n * 30, np.int64)
        n_keys = 0
        tables = _currents()
        for step in range(20, 50):
            currents(step, 7, t["i_base"], i_ext, *tables)
            n_keys = step_fn(step, 20, 1000, 0.1, t["pops"], state, t["params"], refr,
                             t["t_ref"], i_ext, spikes, np.zeros(n), buf_exc, buf_inh,
                             t["sample_var"], t["sample_idx"], samples, rows, keys,
                             n_keys)  # fmt: skip
        results.append((state, refr, buf_exc, buf_inh, samples, rows, keys[:n_keys]))
    for got, want in zip(*results, strict=True):
        assert np.array_equal(got, want)
    state, refr, buf_exc, buf_inh, samples, rows, keys = results[0]
    assert list(rows) == [30 // (p + 1) for p in range(5)]
    # Population 1 samples i_syn_ex of column 4 after every second step: its last row (step 49
    # completes 50) is the final state.
    assert samples[16 + 14] == np.float32(state[1, 4])
    # Population 4 (alpha) samples i_syn_in of column 12 after every fifth step.
    assert samples[64 + 5] == np.float32(state[2, 12])
    assert keys.size > 10
    assert np.all(np.diff(keys) > 0)  # ascending: by step, then by gid
    gids = keys % 1000
    firing = [set(gids[(gids >= 100 + 10 * p) & (gids < 110 + 10 * p)].tolist()) for p in range(5)]
    assert all(firing), firing  # every population fires
    assert set(gids.tolist()) <= set(range(100, 104)) | set(range(110, 113)) | set(
        range(120, 123)
    ) | set(range(130, 132)) | set(range(140, 143))
    assert not buf_exc.any()  # every row was consumed (5 slots, 30 steps)
