"""Typed, validated form of a circuit document (``apiVersion: brainsim/v1``).

The loader (:mod:`brainsim.circuit.loader`) turns YAML/JSON text into these frozen records after
schema and semantic validation, with ``${...}`` parameter references substituted and every default
filled in. The engine reads only these records, never the raw document.

Units are part of every field name (``tau_m_ms``, ``v_th_mV``, ``weight`` is documented per synapse
kind). A "value" is either a constant or a per-neuron/per-synapse random quantity (a distribution,
or an expression of per-neuron random variables); see :data:`Value`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from brainsim.models import NEURON_MODELS, Variant

__all__ = [
    "API_VERSION",
    "NEURON_PARAMS",
    "AllToAll",
    "Circuit",
    "Connectivity",
    "DCStimulus",
    "DeltaStimulus",
    "Distribution",
    "Expr",
    "FixedIndegree",
    "FixedOutdegree",
    "FixedTotalNumber",
    "FromFile",
    "IzhikevichParams",
    "LatencyStimulus",
    "LifParams",
    "LogNormal",
    "NeuronParams",
    "NodeSelection",
    "NoiseStimulus",
    "Normal",
    "OneToOne",
    "PairwiseBernoulli",
    "ParrotParams",
    "PoissonStimulus",
    "Population",
    "PopulationStimulus",
    "Projection",
    "RateStimulus",
    "Recordings",
    "SampleSchedule",
    "SampleStimulus",
    "Simulation",
    "SpikeSourceArray",
    "SpikeStimulus",
    "SpikeTrains",
    "StateRecording",
    "Stimulus",
    "StimulusData",
    "Synapse",
    "Target",
    "Uniform",
    "Value",
    "WeightRecording",
    "neuron_variant",
]

API_VERSION = "brainsim/v1"

Bound = Literal["redraw", "clip"]


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform distribution on ``[low, high)``."""

    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Normal:
    """Normal distribution, optionally bounded to ``[low, high]``.

    ``bound="redraw"`` draws again until the value is inside the bounds (NEST's ``redraw``);
    ``bound="clip"`` clips it to the nearest bound.
    """

    mean: float
    std: float
    low: float | None = None
    high: float | None = None
    bound: Bound = "redraw"


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal distribution: ``exp(N(mu, sigma))``, optionally bounded like :class:`Normal`."""

    mu: float
    sigma: float
    low: float | None = None
    high: float | None = None
    bound: Bound = "redraw"


Distribution = Uniform | Normal | LogNormal


@dataclass(frozen=True, slots=True)
class Expr:
    """An arithmetic expression of the population's per-neuron random variables.

    ``source`` is the user's text (e.g. ``"-65 + 15 * r**2"``); it is parsed by
    :mod:`brainsim.circuit.expressions` into a whitelisted syntax tree (numbers, the named
    variables, ``+ - * / **``, unary minus and a few math functions) and is never ``eval``-ed.
    ``names`` are the random-variable names it uses.
    """

    source: str
    names: tuple[str, ...]


Value = float | Uniform | Normal | LogNormal | Expr
"""A constant, a distribution (one independent draw per neuron or synapse), or an expression."""


@dataclass(frozen=True, slots=True)
class LifParams:
    """Leaky integrate-and-fire neuron, current based (declared in
    :mod:`brainsim.models.neuron_lif`; tests keep fields, defaults and options equal to it).

    ``tau_m dV/dt = -(V - E_L) + R (I_syn + I_e)`` with ``R = tau_m / C_m``; on ``V >= V_th`` a
    spike is emitted, ``V`` is set to ``V_reset`` and held there for ``t_ref``.
    ``synapse="delta"``: a spike of weight ``w`` (mV) makes ``V`` jump by ``w``.
    ``synapse="exponential"``: a spike of weight ``w`` (pA) adds ``w`` to ``I_syn_ex`` (``w > 0``)
    or ``I_syn_in`` (``w < 0``), which decay with ``tau_syn_ex_ms`` / ``tau_syn_in_ms``.
    ``synapse="alpha"``: the spike adds the alpha-shaped current ``w e/tau_syn t exp(-t/tau_syn)``
    (peak ``w`` at ``t = tau_syn``) to ``I_syn_ex`` or ``I_syn_in``, NEST's ``iaf_psc_alpha``.
    Defaults are NEST's ``iaf_psc_*`` defaults.
    """

    tau_m_ms: Value = 10.0
    c_m_pF: Value = 250.0
    v_th_mV: Value = -55.0
    v_reset_mV: Value = -70.0
    e_l_mV: Value = -70.0
    t_ref_ms: Value = 2.0
    i_e_pA: Value = 0.0
    synapse: Literal["delta", "exponential", "alpha"] = "delta"
    tau_syn_ex_ms: Value = 2.0
    tau_syn_in_ms: Value = 2.0


@dataclass(frozen=True, slots=True)
class IzhikevichParams:
    """Izhikevich (2003) neuron (declared in :mod:`brainsim.models.neuron_izhikevich`).

    ``dv/dt = 0.04 v^2 + 5 v + 140 - u + I``, ``du/dt = a (b v - u)``; on ``v >= v_peak``:
    ``v <- c``, ``u <- u + d``. ``integration="published_2003"`` is the paper's scheme (``v``
    advanced in two half steps of ``dt/2``, then ``u`` with the new ``v``); ``"euler"`` is forward
    Euler on both. ``synapse="current_pulse"``: weight (pA) is added to ``I`` for the step in which
    the spike arrives (the 2003 network); ``synapse="delta"``: weight (mV) is added to ``v``
    (NEST's ``izhikevich``).
    """

    a: Value = 0.02
    b: Value = 0.2
    c_mV: Value = -65.0
    d: Value = 8.0
    v_peak_mV: Value = 30.0
    i_e_pA: Value = 0.0
    integration: Literal["published_2003", "euler"] = "published_2003"
    synapse: Literal["current_pulse", "delta"] = "current_pulse"


@dataclass(frozen=True, slots=True)
class ParrotParams:
    """Parrot neuron (declared in :mod:`brainsim.models.neuron_parrot`), NEST's
    ``parrot_neuron``: no parameters. It fires in a step when the summed weight of the spikes
    arriving in it is > 0, at most once per step; it takes no current."""


NeuronParams = LifParams | IzhikevichParams | ParrotParams

NEURON_PARAMS: Mapping[str, type[LifParams] | type[IzhikevichParams] | type[ParrotParams]] = {
    "lif": LifParams,
    "izhikevich": IzhikevichParams,
    "parrot": ParrotParams,
}
"""The parameter record of each neuron model (:data:`brainsim.models.NEURON_MODELS`)."""


def neuron_variant(model: str, params: NeuronParams) -> Variant:
    """The declared variant of neuron model ``model`` that the choices of ``params`` select."""
    declared = NEURON_MODELS[model]
    return declared.variant({c.name: getattr(params, c.name) for c in declared.choices})


@dataclass(frozen=True, slots=True)
class Population:
    """A group of neurons sharing a model; gids ``gid_offset .. gid_offset + size - 1``.

    ``random_variables`` are per-neuron draws that :class:`Expr` values may reference; each
    neuron draws each variable once, so several parameters can depend on the same draw.
    ``initial`` maps state variable names (``v_mV``, ``u``, ``i_syn_ex_pA``, ``i_syn_in_pA``)
    to values; unspecified state starts at the model's rest (``e_l_mV`` for LIF ``v``,
    ``c_mV`` for Izhikevich ``v``); an unspecified Izhikevich ``u`` is ``b * v``, each neuron's
    ``b`` times its initial ``v`` (Izhikevich 2003; NEST's ``U_m = b * V_m``).
    """

    name: str
    size: int
    model: Literal["lif", "izhikevich", "parrot"]
    params: NeuronParams
    gid_offset: int
    initial: Mapping[str, Value] = field(default_factory=dict)
    random_variables: Mapping[str, Distribution] = field(default_factory=dict)

    @property
    def variant(self) -> Variant:
        """What this population's model and choices declare (parameters, state, kernel)."""
        return neuron_variant(self.model, self.params)


@dataclass(frozen=True, slots=True)
class NodeSelection:
    """A subset of a population's node ids (0-based, within the population).

    Exactly one form is set: ``ids`` (explicit, sorted, unique) or ``start/stop/step`` (a range;
    ``{first: n}`` in the document is ``start=0, stop=n``). ``NodeSelection()`` means all nodes.
    """

    ids: tuple[int, ...] | None = None
    start: int = 0
    stop: int | None = None
    step: int = 1


@dataclass(frozen=True, slots=True)
class Target:
    """A population, or a subset of it, that a stimulus drives."""

    population: str
    nodes: NodeSelection = field(default_factory=NodeSelection)


@dataclass(frozen=True, slots=True)
class OneToOne:
    """Node i of the source connects to node i of the target (sizes must match)."""

    rule: Literal["one_to_one"] = "one_to_one"


@dataclass(frozen=True, slots=True)
class AllToAll:
    """Every source node connects to every target node."""

    allow_autapses: bool = True
    rule: Literal["all_to_all"] = "all_to_all"


@dataclass(frozen=True, slots=True)
class FixedIndegree:
    """Each target node draws ``indegree`` sources uniformly."""

    indegree: int
    allow_autapses: bool = True
    allow_multapses: bool = True
    rule: Literal["fixed_indegree"] = "fixed_indegree"


@dataclass(frozen=True, slots=True)
class FixedOutdegree:
    """Each source node draws ``outdegree`` targets uniformly."""

    outdegree: int
    allow_autapses: bool = True
    allow_multapses: bool = True
    rule: Literal["fixed_outdegree"] = "fixed_outdegree"


@dataclass(frozen=True, slots=True)
class FixedTotalNumber:
    """Exactly ``n`` connections, (source, target) pairs drawn uniformly."""

    n: int
    allow_autapses: bool = True
    allow_multapses: bool = True
    rule: Literal["fixed_total_number"] = "fixed_total_number"


@dataclass(frozen=True, slots=True)
class PairwiseBernoulli:
    """Each (source, target) pair is connected independently with probability ``p``."""

    p: float
    allow_autapses: bool = True
    rule: Literal["pairwise_bernoulli"] = "pairwise_bernoulli"


@dataclass(frozen=True, slots=True)
class FromFile:
    """An explicit connection list in a file (``.npz`` with int arrays ``source`` and ``target``
    of population-local node ids, optional float arrays ``weight`` and ``delay_ms``, which then
    replace the projection's ``weight`` / ``delay_ms``), resolved against the circuit's directory.
    """

    path: str
    rule: Literal["from_file"] = "from_file"


Connectivity = (
    OneToOne
    | AllToAll
    | FixedIndegree
    | FixedOutdegree
    | FixedTotalNumber
    | PairwiseBernoulli
    | FromFile
)


@dataclass(frozen=True, slots=True)
class Synapse:
    """A projection's synapse model (a name of :data:`brainsim.models.SYNAPSE_MODELS`) and its
    parameters, every one given (defaults filled in)."""

    model: str = "static"
    params: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Projection:
    """Synapses from ``source`` to ``target``: static, or plastic as ``synapse`` says.

    ``weight`` units follow the target's synapse kind (mV for delta, pA for current synapses);
    positive weights excite, negative inhibit; for a plastic synapse it is the initial weight.
    ``delay_ms`` is rounded to the nearest multiple of ``dt_ms`` (and must be at least
    ``dt_ms``); for a plastic synapse the whole delay is dendritic (NEST's convention).
    """

    name: str
    source: str
    target: str
    connectivity: Connectivity
    weight: Value
    delay_ms: Value
    synapse: Synapse = field(default_factory=Synapse)

    @property
    def plastic(self) -> bool:
        """Whether the weights change during the run."""
        return self.synapse.model != "static"


@dataclass(frozen=True, slots=True)
class PoissonStimulus:
    """Independent Poisson spike train per target neuron, rate ``rate_hz``, weight per spike."""

    name: str
    targets: tuple[Target, ...]
    rate_hz: Value
    weight: Value
    delay_ms: float
    start_ms: float = 0.0
    stop_ms: float | None = None
    type: Literal["poisson"] = "poisson"


@dataclass(frozen=True, slots=True)
class DCStimulus:
    """Constant current ``amplitude_pA * weight`` into each target neuron in ``[start, stop)``."""

    name: str
    targets: tuple[Target, ...]
    amplitude_pA: Value
    weight: Value = 1.0
    start_ms: float = 0.0
    stop_ms: float | None = None
    type: Literal["dc"] = "dc"


@dataclass(frozen=True, slots=True)
class NoiseStimulus:
    """Gaussian current, a fresh draw ``N(mean_pA, std_pA) * weight`` per neuron and step."""

    name: str
    targets: tuple[Target, ...]
    mean_pA: Value
    std_pA: Value
    weight: Value = 1.0
    start_ms: float = 0.0
    stop_ms: float | None = None
    type: Literal["noise"] = "noise"


@dataclass(frozen=True, slots=True)
class SpikeSourceArray:
    """The same given spike times (ms, ascending) delivered to every target with ``weight``."""

    name: str
    targets: tuple[Target, ...]
    spike_times_ms: tuple[float, ...]
    weight: Value
    delay_ms: float
    type: Literal["spike_source_array"] = "spike_source_array"


@dataclass(frozen=True, slots=True)
class StimulusData:
    """The numbers a data-driven stimulus reads (:mod:`brainsim.circuit.data`).

    ``values`` is read-only float64: ``[n_samples, n_features]`` for the encoders, and for
    spike trains ``[n_spikes, 2]`` rows ``(target index, time_ms)`` sorted by target, then time.
    ``file`` is the path relative to the circuit's directory (``None``: given inline, then
    ``inline`` is the document's list) and ``key`` the array of an ``.npz``. Two records are
    equal when they name the same source and their ``sha256`` (of the array's shape and bytes,
    :func:`brainsim.circuit.data.array_sha256`) agree; the array itself is not compared.
    """

    file: str | None
    key: str | None
    sha256: str
    values: npt.NDArray[np.float64] = field(compare=False, repr=False)
    inline: Any = field(default=None, compare=False, repr=False)

    @property
    def n_samples(self) -> int:
        """Rows of ``values``: samples (encoders) or spikes (spike trains)."""
        return int(self.values.shape[0])


@dataclass(frozen=True, slots=True)
class SampleSchedule:
    """When an encoder shows its samples: from ``start_ms``, each for ``present_ms`` followed by
    ``rest_ms`` of silence, in ``order`` (sample indices, repeats allowed; ``None``: each
    sample once, in the data's order). ``present_ms`` and ``rest_ms`` are multiples of dt."""

    start_ms: float
    present_ms: float
    rest_ms: float = 0.0
    order: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class RateStimulus:
    """Rate-coded samples: target ``i`` fires at ``max_rate_hz * clip(x_i * gain + offset, 0,
    1)`` while a sample ``x`` is shown, as a spike with probability ``rate * dt`` per step
    (``mode="bernoulli"``, snnTorch's ``spikegen.rate``) or a Poisson count per step
    (``"poisson"``); each spike acts like a synapse of ``weight`` with ``delay_ms``.
    ``features`` picks the data's columns, one per target neuron (``None``: all, in order)."""

    name: str
    targets: tuple[Target, ...]
    data: StimulusData
    schedule: SampleSchedule
    max_rate_hz: float
    weight: Value
    delay_ms: float
    features: tuple[int, ...] | None = None
    gain: float = 1.0
    offset: float = 0.0
    mode: Literal["bernoulli", "poisson"] = "bernoulli"
    type: Literal["rate"] = "rate"


@dataclass(frozen=True, slots=True)
class LatencyStimulus:
    """Latency-coded samples, snnTorch's ``spikegen.latency``: one spike per target and sample,
    ``t(x)`` after the sample's onset, on the time grid. Logarithmic (default):
    ``t = tau_ms ln(x / (x - threshold))`` with ``x`` raised to ``threshold + 1e-7`` first;
    ``linear``: ``t = tau_ms min(1 - x, 1 - threshold)``. ``normalize`` scales a sample's times
    so that the latest falls on the window's last step (linear: ``tau_ms`` becomes
    ``present_ms - dt``); a time past that step is moved to it; ``clip`` drops the spikes of
    inputs below ``threshold``. Data are in ``[0, 1]``."""

    name: str
    targets: tuple[Target, ...]
    data: StimulusData
    schedule: SampleSchedule
    tau_ms: float
    weight: Value
    delay_ms: float
    features: tuple[int, ...] | None = None
    threshold: float = 0.01
    linear: bool = False
    normalize: bool = False
    clip: bool = False
    type: Literal["latency"] = "latency"


@dataclass(frozen=True, slots=True)
class PopulationStimulus:
    """Population-coded samples: each feature is read by ``n_neurons_per_feature`` target
    neurons (feature-major: target ``f * n + j`` reads feature ``f``) with Gaussian tuning
    curves. Neuron ``j``'s centre is ``c_j = low + j (high - low) / (n - 1)`` and its rate
    ``max_rate_hz exp(-(x - c_j)^2 / (2 sigma^2))`` while a sample ``x`` is shown, a Poisson
    count per step; each spike acts like a synapse of ``weight`` with ``delay_ms``.
    ``features`` picks the data's columns (``None``: all, in order)."""

    name: str
    targets: tuple[Target, ...]
    data: StimulusData
    schedule: SampleSchedule
    n_neurons_per_feature: int
    sigma: float
    max_rate_hz: float
    weight: Value
    delay_ms: float
    features: tuple[int, ...] | None = None
    low: float = 0.0
    high: float = 1.0
    type: Literal["population"] = "population"


@dataclass(frozen=True, slots=True)
class DeltaStimulus:
    """Delta-coded time series, snnTorch's ``spikegen.delta``: ``data`` row ``k`` is the input
    at ``start_ms + k step_ms``; target ``i`` spikes at row ``k`` when feature ``i`` rose by at
    least ``threshold`` since row ``k - 1`` (row -1: zeros, or row 0 itself with ``padding``).
    With ``off_spikes``, a fall by at least ``threshold`` spikes target ``i`` of
    ``targets_off``. Each spike acts like a synapse of ``weight`` with ``delay_ms``."""

    name: str
    targets: tuple[Target, ...]
    data: StimulusData
    step_ms: float
    weight: Value
    delay_ms: float
    features: tuple[int, ...] | None = None
    start_ms: float = 0.0
    threshold: float = 0.1
    padding: bool = False
    off_spikes: bool = False
    targets_off: tuple[Target, ...] = ()
    type: Literal["delta"] = "delta"


@dataclass(frozen=True, slots=True)
class SpikeTrains:
    """Given spike times per target neuron (``data``: rows ``(target index, time_ms)``, the
    target index counting the neurons of ``targets`` in order), each spike acting like a
    synapse of ``weight`` with ``delay_ms``."""

    name: str
    targets: tuple[Target, ...]
    data: StimulusData
    weight: Value
    delay_ms: float
    type: Literal["spike_trains"] = "spike_trains"


Stimulus = (
    PoissonStimulus
    | DCStimulus
    | NoiseStimulus
    | SpikeSourceArray
    | RateStimulus
    | LatencyStimulus
    | PopulationStimulus
    | DeltaStimulus
    | SpikeTrains
)

SampleStimulus = RateStimulus | LatencyStimulus | PopulationStimulus
"""The stimuli that show samples of data on a :class:`SampleSchedule`."""

SpikeStimulus = (
    PoissonStimulus
    | SpikeSourceArray
    | RateStimulus
    | LatencyStimulus
    | PopulationStimulus
    | DeltaStimulus
    | SpikeTrains
)
"""The stimuli whose input are spikes through the ring buffers (they have a ``delay_ms``)."""


@dataclass(frozen=True, slots=True)
class StateRecording:
    """Record ``variables`` of the selected neurons of ``population`` every ``interval_ms``."""

    population: str
    variables: tuple[str, ...]
    nodes: NodeSelection
    interval_ms: float


@dataclass(frozen=True, slots=True)
class WeightRecording:
    """Snapshots of a plastic projection's weights: at 0, every ``interval_ms`` and at the end.

    ``first`` limits the recorded synapses to the first ones in the recording's order (by
    target, then source, then creation); ``None`` records all. ``interval_ms`` ``None``:
    only the final weights (what every plastic projection records when not asked).
    """

    projection: str
    interval_ms: float | None
    first: int | None = None


@dataclass(frozen=True, slots=True)
class Recordings:
    """What a run records: spikes of whole populations, sampled state and weights."""

    spikes: tuple[str, ...] = ()
    state: tuple[StateRecording, ...] = ()
    weights: tuple[WeightRecording, ...] = ()


@dataclass(frozen=True, slots=True)
class Simulation:
    """Time grid and seed: ``duration_ms / dt_ms`` steps; every random draw comes from ``seed``."""

    dt_ms: float
    duration_ms: float
    seed: int


@dataclass(frozen=True, slots=True)
class Circuit:
    """A whole validated circuit.

    ``populations``, ``projections`` and ``stimuli`` keep the document's order (gid offsets
    follow population order). ``document`` is the normalized document (parameters substituted,
    defaults filled, JSON-compatible) that recordings store; ``base_dir`` is where relative file
    references resolve (``None`` for text without a file).
    """

    name: str
    simulation: Simulation
    populations: Mapping[str, Population]
    projections: Mapping[str, Projection]
    stimuli: Mapping[str, Stimulus]
    recordings: Recordings
    parameters: Mapping[str, float]
    document: Mapping[str, Any]
    base_dir: str | None = None
    description: str = ""

    @property
    def n_neurons(self) -> int:
        """Total number of neurons (= number of gids)."""
        return sum(p.size for p in self.populations.values())

    @property
    def n_steps(self) -> int:
        """Number of time steps of the whole run."""
        return round(self.simulation.duration_ms / self.simulation.dt_ms)
