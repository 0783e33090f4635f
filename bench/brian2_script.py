"""Write a standalone Brian2 (C++ standalone device) script that builds and simulates a circuit.

Models (every number from the circuit records; constants are written into the equations,
per-neuron values become ``(constant)`` variables set from NumPy arrays):

- ``lif``: ``dv/dt = (E_L - v)/tau_m + (I_syn_ex + I_syn_in + I_e + I_noise)/C_m`` with
  ``(unless refractory)``, ``dI_syn_x/dt = -I_syn_x/tau_syn_x`` for exponential synapses,
  ``dI_syn_x/dt = (x_syn_x - I_syn_x)/tau_syn_x``, ``dx_syn_x/dt = -x_syn_x/tau_syn_x`` for
  alpha synapses (a spike adds ``e w`` to ``x_syn_x``, so the current peaks at ``w`` after
  ``tau_syn_x``), integrated with ``method="exact"`` (the same propagators as brainsim and
  NEST); threshold ``v >= V_th``, reset ``v = V_reset``, ``refractory = t_ref``. Delta
  synapses add ``w`` to ``v`` unless the target is refractory (input during refractoriness is
  lost, as in NEST).
- ``izhikevich``: no ODE solver; a ``run_regularly`` operation in the ``groups`` slot applies
  the circuit's scheme literally (``published_2003``: two half steps for ``v``, then ``u``
  with the new ``v``; ``euler``), then threshold ``v >= v_peak``, reset ``v = c; u += d``.
  ``current_pulse`` synapses add to ``i_pulse``, which the next update consumes and clears.
- ``parrot``: ``v : 1``, the summed weight arriving in a step: synapses add their weight to it,
  threshold ``v > 0``, and a ``run_regularly`` operation right after the thresholds clears it
  (a ``reset`` would run after the synapses and lose the input that arrives in the step of a
  spike). So it fires once in a step whose weights sum to more than 0, as brainsim's parrot;
  its synapses act within the step, like delta synapses (delay ``d - dt``, below).

Connection rules use Brian2's generator syntax, drawn at run time in C++ (no edge lists in
Python): ``fixed_indegree`` iterates over targets (``i='int(rand()*N_pre) for _ in range(K)'``
with multapses, ``sample(...)`` without), ``fixed_total_number`` first splits the total over
targets with a multinomial (NumPy, like brainsim and NEST) and then draws each target's
sources. Bounded normal values with ``redraw`` are sampled exactly by inverting the truncated
normal CDF (the C++ function ``trunc_normal``); ``clip`` uses ``clip``.

Timing conventions: Brian2 applies a spike with delay ``d`` after the neuron update of the
arrival step, one step later than NEST and brainsim for inputs that act within the step
(delta and current-pulse synapses, synapses onto parrots), so those synapses get ``d - dt``;
current (exponential and alpha) synapses keep ``d``. Poisson stimuli are ``PoissonInput`` (a
binomial count per neuron and step with ``N`` inputs at ``rate/N``, ``N`` chosen so each
input's probability per step is <= 0.001).

The script compiles the project in ``--project`` (``--compile-only`` stops there: the warm-up
that makes later runs reuse the compiled objects), runs the binary, and prints ``build_s``
(network construction inside the binary: from the start of ``main`` through creating and
initialising the synapses and the run's before-run code, which prepares each pathway's spike
queue from the synapses' sources and delays), ``sim_s`` (the network's run loop alone,
``network.run`` in ``main.cpp``), ``compile_s`` (code generation and compilation) and
``binary_s`` (the whole binary, including writing its results), measured with timestamps
that the binary prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from bench.translate_common import (
    RUNTIME_SOURCE,
    UnsupportedCircuitError,
    header_lines,
    neuron_values,
    python_literal,
    selection_slice,
    sign_of,
)
from brainsim.circuit.spec import (
    AllToAll,
    Circuit,
    DCStimulus,
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
    Target,
    Uniform,
    Value,
)

__all__ = ["POISSON_INPUT_MAX_P", "TRUNC_NORMAL_CPP", "brian2_script", "poisson_input_count"]

SIMULATOR = "Brian2"

POISSON_INPUT_MAX_P = 0.001
"""Largest per-step probability of one of a ``PoissonInput``'s ``N`` inputs."""

TRUNC_NORMAL_CPP = r"""
static double bench_normal_quantile(double p)
{
    // Acklam's rational approximation of the standard normal quantile, then one Halley step.
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
        -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01,
        2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
        -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
        -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00,
        2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01,
        2.445134137142996e+00, 3.754408661907416e+00};
    const double p_low = 0.02425;
    double x;
    if (p < p_low) {
        const double q = sqrt(-2.0 * log(p));
        x = (((((c[0]*q + c[1])*q + c[2])*q + c[3])*q + c[4])*q + c[5]) /
            ((((d[0]*q + d[1])*q + d[2])*q + d[3])*q + 1.0);
    } else if (p <= 1.0 - p_low) {
        const double q = p - 0.5;
        const double r = q * q;
        x = (((((a[0]*r + a[1])*r + a[2])*r + a[3])*r + a[4])*r + a[5]) * q /
            (((((b[0]*r + b[1])*r + b[2])*r + b[3])*r + b[4])*r + 1.0);
    } else {
        const double q = sqrt(-2.0 * log(1.0 - p));
        x = -(((((c[0]*q + c[1])*q + c[2])*q + c[3])*q + c[4])*q + c[5]) /
            ((((d[0]*q + d[1])*q + d[2])*q + d[3])*q + 1.0);
    }
    const double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
    const double u = e * sqrt(2.0 * M_PI) * exp(0.5 * x * x);
    return x - u / (1.0 + 0.5 * x * u);
}

double trunc_normal(double mean, double std, double low, double high, double uniform)
{
    // Inverse-CDF draw from N(mean, std) restricted to [low, high] (= redrawing outside).
    if (std <= 0.0) return mean;
    const double lo = 0.5 * erfc(-((low - mean) / std) / sqrt(2.0));
    const double hi = 0.5 * erfc(-((high - mean) / std) / sqrt(2.0));
    double p = lo + uniform * (hi - lo);
    if (p < 1e-300) p = 1e-300;
    if (p > 1.0 - 1e-16) p = 1.0 - 1e-16;
    return mean + std * bench_normal_quantile(p);
}
"""
"""C++ of the ``trunc_normal(mean, std, low, high, uniform)`` function the scripts register."""

_SCRIPT_FUNCTIONS = '''
TRUNC_NORMAL_CPP = {cpp!r}


@b2.implementation("cpp", TRUNC_NORMAL_CPP)
@b2.check_units(mean=1, std=1, low=1, high=1, uniform=1, result=1)
def trunc_normal(mean, std, low, high, uniform):
    """N(mean, std) restricted to [low, high], drawn by inverting the CDF at ``uniform``."""
    normal = statistics.NormalDist()
    lo = normal.cdf((low - mean) / std)
    hi = normal.cdf((high - mean) / std)
    return mean + std * normal.inv_cdf(lo + uniform * (hi - lo))


def clock_code(label):
    """C++ that prints a monotonic timestamp; the script reads it from the binary's output."""
    return (
        "{{ struct timespec bench_ts; clock_gettime(CLOCK_MONOTONIC, &bench_ts); "
        "std::cout.precision(17); "
        f'std::cout << "BENCH_T {{label}} " << bench_ts.tv_sec + 1e-9 * bench_ts.tv_nsec '
        "<< std::endl; }}"
    )


def binary_times(results_dir):
    """The BENCH_T timestamps the binary printed, by label."""
    times = {{}}
    with open(os.path.join(results_dir, "stdout.txt"), encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("BENCH_T "):
                _, label, value = line.split()
                times[label] = float(value)
    return times
'''

_LIF_VARIABLES = {
    "tau_m_ms": ("tau_m", "ms", "second"),
    "c_m_pF": ("C_m", "pF", "farad"),
    "v_th_mV": ("V_th", "mV", "volt"),
    "v_reset_mV": ("V_reset", "mV", "volt"),
    "e_l_mV": ("E_L", "mV", "volt"),
    "t_ref_ms": ("t_ref", "ms", "second"),
    "i_e_pA": ("I_e", "pA", "amp"),
    "tau_syn_ex_ms": ("tau_syn_ex", "ms", "second"),
    "tau_syn_in_ms": ("tau_syn_in", "ms", "second"),
    "v_mV": ("v", "mV", "volt"),
    "i_syn_ex_pA": ("I_syn_ex", "pA", "amp"),
    "i_syn_in_pA": ("I_syn_in", "pA", "amp"),
}
_IZHIKEVICH_VARIABLES = {
    "a": ("a", "1", "1"),
    "b": ("b", "1", "1"),
    "c_mV": ("c", "1", "1"),
    "d": ("d", "1", "1"),
    "v_peak_mV": ("v_peak", "1", "1"),
    "i_e_pA": ("I_e", "1", "1"),
    "v_mV": ("v", "1", "1"),
    "u": ("u", "1", "1"),
}
_STATE = ("v_mV", "u", "i_syn_ex_pA", "i_syn_in_pA")
_VARIABLES: dict[type[NeuronParams], dict[str, tuple[str, str, str]]] = {
    LifParams: _LIF_VARIABLES,
    IzhikevichParams: _IZHIKEVICH_VARIABLES,
    ParrotParams: {},
}
"""Each model's parameters and initial values: (Brian2 variable, unit, dimension)."""


@dataclass(frozen=True, slots=True)
class _Inputs:
    """External currents of one population that Brian2 needs in its equations: summed DC
    (pA), summed noise mean (pA) and variance (pA^2), and the per-target synapse-count
    variables of ``fixed_total_number`` projections onto it."""

    dc_pA: float = 0.0
    noise_mean_pA: float = 0.0
    noise_var_pA2: float = 0.0
    counts: tuple[str, ...] = ()

    @property
    def noisy(self) -> bool:
        """Whether a noise stimulus drives the population."""
        return self.noise_var_pA2 > 0.0 or self.noise_mean_pA != 0.0


def poisson_input_count(rate_hz: float, dt_ms: float) -> int:
    """``N`` of a ``PoissonInput`` for a total rate: the least N with ``rate*dt/N <= 0.001``."""
    expected = rate_hz * dt_ms / 1000.0
    return max(1, math.ceil(expected / POISSON_INPUT_MAX_P))


def brian2_script(circuit: Circuit, source: str) -> str:
    """The text of a Brian2 C++-standalone script for ``circuit``.

    Raises :class:`~bench.translate_common.UnsupportedCircuitError` for what Brian2's building
    blocks here cannot express identically (connection files, spike-source arrays, time-limited
    or per-neuron-varying stimuli, partial stimulus targets other than contiguous ranges,
    ``fixed_total_number`` without multapses, state recordings, plastic synapses).
    """
    if circuit.recordings.state:
        raise UnsupportedCircuitError(
            SIMULATOR, "recordings.state", "state recordings are not translated (spikes only)"
        )
    _refuse_plastic(circuit)
    sim = circuit.simulation
    inputs = _gather_inputs(circuit)
    body = [
        'b2.set_device("cpp_standalone", directory=args.project, build_on_run=False)',
        "b2.prefs.devices.cpp_standalone.openmp_threads = args.threads if args.threads > 1 else 0",
        # Brian2 runs an unbounded `make -j` by default: hundreds of compilers exhaust memory.
        'b2.prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{args.threads}"]',
        f"b2.defaultclock.dt = {python_literal(sim.dt_ms)} * b2.ms",
        f"b2.seed({sim.seed})",
        f"rng = np.random.default_rng({sim.seed})",
        'b2.device.insert_code("main", clock_code("build_start"))',
        "groups, objects, synapses, monitors = {}, [], [], {}",
    ]
    for population in circuit.populations.values():
        body += _population_lines(population, inputs[population.name], sim.dt_ms)
    for projection in circuit.projections.values():
        body += _projection_lines(projection, circuit)
    for stimulus in circuit.stimuli.values():
        if isinstance(stimulus, PoissonStimulus):
            body += _poisson_lines(stimulus, circuit)
    for name in circuit.recordings.spikes:
        body.append(f'monitors[{name!r}] = b2.SpikeMonitor(groups[{name!r}], name="spikes_{name}")')
    body += [
        "objects += list(monitors.values())",
        # Construction ends where the network's run loop starts: after the synapses' spike
        # queues are prepared (their before-run code), as NEST's ends after its connection
        # infrastructure is built.
        'b2.device.insert_code("before_network_run", clock_code("build_end"))',
        'b2.device.insert_code("after_network_run", clock_code("run_end"))',
        "network = b2.Network(*objects)",
        f"network.run({python_literal(sim.duration_ms)} * b2.ms)",
        "start = time.perf_counter()",
        "b2.device.build(directory=args.project, compile=True, run=False, with_output=False)",
        "compile_s = time.perf_counter() - start",
        "if args.compile_only:",
        '    emit_result({"simulator": "brian2", "compile_s": compile_s})',
        "    return",
        "start = time.perf_counter()",
        "b2.device.run(directory=args.project, with_output=False)",
        "binary_s = time.perf_counter() - start",
        "times = binary_times(b2.device.results_dir)",
        "emit_result({",
        '    "simulator": "brian2",',
        '    "version": b2.__version__,',
        '    "threads": args.threads,',
        '    "build_s": times["build_end"] - times["build_start"],',
        '    "sim_s": times["run_end"] - times["build_end"],',
        '    "compile_s": compile_s,',
        '    "binary_s": binary_s,',
        '    "n_synapses": int(sum(int(s.N[:]) for s in synapses)),',
        '    "n_spikes": {name: int(m.num_spikes) for name, m in monitors.items()},',
        "})",
    ]
    lines = header_lines(circuit, "Brian2 (C++ standalone)", source)
    lines += [
        RUNTIME_SOURCE,
        "",
        "import argparse",
        "import os",
        "import statistics",
        "import time",
    ]
    lines += ["", "import brian2 as b2", ""]
    lines.append(_SCRIPT_FUNCTIONS.format(cpp=TRUNC_NORMAL_CPP))
    lines += [
        "",
        "def main() -> None:",
        "    parser = argparse.ArgumentParser()",
        '    parser.add_argument("--threads", type=int, default=1)',
        '    parser.add_argument("--project", required=True)',
        '    parser.add_argument("--compile-only", action="store_true")',
        "    args = parser.parse_args()",
    ]
    lines += [f"    {line}" for line in body]
    lines += ["", "", 'if __name__ == "__main__":', "    main()", ""]
    return "\n".join(lines)


def _refuse_plastic(circuit: Circuit) -> None:
    """Plastic projections are not translated: NEST's STDP as brainsim implements it (all-to-all
    pairing with the whole delay dendritic, facilitation for the postsynaptic spikes since the
    last presynaptic one applied at the next, before depression, and the spike transmitted with
    the updated weight) would take pathways of their own in Brian2, and a rule that differs in
    any of these details would compare other weights, not the same circuit."""
    for projection in circuit.projections.values():
        if projection.plastic:
            raise UnsupportedCircuitError(
                SIMULATOR,
                f"projections.{projection.name}.synapse",
                f"plastic synapses ({projection.synapse.model}) are not translated: NEST's "
                "rule with the whole delay dendritic has no faithful Brian2 equivalent here",
            )


def _gather_inputs(circuit: Circuit) -> dict[str, _Inputs]:
    inputs = {name: _Inputs() for name in circuit.populations}
    for stimulus in circuit.stimuli.values():
        path = f"stimuli.{stimulus.name}"
        if isinstance(stimulus, PoissonStimulus):
            continue
        if not isinstance(stimulus, DCStimulus | NoiseStimulus):
            raise UnsupportedCircuitError(
                SIMULATOR, path, f"stimulus type {stimulus.type!r} is not translated"
            )
        _require_whole_run(stimulus.start_ms, stimulus.stop_ms, path)
        weight = _constant(stimulus.weight, f"{path}.weight")
        for index, target in enumerate(stimulus.targets):
            _require_whole(target, circuit, f"{path}.targets[{index}]")
            found = inputs[target.population]
            if isinstance(stimulus, DCStimulus):
                amplitude = _constant(stimulus.amplitude_pA, f"{path}.amplitude_pA")
                found = replace(found, dc_pA=found.dc_pA + amplitude * weight)
            else:
                mean = _constant(stimulus.mean_pA, f"{path}.mean_pA") * weight
                std = _constant(stimulus.std_pA, f"{path}.std_pA") * weight
                found = replace(
                    found,
                    noise_mean_pA=found.noise_mean_pA + mean,
                    noise_var_pA2=found.noise_var_pA2 + std**2,
                )
            inputs[target.population] = found
    for projection in circuit.projections.values():
        if isinstance(projection.connectivity, FixedTotalNumber):
            found = inputs[projection.target]
            counts = (*found.counts, f"count_{projection.name}")
            inputs[projection.target] = replace(found, counts=counts)
    return inputs


def _require_whole_run(start_ms: float, stop_ms: float | None, path: str) -> None:
    if start_ms != 0.0 or stop_ms is not None:
        raise UnsupportedCircuitError(SIMULATOR, path, "start_ms/stop_ms are not translated")


def _require_whole(target: Target, circuit: Circuit, path: str) -> None:
    size = circuit.populations[target.population].size
    if selection_slice(target.nodes, size) != (0, size, 1):
        raise UnsupportedCircuitError(SIMULATOR, path, "only whole populations are translated")


def _constant(value: Value, path: str) -> float:
    if isinstance(value, float | int):
        return float(value)
    raise UnsupportedCircuitError(SIMULATOR, path, "a per-neuron distribution is not translated")


def _quantity(literal: str, unit: str) -> str:
    return literal if unit == "1" else f"({literal} * {unit})"


def _population_lines(population: Population, inputs: _Inputs, dt_ms: float) -> list[str]:
    params = population.params
    table = _VARIABLES[type(params)]
    values = neuron_values(population, "vals", "rv")
    declared: dict[str, str] = {}

    def term(field_name: str) -> str:
        """A parameter in an equation: a literal with its unit, or a per-neuron variable."""
        variable, unit, dimension = table[field_name]
        if field_name in _STATE:
            return variable
        if values.is_constant(field_name):
            return _quantity(values.code[field_name], unit)
        declared[variable] = f"{variable} : {dimension} (constant)"
        return variable

    if isinstance(params, LifParams):
        equations, options, operation = _lif_model(params, term, inputs)
    elif isinstance(params, IzhikevichParams):
        equations, options, operation = _izhikevich_model(params, term, inputs, dt_ms)
    else:
        equations, options, operation = _PARROT_MODEL
    equations += declared.values()
    equations += [f"{count} : integer (constant)" for count in inputs.counts]
    name = population.name
    group = f"groups[{name!r}]"
    lines = [f"# population {name}: {population.size} x {population.model}"]
    if values.lines:
        lines += ["rv, vals = {}, {}", *values.lines]
    lines += [
        f"{group} = b2.NeuronGroup({population.size}, {chr(10).join(equations)!r}, {options}, "
        f'name="pop_{name}")',
        f"objects.append({group})",
    ]
    for field_name, (variable, unit, _) in table.items():
        if field_name in values.code and (field_name in _STATE or variable in declared):
            code = values.code[field_name]
            lines.append(f"{group}.{variable} = {_quantity(code, _python_unit(unit))}")
    if operation:
        lines.append(
            f"{group}.run_regularly({operation!r}, when={_OPERATION_SLOT[type(params)]!r})"
        )
    return lines


_OPERATION_SLOT = {LifParams: "start", IzhikevichParams: "groups", ParrotParams: "after_thresholds"}
"""LIF noise is drawn before the update (``start``); the Izhikevich update runs as ``groups``; a
parrot's summed input is cleared right after the threshold has read it."""

_PARROT_MODEL = (["v : 1"], "threshold='v > 0', reset=''", "v = 0")
"""A parrot's equations, options and operation: ``v`` sums the weights arriving in a step, and
the operation (not a reset) clears it."""


def _python_unit(unit: str) -> str:
    return unit if unit == "1" else f"b2.{unit}"


_Term = Callable[[str], str]


def _lif_model(params: LifParams, term: _Term, inputs: _Inputs) -> tuple[list[str], str, str]:
    """Equations, NeuronGroup options, and the per-step noise operation ("" without noise)."""
    currents = []
    if params.synapse != "delta":
        currents += ["I_syn_ex", "I_syn_in"]
    if not (isinstance(params.i_e_pA, float | int) and params.i_e_pA == 0.0):
        currents.append(term("i_e_pA"))
    if inputs.dc_pA:
        currents.append(_quantity(python_literal(inputs.dc_pA), "pA"))
    operation = ""
    if inputs.noisy:
        currents.append("I_noise")
        operation = (
            f"I_noise = ({python_literal(inputs.noise_mean_pA)} + "
            f"{python_literal(math.sqrt(inputs.noise_var_pA2))} * randn()) * pA"
        )
    leak = f"({term('e_l_mV')} - v) / {term('tau_m_ms')}"
    drive = f" + ({' + '.join(currents)}) / {term('c_m_pF')}" if currents else ""
    equations = [f"dv/dt = {leak}{drive} : volt (unless refractory)"]
    for channel in ("ex", "in") if params.synapse != "delta" else ():
        tau = term(f"tau_syn_{channel}_ms")
        if params.synapse == "alpha":
            equations += [
                f"dI_syn_{channel}/dt = (x_syn_{channel} - I_syn_{channel}) / {tau} : amp",
                f"dx_syn_{channel}/dt = -x_syn_{channel} / {tau} : amp",
            ]
        else:
            equations.append(f"dI_syn_{channel}/dt = -I_syn_{channel} / {tau} : amp")
    if inputs.noisy:
        equations.append("I_noise : amp")
    options = (
        f"threshold={'v >= ' + term('v_th_mV')!r}, reset={'v = ' + term('v_reset_mV')!r}, "
        f'refractory={term("t_ref_ms")!r}, method="exact"'
    )
    return equations, options, operation


def _izhikevich_model(
    params: IzhikevichParams, term: _Term, inputs: _Inputs, dt_ms: float
) -> tuple[list[str], str, str]:
    """Equations (plain variables), options, and the update operation with the circuit's scheme."""
    drive = ["i_pulse"]
    if not (isinstance(params.i_e_pA, float | int) and params.i_e_pA == 0.0):
        drive.append(term("i_e_pA"))
    if inputs.dc_pA:
        drive.append(python_literal(inputs.dc_pA))
    if inputs.noisy:
        drive.append(
            f"({python_literal(inputs.noise_mean_pA)} + "
            f"{python_literal(math.sqrt(inputs.noise_var_pA2))} * randn())"
        )
    a, b = term("a"), term("b")
    rhs = "(0.04 * v**2 + 5 * v + 140 - u + i_total)"
    if params.integration == "published_2003":
        half = python_literal(dt_ms / 2)
        update = [
            f"v += {half} * {rhs}",
            f"v += {half} * {rhs}",
            f"u += {python_literal(dt_ms)} * {a} * ({b} * v - u)",
        ]
    else:
        step = python_literal(dt_ms)
        update = ["v_old = v", f"v += {step} * {rhs}", f"u += {step} * {a} * ({b} * v_old - u)"]
    operation = "\n".join([f"i_total = {' + '.join(drive)}", *update, "i_pulse = 0"])
    equations = ["v : 1", "u : 1", "i_pulse : 1"]
    options = (
        f"threshold={'v >= ' + term('v_peak_mV')!r}, "
        f"reset={'v = ' + term('c_mV') + chr(10) + 'u += ' + term('d')!r}"
    )
    return equations, options, operation


def _synapse_kind(projection: Projection, circuit: Circuit) -> tuple[str, str, str]:
    """(target variable, Brian2 unit of the weight, dimension) for a projection's synapses."""
    params = circuit.populations[projection.target].params
    if isinstance(params, ParrotParams):
        return "v", "1", "1"
    if isinstance(params, IzhikevichParams):
        return ("i_pulse" if params.synapse == "current_pulse" else "v"), "1", "1"
    if params.synapse == "delta":
        return "v", "mV", "volt"
    return "I_syn", "pA", "amp"


def _current_input(params: LifParams) -> tuple[str, str]:
    """(prefix of the variables a current synapse's weight is added to, factor on the weight):
    the current itself, or an alpha current's drive, ``e`` times the weight."""
    if params.synapse == "alpha":
        return "x_syn", f" * {python_literal(math.e)}"
    return "I_syn", ""


def _acts_within_step(projection: Projection, circuit: Circuit) -> bool:
    """True for delta and current-pulse synapses and synapses onto parrots (Brian2 delay =
    brainsim delay - dt)."""
    params = circuit.populations[projection.target].params
    return isinstance(params, IzhikevichParams | ParrotParams) or params.synapse == "delta"


def _value_expression(value: Value, path: str) -> str:
    """A Brian2 string expression (no unit) drawing one value per synapse."""
    if isinstance(value, float | int):
        return python_literal(value)
    if isinstance(value, Uniform):
        return f"({python_literal(value.low)} + {python_literal(value.high - value.low)} * rand())"
    if not isinstance(value, Normal | LogNormal):
        raise UnsupportedCircuitError(SIMULATOR, path, "expressions are not per-synapse values")
    if isinstance(value, Normal):
        mean, std, low, high = value.mean, value.std, value.low, value.high
    else:
        mean, std = value.mu, value.sigma
        low = None if value.low is None else _log_bound(value.low)
        high = None if value.high is None else math.log(value.high)
    low_code = "-inf" if low is None else python_literal(low)
    high_code = "inf" if high is None else python_literal(high)
    if low is None and high is None:
        draw = f"({python_literal(mean)} + {python_literal(std)} * randn())"
    elif value.bound == "redraw":
        draw = (
            f"trunc_normal({python_literal(mean)}, {python_literal(std)}, {low_code}, "
            f"{high_code}, rand())"
        )
    else:
        draw = (
            f"clip({python_literal(mean)} + {python_literal(std)} * randn(), "
            f"{low_code}, {high_code})"
        )
    return f"exp({draw})" if isinstance(value, LogNormal) else draw


def _log_bound(low: float) -> float:
    return math.log(low) if low > 0 else -math.inf


def _connect_arguments(projection: Projection, circuit: Circuit) -> str:
    """Arguments of ``Synapses.connect`` that implement the projection's rule."""
    rule = projection.connectivity
    same = projection.source == projection.target
    if isinstance(rule, OneToOne):
        return 'j="i"'
    if isinstance(rule, AllToAll):
        return 'condition="i != j"' if same and not rule.allow_autapses else ""
    if isinstance(rule, PairwiseBernoulli):
        condition = 'condition="i != j", ' if same and not rule.allow_autapses else ""
        return f"{condition}p={python_literal(rule.p)}"
    if isinstance(rule, FixedIndegree | FixedOutdegree | FixedTotalNumber):
        incoming = not isinstance(rule, FixedOutdegree)
        drawn, other, size = ("i", "j", "N_pre") if incoming else ("j", "i", "N_post")
        if isinstance(rule, FixedTotalNumber):
            if not rule.allow_multapses:
                raise UnsupportedCircuitError(
                    SIMULATOR,
                    f"projections.{projection.name}.connectivity",
                    "fixed_total_number without multapses is not translated",
                )
            count = f"count_{projection.name}_post"
        else:
            count = str(rule.indegree if isinstance(rule, FixedIndegree) else rule.outdegree)
        no_autapses = same and not rule.allow_autapses
        if rule.allow_multapses and no_autapses:
            generator = (
                f"({other} + 1 + int(rand() * ({size} - 1))) % {size} for _ in range({count})"
            )
        elif rule.allow_multapses:
            generator = f"int(rand() * {size}) for _ in range({count})"
        elif no_autapses:
            generator = f"k + int(k >= {other}) for k in sample({size} - 1, size={count})"
        else:
            generator = f"k for k in sample({size}, size={count})"
        return f"{drawn}={generator!r}"
    raise UnsupportedCircuitError(
        SIMULATOR,
        f"projections.{projection.name}.connectivity",
        f"rule {rule.rule!r} is not translated",
    )


def _projection_lines(projection: Projection, circuit: Circuit) -> list[str]:
    path = f"projections.{projection.name}"
    variable, unit, dimension = _synapse_kind(projection, circuit)
    prefix, factor = "", ""
    if variable == "I_syn":
        target = circuit.populations[projection.target].params
        assert isinstance(target, LifParams)
        prefix, factor = _current_input(target)
        sign = sign_of(projection.weight)
        variable = {1: f"{prefix}_ex", -1: f"{prefix}_in"}.get(sign, "")
    weight = _value_expression(projection.weight, f"{path}.weight")
    varying_weight = not isinstance(projection.weight, float | int)
    weight_term = "w" if varying_weight else _quantity(weight, unit)
    if variable:
        effect = f"{variable}_post += {weight_term}{factor}"
    else:
        effect = (
            f"{prefix}_ex_post += {weight_term}{factor} * int({weight_term} > 0 * amp)\n"
            f"{prefix}_in_post += {weight_term}{factor} * int({weight_term} < 0 * amp)"
        )
    if variable == "v" and isinstance(circuit.populations[projection.target].params, LifParams):
        effect = f"v_post += {weight_term} * int(not_refractory_post)"
    dt_ms = circuit.simulation.dt_ms
    shift = f" - {python_literal(dt_ms)}" if _acts_within_step(projection, circuit) else ""
    delay = _value_expression(projection.delay_ms, f"{path}.delay_ms")
    model = f"w : {dimension} (constant)" if varying_weight else ""
    synapses = f"proj_{projection.name}"
    arguments = [
        f"groups[{projection.source!r}]",
        f"groups[{projection.target!r}]",
        repr(model),
        f"on_pre={effect!r}",
    ]
    if isinstance(projection.delay_ms, float | int):
        arguments.append(f"delay=({delay}{shift}) * b2.ms")
    arguments.append(f'name="{synapses}"')
    lines = [f"{synapses} = b2.Synapses({', '.join(arguments)})"]
    if isinstance(projection.connectivity, FixedTotalNumber):
        size = circuit.populations[projection.target].size
        lines.append(
            f"groups[{projection.target!r}].count_{projection.name} = rng.multinomial("
            f"{projection.connectivity.n}, np.full({size}, 1.0 / {size}))"
        )
    lines.append(f"{synapses}.connect({_connect_arguments(projection, circuit)})")
    if varying_weight:
        lines.append(f"{synapses}.w = {_quantity(weight, unit)!r}")
    if not isinstance(projection.delay_ms, float | int):
        lines.append(f"{synapses}.delay = {'(' + delay + shift + ') * ms'!r}")
    lines += [f"synapses.append({synapses})", f"objects.append({synapses})"]
    return lines


def _poisson_lines(stimulus: PoissonStimulus, circuit: Circuit) -> list[str]:
    path = f"stimuli.{stimulus.name}"
    _require_whole_run(stimulus.start_ms, stimulus.stop_ms, path)
    rate_hz = _constant(stimulus.rate_hz, f"{path}.rate_hz")
    weight = _constant(stimulus.weight, f"{path}.weight")
    count = poisson_input_count(rate_hz, circuit.simulation.dt_ms)
    lines = []
    for index, target in enumerate(stimulus.targets):
        bounds = selection_slice(target.nodes, circuit.populations[target.population].size)
        if bounds is None or bounds[2] != 1:
            raise UnsupportedCircuitError(
                SIMULATOR, f"{path}.targets[{index}]", "only contiguous node ranges are translated"
            )
        size = circuit.populations[target.population].size
        group = f"groups[{target.population!r}]"
        if bounds != (0, size, 1):
            group += f"[{bounds[0]}:{bounds[1]}]"
        params = circuit.populations[target.population].params
        if isinstance(params, ParrotParams):
            variable, effect = "v", python_literal(weight)
        elif isinstance(params, IzhikevichParams):
            variable = "i_pulse" if params.synapse == "current_pulse" else "v"
            effect = python_literal(weight)
        elif params.synapse == "delta":
            variable, effect = "v", f"{python_literal(weight)} * mV * int(not_refractory)"
        else:
            prefix, factor = _current_input(params)
            variable = f"{prefix}_ex" if weight >= 0 else f"{prefix}_in"
            effect = f"{python_literal(weight)} * pA{factor}"
        lines.append(
            f"objects.append(b2.PoissonInput({group}, {variable!r}, {count}, "
            f"{python_literal(rate_hz / count)} * b2.Hz, weight={effect!r}))"
        )
    return lines
