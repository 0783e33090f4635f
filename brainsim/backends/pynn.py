"""The ``pynn`` target: a circuit as a standalone PyNN 0.13 script with its data files.

``brainsim compile CIRCUIT --target pynn[:SIMULATOR] -o DIR`` writes ``DIR/run.py`` and
``DIR/data/*.npz``. ``python run.py SIMULATOR [--out RESULTS]`` runs it on ``nest``
(``pyNN.nest``) or ``spiNNaker`` (``pyNN.spiNNaker``, sPyNNaker) and writes each population
whose spikes the circuit records with PyNN's ``write_data`` to ``RESULTS/<population>.pkl``
(Neo, pickle) and as plain arrays to ``RESULTS/<population>.spikes.npz`` (``times_ms``,
``node_ids``: what ``brainsim run --target pynn`` and the service turn into a recording), and
the final weights of each plastic projection to
``RESULTS/<projection>.<receptor>.weights.npz``. ``pynn:brainscales2`` writes the script for
BrainScaleS-2 (``python run.py brainscales2``, ``pynn_brainscales.brainscales2``): its cells
are ``CalibHXNeuronCuba`` with every parameter in the chip's units (:func:`voltage_map`,
:func:`weight_units`, :data:`BSS2_SPEEDUP`; docs/targets.md has the table), so that script
runs there only, and the nest and spiNNaker scripts do not run there.

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

- On BrainScaleS-2 (``pynn:brainscales2``) ``lif`` with exponential synapses ->
  ``CalibHXNeuronCuba``: model time runs 1000 times faster on the chip (a time constant of
  ``x`` ms is ``x`` µs of chip time, a spike at ``t`` ms is at ``t / 1000`` ms of chip time, a
  rate of ``r`` Hz is ``1000 r`` Hz), voltages go through one affine map onto the calibration's
  CADC units for the whole circuit (:func:`voltage_map`), and the weights onto each receptor of
  each population become integer levels 1..63 of one unit (:func:`weight_units`).

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
from brainsim.models import NEURON_MODELS

__all__ = [
    "BSS2_SPEEDUP",
    "PLATFORMS",
    "SIMULATORS",
    "SPEEDUP",
    "TARGET",
    "Platform",
    "PynnBackend",
    "script_simulators",
    "voltage_map",
    "weight_units",
]

TARGET: Final = "pynn"

SIMULATORS: Final = {
    "nest": "pyNN.nest",
    "spiNNaker": "pyNN.spiNNaker",
    "brainscales2": "pynn_brainscales.brainscales2",
}
"""The simulators ``run.py`` takes, and the PyNN module of each. A script compiled for
``pynn`` or ``pynn:spiNNaker`` takes ``nest`` and ``spiNNaker``; one compiled for
``pynn:brainscales2`` (its parameters in the chip's units) takes ``brainscales2`` only
(:func:`script_simulators`)."""

BSS2_SPEEDUP: Final = 1000.0
"""Model (biological) ms per ms of BrainScaleS-2's clock: the chip's analog neurons run
1000 times faster than the model (pynn_brainscales takes run times and spike times in ms of
chip time, time constants in µs)."""

SPEEDUP: Final = {"nest": 1.0, "spiNNaker": 1.0, "brainscales2": BSS2_SPEEDUP}
"""Model ms per ms of each simulator's own time: ``run.py`` runs ``DURATION_MS / speedup``
and multiplies the spike times it reads back by it."""

BSS2_CELL: Final = "CalibHXNeuronCuba"
BSS2_RANGES: Final = {
    # CalibHXNeuronCuba's documented calibration ranges (pynn-brainscales,
    # brainscales2/standardmodels/cells.py): voltages in CADC units, times in µs of chip time.
    "v_rest": (50.0, 160.0),
    "v_reset": (50.0, 160.0),
    "v_thresh": (50.0, 220.0),
    "tau_m": (0.5, 60.0),
    "tau_syn_E": (0.3, 30.0),
    "tau_syn_I": (0.3, 30.0),
    "tau_refrac": (0.04, 32.0),
}
BSS2_CADC_LOW: Final = 60
"""The CADC value the circuit's lowest voltage maps to (10 above the calibration's floor)."""
BSS2_CADC_SPAN: Final = 100
"""The most CADC units the circuit's voltages span (up to 160, inside every range above)."""
BSS2_CM: Final = 63
"""``cm`` of every population: the largest membrane capacitor (0..63), the default."""
_BSS2_TIMES: Final = {
    # CalibHXNeuronCuba name: brainsim name (ms of model time = µs of chip time)
    "tau_m": "tau_m_ms",
    "tau_syn_E": "tau_syn_ex_ms",
    "tau_syn_I": "tau_syn_in_ms",
    "tau_refrac": "t_ref_ms",
}
_BSS2_VOLTAGES: Final = {"v_rest": "e_l_mV", "v_reset": "v_reset_mV", "v_thresh": "v_th_mV"}


def script_simulators(simulator: str) -> dict[str, str]:
    """The simulators (name: PyNN module) the script compiled for ``simulator`` runs on."""
    chip = simulator == "brainscales2"
    return {k: v for k, v in SIMULATORS.items() if (k == "brainscales2") == chip}


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
    dc: bool
    """Whether it has ``DCSource``."""
    one_delay: bool
    """Whether it delivers every spike after one fixed latency of its own (no per-synapse
    delays): then the circuit's delays must all be one value, which that latency stands for."""
    chip_cell: str | None
    """The cell type the script uses instead of PyNN's standard one, its parameters in the
    platform's own units; ``None``: the standard cell types."""
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
        dc=True,
        one_delay=False,
        chip_cell=None,
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
        dc=True,
        one_delay=False,
        chip_cell=None,
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
        dc=False,
        one_delay=True,
        chip_cell=BSS2_CELL,
        source="pynn-brainscales: brainscales2/standardmodels/cells.py (CalibHXNeuronCuba, "
        "current-based exponential synapses, its calibration ranges; no current sources), "
        "projections.py (integer weights, 63 per synapse; delay must be 0); the HX chip has "
        "512 neuron circuits",
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
            f"{variant_label(v)} -> {platform.chip_cell or v.target_name(TARGET)}"
            for v in variants
            if v.target_name(TARGET) in platform.cell_types
        )
        on = "|".join(script_simulators(platform.name))
        return Capabilities(
            target=self.name,
            summary=f"PyNN 0.13 script run on {platform.name} ({SIMULATORS[platform.name]})"
            + (
                f": {platform.chip_cell}, parameters in the chip's units"
                if platform.chip_cell
                else ""
            ),
            neuron_models=neurons,
            synapse_models=("static", "stdp") if platform.plasticity else ("static",),
            plasticity=platform.plasticity,
            stimuli=(
                "poisson",
                *(("dc",) if platform.dc else ()),
                *(("noise",) if platform.noise else ()),
                "spike_source_array",
                "spike_trains",
            ),
            connection_rules=("every rule (connections listed explicitly)",),
            delays=(
                "one delay for the whole circuit, which the chip's fixed latency stands for"
                if platform.one_delay
                else "multiples of dt"
            )
            + (
                ""
                if platform.max_delay_steps is None
                else f", at most {platform.max_delay_steps} steps"
            ),
            runs_here=False,
            output=f"run.py and data/*.npz (python run.py {on} --out DIR)",
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
        if populations:
            return
        if platform.one_delay:
            yield from _one_delay_violations(circuit, platform)
        if platform.chip_cell is not None:
            yield from _chip_violations(circuit)
        if platform.weight_levels is not None:
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
            if not self.platform.dc:
                yield Violation(f"{path}.type", f"{self.platform.name} has no DC current source")
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
        out = Path(out_dir)
        data = out / "data"
        data.mkdir(parents=True, exist_ok=True)
        writer = _ScriptWriter(circuit, data, self.platform)
        script = out / "run.py"
        script.write_text(writer.script(), encoding="utf-8")
        return Artefact(target=self.name, paths=(str(script), *map(str, writer.files)))


def _max_delay_ms(projection: Projection) -> float | None:
    delay = projection.delay_ms
    if isinstance(delay, float | int):
        return float(delay)
    high = getattr(delay, "high", None)
    return None if high is None else float(high)


def _receptor_weights(
    circuit: Circuit,
) -> dict[tuple[str, str], list[tuple[str, npt.NDArray[np.float64]]]]:
    """(population, receptor) -> (field path, weight magnitudes) of every projection and spike
    stimulus onto that receptor: brainsim's weights, positive ones to ``excitatory``, negative
    ones to ``inhibitory``, zeros nowhere."""
    found: dict[tuple[str, str], list[tuple[str, npt.NDArray[np.float64]]]] = {}

    def add(population: str, path: str, weights: npt.NDArray[np.float64]) -> None:
        for receptor, keep in (("excitatory", weights > 0), ("inhibitory", weights < 0)):
            if keep.any():
                found.setdefault((population, receptor), []).append((path, np.abs(weights[keep])))

    for name, projection in circuit.projections.items():
        weights = projection_synapses(circuit, projection).weights
        add(projection.target, f"projections.{name}.weight", weights)
    for name, stimulus in circuit.stimuli.items():
        constant = isinstance(stimulus.weight, float | int)  # else a violation already
        if constant and isinstance(stimulus, PoissonStimulus | SpikeSourceArray | SpikeTrains):
            for target in stimulus.targets:
                weight = np.array([_constant(stimulus.weight)])
                add(target.population, f"stimuli.{name}.weight", weight)
    return found


def weight_units(circuit: Circuit, levels: int) -> dict[tuple[str, str], float]:
    """(population, receptor) -> brainsim's weight (pA) of one level out of ``levels``
    (integers ``0 .. levels - 1``): the largest magnitude onto that receptor is the top level.
    On BrainScaleS-2 a synapse's weight is such an integer (0..63) and what one level does to
    the membrane is set by the chip's calibration, not by brainsim."""
    return _units(_receptor_weights(circuit), levels)


def _units(
    receptor_weights: dict[tuple[str, str], list[tuple[str, npt.NDArray[np.float64]]]],
    levels: int,
) -> dict[tuple[str, str], float]:
    """:func:`weight_units` of weights already gathered by :func:`_receptor_weights`."""
    return {
        key: max(float(found.max()) for _, found in parts) / (levels - 1)
        for key, parts in receptor_weights.items()
    }


def _weight_level_violations(circuit: Circuit, platform: Platform) -> Iterator[Violation]:
    """Projections and spike stimuli whose weights onto a population's receptor need more
    distinct magnitudes than ``platform.weight_levels`` (integers ``0 .. levels - 1`` times one
    unit per receptor, :func:`weight_units`)."""
    assert platform.weight_levels is not None
    levels = platform.weight_levels - 1
    receptor_weights = _receptor_weights(circuit)  # builds every projection's synapses
    units = _units(receptor_weights, platform.weight_levels)
    for (target, receptor), parts in receptor_weights.items():
        unit = units[target, receptor]
        for path, found in parts:
            steps = found / unit
            if not np.allclose(steps, np.rint(steps), rtol=0, atol=1e-6 * levels):
                names = ", ".join(dict.fromkeys(p.split(".")[1] for p, _ in parts))
                yield Violation(
                    path,
                    f"the {receptor} weights onto {target} ({names}) are not whole "
                    f"multiples of {levels} steps of one unit: "
                    f"{platform.name} stores {platform.weight_levels} weight levels",
                )
                break


def _one_delay_violations(circuit: Circuit, platform: Platform) -> Iterator[Violation]:
    """Every delay (projections, spike stimuli) that differs from the circuit's first one,
    in whole steps: the platform has one fixed latency, no per-synapse delays."""
    dt = circuit.simulation.dt_ms
    first: tuple[str, int] | None = None
    delays: list[tuple[str, npt.NDArray[np.int64]]] = [
        (f"projections.{name}.delay_ms", projection_synapses(circuit, projection).delay_steps)
        for name, projection in circuit.projections.items()
    ]
    delays += [
        (f"stimuli.{name}.delay_ms", np.array([round(stimulus.delay_ms / dt)]))
        for name, stimulus in circuit.stimuli.items()
        if isinstance(stimulus, PoissonStimulus | SpikeSourceArray | SpikeTrains)
    ]
    for path, steps in delays:
        if steps.size == 0:
            continue
        if first is None:
            first = (path, int(steps[0]))
        others = np.unique(steps[steps != first[1]])
        if others.size:
            yield Violation(
                path,
                f"{others[0] * dt:g} ms differs from {first[1] * dt:g} ms ({first[0]}): "
                f"{platform.name} delivers every spike after one fixed latency of the chip "
                "(pynn_brainscales takes delay 0 only), so a circuit's delays must all be one "
                "value, which that latency stands for",
            )


def voltage_map(circuit: Circuit) -> tuple[float, float]:
    """BrainScaleS-2's map of the circuit's voltages, ``cadc = 60 + k * (v_mV - low)``:
    ``(low, k)``, ``low`` the lowest resting, reset or threshold voltage of any neuron, ``k``
    (CADC units per mV) the largest whole number, or ``1 / n``, with which the circuit's
    highest such voltage lands at most :data:`BSS2_CADC_SPAN` above 60. With a whole ``k``,
    whole-mV voltages land on whole CADC values, which is what the calibration takes (with
    ``1 / n``, multiples of ``n`` mV do); :func:`_chip_violations` refuses the others."""
    values = [
        params[name]
        for population in circuit.populations.values()
        for params in (neuron_values(population, circuit.simulation.seed)[0],)
        for name in _BSS2_VOLTAGES.values()
        if name in params
    ]
    if not values:
        return 0.0, 1.0
    low = float(min(v.min() for v in values))
    span = float(max(v.max() for v in values)) - low
    if span <= BSS2_CADC_SPAN:
        per_mv = float(np.floor(BSS2_CADC_SPAN / span)) if span > 0 else 1.0
    else:
        per_mv = 1.0 / float(np.ceil(span / BSS2_CADC_SPAN))
    return low, per_mv


def _to_cadc(values: npt.NDArray[np.float64], low: float, per_mv: float) -> npt.NDArray[np.float64]:
    return BSS2_CADC_LOW + per_mv * (values - low)


def _chip_time(
    name: str, params: dict[str, npt.NDArray[np.float64]], dt: float
) -> npt.NDArray[np.float64]:
    """A CalibHXNeuronCuba time constant in µs of chip time: brainsim's value in ms, the
    refractory period in the whole steps brainsim keeps it for."""
    values = params[_BSS2_TIMES[name]]
    return np.round(values / dt) * dt if name == "tau_refrac" else values


def _chip_violations(circuit: Circuit) -> Iterator[Violation]:
    """What CalibHXNeuronCuba cannot take: parameters outside its calibration ranges, voltages
    off the whole CADC values of :func:`voltage_map`, a constant current, a start away from
    rest (pynn_brainscales ignores initial values: the chip's neurons start at their leak)."""
    low, per_mv = voltage_map(circuit)
    dt = circuit.simulation.dt_ms
    for name, population in circuit.populations.items():
        path = f"populations.{name}"
        params, state = neuron_values(population, circuit.simulation.seed)
        for chip_name, ours in {**_BSS2_TIMES, **_BSS2_VOLTAGES}.items():
            if chip_name in _BSS2_VOLTAGES:
                values = _to_cadc(params[ours], low, per_mv)
                unit = "CADC"
                if not np.allclose(values, np.rint(values), rtol=0, atol=1e-6):
                    yield Violation(
                        f"{path}.params.{ours}",
                        f"{_first_off_grid(values):g} CADC under the circuit's voltage map "
                        f"({BSS2_CADC_LOW} + {per_mv:g} CADC/mV above {low:g} mV): "
                        "CalibHXNeuronCuba's voltage targets are whole CADC values",
                    )
                    continue
            else:
                values = _chip_time(chip_name, params, dt)
                unit = "µs of chip time (ms of model time)"
            lo, hi = BSS2_RANGES[chip_name]
            if values.min() < lo - 1e-9 or values.max() > hi + 1e-9:
                outside = values[(values < lo - 1e-9) | (values > hi + 1e-9)][0]
                yield Violation(
                    f"{path}.params.{ours}",
                    f"{chip_name} {outside:g} {unit} is outside CalibHXNeuronCuba's "
                    f"calibration range [{lo:g}, {hi:g}]",
                )
        if np.any(params.get("i_e_pA", np.zeros(1)) != 0.0):
            yield Violation(f"{path}.params.i_e_pA", "CalibHXNeuronCuba takes no constant current")
        if not np.array_equal(state["v"], params["e_l_mV"]):
            yield Violation(
                f"{path}.initial.v_mV",
                "pynn_brainscales ignores initial values: the chip's neurons start at their "
                "leak potential, so v must start at e_l_mV",
            )


def _first_off_grid(values: npt.NDArray[np.float64]) -> float:
    off = np.abs(values - np.rint(values)) > 1e-6
    return float(values[off][0])


def _constant(value: object) -> float:
    """A stimulus value :meth:`PynnBackend.check` has made sure is a constant."""
    if not isinstance(value, float | int):
        raise TypeError(f"expected a constant, got {value!r}")
    return float(value)


class _ScriptWriter:
    """Writes the data files and returns the script text."""

    def __init__(self, circuit: Circuit, data: Path, platform: Platform) -> None:
        self.circuit = circuit
        self.data = data
        self.platform = platform
        self.files: list[Path] = []
        self.dt = circuit.simulation.dt_ms
        self.delays: list[float] = []
        self.plastic: dict[str, list[float]] = {}
        """Plastic projection -> [PyNN weight -> brainsim's, the extra scale on nest]."""
        self.chip = platform.chip_cell is not None
        """BrainScaleS-2: CalibHXNeuronCuba, parameters in the chip's units."""
        self.cells = "sim.standardmodels.cells." if self.chip else "sim."
        self.synapse = (
            "sim.standardmodels.synapses.StaticSynapse" if self.chip else "sim.StaticSynapse"
        )
        self.voltages = voltage_map(circuit) if self.chip else (0.0, 1.0)
        self.units = (
            weight_units(circuit, platform.weight_levels)
            if self.chip and platform.weight_levels is not None
            else {}
        )

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
        simulators = script_simulators(self.platform.name)
        header = _HEADER.format(
            name=circuit.name,
            version=__version__,
            seed=circuit.simulation.seed,
            simulators=", ".join(f"{k} ({v})" for k, v in simulators.items()),
        )
        izhikevich = {
            p.name: p.params.integration == "euler"
            for p in circuit.populations.values()
            if isinstance(p.params, IzhikevichParams)
        }
        setup = [
            f"DT_MS = {self.dt!r}",
            f"DURATION_MS = {circuit.simulation.duration_ms!r}",
            f"SIMULATORS = {json.dumps(simulators)}",
            f"SPEEDUP = {json.dumps({k: SPEEDUP[k] for k in simulators})}",
            f"RECORDED = {recorded!r}",
            f"PLASTIC = {self.plastic!r}",
            *self._chip_constants(),
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
        ]
        if self.chip:
            setup += [
                "    # CalibHXNeuronCuba: pynn_brainscales calibrates the chip for each",
                "    # population's targets (calix) when the network first runs, and caches it.",
                "    sim.setup()",
                "    speedup = SPEEDUP[args.simulator]  # model ms per ms of chip time",
            ]
        else:
            setup += [
                "    # On NEST, grid-based neuron models (iaf_psc_delta, not PyNN's default "
                "precise",
                "    # iaf_psc_delta_ps): spikes on the time grid, as brainsim's.",
                '    grid = {"spike_precision": "on_grid"} if args.simulator == "nest" else {}',
                f"    sim.setup(timestep=DT_MS, min_delay={min_delay!r}, "
                f"max_delay={max_delay!r}, **grid)",
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
            "    sim.run(DURATION_MS / SPEEDUP[args.simulator])",
            "    out = pathlib.Path(args.out)",
            "    out.mkdir(parents=True, exist_ok=True)",
            "    for name in RECORDED:",
            '        pops[name].write_data(str(out / f"{name}.pkl"))',
            "        # The same spikes as plain arrays (brainsim turns them into a recording):",
            "        # one train per neuron, in the population's index order, in model ms.",
            '        trains = pops[name].get_data("spikes").segments[0].spiketrains',
            "        assert len(trains) == pops[name].size, (name, len(trains))",
            "        np.savez(",
            '            out / f"{name}.spikes.npz",',
            "            times_ms=np.concatenate(",
            '                [np.asarray(t.rescale("ms").magnitude, dtype=float) for t in trains]',
            "            )",
            "            * SPEEDUP[args.simulator],",
            "            node_ids=np.concatenate(",
            "                [np.full(len(t), i, dtype=np.int64) for i, t in enumerate(trains)]",
            "            ),",
            "        )",
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
            *(
                ["from pyNN.parameters import Sequence"]
                if self.chip and any(isinstance(x, SpikeTrains) for x in circuit.stimuli.values())
                else []
            ),
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

    def _chip_constants(self) -> list[str]:
        """The BrainScaleS-2 script's statement of its units (comments and constants)."""
        if not self.chip:
            return []
        low, per_mv = self.voltages
        units = {f"{p}.{r}": unit for (p, r), unit in self.units.items()}
        return [
            "# BrainScaleS-2 (brainsim compile --target pynn:brainscales2; docs/targets.md):",
            "# time runs SPEEDUP times faster on the chip: tau_* in us of chip time = ms of model",
            "# time, spike times and run time in ms of chip time = model ms / SPEEDUP.",
            "# Voltages in CADC units: CADC = CADC_AT_LOW + CADC_PER_MV * (mV - LOW_MV).",
            f"LOW_MV = {low!r}",
            f"CADC_PER_MV = {per_mv!r}",
            f"CADC_AT_LOW = {BSS2_CADC_LOW!r}",
            "# Weights: integer levels 1..63 (negative onto 'inhibitory'); one level is",
            "# WEIGHT_UNITS[population.receptor] of brainsim's weight (pA); what a level does to",
            "# the membrane is the chip's calibration's, not brainsim's. Delays: the chip's own",
            "# fixed latency stands for the circuit's one delay (pynn_brainscales takes 0 only).",
            "# RESULTS/<population>.pkl is pynn_brainscales' own record, in ms of chip time;",
            "# RESULTS/<population>.spikes.npz is in model ms.",
            f"WEIGHT_UNITS = {json.dumps(units)}",
        ]

    def _chip_population(self, population: Population) -> list[str]:
        """A CalibHXNeuronCuba population, its parameters in the chip's units."""
        params, _ = neuron_values(population, self.circuit.simulation.seed)
        low, per_mv = self.voltages
        arrays: dict[str, npt.NDArray[np.generic]] = {}
        args = []
        for chip_name in BSS2_RANGES:
            if chip_name in _BSS2_VOLTAGES:
                values = np.rint(_to_cadc(params[_BSS2_VOLTAGES[chip_name]], low, per_mv))
            else:
                values = _chip_time(chip_name, params, self.dt)
            if np.all(values == values[0]):
                value = int(values[0]) if chip_name in _BSS2_VOLTAGES else float(values[0])
                args.append(f"{chip_name}={value!r}")
            else:
                arrays[chip_name] = values
                args.append(f'{chip_name}=cells["{chip_name}"]')
        args.append(f"cm={BSS2_CM!r}")
        name = population.name
        lines = [
            f"    # population {name}: {population.size} x {BSS2_CELL} "
            f"(brainsim {variant_label(population.variant)}); CADC, us of chip time"
        ]
        if arrays:
            lines.append(f'    cells = load("{self._save(f"population_{name}", **arrays)}")')
        lines.append(
            f"    pops[{name!r}] = sim.Population({population.size}, "
            f"{self.cells}{BSS2_CELL}({', '.join(args)}), label={name!r})"
        )
        return lines

    def _weight(self, population: str, weight: float) -> tuple[str, str]:
        """(PyNN weight expression, receptor) of a stimulus weight onto ``population``."""
        receptor = "excitatory" if weight >= 0 else "inhibitory"
        if self.chip:
            level = round(abs(weight) / self.units[population, receptor]) if weight else 0
            return repr(level if weight >= 0 else -level), receptor
        w = weight * _weight_factor(self.circuit.populations[population], self.dt)
        return repr(w), receptor

    def _delay(self, delay_ms: float) -> str:
        """A stimulus's PyNN delay: 0 on the chip, whose own latency stands for it."""
        return "0" if self.chip else repr(delay_ms)

    def _population(self, population: Population) -> list[str]:
        if self.chip:
            return self._chip_population(population)
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
        duration = self.circuit.simulation.duration_ms
        # On the chip: times in ms of chip time, rates in Hz of chip time, delay 0.
        to_chip = " / speedup" if self.chip else ""
        if isinstance(stimulus, PoissonStimulus):
            stop = duration if stimulus.stop_ms is None else stimulus.stop_ms
            for population, ids, view in self._targets(stimulus):
                w, receptor = self._weight(population, _constant(stimulus.weight))
                self.delays.append(stimulus.delay_ms)
                lines += [
                    f"    source = sim.Population({ids.size}, {self.cells}SpikeSourcePoisson("
                    f"rate={_constant(stimulus.rate_hz)!r}{' * speedup' if self.chip else ''}, "
                    f"start={stimulus.start_ms!r}{to_chip}, "
                    f"duration={stop - stimulus.start_ms!r}{to_chip}), "
                    f"label={name + '->' + population!r})",
                    f"    sim.Projection(source, {view}, sim.OneToOneConnector(), "
                    f"{self.synapse}(weight={w}, delay={self._delay(stimulus.delay_ms)}), "
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
                w, receptor = self._weight(population, _constant(stimulus.weight))
                times = [float(t) for t in stimulus.spike_times_ms]
                spike_times = f"[t / speedup for t in {times!r}]" if self.chip else repr(times)
                lines += [
                    f"    source = sim.Population(1, {self.cells}SpikeSourceArray("
                    f"spike_times={spike_times}))",
                    f"    sim.Projection(source, {view}, sim.AllToAllConnector(), "
                    f"{self.synapse}(weight={w}, delay={self._delay(stimulus.delay_ms)}), "
                    f"receptor_type={receptor!r})",
                ]
        elif isinstance(stimulus, SpikeTrains):
            self.delays.append(stimulus.delay_ms)
            values = stimulus.data.values
            for population, ids, view in self._targets(stimulus):
                w, receptor = self._weight(population, _constant(stimulus.weight))
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
                    f"    source = sim.Population(len(times), {self.cells}SpikeSourceArray("
                    + (
                        "spike_times=[Sequence(t / speedup) for t in times]))"
                        if self.chip
                        else "spike_times=[sim.Sequence(t) for t in times]))"
                    ),
                    f"    sim.Projection(source, {view}, sim.OneToOneConnector(), "
                    f"{self.synapse}(weight={w}, delay={self._delay(stimulus.delay_ms)}), "
                    f"receptor_type={receptor!r})",
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
            weights = synapses.weights[keep] * factor
            delays = delays_ms[keep]
            if self.chip:
                # Integer levels of one unit per population and receptor, negative onto the
                # inhibitory receptor; delay 0 (the chip's latency stands for the one delay).
                unit = self.units[projection.target, receptor]
                weights = np.sign(synapses.weights[keep]) * np.rint(
                    np.abs(synapses.weights[keep]) / unit
                )
                delays = np.zeros_like(delays)
            table = np.column_stack(
                (synapses.sources[keep], synapses.targets[keep], weights, delays)
            )
            saved = self._save(f"projection_{name}_{receptor}", connections=table)
            parts.append((receptor, saved, int(keep.sum())))
        synapse = f"{self.synapse}()"
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
