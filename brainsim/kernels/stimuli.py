"""Stimulus kernels: Poisson drive, Gaussian noise current and fixed currents for one step.

Random draws are keyed by ``(seed, stream, gid, step)`` (one stream per stimulus), so the input a
neuron receives does not depend on which rank simulates it. Poisson drive adds ``count * weight``
to the neuron's input row for the step (positive weights to ``row_exc``, negative to ``row_inh``);
current stimuli add to the step's external current ``i_ext_pA``.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from brainsim.kernels.rng import normal, normal_ref, poisson, poisson_ref

__all__ = [
    "add_current",
    "noise_current",
    "noise_current_ref",
    "poisson_drive",
    "poisson_drive_ref",
]


@numba.njit(cache=True, nogil=True)
def poisson_drive(
    seed: int,
    stream: int,
    gids: npt.NDArray[np.int64],
    local_idx: npt.NDArray[np.int64],
    draw_step: int,
    lam: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64],
    row_exc: npt.NDArray[np.float64],
    row_inh: npt.NDArray[np.float64],
) -> None:
    """Add a Poisson(``lam[i]``) number of inputs of ``weight[i]`` to each target ``i``.

    ``lam = rate_hz * dt_ms / 1000`` is the expected count per step; the draw is keyed by
    ``draw_step`` (the step the inputs were generated in).
    """
    for i in range(gids.shape[0]):
        count = poisson(seed, stream, gids[i], draw_step, lam[i])
        if count > 0:
            w = count * weight[i]
            if w >= 0.0:
                row_exc[local_idx[i]] += w
            else:
                row_inh[local_idx[i]] += w


def poisson_drive_ref(
    seed: int,
    stream: int,
    gids: npt.NDArray[np.int64],
    local_idx: npt.NDArray[np.int64],
    draw_step: int,
    lam: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64],
    row_exc: npt.NDArray[np.float64],
    row_inh: npt.NDArray[np.float64],
) -> None:
    """Plain-Python reference of :func:`poisson_drive`."""
    for i in range(gids.shape[0]):
        count = poisson_ref(seed, stream, int(gids[i]), draw_step, float(lam[i]))
        if count > 0:
            w = count * float(weight[i])
            if w >= 0.0:
                row_exc[local_idx[i]] += w
            else:
                row_inh[local_idx[i]] += w


@numba.njit(cache=True, nogil=True)
def noise_current(
    seed: int,
    stream: int,
    gids: npt.NDArray[np.int64],
    local_idx: npt.NDArray[np.int64],
    step: int,
    mean_pA: npt.NDArray[np.float64],
    std_pA: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64],
    i_ext_pA: npt.NDArray[np.float64],
) -> None:
    """Add ``(mean + std * N(0, 1)) * weight`` to each target's current for ``step``."""
    for i in range(gids.shape[0]):
        z = normal(seed, stream, gids[i], step, 0)
        i_ext_pA[local_idx[i]] += (mean_pA[i] + std_pA[i] * z) * weight[i]


def noise_current_ref(
    seed: int,
    stream: int,
    gids: npt.NDArray[np.int64],
    local_idx: npt.NDArray[np.int64],
    step: int,
    mean_pA: npt.NDArray[np.float64],
    std_pA: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64],
    i_ext_pA: npt.NDArray[np.float64],
) -> None:
    """Plain-Python reference of :func:`noise_current`."""
    for i in range(gids.shape[0]):
        z = normal_ref(seed, stream, int(gids[i]), step, 0)
        i_ext_pA[local_idx[i]] += (float(mean_pA[i]) + float(std_pA[i]) * z) * float(weight[i])


@numba.njit(cache=True, nogil=True)
def add_current(
    local_idx: npt.NDArray[np.int64],
    current_pA: npt.NDArray[np.float64],
    i_ext_pA: npt.NDArray[np.float64],
) -> None:
    """Add a fixed current to each target (DC stimuli)."""
    for i in range(local_idx.shape[0]):
        i_ext_pA[local_idx[i]] += current_pA[i]
