"""The per-pair STDP updates of the kernels against the rules' closed forms in double precision.

Facilitation evaluates its power in single precision (``powf``, for speed); these tests bound
what that costs: the new weight stays within 2e-7 relative of the double-precision rule, below
the float32 rounding every stored weight gets anyway, while the exponents 0 and 1 and
depression stay exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainsim.kernels.plasticity import (
    RULE_STDP,
    RULE_STDP_POWER_LAW,
    stdp_depress,
    stdp_facilitate,
)

RNG = np.random.default_rng(20261203)
N = 20_000
FLOAT32_HALF_ULP = 2.0**-24  # relative rounding of a stored float32 weight


def _facilitate_exact(kind: int, w: float, k: float, lam: float, mu: float, w_max: float) -> float:
    if kind == RULE_STDP:
        norm = w / w_max + lam * math.pow(1.0 - w / w_max, mu) * k
        return norm * w_max if norm < 1.0 else w_max
    return w + lam * math.pow(w, mu) * k


@pytest.mark.parametrize("kind", [RULE_STDP, RULE_STDP_POWER_LAW])
@pytest.mark.parametrize("mu", [0.4, 0.05, 0.5, 0.95])
def test_facilitation_is_within_a_float32_rounding_of_the_double_rule(kind: int, mu: float) -> None:
    w_max = 100.0
    worst = 0.0
    draws = RNG.uniform(0.0, w_max, N), RNG.uniform(0.0, 3.0, N), RNG.uniform(1e-3, 1.0, N)
    for w, k, lam in zip(*draws, strict=True):
        got = stdp_facilitate(w, k, float(kind), lam, mu, w_max)
        want = _facilitate_exact(kind, w, k, lam, mu, w_max)
        if want > 0.0:
            worst = max(worst, abs(got - want) / want)
    assert worst < 4 * FLOAT32_HALF_ULP  # 2.4e-7; the increment alone is at most that off
    assert worst > 0.0  # single precision is in use (else this test bounds nothing)


def test_exponents_zero_and_one_are_exact() -> None:
    for kind in (RULE_STDP, RULE_STDP_POWER_LAW):
        for mu in (0.0, 1.0):
            for w, k in zip(RNG.uniform(0.1, 99.0, 1000), RNG.uniform(0.0, 3.0, 1000), strict=True):
                got = stdp_facilitate(w, k, float(kind), 0.01, mu, 100.0)
                assert got == _facilitate_exact(kind, w, k, 0.01, mu, 100.0)


def test_depression_is_the_double_rule_exactly() -> None:
    """Depression subtracts, so a relative error in its power could be amplified near zero:
    it keeps double precision."""
    w_max, lam, alpha = 100.0, 0.05, 1.2
    for mu in (0.0, 0.4, 1.0):
        for w, k in zip(RNG.uniform(0.0, w_max, 2000), RNG.uniform(0.0, 3.0, 2000), strict=True):
            got = stdp_depress(w, k, float(RULE_STDP), lam, alpha, mu, w_max)
            norm = w / w_max - alpha * lam * math.pow(w / w_max, mu) * k
            assert got == (norm * w_max if norm > 0.0 else 0.0)
            got = stdp_depress(w, k, float(RULE_STDP_POWER_LAW), lam, alpha, mu, w_max)
            new = w - lam * alpha * w * k
            assert got == (new if new > 0.0 else 0.0)
