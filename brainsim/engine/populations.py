"""One population's neurons on one rank: parameters, state, ring buffers, and its update kernel.

A :class:`LocalPopulation` holds struct-of-arrays state for the rank's block of the population
and views of its columns of the rank's ring buffers, into which its incoming spikes are
delivered (``n_slots`` rows, enough for the maximum delay). ``update(step)`` runs the model's
numba kernel for one step on the row ``step % n_slots``, then clears that row for reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import IzhikevichParams, LifParams, Population
from brainsim.engine.values import draw_distribution, per_neuron
from brainsim.errors import EngineError
from brainsim.kernels import izhikevich, lif

__all__ = ["STATE_UNITS", "LocalPopulation", "build_population", "separates_inhibition"]

Float64Array = npt.NDArray[np.float64]

STATE_UNITS: dict[str, dict[str, str]] = {
    "lif": dict(lif.LIF_STATE_VARIABLES),
    "izhikevich": dict(izhikevich.IZHIKEVICH_STATE_VARIABLES),
}


@dataclass(slots=True, eq=False)
class LocalPopulation:
    """The rank's neurons ``[lo, hi)`` of one population (see the module docstring)."""

    name: str
    model: str
    gid_offset: int
    lo: int
    hi: int
    dt_ms: float
    params: dict[str, Float64Array]
    state: dict[str, Float64Array]
    buf_exc: Float64Array
    buf_inh: Float64Array
    i_base_pA: Float64Array
    i_ext_pA: Float64Array
    spikes_out: npt.NDArray[np.int64]
    refr: npt.NDArray[np.int64]
    t_ref_steps: npt.NDArray[np.int64]
    synapse: str
    integration: str = ""
    zeros: Float64Array = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        """Number of local neurons."""
        return self.hi - self.lo

    @property
    def n_slots(self) -> int:
        """Ring-buffer length in steps."""
        return int(self.buf_exc.shape[0])

    def update(self, step: int) -> int:
        """Advance every local neuron by one step; spiking local indices go to ``spikes_out``."""
        row = step % self.n_slots
        p, s = self.params, self.state
        exc, inh = self.buf_exc[row], self.buf_inh[row]
        if self.model == "lif":
            if self.synapse == "delta":
                n = lif.lif_delta_step(
                    s["v"], self.refr, exc, self.i_ext_pA, p["p_mm"], p["p_me"],
                    p["e_l_mV"], p["v_th_mV"], p["v_reset_mV"], self.t_ref_steps,
                    self.spikes_out,
                )  # fmt: skip
            else:
                n = lif.lif_exp_step(
                    s["v"], s["i_syn_ex"], s["i_syn_in"], self.refr, exc, inh,
                    self.i_ext_pA, p["p_mm"], p["p_me"], p["p_ex"], p["p_in"], p["p_mex"],
                    p["p_min"], p["e_l_mV"], p["v_th_mV"], p["v_reset_mV"], self.t_ref_steps,
                    self.spikes_out,
                )  # fmt: skip
        else:
            in_pa, in_mv = (
                (exc, self.zeros) if self.synapse == "current_pulse" else (self.zeros, exc)
            )
            n = izhikevich.izhikevich_step(
                s["v"], s["u"], in_pa, in_mv, self.i_ext_pA, p["a"], p["b"], p["c_mV"],
                p["d"], p["v_peak_mV"], self.dt_ms, self.integration == "published_2003",
                self.spikes_out,
            )  # fmt: skip
        exc[:] = 0.0
        if self.buf_inh is not self.buf_exc:
            inh[:] = 0.0
        return int(n)


def separates_inhibition(pop: Population) -> bool:
    """Whether ``pop`` keeps excitatory and inhibitory input apart (exponential synapses)."""
    return isinstance(pop.params, LifParams) and pop.params.synapse == "exponential"


def build_population(
    pop: Population,
    lo: int,
    hi: int,
    *,
    seed: int,
    dt_ms: float,
    buf_exc: Float64Array,
    buf_inh: Float64Array,
) -> LocalPopulation:
    """Draw the parameters and initial state of neurons ``[lo, hi)`` of ``pop``.

    ``buf_exc`` / ``buf_inh`` are the population's columns of the rank's ring buffers (the same
    array twice when the model does not separate inhibitory input).
    """
    gids = np.arange(pop.gid_offset + lo, pop.gid_offset + hi, dtype=np.int64)
    base = f"populations.{pop.name}"
    variables = {
        name: draw_distribution(
            dist,
            seed=seed,
            path=f"{base}.random_variables.{name}",
            keys=gids,
            indices=np.zeros_like(gids),
        )
        for name, dist in pop.random_variables.items()
    }

    def value(section: str, name: str, v: object) -> Float64Array:
        return per_neuron(
            v,  # type: ignore[arg-type]
            seed=seed,
            path=f"{base}.{section}.{name}",
            gids=gids,
            variables=variables,
        )

    prm = pop.params
    numeric = {
        name: value("params", name, getattr(prm, name))
        for name in prm.__dataclass_fields__
        if name not in ("synapse", "integration")
    }
    n = hi - lo
    params: dict[str, Float64Array]
    state: dict[str, Float64Array]
    if isinstance(prm, LifParams):
        props = lif.lif_propagators(
            numeric["tau_m_ms"], numeric["c_m_pF"], numeric["tau_syn_ex_ms"],
            numeric["tau_syn_in_ms"], dt_ms,
        )  # fmt: skip
        params = {
            "p_mm": props.p_mm, "p_me": props.p_me, "p_ex": props.p_ex, "p_in": props.p_in,
            "p_mex": props.p_mex, "p_min": props.p_min, "e_l_mV": numeric["e_l_mV"],
            "v_th_mV": numeric["v_th_mV"], "v_reset_mV": numeric["v_reset_mV"],
        }  # fmt: skip
        t_ref_steps = lif.refractory_steps(numeric["t_ref_ms"], dt_ms)
        v0 = pop.initial.get("v_mV")
        state = {"v": numeric["e_l_mV"].copy() if v0 is None else value("initial", "v_mV", v0)}
        if prm.synapse == "exponential":
            for var, key in (("i_syn_ex", "i_syn_ex_pA"), ("i_syn_in", "i_syn_in_pA")):
                init = pop.initial.get(key)
                state[var] = np.zeros(n) if init is None else value("initial", key, init)
        synapse: str = prm.synapse
        integration = ""
    elif isinstance(prm, IzhikevichParams):
        params = {k: numeric[k] for k in ("a", "b", "c_mV", "d", "v_peak_mV")}
        t_ref_steps = np.zeros(n, dtype=np.int64)
        v0, u0 = pop.initial.get("v_mV"), pop.initial.get("u")
        v = numeric["c_mV"].copy() if v0 is None else value("initial", "v_mV", v0)
        u = numeric["b"] * v if u0 is None else value("initial", "u", u0)
        state = {"v": v, "u": u}
        synapse, integration = prm.synapse, prm.integration
    else:  # pragma: no cover - the loader only produces the two models
        raise EngineError(f"{base}.model: unsupported model {pop.model!r}")

    return LocalPopulation(
        name=pop.name,
        model=pop.model,
        gid_offset=pop.gid_offset,
        lo=lo,
        hi=hi,
        dt_ms=dt_ms,
        params=params,
        state=state,
        buf_exc=buf_exc,
        buf_inh=buf_inh,
        i_base_pA=numeric["i_e_pA"],
        i_ext_pA=numeric["i_e_pA"].copy(),
        spikes_out=np.zeros(n, dtype=np.int64),
        refr=np.zeros(n, dtype=np.int64),
        t_ref_steps=t_ref_steps,
        synapse=synapse,
        integration=integration,
        zeros=np.zeros(n, dtype=np.float64),
    )
