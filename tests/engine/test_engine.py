"""Whole-engine behaviour with answers known in closed form (one rank, in-process)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import brainsim
from brainsim.circuit import load_circuit, parse_circuit
from brainsim.engine import RunConfig, build_network, simulate
from brainsim.engine.connectivity import DeliveryPlan, count_projection
from brainsim.engine.run import run_info
from brainsim.engine.simulator import load_step_loop
from brainsim.exchange import LocalCommunicator, LocalExchanger
from brainsim.kernels.delivery import (
    DELAY_CONSTANT,
    DELAY_DENSE,
    DELAY_NARROW,
    DELAY_NARROW_BYTE,
    DELAY_NARROW_SEPARATE,
    DELAY_PACKED,
    META_COLUMNS,
)
from brainsim.kernels.loop import run_intervals
from brainsim.recording import ZarrRecorder

DT = 0.1
LIF = {"tau_m_ms": 10.0, "c_m_pF": 250.0, "v_th_mV": 15.0, "v_reset_mV": 0.0, "e_l_mV": 0.0,
       "t_ref_ms": 2.0, "synapse": "delta"}  # fmt: skip


def _doc(**sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "brainsim/v1",
        "name": "engine-test",
        "simulation": {"dt_ms": DT, "duration_ms": 100.0, "seed": 5},
    }
    doc.update(sections)
    return doc


def test_dc_driven_lif_fires_at_the_analytic_rate(tmp_path: Path) -> None:
    currents = [400.0, 600.0, 1000.0]
    doc = _doc(
        populations={"N": {"size": 3, "model": "lif", "params": LIF}},
        stimuli={
            f"dc{i}": {
                "type": "dc",
                "targets": [{"population": "N", "node_ids": [i]}],
                "amplitude_pA": amp,
            }
            for i, amp in enumerate(currents)
        },
        recordings={"spikes": ["N"]},
    )
    doc["simulation"]["duration_ms"] = 500.0
    rec = brainsim.run(doc, tmp_path / "dc.zarr")
    spikes = rec.spikes("N")
    r_mohm = 10.0 / 250.0 * 1000.0  # tau_m / C_m in MOhm (mV per nA)
    for i, amp in enumerate(currents):
        v_inf = r_mohm * amp / 1000.0
        isi = 2.0 + 10.0 * math.log(v_inf / (v_inf - 15.0))
        t = spikes.times_ms[spikes.node_ids == i]
        intervals = np.diff(t)
        assert intervals.size > 10
        # Spikes are on the grid: every interval is the analytic one rounded up to a step.
        assert np.all(intervals >= isi - 1e-9), (amp, intervals, isi)
        assert np.all(intervals <= isi + DT + 1e-9), (amp, intervals, isi)


def test_spike_arrival_times_follow_the_grid_convention(tmp_path: Path) -> None:
    # A spike train at 10.0 ms (delay 0.1) makes A cross threshold in step 100, so A spikes at
    # 10.1 ms; B feels A's spike 1.5 ms later, at 11.6 ms, as a 2 mV jump.
    doc = _doc(
        populations={
            "A": {"size": 1, "model": "lif", "params": {**LIF, "v_th_mV": 1.0}},
            "B": {"size": 1, "model": "lif", "params": {**LIF, "tau_m_ms": 1.0e9}},
        },
        stimuli={"kick": {"type": "spike_source_array", "targets": ["A"],
                          "spike_times_ms": [10.0], "weight": 5.0, "delay_ms": 0.1}},
        projections={"AB": {"source": "A", "target": "B", "connectivity": {"rule": "one_to_one"},
                            "weight": 2.0, "delay_ms": 1.5}},
        recordings={"spikes": ["A", "B"],
                    "state": [{"population": "B", "variables": ["v"], "node_ids": [0],
                               "interval_ms": DT}]},
    )  # fmt: skip
    doc["simulation"]["duration_ms"] = 20.0
    rec = brainsim.run(doc, tmp_path / "arrival.zarr")
    assert list(rec.spikes("A").times_ms) == [pytest.approx(10.1)]
    v = rec.report("B", "v")
    times = v["time"].values
    trace = v.values[:, 0]
    assert times[0] == pytest.approx(DT)
    before = trace[times < 11.6 - 1e-9]
    after = trace[times >= 11.6 - 1e-9]
    assert np.all(before == 0.0)
    assert after[0] == pytest.approx(2.0, abs=1e-6)


def _two_pop_doc(weight: Any, delay: Any) -> dict[str, Any]:
    return _doc(
        populations={"E": {"size": 300, "model": "lif", "params": LIF},
                     "I": {"size": 100, "model": "lif", "params": LIF}},
        projections={"EI": {"source": "E", "target": "I",
                            "connectivity": {"rule": "fixed_indegree", "indegree": 50},
                            "weight": weight, "delay_ms": delay}},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("weight", "delay", "bytes_per_synapse"),
    [
        (0.5, 1.0, 2),
        ({"normal": {"mean": 0.5, "std": 0.1}}, 1.0, 6),
        ({"normal": {"mean": 0.5, "std": 0.1}}, {"uniform": {"low": 0.5, "high": 3.0}}, 7),
        (0.5, {"uniform": {"low": 0.5, "high": 3.0}}, 3),
    ],
)
def test_synapse_storage_per_synapse(weight: Any, delay: Any, bytes_per_synapse: int) -> None:
    network = build_network(parse_circuit(_two_pop_doc(weight, delay)), LocalCommunicator())
    plan = network.plan
    assert plan.n_synapses == 100 * 50
    assert (plan.nbytes - plan.indptrs.nbytes) / 5000 == bytes_per_synapse
    # Targets are indices within I, whose columns start after E's 300; each target receives
    # exactly its in-degree.
    assert plan.meta[0, META_COLUMNS.index("column_offset")] == 300
    mode = plan.meta[0, META_COLUMNS.index("delay_mode")]
    targets = plan.targets16 if mode in (DELAY_NARROW, DELAY_NARROW_BYTE) else plan.targets
    assert np.array_equal(np.bincount(targets), np.full(100, 50))


@pytest.mark.parametrize(
    ("size", "delay", "mode", "stored"),
    [
        (65536, 1.0, DELAY_NARROW, "targets16"),
        (65537, 1.0, DELAY_CONSTANT, "targets"),
        (65536, {"uniform": {"low": 0.5, "high": 3.0}}, DELAY_NARROW_BYTE, "targets16"),
        (65537, {"uniform": {"low": 0.5, "high": 3.0}}, DELAY_PACKED, "targets"),
        (65536, {"uniform": {"low": 20.0, "high": 40.0}}, DELAY_NARROW_SEPARATE, "targets16"),
    ],
)
def test_targets_are_16_bit_up_to_65536_local_targets(
    size: int, delay: Any, mode: int, stored: str
) -> None:
    doc = _doc(
        populations={"S": {"size": 10, "model": "lif", "params": LIF},
                     "T": {"size": size, "model": "lif", "params": LIF}},
        projections={"ST": {"source": "S", "target": "T",
                            "connectivity": {"rule": "fixed_indegree", "indegree": 1},
                            "weight": 0.5, "delay_ms": delay}},
    )  # fmt: skip
    plan = build_network(parse_circuit(doc), LocalCommunicator()).plan
    assert plan.meta[0, META_COLUMNS.index("delay_mode")] == mode
    targets = getattr(plan, stored)
    if mode == DELAY_PACKED:
        assert (targets >> 24).min() >= 5  # the delay steps, packed above the target
        targets = targets & 0xFFFFFF
    # Delays of one byte each, or two above 255 steps.
    assert plan.delays8.shape[0] == (size if mode == DELAY_NARROW_BYTE else 0)
    assert plan.delays.shape[0] == (size if mode == DELAY_NARROW_SEPARATE else 0)
    assert plan.n_synapses == targets.shape[0] == size
    # Every target, the last one included, is stored exactly once.
    assert np.array_equal(np.sort(targets), np.arange(size))


@pytest.mark.mpi
def test_python_api_on_one_and_two_ranks_agree(tmp_path: Path) -> None:
    circuit = Path(__file__).resolve().parents[2] / "circuits" / "tiny.yaml"
    one = brainsim.run(circuit, tmp_path / "one.zarr")
    two = brainsim.run(circuit, tmp_path / "two.zarr", ranks=2)
    for pop in ("E", "I"):
        a, b = one.spikes(pop), two.spikes(pop)
        assert a.times_ms.size > 0
        assert np.array_equal(a.times_ms, b.times_ms)
        assert np.array_equal(a.node_ids, b.node_ids)
    assert two.provenance["n_ranks"] == 2
    # The synapses each rank built, summed: the same count whatever the rank count.
    built = build_network(load_circuit(circuit), LocalCommunicator()).n_synapses
    assert one.provenance["n_synapses_per_rank"] == [built]
    assert len(two.provenance["n_synapses_per_rank"]) == 2
    assert sum(two.provenance["n_synapses_per_rank"]) == two.provenance["n_synapses"] == built
    for store in (one, two):
        # The step loop's time, within the store's wall time and after construction.
        timing = store.provenance
        assert timing["sim_s"] > 0
        assert timing["build_s"] + timing["sim_s"] <= timing["wall_s"]


class _CountingRecorder(ZarrRecorder):
    """A real Zarr recorder that also remembers the simulated time of every flush."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flushed_at: list[float] = []

    def flush(self, simulated_ms: float) -> None:
        self.flushed_at.append(simulated_ms)
        super().flush(simulated_ms)


def _simulate(tmp_path: Path, config: RunConfig) -> tuple[str, list[float], dict[str, Any]]:
    circuit = load_circuit(Path(__file__).resolve().parents[2] / "circuits" / "tiny.yaml")
    comm = LocalCommunicator()
    recorder = _CountingRecorder(str(tmp_path / "c.zarr"), comm)
    recorder.open(run_info(circuit, 1))
    done = simulate(circuit, build_network(circuit, comm), comm, LocalExchanger(), recorder,
                    config)  # fmt: skip
    recorder.close(done.status, build_s=0.0, sim_s=done.sim_s)
    attrs = dict(zarr.open_group(str(tmp_path / "c.zarr"), mode="r").attrs["brainsim"])
    return done.status, recorder.flushed_at, attrs


def test_flushes_follow_the_simulated_bound_when_the_wall_clock_is_slow(tmp_path: Path) -> None:
    status, flushed, _ = _simulate(tmp_path, RunConfig(flush_interval_ms=30.0, flush_every_s=1e9))
    assert status == "complete"
    # Intervals are 1.5 ms (the delay); a flush comes once 30 ms have passed since the last.
    # The rest (to 100 ms) is written by close, after the step loop.
    assert flushed == [30.0, 60.0, 90.0]


def test_rank_zero_asks_for_flushes_by_the_wall_clock(tmp_path: Path) -> None:
    _, flushed, _ = _simulate(tmp_path, RunConfig(flush_interval_ms=1e9, flush_every_s=0.0))
    assert flushed == [pytest.approx(1.5 * i) for i in range(1, 67)]


def test_a_stop_request_ends_the_run_at_the_next_interval(tmp_path: Path) -> None:
    seen = {"ms": 0.0, "asked_at": -1.0}

    def progress(simulated_ms: float, _duration_ms: float) -> None:
        seen["ms"] = simulated_ms

    def stop_after_15_ms() -> bool:
        if seen["ms"] >= 15.0 and seen["asked_at"] < 0:
            seen["asked_at"] = seen["ms"]
        return seen["asked_at"] >= 0

    config = RunConfig(flush_interval_ms=1e9, flush_every_s=1e9, should_stop=stop_after_15_ms,
                       progress=progress)  # fmt: skip
    status, flushed, attrs = _simulate(tmp_path, config)
    assert status == "cancelled"
    # Intervals are 1.5 ms; the run stops after the interval that carried the request.
    assert flushed == [pytest.approx(seen["asked_at"] + 1.5)]
    assert attrs["status"] == "cancelled"
    assert attrs["simulated_ms"] == pytest.approx(seen["asked_at"] + 1.5)


def test_results_do_not_depend_on_how_the_loop_is_split_into_calls(tmp_path: Path) -> None:
    """One interval per call of the compiled loop, or as many as fit, give the same run."""
    spikes = []
    for name, call_s in (("one", 0.0), ("many", 10.0)):
        path = tmp_path / name
        path.mkdir()
        _simulate(path, RunConfig(flush_interval_ms=25.0, flush_every_s=1e9, call_s=call_s))
        group = zarr.open_group(str(path / "c.zarr"), mode="r")
        spikes.append({p: np.asarray(group[f"spikes/{p}/node_ids"]) for p in ("E", "I")})
        spikes[-1].update(
            {f"{p}t": np.asarray(group[f"spikes/{p}/timestamps"]) for p in ("E", "I")}
        )
    assert spikes[0].keys() == spikes[1].keys()
    for key in spikes[0]:
        assert np.array_equal(spikes[0][key], spikes[1][key]), key
    assert spikes[0]["E"].size > 0


def test_reports_at_different_intervals_sample_the_same_trajectory(tmp_path: Path) -> None:
    params = {**LIF, "synapse": "exponential", "v_th_mV": 1000.0}

    def run(state: list[dict[str, Any]], name: str) -> Any:
        doc = _doc(
            populations={"N": {"size": 4, "model": "lif", "params": params}},
            stimuli={"drive": {"type": "poisson", "targets": ["N"], "rate_hz": 8000.0,
                               "weight": 20.0}},
            recordings={"state": state},
        )  # fmt: skip
        doc["simulation"]["duration_ms"] = 30.0
        return zarr.open_group(str(brainsim.run(doc, tmp_path / name).path), mode="r")

    # One population, two variables sampled at 0.2 and 0.5 ms (the kernel samples every 0.1).
    mixed = run(
        [
            {"population": "N", "variables": ["v"], "node_ids": [0, 2], "interval_ms": 0.2},
            {"population": "N", "variables": ["i_syn_ex"], "node_ids": [2], "interval_ms": 0.5},
        ],
        "mixed.zarr",
    )
    fine = run(
        [{"population": "N", "variables": ["v", "i_syn_ex"], "node_ids": [2], "interval_ms": 0.1}],
        "fine.zarr",
    )
    v, i_ex = mixed["report/N/v/data"][...], mixed["report/N/i_syn_ex/data"][...]
    fine_v, fine_i = fine["report/N/v/data"][...], fine["report/N/i_syn_ex/data"][...]
    assert v.shape == (150, 2)
    assert i_ex.shape == (60, 1)
    assert np.ptp(fine_i) > 10.0  # the input current moves
    # Sample k of an interval of m steps is the state after step (k + 1) * m.
    assert np.array_equal(v[:, 1], fine_v[1::2, 0])
    assert np.array_equal(i_ex[:, 0], fine_i[4::5, 0])
    assert np.allclose(mixed["report/N/i_syn_ex/time"][...], np.arange(1, 61) * 0.5)


def test_the_start_up_load_of_the_step_loop_has_the_run_s_signature(tmp_path: Path) -> None:
    """``load_step_loop`` (called before construction) loads exactly what a run calls, so the
    run compiles or loads nothing more."""
    load_step_loop(LocalExchanger())
    _simulate(tmp_path, RunConfig())
    assert len(run_intervals.signatures) == 1


@pytest.mark.parametrize("synapse", ["delta", "exponential"])
def test_all_to_all_stores_no_targets_and_delivers_as_the_sparse_form(
    tmp_path: Path, synapse: str
) -> None:
    """``all_to_all`` with one delay is stored dense (no targets); ``pairwise_bernoulli`` with
    p = 1 draws the same synapses and weights but stores them sparse: same spikes, bit for bit."""
    params = {**LIF, "synapse": synapse, "tau_syn_ex_ms": 2.0, "tau_syn_in_ms": 2.0}
    scale = 1.0 if synapse == "delta" else 200.0  # mV jumps, or pA into 250 pF
    if synapse == "delta":
        params = LIF

    def doc(rule: dict[str, Any]) -> dict[str, Any]:
        return _doc(
            populations={"E": {"size": 120, "model": "lif", "params": params},
                         "I": {"size": 30, "model": "lif", "params": params}},
            projections={
                "EE": {"source": "E", "target": "E", "connectivity": rule,
                       "weight": {"uniform": {"low": 0.0, "high": 0.4 * scale}}, "delay_ms": 1.0},
                "IE": {"source": "I", "target": "E", "connectivity": rule,
                       "weight": {"uniform": {"low": -1.5 * scale, "high": 0.5 * scale}},
                       "delay_ms": 0.5},
                "EI": {"source": "E", "target": "I", "connectivity": rule,
                       "weight": 0.3 * scale, "delay_ms": 1.5},
            },
            stimuli={"drive": {"type": "poisson", "targets": ["E", "I"], "rate_hz": 9000.0,
                               "weight": 2.0 * scale}},
            recordings={"spikes": ["E", "I"]},
        )  # fmt: skip

    dense, sparse = doc({"rule": "all_to_all"}), doc({"rule": "pairwise_bernoulli", "p": 1.0})
    plan = build_network(parse_circuit(dense), LocalCommunicator()).plan
    assert list(plan.meta[:, META_COLUMNS.index("delay_mode")]) == [DELAY_DENSE] * 3
    assert plan.targets.shape == plan.targets16.shape == (0,)
    assert plan.n_synapses == 120 * 120 + 30 * 120 + 120 * 30
    sparse_plan = build_network(parse_circuit(sparse), LocalCommunicator()).plan
    assert np.array_equal(plan.weights, sparse_plan.weights)
    one, other = (
        brainsim.run(dense, tmp_path / "dense.zarr"),
        brainsim.run(sparse, tmp_path / "s.zarr"),
    )
    for pop in ("E", "I"):
        a, b = one.spikes(pop), other.spikes(pop)
        assert a.node_ids.size > 100
        assert np.array_equal(a.node_ids, b.node_ids)
        assert np.array_equal(a.times_ms, b.times_ms)


def test_all_to_all_without_autapses_is_stored_sparse() -> None:
    doc = _two_pop_doc(0.5, 1.0)
    rule = {"rule": "all_to_all", "allow_autapses": False}
    doc["projections"]["II"] = {"source": "I", "target": "I", "weight": -1.0, "delay_ms": 1.0,
                                "connectivity": rule}  # fmt: skip
    doc["projections"]["EI"]["connectivity"] = {"rule": "all_to_all", "allow_autapses": False}
    modes = build_network(parse_circuit(doc), LocalCommunicator()).plan.meta[:, 1]
    # Between two populations there is no autapse to leave out.
    assert list(modes) == [DELAY_DENSE, DELAY_NARROW]


def _plan(doc: dict[str, Any], block_synapses: int) -> DeliveryPlan:
    circuit = parse_circuit(doc)
    sizes = [(name, p.gid_offset, p.size) for name, p in circuit.populations.items()]
    columns = {"E": 0, "I": 300}
    counted = [
        count_projection(circuit, proj, 0, circuit.populations[proj.target].size, block_synapses)
        for proj in circuit.projections.values()
    ]
    plan, _ = DeliveryPlan.build(circuit, counted, sizes, columns, {"E": False, "I": False})
    return plan


@pytest.mark.parametrize(
    ("rule", "delay", "mode"),
    [
        ({"rule": "fixed_indegree", "indegree": 40},
         {"normal": {"mean": 1.5, "std": 0.5, "low": 0.1, "bound": "clip"}}, DELAY_NARROW_BYTE),
        ({"rule": "pairwise_bernoulli", "p": 0.2}, 1.0, DELAY_NARROW),
        ({"rule": "fixed_total_number", "n": 4000}, {"uniform": {"low": 0.5, "high": 3.0}},
         DELAY_NARROW_BYTE),
        # Above 255 steps: one byte per delay is abandoned and the delays stored as uint16.
        ({"rule": "all_to_all"}, {"uniform": {"low": 20.0, "high": 40.0}},
         DELAY_NARROW_SEPARATE),
        # Drawn delays that all round to 10 steps are stored once.
        ({"rule": "fixed_outdegree", "outdegree": 20}, {"uniform": {"low": 1.0, "high": 1.04}},
         DELAY_NARROW),
        ({"rule": "one_to_one"}, {"uniform": {"low": 0.5, "high": 3.0}}, DELAY_NARROW_BYTE),
    ],
)  # fmt: skip
def test_construction_in_blocks_equals_one_block(
    rule: dict[str, Any], delay: Any, mode: int
) -> None:
    """Construction draws blocks of targets twice (count, then place); any block size gives
    the same stored synapses, including a restart when delays do not fit the packed form."""
    doc = _two_pop_doc({"normal": {"mean": 0.5, "std": 0.1}}, delay)
    doc["projections"]["EI"]["connectivity"] = rule
    doc["projections"]["II"] = {**doc["projections"]["EI"], "source": "I", "weight": -1.0}
    if rule["rule"] == "one_to_one":
        doc["projections"]["EI"]["source"] = "I"
    whole, blocks = _plan(doc, 1 << 30), _plan(doc, 7)
    assert whole.n_synapses > 0
    for name in ("meta", "indptrs", "targets", "targets16", "weights", "delays", "delays8",
                 "const_weight"):  # fmt: skip
        assert np.array_equal(getattr(whole, name), getattr(blocks, name)), name
    assert whole.meta[0, META_COLUMNS.index("delay_mode")] == mode
