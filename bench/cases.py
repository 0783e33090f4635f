"""The benchmark cases and the circuit files every simulator runs for them.

A case is a circuit file of ``circuits/`` plus parameter changes: the 4x Brunel network scales
the base file's ``NE``/``NI`` (same in-degrees), the microcircuit at scale 0.1 sets ``scale``,
as does NEST's HPC benchmark at scale 0.1 (in-degree 11,250 at every scale). The plastic
cases (``brunel_stdp``, ``hpc_benchmark*``) name a ``static_twin``, a case whose brainsim
bytes per synapse price their static synapses when bytes per plastic synapse are estimated.
:func:`write_variant` loads the base file with those parameters through brainsim's own loader
and writes the normalized document as a JSON circuit file, so brainsim, NEST and Brian2 all
read the same resolved numbers. Every variant records the spikes of all populations and no
state (the benchmark measures the same recording everywhere).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainsim.circuit import Circuit, load_circuit
from brainsim.circuit.spec import (
    AllToAll,
    FixedIndegree,
    FixedOutdegree,
    FixedTotalNumber,
    OneToOne,
    PairwiseBernoulli,
    Population,
    Projection,
)

__all__ = [
    "BASELINE",
    "CASES",
    "HPC_PRIOR_BYTES_PER_SYNAPSE",
    "RATE_SEEDS",
    "STDP_PRIOR_BYTES_PER_SYNAPSE",
    "Case",
    "CaseInfo",
    "case_info",
    "expected_synapses",
    "seed_variant",
    "select_cases",
    "variant_document",
    "write_variant",
]

STDP_PRIOR_BYTES_PER_SYNAPSE: Mapping[str, float] = {"brainsim": 100.0, "nest": 130.0}
"""Memory prior of ``brunel_stdp`` (peak bytes per synapse, all synapses, until the circuit
file has been measured): measured 91 (brainsim, 2 ranks) and 115 (NEST's ``stdp_synapse``, 2
threads) on 2026-12-02, above the suite's priors for static synapses (16 and 80)."""

HPC_PRIOR_BYTES_PER_SYNAPSE: Mapping[str, float] = {"brainsim": 90.0, "nest": 70.0}
"""Memory prior of the HPC benchmark: measured at scale 0.1, 79 (brainsim, 2 ranks) and 58
(NEST's ``stdp_pl_synapse_hom``, 2 threads; 43 with static E->E synapses) on 2026-12-02."""

RATE_SEEDS = 5
"""Realizations per case whose mean population rates are compared (:attr:`Case.rate_seeds`)."""


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmark case: a base circuit file and how the benchmark changes it."""

    name: str
    """Short identifier used on the command line and in tables (``brunel_x4``)."""
    circuit: str
    """Base circuit file, relative to the repository root."""
    description: str
    """One line for tables."""
    multiply: Mapping[str, float] = field(default_factory=dict)
    """Parameters multiplied by a factor (their base value is read from the file)."""
    set_parameters: Mapping[str, float] = field(default_factory=dict)
    """Parameters replaced by a value."""
    quick: bool = False
    """Whether ``--quick`` runs this case (with ``quick_parameters`` and ``quick_duration_ms``)."""
    quick_parameters: Mapping[str, float] = field(default_factory=dict)
    """Parameter values that replace ``set_parameters`` entries under ``--quick``."""
    quick_duration_ms: float = 100.0
    """Simulated time under ``--quick`` (ms)."""
    warmup: str | None = None
    """A smaller case with the same kernels whose circuit warms the JIT cache for this one."""
    rate_seeds: int = RATE_SEEDS
    """Realizations whose mean population rates are compared between simulators: the circuit's
    own seed and the next ``rate_seeds - 1`` (one realization's rates vary by several per cent
    in small networks; brainsim's correctness tests compare means over seeds too)."""
    static_twin: str | None = None
    """A case with static synapses stored as this case's static ones are (constant weight, one
    delay, as wide targets) whose brainsim bytes per synapse price them, so that the rest of
    this case's memory is charged to its plastic synapses (``bench.report``)."""
    prior_bytes_per_synapse: Mapping[str, float] = field(default_factory=dict)
    """Per simulator, the peak bytes per synapse to predict memory with before this circuit
    file has been measured, in place of the suite's prior (plastic synapses cost both
    simulators more than static ones)."""


CASES: tuple[Case, ...] = (
    Case(
        "brunel",
        "circuits/brunel_delta.yaml",
        "Brunel (2000) delta network, 12,500 neurons, 1 s",
        quick=True,
        quick_duration_ms=200.0,
    ),
    Case(
        "brunel_x4",
        "circuits/brunel_delta.yaml",
        "Brunel network at 4x size (NE, NI x 4; same CE, CI), 50,000 neurons, 1 s",
        multiply={"NE": 4.0, "NI": 4.0},
        warmup="brunel",
    ),
    Case(
        "izhikevich",
        "circuits/izhikevich_2003.yaml",
        "Izhikevich (2003) network, 1,000 neurons, all-to-all, 1 s",
        quick=True,
        quick_duration_ms=200.0,
    ),
    Case(
        "microcircuit_0.1",
        "circuits/potjans_diesmann_2014.yaml",
        "Potjans & Diesmann (2014) microcircuit at scale 0.1, 1 s",
        set_parameters={"scale": 0.1},
        quick=True,
        quick_parameters={"scale": 0.02},
    ),
    Case(
        "microcircuit",
        "circuits/potjans_diesmann_2014.yaml",
        "Potjans & Diesmann (2014) microcircuit at full scale, 77,169 neurons, 1 s",
        set_parameters={"scale": 1.0},
        warmup="microcircuit_0.1",
        # One NEST run takes about 7 minutes here; at 77,169 neurons one realization's rates
        # already agree within 2 %.
        rate_seeds=1,
    ),
    Case(
        "brunel_stdp",
        "circuits/brunel_stdp.yaml",
        "Brunel network with multiplicative STDP on E->E (10 M plastic synapses), 1 s",
        quick=True,
        quick_duration_ms=200.0,
        static_twin="brunel",
        prior_bytes_per_synapse=STDP_PRIOR_BYTES_PER_SYNAPSE,
    ),
    Case(
        "hpc_benchmark_0.1",
        "circuits/hpc_benchmark.yaml",
        "NEST's hpc_benchmark at scale 0.1 (1,125 neurons, in-degree 11,250, power-law STDP), "
        "300 ms",
        set_parameters={"scale": 0.1},
        quick=True,
        quick_parameters={"scale": 0.02},
        static_twin="brunel",
        prior_bytes_per_synapse=HPC_PRIOR_BYTES_PER_SYNAPSE,
    ),
    Case(
        "hpc_benchmark",
        "circuits/hpc_benchmark.yaml",
        "NEST's hpc_benchmark at scale 1 (11,250 neurons, 126.6 M synapses, 81 M plastic), 300 ms",
        set_parameters={"scale": 1.0},
        warmup="hpc_benchmark_0.1",
        static_twin="brunel",
        prior_bytes_per_synapse=HPC_PRIOR_BYTES_PER_SYNAPSE,
        # One realization, as for the full microcircuit: a NEST run of 126.6 M synapses takes
        # minutes here. Not checked: whether realizations at scale 1 differ as much as at 0.1,
        # where some leave the asynchronous state within the 300 ms and some do not.
        rate_seeds=1,
    ),
)
"""The cases of ``python -m bench all``, smallest first within each circuit family."""

BASELINE = Case(
    "baseline",
    "circuits/tiny.yaml",
    "100-neuron circuit whose peak memory is each simulator's baseline",
    quick=True,
)
"""The tiny circuit measured once per simulator: its peak RSS is subtracted for bytes/synapse."""


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """Sizes of a case's circuit that the metrics need (the same for every simulator)."""

    name: str
    path: str
    """The variant circuit file every simulator ran."""
    duration_ms: float
    population_sizes: dict[str, int]
    projections: list[tuple[str, int]]
    """(source population, expected synapse count) per projection, for synaptic events."""
    plastic: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per plastic projection: its synapse ``model``, ``expected_synapses`` and
    ``initial_weight`` (None when the initial weights are drawn)."""

    @property
    def n_synapses(self) -> int:
        """Expected number of synapses (exact for the fixed-number rules of the cases)."""
        return sum(count for _, count in self.projections)

    @property
    def n_neurons(self) -> int:
        """Number of neurons."""
        return sum(self.population_sizes.values())


def select_cases(names: list[str]) -> list[Case]:
    """The cases named (``all`` = every case), in suite order; unknown names raise ValueError."""
    known = {case.name: case for case in CASES}
    if not names or "all" in names:
        return list(CASES)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; valid: all, {', '.join(known)}")
    return [case for case in CASES if case.name in names]


def _parameters(case: Case, root: Path, quick: bool) -> dict[str, float]:
    parameters = dict(case.set_parameters)
    if quick:
        parameters.update(case.quick_parameters)
    if case.multiply:
        base = load_circuit(root / case.circuit, memory_limit_bytes=0)
        for name, factor in case.multiply.items():
            parameters[name] = base.parameters[name] * factor
    return parameters


def variant_document(case: Case, root: Path, quick: bool) -> dict[str, object]:
    """The normalized circuit document of ``case`` (parameters applied, all spikes recorded)."""
    circuit = load_circuit(
        root / case.circuit, parameters=_parameters(case, root, quick), memory_limit_bytes=0
    )
    document = copy.deepcopy(dict(circuit.document))
    document["name"] = f"{circuit.name}-{case.name}".replace("_", "-").replace(".", "-")
    document["recordings"] = {"spikes": list(circuit.populations), "state": []}
    if quick:
        simulation = dict(document["simulation"])
        simulation["duration_ms"] = case.quick_duration_ms
        document["simulation"] = simulation
    return document


def write_variant(case: Case, root: Path, folder: Path, quick: bool) -> Path:
    """Write the case's circuit as ``<folder>/<case>[-quick].json`` and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{case.name}{'-quick' if quick else ''}.json"
    text = json.dumps(variant_document(case, root, quick), indent=1) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def seed_variant(path: Path, seed: int) -> Path:
    """A copy of the variant file ``path`` with ``simulation.seed`` set to ``seed``, written
    beside it as ``<stem>-seed<seed>.json``: another realization of the same circuit."""
    document = json.loads(path.read_text(encoding="utf-8"))
    document["simulation"] = {**document["simulation"], "seed": seed}
    variant = path.with_name(f"{path.stem}-seed{seed}.json")
    variant.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return variant


def expected_synapses(projection: Projection, populations: Mapping[str, Population]) -> int:
    """Expected synapse count of a projection's rule (exact for all but pairwise_bernoulli)."""
    n_source = populations[projection.source].size
    n_target = populations[projection.target].size
    rule = projection.connectivity
    if isinstance(rule, FixedIndegree):
        return rule.indegree * n_target
    if isinstance(rule, FixedOutdegree):
        return rule.outdegree * n_source
    if isinstance(rule, FixedTotalNumber):
        return rule.n
    if isinstance(rule, OneToOne):
        return n_target
    pairs = n_source * n_target
    if projection.source == projection.target and not getattr(rule, "allow_autapses", True):
        pairs -= n_target
    if isinstance(rule, AllToAll):
        return pairs
    if isinstance(rule, PairwiseBernoulli):
        return round(rule.p * pairs)
    raise ValueError(f"projections.{projection.name}: rule {rule.rule!r} is not benchmarked")


def case_info(name: str, path: Path) -> tuple[CaseInfo, Circuit]:
    """Load a variant file and describe it."""
    circuit = load_circuit(path, memory_limit_bytes=0)
    projections = [
        (p.source, expected_synapses(p, circuit.populations)) for p in circuit.projections.values()
    ]
    plastic = {
        p.name: {
            "model": p.synapse.model,
            "expected_synapses": expected_synapses(p, circuit.populations),
            "initial_weight": float(p.weight) if isinstance(p.weight, float | int) else None,
        }
        for p in circuit.projections.values()
        if p.plastic
    }
    info = CaseInfo(
        name=name,
        path=str(path),
        duration_ms=circuit.simulation.duration_ms,
        population_sizes={name: pop.size for name, pop in circuit.populations.items()},
        projections=projections,
        plastic=plastic,
    )
    return info, circuit
