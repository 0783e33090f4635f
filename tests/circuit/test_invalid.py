"""Invalid circuits are rejected with every problem at its exact field path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from brainsim.circuit import parse_circuit, validate
from brainsim.errors import CircuitError
from tests.circuit.conftest import NO_MEMORY_LIMIT, changed, removed

Document = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One invalid variant of circuits/tiny.yaml and the one problem it must produce."""

    id: str
    edit: Callable[[Document], Document]
    path: str
    fragment: str
    options: dict[str, Any] = field(default_factory=dict)


def _set(path: str, value: Any) -> Callable[[Document], Document]:
    return lambda document: changed(document, path, value)


def _del(path: str) -> Callable[[Document], Document]:
    return lambda document: removed(document, path)


def _chain(*edits: Callable[[Document], Document]) -> Callable[[Document], Document]:
    def apply(document: Document) -> Document:
        for edit in edits:
            document = edit(document)
        return document

    return apply


_SPIKES = {"type": "spike_source_array", "targets": ["E"], "spike_times_ms": [5.0, 1.0]}

_STDP = {"model": "stdp", "w_max": 1.0}

_SAMPLES = [[0.1 * (i % 10) for i in range(20)], [0.05 * i for i in range(20)]]
"""Two samples of 20 features, one per neuron of I."""
_RATE = {"type": "rate", "targets": ["I"], "data": _SAMPLES, "present_ms": 10.0,
         "max_rate_hz": 100.0, "weight": 1.0}  # fmt: skip
_LATENCY = {"type": "latency", "targets": ["I"], "data": _SAMPLES, "present_ms": 10.0,
            "tau_ms": 2.0, "weight": 1.0}  # fmt: skip
_POPULATION = {"type": "population", "targets": ["I"], "data": _SAMPLES, "features": [0, 1, 2, 3],
               "present_ms": 10.0, "n_neurons_per_feature": 5, "sigma": 0.1,
               "max_rate_hz": 100.0, "weight": 1.0}  # fmt: skip
_DELTA = {"type": "delta", "targets": ["I"], "data": _SAMPLES, "step_ms": 1.0,
          "off_spikes": True, "targets_off": [{"population": "E", "node_ids": {"first": 20}}],
          "weight": 1.0}  # fmt: skip
_TRAINS = {"type": "spike_trains", "targets": [{"population": "I", "node_ids": [0, 1]}],
           "data": [[1.0, 2.0], [3.0]], "weight": 1.0}  # fmt: skip

CASES = [
    Case("api-version", _set("apiVersion", "brainsim/v2"), "apiVersion", 'must be "brainsim/v1"'),
    Case("name-not-dns", _set("name", "Tiny Net"), "name", "DNS-label-like name"),
    Case("unknown-top-key", _set("extras", 1), "extras", "unknown key 'extras'; valid keys"),
    Case("no-simulation", _del("simulation"), "simulation", "required key is missing"),
    Case("dt-zero", _set("simulation.dt_ms", 0), "simulation.dt_ms", "must be > 0, got 0"),
    Case(
        "duration-off-grid",
        _set("simulation.duration_ms", 100.05),
        "simulation.duration_ms",
        "must be a multiple of dt_ms (0.1), got 100.05",
    ),
    Case("seed-too-big", _set("simulation.seed", 2**32), "simulation.seed", "<= 4294967295"),
    Case("size-zero", _set("populations.E.size", 0), "populations.E.size", "must be >= 1, got 0"),
    Case(
        "size-absurd",
        _set("populations.E.size", 2**40),
        "populations.E.size",
        "must be <= 2147483647",
    ),
    Case("size-fraction", _set("populations.E.size", 80.5), "populations.E.size", "an integer"),
    Case(
        "population-name",
        lambda d: changed(d, "populations.2E", d["populations"]["E"]),
        "populations.2E",
        "invalid name '2E'",
    ),
    Case(
        "unknown-model",
        _set("populations.E.model", "adex"),
        "populations.E.model",
        "must be one of: lif, izhikevich, parrot; got 'adex'",
    ),
    Case(
        "unknown-lif-param",
        _set("populations.E.params.tau_m", 20.0),
        "populations.E.params.tau_m",
        "valid keys: tau_m_ms, c_m_pF",
    ),
    Case(
        "izhikevich-param-on-lif",
        _set("populations.E.params.a", 0.02),
        "populations.E.params.a",
        "unknown key 'a'",
    ),
    Case(
        "negative-tau",
        _set("populations.E.params.tau_m_ms", -1.0),
        "populations.E.params.tau_m_ms",
        "must be > 0, got -1.0",
    ),
    Case(
        "tau-distribution-below-zero",
        _set("populations.E.params.tau_m_ms", {"normal": {"mean": 20.0, "std": 5.0}}),
        "populations.E.params.tau_m_ms.normal",
        "draws can fall below 0",
    ),
    Case(
        "exponential-param-on-delta",
        _set("populations.E.params.tau_syn_ex_ms", 3.0),
        "populations.E.params.tau_syn_ex_ms",
        "only used with synapse: exponential",
    ),
    Case(
        "reset-above-threshold",
        _set("populations.E.params.v_reset_mV", 25.0),
        "populations.E.params.v_reset_mV",
        "must be below v_th_mV (20.0), got 25.0",
    ),
    Case(
        "unknown-synapse",
        _set("populations.E.params.synapse", "conductance"),
        "populations.E.params.synapse",
        "must be one of: delta, exponential, alpha",
    ),
    Case(
        "number-as-text",
        _set("populations.E.params.v_th_mV", "twenty"),
        "populations.E.params.v_th_mV",
        "must be a number, a distribution or an expression, got 'twenty'",
    ),
    Case(
        "unknown-distribution",
        _set("populations.E.initial.v_mV", {"gauss": {"mean": 0, "std": 1}}),
        "populations.E.initial.v_mV.gauss",
        "unknown key 'gauss'; valid keys: uniform, normal, lognormal, expr",
    ),
    Case(
        "uniform-empty",
        _set("populations.E.initial.v_mV", {"uniform": {"low": 5.0, "high": 5.0}}),
        "populations.E.initial.v_mV.uniform.high",
        "must be > low (5.0), got 5.0",
    ),
    Case(
        "normal-without-std",
        _set("populations.E.initial.v_mV", {"normal": {"mean": 0.0}}),
        "populations.E.initial.v_mV.normal.std",
        "required key is missing",
    ),
    Case(
        "redraw-never-ends",
        _set("populations.E.initial.v_mV", {"normal": {"mean": 0.0, "std": 1.0, "low": 50.0}}),
        "populations.E.initial.v_mV.normal",
        "redrawing would practically never end",
    ),
    Case(
        "unknown-initial-state",
        _set("populations.E.initial.u", -13.0),
        "populations.E.initial.u",
        "unknown key 'u'; valid keys: v_mV, i_syn_ex_pA, i_syn_in_pA",
    ),
    Case(
        "synaptic-state-on-delta",
        _set("populations.E.initial.i_syn_ex_pA", 1.0),
        "populations.E.initial.i_syn_ex_pA",
        "only used with synapse: exponential",
    ),
    Case(
        "expression-unknown-variable",
        _set("populations.E.initial.v_mV", {"expr": "-65 + r"}),
        "populations.E.initial.v_mV.expr",
        "unknown name 'r'",
    ),
    Case(
        "expression-import",
        _set("populations.E.initial.v_mV", {"expr": "__import__('os')"}),
        "populations.E.initial.v_mV.expr",
        "cannot call '__import__'",
    ),
    Case(
        "random-variable-named-like-function",
        _set("populations.E.random_variables", {"exp": {"uniform": {"low": 0, "high": 1}}}),
        "populations.E.random_variables.exp",
        "name of a function",
    ),
    Case(
        "expression-on-synapses",
        _set("projections.EE.weight", {"expr": "0.1"}),
        "projections.EE.weight.expr",
        "unknown key 'expr'; valid keys: uniform, normal, lognormal",
    ),
    Case(
        "undefined-source",
        _set("projections.IE.source", "X"),
        "projections.IE.source",
        "undefined population 'X'; defined populations: E, I",
    ),
    Case(
        "delay-below-dt",
        _set("projections.IE.delay_ms", 0.05),
        "projections.IE.delay_ms",
        "must be >= dt_ms (0.1), got 0.05",
    ),
    Case(
        "uniform-delay-below-dt",
        _set("projections.IE.delay_ms", {"uniform": {"low": 0.0, "high": 2.0}}),
        "projections.IE.delay_ms.uniform.low",
        "must be >= dt_ms (0.1), got 0.0",
    ),
    Case(
        "normal-delay-unbounded",
        _set("projections.IE.delay_ms", {"normal": {"mean": 1.5, "std": 0.5}}),
        "projections.IE.delay_ms.normal",
        "draws can fall below dt_ms (0.1): set low >= 0.1",
    ),
    Case(
        "normal-delay-low-below-dt",
        _set("projections.IE.delay_ms", {"normal": {"mean": 1.5, "std": 0.5, "low": 0.0}}),
        "projections.IE.delay_ms.normal.low",
        "must be >= dt_ms (0.1), got 0.0",
    ),
    Case(
        "unknown-rule",
        _set("projections.EE.connectivity.rule", "fixed_indegre"),
        "projections.EE.connectivity.rule",
        "did you mean 'fixed_indegree'?",
    ),
    Case(
        "missing-indegree",
        _del("projections.EE.connectivity.indegree"),
        "projections.EE.connectivity.indegree",
        "required key is missing",
    ),
    Case(
        "parameter-of-other-rule",
        _set("projections.EE.connectivity.p", 0.1),
        "projections.EE.connectivity.p",
        "unknown key 'p'; valid keys: rule, indegree, allow_autapses, allow_multapses",
    ),
    Case(
        "indegree-above-source-size",
        _set(
            "projections.EI.connectivity",
            {"rule": "fixed_indegree", "indegree": 81, "allow_multapses": False},
        ),
        "projections.EI.connectivity.indegree",
        "must be <= 80 (the size of E) when allow_multapses is false; got 81",
    ),
    Case(
        "indegree-equal-size-without-autapses",
        _set(
            "projections.EE.connectivity",
            {
                "rule": "fixed_indegree",
                "indegree": 80,
                "allow_autapses": False,
                "allow_multapses": False,
            },
        ),
        "projections.EE.connectivity.indegree",
        "must be <= 79 (the size of E minus 1, as allow_autapses is false)",
    ),
    Case(
        "outdegree-above-target-size",
        _set(
            "projections.EI.connectivity",
            {"rule": "fixed_outdegree", "outdegree": 21, "allow_multapses": False},
        ),
        "projections.EI.connectivity.outdegree",
        "must be <= 20 (the size of I)",
    ),
    Case(
        "total-number-above-pairs",
        _set(
            "projections.II.connectivity",
            {"rule": "fixed_total_number", "n": 401, "allow_multapses": False},
        ),
        "projections.II.connectivity.n",
        "must be <= 400",
    ),
    Case(
        "one-to-one-sizes",
        _set("projections.EI.connectivity", {"rule": "one_to_one"}),
        "projections.EI.connectivity.rule",
        "one_to_one needs populations of equal size; E has 80, I has 20",
    ),
    Case(
        "probability-above-one",
        _set("projections.IE.connectivity.p", 1.5),
        "projections.IE.connectivity.p",
        "must be <= 1, got 1.5",
    ),
    Case(
        "from-file-without-directory",
        _set("projections.EE.connectivity", {"rule": "from_file", "path": "ee.npz"}),
        "projections.EE.connectivity.path",
        "needs a circuit file on disk",
    ),
    Case(
        "unknown-stimulus-type",
        _set("stimuli.background.type", "poison"),
        "stimuli.background.type",
        "must be one of: poisson, dc, noise, spike_source_array",
    ),
    Case(
        "stimulus-undefined-target",
        _set("stimuli.background.targets", ["E", "X"]),
        "stimuli.background.targets[1]",
        "undefined population 'X'",
    ),
    Case(
        "stimulus-node-out-of-range",
        _set("stimuli.background.targets", [{"population": "I", "node_ids": [3, 25, 30]}]),
        "stimuli.background.targets[0].node_ids",
        "2 node id(s) out of range for I (size 20): 25, 30",
    ),
    Case(
        "stimulus-negative-rate",
        _set("stimuli.background.rate_hz", -5.0),
        "stimuli.background.rate_hz",
        "must be >= 0, got -5.0",
    ),
    Case(
        "stimulus-stop-before-start",
        _chain(_set("stimuli.background.start_ms", 50.0), _set("stimuli.background.stop_ms", 10.0)),
        "stimuli.background.stop_ms",
        "must be > start_ms (50.0), got 10.0",
    ),
    Case(
        "stimulus-delay-below-dt",
        _set("stimuli.background.delay_ms", 0.01),
        "stimuli.background.delay_ms",
        "must be >= dt_ms (0.1), got 0.01",
    ),
    Case(
        "spike-times-descending",
        _set("stimuli.spikes", {**_SPIKES, "weight": 1.0}),
        "stimuli.spikes.spike_times_ms[1]",
        "spike times must be ascending",
    ),
    Case(
        "encoder-features-not-targets",
        _set("stimuli.pixels", {**_RATE, "targets": ["E"]}),
        "stimuli.pixels.data",
        "has 20 features (columns) but the targets hold 80 neurons",
    ),
    Case(
        "encoder-picks-too-few-features",
        _set("stimuli.pixels", {**_RATE, "features": [0, 1, 2]}),
        "stimuli.pixels.features",
        "picks 3 features but the targets hold 20 neurons",
    ),
    Case(
        "encoder-feature-out-of-range",
        _set("stimuli.pixels", {**_RATE, "features": [*range(19), 20]}),
        "stimuli.pixels.features[19]",
        "must be < 20, the number of features (columns) of the data; got 20",
    ),
    Case(
        "encoder-ragged-inline-data",
        _set("stimuli.pixels", {**_RATE, "data": [[0.5] * 20, [0.5] * 19]}),
        "stimuli.pixels.data",
        "a list of samples of equal length; found lengths 19, 20",
    ),
    Case(
        "encoder-negative-rate-data",
        _set("stimuli.pixels", {**_RATE, "data": [[0.5] * 19 + [-0.25]]}),
        "stimuli.pixels.data",
        "rate data must be >= 0 (intensities that gain and offset scale); found -0.25 at "
        "sample 0, feature 19",
    ),
    Case(
        "encoder-window-below-dt",
        _set("stimuli.pixels", {**_RATE, "present_ms": 0.05}),
        "stimuli.pixels.present_ms",
        "must be >= dt_ms (0.1), got 0.05",
    ),
    Case(
        "encoder-rest-off-grid",
        _set("stimuli.pixels", {**_RATE, "rest_ms": 0.25}),
        "stimuli.pixels.rest_ms",
        "must be a multiple of dt_ms (0.1), got 0.25",
    ),
    Case(
        "encoder-order-out-of-range",
        _set("stimuli.pixels", {**_RATE, "order": [0, 1, 2]}),
        "stimuli.pixels.order[2]",
        "must be < 2, the number of samples; got 2",
    ),
    Case(
        "encoder-bernoulli-rate-above-one-per-step",
        _set("stimuli.pixels", {**_RATE, "max_rate_hz": 20000.0}),
        "stimuli.pixels.max_rate_hz",
        "with mode bernoulli, max_rate_hz * dt_ms / 1000 is a spike probability per step and "
        "must be <= 1; got 2",
    ),
    Case(
        "encoder-unknown-mode",
        _set("stimuli.pixels", {**_RATE, "mode": "binomial"}),
        "stimuli.pixels.mode",
        "must be one of: bernoulli, poisson",
    ),
    Case(
        "encoder-overlapping-targets",
        _set("stimuli.pixels", {**_RATE, "targets": ["I", {"population": "I", "node_ids": [3]}]}),
        "stimuli.pixels.targets[1]",
        "selects neurons of I that an earlier target selects",
    ),
    Case(
        "encoder-file-without-directory",
        _set("stimuli.pixels", {**_RATE, "data": "digits.npy"}),
        "stimuli.pixels.data",
        "data needs a circuit file on disk",
    ),
    Case(
        "latency-data-above-one",
        _set("stimuli.onset", {**_LATENCY, "data": [[0.5] * 3 + [1.5] + [0.5] * 16]}),
        "stimuli.onset.data",
        "latency data must lie in [0, 1]; found 1.5 at sample 0, feature 3",
    ),
    Case(
        "latency-threshold-one",
        _set("stimuli.onset", {**_LATENCY, "threshold": 1.0}),
        "stimuli.onset.threshold",
        "must be < 1",
    ),
    Case(
        "latency-without-tau",
        _set("stimuli.onset", {k: v for k, v in _LATENCY.items() if k != "tau_ms"}),
        "stimuli.onset.tau_ms",
        "required key is missing",
    ),
    Case(
        "population-features-times-neurons-not-targets",
        _set("stimuli.petals", {**_POPULATION, "n_neurons_per_feature": 3}),
        "stimuli.petals.features",
        "picks 4 features but the targets hold 20 neurons; each feature is read by "
        "n_neurons_per_feature (3) target neurons, so the targets must hold 4 * 3 = 12",
    ),
    Case(
        "population-data-columns-times-neurons-not-targets",
        _set("stimuli.petals", {k: v for k, v in _POPULATION.items() if k != "features"}),
        "stimuli.petals.data",
        "has 20 features (columns) but the targets hold 20 neurons; each feature is read by "
        "n_neurons_per_feature (5) target neurons, so the targets must hold 20 * 5 = 100 "
        "(give features: [...] to pick 4)",
    ),
    Case(
        "population-one-neuron-per-feature",
        _set("stimuli.petals", {**_POPULATION, "n_neurons_per_feature": 1}),
        "stimuli.petals.n_neurons_per_feature",
        ">= 2",
    ),
    Case(
        "population-sigma-zero",
        _set("stimuli.petals", {**_POPULATION, "sigma": 0.0}),
        "stimuli.petals.sigma",
        "> 0",
    ),
    Case(
        "population-empty-interval",
        _set("stimuli.petals", {**_POPULATION, "low": 1.0, "high": 0.5}),
        "stimuli.petals.high",
        "must be > low (1.0), got 0.5",
    ),
    Case(
        "population-without-sigma",
        _set("stimuli.petals", {k: v for k, v in _POPULATION.items() if k != "sigma"}),
        "stimuli.petals.sigma",
        "required key is missing",
    ),
    Case(
        "delta-off-spikes-without-targets-off",
        _set("stimuli.sensor", {k: v for k, v in _DELTA.items() if k != "targets_off"}),
        "stimuli.sensor.targets_off",
        "required when off_spikes is true",
    ),
    Case(
        "delta-targets-off-without-off-spikes",
        _set("stimuli.sensor", {**_DELTA, "off_spikes": False}),
        "stimuli.sensor.targets_off",
        "only with off_spikes: true",
    ),
    Case(
        "delta-targets-off-not-one-per-feature",
        _set("stimuli.sensor", {**_DELTA, "targets_off": ["E"]}),
        "stimuli.sensor.targets_off",
        "hold 80 neurons but targets hold 20",
    ),
    Case(
        "delta-targets-off-overlapping",
        _set(
            "stimuli.sensor",
            {
                **_DELTA,
                "targets_off": [
                    {"population": "E", "node_ids": {"first": 10}},
                    {"population": "E", "node_ids": {"range": {"start": 9, "stop": 19}}},
                ],
            },
        ),
        "stimuli.sensor.targets_off[1]",
        "selects neurons of E that an earlier target selects",
    ),
    Case(
        "delta-targets-off-unknown-population",
        _set("stimuli.sensor", {**_DELTA, "targets_off": ["X"]}),
        "stimuli.sensor.targets_off[0]",
        "undefined population 'X'",
    ),
    Case(
        "delta-step-below-dt",
        _set("stimuli.sensor", {**_DELTA, "step_ms": 0.05}),
        "stimuli.sensor.step_ms",
        "must be >= dt_ms (0.1), got 0.05",
    ),
    Case(
        "delta-step-off-grid",
        _set("stimuli.sensor", {**_DELTA, "step_ms": 0.25}),
        "stimuli.sensor.step_ms",
        "must be a multiple of dt_ms (0.1), got 0.25",
    ),
    Case(
        "delta-threshold-zero",
        _set("stimuli.sensor", {**_DELTA, "threshold": 0}),
        "stimuli.sensor.threshold",
        "> 0",
    ),
    Case(
        "delta-features-not-targets",
        _set("stimuli.sensor", {**_DELTA, "features": [0, 1]}),
        "stimuli.sensor.features",
        "picks 2 features but the targets hold 20 neurons; each target neuron reads one feature",
    ),
    Case(
        "spike-trains-not-one-per-target",
        _set("stimuli.trains", {**_TRAINS, "data": [[1.0], [2.0], [3.0]]}),
        "stimuli.trains.data",
        "has 3 spike trains but the targets hold 2 neurons",
    ),
    Case(
        "spike-trains-negative-time",
        _set("stimuli.trains", {**_TRAINS, "data": [[1.0], [-2.0]]}),
        "stimuli.trains.data[1][0]",
        "must be >= 0",
    ),
    Case(
        "spike-source-without-weight",
        _set("stimuli.spikes", {**_SPIKES, "spike_times_ms": [1.0]}),
        "stimuli.spikes.weight",
        "required key is missing",
    ),
    Case(
        "noise-without-std",
        _set("stimuli.noise", {"type": "noise", "targets": ["E"]}),
        "stimuli.noise.std_pA",
        "required key is missing",
    ),
    Case(
        "record-undefined-population",
        _set("recordings.spikes", ["E", "X"]),
        "recordings.spikes[1]",
        "undefined population 'X'",
    ),
    Case(
        "record-missing-variable",
        _set("recordings.state.0.variables", ["u"]),
        "recordings.state[0].variables[0]",
        "lif population E has no variable 'u'; valid: v",
    ),
    Case(
        "record-interval-off-grid",
        _set("recordings.state.0.interval_ms", 0.25),
        "recordings.state[0].interval_ms",
        "must be a multiple of dt_ms (0.1), got 0.25",
    ),
    Case(
        "record-first-too-many",
        _set("recordings.state.0.node_ids", {"first": 81}),
        "recordings.state[0].node_ids.first",
        "must be <= the size for E (size 80), got 81",
    ),
    Case(
        "record-range-beyond-size",
        _set("recordings.state.0.node_ids", {"range": {"start": 10, "stop": 90}}),
        "recordings.state[0].node_ids.range.stop",
        "must be <= the size for E (size 80), got 90",
    ),
    Case(
        "variable-recorded-twice",
        _set(
            "recordings.state",
            [
                {"population": "E", "variables": ["v"], "node_ids": [0], "interval_ms": 1.0},
                {"population": "E", "variables": ["v"], "node_ids": [1], "interval_ms": 2.0},
            ],
        ),
        "recordings.state[1].variables[0]",
        "'v' of E is already recorded by recordings.state.0",
    ),
    Case(
        "record-repeated-ids",
        _set("recordings.state.0.node_ids", [1, 2, 2]),
        "recordings.state[0].node_ids",
        "must not repeat items (2 appears more than once)",
    ),
    Case(
        "undefined-parameter",
        _set("populations.E.size", "${n_exc}"),
        "populations.E.size",
        "undefined parameter 'n_exc'; no parameters are defined",
    ),
    Case(
        "parameter-cycle",
        _set("parameters", {"a": "${b + 1}", "b": "${2 * a}"}),
        "parameters.a",
        "circular reference: a -> b -> a",
    ),
    Case(
        "reference-inside-text",
        _set("name", "tiny-${scale}"),
        "name",
        "a ${...} reference must be the whole value",
    ),
    Case(
        "parameter-overflow",
        _set("parameters", {"big": "${10 ** 400}"}),
        "parameters.big",
        "overflow",
    ),
    Case(
        "not-finite",
        _set("projections.EE.weight", float("nan")),
        "projections.EE.weight",
        "must be a finite number, got nan",
    ),
    Case(
        "absurd-delay",
        _set("projections.EE.delay_ms", {"normal": {"mean": 1e307, "std": 1e307, "low": 1.0}}),
        "",
        "the circuit needs an estimated",
        {"memory_limit_bytes": 2**40},
    ),
    Case(
        "out-of-memory",
        _set("projections.EE.connectivity", {"rule": "fixed_indegree", "indegree": 2**31 - 1}),
        "",
        "the circuit needs an estimated",
        {"memory_limit_bytes": 2**30},
    ),
    Case(
        "synapse-unknown-model",
        _set("projections.EE.synapse", {"model": "tsodyks"}),
        "projections.EE.synapse.model",
        "must be one of: static, stdp, stdp_power_law; got 'tsodyks'",
    ),
    Case(
        "stdp-negative-tau",
        _set("projections.EE.synapse", {**_STDP, "tau_plus_ms": -20.0}),
        "projections.EE.synapse.tau_plus_ms",
        "must be > 0",
    ),
    Case(
        "stdp-unknown-parameter",
        _set("projections.EE.synapse", {**_STDP, "mu": 0.4}),
        "projections.EE.synapse.mu",
        "unknown key 'mu'",
    ),
    Case(
        "stdp-w-max-wrong-sign",
        _set("projections.EE.synapse", {**_STDP, "w_max": -1.0}),
        "projections.EE.weight",
        "must lie in [-1, 0] (between 0 and synapse.w_max = -1, same sign), got 0.1",
    ),
    Case(
        "stdp-w-max-zero",
        _set("projections.EE.synapse", {**_STDP, "w_max": 0.0}),
        "projections.EE.synapse.w_max",
        "must not be 0",
    ),
    Case(
        "stdp-weight-distribution-crossing-zero",
        _chain(
            _set("projections.EE.synapse", _STDP),
            _set("projections.EE.weight", {"uniform": {"low": -0.1, "high": 0.2}}),
        ),
        "projections.EE.weight",
        "got draws in [-0.1, 0.2]",
    ),
    Case(
        "stdp-unbounded-weight-distribution",
        _chain(
            _set("projections.EE.synapse", _STDP),
            _set("projections.EE.weight", {"normal": {"mean": 0.5, "std": 0.1}}),
        ),
        "projections.EE.weight",
        "bound a distribution with low/high",
    ),
    Case(
        "power-law-negative-weight",
        _chain(
            _set("projections.IE.synapse", {"model": "stdp_power_law"}),
        ),
        "projections.IE.weight",
        "must be >= 0 for stdp_power_law",
    ),
    Case(
        "power-law-negative-mu",
        _set("projections.EE.synapse", {"model": "stdp_power_law", "mu": -1}),
        "projections.EE.synapse.mu",
        "must be >= 0",
    ),
    Case(
        "weights-of-static-projection",
        _set("recordings.weights", [{"projection": "EE"}]),
        "recordings.weights[0].projection",
        "projection EE is static",
    ),
    Case(
        "weights-of-unknown-projection",
        _chain(
            _set("projections.EE.synapse", _STDP),
            _set("recordings.weights", [{"projection": "XX"}]),
        ),
        "recordings.weights[0].projection",
        "undefined projection 'XX'",
    ),
    Case(
        "weights-interval-off-grid",
        _chain(
            _set("projections.EE.synapse", _STDP),
            _set("recordings.weights", [{"projection": "EE", "interval_ms": 1.05}]),
        ),
        "recordings.weights[0].interval_ms",
        "must be a multiple of dt_ms",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_invalid_document_reports_exactly_its_problem(case: Case, tiny: dict[str, Any]) -> None:
    options = {"memory_limit_bytes": NO_MEMORY_LIMIT, **case.options}
    problems = validate(case.edit(tiny), **options)
    assert [problem.path for problem in problems] == [case.path], problems
    assert case.fragment in problems[0].message


def test_there_are_at_least_thirty_distinct_invalid_documents() -> None:
    assert len({case.id for case in CASES}) == len(CASES) >= 30


def test_every_problem_of_a_document_is_reported(tiny: dict[str, Any]) -> None:
    combined = [
        "api-version",
        "name-not-dns",
        "unknown-top-key",
        "seed-too-big",
        "unknown-lif-param",
        "undefined-parameter",
        "delay-below-dt",
        "probability-above-one",
        "stimulus-negative-rate",
        "spike-times-descending",
        "record-undefined-population",
        "record-interval-off-grid",
    ]
    chosen = [case for case in CASES if case.id in combined]
    document = _chain(*(case.edit for case in chosen))(tiny)
    problems = validate(document, memory_limit_bytes=NO_MEMORY_LIMIT)
    assert sorted(problem.path for problem in problems) == sorted(case.path for case in chosen)


def test_parse_circuit_raises_with_every_problem(tiny: dict[str, Any]) -> None:
    document = changed(changed(tiny, "name", "Bad Name"), "projections.IE.source", "X")
    with pytest.raises(CircuitError) as raised:
        parse_circuit(document, memory_limit_bytes=NO_MEMORY_LIMIT)
    assert len(raised.value.problems) == 2
    assert raised.value.problems[0].startswith("name: must be a DNS-label-like name")
    assert raised.value.problems[1].startswith("projections.IE.source: undefined population 'X'")


def test_problems_come_in_document_order(tiny: dict[str, Any]) -> None:
    document = changed(tiny, "recordings.spikes", ["X"])
    document = changed(document, "simulation.seed", -1)
    document = changed(document, "populations.I.size", 0)
    paths = [problem.path for problem in validate(document, memory_limit_bytes=NO_MEMORY_LIMIT)]
    assert paths == ["simulation.seed", "populations.I.size", "recordings.spikes[0]"]


def test_unknown_names_list_the_valid_choices(tiny: dict[str, Any]) -> None:
    problems = validate(changed(tiny, "stimuli.background.type", "dc2"))
    assert problems[0].message.startswith(
        "must be one of: poisson, dc, noise, spike_source_array, rate, latency, population, "
        "delta, spike_trains; got 'dc2'"
    )
    problems = validate(changed(tiny, "populations.E.params.v_thresh_mV", 1.0))
    assert "valid keys: tau_m_ms, c_m_pF, v_th_mV" in problems[0].message
    assert "did you mean 'v_th_mV'?" in problems[0].message


def test_izhikevich_parameters_are_checked_per_model(tiny: dict[str, Any]) -> None:
    document = changed(tiny, "populations.I.model", "izhikevich")
    document = changed(document, "populations.I.params", {"a": 0.1, "tau_m_ms": 5.0})
    document = changed(document, "populations.I.initial", {"u": -14.0})
    problems = validate(document, memory_limit_bytes=NO_MEMORY_LIMIT)
    assert [problem.path for problem in problems] == ["populations.I.params.tau_m_ms"]
    assert "valid keys: a, b, c_mV, d, v_peak_mV, i_e_pA, integration, synapse" in str(problems[0])
