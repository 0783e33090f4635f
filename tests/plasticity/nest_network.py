"""Run a recurrent NEST network with plastic E -> E synapses; report its spikes and weights.

The NEST side of the network-level STDP conformance test (``test_nest_network.py``): every
plastic connection's final weight must equal what the rule gives for the spikes NEST's own
neurons fired. It runs in the reference interpreter::

    bench/.venv-ref/bin/python tests/plasticity/nest_network.py < spec.json > out.json

The specification (stdin, one JSON object)::

    {"model": "stdp_synapse" | "stdp_pl_synapse_hom", "params": {...NEST names...},
     "n_neurons": 300, "indegree": 40, "weight": 8.0, "delay_ms": 1.5, "tau_minus_ms": 30.0,
     "rate_hz": 1300.0, "drive_weight": 45.0, "sim_time_ms": 300.0, "threads": 1, "seed": 1}

The network: ``n_neurons`` ``iaf_psc_alpha`` neurons (NEST's defaults, ``tau_minus`` set), each
driven by its own Poisson train of ``rate_hz`` (one ``poisson_generator``, ``drive_weight``),
connected ``fixed_indegree`` with multapses and without autapses through the plastic model
(weight ``weight``, delay ``delay_ms``). The result (stdout, one JSON object)::

    {"spike_times_ms", "spike_ids": every spike (ids 0-based), "min_delay_ms",
     "source", "target", "weight": every plastic connection (0-based ids)}

NEST prints on stdout from C++; file descriptor 1 is pointed at stderr before NEST is imported
and the JSON goes to a duplicate of the original stdout (as in ``nest_stdp.py``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def simulate(spec: dict[str, Any]) -> dict[str, Any]:
    """Build and run the network of the module docstring; read spikes and weights back."""
    import nest

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.SetKernelStatus(
        {
            "resolution": 0.1,
            "local_num_threads": int(spec["threads"]),
            "rng_seed": int(spec["seed"]),
        }
    )
    model = str(spec["model"])
    params = {str(key): float(value) for key, value in spec["params"].items()}
    plastic = f"{model}_network"
    if model == "stdp_pl_synapse_hom":
        nest.CopyModel(model, plastic, params)
        per_connection: dict[str, float] = {}
    else:
        nest.CopyModel(model, plastic)
        per_connection = params
    neurons = nest.Create(
        "iaf_psc_alpha", int(spec["n_neurons"]), params={"tau_minus": float(spec["tau_minus_ms"])}
    )
    drive = nest.Create("poisson_generator", params={"rate": float(spec["rate_hz"])})
    nest.Connect(drive, neurons, syn_spec={"weight": float(spec["drive_weight"]), "delay": 1.0})
    nest.Connect(
        neurons,
        neurons,
        {
            "rule": "fixed_indegree",
            "indegree": int(spec["indegree"]),
            "allow_autapses": False,
            "allow_multapses": True,
        },
        {
            "synapse_model": plastic,
            "weight": float(spec["weight"]),
            "delay": float(spec["delay_ms"]),
            **per_connection,
        },
    )
    recorder = nest.Create("spike_recorder")
    nest.Connect(neurons, recorder)
    nest.Simulate(float(spec["sim_time_ms"]))
    first = int(neurons[0].global_id)
    events = recorder.get("events")
    connections = nest.GetConnections(neurons, neurons, synapse_model=plastic).get(
        ["source", "target", "weight"]
    )
    return {
        "spike_times_ms": [float(t) for t in events["times"]],
        "spike_ids": [int(s) - first for s in events["senders"]],
        "min_delay_ms": float(nest.GetKernelStatus("min_delay")),
        "source": [int(s) - first for s in connections["source"]],
        "target": [int(t) - first for t in connections["target"]],
        "weight": [float(w) for w in connections["weight"]],
    }


def main() -> int:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    result = simulate(json.loads(sys.stdin.read()))
    out.write(json.dumps(result))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
