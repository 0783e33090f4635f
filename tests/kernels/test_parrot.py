"""The parrot kernel: closed forms, the kernel against its reference, and the step loop.

A parrot spikes exactly where the summed arriving weight is > 0 (no state, so that is the whole
closed form); the step loop runs it with no state or parameter rows of its own, on a rank of
parrots alone (tables with no rows) and beside LIF neurons.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from brainsim.kernels.advance import (
    KIND_LIF_DELTA,
    KIND_PARROT,
    PARAM_ROWS,
    POP_COLUMNS,
    STATE_ROWS,
    advance_step,
    advance_step_ref,
)
from brainsim.kernels.lif import lif_propagators
from brainsim.kernels.parrot import parrot_step, parrot_step_ref

KERNELS = pytest.mark.parametrize("kernel", [parrot_step, parrot_step_ref], ids=["numba", "ref"])


def _run(kernel: Callable[..., int], weights: list[float]) -> list[int]:
    in_w = np.array(weights, dtype=np.float64)
    spikes = np.full(len(weights), -1, dtype=np.int64)
    count = kernel(in_w, spikes)
    assert np.all(spikes[count:] == -1)  # nothing written past the count
    return spikes[:count].tolist()


@KERNELS
def test_a_positive_summed_weight_fires_and_nothing_else_does(kernel: Callable[..., int]) -> None:
    # Column by column: one input of weight 1; none; weight 0; negative; -0.0; the smallest
    # positive number; a large weight; two inputs of weight 1 (summed: one spike, no
    # multiplicity); +2 - 1 (sum 1 > 0); +1 - 1 (sum 0: no spike).
    weights = [1.0, 0.0, 0.0, -1.0, -0.0, 5e-324, 1e300, 2.0, 1.0, 0.0]
    assert _run(kernel, weights) == [0, 5, 6, 7, 8]


@KERNELS
def test_no_input_no_spikes(kernel: Callable[..., int]) -> None:
    assert _run(kernel, [0.0] * 7) == []
    assert _run(kernel, []) == []


def test_kernel_equals_reference_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 200))
        # Summed weights of a ring-buffer row: many zeros, both signs, exact cancellations.
        in_w = rng.choice([0.0, 1.0, -1.0, 0.5, -2.5], n) + rng.choice([0.0, 0.0, -1.0, 1.0], n)
        tiny = rng.random(n) < 0.1
        in_w[tiny] = rng.choice([5e-324, -5e-324, -0.0, 1e-300], int(tiny.sum()))
        a, b = np.zeros(n, np.int64), np.zeros(n, np.int64)
        count_a, count_b = parrot_step(in_w, a), parrot_step_ref(in_w, b)
        assert count_a == count_b
        assert np.array_equal(a[:count_a], b[:count_b])
        assert np.array_equal(a[:count_a], np.flatnonzero(in_w > 0.0))


def _pops(*populations: tuple[int, int, int]) -> np.ndarray:
    """``pops`` rows for (kind, first column, size), gids 100, 110, ..., no samples."""
    pops = np.zeros((len(populations), len(POP_COLUMNS)), dtype=np.int64)
    for p, (kind, col, n) in enumerate(populations):
        pops[p] = (kind, col, n, 100 + 10 * p, 0, 0, 0, 0, 0)
    return pops


def _advance(
    step_fn: Callable[..., int],
    pops: np.ndarray,
    state: np.ndarray,
    params: np.ndarray,
    buf_exc: np.ndarray,
    steps: range,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``steps`` of the step loop; (keys, state, ring buffer) afterwards."""
    n = buf_exc.shape[1]
    state, buf_exc = state.copy(), buf_exc.copy()
    keys = np.zeros(n * len(steps), np.int64)
    n_keys = 0
    refr, t_ref, i_ext = np.zeros(n, np.int64), np.full(n, 2, np.int64), np.full(n, 1000.0)
    for step in steps:
        n_keys = step_fn(step, 0, 1000, 0.1, pops, state, params, refr, t_ref, i_ext,
                         np.zeros(n, np.int64), np.zeros(n), buf_exc, np.zeros_like(buf_exc),
                         np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32),
                         np.zeros(len(pops), np.int64), keys, n_keys)  # fmt: skip
    return keys[:n_keys], state, buf_exc


def test_a_rank_of_parrots_runs_with_tables_of_no_rows() -> None:
    assert STATE_ROWS["parrot"] == ()
    assert PARAM_ROWS["parrot"] == ()
    rng = np.random.default_rng(5)
    n, n_slots = 9, 4
    buf_exc = rng.choice([0.0, 0.0, 1.0, -1.0, 2.0], (n_slots, n))
    pops = _pops((KIND_PARROT, 0, 5), (KIND_PARROT, 5, 4))
    empty = np.zeros((0, n))
    results = [_advance(f, pops, empty, empty, buf_exc, range(n_slots))
               for f in (advance_step, advance_step_ref)]  # fmt: skip
    keys, _, consumed = results[0]
    assert np.array_equal(keys, results[1][0])
    # Step s reads row s: each column with a positive entry fires, keyed (step, gid).
    want = [step * 1000 + (100 + c if c < 5 else 110 + c - 5)
            for step in range(n_slots) for c in np.flatnonzero(buf_exc[step] > 0)]  # fmt: skip
    assert keys.tolist() == want
    assert len(want) > 5
    assert not consumed.any()  # every row was cleared after it was read


def test_parrots_beside_lif_neurons_equal_the_reference_and_leave_lif_alone() -> None:
    # LIF delta (3 neurons, columns 0-2) then parrots (4, columns 3-6): the parrots use no rows,
    # the LIF neurons the rank's table rows; both kernels agree, and the LIF trajectory is the
    # one it has without the parrots beside it.
    rng = np.random.default_rng(8)
    n, n_slots, n_lif = 7, 3, 3
    props = lif_propagators(np.full(n, 10.0), np.full(n, 250.0), 2.0, 2.0, 0.1)
    rows = {"p_mm": props.p_mm, "p_me": props.p_me, "e_l_mV": np.zeros(n),
            "v_th_mV": np.full(n, 15.0), "v_reset_mV": np.zeros(n)}  # fmt: skip
    params = np.array([rows[name] for name in PARAM_ROWS["lif"][:5]])
    params[:, n_lif:] = 0.0
    state = np.zeros((1, n))
    state[0, :n_lif] = rng.uniform(0.0, 14.0, n_lif)
    buf_exc = rng.choice([0.0, 3.0, -1.0, 1.0], (n_slots, n))
    mixed = _pops((KIND_LIF_DELTA, 0, n_lif), (KIND_PARROT, n_lif, n - n_lif))
    steps = range(30)
    got = _advance(advance_step, mixed, state, params, buf_exc, steps)
    want = _advance(advance_step_ref, mixed, state, params, buf_exc, steps)
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)
    alone = _advance(advance_step, _pops((KIND_LIF_DELTA, 0, n_lif)), state[:, :n_lif],
                     params[:, :n_lif], buf_exc[:, :n_lif], steps)  # fmt: skip
    assert np.array_equal(got[1][:, :n_lif], alone[1])
    assert np.array_equal(got[0][got[0] % 1000 < 110], alone[0])
    assert alone[0].size >= 3  # the LIF neurons fire
    # A parrot column fires where its ring-buffer row is positive (each row is read once, in
    # the first n_slots steps, and cleared).
    parrot_keys = got[0][got[0] % 1000 >= 110]
    assert parrot_keys.tolist() == [s * 1000 + 110 + c for s in range(n_slots)
                                    for c in np.flatnonzero(buf_exc[s, n_lif:] > 0)]  # fmt: skip
    assert parrot_keys.size > 3
    assert np.all(got[1][:, n_lif:] == 0.0)  # no row of the parrots' columns was written
