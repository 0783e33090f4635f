"""Run the pattern-detection example's training network in NEST and write what it learned.

The NEST side of tests/examples/test_pattern_detection.py; it runs in the reference
interpreter (NEST is never a brainsim dependency)::

    bench/.venv-ref/bin/python tests/examples/nest_pattern_detection.py SPEC.json OUT.json

``SPEC``: ``dt_ms``, ``duration_ms``, ``afferent_times_ms`` (one list of spike times per
afferent), ``n_detectors``, ``detector`` (``iaf_psc_exp`` parameters, NEST names), ``stdp``
(``stdp_synapse`` parameters, NEST names, ``tau_minus`` included: NEST keeps it on the
detectors), ``weight`` and ``delay_ms``. Each afferent is a ``spike_generator`` feeding a
``parrot_neuron`` (weight 1, delay ``delay_ms``), every parrot reaches every detector through
``stdp_synapse``. Result: ``spikes_ms`` (per detector, in order) and ``weights`` (``source``,
``target``: 0-based indices of parrot and detector, and ``weight``).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def train(nest: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The network of the module docstring, simulated; its spikes and final weights."""
    n = len(spec["afferent_times_ms"])
    generators = nest.Create(
        "spike_generator", n, params=[{"spike_times": t} for t in spec["afferent_times_ms"]]
    )
    parrots = nest.Create("parrot_neuron", n)
    nest.Connect(
        generators,
        parrots,
        "one_to_one",
        syn_spec={"weight": 1.0, "delay": spec["delay_ms"]},
    )
    stdp = dict(spec["stdp"])
    tau_minus = stdp.pop("tau_minus")
    detectors = nest.Create(
        "iaf_psc_exp", spec["n_detectors"], params=dict(spec["detector"], tau_minus=tau_minus)
    )
    nest.CopyModel("stdp_synapse", "learning", stdp)
    nest.Connect(
        parrots,
        detectors,
        "all_to_all",
        syn_spec={"synapse_model": "learning", "weight": spec["weight"], "delay": spec["delay_ms"]},
    )
    recorder = nest.Create("spike_recorder")
    nest.Connect(detectors, recorder)
    nest.Simulate(spec["duration_ms"])
    events = recorder.get("events")
    connections = nest.GetConnections(parrots, detectors).get(["source", "target", "weight"])
    first_parrot, first_detector = parrots.tolist()[0], detectors.tolist()[0]
    return {
        "spikes_ms": [
            sorted(events["times"][events["senders"] == gid].tolist()) for gid in detectors.tolist()
        ],
        "weights": {
            "source": [s - first_parrot for s in connections["source"]],
            "target": [t - first_detector for t in connections["target"]],
            "weight": list(connections["weight"]),
        },
    }


def main(argv: list[str]) -> int:
    """Read the specification, run NEST, write the result."""
    if len(argv) != 2:
        print(f"usage: {sys.argv[0]} SPEC.json OUT.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as file:
        spec = json.load(file)
    import nest

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": float(spec["dt_ms"]), "local_num_threads": 1})
    result = train(nest, spec)
    with open(argv[1], "w", encoding="utf-8") as file:
        json.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
