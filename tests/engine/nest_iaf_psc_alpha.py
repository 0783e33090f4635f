"""Run NEST's ``iaf_psc_alpha`` as a test specifies and write what it recorded as JSON.

This is the NEST side of tests/engine/test_lif_alpha_nest.py; it runs in the reference
interpreter (NEST is never a brainsim dependency)::

    bench/.venv-ref/bin/python tests/engine/nest_iaf_psc_alpha.py SPEC.json OUT.json

``SPEC`` is one JSON object with ``dt_ms``, ``duration_ms`` and ``kind``; neuron parameters are
given under NEST's names (``tau_m``, ``tau_syn_ex``, ...). Two kinds:

- ``"neurons"``: ``params`` (one dict per neuron) and ``inputs``, each ``{"times_ms", "weight",
  "delay_ms"}``: a ``spike_generator`` connected to every neuron. A multimeter records ``V_m``,
  ``I_syn_ex`` and ``I_syn_in`` every step. Result: ``{"times_ms": [...], "V_m": [[per step]
  per neuron], "I_syn_ex": ..., "I_syn_in": ..., "spikes_ms": [[...] per neuron]}``; the value
  at time ``t`` is the state at ``t`` (after the update of the step that ends there).
- ``"network"``: populations ``E`` and ``I`` of ``n_e`` / ``n_i`` neurons with ``params``,
  initial ``V_m`` uniform in ``[v0_low, v0_high)``; each neuron draws ``c_e`` sources from E
  (weight ``j_e``) and ``c_i`` from I (weight ``j_i``) with ``fixed_indegree`` (autapses and
  multapses allowed), delay ``delay_ms``; one ``poisson_generator`` of ``rate_hz`` drives every
  neuron with ``j_e`` after ``delay_ms``; ``seed`` seeds NEST. Result: ``{"E": {"times_ms",
  "ids"}, "I": ...}``, ids counted from 0 within each population.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def neurons(nest: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Independent neurons driven by the same spike generators, recorded every step."""
    cells = nest.Create("iaf_psc_alpha", len(spec["params"]), params=spec["params"])
    for entry in spec["inputs"]:
        generator = nest.Create("spike_generator", params={"spike_times": entry["times_ms"]})
        nest.Connect(
            generator, cells, syn_spec={"weight": entry["weight"], "delay": entry["delay_ms"]}
        )
    recorded = ("V_m", "I_syn_ex", "I_syn_in")
    meter = nest.Create("multimeter", params={"interval": spec["dt_ms"], "record_from": recorded})
    nest.Connect(meter, cells)
    spikes = nest.Create("spike_recorder")
    nest.Connect(cells, spikes)
    # A multimeter hands over its samples a min-delay slice late: run on past the duration
    # and keep what lies within it.
    end_ms = spec["duration_ms"] + max(entry["delay_ms"] for entry in spec["inputs"])
    nest.Simulate(end_ms)
    within = spec["duration_ms"] + spec["dt_ms"] / 2
    events = meter.get("events")
    fired = spikes.get("events")
    out: dict[str, Any] = {}
    for lid, gid in enumerate(cells.tolist()):
        mine = (events["senders"] == gid) & (events["times"] < within)
        if lid == 0:
            out["times_ms"] = events["times"][mine].tolist()
        for name in recorded:
            out.setdefault(name, []).append(events[name][mine].tolist())
        spiked = (fired["senders"] == gid) & (fired["times"] < within)
        out.setdefault("spikes_ms", []).append(sorted(fired["times"][spiked].tolist()))
    return out


def network(nest: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The E/I network of the module docstring; spikes of both populations."""
    nest.SetKernelStatus({"rng_seed": int(spec["seed"])})
    params = dict(spec["params"])
    params["V_m"] = nest.random.uniform(spec["v0_low"], spec["v0_high"])
    exc = nest.Create("iaf_psc_alpha", spec["n_e"], params=params)
    inh = nest.Create("iaf_psc_alpha", spec["n_i"], params=params)
    every = exc + inh
    delay = spec["delay_ms"]
    for source, indegree, weight in (
        (exc, spec["c_e"], spec["j_e"]),
        (inh, spec["c_i"], spec["j_i"]),
    ):
        nest.Connect(
            source,
            every,
            {"rule": "fixed_indegree", "indegree": indegree},
            {"weight": weight, "delay": delay},
        )
    drive = nest.Create("poisson_generator", params={"rate": spec["rate_hz"]})
    nest.Connect(drive, every, syn_spec={"weight": spec["j_e"], "delay": delay})
    out: dict[str, Any] = {}
    recorders = {}
    for name, population in (("E", exc), ("I", inh)):
        recorders[name] = nest.Create("spike_recorder")
        nest.Connect(population, recorders[name])
    nest.Simulate(spec["duration_ms"])
    for name, population in (("E", exc), ("I", inh)):
        events = recorders[name].get("events")
        out[name] = {
            "times_ms": events["times"].tolist(),
            "ids": (events["senders"] - population.tolist()[0]).tolist(),
        }
    return out


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
    result = {"neurons": neurons, "network": network}[spec["kind"]](nest, spec)
    with open(argv[1], "w", encoding="utf-8") as file:
        json.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
