"""Write a standalone NEST 3 script that builds and simulates a brainsim circuit.

The script takes every number from the circuit records (:mod:`brainsim.circuit.spec`):

- ``lif`` + ``delta`` -> ``iaf_psc_delta``, ``lif`` + ``exponential`` -> ``iaf_psc_exp``,
  ``lif`` + ``alpha`` -> ``iaf_psc_alpha`` (the NEST model each option declares),
  ``izhikevich`` -> ``izhikevich`` (``consistent_integration`` False for the published 2003
  scheme, True for Euler). NEST's Izhikevich synapses add the weight to ``v``; a brainsim
  ``current_pulse`` of ``w`` held for one step adds ``w * dt_ms`` to ``v`` to first order, so
  that is the weight used (identical for the 2003 network, where ``dt`` is 1 ms).
  ``parrot`` -> ``parrot_neuron``. NEST's parrot repeats every spike whatever its weight,
  brainsim's fires when the weights arriving in a step sum to more than 0, so every weight onto
  a parrot (projection or stimulus) must be positive in every draw, or the circuit is refused.
  The one difference left: ``n`` spikes arriving at a parrot in one step are one spike in
  brainsim and a spike of multiplicity ``n`` in NEST (that its targets receive ``n`` times), which
  matters where a step often holds several arrivals (a Poisson input of ``r`` Hz: about
  ``(r dt)^2 / 2`` of its steps).
- Projections -> ``nest.Connect`` with the same rule name and flags; per-synapse
  distributions -> ``nest.random.*``, bounds with ``redraw`` -> ``nest.math.redraw``, with
  ``clip`` -> ``nest.math.min/max``. NEST rounds delays to the grid as brainsim does.
- Plastic projections (``synapse: {model: stdp | stdp_power_law}``) -> a copy of the NEST
  model the declaration names (:data:`brainsim.models.SYNAPSE_MODELS`: ``stdp_synapse``,
  ``stdp_pl_synapse_hom``) per projection, ``nest.CopyModel(model, "<projection>_<model>",
  {parameters with their NEST names})``, connected with it and the projection's weight and
  delay: a ``_hom`` model's parameters can only be set on a model, and one model per projection
  lets the script find that projection's connections again. ``tau_minus_ms`` is a parameter of
  the *target neuron* in NEST (``tau_minus``): it is set on the target population, and two
  plastic projections that give one population different values are refused. After the run
  the script reports each plastic projection's final weights (``weights``: ``count``, the
  model's ``num_connections``, and ``mean`` and ``sd`` of the weights that
  ``nest.GetConnections(...).get("weight")`` reads), after ``sim_s`` is taken (``weights_s``
  is how long that took). NEST's ``get`` builds a dictionary of every parameter of each
  connection (about 30 us and several kilobytes each: 5 minutes for the 10^7 plastic synapses
  of ``brunel_stdp``, 40 for ``hpc_benchmark``'s 8.1 x 10^7), so a large projection is
  sampled: the connections from every ``k``-th source to every ``k``-th target, ``k`` the
  largest integer with about :data:`WEIGHT_SAMPLE` or more connections (``sampled``), read
  :data:`WEIGHT_READ_BLOCK` at a time. A grid of sources and targets, rather than all the
  synapses of a few sources or of a few targets, keeps the weights of many pre- and many
  postsynaptic neurons in the sample, which can then estimate the spread of all. Onto its own
  population the targets' grid is shifted by ``k // 2``: a grid of the same neurons on both
  sides would hold every autapse of its neurons, ``k`` times their share of the projection
  (STDP drives autapses apart: in ``brunel_stdp`` they end at 0.123 mV against 0.100, and such
  a sample's standard deviation came out 2.2 % high; without them it is 0.1-0.6 % low).
- ``poisson`` -> one ``poisson_generator`` per stimulus (an independent train per target),
  ``dc`` -> ``dc_generator``, ``noise`` -> ``noise_generator`` with ``dt`` = the time step
  (a fresh draw per neuron and step), ``spike_source_array`` -> ``spike_generator``,
  ``spike_trains`` -> a ``spike_generator`` per target neuron (NEST refuses spikes at 0 ms);
  the other data encoders (``rate``, ``latency``, ``population``, ``delta``) draw their
  spikes in brainsim and are refused (give their spikes as ``spike_trains`` to compare).
- A ``spike_recorder`` per recorded population; ``local_num_threads`` from ``--threads``.
- NEST stores at most 134,217,726 connections per virtual process and synapse model, which
  the full microcircuit on 2 threads exceeds; when the circuit's synapses could exceed it,
  every projection gets its own copy of ``static_synapse`` (decided at run time from the
  thread count).

Timing inside the script: ``build_s`` from the first ``Create`` through the last ``Connect``
(devices included) and a first ``nest.Simulate`` of one min-delay slice (``presim_ms``: the
kernel's ``min_delay`` after connecting, device connections included), ``sim_s`` = the
``nest.Simulate`` of the rest of the duration. NEST finishes construction in its first
``Simulate`` after connecting: it calibrates the nodes, sizes their buffers and the spike
buffers, and builds its connection infrastructure (sorts the connections, builds the
presynaptic target tables from them); NEST's own ``hpc_benchmark`` times that apart the same way
(``nest.Simulate(presim_time)``). One slice is the least that keeps both calls on slice
boundaries: NEST warns that repeated ``Simulate`` calls that are not multiples of the
minimal delay may give inconsistent results. The recorders count over both calls, so spike
counts (``n_spikes``) cover the whole duration; ``n_spikes_presim`` are those of the first
slice, so rates and synaptic events per second can be taken over the span each covers. The
script checks that NEST's clock ends at the duration. ``n_synapses`` counts the network's
connections only (read before devices are connected).
"""

from __future__ import annotations

import math

from bench.cases import expected_synapses
from bench.translate_common import (
    RUNTIME_SOURCE,
    UnsupportedCircuitError,
    header_lines,
    neuron_values,
    python_literal,
    selection_slice,
)
from brainsim.circuit.spec import (
    AllToAll,
    Circuit,
    Connectivity,
    DCStimulus,
    Distribution,
    FixedIndegree,
    FixedOutdegree,
    FixedTotalNumber,
    IzhikevichParams,
    LifParams,
    LogNormal,
    NeuronParams,
    NoiseStimulus,
    Normal,
    OneToOne,
    PairwiseBernoulli,
    ParrotParams,
    PoissonStimulus,
    Population,
    Projection,
    SpikeSourceArray,
    SpikeTrains,
    Stimulus,
    Target,
    Uniform,
    Value,
)
from brainsim.circuit.values import support
from brainsim.models import SYNAPSE_MODELS

__all__ = [
    "NEST_CONNECTION_LIMIT",
    "WEIGHT_READ_BLOCK",
    "WEIGHT_SAMPLE",
    "nest_script",
    "plastic_model_name",
    "weight_grid",
    "weight_stride",
]

SIMULATOR = "NEST"

NEST_CONNECTION_LIMIT = 134_217_726
"""Connections NEST 3.10 stores per virtual process and synapse model (its error message)."""

WEIGHT_SAMPLE = 200_000
"""Least number of connections whose final weights the script reads per plastic projection
(all of them in a smaller projection): about 3-6 s of NEST's ``get``. On brainsim's complete
store of ``brunel_stdp``, such grids gave the mean within 0.01 % and the standard deviation
within 0.6 % (docs/benchmarks.md)."""

WEIGHT_READ_BLOCK = 10_000
"""Connections per ``get("weight")``: NEST builds a dictionary for each connection it reads,
so reading a block at a time keeps that to a few MiB of the script's peak memory."""

TAU_MINUS = "tau_minus_ms"
"""The plastic synapses' parameter that NEST keeps on the target neuron (``tau_minus``)."""

_SYNAPSE_MODEL = '''
def synapse_model(name: str, split: bool) -> str:
    """static_synapse, or (split) a copy of it named ``name`` for one projection alone."""
    if not split:
        return "static_synapse"
    nest.CopyModel("static_synapse", name)
    return name


def plastic_weights(sources, targets, model: str, stride: int, offset: int) -> dict:
    """``count`` of ``model``'s connections, ``mean`` and ``sd`` of the final weights of those
    from every ``stride``-th source to every ``stride``-th target from ``offset`` on
    (``sampled`` of them; all with stride 1), read WEIGHT_READ_BLOCK connections at a time:
    NEST builds a dictionary of every parameter of each connection it reads."""
    sample = nest.GetConnections(
        source=sources[::stride], target=targets[offset::stride], synapse_model=model
    )

    def blocks():
        for first in range(0, len(sample), WEIGHT_READ_BLOCK):
            block = sample[first : first + WEIGHT_READ_BLOCK]
            yield np.atleast_1d(np.asarray(block.get("weight"), dtype=float))

    found = weight_moments(blocks())
    found["sampled"] = found["count"]
    found["count"] = int(nest.GetDefaults(model, "num_connections"))
    return found
'''

_LIF_PARAMS = {
    "tau_m_ms": "tau_m",
    "c_m_pF": "C_m",
    "v_th_mV": "V_th",
    "v_reset_mV": "V_reset",
    "e_l_mV": "E_L",
    "t_ref_ms": "t_ref",
    "i_e_pA": "I_e",
    "v_mV": "V_m",
}
_EXP_PARAMS = {
    "tau_syn_ex_ms": "tau_syn_ex",
    "tau_syn_in_ms": "tau_syn_in",
}
_IZHIKEVICH_PARAMS = {
    "a": "a",
    "b": "b",
    "c_mV": "c",
    "d": "d",
    "v_peak_mV": "V_th",
    "i_e_pA": "I_e",
    "v_mV": "V_m",
    "u": "U_m",
}


def nest_script(circuit: Circuit, source: str) -> str:
    """The text of a NEST script for ``circuit`` (``source`` names the circuit file in the header).

    Raises :class:`~bench.translate_common.UnsupportedCircuitError` for connection files and
    state recordings (the benchmark records spikes only).
    """
    if circuit.recordings.state:
        raise UnsupportedCircuitError(
            SIMULATOR, "recordings.state", "state recordings are not translated (spikes only)"
        )
    _refuse_weight_snapshots(circuit)
    sim = circuit.simulation
    body: list[str] = [
        "nest.verbosity = nest.VerbosityLevel.ERROR",
        "nest.ResetKernel()",
        "nest.SetKernelStatus({",
        f'    "resolution": {python_literal(sim.dt_ms)},',
        '    "local_num_threads": args.threads,',
        f'    "rng_seed": {sim.seed % (2**31 - 2) + 1},',
        "})",
        f"rng = np.random.default_rng({sim.seed})",
        "start = time.perf_counter()",
        "pops = {}",
    ]
    for population in circuit.populations.values():
        body += _population_lines(population)
    body += _tau_minus_lines(circuit)
    total = sum(expected_synapses(p, circuit.populations) for p in circuit.projections.values())
    body += [
        "# NEST stores at most NEST_CONNECTION_LIMIT connections per virtual process and synapse",
        "# model; a network that may exceed it gets a copy of static_synapse per projection.",
        f"split_models = {total} > 0.9 * NEST_CONNECTION_LIMIT * args.threads",
    ]
    for projection in circuit.projections.values():
        path = f"projections.{projection.name}"
        target_model = circuit.populations[projection.target].params
        if projection.plastic:
            _require_unscaled(target_model, sim.dt_ms, path)
        _require_positive_onto_parrot(target_model, projection.weight, f"{path}.weight")
        weight = _synapse_value(
            projection.weight, f"{path}.weight", _weight_scale(target_model, sim.dt_ms)
        )
        delay = _synapse_value(projection.delay_ms, f"{path}.delay_ms", 1.0)
        model = f'synapse_model("static_{projection.name}", split_models)'
        if projection.plastic:
            body.append(_copy_plastic_model(projection))
            model = repr(plastic_model_name(projection))
        body.append(
            f"nest.Connect(pops[{projection.source!r}], pops[{projection.target!r}], "
            f"{_conn_spec(projection.connectivity, path)}, "
            f'{{"synapse_model": {model}, "weight": {weight}, "delay": {delay}}})'
        )
    body.append('n_synapses = nest.GetKernelStatus("num_connections")')
    for stimulus in circuit.stimuli.values():
        body += _stimulus_lines(stimulus, circuit)
    body.append("recorders = {}")
    for name in circuit.recordings.spikes:
        body.append(f'recorders[{name!r}] = nest.Create("spike_recorder")')
        body.append(f"nest.Connect(pops[{name!r}], recorders[{name!r}])")
    duration = python_literal(sim.duration_ms)
    body += [
        "# The first Simulate after connecting finishes construction (node calibration, buffers,",
        "# connection infrastructure): one min-delay slice of it is counted in build_s.",
        f'presim_ms = min(nest.GetKernelStatus("min_delay"), {duration})',
        "nest.Simulate(presim_ms)",
        "build_s = time.perf_counter() - start",
        'n_spikes_presim = {name: int(rec.get("n_events")) for name, rec in recorders.items()}',
        "start = time.perf_counter()",
        f"nest.Simulate({duration} - presim_ms)",
        "sim_s = time.perf_counter() - start",
        'simulated_ms = nest.GetKernelStatus("biological_time")',
        f"if abs(simulated_ms - {duration}) > {python_literal(sim.dt_ms / 2)}:",
        f'    raise SystemExit(f"NEST simulated {{simulated_ms}} ms, not {duration}")',
        *_weight_lines(circuit),
        "emit_result({",
        '    "simulator": "nest",',
        '    "version": nest.__version__,',
        '    "threads": args.threads,',
        '    "build_s": build_s,',
        '    "sim_s": sim_s,',
        '    "presim_ms": presim_ms,',
        '    "n_synapses": int(n_synapses),',
        '    "n_spikes": {name: int(rec.get("n_events")) for name, rec in recorders.items()},',
        '    "n_spikes_presim": n_spikes_presim,',
        '    "weights": weights,',
        '    "weights_s": weights_s,',
        "})",
    ]
    lines = header_lines(circuit, "NEST 3", source)
    lines += [RUNTIME_SOURCE, "", "import argparse", "import time", "", "import nest", ""]
    lines += [
        f"NEST_CONNECTION_LIMIT = {NEST_CONNECTION_LIMIT}",
        f"WEIGHT_READ_BLOCK = {WEIGHT_READ_BLOCK}",
        "",
        _SYNAPSE_MODEL,
    ]
    lines += [
        "",
        "def main() -> None:",
        "    parser = argparse.ArgumentParser()",
        '    parser.add_argument("--threads", type=int, default=1)',
        "    args = parser.parse_args()",
    ]
    lines += [f"    {line}" for line in body]
    lines += ["", "", 'if __name__ == "__main__":', "    main()", ""]
    return "\n".join(lines)


def _population_lines(population: Population) -> list[str]:
    params = population.params
    model = population.variant.nest_model
    names: dict[str, str] = {}  # a parrot_neuron has no parameters
    if isinstance(params, LifParams):
        names = dict(_LIF_PARAMS, **(_EXP_PARAMS if params.synapse != "delta" else {}))
    elif isinstance(params, IzhikevichParams):
        names = _IZHIKEVICH_PARAMS
    values = neuron_values(population, "vals", "rv")
    for name in ("i_syn_ex_pA", "i_syn_in_pA"):
        if values.code.get(name, "0.0") != "0.0":
            raise UnsupportedCircuitError(
                SIMULATOR,
                f"populations.{population.name}.initial.{name}",
                f"NEST's {model} cannot start with a synaptic current",
            )
    constants = {
        names[name]: code
        for name, code in values.code.items()
        if name in names and values.is_constant(name)
    }
    if isinstance(params, IzhikevichParams):
        constants["consistent_integration"] = str(params.integration == "euler")
    lines = [f"# population {population.name}: {population.size} x {model}"]
    if values.lines:
        lines += ["rv, vals = {}, {}", *values.lines]
    listed = ", ".join(f'"{key}": {code}' for key, code in constants.items())
    lines.append(
        f'pops[{population.name!r}] = nest.Create("{model}", {population.size}, '
        f"params={{{listed}}})"
    )
    varying = [name for name in values.code if name in names and not values.is_constant(name)]
    if varying:
        listed = ", ".join(f'"{names[name]}": {values.code[name]}' for name in varying)
        lines.append(f"pops[{population.name!r}].set({{{listed}}})")
    return lines


def _weight_scale(params: NeuronParams, dt_ms: float) -> float:
    """Factor from a brainsim weight to NEST's: ``dt_ms`` for Izhikevich current pulses, else 1."""
    if isinstance(params, IzhikevichParams) and params.synapse == "current_pulse":
        return dt_ms
    return 1.0


def _conn_spec(connectivity: Connectivity, path: str) -> str:
    if isinstance(connectivity, OneToOne):
        return '{"rule": "one_to_one"}'
    if isinstance(connectivity, AllToAll):
        return f'{{"rule": "all_to_all", "allow_autapses": {connectivity.allow_autapses}}}'
    flags = ""
    if isinstance(connectivity, FixedIndegree | FixedOutdegree | FixedTotalNumber):
        flags = (
            f'"allow_autapses": {connectivity.allow_autapses}, '
            f'"allow_multapses": {connectivity.allow_multapses}'
        )
    if isinstance(connectivity, FixedIndegree):
        return f'{{"rule": "fixed_indegree", "indegree": {connectivity.indegree}, {flags}}}'
    if isinstance(connectivity, FixedOutdegree):
        return f'{{"rule": "fixed_outdegree", "outdegree": {connectivity.outdegree}, {flags}}}'
    if isinstance(connectivity, FixedTotalNumber):
        return f'{{"rule": "fixed_total_number", "N": {connectivity.n}, {flags}}}'
    if isinstance(connectivity, PairwiseBernoulli):
        return (
            f'{{"rule": "pairwise_bernoulli", "p": {python_literal(connectivity.p)}, '
            f'"allow_autapses": {connectivity.allow_autapses}}}'
        )
    raise UnsupportedCircuitError(
        SIMULATOR, f"{path}.connectivity", f"rule {connectivity.rule!r} is not translated"
    )


def _synapse_value(value: Value, path: str, scale: float) -> str:
    """NEST code for a per-synapse value: a number or a ``nest.random``/``nest.math`` parameter."""
    if isinstance(value, float | int):
        return python_literal(value * scale)
    if not isinstance(value, Uniform | Normal | LogNormal):
        raise UnsupportedCircuitError(SIMULATOR, path, "expressions are not per-synapse values")
    if scale != 1.0:
        raise UnsupportedCircuitError(
            SIMULATOR, path, "a distributed current-pulse weight has no NEST equivalent"
        )
    return _distribution(value)


def _distribution(value: Distribution) -> str:
    if isinstance(value, Uniform):
        return (
            f"nest.random.uniform(min={python_literal(value.low)}, "
            f"max={python_literal(value.high)})"
        )
    if isinstance(value, Normal):
        draw = (
            f"nest.random.normal(mean={python_literal(value.mean)}, "
            f"std={python_literal(value.std)})"
        )
    else:
        draw = (
            f"nest.random.lognormal(mean={python_literal(value.mu)}, "
            f"std={python_literal(value.sigma)})"
        )
    if value.low is None and value.high is None:
        return draw
    low = -float("inf") if value.low is None else value.low
    high = float("inf") if value.high is None else value.high
    if value.bound == "redraw":
        return f"nest.math.redraw({draw}, min={python_literal(low)}, max={python_literal(high)})"
    if value.low is not None:
        draw = f"nest.math.max({draw}, {python_literal(low)})"
    if value.high is not None:
        draw = f"nest.math.min({draw}, {python_literal(high)})"
    return draw


def _targets(targets: tuple[Target, ...], circuit: Circuit) -> list[str]:
    """NodeCollection code for each target (a whole population or a slice / id list of it)."""
    codes = []
    for target in targets:
        pops = f"pops[{target.population!r}]"
        size = circuit.populations[target.population].size
        bounds = selection_slice(target.nodes, size)
        if bounds is None:
            codes.append(f"{pops}[{list(target.nodes.ids or ())!r}]")
        elif bounds == (0, size, 1):
            codes.append(pops)
        else:
            codes.append(f"{pops}[{bounds[0]}:{bounds[1]}:{bounds[2]}]")
    return codes


def _stimulus_lines(stimulus: Stimulus, circuit: Circuit) -> list[str]:
    path = f"stimuli.{stimulus.name}"
    dt_ms = circuit.simulation.dt_ms
    if isinstance(stimulus, SpikeTrains):
        return _spike_train_lines(stimulus, circuit)
    if not isinstance(stimulus, PoissonStimulus | DCStimulus | NoiseStimulus | SpikeSourceArray):
        raise UnsupportedCircuitError(
            SIMULATOR,
            path,
            f"a {stimulus.type} stimulus draws its spikes in brainsim; NEST has no such "
            "encoder (give the spikes as a spike_trains stimulus to compare)",
        )
    if isinstance(stimulus, PoissonStimulus):
        model, rate = "poisson_generator", _constant(stimulus.rate_hz, f"{path}.rate_hz")
        params = {"rate": python_literal(rate)}
        delay = stimulus.delay_ms
    elif isinstance(stimulus, DCStimulus):
        model = "dc_generator"
        params = {
            "amplitude": python_literal(_constant(stimulus.amplitude_pA, f"{path}.amplitude_pA"))
        }
        delay = dt_ms
    elif isinstance(stimulus, NoiseStimulus):
        model = "noise_generator"
        params = {
            "mean": python_literal(_constant(stimulus.mean_pA, f"{path}.mean_pA")),
            "std": python_literal(_constant(stimulus.std_pA, f"{path}.std_pA")),
            "dt": python_literal(dt_ms),
        }
        delay = dt_ms
    else:
        model = "spike_generator"
        params = {"spike_times": repr(list(stimulus.spike_times_ms))}
        delay = stimulus.delay_ms
    if not isinstance(stimulus, SpikeSourceArray):
        params["start"] = python_literal(stimulus.start_ms)
        if stimulus.stop_ms is not None:
            params["stop"] = python_literal(stimulus.stop_ms)
    listed = ", ".join(f'"{key}": {code}' for key, code in params.items())
    lines = [f'stimulus = nest.Create("{model}", params={{{listed}}})']
    spikes = isinstance(stimulus, PoissonStimulus | SpikeSourceArray)
    for target, nodes in zip(stimulus.targets, _targets(stimulus.targets, circuit), strict=True):
        target_params = circuit.populations[target.population].params
        _require_positive_onto_parrot(target_params, stimulus.weight, f"{path}.weight")
        scale = _weight_scale(target_params, dt_ms) if spikes else 1.0
        weight = _synapse_value(stimulus.weight, f"{path}.weight", scale)
        lines.append(
            f"nest.Connect(stimulus, {nodes}, "
            f'syn_spec={{"weight": {weight}, "delay": {python_literal(delay)}}})'
        )
    return lines


def _spike_train_lines(stimulus: SpikeTrains, circuit: Circuit) -> list[str]:
    """``spike_trains`` -> one ``spike_generator`` per target neuron with its own times,
    connected one to one (target neuron ``i`` counts the targets' selected neurons in order)."""
    path = f"stimuli.{stimulus.name}"
    rows = stimulus.data.values
    if rows.size and float(rows[:, 1].min()) <= 0.0:
        raise UnsupportedCircuitError(
            SIMULATOR, f"{path}.data", "NEST's spike_generator takes no spike at time 0"
        )
    lines: list[str] = []
    first = 0
    for target, nodes in zip(stimulus.targets, _targets(stimulus.targets, circuit), strict=True):
        size = circuit.populations[target.population].size
        bounds = selection_slice(target.nodes, size)
        n = len(range(*bounds)) if bounds is not None else len(target.nodes.ids or ())
        index = rows[:, 0].astype(int)
        trains = [rows[index == first + i, 1].tolist() for i in range(n)]
        first += n
        target_params = circuit.populations[target.population].params
        _require_positive_onto_parrot(target_params, stimulus.weight, f"{path}.weight")
        scale = _weight_scale(target_params, circuit.simulation.dt_ms)
        weight = _synapse_value(stimulus.weight, f"{path}.weight", scale)
        lines.append(
            f'trains = nest.Create("spike_generator", {n}, '
            f'params=[{{"spike_times": t}} for t in {trains!r}])'
        )
        lines.append(
            f'nest.Connect(trains, {nodes}, "one_to_one", syn_spec={{"weight": {weight}, '
            f'"delay": {python_literal(stimulus.delay_ms)}}})'
        )
    return lines


def _constant(value: Value, path: str) -> float:
    if isinstance(value, float | int):
        return float(value)
    raise UnsupportedCircuitError(SIMULATOR, path, "a per-neuron distribution is not translated")


def plastic_model_name(projection: Projection) -> str:
    """The NEST synapse model the script copies for a plastic projection alone
    (``EE_stdp_pl_synapse_hom``)."""
    return f"{projection.name}_{SYNAPSE_MODELS[projection.synapse.model].nest_model}"


def _copy_plastic_model(projection: Projection) -> str:
    """``nest.CopyModel`` of the projection's NEST model with its parameters (NEST names) as
    the copy's defaults, ``tau_minus`` excepted (a neuron parameter in NEST)."""
    declaration = SYNAPSE_MODELS[projection.synapse.model]
    params = {
        parameter.nest_name: projection.synapse.params[parameter.name]
        for parameter in declaration.parameters
        if parameter.name != TAU_MINUS
    }
    listed = ", ".join(f'"{name}": {python_literal(value)}' for name, value in params.items())
    return (
        f'nest.CopyModel("{declaration.nest_model}", "{plastic_model_name(projection)}", '
        f"{{{listed}}})"
    )


def _tau_minus_lines(circuit: Circuit) -> list[str]:
    """``tau_minus`` on every population that plastic projections target (NEST keeps the
    postsynaptic trace on the neuron); refused when two projections disagree on it."""
    found: dict[str, tuple[float, str]] = {}
    for projection in circuit.projections.values():
        if not projection.plastic:
            continue
        tau = projection.synapse.params[TAU_MINUS]
        target = projection.target
        if target in found and found[target][0] != tau:
            value, other = found[target]
            raise UnsupportedCircuitError(
                SIMULATOR,
                f"projections.{projection.name}.synapse.{TAU_MINUS}",
                f"NEST keeps tau_minus on the target neuron: {tau:g} ms here, "
                f"{value:g} ms in projections.{other}, both onto population {target!r}",
            )
        found.setdefault(target, (tau, projection.name))
    return [
        f'pops[{target!r}].set({{"tau_minus": {python_literal(tau)}}})'
        for target, (tau, _) in found.items()
    ]


def _require_positive_onto_parrot(params: NeuronParams, weight: Value, path: str) -> None:
    """A weight onto a parrot must be > 0 in every draw: NEST's parrot_neuron repeats a spike of
    any weight, brainsim's does not fire on a sum <= 0."""
    if not isinstance(params, ParrotParams):
        return
    bounds = support(weight)
    if not isinstance(weight, LogNormal) and (bounds is None or bounds[0] <= 0.0):
        raise UnsupportedCircuitError(
            SIMULATOR,
            path,
            "weights onto a parrot must be > 0: NEST's parrot_neuron repeats spikes of any "
            "weight, brainsim's fires on a positive sum of weights only",
        )


def _require_unscaled(params: NeuronParams, dt_ms: float, path: str) -> None:
    """Plastic weights must mean the same in NEST: a current-pulse weight scaled by ``dt_ms``
    would change the rule (``w_max``, ``w^mu``) unless ``dt_ms`` is 1."""
    if _weight_scale(params, dt_ms) != 1.0:
        raise UnsupportedCircuitError(
            SIMULATOR,
            f"{path}.synapse",
            "plastic current-pulse synapses have no NEST equivalent unless dt_ms is 1",
        )


def _refuse_weight_snapshots(circuit: Circuit) -> None:
    for index, recording in enumerate(circuit.recordings.weights):
        if recording.interval_ms is not None or recording.first is not None:
            raise UnsupportedCircuitError(
                SIMULATOR,
                f"recordings.weights[{index}]",
                "weight snapshots during the run are not translated (the final weights' "
                "statistics of every plastic projection are reported)",
            )


def weight_grid(projection: Projection, circuit: Circuit) -> tuple[int, int]:
    """``(stride, offset)`` of the targets' grid whose synapses sample a plastic projection's
    final weights (:func:`weight_stride`; the grid of targets shifted by half a stride onto the
    source population itself, so that it holds no autapses)."""
    stride = weight_stride(expected_synapses(projection, circuit.populations))
    offset = stride // 2 if projection.source == projection.target else 0
    return stride, offset


def weight_stride(n_synapses: int) -> int:
    """The largest ``k`` with ``n_synapses / k**2 >= WEIGHT_SAMPLE`` (1 for a projection of
    fewer synapses): the script reads the weights of the synapses from every ``k``-th source to
    every ``k``-th target."""
    return max(1, math.isqrt(n_synapses // WEIGHT_SAMPLE))


def _weight_lines(circuit: Circuit) -> list[str]:
    """Statements that put each plastic projection's final weight statistics in ``weights``
    (from a grid sample of its synapses, :func:`weight_stride`) and time them."""
    lines = ["weights_clock = time.perf_counter()", "weights = {}"]
    for projection in circuit.projections.values():
        if not projection.plastic:
            continue
        stride, offset = weight_grid(projection, circuit)
        lines.append(
            f"weights[{projection.name!r}] = plastic_weights(pops[{projection.source!r}], "
            f"pops[{projection.target!r}], {plastic_model_name(projection)!r}, {stride}, "
            f"{offset})"
        )
    lines.append("weights_s = time.perf_counter() - weights_clock")
    return lines
