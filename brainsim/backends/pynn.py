"""The ``pynn`` target: a circuit as a standalone PyNN 0.13 script with its data files.

``brainsim compile CIRCUIT --target pynn[:SIMULATOR] -o DIR`` writes ``DIR/run.py`` and
``DIR/data/*.npz``. ``python run.py SIMULATOR [--out RESULTS]`` runs it on ``nest``
(``pyNN.nest``) or ``spiNNaker`` (``pyNN.spiNNaker``, sPyNNaker) and writes each population
whose spikes the circuit records with PyNN's ``write_data`` to ``RESULTS/<population>.pkl``
(Neo, pickle), and the final weights of each plastic projection to
``RESULTS/<projection>.<receptor>.weights.npz``. ``pynn:brainscales2`` checks a circuit
against BrainScaleS-2's limits but writes no script (:data:`SIMULATORS_NOTE`).

The script is explicit: every synapse brainsim builds for the circuit's seed (the engine's own
construction, :func:`brainsim.engine.connectivity.projection_synapses`) is listed in
``data/<projection>.npz`` and connected with ``FromListConnector``, and every per-neuron value
(drawn parameters, initial state) is in ``data/<population>.npz``, so the PyNN network is the
brainsim network, not a redraw of it.

Mapping (docs/targets.md has the table and the units):

- ``lif`` with ``delta``, ``exponential``, ``alpha`` synapses -> ``IF_curr_delta``,
  ``IF_curr_exp``, ``IF_curr_alpha`` (the names each model declares for ``pynn``);
  ``izhikevich`` -> ``Izhikevich`` (``v_peak_mV`` must be PyNN's fixed 30 mV; a
  ``current_pulse`` weight ``w`` held for one step becomes ``w * dt`` mV added to ``v``, as NEST's
  ``izhikevich`` does, exact to first order and identical at the 2003 network's ``dt`` of 1 ms;
  on NEST the script sets ``consistent_integration`` to match ``integration``).
- Positive weights go to the ``excitatory`` receptor, negative ones to the ``inhibitory`` one
  (PyNN's convention for current-based synapses: inhibitory weights are negative); a
  projection with both is two PyNN projections. A plastic projection must excite.
- ``stdp`` (NEST's ``stdp_synapse``) -> ``STDPMechanism(SpikePairRule(tau_plus, tau_minus,
  A_plus = lambda, A_minus = alpha * lambda), weight dependence)``: ``mu_plus = mu_minus = 0``
  additive, ``= 1`` multiplicative, otherwise Gütig's, ``w_min`` 0, all of the delay
  dendritic (``dendritic_delay_fraction`` 1).
- ``poisson`` -> a ``SpikeSourcePoisson`` per target neuron (one-to-one), ``dc`` ->
  ``DCSource``, ``noise`` -> ``NoisyCurrentSource`` (a draw every step),
  ``spike_source_array`` -> one ``SpikeSourceArray`` onto every target, ``spike_trains`` -> a
  ``SpikeSourceArray`` per target neuron.

What PyNN's standard models cannot say is a :class:`~brainsim.backends.base.Violation`: parrot
neurons, ``stdp_power_law``, the data encoders that draw their spikes in brainsim (``rate``,
``latency``, ``population``, ``delta``: give their spikes as ``spike_trains``), per-neuron
distributions of stimulus values, synaptic currents at the start, state recordings. A
platform adds its own limits (:data:`PLATFORMS`, each with its source in docs/targets.md).
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from brainsim import __version__
from brainsim.backends.base import Artefact, Capabilities, Violation, refuse_violations
from brainsim.backends.numba_mpi import variant_label
from brainsim.circuit.spec import (
    Circuit,
    DCStimulus,
    IzhikevichParams,
    LifParams,
    NoiseStimulus,
    PoissonStimulus,
    Population,
    Projection,
    SpikeSourceArray,
    SpikeTrains,
    Stimulus,
)
from brainsim.engine.connectivity import projection_synapses
from brainsim.engine.populations import neuron_values
from brainsim.engine.stimuli import selection_indices
from brainsim.errors import TargetError
from brainsim.models import NEURON_MODELS

__all__ = ["PLATFORMS", "SIMULATORS", "TARGET", "Platform", "PynnBackend"]

TARGET: Final = "pynn"

SIMULATORS: Final = {"nest": "pyNN.nest", "spiNNaker": "pyNN.spiNNaker"}
SIMULATORS_NOTE: Final = (
    "pynn_brainscales has no IF_curr_exp; its CalibHXNeuronCuba takes voltages in the chip's "
    "own units, which need a per-chip calibration from mV that brainsim does not have"
)
"""The simulators ``run.py`` takes, and the PyNN module of each. BrainScaleS-2 is checked
(:data:`PLATFORMS`) but not written for: ``pynn_brainscales`` has no ``IF_curr_exp``; its
``CalibHXNeuronCuba`` takes voltages in the chip's own units, which need a per-chip
calibration from mV that brainsim does not have."""

PA_PER_NA: Final = 1000.0
PF_PER_NF: Final = 1000.0


@dataclass(frozen=True, slots=True)
class Platform:
    """Limits of one PyNN simulator beyond what PyNN's standard models express."""

    name: str
    cell_types: tuple[str, ...]
    """The PyNN cell types it runs."""
    max_neurons: int | None
    """The most neurons (all populations, spike sources excluded) it holds; ``None``: any."""
    max_delay_steps: int | None
    """The longest delay in time steps; ``None``: any."""
    weight_levels: int | None
    """Distinct weight magnitudes onto one receptor of one population; ``None``: any."""
    weight_dependences: tuple[str, ...]
    """The STDP weight dependences it implements (``additive``, ``multiplicative``, ``gutig``)."""
    plasticity: bool
    """Whether it runs ``STDPMechanism`` synapses."""
    noise: bool
    """Whether it has ``NoisyCurrentSource``."""
    source: str
    """Where the limits come from (docs/targets.md quotes it)."""


PLATFORMS: Final = {
    "nest": Platform(
        name="nest",
        cell_types=("IF_curr_delta", "IF_curr_exp", "IF_curr_alpha", "Izhikevich"),
        max_neurons=None,
        max_delay_steps=None,
        weight_levels=None,
        weight_dependences=("additive", "multiplicative", "gutig"),
        plasticity=True,
        noise=True,
        source="PyNN 0.13 pyNN.nest standard models (pyNN/nest/standardmodels)",
    ),
    "spiNNaker": Platform(
        name="spiNNaker",
        # sPyNNaker's Izhikevich has exponential synapses (izk_curr_exp), not NEST's jump in v.
        cell_types=("IF_curr_delta", "IF_curr_exp", "IF_curr_alpha"),
        max_neurons=None,
        # 16 delay slots on the neuron's core plus 8 delay-extension blocks of 16 each.
        max_delay_steps=16 + 8 * 16,
        weight_levels=None,
        weight_dependences=("additive", "multiplicative"),
        plasticity=True,
        noise=True,
        source="sPyNNaker: spynnaker/pyNN/utilities/constants.py (MAX_SUPPORTED_DELAY_TICS 16, "
        "MAX_DELAY_BLOCKS 8, MAX_TIMER_TICS_SUPPORTED_PER_BLOCK 16), models/neuron/builds, "
        "plasticity/stdp/weight_dependence, models/current_sources",
    ),
    "brainscales2": Platform(
        name="brainscales2",
        cell_types=("IF_curr_exp",),
        max_neurons=512,
        max_delay_steps=None,
        weight_levels=64,
        weight_dependences=(),
        plasticity=False,
        noise=False,
        source="pynn-brainscales: brainscales2/standardmodels/cells.py (CalibHXNeuronCuba, "
        "current-based exponential synapses), synapses.py (integer weights 0-63); the HX chip "
        "has 512 neuron circuits",
    ),
}

_CELL_PARAMETERS: Final = {
    # PyNN name: (brainsim name, factor from brainsim's unit to PyNN's)
    "IF_curr_delta": {
        "tau_m": ("tau_m_ms", 1.0),
        "cm": ("c_m_pF", 1.0 / PF_PER_NF),
        "v_rest": ("e_l_mV", 1.0),
        "v_reset": ("v_reset_mV", 1.0),
        "v_thresh": ("v_th_mV", 1.0),
        "tau_refrac": ("t_ref_ms", 1.0),
        "i_offset": ("i_e_pA", 1.0 / PA_PER_NA),
    },
    "Izhikevich": {
        "a": ("a", 1.0),
        "b": ("b", 1.0),
        "c": ("c_mV", 1.0),
        "d": ("d", 1.0),
        "i_offset": ("i_e_pA", 1.0 / PA_PER_NA),
    },
}
_CELL_PARAMETERS["IF_curr_exp"] = {
    **_CELL_PARAMETERS["IF_curr_delta"],
    "tau_syn_E": ("tau_syn_ex_ms", 1.0),
    "tau_syn_I": ("tau_syn_in_ms", 1.0),
}
_CELL_PARAMETERS["IF_curr_alpha"] = _CELL_PARAMETERS["IF_curr_exp"]

_STATE: Final = {"IF_curr_delta": {"v": "v"}, "Izhikevich": {"v": "v", "u": "u"}}
_STATE["IF_curr_exp"] = _STATE["IF_curr_alpha"] = _STATE["IF_curr_delta"]
"""PyNN's initial value name -> brainsim's state variable, per cell type."""

_IZHIKEVICH_PEAK_MV: Final = 30.0


def _cell_type(population: Population) -> str | None:
    return population.variant.target_name(TARGET)


def _weights_in_mv(population: Population) -> bool:
    """Whether PyNN's weights onto ``population`` are in mV (``IF_curr_delta``,
    ``Izhikevich``: a jump in v) rather than nA (a synaptic current)."""
    params = population.params
    return isinstance(params, IzhikevichParams) or (
        isinstance(params, LifParams) and params.synapse == "delta"
    )


def _weight_factor(population: Population, dt_ms: float) -> float:
    """brainsim weight onto ``population`` -> PyNN weight (mV for delta cells, nA otherwise)."""
    params = population.params
    if not _weights_in_mv(population):
        return 1.0 / PA_PER_NA
    if isinstance(params, IzhikevichParams) and params.synapse == "current_pulse":
        return dt_ms
    return 1.0


def _weight_dependence(mu_plus: float, mu_minus: float) -> str:
    if mu_plus == 0.0 and mu_minus == 0.0:
        return "additive"
    if mu_plus == 1.0 and mu_minus == 1.0:
        return "multiplicative"
    return "gutig"


class PynnBackend:
    """The PyNN target, checked for one simulator (``nest`` by default)."""

    def __init__(self, simulator: str = "nest") -> None:
        if simulator not in PLATFORMS:
            raise ValueError(f"unknown PyNN simulator {simulator!r}; known: {sorted(PLATFORMS)}")
        self.platform = PLATFORMS[simulator]

    @property
    def name(self) -> str:
        """``pynn`` for NEST, ``pynn:<simulator>`` for the others."""
        simulator = self.platform.name
        return TARGET if simulator == "nest" else f"{TARGET}:{simulator}"

    def capabilities(self) -> Capabilities:
        """What the script expresses on this simulator, from the models' declared PyNN names."""
        platform = self.platform
        variants = [v for m in NEURON_MODELS.values() for v in m.variants()]
        neurons = tuple(
            f"{variant_label(v)} -> {v.target_name(TARGET)}"
            for v in variants
            if v.target_name(TARGET) in platform.cell_types
        )
        return Capabilities(
            target=self.name,
            summary=f"PyNN 0.13 script run on {platform.name} ({SIMULATORS[platform.name]})"
            if platform.name in SIMULATORS
            else f"limits of {platform.name} checked; no script written ({SIMULATORS_NOTE})",
            neuron_models=neurons,
            synapse_models=("static", "stdp") if platform.plasticity else ("static",),
            plasticity=platform.plasticity,
            stimuli=(
                "poisson",
                "dc",
                *(("noise",) if platform.noise else ()),
                "spike_source_array",
                "spike_trains",
            ),
            connection_rules=("every rule (connections listed explicitly)",),
            delays="multiples of dt"
            + (
                ""
                if platform.max_delay_steps is None
                else f", at most {platform.max_delay_steps} steps"
            ),
            runs_here=False,
            output="run.py and data/*.npz (python run.py SIMULATOR --out DIR)"
            if platform.name in SIMULATORS
            else "nothing (checks only)",
        )

    # --- checks ------------------------------------------------------------------------------

    def check(self, circuit: Circuit) -> list[Violation]:
        """Every part of ``circuit`` the script cannot express on this simulator."""
        return list(self._violations(circuit))

    def _violations(self, circuit: Circuit) -> Iterator[Violation]:
        platform = self.platform
        dt = circuit.simulation.dt_ms
        populations = list(self._population_violations(circuit))
        yield from populations
        for name, projection in circuit.projections.items():
            path = f"projections.{name}"
            model = projection.synapse.model
            if model == "stdp":
                if projection.synapse.params["w_max"] < 0:
                    yield Violation(
                        f"{path}.synapse.w_max",
                        "PyNN's STDP weight dependences bound weights in [0, w_max]: plastic "
                        "inhibitory synapses are not translated",
                    )
                if not platform.plasticity:
                    yield Violation(f"{path}.synapse.model", f"{platform.name} runs no STDP")
                params = projection.synapse.params
                dependence = _weight_dependence(params["mu_plus"], params["mu_minus"])
                if platform.plasticity and dependence not in platform.weight_dependences:
                    yield Violation(
                        f"{path}.synapse",
                        f"mu_plus {params['mu_plus']:g}, mu_minus {params['mu_minus']:g} is "
                        f"Gütig's weight dependence, which {platform.name} does not implement "
                        f"({', '.join(platform.weight_dependences)} only)",
                    )
            elif model != "static":
                yield Violation(
                    f"{path}.synapse.model",
                    f"PyNN has no standard synapse for {model!r} (static and stdp only)",
                )
            if platform.max_delay_steps is not None:
                longest = _max_delay_ms(projection)
                if longest is not None and round(longest / dt) > platform.max_delay_steps:
                    yield Violation(
                        f"{path}.delay_ms",
                        f"{longest:g} ms is {round(longest / dt)} steps of {dt:g} ms; "
                        f"{platform.name} delays at most {platform.max_delay_steps} steps",
                    )
        for name, stimulus in circuit.stimuli.items():
            yield from self._stimulus_violations(f"stimuli.{name}", stimulus)
        if circuit.recordings.state:
            yield Violation(
                "recordings.state", "the PyNN script records spikes only (no state recordings)"
            )
        if platform.weight_levels is not None and not populations:
            yield from _weight_level_violations(circuit, platform)

    def _population_violations(self, circuit: Circuit) -> Iterator[Violation]:
        platform = self.platform
        total = 0
        for name, population in circuit.populations.items():
            path = f"populations.{name}"
            cell = _cell_type(population)
            if cell is None:
                yield Violation(
                    f"{path}.model",
                    f"{variant_label(population.variant)} has no PyNN standard cell type",
                )
                continue
            if cell not in platform.cell_types:
                yield Violation(
                    f"{path}.model",
                    f"{variant_label(population.variant)} is PyNN's {cell}, which "
                    f"{platform.name} does not run ({', '.join(platform.cell_types)} only)",
                )
            total += population.size
            params = population.params
            if isinstance(params, IzhikevichParams) and params.v_peak_mV != _IZHIKEVICH_PEAK_MV:
                yield Violation(
                    f"{path}.params.v_peak_mV",
                    f"PyNN's Izhikevich spikes at a fixed {_IZHIKEVICH_PEAK_MV:g} mV",
                )
            for key in ("i_syn_ex_pA", "i_syn_in_pA"):
                if population.initial.get(key, 0.0) != 0.0:
                    yield Violation(
                        f"{path}.initial.{key}", "PyNN's cells start without synaptic current"
                    )
        if platform.max_neurons is not None and total > platform.max_neurons:
            yield Violation(
                "populations",
                f"{total} neurons; {platform.name} holds at most {platform.max_neurons}",
            )

    def _stimulus_violations(self, path: str, stimulus: Stimulus) -> Iterator[Violation]:
        if isinstance(stimulus, PoissonStimulus):
            for key in ("rate_hz", "weight"):
                if not isinstance(getattr(stimulus, key), float | int):
                    yield Violation(f"{path}.{key}", "must be a constant for the PyNN script")
        elif isinstance(stimulus, DCStimulus):
            for key in ("amplitude_pA", "weight"):
                if not isinstance(getattr(stimulus, key), float | int):
                    yield Violation(f"{path}.{key}", "must be a constant for the PyNN script")
        elif isinstance(stimulus, NoiseStimulus):
            if not self.platform.noise:
                yield Violation(f"{path}.type", f"{self.platform.name} has no noise current")
            for key in ("mean_pA", "std_pA", "weight"):
                if not isinstance(getattr(stimulus, key), float | int):
                    yield Violation(f"{path}.{key}", "must be a constant for the PyNN script")
        elif isinstance(stimulus, SpikeSourceArray | SpikeTrains):
            if not isinstance(stimulus.weight, float | int):
                yield Violation(f"{path}.weight", "must be a constant for the PyNN script")
        else:
            yield Violation(
                f"{path}.type",
                f"{stimulus.type!r} draws its spikes inside brainsim; give them to the PyNN "
                "script as spike_trains",
            )

    # --- compiling ---------------------------------------------------------------------------

    def compile(self, circuit: Circuit, out_dir: str | os.PathLike[str]) -> Artefact:
        """Write ``run.py`` and ``data/`` into ``out_dir``; :class:`TargetError` with every
        violation when :meth:`check` finds any."""
        refuse_violations(self.name, circuit, self.check(circuit))
        if self.platform.name not in SIMULATORS:
            raise TargetError(
                f"target {self.name!r} checks circuits but writes no script",
                [SIMULATORS_NOTE],
            )
        out = Path(out_dir)
        data = out / "data"
        data.mkdir(parents=True, exist_ok=True)
        writer = _ScriptWriter(circuit, data)
        script = out / "run.py"
        script.write_text(writer.script(), encoding="utf-8")
        return Artefact(target=self.name, paths=(str(script), *map(str, writer.files)))


def _max_delay_ms(projection: Projection) -> float | None:
    delay = projection.delay_ms
    if isinstance(delay, float | int):
        return float(delay)
    high = getattr(delay, "high", None)
    return None if high is None else float(high)


def _weight_level_violations(circuit: Circuit, platform: Platform) -> Iterator[Violation]:
    """Projections whose weights onto a population's receptor need more distinct magnitudes
    than ``platform.weight_levels`` (integers ``0 .. levels - 1`` times one scale per receptor)."""
    assert platform.weight_levels is not None
    levels = platform.weight_levels - 1
    for target in circuit.populations:
        onto = {
            name: projection_synapses(circuit, projection).weights
            for name, projection in circuit.projections.items()
            if projection.target == target
        }
        names = list(onto)
        for sign in (1.0, -1.0):
            magnitudes = [weights[weights * sign > 0] * sign for weights in onto.values()]
            found = np.concatenate(magnitudes) if magnitudes else np.zeros(0)
            if found.size == 0:
                continue
            unit = found.max() / levels
            steps = found / unit
            if not np.allclose(steps, np.rint(steps), rtol=0, atol=1e-6 * levels):
                receptor = "excitatory" if sign > 0 else "inhibitory"
                yield Violation(
                    f"projections.{names[0]}.weight",
                    f"the {receptor} weights onto {target} ({', '.join(names)}) are not whole "
                    f"multiples of {platform.weight_levels - 1} steps of one unit: "
                    f"{platform.name} stores {platform.weight_levels} weight levels",
                )


def _constant(value: object) -> float:
    """A stimulus value :meth:`PynnBackend.check` has made sure is a constant."""
    if not isinstance(value, float | int):
        raise TypeError(f"expected a constant, got {value!r}")
    return float(value)


class _ScriptWriter:
    """Writes the data files and returns the script text."""

    def __init__(self, circuit: Circuit, data: Path) -> None:
        self.circuit = circuit
        self.data = data
        self.files: list[Path] = []
        self.dt = circuit.simulation.dt_ms
        self.delays: list[float] = []
        self.plastic: dict[str, list[float]] = {}
        """Plastic projection -> [PyNN weight -> brainsim's, the extra scale on nest]."""

    def _save(self, name: str, **arrays: npt.NDArray[np.generic]) -> str:
        """Write ``data/<name>.npz``; ``name``, as the script's ``load`` takes it."""
        path = self.data / f"{name}.npz"
        np.savez(path, **arrays)  # type: ignore[arg-type]
        self.files.append(path)
        return name

    def script(self) -> str:
        circuit = self.circuit
        body: list[str] = []
        for population in circuit.populations.values():
            body += self._population(population)
        for name, stimulus in circuit.stimuli.items():
            body += self._stimulus(name, stimulus)
        for projection in circuit.projections.values():
            body += self._projection(projection)
        min_delay = min(self.delays, default=self.dt)
        max_delay = max(self.delays, default=self.dt)
        recorded = list(circuit.recordings.spikes)
        header = _HEADER.format(
            name=circuit.name,
            version=__version__,
            seed=circuit.simulation.seed,
            simulators=", ".join(f"{k} ({v})" for k, v in SIMULATORS.items()),
        )
        izhikevich = {
            p.name: p.params.integration == "euler"
            for p in circuit.populations.values()
            if isinstance(p.params, IzhikevichParams)
        }
        setup = [
            f"DT_MS = {self.dt!r}",
            f"DURATION_MS = {circuit.simulation.duration_ms!r}",
            f"SIMULATORS = {json.dumps(SIMULATORS)}",
            f"RECORDED = {recorded!r}",
            f"PLASTIC = {self.plastic!r}",
            "",
            "",
            "def load(name):",
            '    """The arrays of data/<name>.npz."""',
            '    return np.load(DATA / f"{name}.npz")',
            "",
            "",
            "def main():",
            "    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])",
            '    parser.add_argument("simulator", choices=sorted(SIMULATORS))',
            '    parser.add_argument("--out", default="results", help="results folder")',
            "    args = parser.parse_args()",
            "    sim = importlib.import_module(SIMULATORS[args.simulator])",
            f"    sim.setup(timestep=DT_MS, min_delay={min_delay!r}, max_delay={max_delay!r})",
        ]
        if izhikevich:
            setup += [
                '    if args.simulator == "nest":',
                "        # NEST's izhikevich: consistent_integration False is the published 2003",
                "        # scheme (two half steps of v), True forward Euler.",
                f'        sim.nest.SetDefaults("izhikevich", {{"consistent_integration": '
                f"{next(iter(izhikevich.values()))}}})",
            ]
            if len(set(izhikevich.values())) > 1:
                raise ValueError("Izhikevich populations with both integrations")
        footer = [
            "    for name in RECORDED:",
            '        pops[name].record("spikes")',
            "    sim.run(DURATION_MS)",
            "    out = pathlib.Path(args.out)",
            "    out.mkdir(parents=True, exist_ok=True)",
            "    for name in RECORDED:",
            '        pops[name].write_data(str(out / f"{name}.pkl"))',
            "    for name, (to_brainsim, nest_scale) in PLASTIC.items():",
            '        scale = to_brainsim * (nest_scale if args.simulator == "nest" else 1.0)',
            "        for part in projections[name]:",
            '            found = np.asarray(part.get(["weight"], format="list"), dtype=float)',
            "            np.savez(",
            '                out / f"{name}.{part.label}.weights.npz",',
            "                source=found[:, 0].astype(np.int64),",
            "                target=found[:, 1].astype(np.int64),",
            "                weight=found[:, 2] * scale,",
            "            )",
            "    sim.end()",
            "",
            "",
            'if __name__ == "__main__":',
            "    main()",
            "",
        ]
        lines = [
            header,
            "import argparse",
            "import importlib",
            "import pathlib",
            "",
            "import numpy as np",
            "",
            "DATA = pathlib.Path(__file__).resolve().parent / 'data'",
            *setup,
            "    pops = {}",
            "    projections = {}",
            *body,
            *footer,
        ]
        return "\n".join(lines)

    # --- pieces ------------------------------------------------------------------------------

    def _population(self, population: Population) -> list[str]:
        cell = _cell_type(population)
        assert cell is not None
        params, state = neuron_values(population, self.circuit.simulation.seed)
        arrays: dict[str, npt.NDArray[np.generic]] = {}
        args = []
        for pynn_name, (ours, factor) in _CELL_PARAMETERS[cell].items():
            values = params[ours] * factor
            if np.all(values == values[0]):
                args.append(f"{pynn_name}={float(values[0])!r}")
            else:
                arrays[pynn_name] = values
                args.append(f'{pynn_name}=cells["{pynn_name}"]')
        initial = []
        for pynn_name, ours in _STATE[cell].items():
            values = state[ours]
            if np.all(values == values[0]):
                initial.append(f"{pynn_name}={float(values[0])!r}")
            else:
                arrays[f"initial_{pynn_name}"] = values
                initial.append(f'{pynn_name}=cells["initial_{pynn_name}"]')
        name = population.name
        lines = [
            f"    # population {name}: {population.size} x {cell} "
            f"(brainsim {variant_label(population.variant)})"
        ]
        if arrays:
            lines.append(f'    cells = load("{self._save(f"population_{name}", **arrays)}")')
        joined = ", ".join(args)
        lines.append(
            f"    pops[{name!r}] = sim.Population({population.size}, sim.{cell}({joined}), "
            f"label={name!r})"
        )
        lines.append(f"    pops[{name!r}].initialize({', '.join(initial)})")
        return lines

    def _targets(self, stimulus: Stimulus) -> Iterator[tuple[str, npt.NDArray[np.int64], str]]:
        """(population, local ids, PyNN view expression) of each target of ``stimulus``."""
        for target in stimulus.targets:
            size = self.circuit.populations[target.population].size
            ids = selection_indices(target.nodes, size)
            view = f"pops[{target.population!r}]"
            if ids.size != size or not np.array_equal(ids, np.arange(size)):
                saved = self._save(f"targets_{stimulus.name}_{target.population}", ids=ids)
                view += f'[load("{saved}")["ids"]]'
            yield target.population, ids, view

    def _stimulus(self, name: str, stimulus: Stimulus) -> list[str]:
        lines = [f"    # stimulus {name}: {stimulus.type}"]
        dt = self.dt
        duration = self.circuit.simulation.duration_ms
        if isinstance(stimulus, PoissonStimulus):
            stop = duration if stimulus.stop_ms is None else stimulus.stop_ms
            for population, ids, view in self._targets(stimulus):
                w = _constant(stimulus.weight) * _weight_factor(
                    self.circuit.populations[population], dt
                )
                receptor = "excitatory" if w >= 0 else "inhibitory"
                self.delays.append(stimulus.delay_ms)
                lines += [
                    f"    source = sim.Population({ids.size}, sim.SpikeSourcePoisson("
                    f"rate={_constant(stimulus.rate_hz)!r}, start={stimulus.start_ms!r}, "
                    f"duration={stop - stimulus.start_ms!r}), label={name + '->' + population!r})",
                    f"    sim.Projection(source, {view}, sim.OneToOneConnector(), "
                    f"sim.StaticSynapse(weight={w!r}, delay={stimulus.delay_ms!r}), "
                    f"receptor_type={receptor!r})",
                ]
        elif isinstance(stimulus, DCStimulus | NoiseStimulus):
            stop = duration if stimulus.stop_ms is None else stimulus.stop_ms
            weight = _constant(stimulus.weight) / PA_PER_NA
            if isinstance(stimulus, DCStimulus):
                source = (
                    f"sim.DCSource(amplitude={_constant(stimulus.amplitude_pA) * weight!r}, "
                    f"start={stimulus.start_ms!r}, stop={stop!r})"
                )
            else:
                source = (
                    f"sim.NoisyCurrentSource(mean={_constant(stimulus.mean_pA) * weight!r}, "
                    f"stdev={_constant(stimulus.std_pA) * abs(weight)!r}, dt=DT_MS, "
                    f"start={stimulus.start_ms!r}, stop={stop!r})"
                )
            for _, _, view in self._targets(stimulus):
                lines.append(f"    {view}.inject({source})")
        elif isinstance(stimulus, SpikeSourceArray):
            self.delays.append(stimulus.delay_ms)
            for population, _, view in self._targets(stimulus):
                w = _constant(stimulus.weight) * _weight_factor(
                    self.circuit.populations[population], dt
                )
                times = [float(t) for t in stimulus.spike_times_ms]
                lines += [
                    f"    source = sim.Population(1, sim.SpikeSourceArray(spike_times={times!r}))",
                    f"    sim.Projection(source, {view}, sim.AllToAllConnector(), "
                    f"sim.StaticSynapse(weight={w!r}, delay={stimulus.delay_ms!r}), "
                    f"receptor_type={'excitatory' if w >= 0 else 'inhibitory'!r})",
                ]
        elif isinstance(stimulus, SpikeTrains):
            self.delays.append(stimulus.delay_ms)
            values = stimulus.data.values
            for population, ids, view in self._targets(stimulus):
                w = _constant(stimulus.weight) * _weight_factor(
                    self.circuit.populations[population], dt
                )
                index = values[:, 0].astype(np.int64)
                saved = self._save(
                    f"spikes_{name}_{population}",
                    index=index,
                    times_ms=values[:, 1],
                    n=np.asarray(ids.size),
                )
                lines += [
                    f'    trains = load("{saved}")',
                    "    times = [trains['times_ms'][trains['index'] == i] "
                    "for i in range(int(trains['n']))]",
                    "    source = sim.Population(len(times), sim.SpikeSourceArray("
                    "spike_times=[sim.Sequence(t) for t in times]))",
                    f"    sim.Projection(source, {view}, sim.OneToOneConnector(), "
                    f"sim.StaticSynapse(weight={w!r}, delay={stimulus.delay_ms!r}), "
                    f"receptor_type={'excitatory' if w >= 0 else 'inhibitory'!r})",
                ]
        return lines

    def _projection(self, projection: Projection) -> list[str]:
        circuit = self.circuit
        synapses = projection_synapses(circuit, projection)
        factor = _weight_factor(circuit.populations[projection.target], self.dt)
        delays_ms = synapses.delay_steps * self.dt
        if delays_ms.size:
            self.delays += [float(delays_ms.min()), float(delays_ms.max())]
        name = projection.name
        lines = [f"    # projection {name}: {projection.source} -> {projection.target}"]
        parts = []
        for receptor, keep in (
            ("excitatory", synapses.weights > 0),
            ("inhibitory", synapses.weights < 0),
        ):
            if not keep.any():
                continue
            table = np.column_stack(
                (
                    synapses.sources[keep],
                    synapses.targets[keep],
                    synapses.weights[keep] * factor,
                    delays_ms[keep],
                )
            )
            saved = self._save(f"projection_{name}_{receptor}", connections=table)
            parts.append((receptor, saved, int(keep.sum())))
        synapse = "sim.StaticSynapse()"
        if projection.synapse.model == "stdp":
            p = projection.synapse.params
            dependence = _weight_dependence(p["mu_plus"], p["mu_minus"])
            w_max = repr(abs(p["w_max"]) * factor)
            in_mv = _weights_in_mv(circuit.populations[projection.target])
            if in_mv:
                # Weights in mV: pyNN.nest scales w_max by 1000 (nA -> pA) but not back by the
                # cell's receptor_scale of 1e-3, as it does the weights themselves.
                w_max += ' * (1e-3 if args.simulator == "nest" else 1.0)'
            # PyNN's weight -> brainsim's; pyNN.nest reports the weights onto mV cells 1000
            # times too small (its nA -> pA scale is undone, the receptor_scale is not).
            self.plastic[name] = [1.0 / factor, 1000.0 if in_mv else 1.0]
            weight_dependence = {
                "additive": f"sim.AdditiveWeightDependence(w_min=0.0, w_max={w_max})",
                "multiplicative": f"sim.MultiplicativeWeightDependence(w_min=0.0, w_max={w_max})",
                "gutig": f"sim.GutigWeightDependence(w_min=0.0, w_max={w_max}, "
                f"mu_plus={p['mu_plus']!r}, mu_minus={p['mu_minus']!r})",
            }[dependence]
            synapse = (
                "sim.STDPMechanism(\n"
                f"        timing_dependence=sim.SpikePairRule(tau_plus={p['tau_plus_ms']!r}, "
                f"tau_minus={p['tau_minus_ms']!r}, A_plus={p['lambda']!r}, "
                f"A_minus={p['alpha'] * p['lambda']!r}),\n"
                f"        weight_dependence={weight_dependence},\n"
                "        dendritic_delay_fraction=1.0,\n"
                "    )"
            )
        lines.append(f"    projections[{name!r}] = []")
        for receptor, saved, count in parts:
            lines += [
                f"    connections = load({saved!r})['connections']  # {count} synapses",
                f"    projections[{name!r}].append(sim.Projection(",
                f"        pops[{projection.source!r}], pops[{projection.target!r}],",
                '        sim.FromListConnector(connections, column_names=["weight", "delay"]),',
                f"        {textwrap.indent(synapse, '    ').lstrip()},",
                f"        receptor_type={receptor!r}, label={receptor!r},",
                "    ))",
            ]
        return lines


_HEADER = '''"""Circuit {name!s} as a PyNN 0.13 script (brainsim {version}, seed {seed}).

Run it with one of: {simulators}

    python run.py SIMULATOR [--out RESULTS_DIR]

Each recorded population's spikes go to RESULTS_DIR/<population>.pkl (PyNN's write_data,
Neo pickle); each plastic projection's final weights to
RESULTS_DIR/<projection>.<receptor>.weights.npz (source, target: ids within their
populations; weight in brainsim's unit). Every synapse is listed in data/ as brainsim builds
it; per-neuron values (drawn parameters, initial state) are there too.
"""
'''
