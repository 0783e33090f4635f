"""The ``nir`` target: a circuit as a NIR graph (``brainsim compile CIRCUIT --target nir``).

Each population becomes one node, named after it: ``lif`` with delta synapses a ``LIF``, with
exponential synapses a ``CubaLIF``, a parrot population that only stimuli drive an ``Input``
(what feeds it is the graph's input data, not part of the graph). Each projection becomes a
``Linear`` node with the explicit weight matrix of the synapses brainsim builds (the engine's
own construction, :func:`brainsim.engine.connectivity.projection_synapses`, so the weights are
the ones simulated, for the circuit's seed), one per distinct delay, each followed by a
``Delay`` node of its delay minus one step when that is not zero. Each population whose spikes
are recorded gets an ``Output`` node ``<population>.output``. Units and the time grid follow
:mod:`.nir_mapping`; docs/targets.md lists the parameters and the violations.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from brainsim.backends.base import Artefact, Capabilities, Violation, refuse_violations
from brainsim.backends.nir_mapping import (
    META_CIRCUIT,
    META_DISCRETIZATION,
    META_DT,
    META_INDEX,
    META_POPULATION,
    META_PROJECTION,
    MS_PER_S,
    load_nir,
)
from brainsim.backends.numba_mpi import connection_rules, literal_tags, variant_label
from brainsim.circuit.spec import (
    Circuit,
    DCStimulus,
    NoiseStimulus,
    Population,
    SpikeStimulus,
)
from brainsim.errors import TargetError
from brainsim.models import NEURON_MODELS, SYNAPSE_MODELS

if TYPE_CHECKING:
    from brainsim.engine.connectivity import ProjectionSynapses

__all__ = ["MAX_MATRIX_ENTRIES", "TARGET", "NirBackend"]

TARGET: Final = "nir"

MAX_MATRIX_ENTRIES: Final = 1 << 27
"""The largest weight matrix (entries) a projection may need: NIR's ``Linear`` is dense, and
2**27 float64 entries are 1 GiB."""

_PRIMITIVES = "LIF, CubaLIF, IF, LI (neurons) and Input"

Float64Array = npt.NDArray[np.float64]


class NirBackend:
    """The NIR target (see the module docstring); it compiles, it does not run here."""

    @property
    def name(self) -> str:
        """``nir``."""
        return TARGET

    def capabilities(self) -> Capabilities:
        """What a NIR graph can hold, from the models' declared NIR names."""
        variants = [v for m in NEURON_MODELS.values() for v in m.variants()]
        return Capabilities(
            target=TARGET,
            summary="Neuromorphic Intermediate Representation graph (nir 1.0): Loihi 2 "
            "(Lava), SpiNNaker2, Xylo (Rockpool), Speck (Sinabs), snnTorch, Norse, ...",
            neuron_models=tuple(
                f"{variant_label(v)} -> {v.target_name(TARGET)}"
                for v in variants
                if v.target_name(TARGET) is not None
            ),
            synapse_models=tuple(
                m.name for m in SYNAPSE_MODELS.values() if m.target_name(TARGET) is not None
            ),
            plasticity=False,
            stimuli=tuple(
                f"{t} (onto parrot populations only: their NIR Input is the graph's input)"
                for t in literal_tags(SpikeStimulus, "type")
            ),
            connection_rules=connection_rules(),
            delays="any multiple of dt: a Delay node of delay - dt per distinct delay",
            runs_here=False,
            output="<name>.nir (HDF5, nir.write), one node per population and per "
            "projection and delay, Output nodes for recorded spikes",
        )

    def check(self, circuit: Circuit) -> list[Violation]:
        """Every part of ``circuit`` a NIR graph cannot express."""
        out: list[Violation] = []
        for pop in circuit.populations.values():
            out += _population_violations(pop)
        inputs = {n for n, p in circuit.populations.items() if _primitive(p) == "Input"}
        for proj in circuit.projections.values():
            base = f"projections.{proj.name}"
            if proj.target in inputs:
                out.append(
                    Violation(
                        f"{base}.target",
                        f"population {proj.target!r} is a parrot "
                        "population, a NIR Input node, which takes no edges",
                    )
                )
            if SYNAPSE_MODELS[proj.synapse.model].target_name(TARGET) is None:
                out.append(
                    Violation(
                        f"{base}.synapse.model",
                        f"NIR weights are fixed: "
                        f"plasticity ({proj.synapse.model}) cannot be expressed",
                    )
                )
            entries = circuit.populations[proj.source].size * circuit.populations[proj.target].size
            if entries > MAX_MATRIX_ENTRIES:
                out.append(
                    Violation(
                        base,
                        f"its dense NIR weight matrix would have {entries} "
                        f"entries, more than {MAX_MATRIX_ENTRIES}",
                    )
                )
        for stim in circuit.stimuli.values():
            base = f"stimuli.{stim.name}"
            if isinstance(stim, DCStimulus | NoiseStimulus):
                out.append(
                    Violation(
                        f"{base}.type",
                        f"NIR graphs take no input currents "
                        f"({stim.type}); only spikes into Input nodes",
                    )
                )
                continue
            driven = {t.population for t in stim.targets}
            driven |= {t.population for t in getattr(stim, "targets_off", ())}
            for name in sorted(driven - inputs):
                out.append(
                    Violation(
                        f"{base}.targets",
                        f"population {name!r} is not a parrot "
                        "population: NIR graphs have no stimuli, their input enters "
                        "through Input nodes (parrot populations)",
                    )
                )
        for k, _ in enumerate(circuit.recordings.state):
            out.append(
                Violation(
                    f"recordings.state[{k}]",
                    "NIR graphs output spikes only "
                    "(Output nodes): state recordings cannot be expressed",
                )
            )
        return out

    def compile(self, circuit: Circuit, out_dir: str | os.PathLike[str]) -> Artefact:
        """Write ``<out_dir>/<circuit name>.nir`` with ``nir.write``."""
        refuse_violations(TARGET, circuit, self.check(circuit))
        nir = load_nir()
        try:
            graph = nir.NIRGraph(*_graph_parts(circuit), metadata=_graph_metadata(circuit))
        except ValueError as exc:  # nir's type inference: an Input node without edges
            raise TargetError(f"nir cannot type the graph of {circuit.name!r}", [str(exc)]) from exc
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{circuit.name}.nir"
        nir.write(path, graph)
        return Artefact(target=TARGET, paths=(str(path),))


def _primitive(pop: Population) -> str | None:
    return pop.variant.target_name(TARGET)


def _population_violations(pop: Population) -> list[Violation]:
    base = f"populations.{pop.name}"
    primitive = _primitive(pop)
    if primitive is None:
        declared = NEURON_MODELS[pop.model]
        if any(v.target_name(TARGET) for v in declared.variants()):
            chosen = dict(pop.variant.choices)
            culprits = [
                name
                for name in chosen
                if any(
                    declared.variant(chosen | {name: o.value}).target_name(TARGET)
                    for o in declared.choice(name).options
                )
            ]
            field = f"{base}.params.{culprits[0]}" if len(culprits) == 1 else f"{base}.params"
            choices = ", ".join(f"{k}: {v}" for k, v in chosen.items())
            return [
                Violation(
                    field,
                    f"NIR has no primitive for {pop.model} with {choices} "
                    f"(NIR's neurons: {_PRIMITIVES})",
                )
            ]
        return [
            Violation(
                f"{base}.model", f"NIR has no {pop.model} neuron (its neurons: {_PRIMITIVES})"
            )
        ]
    out = []
    if pop.initial:
        out.append(Violation(f"{base}.initial", "NIR graphs carry no initial state"))
    if primitive == "Input":
        return out
    if pop.params.i_e_pA != 0.0:  # type: ignore[union-attr]
        out.append(
            Violation(
                f"{base}.params.i_e_pA",
                f"NIR's {primitive} takes no constant "
                "current (an Affine bias would be filtered by CubaLIF's synapse; "
                "v_leak + R I_e would move where the neurons start)",
            )
        )
    if pop.params.t_ref_ms != 0.0:  # type: ignore[union-attr]
        out.append(
            Violation(
                f"{base}.params.t_ref_ms",
                f"NIR's {primitive} has no refractory period: only t_ref_ms: 0 can be expressed",
            )
        )
    tau_ex, tau_in = pop.params.tau_syn_ex_ms, pop.params.tau_syn_in_ms  # type: ignore[union-attr]
    if primitive == "CubaLIF" and not (isinstance(tau_ex, float) and tau_ex == tau_in):
        out.append(
            Violation(
                f"{base}.params.tau_syn_in_ms",
                "NIR's CubaLIF has one synaptic "
                "time constant: tau_syn_in_ms must equal tau_syn_ex_ms",
            )
        )
    return out


def _graph_metadata(circuit: Circuit) -> dict[str, Any]:
    return {
        META_DT: circuit.simulation.dt_ms / MS_PER_S,
        META_DISCRETIZATION: "exact",
        META_CIRCUIT: circuit.name,
    }


def _graph_parts(circuit: Circuit) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The nodes and edges of ``circuit``'s graph."""
    from brainsim.engine.connectivity import projection_synapses

    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for index, pop in enumerate(circuit.populations.values()):
        nodes[pop.name] = _population_node(circuit, pop, index)
    for index, proj in enumerate(circuit.projections.values()):
        synapses = projection_synapses(circuit, proj)
        shape = (circuit.populations[proj.target].size, circuit.populations[proj.source].size)
        steps = np.unique(synapses.delay_steps) if synapses.sources.size else np.ones(1, np.int64)
        for d in steps.tolist():
            name = proj.name if steps.size == 1 else f"{proj.name}.{d}"
            _add_projection(
                nodes,
                edges,
                circuit,
                proj.source,
                proj.target,
                name,
                _weights(synapses, d, shape),
                d,
                {META_PROJECTION: proj.name, META_INDEX: index},
            )
    nir = load_nir()
    for name in circuit.recordings.spikes:
        size = circuit.populations[name].size
        nodes[f"{name}.output"] = nir.Output(output_type=np.array([size]))
        edges.append((name, f"{name}.output"))
    return nodes, edges


def _weights(synapses: ProjectionSynapses, steps: int, shape: tuple[int, int]) -> Float64Array:
    """The weight matrix ``[target, source]`` of the synapses of ``steps`` delay."""
    matrix = np.zeros(shape, dtype=np.float64)
    keep = synapses.delay_steps == steps
    np.add.at(matrix, (synapses.targets[keep], synapses.sources[keep]), synapses.weights[keep])
    return matrix


def _add_projection(
    nodes: dict[str, Any],
    edges: list[tuple[str, str]],
    circuit: Circuit,
    source: str,
    target: str,
    name: str,
    weights: Float64Array,
    steps: int,
    metadata: dict[str, Any],
) -> None:
    nir = load_nir()
    nodes[name] = nir.Linear(weight=weights, metadata=dict(metadata))
    edges.append((source, name))
    if steps == 1:
        edges.append((name, target))
        return
    delay_s = (steps - 1) * circuit.simulation.dt_ms / MS_PER_S
    nodes[f"{name}.delay"] = nir.Delay(
        delay=np.full(weights.shape[0], delay_s), metadata=dict(metadata)
    )
    edges += [(name, f"{name}.delay"), (f"{name}.delay", target)]


def _population_node(circuit: Circuit, pop: Population, index: int) -> Any:
    """The node of ``pop``: per-neuron parameter arrays, drawn as the engine draws them."""
    from brainsim.engine.populations import neuron_parameters

    nir = load_nir()

    metadata = {META_POPULATION: pop.name, META_INDEX: index}
    primitive = _primitive(pop)
    if primitive == "Input":
        return nir.Input(input_type=np.array([pop.size]), metadata=metadata)
    p = neuron_parameters(pop, 0, pop.size, seed=circuit.simulation.seed)
    dt_ms = circuit.simulation.dt_ms
    r_gohm = p["tau_m_ms"] / p["c_m_pF"]
    v_leak = p["e_l_mV"]
    if primitive == "LIF":
        return nir.LIF(
            tau=p["tau_m_ms"] / MS_PER_S,
            r=p["tau_m_ms"] / dt_ms,
            v_leak=v_leak,
            v_threshold=p["v_th_mV"],
            v_reset=p["v_reset_mV"],
            metadata=metadata,
        )
    return nir.CubaLIF(
        tau_syn=p["tau_syn_ex_ms"] / MS_PER_S,
        tau_mem=p["tau_m_ms"] / MS_PER_S,
        r=r_gohm,
        v_leak=v_leak,
        v_threshold=p["v_th_mV"],
        v_reset=p["v_reset_mV"],
        w_in=p["tau_syn_ex_ms"] / dt_ms,
        metadata=metadata,
    )
