"""The neurons of one rank: each population's parameters and state, and the rank-wide tables.

A :class:`LocalPopulation` holds struct-of-arrays state for the rank's block of the population;
its neurons own a block of columns of the rank's ring buffers, into which their incoming spikes
are delivered (``n_slots`` rows, enough for the maximum delay). :class:`NeuronTable` lays every
population of the rank end to end in the tables the compiled step loop advances
(:mod:`brainsim.kernels.advance`); the populations' ``state`` and ``params`` arrays become views
of it, so they always show the current state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import IzhikevichParams, LifParams, Population
from brainsim.engine.values import draw_distribution, per_neuron
from brainsim.errors import EngineError
from brainsim.kernels import izhikevich, lif
from brainsim.kernels.advance import (
    FLAG_CURRENT_PULSE,
    FLAG_PUBLISHED_2003,
    KIND_IZHIKEVICH,
    KIND_LIF_DELTA,
    KIND_LIF_EXP,
    PARAM_ROWS,
    POP_COLUMNS,
    STATE_ROWS,
)

__all__ = [
    "SAMPLE_CODES",
    "STATE_UNITS",
    "CurrentTable",
    "LocalPopulation",
    "NeuronTable",
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
    """The DC and noise stimuli of a rank as flat tables over its columns (see
    :mod:`brainsim.kernels.advance`)."""

    dc_meta: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    dc_idx: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    dc_amp: Float64Array = field(default_factory=lambda: np.zeros(0))
    noise_meta: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 5), np.int64))
    noise_idx: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    noise_gid: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    noise_val: Float64Array = field(default_factory=lambda: np.zeros((0, 3)))
    noise_cache: Float64Array = field(default_factory=lambda: np.zeros((0, 4)))
    noise_block: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


SAMPLE_CODES: dict[str, dict[str, int]] = {
    model: {name: row for row, name in enumerate(rows)} for model, rows in STATE_ROWS.items()
}
"""The state-table row the step loop samples for each model's variable names."""

_KINDS = {("lif", "delta"): KIND_LIF_DELTA, ("lif", "exponential"): KIND_LIF_EXP}


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
    refr: npt.NDArray[np.int64]
    t_ref_steps: npt.NDArray[np.int64]
    synapse: str
    integration: str = ""

    @property
    def n(self) -> int:
        """Number of local neurons."""
        return self.hi - self.lo

    @property
    def first_gid(self) -> int:
        """Gid of the first local neuron."""
        return self.gid_offset + self.lo


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
        refr=np.zeros(n, dtype=np.int64),
        t_ref_steps=t_ref_steps,
        synapse=synapse,
        integration=integration,
    )


_SAMPLE_EVERY = POP_COLUMNS.index("sample_every")
_SAMPLE_N = POP_COLUMNS.index("sample_n")
_SAMPLE_BASE = POP_COLUMNS.index("sample_base")


@dataclass(frozen=True, slots=True)
class NeuronTable:
    """Every local neuron of a rank end to end, as the compiled step loop reads them.

    Column ``c`` of every array is the neuron in ring-buffer column ``c``; ``pops`` has one row
    per population (:data:`~brainsim.kernels.advance.POP_COLUMNS`). ``sample_var`` /
    ``sample_idx`` list, population after population, the (state row, column) pairs each
    population samples.
    """

    pops: npt.NDArray[np.int64]
    state: Float64Array
    params: Float64Array
    refr: npt.NDArray[np.int64]
    t_ref_steps: npt.NDArray[np.int64]
    i_base_pA: Float64Array
    i_ext_pA: Float64Array
    spikes_out: npt.NDArray[np.int64]
    zeros: Float64Array
    sample_var: npt.NDArray[np.int64]
    sample_idx: npt.NDArray[np.int64]

    @classmethod
    def build(
        cls,
        populations: list[LocalPopulation],
        samples: dict[str, tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]]],
    ) -> NeuronTable:
        """The table of ``populations`` (in column order); ``samples[name] = (every, codes,
        local indices)`` for the populations that sample. Each population's ``state``,
        ``params`` and counters become views into the table."""
        n_local = sum(p.n for p in populations)
        state = np.zeros((max(map(len, STATE_ROWS.values())), n_local))
        params = np.zeros((max(map(len, PARAM_ROWS.values())), n_local))
        refr = np.zeros(n_local, dtype=np.int64)
        t_ref = np.zeros(n_local, dtype=np.int64)
        i_base = np.zeros(n_local)
        pops = np.zeros((len(populations), len(POP_COLUMNS)), dtype=np.int64)
        var_parts, idx_parts = [], []
        sample_col = 0
        for p, pop in enumerate(populations):
            c, h = pop.col, pop.col + pop.n
            for row, name in enumerate(STATE_ROWS[pop.model]):
                if name in pop.state:
                    state[row, c:h] = pop.state[name]
                    pop.state[name] = state[row, c:h]
            for row, name in enumerate(PARAM_ROWS[pop.model]):
                params[row, c:h] = pop.params[name]
                pop.params[name] = params[row, c:h]
            refr[c:h], pop.refr = pop.refr, refr[c:h]
            t_ref[c:h], pop.t_ref_steps = pop.t_ref_steps, t_ref[c:h]
            i_base[c:h], pop.i_base_pA = pop.i_base_pA, i_base[c:h]
            if pop.model == "izhikevich":
                kind = KIND_IZHIKEVICH
                flags = (FLAG_CURRENT_PULSE if pop.synapse == "current_pulse" else 0) | (
                    FLAG_PUBLISHED_2003 if pop.integration == "published_2003" else 0
                )
            else:
                kind, flags = _KINDS[(pop.model, pop.synapse)], 0
            every, codes, idx = samples.get(
                pop.name, (0, np.zeros(0, np.int64), np.zeros(0, np.int64))
            )
            pops[p] = (kind, c, pop.n, pop.first_gid, flags, every, sample_col, idx.shape[0], 0)
            var_parts.append(codes.astype(np.int64))
            idx_parts.append(idx.astype(np.int64) + c)
            sample_col += idx.shape[0]
        return cls(
            pops=pops,
            state=state,
            params=params,
            refr=refr,
            t_ref_steps=t_ref,
            i_base_pA=i_base,
            i_ext_pA=i_base.copy(),
            spikes_out=np.zeros(n_local, dtype=np.int64),
            zeros=np.zeros(n_local),
            sample_var=np.concatenate([np.zeros(0, np.int64), *var_parts]),
            sample_idx=np.concatenate([np.zeros(0, np.int64), *idx_parts]),
        )

    def sample_every(self, p: int) -> int:
        """How many steps apart population ``p`` samples (0: never)."""
        return int(self.pops[p, _SAMPLE_EVERY])

    def sample_bytes_per_step(self) -> float:
        """Bytes of samples the rank takes per step, on average."""
        return sum(
            4.0 * float(n) / float(every)
            for every, n in self.pops[:, [_SAMPLE_EVERY, _SAMPLE_N]].tolist()
            if every > 0
        )

    def sample_buffer(
        self, max_steps: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Scratch for the samples of up to ``max_steps`` steps: the flat ``samples`` buffer
        (each population's region recorded in its ``sample_base``) and the row counters."""
        base = 0
        for p in range(self.pops.shape[0]):
            self.pops[p, _SAMPLE_BASE] = base
            every = int(self.pops[p, _SAMPLE_EVERY])
            if every > 0:
                base += (max_steps // every + 1) * int(self.pops[p, _SAMPLE_N])
        return np.zeros(base, dtype=np.float32), np.zeros(self.pops.shape[0], dtype=np.int64)

    def sample_rows(
        self, samples: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], p: int
    ) -> npt.NDArray[np.float32]:
        """Population ``p``'s sample rows taken since ``rows`` was last reset, as a 2-D view."""
        m = int(self.pops[p, _SAMPLE_N])
        base = int(self.pops[p, _SAMPLE_BASE])
        return samples[base : base + int(rows[p]) * m].reshape(int(rows[p]), m)
