"""The conventions that tie brainsim's units and time grid to NIR's continuous-time graphs,
shared by the export (:mod:`.nir_export`) and the import (:mod:`.nir_import`).

NIR (Neuromorphic Intermediate Representation, ``nir`` 1.0.x) defines each node by an ODE
without units. brainsim reads and writes NIR graphs in these units: time in seconds (as
snnTorch's and Norse's exports), voltage in mV, current in pA, resistance in GΩ (so that
``R I`` is in mV). A graph carries its time step ``dt`` (seconds) in its metadata.

**Spikes.** A spike on the grid is an impulse of area ``dt``: the signal ``S(t) = dt sum_k
delta(t - t_k)``, which a step of forward Euler sees as the value 1 held for one step, the
convention snnTorch's export follows (``r = tau / dt``, ``w_in = tau_syn / dt``). Through a
weight ``W`` it moves the state it drives by:

- ``LIF`` (``tau dv/dt = v_leak - v + r I``): ``v`` jumps by ``r W dt / tau``;
- ``CubaLIF`` (``tau_syn dI/dt = -I + w_in S``): ``I`` jumps by ``w_in W dt / tau_syn``;
- ``IF`` (``dv/dt = r I``): ``v`` jumps by ``r W dt``;
- ``LI`` (``tau dv/dt = v_leak - v + r I``): as ``LIF``.

**Time grid** (``discretization``). ``exact``: the ODE is integrated exactly on the grid, what
brainsim's LIF kernels do (Rotter & Diesmann 1999): a membrane decays by ``exp(-dt/tau)`` per
step, and brainsim's ``tau_m_ms`` is NIR's ``tau``. ``euler``: the ODE is the one forward Euler
steps with ``dt``, as snnTorch and Norse simulate (and train) it: a membrane decays by
``1 - dt/tau`` per step (snnTorch's ``beta``), and brainsim's ``tau_m_ms`` is chosen so that
its exact decay equals that factor: ``tau_m = -dt / ln(1 - dt/tau)`` (requires ``dt < tau``;
``tau_syn`` likewise). For ``LIF``, ``IF`` and ``LI`` brainsim then takes Euler's step exactly
(the decay, then the jumps). For ``CubaLIF`` it takes Euler's step one step later: Euler adds
the current of step ``t`` (its input included) to ``v`` in step ``t``, brainsim's ``v`` feels a
current from the step after it arrives; ``c_m_pF`` is chosen so that brainsim's propagator from
current to ``v`` is Euler's ``r dt / tau_mem``.

**Delays.** A NIR edge has no delay, a brainsim synapse at least one step: an imported synapse
gets ``dt`` plus the ``Delay`` nodes on its path, and an exported one a ``Delay`` node of its
delay minus ``dt`` (none for one step). So each synaptic hop of an imported network lags by
one step (plus one into a ``CubaLIF`` under ``euler``), the time snnTorch's recurrent
connections take too (:attr:`.nir_import.ImportedCircuit.lag_steps`).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Final, Literal

from brainsim.errors import TargetError

__all__ = [
    "DISCRETIZATIONS",
    "IF_TAU_MS",
    "LI_THRESHOLD_MV",
    "META_CIRCUIT",
    "META_DISCRETIZATION",
    "META_DT",
    "META_INDEX",
    "META_POPULATION",
    "META_PROJECTION",
    "MS_PER_S",
    "Discretization",
    "load_nir",
    "membrane_tau_ms",
    "tidy",
]

Discretization = Literal["exact", "euler"]
DISCRETIZATIONS: Final = ("exact", "euler")

MS_PER_S: Final = 1000.0

IF_TAU_MS: Final = 1e20
"""brainsim's ``tau_m_ms`` for NIR's ``IF`` (no leak): ``exp(-dt / 1e20 ms)`` rounds to exactly
1.0 in float64 for every ``dt`` below 1e4 ms, so the membrane keeps its value exactly."""

LI_THRESHOLD_MV: Final = 1e300
"""brainsim's ``v_th_mV`` for NIR's ``LI`` (no spikes): a threshold no membrane reaches."""

META_DT: Final = "dt"
"""Graph metadata: the time step in seconds."""
META_DISCRETIZATION: Final = "brainsim.discretization"
"""Graph metadata: ``exact`` or ``euler`` (see the module docstring)."""
META_CIRCUIT: Final = "brainsim.circuit"
"""Graph metadata: the name of the exported circuit."""
META_POPULATION: Final = "brainsim.population"
"""Node metadata: the population a neuron or Input node stands for."""
META_PROJECTION: Final = "brainsim.projection"
"""Node metadata: the projection a Linear node (and its Delay) stands for."""
META_INDEX: Final = "brainsim.index"
"""Node metadata: the position of the population or projection in the circuit (HDF5 keeps
nodes in alphabetical order, the import restores the circuit's)."""


def tidy(value: float) -> float:
    """``value`` rounded to 12 significant digits: what is left of a unit conversion's
    rounding (``0.02 s * 1000`` -> ``20.000000000000004``) goes, a real difference stays."""
    return float(f"{value:.12g}")


def membrane_tau_ms(tau_s: float, dt_ms: float, discretization: Discretization) -> float:
    """brainsim's time constant (ms) for NIR's ``tau_s`` (s) on the grid ``dt_ms``; raises
    ``ValueError`` when ``euler`` has no such constant (``dt >= tau``)."""
    tau_ms = tidy(tau_s * MS_PER_S)
    if discretization == "exact":
        return tau_ms
    h = float(dt_ms / (tau_s * MS_PER_S))
    if not h < 1.0:
        raise ValueError(
            f"tau = {tau_s:g} s is not above dt = {dt_ms / MS_PER_S:g} s: its forward-Euler "
            "decay 1 - dt/tau is not in (0, 1)"
        )
    return float(-dt_ms / math.log1p(-h))


def load_nir() -> ModuleType:
    """The ``nir`` package (imported on first use: brainsim runs without it)."""
    try:
        import nir
    except ImportError as exc:
        raise TargetError(
            "the nir target needs the nir package", ["pip install 'nir>=1.0.8,<2'"]
        ) from exc
    module: ModuleType = nir
    return module
