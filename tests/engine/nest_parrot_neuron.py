"""Run NEST's ``parrot_neuron`` fed by spike generators and write its spikes as JSON.

This is the NEST side of tests/engine/test_parrot.py; it runs in the reference interpreter
(NEST is never a brainsim dependency)::

    bench/.venv-ref/bin/python tests/engine/nest_parrot_neuron.py SPEC.json OUT.json

``SPEC`` is one JSON object: ``dt_ms``, ``duration_ms``, ``n_parrots`` and ``inputs``, each
``{"times_ms", "weight", "delay_ms", "targets"}``: a ``spike_generator`` connected to the
parrots with those indices (0-based). Result: ``{"spikes_ms": [[...] per parrot]}``, each
parrot's spike times in order, one entry per spike (a spike of multiplicity ``n`` is ``n``
entries, as NEST's spike recorder reports it).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def parrots(nest: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The parrots of the module docstring, their spikes."""
    cells = nest.Create("parrot_neuron", spec["n_parrots"])
    for entry in spec["inputs"]:
        generator = nest.Create("spike_generator", params={"spike_times": entry["times_ms"]})
        nest.Connect(
            generator,
            cells[entry["targets"]],
            syn_spec={"weight": entry["weight"], "delay": entry["delay_ms"]},
        )
    recorder = nest.Create("spike_recorder")
    nest.Connect(cells, recorder)
    nest.Simulate(spec["duration_ms"])
    events = recorder.get("events")
    gids = cells.tolist()
    return {
        "spikes_ms": [sorted(events["times"][events["senders"] == gid].tolist()) for gid in gids]
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
    result = parrots(nest, spec)
    with open(argv[1], "w", encoding="utf-8") as file:
        json.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
