"""The generated Brian2 scripts: equations, synapse effects, delays, rules and trunc_normal."""

from __future__ import annotations

import ast
import copy
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.brian2_script import TRUNC_NORMAL_CPP, brian2_script, poisson_input_count
from bench.translate_common import UnsupportedCircuitError
from brainsim.circuit import Circuit, load_circuit, parse_circuit


def _script(circuit: Circuit) -> str:
    text = brian2_script(circuit, "circuit.yaml")
    ast.parse(text)
    return text


def _changed(circuit: Circuit, change: dict[str, Any]) -> Circuit:
    document = copy.deepcopy(dict(circuit.document))
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = document
        for parent in parents:
            node = node[parent]
        node[key] = value
    return parse_circuit(document)


def test_lif_exponential_equations(microcircuit: Circuit) -> None:
    text = _script(microcircuit)
    equations = (
        "dv/dt = ((-65.0 * mV) - v) / (10.0 * ms) + (I_syn_ex + I_syn_in) / (250.0 * pF) "
        ": volt (unless refractory)\\n"
        "dI_syn_ex/dt = -I_syn_ex / (0.5 * ms) : amp\\n"
        "dI_syn_in/dt = -I_syn_in / (0.5 * ms) : amp"
    )
    assert equations in text
    assert "threshold='v >= (-50.0 * mV)', reset='v = (-65.0 * mV)'" in text
    assert "refractory='(2.0 * ms)', method=\"exact\"" in text


def test_exponential_synapses_keep_their_delay_and_sign(microcircuit: Circuit) -> None:
    text = _script(microcircuit)
    assert "on_pre='I_syn_ex_post += w'" in text
    assert "on_pre='I_syn_in_post += w'" in text
    assert "proj_L23E_to_L23E.w = '(trunc_normal(87.8, 8.78, 0.0, inf, rand()) * pA)'" in text
    assert "proj_L23E_to_L23E.delay = '(trunc_normal(1.5, 0.75, 0.1, inf, rand())) * ms'" in text
    assert "trunc_normal(-351.2, 35.12, -inf, 0.0, rand())" in text


def test_fixed_total_number_splits_over_targets(microcircuit: Circuit) -> None:
    text = _script(microcircuit)
    assert "count_L23E_to_L23E : integer (constant)" in text
    assert (
        "groups['L23E'].count_L23E_to_L23E = rng.multinomial(454998, np.full(207, 1.0 / 207))"
        in text
    )
    assert (
        "proj_L23E_to_L23E.connect(i='int(rand() * N_pre) for _ in "
        "range(count_L23E_to_L23E_post)')" in text
    )


def test_poisson_input_matches_rate_and_weight(microcircuit: Circuit) -> None:
    text = _script(microcircuit)
    count = poisson_input_count(1600 * 8.0, 0.1)
    assert count == 1280
    assert f"b2.PoissonInput(groups['L23E'], 'I_syn_ex', {count}, 10.0 * b2.Hz" in text
    assert "weight='87.8 * pA'" in text


def test_brunel_delta_synapses_skip_refractory_targets_and_shift_delay(brunel: Circuit) -> None:
    text = _script(brunel)
    assert "dv/dt = ((0.0 * mV) - v) / (20.0 * ms) : volt (unless refractory)" in text
    assert "on_pre='v_post += (-0.5 * mV) * int(not_refractory_post)'" in text
    # Delta synapses act within the arrival step in NEST and brainsim: Brian2 gets d - dt.
    assert "delay=(1.5 - 0.1) * b2.ms" in text
    assert "proj_EE.connect(i='int(rand() * N_pre) for _ in range(1000)')" in text
    assert "proj_IE.connect(i='int(rand() * N_pre) for _ in range(250)')" in text
    assert "weight='0.1 * mV * int(not_refractory)'" in text
    assert "b2.SpikeMonitor(groups['E'], name=\"spikes_E\")" in text


@pytest.mark.parametrize(
    ("connectivity", "generator"),
    [
        (
            {"rule": "fixed_indegree", "indegree": 10, "allow_autapses": False},
            "i='(j + 1 + int(rand() * (N_pre - 1))) % N_pre for _ in range(10)'",
        ),
        (
            {"rule": "fixed_indegree", "indegree": 10, "allow_multapses": False},
            "i='k for k in sample(N_pre, size=10)'",
        ),
        (
            {
                "rule": "fixed_indegree",
                "indegree": 10,
                "allow_multapses": False,
                "allow_autapses": False,
            },
            "i='k + int(k >= j) for k in sample(N_pre - 1, size=10)'",
        ),
        (
            {"rule": "fixed_outdegree", "outdegree": 7},
            "j='int(rand() * N_post) for _ in range(7)'",
        ),
        ({"rule": "pairwise_bernoulli", "p": 0.1}, "p=0.1"),
        ({"rule": "all_to_all", "allow_autapses": False}, 'condition="i != j"'),
        ({"rule": "one_to_one"}, 'j="i"'),
    ],
)
def test_connection_rules(brunel: Circuit, connectivity: dict[str, Any], generator: str) -> None:
    changed = _changed(brunel, {"projections.EE.connectivity": connectivity})
    assert f"proj_EE.connect({generator})" in _script(changed)


def test_izhikevich_published_update(izhikevich: Circuit) -> None:
    text = _script(izhikevich)
    update = (
        "'i_total = i_pulse + (0.0 + 5.0 * randn())\\n"
        "v += 0.5 * (0.04 * v**2 + 5 * v + 140 - u + i_total)\\n"
        "v += 0.5 * (0.04 * v**2 + 5 * v + 140 - u + i_total)\\n"
        "u += 1.0 * 0.02 * (0.2 * v - u)\\n"
        "i_pulse = 0', when='groups'"
    )
    assert update in text
    assert "reset='v = c\\nu += d'" in text
    assert "on_pre='i_pulse_post += w', delay=(1.0 - 1.0) * b2.ms" in text
    assert "proj_from_inhibitory.w = '(-1.0 + 1.0 * rand())'" in text


def test_izhikevich_initial_u_is_b_times_the_initial_v(izhikevich: Circuit) -> None:
    text = _script(izhikevich)
    assert "groups['excitatory'].u = -13.0" in text  # the circuit's own u wins
    changed = _changed(
        izhikevich,
        {
            "populations.excitatory.initial": {"v_mV": -70.0},
            "populations.inhibitory.initial": {"v_mV": {"uniform": {"low": -70.0, "high": -60.0}}},
        },
    )
    text = _script(changed)
    assert "groups['excitatory'].v = -70.0\n" in text
    assert "groups['excitatory'].u = -14.0\n" in text
    assert "vals['u'] = np.broadcast_to(vals['b'] * vals['v_mV'], (200,)).copy()" in text
    assert "groups['inhibitory'].u = vals['u']\n" in text


def test_izhikevich_euler_update(izhikevich: Circuit) -> None:
    changed = _changed(izhikevich, {"populations.inhibitory.params.integration": "euler"})
    text = _script(changed)
    assert "v_old = v\\nv += 1.0 * (0.04 * v**2" in text
    assert "u += 1.0 * a * (b * v_old - u)" in text


def test_make_parallelism_is_bounded(brunel: Circuit) -> None:
    assert 'extra_make_args_unix = [f"-j{args.threads}"]' in _script(brunel)


def test_construction_ends_where_the_run_loop_starts(brunel: Circuit) -> None:
    """build_end goes just before ``network.run`` in main.cpp, after the before-run code that
    prepares the spike queues; run_end just after it."""
    text = _script(brunel)
    order = [
        text.index('b2.device.insert_code("main", clock_code("build_start"))'),
        text.index('b2.device.insert_code("before_network_run", clock_code("build_end"))'),
        text.index('b2.device.insert_code("after_network_run", clock_code("run_end"))'),
        text.index("network.run(1000.0 * b2.ms)"),  # the slots are read when run is called
    ]
    assert order == sorted(order)
    assert 'insert_code("main", clock_code("build_end"))' not in text
    assert '"build_s": times["build_end"] - times["build_start"],' in text
    assert '"sim_s": times["run_end"] - times["build_end"],' in text


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"stimuli.external.start_ms": 100.0}, "stimuli.external"),
        ({"stimuli.external.rate_hz": {"uniform": {"low": 1.0, "high": 2.0}}}, "rate_hz"),
        (
            {"stimuli.external.targets": [{"population": "E", "node_ids": [1, 5]}]},
            "targets[0]",
        ),
        (
            {
                "projections.EE.connectivity": {
                    "rule": "fixed_total_number",
                    "n": 100,
                    "allow_multapses": False,
                }
            },
            "projections.EE.connectivity",
        ),
    ],
)
def test_unsupported_features_raise_with_their_path(
    brunel: Circuit, change: dict[str, Any], path: str
) -> None:
    with pytest.raises(UnsupportedCircuitError, match=path.replace("[", r"\[")):
        brian2_script(_changed(brunel, change), "circuit.yaml")


def test_poisson_input_count_keeps_probability_small() -> None:
    assert poisson_input_count(20_000.0, 0.1) == 2000
    assert poisson_input_count(5.0, 0.1) == 1
    assert 20_000.0 * 0.1e-3 / poisson_input_count(20_000.0, 0.1) <= 0.001


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")
def test_trunc_normal_cpp_matches_the_truncated_normal(tmp_path: Path) -> None:
    program = tmp_path / "check.cpp"
    program.write_text(
        "#include <cmath>\n#include <cstdio>\n"
        + TRUNC_NORMAL_CPP
        + """
int main() {
    const double u[] = {0.0, 0.001, 0.1, 0.5, 0.9, 0.999};
    for (double x : u) std::printf("%.12f %.12f %.12f\\n",
        trunc_normal(0.0, 1.0, -INFINITY, INFINITY, x),
        trunc_normal(1.5, 0.75, 0.1, INFINITY, x),
        trunc_normal(-351.2, 35.12, -INFINITY, 0.0, x));
}
""",
        encoding="utf-8",
    )
    binary = tmp_path / "check"
    subprocess.run(["g++", "-O1", "-o", str(binary), str(program)], check=True, timeout=120)
    lines = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    rows = [[float(v) for v in line.split()] for line in lines.splitlines()]
    normal = statistics.NormalDist()
    low = normal.cdf((0.1 - 1.5) / 0.75)
    for u, (plain, bounded, negative) in zip([0.0, 0.001, 0.1, 0.5, 0.9, 0.999], rows, strict=True):
        if u > 0:
            assert plain == pytest.approx(normal.inv_cdf(u), abs=1e-9)
        expected = 1.5 + 0.75 * normal.inv_cdf(low + u * (1 - low))
        assert bounded == pytest.approx(expected, abs=1e-8)
        assert bounded >= 0.1
        assert negative <= 0.0


def test_plastic_projections_are_refused(root: Path) -> None:
    """Brian2 is skipped for plastic circuits (the suite notes it) rather than run another
    rule than NEST's."""
    circuit = load_circuit(root / "circuits" / "brunel_stdp.yaml")
    with pytest.raises(UnsupportedCircuitError, match=r"Brian2: projections\.EE\.synapse: plastic"):
        brian2_script(circuit, "circuit.yaml")
