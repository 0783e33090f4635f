"""Write a standalone NEST 3 script that builds and simulates a brainsim circuit.

The script takes every number from the circuit records (:mod:`brainsim.circuit.spec`):

- ``lif`` + ``delta`` -> ``iaf_psc_delta``, ``lif`` + ``exponential`` -> ``iaf_psc_exp``,
  ``izhikevich`` -> ``izhikevich`` (``consistent_integration`` False for the published 2003
  scheme, True for Euler). NEST's Izhikevich synapses add the weight to ``v``; a brainsim
  ``current_pulse`` of ``w`` held for one step adds ``w * dt_ms`` to ``v`` to first order, so
  that is the weight used (identical for the 2003 network, where ``dt`` is 1 ms).
- Projections -> ``nest.Connect`` with the same rule name and flags; per-synapse
  distributions -> ``nest.random.*``, bounds with ``redraw`` -> ``nest.math.redraw``, with
  ``clip`` -> ``nest.math.min/max``. NEST rounds delays to the grid as brainsim does.
- ``poisson`` -> one ``poisson_generator`` per stimulus (an independent train per target),
  ``dc`` -> ``dc_generator``, ``noise`` -> ``noise_generator`` with ``dt`` = the time step
  (a fresh draw per neuron and step), ``spike_source_array`` -> ``spike_generator``.
- A ``spike_recorder`` per recorded population; ``local_num_threads`` from ``--threads``.
- NEST stores at most 134,217,726 connections per virtual process and synapse model, which
  the full microcircuit on 2 threads exceeds; when the circuit's synapses could exceed it,
  every projection gets its own copy of ``static_synapse`` (decided at run time from the
  thread count).

Timing inside the script: ``build_s`` from the first ``Create`` to the end of the last
``Connect`` (devices included), ``sim_s`` = ``nest.Simulate``. ``n_synapses`` counts the
network's connections only (read before devices are connected).
"""

from __future__ import annotations

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
    NoiseStimulus,
    Normal,
    OneToOne,
    PairwiseBernoulli,
    PoissonStimulus,
    Population,
    SpikeSourceArray,
    Target,
    Uniform,
    Value,
)

__all__ = ["NEST_CONNECTION_LIMIT", "nest_script"]

SIMULATOR = "NEST"

NEST_CONNECTION_LIMIT = 134_217_726
"""Connections NEST 3.10 stores per virtual process and synapse model (its error message)."""

_SYNAPSE_MODEL = '''
def synapse_model(name: str, split: bool) -> str:
    """static_synapse, or (split) a copy of it named ``name`` for one projection alone."""
    if not split:
        return "static_synapse"
    nest.CopyModel("static_synapse", name)
    return name
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
    total = sum(expected_synapses(p, circuit.populations) for p in circuit.projections.values())
    body += [
        "# NEST stores at most NEST_CONNECTION_LIMIT connections per virtual process and synapse",
        "# model; a network that may exceed it gets a copy of static_synapse per projection.",
        f"split_models = {total} > 0.9 * NEST_CONNECTION_LIMIT * args.threads",
    ]
    for projection in circuit.projections.values():
        path = f"projections.{projection.name}"
        target_model = circuit.populations[projection.target].params
        weight = _synapse_value(
            projection.weight, f"{path}.weight", _weight_scale(target_model, sim.dt_ms)
        )
        delay = _synapse_value(projection.delay_ms, f"{path}.delay_ms", 1.0)
        model = f'synapse_model("static_{projection.name}", split_models)'
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
    body += [
        "build_s = time.perf_counter() - start",
        "start = time.perf_counter()",
        f"nest.Simulate({python_literal(sim.duration_ms)})",
        "sim_s = time.perf_counter() - start",
        "emit_result({",
        '    "simulator": "nest",',
        '    "version": nest.__version__,',
        '    "threads": args.threads,',
        '    "build_s": build_s,',
        '    "sim_s": sim_s,',
        '    "n_synapses": int(n_synapses),',
        '    "n_spikes": {name: int(rec.get("n_events")) for name, rec in recorders.items()},',
        "})",
    ]
    lines = header_lines(circuit, "NEST 3", source)
    lines += [RUNTIME_SOURCE, "", "import argparse", "import time", "", "import nest", ""]
    lines += [f"NEST_CONNECTION_LIMIT = {NEST_CONNECTION_LIMIT}", "", _SYNAPSE_MODEL]
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
    if isinstance(params, LifParams):
        model = "iaf_psc_delta" if params.synapse == "delta" else "iaf_psc_exp"
        names = dict(_LIF_PARAMS, **(_EXP_PARAMS if params.synapse == "exponential" else {}))
    else:
        model = "izhikevich"
        names = _IZHIKEVICH_PARAMS
    values = neuron_values(population, "vals", "rv")
    for name in ("i_syn_ex_pA", "i_syn_in_pA"):
        if values.code.get(name, "0.0") != "0.0":
            raise UnsupportedCircuitError(
                SIMULATOR,
                f"populations.{population.name}.initial.{name}",
                "NEST's iaf_psc_exp cannot start with a synaptic current",
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


def _weight_scale(params: LifParams | IzhikevichParams, dt_ms: float) -> float:
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


def _stimulus_lines(
    stimulus: PoissonStimulus | DCStimulus | NoiseStimulus | SpikeSourceArray, circuit: Circuit
) -> list[str]:
    path = f"stimuli.{stimulus.name}"
    dt_ms = circuit.simulation.dt_ms
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
        scale = _weight_scale(target_params, dt_ms) if spikes else 1.0
        weight = _synapse_value(stimulus.weight, f"{path}.weight", scale)
        lines.append(
            f"nest.Connect(stimulus, {nodes}, "
            f'syn_spec={{"weight": {weight}, "delay": {python_literal(delay)}}})'
        )
    return lines


def _constant(value: Value, path: str) -> float:
    if isinstance(value, float | int):
        return float(value)
    raise UnsupportedCircuitError(SIMULATOR, path, "a per-neuron distribution is not translated")
