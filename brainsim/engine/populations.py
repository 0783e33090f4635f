"""One population's neurons on one rank: parameters, state, ring buffers, and its update kernel.

A :class:`LocalPopulation` holds struct-of-arrays state for the rank's block of the population;
its neurons own a block of columns of the rank's ring buffers, into which their incoming spikes
are delivered (``n_slots`` rows, enough for the maximum delay). ``advance(first, last, ...)``
runs the model for a run of steps in one numba call (:mod:`brainsim.kernels.advance`), each
step reading and then clearing the row ``step % n_slots``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import IzhikevichParams, LifParams, Population
from brainsim.engine.values import draw_distribution, per_neuron
from brainsim.errors import EngineError
from brainsim.kernels import izhikevich, lif
from brainsim.kernels.advance import advance_izhikevich, advance_lif_delta, advance_lif_exp

__all__ = [
    "SAMPLE_CODES",
    "STATE_UNITS",
    "CurrentTable",
    "LocalPopulation",
    "Sampler",
    "build_population",
    "separates_inhibition",
]

Float64Array = npt.NDArray[np.float64]

STATE_UNITS: dict[str, dict[str, str]] = {
    "lif": dict(lif.LIF_STATE_VARIABLES),
    "izhikevich": dict(izhikevich.IZHIKEVICH_STATE_VARIABLES),
}


@dataclass(frozen=True, slots=True)
class CurrentTable:
    """The DC and noise stimuli of one population as flat tables (see
    :mod:`brainsim.kernels.advance`)."""

    dc_meta: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    dc_idx: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    dc_amp: Float64Array = field(default_factory=lambda: np.zeros(0))
    noise_meta: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 5), np.int64))
    noise_idx: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    noise_gid: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    noise_val: Float64Array = field(default_factory=lambda: np.zeros((0, 3)))


SAMPLE_CODES: dict[str, dict[str, int]] = {
    "lif": {"v": 0, "i_syn_ex": 1, "i_syn_in": 2},
    "izhikevich": {"v": 0, "u": 1},
}
"""Which of a model's state arrays the advance kernels sample for each variable name."""


@dataclass(frozen=True, slots=True)
class Sampler:
    """What a population samples, every ``every`` steps (see
    :func:`~brainsim.kernels.advance.advance_lif_delta`); ``every == 0``: nothing.

    ``samples`` is the scratch the kernel writes one row per sample into.
    """

    every: int = 0
    var: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    idx: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    samples: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))


@dataclass(slots=True, eq=False)
class LocalPopulation:
    """The rank's neurons ``[lo, hi)`` of one population (see the module docstring).

    Its neurons are columns ``col .. col + n`` of the rank's ring buffers.
    """

    name: str
    model: str
    gid_offset: int
    lo: int
    hi: int
    col: int
    dt_ms: float
    params: dict[str, Float64Array]
    state: dict[str, Float64Array]
    i_base_pA: Float64Array
    i_ext_pA: Float64Array
    spikes_out: npt.NDArray[np.int64]
    refr: npt.NDArray[np.int64]
    t_ref_steps: npt.NDArray[np.int64]
    synapse: str
    integration: str = ""
    currents: CurrentTable = field(default_factory=CurrentTable)
    sampler: Sampler = field(default_factory=Sampler)
    zeros: Float64Array = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        """Number of local neurons."""
        return self.hi - self.lo

    @property
    def first_gid(self) -> int:
        """Gid of the first local neuron."""
        return self.gid_offset + self.lo

    def advance(
        self,
        first: int,
        last: int,
        n_gids: int,
        seed: int,
        buf_exc: Float64Array,
        buf_inh: Float64Array,
        keys: npt.NDArray[np.int64],
        n_keys: int,
    ) -> tuple[int, int]:
        """Advance the exchange interval ``first .. last - 1``; append spike keys (relative to
        ``first``) and take the due samples (into ``sampler.samples``); return
        ``(key count, sample rows)``."""
        p, s, c = self.params, self.state, self.currents
        m = self.sampler
        i_base, i_ext, sp = self.i_base_pA, self.i_ext_pA, self.spikes_out
        g0 = self.first_gid
        if self.model == "lif" and self.synapse == "delta":
            return _pair(advance_lif_delta(
                first, last, first, g0, n_gids, seed, buf_exc, self.col, s["v"],
                self.refr, p["p_mm"], p["p_me"], p["e_l_mV"], p["v_th_mV"], p["v_reset_mV"],
                self.t_ref_steps, sp, i_base, i_ext, c.dc_meta, c.dc_idx, c.dc_amp,
                c.noise_meta, c.noise_idx, c.noise_gid, c.noise_val, m.every, m.var, m.idx,
                m.samples, keys, n_keys,
            ))  # fmt: skip
        if self.model == "lif":
            return _pair(advance_lif_exp(
                first, last, first, g0, n_gids, seed, buf_exc, buf_inh, self.col,
                s["v"], s["i_syn_ex"], s["i_syn_in"], self.refr, p["p_mm"], p["p_me"],
                p["p_ex"], p["p_in"], p["p_mex"], p["p_min"], p["e_l_mV"], p["v_th_mV"],
                p["v_reset_mV"], self.t_ref_steps, sp, i_base, i_ext, c.dc_meta, c.dc_idx,
                c.dc_amp, c.noise_meta, c.noise_idx, c.noise_gid, c.noise_val, m.every, m.var,
                m.idx, m.samples, keys, n_keys,
            ))  # fmt: skip
        return _pair(advance_izhikevich(
            first, last, first, g0, n_gids, seed, buf_exc, self.col,
            self.synapse == "current_pulse", s["v"], s["u"], p["a"], p["b"], p["c_mV"], p["d"],
            p["v_peak_mV"], self.dt_ms, self.integration == "published_2003", self.zeros, sp,
            i_base, i_ext, c.dc_meta, c.dc_idx, c.dc_amp, c.noise_meta, c.noise_idx,
            c.noise_gid, c.noise_val, m.every, m.var, m.idx, m.samples, keys, n_keys,
        ))  # fmt: skip


def _pair(result: tuple[int, int]) -> tuple[int, int]:
    return int(result[0]), int(result[1])


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
    col: int,
) -> LocalPopulation:
    """Draw the parameters and initial state of neurons ``[lo, hi)`` of ``pop``, whose ring
    buffer columns start at ``col``."""
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
        col=col,
        i_base_pA=numeric["i_e_pA"],
        i_ext_pA=numeric["i_e_pA"].copy(),
        spikes_out=np.zeros(n, dtype=np.int64),
        refr=np.zeros(n, dtype=np.int64),
        t_ref_steps=t_ref_steps,
        synapse=synapse,
        integration=integration,
        zeros=np.zeros(n, dtype=np.float64),
    )
