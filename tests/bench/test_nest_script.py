"""The generated NEST scripts take their model, parameters and rules from the circuit."""

from __future__ import annotations

import ast
import copy
import runpy
import sys
import time
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import numpy as np
import pytest

from bench.nest_script import WEIGHT_SAMPLE, nest_script, weight_grid, weight_stride
from bench.runners import parse_script_result
from bench.translate_common import UnsupportedCircuitError
from brainsim.circuit import Circuit, load_circuit, parse_circuit


def _script(circuit: Circuit) -> str:
    text = nest_script(circuit, "circuit.yaml")
    ast.parse(text)  # a syntax error would only show on the reference machine
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


def test_brunel_models_parameters_and_rules(brunel: Circuit) -> None:
    text = _script(brunel)
    assert text.count('nest.Create("iaf_psc_delta", 10000,') == 1
    assert text.count('nest.Create("iaf_psc_delta", 2500,') == 1
    for param in ('"tau_m": 20.0', '"V_th": 20.0', '"V_reset": 10.0', '"E_L": 0.0', '"t_ref": 2.0'):
        assert param in text
    assert '"V_m": 0.0' in text
    rule = (
        '{"rule": "fixed_indegree", "indegree": 1000, "allow_autapses": True, '
        '"allow_multapses": True}'
    )
    assert f"nest.Connect(pops['E'], pops['E'], {rule}, " in text
    assert '"weight": -0.5, "delay": 1.5' in text
    assert 'nest.Create("poisson_generator", params={"rate": 20000.0' in text
    assert text.count('nest.Create("spike_recorder")') == 2
    assert '"resolution": 0.1' in text
    assert '"local_num_threads": args.threads' in text


def test_network_synapses_are_counted_before_devices(brunel: Circuit) -> None:
    text = _script(brunel)
    counted = text.index('n_synapses = nest.GetKernelStatus("num_connections")')
    assert text.rindex("nest.Connect(pops['I'], pops['I']") < counted
    assert counted < text.index("poisson_generator")


def test_microcircuit_distributions_and_total_number(microcircuit: Circuit) -> None:
    text = _script(microcircuit)
    assert 'nest.Create("iaf_psc_exp", 207,' in text
    assert '"tau_syn_ex": 0.5' in text
    assert '"rule": "fixed_total_number", "N": 454998' in text
    assert (
        "nest.math.redraw(nest.random.normal(mean=87.8, std=8.78), min=0.0, max=float('inf'))"
        in text
    )
    assert "nest.math.redraw(nest.random.normal(mean=1.5, std=0.75), min=0.1," in text
    assert "max=0.0)" in text  # inhibitory weights bounded above by 0
    # The initial voltage is drawn per neuron and set on the population.
    assert "vals['v_mV'] = draw(rng, 207," in text
    assert "pops['L23E'].set({\"V_m\": vals['v_mV']})" in text


def test_izhikevich_published_scheme_and_pulse_weights(izhikevich: Circuit) -> None:
    text = _script(izhikevich)
    assert '"consistent_integration": False' in text
    assert '"V_th": 30.0' in text
    assert "pops['excitatory'].set({\"c\": vals['c_mV'], \"d\": vals['d']})" in text
    # dt = 1 ms: a current pulse of w for one step is a jump of w * 1 ms in v.
    assert '"weight": nest.random.uniform(min=0.0, max=0.5), "delay": 1.0' in text
    assert '"rule": "all_to_all", "allow_autapses": True' in text
    assert '"noise_generator", params={"mean": 0.0, "std": 5.0, "dt": 1.0' in text


def test_izhikevich_initial_u_is_b_times_the_initial_v(izhikevich: Circuit) -> None:
    # The circuit's own u wins: -13 (= 0.2 * -65) and the inhibitory expression.
    text = _script(izhikevich)
    assert '"V_m": -65.0, "U_m": -13.0' in text
    assert "vals['u'] = np.broadcast_to(np.asarray((0.25 - 0.05 * rv['r']) * -65" in text
    # Unset, U_m is b * V_m per neuron (NEST's own default is b * V_m only for its default V_m).
    changed = _changed(
        izhikevich,
        {
            "populations.excitatory.initial": {"v_mV": -70.0},
            "populations.inhibitory.initial": {"v_mV": {"uniform": {"low": -70.0, "high": -60.0}}},
        },
    )
    text = _script(changed)
    assert '"V_m": -70.0, "U_m": -14.0' in text
    assert "vals['u'] = np.broadcast_to(vals['b'] * vals['v_mV'], (200,)).copy()" in text
    assert "\"V_m\": vals['v_mV'], \"U_m\": vals['u']})" in text


def test_euler_izhikevich_uses_consistent_integration(izhikevich: Circuit) -> None:
    changed = _changed(izhikevich, {"populations.excitatory.params.integration": "euler"})
    assert '"consistent_integration": True' in _script(changed)


def test_clip_bounds_use_min_and_max(microcircuit: Circuit) -> None:
    changed = _changed(
        microcircuit,
        {
            "projections.L23E_to_L23E.weight": {
                "normal": {"mean": 87.8, "std": 8.78, "low": 0.0, "high": 100.0, "bound": "clip"}
            }
        },
    )
    assert (
        "nest.math.min(nest.math.max(nest.random.normal(mean=87.8, std=8.78), 0.0), 100.0)"
        in _script(changed)
    )


def test_partial_stimulus_targets_slice_the_population(brunel: Circuit) -> None:
    changed = _changed(
        brunel,
        {"stimuli.external.targets": [{"population": "E", "node_ids": {"first": 100}}, "I"]},
    )
    text = _script(changed)
    assert "nest.Connect(stimulus, pops['E'][0:100:1]," in text
    assert "nest.Connect(stimulus, pops['I']," in text


def test_state_recordings_are_refused(brunel: Circuit) -> None:
    changed = _changed(brunel, {"recordings.state": [{"population": "E", "variables": ["v"]}]})
    with pytest.raises(UnsupportedCircuitError, match=r"recordings\.state"):
        nest_script(changed, "circuit.yaml")


def test_initial_synaptic_current_is_refused(microcircuit: Circuit) -> None:
    changed = _changed(
        microcircuit, {"populations.L23E.initial": {"v_mV": -58.0, "i_syn_ex_pA": 5.0}}
    )
    with pytest.raises(UnsupportedCircuitError, match=r"populations\.L23E\.initial\.i_syn_ex_pA"):
        nest_script(changed, "circuit.yaml")


def test_large_networks_split_synapse_models_at_run_time(microcircuit: Circuit) -> None:
    text = _script(microcircuit)
    assert "NEST_CONNECTION_LIMIT = 134217726" in text
    assert "split_models = 2988807 > 0.9 * NEST_CONNECTION_LIMIT * args.threads" in text
    assert '"synapse_model": synapse_model("static_L23E_to_L23E", split_models)' in text
    assert 'nest.CopyModel("static_synapse", name)' in text


def test_a_presimulation_of_one_min_delay_ends_construction(brunel: Circuit) -> None:
    text = _script(brunel)
    assert text.count("nest.Simulate(") == 2
    order = [
        text.rindex("nest.Connect(pops['I'], recorders['I'])"),
        text.index('presim_ms = min(nest.GetKernelStatus("min_delay"), 1000.0)'),
        text.index("nest.Simulate(presim_ms)"),
        text.index("build_s = time.perf_counter() - start"),
        text.rindex("start = time.perf_counter()"),
        text.index("nest.Simulate(1000.0 - presim_ms)"),
        text.index("sim_s = time.perf_counter() - start"),
    ]
    assert order == sorted(order)
    assert '"presim_ms": presim_ms,' in text
    assert '"n_spikes_presim": n_spikes_presim,' in text


class _FakeNest:
    """Enough of NEST's interface (its CamelCase names) for a generated script: a clock that a
    ``Simulate`` of ``t`` ms advances by ``t`` seconds, and recorders that count one spike per
    simulated ms."""

    __version__ = "3.10.0"

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.simulated: list[float] = []
        self.any = MagicMock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.any, name)

    def Create(self, model: str, *args: Any, **kwargs: Any) -> Any:
        if model != "spike_recorder":
            return MagicMock()
        recorder = MagicMock()
        recorder.get.side_effect = lambda key: int(sum(self.simulated))
        return recorder

    def GetKernelStatus(self, key: str) -> float:
        found = {"num_connections": 15_625_000, "min_delay": 1.0}
        return found[key] if key in found else sum(self.simulated)

    def Simulate(self, t_ms: float) -> None:
        self.simulated.append(t_ms)
        self.clock[0] += t_ms


def test_the_presimulation_is_timed_as_construction_and_the_duration_is_kept(
    brunel: Circuit,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = [0.0]
    nest = _FakeNest(clock)
    script = tmp_path / "brunel.nest.py"
    script.write_text(_script(brunel), encoding="utf-8")
    monkeypatch.setitem(sys.modules, "nest", nest)
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(sys, "argv", [str(script), "--threads", "2"])
    runpy.run_path(str(script), run_name="__main__")
    # One slice of NEST's min_delay, then the rest: 1000 ms in all.
    assert nest.simulated == [1.0, 999.0]
    found = parse_script_result(capsys.readouterr().out)
    assert (found["build_s"], found["sim_s"], found["presim_ms"]) == (1.0, 999.0, 1.0)
    assert found["n_synapses"] == 15_625_000
    # The recorders count over both calls; the presimulation's spikes are reported apart.
    assert found["n_spikes"] == {"E": 1000, "I": 1000}
    assert found["n_spikes_presim"] == {"E": 1, "I": 1}


@pytest.fixture(scope="module")
def brunel_stdp(root: Path) -> Circuit:
    return load_circuit(root / "circuits" / "brunel_stdp.yaml")


@pytest.fixture(scope="module")
def hpc(root: Path) -> Circuit:
    return load_circuit(root / "circuits" / "hpc_benchmark.yaml", parameters={"scale": 0.02})


def test_stdp_copies_stdp_synapse_per_projection_with_nest_names(brunel_stdp: Circuit) -> None:
    text = _script(brunel_stdp)
    copy_model = (
        'nest.CopyModel("stdp_synapse", "EE_stdp_synapse", {"tau_plus": 20.0, "lambda": 0.01, '
        '"alpha": 1.0, "mu_plus": 1.0, "mu_minus": 1.0, "Wmax": 0.2})'
    )
    assert copy_model in text
    connect = (
        'nest.Connect(pops[\'E\'], pops[\'E\'], {"rule": "fixed_indegree", "indegree": 1000, '
        '"allow_autapses": True, "allow_multapses": True}, {"synapse_model": '
        '\'EE_stdp_synapse\', "weight": 0.1, "delay": 1.5})'
    )
    assert connect in text
    assert text.index(copy_model) < text.index(connect)
    # The static projections keep static_synapse (or their own copy of it).
    assert '"synapse_model": synapse_model("static_EI", split_models)' in text
    assert "static_EE" not in text
    # tau_minus is the target neurons' parameter in NEST, set before anything is connected.
    tau_minus = "pops['E'].set({\"tau_minus\": 20.0})"
    assert text.count(tau_minus) == 1
    assert "tau_minus" not in text[text.index(copy_model) :].split("\n", 1)[0]
    assert text.index("pops['I'] = nest.Create(") < text.index(tau_minus)
    assert text.index(tau_minus) < text.index("nest.Connect(")
    assert "pops['I'].set({\"tau_minus\"" not in text  # I is no plastic target


def test_power_law_stdp_is_a_copy_of_the_hom_model_with_its_parameters(hpc: Circuit) -> None:
    text = _script(hpc)
    assert (
        'nest.CopyModel("stdp_pl_synapse_hom", "EE_stdp_pl_synapse_hom", {"tau_plus": 15.0, '
        '"lambda": 0.1, "alpha": 0.0513, "mu": 0.4})' in text
    )
    assert '"synapse_model": \'EE_stdp_pl_synapse_hom\', "weight": 45.609600316540956, ' in text
    assert "pops['E'].set({\"tau_minus\": 30.0})" in text
    assert '"indegree": 9000, "allow_autapses": False, "allow_multapses": True' in text


def test_final_weights_are_read_after_the_timed_simulation(hpc: Circuit) -> None:
    text = _script(hpc)
    # 180 E neurons with 9,000 x 180 plastic synapses: every second source to every second
    # target is 405,000 synapses, every third 180,000 (fewer than WEIGHT_SAMPLE); E onto E:
    # the targets' grid is shifted by one, so it holds no autapses.
    read = "weights['EE'] = plastic_weights(pops['E'], pops['E'], 'EE_stdp_pl_synapse_hom', 2, 1)"
    assert read in text
    assert text.index("sim_s = time.perf_counter() - start") < text.index(read)
    assert text.index(read) < text.index("weights_s = time.perf_counter() - weights_clock")
    assert '"weights": weights,' in text
    assert '"weights_s": weights_s,' in text


def test_one_population_with_two_tau_minus_is_refused(brunel_stdp: Circuit) -> None:
    inhibitory = {"model": "stdp", "w_max": -1.0, "tau_minus_ms": 30.0}
    changed = _changed(brunel_stdp, {"projections.IE.synapse": inhibitory})
    with pytest.raises(UnsupportedCircuitError, match=r"projections\.IE\.synapse\.tau_minus_ms"):
        nest_script(changed, "circuit.yaml")
    # The same tau_minus from both is one setting of the population.
    changed = _changed(
        brunel_stdp, {"projections.IE.synapse": {**inhibitory, "tau_minus_ms": 20.0}}
    )
    text = _script(changed)
    assert text.count("pops['E'].set({\"tau_minus\": 20.0})") == 1
    assert '"IE_stdp_synapse", {"tau_plus": 20.0, "lambda": 0.01, "alpha": 1.0' in text
    assert '"Wmax": -1.0' in text


def test_weight_snapshots_during_the_run_are_refused(brunel_stdp: Circuit) -> None:
    changed = _changed(
        brunel_stdp, {"recordings.weights": [{"projection": "EE", "interval_ms": 10.0}]}
    )
    with pytest.raises(UnsupportedCircuitError, match=r"recordings\.weights\[0\]"):
        nest_script(changed, "circuit.yaml")
    # Only the final weights: what the script reports anyway.
    _script(_changed(brunel_stdp, {"recordings.weights": [{"projection": "EE"}]}))


def test_plastic_current_pulses_need_a_step_of_one_ms(izhikevich: Circuit) -> None:
    stdp = {"model": "stdp", "w_max": 1.0}
    _script(
        _changed(izhikevich, {"projections.from_excitatory.synapse": stdp})
    )  # dt 1 ms: the same weight
    changed = _changed(
        izhikevich, {"projections.from_excitatory.synapse": stdp, "simulation.dt_ms": 0.5}
    )
    with pytest.raises(UnsupportedCircuitError, match=r"projections\.from_excitatory\.synapse"):
        nest_script(changed, "circuit.yaml")


class _Nodes:
    """A NodeCollection of ``ids``: length, slices, ``set``."""

    def __init__(self, ids: range) -> None:
        self.ids = ids
        self.settings: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: slice) -> _Nodes:
        return _Nodes(self.ids[index])

    def set(self, params: dict[str, Any]) -> None:
        self.settings.append(params)


class _Connections:
    """A SynapseCollection: length, slices, ``get("weight")`` (each call recorded)."""

    def __init__(self, weights: list[float], reads: list[int]) -> None:
        self.weights = weights
        self.reads = reads

    def __len__(self) -> int:
        return len(self.weights)

    def __getitem__(self, index: slice) -> _Connections:
        return _Connections(self.weights[index], self.reads)

    def get(self, key: str) -> Any:
        assert key == "weight"
        self.reads.append(len(self.weights))
        # NEST returns a plain number for a single connection.
        return self.weights[0] if len(self.weights) == 1 else list(self.weights)


class _PlasticNest(_FakeNest):
    """The fake NEST with populations of real sizes and one connection from every source to
    every target, of weight source id / 10 + target id / 100."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__(clock)
        self.next_id = 1
        self.populations: list[_Nodes] = []
        self.copies: list[tuple[Any, ...]] = []
        self.queries: list[tuple[list[int], list[int], str]] = []
        self.reads: list[int] = []

    def Create(self, model: str, *args: Any, **kwargs: Any) -> Any:
        if model == "spike_recorder":
            return super().Create(model)
        n = args[0] if args and isinstance(args[0], int) else 1
        nodes = _Nodes(range(self.next_id, self.next_id + n))
        self.next_id += n
        self.populations.append(nodes)
        return nodes

    def CopyModel(self, *args: Any) -> None:
        self.copies.append(args)

    def GetConnections(self, source: _Nodes, target: _Nodes, synapse_model: str) -> _Connections:
        self.queries.append((list(source.ids), list(target.ids), synapse_model))
        weights = [i / 10 + j / 100 for i in source.ids for j in target.ids]
        return _Connections(weights, self.reads)

    def GetDefaults(self, model: str, key: str) -> int:
        assert key == "num_connections"
        return 21


def test_the_script_reports_the_final_weights_of_each_plastic_projection(
    brunel_stdp: Circuit,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    small = _changed(
        brunel_stdp,
        {"populations.E.size": 7, "populations.I.size": 2, "projections.EE.connectivity": {
            "rule": "fixed_indegree", "indegree": 3}},
    )  # fmt: skip
    clock = [0.0]
    nest = _PlasticNest(clock)
    script = tmp_path / "small.nest.py"
    text = _script(small)
    # 21 synapses: all read (stride 1). Here every second source and target, in blocks of 3.
    text = text.replace("'EE_stdp_synapse', 1, 0)", "'EE_stdp_synapse', 2, 0)")
    text = text.replace("WEIGHT_READ_BLOCK = 10000", "WEIGHT_READ_BLOCK = 3")
    script.write_text(text, encoding="utf-8")
    monkeypatch.setitem(sys.modules, "nest", nest)
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(sys, "argv", [str(script), "--threads", "2"])
    runpy.run_path(str(script), run_name="__main__")
    assert nest.copies[0][:2] == ("stdp_synapse", "EE_stdp_synapse")
    assert nest.populations[0].settings[-1] == {"tau_minus": 20.0}
    every_second = [1, 3, 5, 7]  # E's ids are 1..7
    assert nest.queries == [(every_second, every_second, "EE_stdp_synapse")]
    assert nest.reads == [3, 3, 3, 3, 3, 1]  # 16 connections, 3 at a time
    found = parse_script_result(capsys.readouterr().out)
    weights = np.array([i / 10 + j / 100 for i in every_second for j in every_second])
    assert found["weights"]["EE"]["count"] == 21  # the model's num_connections
    assert found["weights"]["EE"]["sampled"] == 16
    assert found["weights"]["EE"]["mean"] == pytest.approx(weights.mean())
    assert found["weights"]["EE"]["sd"] == pytest.approx(weights.std())
    assert found["weights_s"] == 0.0


def test_large_projections_are_sampled_on_a_grid_of_sources_and_targets() -> None:
    assert weight_stride(WEIGHT_SAMPLE) == 1
    assert weight_stride(3 * WEIGHT_SAMPLE) == 1
    assert weight_stride(10_000_000) == 7  # 204,082 synapses read of brunel_stdp's 1e7
    assert weight_stride(81_000_000) == 20  # 202,500 of hpc_benchmark's 8.1e7
    for n in (10_000_000, 81_000_000, 8_100_000, 4 * WEIGHT_SAMPLE):
        k = weight_stride(n)
        assert n / k**2 >= WEIGHT_SAMPLE > n / (k + 1) ** 2


def test_the_weight_grid_onto_the_source_population_holds_no_autapses(
    brunel_stdp: Circuit,
) -> None:
    assert weight_grid(brunel_stdp.projections["EE"], brunel_stdp) == (7, 3)
    inhibitory = {"model": "stdp", "w_max": -1.0}
    changed = _changed(brunel_stdp, {"projections.IE.synapse": inhibitory})
    assert weight_grid(changed.projections["IE"], changed) == (3, 0)  # I onto E: 2.5e6
    assert "plastic_weights(pops['I'], pops['E'], 'IE_stdp_synapse', 3, 0)" in _script(changed)
