"""Compile every kernel ahead of the first run: ``brainsim compile-kernels``.

numba compiles a kernel on its first call and caches the machine code on disk, so a fresh
install (a new virtual environment, a container image, a CI machine) spends its first run
compiling: about half a minute on 2 cores before the first step. :func:`warm_up` runs, for a few
milliseconds, a circuit that uses every kernel kind there is (each neuron model and synapse
option, every connection rule and value distribution, every stimulus kind including the data
encoders, both plastic rules, spike, state and weight recordings), so that every kernel and the
step loop are compiled and cached; runs after it load them from the cache. An image build or an
install script can call it once; it is also what a user runs to move the wait out of their
first real run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Any

__all__ = ["WARMUP_CIRCUIT", "warm_up"]

_LIF = {"tau_m_ms": 10.0, "v_th_mV": -55.0, "v_reset_mV": -70.0, "e_l_mV": -70.0}

WARMUP_CIRCUIT: dict[str, Any] = {
    "apiVersion": "brainsim/v1",
    "name": "warm-up",
    "description": "Every kernel kind, a few milliseconds: compiles and caches them all.",
    "simulation": {"dt_ms": 0.1, "duration_ms": 5.0, "seed": 1},
    "populations": {
        "D": {"size": 6, "model": "lif", "params": {**_LIF, "synapse": "delta"},
              "initial": {"v_mV": {"normal": {"mean": -65.0, "std": 2.0, "low": -70.0}}}},
        "X": {"size": 6, "model": "lif", "params": {**_LIF, "synapse": "exponential"},
              "initial": {"v_mV": {"uniform": {"low": -70.0, "high": -60.0}}}},
        "A": {"size": 6, "model": "lif", "params": {**_LIF, "synapse": "alpha"}},
        "Z": {"size": 6, "model": "izhikevich"},
        "E": {"size": 6, "model": "izhikevich", "params": {"integration": "euler",
                                                           "synapse": "delta"}},
        "P": {"size": 6, "model": "parrot"},
    },
    "stimuli": {
        "poisson": {"type": "poisson", "targets": ["D", "X", "A"], "rate_hz": 2000.0,
                    "weight": {"lognormal": {"mu": 0.0, "sigma": 0.5, "high": 10.0}}},
        "dc": {"type": "dc", "targets": ["Z"], "amplitude_pA": 5.0},
        "noise": {"type": "noise", "targets": ["E"], "std_pA": 2.0},
        "array": {"type": "spike_source_array", "targets": ["P"], "spike_times_ms": [1.0, 2.0],
                  "weight": 1.0},
        "rate": {"type": "rate", "targets": ["D"], "data": [[0.5] * 6], "present_ms": 2.0,
                 "max_rate_hz": 500.0, "weight": 5.0},
        "counts": {"type": "rate", "targets": ["X"], "data": [[0.5] * 6], "present_ms": 2.0,
                   "max_rate_hz": 500.0, "mode": "poisson", "weight": 50.0},
        "latency": {"type": "latency", "targets": ["A"], "data": [[0.5] * 6],
                    "present_ms": 2.0, "tau_ms": 1.0, "weight": 50.0},
        "population": {"type": "population", "targets": ["Z"], "data": [[0.5, 0.2, 0.9]],
                       "present_ms": 2.0, "n_neurons_per_feature": 2, "sigma": 0.2,
                       "max_rate_hz": 500.0, "weight": 5.0},
        "delta": {"type": "delta", "targets": ["E"], "data": [[0.0] * 6, [1.0] * 6],
                  "step_ms": 1.0, "weight": 5.0},
        "trains": {"type": "spike_trains", "targets": ["P"], "data": [[0.5], [], [1.5], [],
                   [2.5], [3.5]], "weight": 1.0},
    },
    "projections": {
        "indegree": {"source": "D", "target": "X", "connectivity": {"rule": "fixed_indegree",
                     "indegree": 3}, "weight": {"normal": {"mean": 20.0, "std": 2.0}},
                     "delay_ms": {"uniform": {"low": 0.5, "high": 2.0}}},
        "outdegree": {"source": "X", "target": "A", "connectivity": {"rule": "fixed_outdegree",
                      "outdegree": 2}, "weight": 30.0, "delay_ms": 1.0},
        "total": {"source": "A", "target": "Z", "connectivity": {"rule": "fixed_total_number",
                  "n": 10}, "weight": -2.0, "delay_ms": 0.3},
        "bernoulli": {"source": "Z", "target": "E", "connectivity": {
                      "rule": "pairwise_bernoulli", "p": 0.5}, "weight": 1.0, "delay_ms": 0.7},
        "one": {"source": "P", "target": "D", "connectivity": {"rule": "one_to_one"},
                "weight": 2.0, "delay_ms": 0.2, "synapse": {"model": "stdp"}},
        "all": {"source": "P", "target": "X", "connectivity": {"rule": "all_to_all"},
                "weight": 10.0, "delay_ms": 1.5, "synapse": {"model": "stdp_power_law"}},
    },
    "recordings": {
        "spikes": "all",
        "state": [{"population": "X", "variables": ["v", "i_syn_ex"], "interval_ms": 0.5},
                  {"population": "Z", "variables": ["u"]}],
        "weights": [{"projection": "one", "interval_ms": 1.0}],
    },
}  # fmt: skip
"""The warm-up circuit: one of everything the engine compiles a kernel for."""


_ON_RANKS = """
import sys
from brainsim.circuit import parse_circuit
from brainsim.engine.run import communicator, execute
from brainsim.engine.simulator import load_step_loop
from brainsim.engine.warmup import WARMUP_CIRCUIT
comm, exchanger = communicator()
load_step_loop(exchanger)
status = execute(parse_circuit(WARMUP_CIRCUIT), sys.argv[1], comm=comm, exchanger=exchanger,
                 overwrite=True)
sys.exit(0 if status == "complete" else 1)
"""
"""What each rank of the multi-rank warm-up runs: the general step loop for the MPI exchange,
then the warm-up circuit."""


def warm_up(ranks: int = 1) -> float:
    """Compile the general step loop (:data:`~brainsim.kernels.loop.EVERYTHING`, which serves
    every circuit) and run :data:`WARMUP_CIRCUIT` with it in this process (which compiles the
    construction kernels), and with ``ranks > 1`` the same on that many ranks (under
    ``mpiexec``: the step loop for the MPI exchange), into a temporary store; the seconds it
    took.

    The general loop is loaded first so that the warm-up run uses it rather than compiling a
    variant of its own (the warm-up circuit leaves out some storage modes, and on one rank the
    exchange); runs after this one find it in the cache and compile nothing.
    """
    from brainsim.circuit import parse_circuit
    from brainsim.engine.launch import mpiexec_command
    from brainsim.engine.run import communicator, execute
    from brainsim.engine.simulator import load_step_loop

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="brainsim-warm-up-") as directory:
        store = os.path.join(directory, "warm-up.zarr")
        comm, exchanger = communicator()
        load_step_loop(exchanger)
        status = execute(parse_circuit(WARMUP_CIRCUIT), store, comm=comm, exchanger=exchanger)
        if status != "complete":
            raise RuntimeError(f"the warm-up run ended {status}")
        if ranks > 1:
            command = mpiexec_command(ranks, [sys.executable, "-c", _ON_RANKS, store])
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"the warm-up run on {ranks} ranks failed: {done.stderr}")
    return time.perf_counter() - started
