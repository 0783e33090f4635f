"""Stand-in for pynn_brainscales.brainscales2 (tests only, see ../../README.md).

Units as pynn_brainscales takes them: run and spike times in ms of chip time, rates in Hz of
chip time, CalibHXNeuronCuba's time constants in us, its voltages in CADC units, weights in
integer levels (negative onto the inhibitory receptor), delays 0. The spikes come from a
forward-Euler LIF in those units with a synaptic input of GAIN CADC/us per weight level (the
stand-in's number, not the chip's) and one Euler step of latency.
"""

import json
import os

import neo
import numpy as np
import quantities as pq
from neo.io import PickleIO

from . import standardmodels
from .standardmodels import cells, synapses

__all__ = [
    "AllToAllConnector",
    "FromListConnector",
    "OneToOneConnector",
    "Population",
    "Projection",
    "cells",
    "end",
    "run",
    "setup",
    "standardmodels",
    "synapses",
]

STEP_US = 0.05
GAIN = 0.1
MAX_NEURONS = 512
_SETUP_KEYWORDS = {
    # pynn.setup's parameters; any other raises KeyError there too
    "timestep",
    "min_delay",
    "max_delay",
    "neuronPermutation",
    "backgroundPermutation",
    "enable_neuron_bypass",
    "initial_config",
    "injected_config",
    "injected_readout",
    "calibration_cache",
    "injected_calib_target",
    "injected_calib_options",
    "connection",
}


class _State:
    def __init__(self):
        self.populations = []
        self.projections = []
        self.calls = []
        self.runtime = None


_state = None


def _log(call, **fields):
    _state.calls.append({"call": call, **fields})


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def setup(**extra):
    global _state
    unknown = set(extra) - _SETUP_KEYWORDS
    if unknown:
        raise KeyError(f"unhandled extra_params in call to pynn.setup(...): {unknown}")
    _state = _State()
    _log("setup", **{k: repr(v) for k, v in extra.items()})


class Population:
    def __init__(self, size, cellclass, label=None):
        self.size = int(size)
        self.celltype = cellclass
        self.label = label
        self.recorded = False
        self.spikes = [[] for _ in range(self.size)]
        self.times = None
        if isinstance(cellclass, cells.CalibHXNeuronCuba):
            neurons = sum(
                p.size
                for p in _state.populations
                if isinstance(p.celltype, cells.CalibHXNeuronCuba)
            )
            if neurons + self.size > MAX_NEURONS:
                raise RuntimeError(f"more than {MAX_NEURONS} neurons")
            self.params = {
                k: np.broadcast_to(np.asarray(v, dtype=float), (self.size,)).copy()
                for k, v in cellclass.parameters.items()
            }
            _log(
                "Population",
                cell="CalibHXNeuronCuba",
                size=self.size,
                label=label,
                given={k: _plain(np.asarray(v)) for k, v in cellclass.given.items()},
            )
        elif isinstance(cellclass, cells.SpikeSourcePoisson):
            rng = np.random.default_rng(len(_state.populations))
            for i in range(self.size):
                n = rng.poisson(cellclass.rate * cellclass.duration / 1000.0)
                self.spikes[i] = np.sort(cellclass.start + rng.random(n) * cellclass.duration)
            _log(
                "SpikeSourcePoisson",
                size=self.size,
                label=label,
                rate=cellclass.rate,
                start=cellclass.start,
                duration=cellclass.duration,
            )
        elif isinstance(cellclass, cells.SpikeSourceArray):
            times = cellclass.spike_times
            if len(times) and hasattr(times[0], "value"):
                assert len(times) == self.size
                self.spikes = [np.asarray(t.value, dtype=float) for t in times]
            else:
                self.spikes = [np.asarray(times, dtype=float)] * self.size
            _log(
                "SpikeSourceArray",
                size=self.size,
                spike_times=[np.asarray(t).tolist() for t in self.spikes],
            )
        else:
            raise TypeError(f"not a cell type of pynn_brainscales: {cellclass!r}")
        _state.populations.append(self)

    def __len__(self):
        return self.size

    def __getitem__(self, ids):
        return PopulationView(self, np.arange(self.size)[ids])

    def record(self, variables):
        assert variables in ("spikes", ["spikes"]), variables
        self.recorded = True
        _log("record", label=self.label, variables=variables)

    def get_data(self, variables="spikes"):
        assert variables == "spikes"
        assert self.recorded
        assert _state.runtime is not None
        segment = neo.Segment()
        for i, times in enumerate(self.spikes):
            segment.spiketrains.append(
                neo.SpikeTrain(np.asarray(times) * pq.ms, t_stop=_state.runtime * pq.ms)
            )
            segment.spiketrains[-1].annotate(source_index=i)
        block = neo.Block()
        block.segments.append(segment)
        return block

    def write_data(self, path):
        PickleIO(path).write_block(self.get_data())


class PopulationView:
    def __init__(self, parent, ids):
        self.parent = parent
        self.ids = np.asarray(ids, dtype=np.int64)
        self.size = self.ids.size

    def __len__(self):
        return self.size


def _cells(population):
    """(population, its indices) of a population or view."""
    if isinstance(population, PopulationView):
        return population.parent, population.ids
    return population, np.arange(population.size)


class OneToOneConnector:
    def pairs(self, n_pre, n_post, synapse):
        assert n_pre == n_post
        return [(i, i, synapse.weight, synapse.delay) for i in range(n_pre)]


class AllToAllConnector:
    def pairs(self, n_pre, n_post, synapse):
        return [(i, j, synapse.weight, synapse.delay) for i in range(n_pre) for j in range(n_post)]


class FromListConnector:
    def __init__(self, conn_list, column_names=None):
        self.conn_list = np.asarray(conn_list, dtype=float)
        self.column_names = list(column_names or [])

    def pairs(self, n_pre, n_post, synapse):
        weight = self.column_names.index("weight") + 2 if "weight" in self.column_names else None
        delay = self.column_names.index("delay") + 2 if "delay" in self.column_names else None
        return [
            (
                int(row[0]),
                int(row[1]),
                synapse.weight if weight is None else row[weight],
                synapse.delay if delay is None else row[delay],
            )
            for row in self.conn_list
        ]


class Projection:
    def __init__(self, presynaptic, postsynaptic, connector, synapse_type=None,
                 receptor_type=None, label=None):  # fmt: skip
        if receptor_type not in ("excitatory", "inhibitory"):
            raise NotImplementedError("Receptor not implemented.")
        synapse = synapse_type or synapses.StaticSynapse()
        pre, pre_ids = _cells(presynaptic)
        post, post_ids = _cells(postsynaptic)
        assert isinstance(post.celltype, cells.CalibHXNeuronCuba)
        rows = []
        for i, j, weight, delay in connector.pairs(pre_ids.size, post_ids.size, synapse):
            if delay != 0:
                raise ValueError("Setting the delay unequal 0 is not supported.")
            if (weight < 0 and receptor_type == "excitatory") or (
                weight > 0 and receptor_type == "inhibitory"
            ):
                raise ValueError(
                    "Weights must be positive for excitatory synapses and negative for "
                    "inhibitory synapses"
                )
            if weight != round(weight) or abs(weight) > 63:
                raise ValueError(f"weight {weight}: brainsim's levels are integers within 63")
            rows.append((int(pre_ids[i]), int(post_ids[j]), int(weight)))
        self.pre, self.post, self.receptor, self.rows = pre, post, receptor_type, rows
        _state.projections.append(self)
        _log(
            "Projection",
            pre=pre.label,
            post=post.label,
            receptor=receptor_type,
            label=label,
            connections=rows,
        )


def run(runtime):
    """Simulate ``runtime`` ms of chip time with forward Euler, ``STEP_US`` per step."""
    assert _state.runtime is None, "one run per setup"
    _state.runtime = float(runtime)
    _log("run", runtime=runtime)
    neurons = [p for p in _state.populations if isinstance(p.celltype, cells.CalibHXNeuronCuba)]
    n = sum(p.size for p in neurons)
    if n == 0:
        return
    offset = {}
    at = 0
    for p in neurons:
        offset[id(p)] = at
        at += p.size

    def column(name):
        return np.concatenate([p.params[name] for p in neurons])

    v_rest, v_reset, v_thresh = column("v_rest"), column("v_reset"), column("v_thresh")
    tau_m, tau_e, tau_i = column("tau_m"), column("tau_syn_E"), column("tau_syn_I")
    tau_ref = column("tau_refrac")
    steps = int(np.ceil(_state.runtime * 1000.0 / STEP_US))
    # Input from the spike sources, binned per step; recurrent weights as matrices.
    drive = {"excitatory": np.zeros((steps, n)), "inhibitory": np.zeros((steps, n))}
    recurrent = {"excitatory": np.zeros((n, n)), "inhibitory": np.zeros((n, n))}
    for proj in _state.projections:
        post0 = offset[id(proj.post)]
        if id(proj.pre) in offset:
            pre0 = offset[id(proj.pre)]
            for i, j, w in proj.rows:
                recurrent[proj.receptor][pre0 + i, post0 + j] += abs(w)
            continue
        for i, j, w in proj.rows:
            bins = np.floor(np.asarray(proj.pre.spikes[i]) * 1000.0 / STEP_US).astype(np.int64)
            bins = bins[(bins >= 0) & (bins < steps)]
            np.add.at(drive[proj.receptor][:, post0 + j], bins, abs(w))
    v = v_rest.copy()
    i_e = np.zeros(n)
    i_i = np.zeros(n)
    refractory = np.zeros(n)
    fired = np.zeros(n, dtype=bool)
    spikes = []
    for step in range(steps):
        arriving = fired.astype(float)  # last step's spikes: one step of latency
        i_e += GAIN * (drive["excitatory"][step] + arriving @ recurrent["excitatory"])
        i_i += GAIN * (drive["inhibitory"][step] + arriving @ recurrent["inhibitory"])
        free = refractory <= 0
        v = np.where(free, v + STEP_US * ((v_rest - v) / tau_m + i_e - i_i), v_reset)
        i_e -= STEP_US * i_e / tau_e
        i_i -= STEP_US * i_i / tau_i
        refractory -= STEP_US
        fired = free & (v >= v_thresh)
        v[fired] = v_reset[fired]
        refractory[fired] = tau_ref[fired]
        spikes += [(int(k), (step + 1) * STEP_US / 1000.0) for k in np.flatnonzero(fired)]
    for p in neurons:
        first = offset[id(p)]
        trains = [[] for _ in range(p.size)]
        for k, t in spikes:
            if first <= k < first + p.size:
                trains[k - first].append(t)
        p.spikes = [np.asarray(t) for t in trains]
        _log("spikes", label=p.label, trains=[list(t) for t in trains])


def end():
    _log("end")
    path = os.environ.get("BSS2_STANDIN_LOG")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_state.calls, f)
