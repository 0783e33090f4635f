"""Advance parrot neurons (NEST's ``parrot_neuron``) by one step: repeat the input's spikes.

Model: a parrot neuron has no state. In step ``k`` it spikes, stamped ``(k + 1) dt``, when the
summed weight ``in_w`` of the spikes arriving in step ``k`` (its ring-buffer entry) is
``> 0``::

    spike  <=>  in_w > 0

so it fires at most once per step, however many spikes arrive. With positive weights and at
most one arriving spike per step the output repeats the input, each spike delayed by its
delay: a spike sent at ``t`` with delay ``d`` arrives in step ``(t + d) / dt - 1`` and is
repeated at ``t + d``, as NEST's ``parrot_neuron`` does. NEST's parrot ignores weights and
repeats ``n`` spikes of one step as one spike of multiplicity ``n``; here ``n`` spikes give one
spike, and a summed weight ``<= 0`` none. External currents do not exist for a parrot (the
engine refuses DC and noise stimuli on it) and there is no refractoriness.

Conventions (as in :mod:`brainsim.kernels.lif`): the kernel writes the local indices of the
spiking neurons into ``spikes_out`` in ascending order and returns their number; it allocates
nothing. :func:`parrot_step_ref` is a plain-numpy reference with the same signature and
result.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["parrot_step", "parrot_step_ref"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@numba.njit(cache=True)
def parrot_step(in_w: FloatArray, spikes_out: IntArray) -> int:
    """Spike where the summed arriving weight ``in_w`` is > 0; return the number of spikes.

    The spiking local indices go to ``spikes_out[:count]`` (ascending), which must hold at
    least ``len(in_w)`` elements.
    """
    count = 0
    for i in range(in_w.shape[0]):
        if in_w[i] > 0.0:
            spikes_out[count] = i
            count += 1
    return count


def parrot_step_ref(in_w: FloatArray, spikes_out: IntArray) -> int:
    """Plain-numpy reference of :func:`parrot_step` (same signature, same result)."""
    fired = np.flatnonzero(in_w > 0.0)
    spikes_out[: fired.size] = fired
    return int(fired.size)
