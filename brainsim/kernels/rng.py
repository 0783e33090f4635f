"""Counter-based random numbers keyed by identity: Philox4x32-10 and the draws built on it.

Every random number in a simulation is a pure function of ``(seed, stream, gid, index, sub)``, so
no draw depends on how neurons are spread over ranks or in which order they are visited
(ARCHITECTURE.md, decision 2). The generator is Philox4x32-10 (Salmon, Moraes, Dror & Shaw,
"Parallel random numbers: as easy as 1, 2, 3", SC'11): a 10-round bijection of a 128-bit counter
under a 64-bit key, checked against the Random123 known-answer vectors in the tests.

Keying convention (the engine and the samplers rely on it)::

    key     = (seed mod 2**32, stream mod 2**32)
    counter = (index mod 2**32, index // 2**32 mod 2**32, gid mod 2**32, sub mod 2**32)

``seed`` is the run seed; ``stream`` names what is being drawn (:func:`stream_id` of a field path
such as ``"projections.EE.weight"``); ``gid`` is the global neuron id (< 2**32) whose draw this is;
``index`` is a 64-bit draw or time-step index; ``sub`` is a small sub-draw counter for samplers
that need more than the four 32-bit words of one Philox call (0 for the first four words, 1 for the
next four, ...). :func:`below` keeps bits 24-31 of ``sub`` for its own rejection retries, so
callers that pass ``sub`` to it keep ``sub < 2**24``.

Word usage of each draw (one Philox call gives words w0..w3):

* :func:`uniform01`: ``(w0 * 2**32 + w1) >> 11`` scaled by ``2**-53`` -> 53 random bits in [0, 1).
  :func:`uniform_pair` returns that value and the same from ``(w2, w3)``.
* :func:`normal`: one lane of the ziggurat below: the candidate is word w0 of sub ``64 * sub``
  and further words, when needed, come from subs ``64 * sub + 1 + 4 a``, so that one draw
  never depends on a neighbour's key (a draw that needs 16 or more fallbacks, probability below
  1e-30, would read the next ``sub``'s keys). It costs one Philox call almost always, about a
  quarter of the Box-Muller transform it replaced (log, sqrt and cosine per normal).
* :func:`normal4`: four normals per call by the 128-layer ziggurat of Marsaglia & Tsang (2000),
  "The ziggurat method for generating random variables", J. Stat. Softw. 5(8). Word ``w_l`` of
  sub 0 gives lane ``l``'s candidate: bits 0-6 the layer, bit 7 the sign, bits 8-31 a 24-bit
  uniform position in the layer. About 98.8 % of candidates lie in a layer's core and are
  accepted at once; otherwise the lane reads sub ``1 + l + 4 a`` (attempt ``a = 0, 1, ...``):
  in the tail, two 53-bit uniforms from (w0, w1), (w2, w3) for Marsaglia's exponential tail
  test; in a wedge, a 53-bit uniform from (w0, w1) for the density test and, if that rejects,
  ``w2`` as a fresh candidate. The engine's noise currents use it with ``index = step // 4``
  and lane ``step % 4``.
* :func:`poisson`: inversion by sequential search for ``lam < 10`` (one uniform, sub 0); otherwise
  PTRS, the transformed rejection with squeeze of Hörmann (1993), "The transformed rejection method
  for generating Poisson random variables", Insurance: Mathematics and Economics 12, 39-45; trial
  ``t`` reads its two uniforms from sub ``t``.
* :func:`below`: Lemire's multiply-shift with rejection (Lemire 2019, "Fast random integer
  generation in an interval", ACM TOMACS 29(1)), one 32-bit word per trial, words w0..w3 in turn.

Each numba kernel has a pure-Python reference (``*_ref``) on Python ints and ``math`` that performs
the same operations in the same order; the tests assert exact equality.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, TypeAlias, cast

import numba
import numpy as np
import numpy.typing as npt

__all__ = [
    "PHILOX_M0",
    "PHILOX_M1",
    "PHILOX_ROUNDS",
    "PHILOX_W0",
    "PHILOX_W1",
    "POISSON_INVERSION_MAX_LAM",
    "ZERO",
    "IntLike",
    "below",
    "below_ref",
    "fill_normal",
    "fill_poisson",
    "fill_uniform",
    "lemire_trial",
    "normal",
    "normal4",
    "normal4_ref",
    "normal_ref",
    "philox4x32",
    "philox4x32_ref",
    "philox_words",
    "philox_words_ref",
    "poisson",
    "poisson_ref",
    "stream_id",
    "uniform01",
    "uniform01_ref",
    "uniform_from_words",
    "uniform_pair",
    "uniform_pair_ref",
]

PHILOX_M0 = 0xD2511F53
"""Philox4x32 multiplier applied to counter word 0."""
PHILOX_M1 = 0xCD9E8D57
"""Philox4x32 multiplier applied to counter word 2."""
PHILOX_W0 = 0x9E3779B9
"""Weyl increment of key word 0 between rounds (golden ratio)."""
PHILOX_W1 = 0xBB67AE85
"""Weyl increment of key word 1 between rounds (sqrt(3) - 1)."""
PHILOX_ROUNDS = 10
"""Number of Philox rounds (the Random123 default that the known-answer vectors pin)."""
POISSON_INVERSION_MAX_LAM = 10.0
"""Mean below which :func:`poisson` uses inversion; PTRS from here on."""

# Kernel constants are uint64 so that numba never mixes signed and unsigned integers (which it
# would widen to float64); every 32-bit quantity lives in the low half of a uint64.
IntLike: TypeAlias = int | np.integer[Any]

ZERO: int = cast(int, np.int64(0))
"""0 as an ``np.int64`` (typed ``int`` for mypy), for kernels to start a counter or pass a
constant with: numba types a plain ``0`` as a literal and compiles a called kernel once more for
each literal value it receives; a global ``np.int64`` it types as ``int64``."""
"""A Python or numpy integer: what the kernels accept wherever a key, counter or count goes."""

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_SHIFT11 = np.uint64(11)
_M0 = np.uint64(PHILOX_M0)
_M1 = np.uint64(PHILOX_M1)
_W0 = np.uint64(PHILOX_W0)
_W1 = np.uint64(PHILOX_W1)
_TWO_POW_M53 = 2.0**-53
_BELOW_RETRY_SHIFT = np.uint64(24)
_BELOW_RETRY_SHIFT_INT = 24
_MASK32_INT = 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Philox4x32-10
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def philox4x32(
    c0: IntLike, c1: IntLike, c2: IntLike, c3: IntLike, k0: IntLike, k1: IntLike
) -> tuple[np.uint32, np.uint32, np.uint32, np.uint32]:
    """Philox4x32-10 of counter ``(c0, c1, c2, c3)`` under key ``(k0, k1)``; each word mod 2**32.

    One round maps ``(x0, x1, x2, x3)`` to ``(hi(M1 x2) ^ x1 ^ k0, lo(M1 x2),
    hi(M0 x0) ^ x3 ^ k1, lo(M0 x0))`` where ``hi``/``lo`` are the upper/lower 32 bits of the
    64-bit product; the key is bumped by the Weyl constants ``(W0, W1)`` between rounds.
    """
    x0 = np.uint64(c0) & _MASK32
    x1 = np.uint64(c1) & _MASK32
    x2 = np.uint64(c2) & _MASK32
    x3 = np.uint64(c3) & _MASK32
    key0 = np.uint64(k0) & _MASK32
    key1 = np.uint64(k1) & _MASK32
    for r in range(PHILOX_ROUNDS):
        if r > 0:
            key0 = (key0 + _W0) & _MASK32
            key1 = (key1 + _W1) & _MASK32
        prod0 = _M0 * x0
        prod1 = _M1 * x2
        x0, x1, x2, x3 = (
            (prod1 >> _SHIFT32) ^ x1 ^ key0,
            prod1 & _MASK32,
            (prod0 >> _SHIFT32) ^ x3 ^ key1,
            prod0 & _MASK32,
        )
    return np.uint32(x0), np.uint32(x1), np.uint32(x2), np.uint32(x3)


def philox4x32_ref(
    c0: int, c1: int, c2: int, c3: int, k0: int, k1: int
) -> tuple[int, int, int, int]:
    """Pure-Python reference of :func:`philox4x32` on Python ints."""
    x = [c0 & _MASK32_INT, c1 & _MASK32_INT, c2 & _MASK32_INT, c3 & _MASK32_INT]
    key0, key1 = k0 & _MASK32_INT, k1 & _MASK32_INT
    for r in range(PHILOX_ROUNDS):
        if r > 0:
            key0 = (key0 + PHILOX_W0) & _MASK32_INT
            key1 = (key1 + PHILOX_W1) & _MASK32_INT
        prod0 = PHILOX_M0 * x[0]
        prod1 = PHILOX_M1 * x[2]
        x = [
            (prod1 >> 32) ^ x[1] ^ key0,
            prod1 & _MASK32_INT,
            (prod0 >> 32) ^ x[3] ^ key1,
            prod0 & _MASK32_INT,
        ]
    return x[0], x[1], x[2], x[3]


@numba.njit(cache=True)
def philox_words(
    seed: IntLike, stream: IntLike, gid: IntLike, index: IntLike, sub: IntLike
) -> tuple[np.uint32, np.uint32, np.uint32, np.uint32]:
    """The four 32-bit words keyed by ``(seed, stream, gid, index, sub)`` (module convention)."""
    index_u = np.uint64(index)
    return philox4x32(
        index_u & _MASK32, index_u >> _SHIFT32, np.uint64(gid), np.uint64(sub), seed, stream
    )


def philox_words_ref(
    seed: int, stream: int, gid: int, index: int, sub: int
) -> tuple[int, int, int, int]:
    """Pure-Python reference of :func:`philox_words`; ``index`` is taken mod 2**64."""
    index_u = index % 2**64
    return philox4x32_ref(index_u & _MASK32_INT, index_u >> 32, gid, sub, seed, stream)


def stream_id(name: str) -> int:
    """Stable 32-bit stream id of a name: CRC-32 (zlib, ISO-HDLC) of its UTF-8 bytes.

    The engine names streams by circuit field path, e.g. ``stream_id("projections.EE.weight")``,
    so a draw's stream survives reordering of the circuit document.
    """
    return zlib.crc32(name.encode("utf-8")) & _MASK32_INT


# ---------------------------------------------------------------------------------------------
# Transforms of words into values (shared by the keyed draws and the samplers)
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def uniform_from_words(w_hi: np.uint32, w_lo: np.uint32) -> float:
    """Uniform double in [0, 1) with 53 random bits: ``((w_hi * 2**32 + w_lo) >> 11) * 2**-53``."""
    bits = ((np.uint64(w_hi) << _SHIFT32) | np.uint64(w_lo)) >> _SHIFT11
    return float(bits) * _TWO_POW_M53


def _uniform_from_words_ref(w_hi: int, w_lo: int) -> float:
    return float(((w_hi << 32) | w_lo) >> 11) * _TWO_POW_M53


@numba.njit(cache=True)
def lemire_trial(word: np.uint32, n: IntLike) -> tuple[bool, np.int64]:
    """One trial of Lemire's method: ``(accepted, floor(word * n / 2**32))`` for ``1 <= n < 2**32``.

    With ``m = word * n``, the trial is rejected iff ``m mod 2**32 < 2**32 mod n``; the accepted
    values ``m >> 32`` are then exactly uniform on ``[0, n)``.
    """
    n_u = np.uint64(n)
    product = np.uint64(word) * n_u
    low = product & _MASK32
    if low < n_u:
        threshold = (_MASK32 + np.uint64(1) - n_u) % n_u
        if low < threshold:
            return False, np.int64(0)
    return True, np.int64(product >> _SHIFT32)


def _lemire_trial_ref(word: int, n: int) -> tuple[bool, int]:
    product = word * n
    if (product & _MASK32_INT) < (2**32 % n):
        return False, 0
    return True, product >> 32


# ---------------------------------------------------------------------------------------------
# Keyed scalar draws
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def uniform01(seed: IntLike, stream: IntLike, gid: IntLike, index: IntLike, sub: IntLike) -> float:
    """Uniform double in [0, 1) with 53 random bits, from words w0, w1 of the keyed call."""
    w0, w1, _, _ = philox_words(seed, stream, gid, index, sub)
    return uniform_from_words(w0, w1)


def uniform01_ref(seed: int, stream: int, gid: int, index: int, sub: int) -> float:
    """Pure-Python reference of :func:`uniform01`."""
    w0, w1, _, _ = philox_words_ref(seed, stream, gid, index, sub)
    return _uniform_from_words_ref(w0, w1)


@numba.njit(cache=True)
def uniform_pair(
    seed: IntLike, stream: IntLike, gid: IntLike, index: IntLike, sub: IntLike
) -> tuple[float, float]:
    """Two independent uniforms in [0, 1) from one call: from ``(w0, w1)`` and from ``(w2, w3)``.

    The first equals :func:`uniform01` for the same key.
    """
    w0, w1, w2, w3 = philox_words(seed, stream, gid, index, sub)
    return uniform_from_words(w0, w1), uniform_from_words(w2, w3)


def uniform_pair_ref(seed: int, stream: int, gid: int, index: int, sub: int) -> tuple[float, float]:
    """Pure-Python reference of :func:`uniform_pair`."""
    w0, w1, w2, w3 = philox_words_ref(seed, stream, gid, index, sub)
    return _uniform_from_words_ref(w0, w1), _uniform_from_words_ref(w2, w3)


@numba.njit(cache=True)
def normal(seed: IntLike, stream: IntLike, gid: IntLike, index: IntLike, sub: IntLike = 0) -> float:
    """Standard normal N(0, 1), one ziggurat lane keyed by ``sub`` (see the module docstring)."""
    base = np.int64(sub) * 64
    w0, _, _, _ = philox_words(seed, stream, gid, index, base)
    return _ziggurat_lane(w0, seed, stream, gid, index, base + 1)


def normal_ref(seed: int, stream: int, gid: int, index: int, sub: int = 0) -> float:
    """Pure-Python reference of :func:`normal`."""
    w0 = philox_words_ref(seed, stream, gid, index, 64 * sub)[0]
    return _ziggurat_lane_ref(w0, seed, stream, gid, index, 64 * sub + 1)


def _ziggurat_tables() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Layer edges ``x[0..128]`` and densities ``f[0..128]`` of the 128-layer ziggurat for the
    standard normal (Marsaglia & Tsang 2000): every layer has area ``_ZIG_V``; layer ``i`` spans
    ``[0, x[i])`` between heights ``f(x[i])`` and ``f(x[i + 1])``; ``x[1]`` is the tail start
    ``_ZIG_R`` and ``x[0] = V / f(R)`` the width of the base strip, tail included."""
    x = np.zeros(_ZIG_LAYERS + 1)
    x[0] = _ZIG_V / math.exp(-0.5 * _ZIG_R * _ZIG_R)
    x[1] = _ZIG_R
    for i in range(1, _ZIG_LAYERS - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(_ZIG_V / x[i] + math.exp(-0.5 * x[i] * x[i])))
    f = np.exp(-0.5 * x * x)
    return x, f


_ZIG_LAYERS = 128
_ZIG_R = 3.442619855899
_ZIG_V = 9.91256303526217e-3
_ZIG_X, _ZIG_F = _ziggurat_tables()
_ZIG_X_LIST = [float(v) for v in _ZIG_X]
_ZIG_F_LIST = [float(v) for v in _ZIG_F]
_TWO_POW_M24 = 2.0**-24
_U7 = np.uint64(7)
_U8 = np.uint64(8)
_U127 = np.uint64(127)
_U1 = np.uint64(1)


@numba.njit(cache=True)
def _ziggurat_candidate(word: np.uint32) -> tuple[np.int64, bool, float]:
    """A word's candidate: ``(layer, negative, x)``, ``x`` uniform in ``[0, x[layer])``."""
    w = np.uint64(word)
    layer = np.int64(w & _U127)
    return layer, ((w >> _U7) & _U1) != 0, float(w >> _U8) * _TWO_POW_M24 * _ZIG_X[layer]


def _ziggurat_candidate_ref(word: int) -> tuple[int, bool, float]:
    layer = word & 127
    return layer, bool((word >> 7) & 1), float(word >> 8) * _TWO_POW_M24 * _ZIG_X_LIST[layer]


@numba.njit(cache=True)
def _ziggurat_lane(
    word: np.uint32, seed: IntLike, stream: IntLike, gid: IntLike, index: IntLike, first: IntLike
) -> float:
    """One standard normal from a 32-bit word, falling back to the words of subs ``first``,
    ``first + 4``, ... when needed."""
    layer, negative, x = _ziggurat_candidate(word)
    attempt = 0
    while x >= _ZIG_X[layer + 1]:
        q0, q1, q2, q3 = philox_words(seed, stream, gid, index, first + 4 * attempt)
        attempt += 1
        if layer == 0:  # the tail beyond R, by Marsaglia's exponential method
            t = -math.log(1.0 - uniform_from_words(q0, q1)) / _ZIG_R
            y = -math.log(1.0 - uniform_from_words(q2, q3))
            if y + y > t * t:
                x = _ZIG_R + t
                break
            continue
        y = _ZIG_F[layer] + uniform_from_words(q0, q1) * (_ZIG_F[layer + 1] - _ZIG_F[layer])
        if y < math.exp(-0.5 * x * x):
            break
        layer, negative, x = _ziggurat_candidate(q2)  # rejected: a fresh candidate
    return float(-x if negative else x)


def _ziggurat_lane_ref(
    word: int, seed: int, stream: int, gid: int, index: int, first: int
) -> float:
    x_edge, f_edge = _ZIG_X_LIST, _ZIG_F_LIST
    layer, negative, x = _ziggurat_candidate_ref(word)
    attempt = 0
    while x >= x_edge[layer + 1]:
        q0, q1, q2, q3 = philox_words_ref(seed, stream, gid, index, first + 4 * attempt)
        attempt += 1
        if layer == 0:
            t = -math.log(1.0 - _uniform_from_words_ref(q0, q1)) / _ZIG_R
            y = -math.log(1.0 - _uniform_from_words_ref(q2, q3))
            if y + y > t * t:
                x = _ZIG_R + t
                break
            continue
        y = f_edge[layer] + _uniform_from_words_ref(q0, q1) * (f_edge[layer + 1] - f_edge[layer])
        if y < math.exp(-0.5 * x * x):
            break
        layer, negative, x = _ziggurat_candidate_ref(q2)
    return -x if negative else x


@numba.njit(cache=True)
def normal4(
    seed: IntLike, stream: IntLike, gid: IntLike, index: IntLike
) -> tuple[float, float, float, float]:
    """Four independent standard normals from one keyed call (ziggurat, see the module
    docstring): lane ``l`` uses word ``l`` of sub 0, and sub ``1 + l + 4 a`` when it needs more."""
    w0, w1, w2, w3 = philox_words(seed, stream, gid, index, np.int64(0))
    return (
        _ziggurat_lane(w0, seed, stream, gid, index, np.int64(1)),
        _ziggurat_lane(w1, seed, stream, gid, index, np.int64(2)),
        _ziggurat_lane(w2, seed, stream, gid, index, np.int64(3)),
        _ziggurat_lane(w3, seed, stream, gid, index, np.int64(4)),
    )


def normal4_ref(seed: int, stream: int, gid: int, index: int) -> tuple[float, float, float, float]:
    """Pure-Python reference of :func:`normal4`."""
    words = philox_words_ref(seed, stream, gid, index, 0)
    z = [_ziggurat_lane_ref(w, seed, stream, gid, index, 1 + lane) for lane, w in enumerate(words)]
    return z[0], z[1], z[2], z[3]


@numba.njit(cache=True)
def below(
    seed: IntLike, stream: IntLike, gid: IntLike, index: IntLike, sub: IntLike, n: IntLike
) -> np.int64:
    """Unbiased integer uniform on ``[0, n)`` for ``1 <= n < 2**32`` (Lemire with rejection).

    Trials read words w0..w3 of the call at ``sub``, then of ``sub + 2**24``, ``sub + 2 * 2**24``,
    ...; a trial is rejected with probability ``(2**32 mod n) / 2**32 < n / 2**32``. Returns -1
    for ``n`` outside the valid range.
    """
    if n < 1 or n > _MASK32_INT:
        return np.int64(-1)
    retry = np.uint64(0)
    while True:
        counter_sub = np.uint64(sub) + (retry << _BELOW_RETRY_SHIFT)
        words = philox_words(seed, stream, gid, index, counter_sub)
        for w in words:
            accepted, value = lemire_trial(w, n)
            if accepted:
                return value
        retry += np.uint64(1)


def below_ref(seed: int, stream: int, gid: int, index: int, sub: int, n: int) -> int:
    """Pure-Python reference of :func:`below`."""
    if n < 1 or n > _MASK32_INT:
        return -1
    retry = 0
    while True:
        words = philox_words_ref(seed, stream, gid, index, sub + (retry << _BELOW_RETRY_SHIFT_INT))
        for w in words:
            accepted, value = _lemire_trial_ref(w, n)
            if accepted:
                return value
        retry += 1


@numba.njit(cache=True)
def poisson(seed: IntLike, stream: IntLike, gid: IntLike, index: IntLike, lam: float) -> np.int64:
    """Poisson(``lam``) count, exact in distribution for any finite ``lam >= 0``.

    ``lam < 10``: inversion by sequential search on ``u`` from sub 0, accumulating
    ``P(k) = P(k-1) lam / k`` from ``P(0) = exp(-lam)``; should rounding leave the cumulative sum
    below ``u``, the search stops where ``P(k)`` underflows to zero. ``lam >= 10``: PTRS
    (Hörmann 1993) with ``b = 0.931 + 2.53 sqrt(lam)``, ``a = -0.059 + 0.02483 b``,
    ``1/alpha = 1.1239 + 1.1328 / (b - 3.4)``, ``v_r = 0.9277 - 3.6224 / (b - 2)``; trial ``t``
    takes ``U - 1/2`` and ``V`` from :func:`uniform_pair` at sub ``t``, proposes
    ``k = floor((2a / u_s + b) U + lam + 0.43)`` with ``u_s = 1/2 - |U|``, accepts at once inside
    the squeeze (``u_s >= 0.07 and V <= v_r``) and otherwise iff
    ``ln V + ln(1/alpha) - ln(a / u_s**2 + b) <= k ln(lam) - lam - ln(k!)``.

    Returns 0 for ``lam == 0`` and -1 for a negative, infinite or NaN ``lam`` (caller validates).
    """
    if not (0.0 <= lam < math.inf):
        return np.int64(-1)
    if lam == 0.0:
        return np.int64(0)
    if lam < POISSON_INVERSION_MAX_LAM:
        u = uniform01(seed, stream, gid, index, np.int64(0))
        k = 0
        p_k = math.exp(-lam)
        cumulative = p_k
        while u >= cumulative and p_k > 0.0:
            k += 1
            p_k *= lam / k
            cumulative += p_k
        return np.int64(k)
    sqrt_lam = math.sqrt(lam)
    log_lam = math.log(lam)
    b = 0.931 + 2.53 * sqrt_lam
    a = -0.059 + 0.02483 * b
    log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    trial = np.int64(0)
    while True:
        u_raw, v = uniform_pair(seed, stream, gid, index, trial)
        trial += 1
        u = u_raw - 0.5
        u_s = 0.5 - abs(u)
        k_real = math.floor((2.0 * a / u_s + b) * u + lam + 0.43)
        if u_s >= 0.07 and v <= v_r:
            return np.int64(k_real)
        if k_real < 0.0 or (u_s < 0.013 and v > u_s):
            continue
        if math.log(v) + log_inv_alpha - math.log(
            a / (u_s * u_s) + b
        ) <= -lam + k_real * log_lam - math.lgamma(k_real + 1.0):
            return np.int64(k_real)


def poisson_ref(seed: int, stream: int, gid: int, index: int, lam: float) -> int:
    """Pure-Python reference of :func:`poisson`."""
    if not (0.0 <= lam < math.inf):
        return -1
    if lam == 0.0:
        return 0
    if lam < POISSON_INVERSION_MAX_LAM:
        u = uniform01_ref(seed, stream, gid, index, 0)
        k = 0
        p_k = math.exp(-lam)
        cumulative = p_k
        while u >= cumulative and p_k > 0.0:
            k += 1
            p_k *= lam / k
            cumulative += p_k
        return k
    sqrt_lam = math.sqrt(lam)
    log_lam = math.log(lam)
    b = 0.931 + 2.53 * sqrt_lam
    a = -0.059 + 0.02483 * b
    log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    trial = 0
    while True:
        u_raw, v = uniform_pair_ref(seed, stream, gid, index, trial)
        trial += 1
        u = u_raw - 0.5
        u_s = 0.5 - abs(u)
        k_real = math.floor((2.0 * a / u_s + b) * u + lam + 0.43)
        if u_s >= 0.07 and v <= v_r:
            return k_real
        if k_real < 0 or (u_s < 0.013 and v > u_s):
            continue
        if math.log(v) + log_inv_alpha - math.log(
            a / (u_s * u_s) + b
        ) <= -lam + k_real * log_lam - math.lgamma(k_real + 1.0):
            return k_real


# ---------------------------------------------------------------------------------------------
# Vectorized draws for the engine: one value per gid at a common index (e.g. the time step)
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def fill_uniform(
    seed: IntLike,
    stream: IntLike,
    gids: npt.NDArray[np.int64],
    index: IntLike,
    out: npt.NDArray[np.float64],
) -> None:
    """``out[i] = uniform01(seed, stream, gids[i], index, 0)``."""
    for i in range(gids.shape[0]):
        out[i] = uniform01(seed, stream, gids[i], index, np.int64(0))


@numba.njit(cache=True)
def fill_normal(
    seed: IntLike,
    stream: IntLike,
    gids: npt.NDArray[np.int64],
    index: IntLike,
    out: npt.NDArray[np.float64],
) -> None:
    """``out[i] = normal(seed, stream, gids[i], index)`` (standard normal; scale at the caller)."""
    for i in range(gids.shape[0]):
        out[i] = normal(seed, stream, gids[i], index, np.int64(0))


@numba.njit(cache=True)
def fill_poisson(
    seed: IntLike,
    stream: IntLike,
    gids: npt.NDArray[np.int64],
    index: IntLike,
    lam: npt.NDArray[np.float64],
    out: npt.NDArray[np.int32] | npt.NDArray[np.int64],
) -> None:
    """``out[i] = poisson(seed, stream, gids[i], index, lam[i])``; ``out`` may be int32 or int64."""
    for i in range(gids.shape[0]):
        out[i] = poisson(seed, stream, gids[i], index, lam[i])
