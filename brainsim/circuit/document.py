"""Write a circuit's records back as its normalized document (what recordings store).

The normalized document has every default filled in, parameters substituted (the resolved
``parameters`` block is kept for the record), canonical forms (``{first: n}`` becomes a range,
``spikes: all`` the list of populations) and only JSON types. Parsing it again gives an equal
:class:`~brainsim.circuit.spec.Circuit`. A neuron parameter that the population's choices do not
use (``tau_syn_ex_ms`` of a LIF with delta synapses) is left out: it would be rejected.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from brainsim.circuit.data import data_document
from brainsim.circuit.spec import (
    API_VERSION,
    Circuit,
    Connectivity,
    DCStimulus,
    DeltaStimulus,
    NodeSelection,
    NoiseStimulus,
    PoissonStimulus,
    Population,
    PopulationStimulus,
    Projection,
    RateStimulus,
    SampleSchedule,
    SampleStimulus,
    SpikeSourceArray,
    SpikeTrains,
    Stimulus,
    Target,
)
from brainsim.circuit.values import value_data

__all__ = ["circuit_document"]


def circuit_document(circuit: Circuit) -> dict[str, Any]:
    """The normalized, JSON-compatible document of ``circuit``."""
    document: dict[str, Any] = {"apiVersion": API_VERSION, "name": circuit.name}
    if circuit.description:
        document["description"] = circuit.description
    document["simulation"] = {
        "dt_ms": circuit.simulation.dt_ms,
        "duration_ms": circuit.simulation.duration_ms,
        "seed": circuit.simulation.seed,
    }
    if circuit.parameters:
        document["parameters"] = dict(circuit.parameters)
    document["populations"] = {
        name: _population_data(population) for name, population in circuit.populations.items()
    }
    document["projections"] = {
        name: _projection_data(projection) for name, projection in circuit.projections.items()
    }
    document["stimuli"] = {
        name: _stimulus_data(stimulus) for name, stimulus in circuit.stimuli.items()
    }
    document["recordings"] = {
        "spikes": list(circuit.recordings.spikes),
        "state": [
            {
                "population": state.population,
                "variables": list(state.variables),
                **_nodes_entry(state.nodes),
                "interval_ms": state.interval_ms,
            }
            for state in circuit.recordings.state
        ],
    }
    if circuit.recordings.weights:
        document["recordings"]["weights"] = [
            {
                "projection": weights.projection,
                **({} if weights.interval_ms is None else {"interval_ms": weights.interval_ms}),
                "synapses": "all" if weights.first is None else {"first": weights.first},
            }
            for weights in circuit.recordings.weights
        ]
    return document


def _population_data(population: Population) -> dict[str, Any]:
    params: dict[str, Any] = {}
    numeric = {parameter.name for parameter in population.variant.parameters}
    choices = {choice for choice, _ in population.variant.choices}
    for field in fields(population.params):
        value = getattr(population.params, field.name)
        if field.name in choices:
            params[field.name] = value
        elif field.name in numeric:
            params[field.name] = value_data(value)
    data: dict[str, Any] = {"size": population.size, "model": population.model, "params": params}
    if population.initial:
        data["initial"] = {key: value_data(value) for key, value in population.initial.items()}
    if population.random_variables:
        data["random_variables"] = {
            key: value_data(value) for key, value in population.random_variables.items()
        }
    return data


def _connectivity_data(connectivity: Connectivity) -> dict[str, Any]:
    data: dict[str, Any] = {"rule": connectivity.rule}
    for field in fields(connectivity):
        if field.name != "rule":
            data[field.name] = getattr(connectivity, field.name)
    return data


def _projection_data(projection: Projection) -> dict[str, Any]:
    data = {
        "source": projection.source,
        "target": projection.target,
        "connectivity": _connectivity_data(projection.connectivity),
        "weight": value_data(projection.weight),
        "delay_ms": value_data(projection.delay_ms),
    }
    if projection.plastic:  # static projections keep their documents as before
        data["synapse"] = {"model": projection.synapse.model, **projection.synapse.params}
    return data


def _stimulus_data(stimulus: Stimulus) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": stimulus.type,
        "targets": [_target_data(target) for target in stimulus.targets],
    }
    if isinstance(stimulus, PoissonStimulus):
        data |= {
            "rate_hz": value_data(stimulus.rate_hz),
            "weight": value_data(stimulus.weight),
            "delay_ms": stimulus.delay_ms,
        }
    elif isinstance(stimulus, DCStimulus):
        data |= {
            "amplitude_pA": value_data(stimulus.amplitude_pA),
            "weight": value_data(stimulus.weight),
        }
    elif isinstance(stimulus, NoiseStimulus):
        data |= {
            "mean_pA": value_data(stimulus.mean_pA),
            "std_pA": value_data(stimulus.std_pA),
            "weight": value_data(stimulus.weight),
        }
    elif isinstance(stimulus, SpikeSourceArray):
        return data | {
            "spike_times_ms": list(stimulus.spike_times_ms),
            "weight": value_data(stimulus.weight),
            "delay_ms": stimulus.delay_ms,
        }
    elif isinstance(stimulus, SpikeTrains):
        return data | {
            "data": data_document(stimulus.data),
            "weight": value_data(stimulus.weight),
            "delay_ms": stimulus.delay_ms,
        }
    elif isinstance(stimulus, DeltaStimulus):
        return data | _delta_data(stimulus)
    else:
        return data | _encoder_data(stimulus)
    data["start_ms"] = stimulus.start_ms
    if stimulus.stop_ms is not None:
        data["stop_ms"] = stimulus.stop_ms
    return data


def _encoder_data(stimulus: SampleStimulus) -> dict[str, Any]:
    data: dict[str, Any] = {"data": data_document(stimulus.data)}
    if stimulus.features is not None:
        data["features"] = list(stimulus.features)
    data |= _schedule_data(stimulus.schedule)
    if isinstance(stimulus, RateStimulus):
        data |= {
            "max_rate_hz": stimulus.max_rate_hz,
            "gain": stimulus.gain,
            "offset": stimulus.offset,
            "mode": stimulus.mode,
        }
    elif isinstance(stimulus, PopulationStimulus):
        data |= {
            "n_neurons_per_feature": stimulus.n_neurons_per_feature,
            "low": stimulus.low,
            "high": stimulus.high,
            "sigma": stimulus.sigma,
            "max_rate_hz": stimulus.max_rate_hz,
        }
    else:
        data |= {
            "tau_ms": stimulus.tau_ms,
            "threshold": stimulus.threshold,
            "linear": stimulus.linear,
            "normalize": stimulus.normalize,
            "clip": stimulus.clip,
        }
    return data | {"weight": value_data(stimulus.weight), "delay_ms": stimulus.delay_ms}


def _delta_data(stimulus: DeltaStimulus) -> dict[str, Any]:
    data: dict[str, Any] = {"data": data_document(stimulus.data)}
    if stimulus.features is not None:
        data["features"] = list(stimulus.features)
    data |= {
        "start_ms": stimulus.start_ms,
        "step_ms": stimulus.step_ms,
        "threshold": stimulus.threshold,
        "padding": stimulus.padding,
        "off_spikes": stimulus.off_spikes,
    }
    if stimulus.off_spikes:
        data["targets_off"] = [_target_data(target) for target in stimulus.targets_off]
    return data | {"weight": value_data(stimulus.weight), "delay_ms": stimulus.delay_ms}


def _schedule_data(schedule: SampleSchedule) -> dict[str, Any]:
    data: dict[str, Any] = {
        "start_ms": schedule.start_ms,
        "present_ms": schedule.present_ms,
        "rest_ms": schedule.rest_ms,
    }
    if schedule.order is not None:
        data["order"] = list(schedule.order)
    return data


def _target_data(target: Target) -> str | dict[str, Any]:
    if target.nodes == NodeSelection():
        return target.population
    return {"population": target.population, "node_ids": _nodes_data(target.nodes)}


def _nodes_entry(nodes: NodeSelection) -> dict[str, Any]:
    return {} if nodes == NodeSelection() else {"node_ids": _nodes_data(nodes)}


def _nodes_data(nodes: NodeSelection) -> list[int] | dict[str, Any]:
    """The document form of a node selection: the id list, or ``{range: {...}}``."""
    if nodes.ids is not None:
        return list(nodes.ids)
    bounds: dict[str, Any] = {"start": nodes.start}
    if nodes.stop is not None:
        bounds["stop"] = nodes.stop
    bounds["step"] = nodes.step
    return {"range": bounds}
