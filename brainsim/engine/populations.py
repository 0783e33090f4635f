"""The neurons of one rank: each population's parameters and state, and the rank-wide tables.

A :class:`LocalPopulation` holds struct-of-arrays state for the rank's block of the population;
its neurons own a block of columns of the rank's ring buffers, into which their incoming spikes
are delivered (``n_slots`` rows, enough for the maximum delay). :class:`NeuronTable` lays every
population of the rank end to end in the tables the compiled step loop advances
(:mod:`brainsim.kernels.advance`); the populations' ``state`` and ``params`` arrays become views
of it, so they always show the current state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from brainsim.circuit import expressions
from brainsim.circuit.spec import Population
from brainsim.engine.values import draw_distribution, per_neuron
from brainsim.kernels import lif
from brainsim.kernels.advance import FLAGS, KINDS, PARAM_ROWS, POP_COLUMNS, STATE_ROWS
from brainsim.models import NEURON_MODELS, Variant

__all__ = [
    "SAMPLE_CODES",
    "STATE_UNITS",
    "CurrentTable",
    "LocalPopulation",
    "NeuronTable",
    "build_population",
    "lif_current_gain",
    "neuron_parameters",
    "neuron_values",
    "separates_inhibition",
]

Float64Array = npt.NDArray[np.float64]

STATE_UNITS: dict[str, dict[str, str]] = {
    name: {s.name: s.unit for s in model.all_state() if s.recordable}
    for name, model in NEURON_MODELS.items()
}
"""The unit of each recordable state variable of each model, as declared."""


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


@dataclass(slots=True, eq=False)
class LocalPopulation:
    """The rank's neurons ``[lo, hi)`` of one population (see the module docstring).

    Its neurons are columns ``col .. col + n`` of the rank's ring buffers. ``state`` and
    ``params`` hold the rows of its model variant, in the order of the step loop's tables;
    ``kind`` and ``flags`` tell the step loop which kernel advances it and how.
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
    kind: int
    flags: int = 0

    @property
    def n(self) -> int:
        """Number of local neurons."""
        return self.hi - self.lo

    @property
    def first_gid(self) -> int:
        """Gid of the first local neuron."""
        return self.gid_offset + self.lo


def separates_inhibition(pop: Population) -> bool:
    """Whether ``pop`` keeps excitatory and inhibitory input apart (current synapses)."""
    return pop.variant.separates_inhibition


def _lif_rows(numeric: Mapping[str, Float64Array], dt_ms: float) -> dict[str, Float64Array]:
    """Every parameter row a LIF variant may declare: its parameters and the propagators."""
    args = (numeric["tau_m_ms"], numeric["c_m_pF"], numeric["tau_syn_ex_ms"],
            numeric["tau_syn_in_ms"], dt_ms)  # fmt: skip
    derived = (lif.lif_propagators(*args), lif.lif_alpha_propagators(*args))
    return {**numeric, **{f.name: getattr(d, f.name) for d in derived for f in fields(d)}}


def _parameter_rows(numeric: Mapping[str, Float64Array], dt_ms: float) -> dict[str, Float64Array]:
    """The rows of a model whose kernel reads its parameters as given."""
    del dt_ms
    return dict(numeric)


_ROW_SOURCES: dict[str, Callable[[Mapping[str, Float64Array], float], dict[str, Float64Array]]] = {
    "lif": _lif_rows,
    "izhikevich": _parameter_rows,
    "parrot": _parameter_rows,
}
"""Per model, what its declared parameter rows are computed from."""


def lif_current_gain(tau_m_ms: float, tau_syn_ms: float, dt_ms: float) -> float:
    """How far one step of a ``lif`` with exponential synapses and ``c_m_pF = 1`` moves ``V``
    (mV) per pA of synaptic current at the step's start: the exact propagator ``p_mex`` of
    :func:`brainsim.kernels.lif.lif_propagators`, which is inversely proportional to
    ``c_m_pF`` (a compiler that needs a given gain divides by it)."""
    rows = lif.lif_propagators(tau_m_ms, 1.0, tau_syn_ms, tau_syn_ms, dt_ms)
    return float(rows.p_mex[0])


def _neuron_values(
    pop: Population, lo: int, hi: int, *, seed: int
) -> Callable[[str, str, object], Float64Array]:
    """``value(section, name, v)``: the value ``v`` at ``populations.<pop>.<section>.<name>``
    for neurons ``[lo, hi)`` of ``pop``, with the population's random variables drawn."""
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

    return value


def neuron_parameters(pop: Population, lo: int, hi: int, *, seed: int) -> dict[str, Float64Array]:
    """Every numeric parameter of ``pop``'s model for its neurons ``[lo, hi)``, drawn as the
    engine draws them (keyed by gid), by name."""
    return _parameters(pop, _neuron_values(pop, lo, hi, seed=seed))


def _parameters(
    pop: Population, value: Callable[[str, str, object], Float64Array]
) -> dict[str, Float64Array]:
    return {
        p.name: value("params", p.name, getattr(pop.params, p.name))
        for p in NEURON_MODELS[pop.model].all_parameters()
    }


def _initial_state(
    pop: Population,
    value: Callable[[str, str, object], Float64Array],
    numeric: dict[str, Float64Array],
    n: int,
) -> dict[str, Float64Array]:
    """Each state variable of ``n`` neurons: from ``initial``, or its declared default."""
    state: dict[str, Float64Array] = {}
    for s in pop.variant.state:
        given = None if s.initial_key is None else pop.initial.get(s.initial_key)
        if given is None:
            known = {**numeric, **state}
            default = expressions.evaluate(expressions.parse_expression(s.default, known), known)
            state[s.name] = np.broadcast_to(np.asarray(default, dtype=np.float64), (n,)).copy()
        else:
            state[s.name] = value("initial", str(s.initial_key), given)
    return state


def neuron_values(
    pop: Population, seed: int
) -> tuple[dict[str, Float64Array], dict[str, Float64Array]]:
    """Every neuron's parameters (by the model's parameter names) and initial state, drawn as
    the ranks draw them (keyed by gid): for compilers that list them (:mod:`brainsim.backends`),
    never for the engine itself."""
    value = _neuron_values(pop, 0, pop.size, seed=seed)
    numeric = _parameters(pop, value)
    return numeric, _initial_state(pop, value, numeric, pop.size)


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
    buffer columns start at ``col``.

    The rows follow the declaration of the population's model variant: each parameter row
    from its parameter or a propagator, each state variable from ``initial`` or its declared
    default; a model with ``t_ref_ms`` is refractory for it (in whole steps), and ``i_e_pA`` is
    the constant current of a model that has it (a parrot takes none).
    """
    value = _neuron_values(pop, lo, hi, seed=seed)
    variant = pop.variant
    numeric = _parameters(pop, value)
    rows = _ROW_SOURCES[pop.model](numeric, dt_ms)
    n = hi - lo
    state = _initial_state(pop, value, numeric, n)
    t_ref_ms = numeric.get("t_ref_ms")
    i_e_pA = numeric.get("i_e_pA")
    return LocalPopulation(
        name=pop.name,
        model=pop.model,
        gid_offset=pop.gid_offset,
        lo=lo,
        hi=hi,
        dt_ms=dt_ms,
        params={row: rows[row] for row in variant.param_rows},
        state=state,
        col=col,
        i_base_pA=np.zeros(n) if i_e_pA is None else i_e_pA,
        refr=np.zeros(n, dtype=np.int64),
        t_ref_steps=np.zeros(n, np.int64)
        if t_ref_ms is None
        else lif.refractory_steps(t_ref_ms, dt_ms),
        kind=KINDS[variant.kernel],
        flags=_flags(variant),
    )


def _flags(variant: Variant) -> int:
    """The kernel flags the variant's choices set."""
    return sum(FLAGS.get(choice, 0) for choice in variant.choices)


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
        # As many rows as the rank's largest variant has: a variant's rows lead its model's.
        state = np.zeros((max((len(p.state) for p in populations), default=1), n_local))
        params = np.zeros((max((len(p.params) for p in populations), default=1), n_local))
        refr = np.zeros(n_local, dtype=np.int64)
        t_ref = np.zeros(n_local, dtype=np.int64)
        i_base = np.zeros(n_local)
        pops = np.zeros((len(populations), len(POP_COLUMNS)), dtype=np.int64)
        var_parts, idx_parts = [], []
        sample_col = 0
        for p, pop in enumerate(populations):
            c, h = pop.col, pop.col + pop.n
            for row, name in enumerate(STATE_ROWS[pop.model][: len(pop.state)]):
                state[row, c:h] = pop.state[name]
                pop.state[name] = state[row, c:h]
            for row, name in enumerate(PARAM_ROWS[pop.model][: len(pop.params)]):
                params[row, c:h] = pop.params[name]
                pop.params[name] = params[row, c:h]
            refr[c:h], pop.refr = pop.refr, refr[c:h]
            t_ref[c:h], pop.t_ref_steps = pop.t_ref_steps, t_ref[c:h]
            i_base[c:h], pop.i_base_pA = pop.i_base_pA, i_base[c:h]
            every, codes, idx = samples.get(
                pop.name, (0, np.zeros(0, np.int64), np.zeros(0, np.int64))
            )
            pops[p] = (pop.kind, c, pop.n, pop.first_gid, pop.flags, every, sample_col,
                       idx.shape[0], 0)  # fmt: skip
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
