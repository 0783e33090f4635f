"""Build the spec records of a schema-checked document, with the checks a schema cannot make.

The schema has already reported malformed values; this stage looks at each field the schema
found clean (so one bad value does not hide its neighbours' problems) and checks what needs
context: references between populations, projections, stimuli
and recordings; delays and intervals against ``dt_ms``; degrees against population sizes;
node ids against sizes; model-specific parameters and state variables; value ranges of
distributions; connection files; stimulus data (:mod:`.encoders`); and the memory the whole
circuit needs. Every problem is
recorded (with its path), and the :class:`Circuit` is built only when there are none.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from brainsim.circuit.document import circuit_document
from brainsim.circuit.encoders import DATA_STIMULI, build_data_stimulus
from brainsim.circuit.expressions import FUNCTIONS
from brainsim.circuit.files import check_connection_file
from brainsim.circuit.grid import RELATIVE_TOLERANCE, check_grid_time, is_multiple
from brainsim.circuit.problems import Path, ProblemLog
from brainsim.circuit.resources import estimate, format_bytes
from brainsim.circuit.spec import (
    NEURON_PARAMS,
    AllToAll,
    Circuit,
    Connectivity,
    DCStimulus,
    Distribution,
    FixedIndegree,
    FixedOutdegree,
    FixedTotalNumber,
    FromFile,
    NeuronParams,
    NodeSelection,
    NoiseStimulus,
    OneToOne,
    PairwiseBernoulli,
    PoissonStimulus,
    Population,
    Projection,
    Recordings,
    Simulation,
    SpikeSourceArray,
    SpikeStimulus,
    StateRecording,
    Stimulus,
    Synapse,
    Target,
    Value,
    WeightRecording,
    neuron_variant,
)
from brainsim.circuit.values import build_distribution, build_value, check_lower_bound, support
from brainsim.models import NEURON_MODELS, SYNAPSE_MODELS, NeuronModel, Variant

__all__ = [
    "MAX_NEURONS",
    "MAX_STEPS",
    "MemoryLimit",
    "build_circuit",
    "initial_state_names",
    "recordable_variables",
]

MAX_STEPS = 2**40
"""Most time steps a run may have (``duration_ms / dt_ms``)."""

MAX_NEURONS = 2**32 - 1
"""Most neurons a circuit may have: gids are unsigned 32-bit numbers."""

_STIMULUS_VALUES = ("rate_hz", "weight", "amplitude_pA", "mean_pA", "std_pA")


@dataclass(frozen=True, slots=True)
class MemoryLimit:
    """The memory a circuit may need, and how to name the limit in messages."""

    bytes: int
    source: str


def initial_state_names(population: Population) -> tuple[str, ...]:
    """State variables ``initial`` may set: ``v_mV`` and ``u`` or the synaptic currents."""
    return population.variant.initial_keys


def recordable_variables(population: Population) -> tuple[str, ...]:
    """State variables a state recording may sample (``v``, ``u``, ``i_syn_ex``, ...)."""
    return population.variant.recordables


def build_circuit(
    document: Mapping[str, Any],
    parameters: Mapping[str, float],
    base_dir: str | None,
    log: ProblemLog,
    memory_limit: MemoryLimit | None,
) -> Circuit | None:
    """Check ``document`` (already schema-checked, problems in ``log``) and build its Circuit.

    Returns ``None`` when ``log`` holds any problem afterwards.
    """
    return _Builder(document, base_dir, log).build(parameters, memory_limit)


def _mapping(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


def _list(data: Any) -> list[Any]:
    return data if isinstance(data, list) else []


def _not_used(model: NeuronModel, variant: Variant, key: str) -> str:
    """Why ``key`` does not apply to ``variant``: the options it needs, and the chosen ones."""
    chosen = ", ".join(
        f"this population's {choice} is {value}"
        for choice, value in variant.choices
        if f"{choice}:" in model.used_with(key)
    )
    return f"only used with {model.used_with(key)} ({chosen})"


def _choices(name: str, defined: list[str], what: str) -> str:
    listed = ", ".join(defined) if defined else "none"
    message = f"undefined {what} {name!r}; defined {what}s: {listed}"
    close = difflib.get_close_matches(name, defined, n=1)
    return f"{message} (did you mean {close[0]!r}?)" if close else message


class _Builder:
    """One pass over the document's sections, collecting records and problems; a record is
    built only from an entry without problems."""

    def __init__(self, document: Mapping[str, Any], base_dir: str | None, log: ProblemLog):
        self._document = document
        self._base_dir = base_dir
        self._log = log
        self._dt_ms: float | None = None
        self._defined = list(_mapping(document.get("populations")))
        self._sizes: dict[str, int] = {}
        self._variables: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._populations: dict[str, Population] = {}

    def build(
        self, parameters: Mapping[str, float], memory_limit: MemoryLimit | None
    ) -> Circuit | None:
        simulation = self._simulation()
        self._build_populations()
        projections = self._projections()
        stimuli = self._stimuli()
        recordings = self._recordings(projections)
        self._check_memory(projections, stimuli, memory_limit)
        if self._log or simulation is None:
            return None
        circuit = Circuit(
            name=self._document["name"],
            simulation=simulation,
            populations=self._populations,
            projections=projections,
            stimuli=stimuli,
            recordings=recordings,
            parameters=dict(parameters),
            document={},
            base_dir=self._base_dir,
            description=self._document.get("description", ""),
        )
        return replace(circuit, document=circuit_document(circuit))

    def _has(self, data: Mapping[str, Any], key: str, path: Path) -> bool:
        """True when ``data`` has ``key`` and the schema found nothing wrong there."""
        return key in data and self._log.is_clean((*path, key))

    # -- simulation ---------------------------------------------------------------------------

    def _simulation(self) -> Simulation | None:
        data = _mapping(self._document.get("simulation"))
        path: Path = ("simulation",)
        if self._has(data, "dt_ms", path):
            self._dt_ms = float(data["dt_ms"])
        if self._dt_ms is None or not self._has(data, "duration_ms", path):
            return None
        duration_ms = float(data["duration_ms"])
        steps = duration_ms / self._dt_ms
        if steps > MAX_STEPS:
            self._log.add(
                (*path, "duration_ms"),
                f"is {steps:.3g} steps of dt_ms; at most 2**40 ({MAX_STEPS:,}) are supported",
            )
        elif not is_multiple(duration_ms, self._dt_ms):
            self._log.add(
                (*path, "duration_ms"),
                f"must be a multiple of dt_ms ({self._dt_ms}), got {duration_ms}",
            )
        if not self._log.is_clean(path):
            return None
        return Simulation(dt_ms=self._dt_ms, duration_ms=duration_ms, seed=int(data.get("seed", 0)))

    # -- populations --------------------------------------------------------------------------

    def _build_populations(self) -> None:
        gid_offset = 0
        for name, data in _mapping(self._document.get("populations")).items():
            if not isinstance(data, dict):
                continue
            population = self._population(name, data, gid_offset)
            if population is not None:
                self._populations[name] = population
            gid_offset += self._sizes.get(name, 0)
        if gid_offset > MAX_NEURONS:
            self._log.add(
                ("populations",),
                f"holds {gid_offset:,} neurons; at most 2**32 - 1 ({MAX_NEURONS:,}) are supported",
            )

    def _population(self, name: str, data: dict[str, Any], gid_offset: int) -> Population | None:
        path: Path = ("populations", name)
        if self._has(data, "size", path):
            self._sizes[name] = int(data["size"])
        random_variables: dict[str, Distribution] = {}
        for variable, spec in _mapping(data.get("random_variables")).items():
            where: Path = (*path, "random_variables", variable)
            if not self._log.is_clean(where):
                continue
            if variable in FUNCTIONS:
                self._log.add(where, f"{variable!r} is the name of a function; choose another")
            random_variables[variable] = build_distribution(spec, where, self._log)
        if not all(
            self._log.is_clean((*path, key)) for key in ("model", "params", "random_variables")
        ):
            return None
        model = NEURON_MODELS[data["model"]]
        params = self._neuron_params(
            model, _mapping(data.get("params")), (*path, "params"), random_variables
        )
        variant = neuron_variant(model.name, params)
        self._variables[name] = (model.name, variant.recordables)
        initial: dict[str, Value] = {}
        for key, spec in _mapping(data.get("initial")).items():
            where = (*path, "initial", key)
            if not self._log.is_clean(where):
                continue
            if key not in variant.initial_keys:
                self._log.add(where, _not_used(model, variant, key))
            initial[key] = build_value(spec, where, self._log, random_variables)
        if not self._log.is_clean(path):
            return None
        return Population(
            name=name,
            size=self._sizes[name],
            model=data["model"],
            params=params,
            gid_offset=gid_offset,
            initial=initial,
            random_variables=random_variables,
        )

    def _neuron_params(
        self,
        model: NeuronModel,
        given: dict[str, Any],
        path: Path,
        random_variables: Mapping[str, Distribution],
    ) -> NeuronParams:
        """The parameter record, with the declared bounds and orderings checked and every
        parameter the choices do not use reported."""
        choices = {choice.name for choice in model.choices}
        values: dict[str, Any] = {
            key: spec
            if key in choices
            else build_value(spec, (*path, key), self._log, random_variables)
            for key, spec in given.items()
        }
        params = NEURON_PARAMS[model.name](**values)
        variant = neuron_variant(model.name, params)
        used = {parameter.name for parameter in variant.parameters}
        for key in given:
            if key not in choices and key not in used:
                self._log.add((*path, key), _not_used(model, variant, key))
        for parameter in variant.parameters:
            if parameter.name in values and parameter.minimum is not None:
                check_lower_bound(
                    values[parameter.name],
                    (*path, parameter.name),
                    self._log,
                    parameter.minimum,
                    inclusive=not parameter.exclusive_minimum,
                    what=f"{parameter.minimum:g}",
                )
        for low, high in model.below:
            self._check_below(getattr(params, low), getattr(params, high), low, high, given, path)
        return params

    def _check_below(
        self,
        low: Value,
        high: Value,
        low_key: str,
        high_key: str,
        given: dict[str, Any],
        path: Path,
    ) -> None:
        """Constant ``low`` must be below constant ``high`` (e.g. reset below threshold)."""
        if isinstance(low, float) and isinstance(high, float) and not low < high:
            if low_key in given:
                self._log.add((*path, low_key), f"must be below {high_key} ({high}), got {low}")
            else:
                self._log.add((*path, high_key), f"must be above {low_key} ({low}), got {high}")

    def _population_ref(self, data: Mapping[str, Any], key: str, path: Path) -> str | None:
        """The population named by ``data[key]`` if the schema found it well-formed."""
        if not self._has(data, key, path):
            return None
        return self._defined_population(data[key], (*path, key))

    def _defined_population(self, name: str, path: Path) -> str | None:
        """``name`` if a population of that name exists; otherwise a problem at ``path``."""
        if name not in self._defined:
            self._log.add(path, _choices(name, self._defined, "population"))
            return None
        return name

    # -- projections --------------------------------------------------------------------------

    def _projections(self) -> dict[str, Projection]:
        projections: dict[str, Projection] = {}
        for name, data in _mapping(self._document.get("projections")).items():
            if isinstance(data, dict):
                projection = self._projection(name, data, ("projections", name))
                if projection is not None:
                    projections[name] = projection
        return projections

    def _projection(self, name: str, data: dict[str, Any], path: Path) -> Projection | None:
        source = self._population_ref(data, "source", path)
        target = self._population_ref(data, "target", path)
        connectivity = None
        if self._has(data, "connectivity", path):
            connectivity = self._connectivity(
                data["connectivity"], (*path, "connectivity"), source, target
            )
        weight = None
        if self._has(data, "weight", path):
            weight = build_value(data["weight"], (*path, "weight"), self._log)
        delay: Value | None = None
        if "delay_ms" not in data:
            delay = self._dt_ms
        elif self._log.is_clean((*path, "delay_ms")):
            delay = self._delay_value(data["delay_ms"], (*path, "delay_ms"))
        synapse = Synapse()
        if self._has(data, "synapse", path):
            synapse = self._synapse(data["synapse"], weight, (*path, "synapse"))
        if (
            source is None
            or target is None
            or connectivity is None
            or weight is None
            or delay is None
            or not self._log.is_clean(path)
        ):
            return None
        return Projection(
            name=name,
            source=source,
            target=target,
            connectivity=connectivity,
            weight=weight,
            delay_ms=delay,
            synapse=synapse,
        )

    def _synapse(self, data: dict[str, Any], weight: Value | None, path: Path) -> Synapse:
        """The synapse block: its model's parameters with defaults, each within its bounds,
        and the projection's initial weights checked against them."""
        model = SYNAPSE_MODELS[data["model"]]
        params = model.defaults() | {
            key: float(value) for key, value in data.items() if key != "model"
        }
        for parameter in model.parameters:
            problem = parameter.violation(params[parameter.name])
            if problem is not None:
                self._log.add((*path, parameter.name), problem)
        weights = None if weight is None else support(weight)
        if weights is not None and self._log.is_clean(path):
            for key, message in model.check_weights(params, weights):
                at: Path = (*path[:-1], "weight") if key == "weight" else (*path, key)
                self._log.add(at, message)
        return Synapse(model=model.name, params=params)

    def _delay_value(self, data: Any, path: Path) -> Value:
        delay = build_value(data, path, self._log)
        if self._dt_ms is not None:
            check_lower_bound(
                delay, path, self._log, self._dt_ms, inclusive=True, what=f"dt_ms ({self._dt_ms})"
            )
        return delay

    def _connectivity(
        self, data: dict[str, Any], path: Path, source: str | None, target: str | None
    ) -> Connectivity:
        rule = data["rule"]
        autapses = bool(data.get("allow_autapses", True))
        multapses = bool(data.get("allow_multapses", True))
        connectivity: Connectivity
        if rule == "one_to_one":
            connectivity = OneToOne()
        elif rule == "all_to_all":
            connectivity = AllToAll(allow_autapses=autapses)
        elif rule == "fixed_indegree":
            connectivity = FixedIndegree(int(data["indegree"]), autapses, multapses)
        elif rule == "fixed_outdegree":
            connectivity = FixedOutdegree(int(data["outdegree"]), autapses, multapses)
        elif rule == "fixed_total_number":
            connectivity = FixedTotalNumber(int(data["n"]), autapses, multapses)
        elif rule == "pairwise_bernoulli":
            connectivity = PairwiseBernoulli(float(data["p"]), autapses)
        else:
            connectivity = FromFile(data["path"])
        same = source is not None and source == target
        if isinstance(connectivity, FixedIndegree) and source in self._sizes:
            self._check_degree(connectivity.indegree, connectivity, same, source, path)
        elif isinstance(connectivity, FixedOutdegree) and target in self._sizes:
            self._check_degree(connectivity.outdegree, connectivity, same, target, path)
        elif isinstance(connectivity, FromFile):
            sizes = None
            if source in self._sizes and target in self._sizes:
                sizes = (self._sizes[source], self._sizes[target])
            check_connection_file(
                connectivity.path, self._base_dir, sizes, self._dt_ms, self._log, (*path, "path")
            )
        elif source in self._sizes and target in self._sizes:
            self._check_pairs(connectivity, path, source, target)
        return connectivity

    def _check_pairs(self, rule: Connectivity, path: Path, source: str, target: str) -> None:
        """Rules limited by the sizes of both populations."""
        n_source = self._sizes[source]
        n_target = self._sizes[target]
        if isinstance(rule, OneToOne) and n_source != n_target:
            self._log.add(
                (*path, "rule"),
                f"one_to_one needs populations of equal size; {source} has {n_source}, "
                f"{target} has {n_target}",
            )
        elif isinstance(rule, FixedTotalNumber):
            autapses_excluded = source == target and not rule.allow_autapses
            pairs = n_source * n_target - (n_source if autapses_excluded else 0)
            if rule.n > 0 and (pairs == 0 or (not rule.allow_multapses and rule.n > pairs)):
                self._log.add(
                    (*path, "n"),
                    f"must be <= {pairs:,}, the number of distinct (source, target) pairs, "
                    f"when allow_multapses is false; got {rule.n:,}",
                )

    def _check_degree(
        self,
        degree: int,
        rule: FixedIndegree | FixedOutdegree,
        same: bool,
        pool: str,
        path: Path,
    ) -> None:
        """Each neuron draws ``degree`` partners from ``pool`` (minus itself without autapses)."""
        key = "indegree" if isinstance(rule, FixedIndegree) else "outdegree"
        size = self._sizes[pool]
        available = size - (1 if same and not rule.allow_autapses else 0)
        if degree == 0 or (rule.allow_multapses and available > 0) or degree <= available:
            return
        reason = (
            f"the size of {pool}"
            if available == size
            else f"the size of {pool} minus 1, as allow_autapses is false"
        )
        condition = " when allow_multapses is false" if not rule.allow_multapses else ""
        self._log.add(
            (*path, key), f"must be <= {available:,} ({reason}){condition}; got {degree:,}"
        )

    # -- stimuli ------------------------------------------------------------------------------

    def _stimuli(self) -> dict[str, Stimulus]:
        stimuli: dict[str, Stimulus] = {}
        for name, data in _mapping(self._document.get("stimuli")).items():
            if isinstance(data, dict):
                stimulus = self._stimulus(name, data, ("stimuli", name))
                if stimulus is not None:
                    stimuli[name] = stimulus
        return stimuli

    def _stimulus(self, name: str, data: dict[str, Any], path: Path) -> Stimulus | None:
        targets = tuple(
            self._target(target, (*path, "targets", index))
            for index, target in enumerate(_list(data.get("targets")))
        )
        if not self._has(data, "type", path):
            return None
        values = {
            key: build_value(spec, (*path, key), self._log)
            for key, spec in data.items()
            if key in _STIMULUS_VALUES and self._log.is_clean((*path, key))
        }
        for key in ("rate_hz", "std_pA"):
            if key in values:
                check_lower_bound(
                    values[key], (*path, key), self._log, 0.0, inclusive=True, what="0"
                )
        times = self._spike_times(data, path)
        delay_ms = self._stimulus_delay(data, path)
        kind = data["type"]
        if kind in DATA_STIMULI:
            targets_off = tuple(
                self._target(target, (*path, "targets_off", index))
                for index, target in enumerate(_list(data.get("targets_off")))
            )
            return build_data_stimulus(
                name,
                data,
                path,
                targets=targets,
                n_targets=self._target_neurons(targets, path),
                weight=values.get("weight"),
                delay_ms=delay_ms,
                dt_ms=self._dt_ms,
                base_dir=self._base_dir,
                log=self._log,
                targets_off=targets_off,
                n_targets_off=self._target_neurons(targets_off, path, key="targets_off"),
            )
        start_ms, stop_ms = self._activity_window(data, path)
        if kind in ("dc", "noise"):
            self._check_current_targets(kind, targets, path)
        if not self._log.is_clean(path) or delay_ms is None:
            return None
        if kind == "poisson":
            return PoissonStimulus(
                name=name,
                targets=targets,
                rate_hz=values["rate_hz"],
                weight=values["weight"],
                delay_ms=delay_ms,
                start_ms=start_ms,
                stop_ms=stop_ms,
            )
        if kind == "dc":
            return DCStimulus(
                name=name,
                targets=targets,
                amplitude_pA=values["amplitude_pA"],
                weight=values.get("weight", 1.0),
                start_ms=start_ms,
                stop_ms=stop_ms,
            )
        if kind == "noise":
            return NoiseStimulus(
                name=name,
                targets=targets,
                mean_pA=values.get("mean_pA", 0.0),
                std_pA=values["std_pA"],
                weight=values.get("weight", 1.0),
                start_ms=start_ms,
                stop_ms=stop_ms,
            )
        return SpikeSourceArray(
            name=name,
            targets=targets,
            spike_times_ms=times,
            weight=values["weight"],
            delay_ms=delay_ms,
        )

    def _check_current_targets(self, kind: str, targets: tuple[Target, ...], path: Path) -> None:
        """A current stimulus may only target neurons that integrate currents (not parrots,
        which NEST refuses to connect current generators to as well)."""
        for index, target in enumerate(targets):
            population = self._populations.get(target.population)
            if population is not None and not population.variant.takes_current:
                self._log.add(
                    (*path, "targets", index),
                    f"a {kind} stimulus injects a current, and {population.model} population "
                    f"{population.name} takes spikes only",
                )

    def _activity_window(self, data: dict[str, Any], path: Path) -> tuple[float, float | None]:
        """``[start_ms, stop_ms)``; a problem when it is empty."""
        start_ms = float(data["start_ms"]) if self._has(data, "start_ms", path) else 0.0
        stop_ms = None
        if self._has(data, "stop_ms", path) and data["stop_ms"] is not None:
            stop_ms = float(data["stop_ms"])
            if not stop_ms > start_ms:
                self._log.add((*path, "stop_ms"), f"must be > start_ms ({start_ms}), got {stop_ms}")
        return start_ms, stop_ms

    def _spike_times(self, data: dict[str, Any], path: Path) -> tuple[float, ...]:
        if not self._has(data, "spike_times_ms", path):
            return ()
        times = tuple(float(time) for time in data["spike_times_ms"])
        for index in range(1, len(times)):
            if times[index] < times[index - 1]:
                self._log.add(
                    (*path, "spike_times_ms", index),
                    f"spike times must be ascending; {times[index]} follows {times[index - 1]}",
                )
                break
        return times

    def _stimulus_delay(self, data: dict[str, Any], path: Path) -> float | None:
        if self._dt_ms is None or not self._log.is_clean((*path, "delay_ms")):
            return None
        delay_ms = float(data.get("delay_ms", self._dt_ms))
        if delay_ms < self._dt_ms * (1 - RELATIVE_TOLERANCE):
            self._log.add((*path, "delay_ms"), f"must be >= dt_ms ({self._dt_ms}), got {delay_ms}")
        return delay_ms

    def _target_neurons(
        self, targets: tuple[Target, ...], path: Path, key: str = "targets"
    ) -> int | None:
        """How many neurons ``targets`` (the list ``key``) select together (``None`` when a
        target has problems); a problem (and ``None``) when two targets select the same neuron,
        as each must read its own data."""
        if not all(
            self._log.is_clean((*path, key, index)) and t.population in self._sizes
            for index, t in enumerate(targets)
        ):
            return None
        total = 0
        seen: dict[str, list[range | tuple[int, ...]]] = {}
        for index, target in enumerate(targets):
            size = self._sizes[target.population]
            nodes = target.nodes
            ids = (
                nodes.ids
                if nodes.ids is not None
                else range(
                    nodes.start, size if nodes.stop is None else min(nodes.stop, size), nodes.step
                )
            )
            for earlier in seen.get(target.population, []):
                if not set(earlier).isdisjoint(ids):
                    self._log.add(
                        (*path, key, index),
                        f"selects neurons of {target.population} that an earlier target "
                        "selects; each target neuron reads its own data, so select each once",
                    )
            seen.setdefault(target.population, []).append(ids)
            total += len(ids)
        return total if self._log.is_clean((*path, key)) else None

    def _target(self, data: Any, path: Path) -> Target:
        if isinstance(data, str):
            if self._log.is_clean(path):
                self._defined_population(data, path)
            return Target(population=data)
        entry = _mapping(data)
        name = self._population_ref(entry, "population", path)
        nodes = NodeSelection()
        if self._has(entry, "node_ids", path):
            nodes = self._nodes(entry["node_ids"], (*path, "node_ids"), name)
        return Target(population=str(entry.get("population")), nodes=nodes)

    def _nodes(self, data: Any, path: Path, population: str | None) -> NodeSelection:
        """A node selection, checked against the population's size when it is known."""
        size = self._sizes.get(population) if population is not None else None
        where = f" for {population} (size {size})"
        if isinstance(data, list):
            ids = tuple(sorted(int(node) for node in data))
            if size is not None and ids[-1] >= size:
                outside = [node for node in ids if node >= size]
                shown = ", ".join(str(node) for node in outside[:5])
                more = ", ..." if len(outside) > 5 else ""
                self._log.add(path, f"{len(outside)} node id(s) out of range{where}: {shown}{more}")
            return NodeSelection(ids=ids)
        if "first" in data:
            first = int(data["first"])
            if size is not None and first > size:
                self._log.add((*path, "first"), f"must be <= the size{where}, got {first}")
            return NodeSelection(start=0, stop=first)
        bounds = data["range"]
        start = int(bounds.get("start", 0))
        stop = None if bounds.get("stop") is None else int(bounds["stop"])
        step = int(bounds.get("step", 1))
        end = size if stop is None else stop
        if size is not None and stop is not None and stop > size:
            self._log.add((*path, "range", "stop"), f"must be <= the size{where}, got {stop}")
        elif end is not None and start >= end:
            self._log.add(
                (*path, "range", "start"), f"must be < stop ({end}) to select any node, got {start}"
            )
        return NodeSelection(start=start, stop=stop, step=step)

    # -- recordings ---------------------------------------------------------------------------

    def _recordings(self, projections: Mapping[str, Projection]) -> Recordings:
        data = _mapping(self._document.get("recordings"))
        spikes: list[str] = []
        if data.get("spikes") == "all":
            spikes = list(self._defined)
        for index, name in enumerate(_list(data.get("spikes"))):
            path: Path = ("recordings", "spikes", index)
            if self._log.is_clean(path):
                self._defined_population(name, path)
                spikes.append(name)
        states = []
        first_at: dict[tuple[str, str], int] = {}
        for index, entry in enumerate(_list(data.get("state"))):
            if isinstance(entry, dict):
                state = self._state_recording(entry, ("recordings", "state", index))
                states.append(state)
                # A recording holds one report per (population, variable) (RECORDING.md).
                for v_index, variable in enumerate(state.variables):
                    key = (state.population, variable)
                    if key in first_at:
                        self._log.add(
                            ("recordings", "state", index, "variables", v_index),
                            f"{variable!r} of {state.population} is already recorded by "
                            f"recordings.state.{first_at[key]}; record it once",
                        )
                    else:
                        first_at[key] = index
        return Recordings(
            spikes=tuple(spikes), state=tuple(states), weights=self._weights(data, projections)
        )

    def _weights(
        self, data: Mapping[str, Any], projections: Mapping[str, Projection]
    ) -> tuple[WeightRecording, ...]:
        """The weight recordings asked for, then the final weights of every other plastic
        projection (always recorded)."""
        out: dict[str, WeightRecording] = {}
        defined = list(_mapping(self._document.get("projections")))
        for index, entry in enumerate(_list(data.get("weights"))):
            path: Path = ("recordings", "weights", index)
            if not isinstance(entry, dict) or not self._log.is_clean(path):
                continue
            name = entry["projection"]
            where: Path = (*path, "projection")
            if name not in defined:
                self._log.add(where, _choices(name, defined, "projection"))
                continue
            if name in out:
                self._log.add(where, f"projection {name} is already recorded; record it once")
                continue
            if name in projections and not projections[name].plastic:
                self._log.add(
                    where, f"projection {name} is static (no synapse model): its weights are fixed"
                )
                continue
            first = None
            if isinstance(entry.get("synapses"), dict):
                first = int(entry["synapses"]["first"])
            interval_ms = self._interval(entry, path) if "interval_ms" in entry else None
            out[name] = WeightRecording(projection=name, interval_ms=interval_ms, first=first)
        for name, projection in projections.items():
            if projection.plastic and name not in out:
                out[name] = WeightRecording(projection=name, interval_ms=None)
        return tuple(out.values())

    def _state_recording(self, data: dict[str, Any], path: Path) -> StateRecording:
        population = self._population_ref(data, "population", path)
        variables = tuple(data["variables"]) if self._has(data, "variables", path) else ()
        if population in self._variables:
            model, valid = self._variables[population]
            for index, variable in enumerate(variables):
                if variable not in valid:
                    self._log.add(
                        (*path, "variables", index),
                        f"{model} population {population} has no variable {variable!r}; "
                        f"valid: {', '.join(valid) or 'none'}",
                    )
        interval_ms = self._interval(data, path)
        nodes = NodeSelection()
        if self._has(data, "node_ids", path):
            nodes = self._nodes(data["node_ids"], (*path, "node_ids"), population)
        return StateRecording(
            population=str(data.get("population")),
            variables=variables,
            nodes=nodes,
            interval_ms=interval_ms,
        )

    def _interval(self, data: dict[str, Any], path: Path) -> float:
        if self._dt_ms is None or not self._log.is_clean((*path, "interval_ms")):
            return math.nan
        interval_ms = float(data.get("interval_ms", self._dt_ms))
        check_grid_time(self._log, (*path, "interval_ms"), interval_ms, self._dt_ms)
        return interval_ms

    # -- resources ----------------------------------------------------------------------------

    def _check_memory(
        self,
        projections: Mapping[str, Projection],
        stimuli: Mapping[str, Stimulus],
        limit: MemoryLimit | None,
    ) -> None:
        if limit is None or self._dt_ms is None:
            return
        # Only what was built counts: a lower bound of the whole circuit's needs.
        delays = [
            stimulus.delay_ms
            for stimulus in stimuli.values()
            if isinstance(stimulus, SpikeStimulus)
        ]
        needed = estimate(
            self._populations,
            projections.values(),
            self._dt_ms,
            self._base_dir,
            extra_delays_ms=delays,
        )
        if needed.bytes_total > limit.bytes:
            self._log.add(
                (),
                f"the circuit needs an estimated {format_bytes(needed.bytes_total)} for "
                f"{needed.n_neurons:,} neurons and {needed.n_synapses:,} synapses, more than "
                f"the memory limit of {format_bytes(limit.bytes)} ({limit.source})",
            )
