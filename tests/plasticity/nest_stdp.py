"""Run one plastic NEST synapse between two parrot neurons and report its weights as JSON.

This is the NEST side of the STDP conformance tests. It runs in the reference interpreter, not in
brainsim's environment (NEST is never a brainsim dependency)::

    bench/.venv-ref/bin/python tests/plasticity/nest_stdp.py < spec.json > out.json

The specification (stdin, one JSON object)::

    {"dt_ms": 0.1, "delay_ms": 1.0, "model": "stdp_synapse" | "stdp_pl_synapse_hom",
     "params": {...}, "tau_minus_ms": 20.0, "weight": 0.5,
     "pre_times_ms": [...], "post_times_ms": [...], "sim_time_ms": 100.0}

``params`` are NEST's own synapse parameter names (``tau_plus``, ``lambda``, ``alpha``,
``mu_plus``, ``mu_minus``, ``Wmax`` for ``stdp_synapse``; ``tau_plus``, ``lambda``, ``alpha``,
``mu`` for ``stdp_pl_synapse_hom``); an omitted one keeps NEST's default.

The network: spike_generator -> parrot_neuron (pre) and spike_generator -> parrot_neuron (post),
both generator connections with a delay of one time step, so a generator time ``t`` becomes a
parrot spike at ``t + dt_ms``; the generator times must lie on the ``dt_ms`` grid and be > 0.
The plastic synapse connects pre parrot -> post parrot on receptor 1, which a parrot ignores, so
the post parrot fires only when its own generator says so; ``tau_minus_ms`` is set on the post
parrot (it owns the postsynaptic trace). A weight_recorder is attached through a copy of the
synapse model (it is a common property; for the ``_hom`` model the plasticity parameters are too).

The result (stdout, one JSON object and nothing else)::

    {"pre_spikes_ms", "post_spikes_ms": the parrots' spikes as spike recorders saw them,
     "weight_times_ms", "weights": the weight_recorder's events, one per pre spike delivered
        through the synapse before the run ended (the weight after that spike's update),
     "final_weight": the connection's weight read with GetConnections after the run}

With the single argument ``--defaults`` it reads nothing and reports NEST's defaults instead:
``{"stdp_synapse": {...}, "stdp_pl_synapse_hom": {...}, "parrot_neuron": {"tau_minus": ...}}``
(the numeric synapse parameters, so that the reference's defaults can be checked against them).

NEST prints a banner and log lines on stdout from C++ code; so that the JSON alone reaches
stdout, file descriptor 1 is pointed at stderr before NEST is imported and the JSON is written to
a duplicate of the original stdout.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

MODELS = ("stdp_synapse", "stdp_pl_synapse_hom")
"""The synapse models this script can run."""

COMMON_PARAMS = {"stdp_pl_synapse_hom": ("tau_plus", "lambda", "alpha", "mu")}
"""Per model, the parameters NEST keeps per synapse model rather than per connection."""

_REQUIRED = (
    "dt_ms",
    "delay_ms",
    "model",
    "params",
    "tau_minus_ms",
    "weight",
    "pre_times_ms",
    "post_times_ms",
    "sim_time_ms",
)


def check_spec(spec: dict[str, Any]) -> None:
    """Raise ValueError naming every missing key and an unknown model, before NEST starts."""
    problems = [f"missing key {key!r}" for key in _REQUIRED if key not in spec]
    if "model" in spec and spec["model"] not in MODELS:
        problems.append(f"model must be one of {MODELS}, found {spec['model']!r}")
    if problems:
        raise ValueError("; ".join(problems))


def simulate(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the two-parrot network of the module docstring in NEST, run it, read it back."""
    import nest

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": float(spec["dt_ms"]), "local_num_threads": 1})

    model = str(spec["model"])
    params = {str(key): float(value) for key, value in spec["params"].items()}
    common_keys = COMMON_PARAMS.get(model, ())
    common = {key: value for key, value in params.items() if key in common_keys}
    per_connection = {key: value for key, value in params.items() if key not in common_keys}

    generators = nest.Create(
        "spike_generator",
        2,
        params=[
            {"spike_times": [float(t) for t in spec["pre_times_ms"]]},
            {"spike_times": [float(t) for t in spec["post_times_ms"]]},
        ],
    )
    pre = nest.Create("parrot_neuron")
    post = nest.Create("parrot_neuron", params={"tau_minus": float(spec["tau_minus_ms"])})
    one_step = {"synapse_model": "static_synapse", "delay": float(spec["dt_ms"])}
    nest.Connect(generators[0], pre, syn_spec=one_step)
    nest.Connect(generators[1], post, syn_spec=one_step)

    weight_recorder = nest.Create("weight_recorder")
    under_test = f"{model}_under_test"
    nest.CopyModel(model, under_test, {"weight_recorder": weight_recorder, **common})
    nest.Connect(
        pre,
        post,
        syn_spec={
            "synapse_model": under_test,
            "receptor_type": 1,
            "delay": float(spec["delay_ms"]),
            "weight": float(spec["weight"]),
            **per_connection,
        },
    )

    pre_recorder = nest.Create("spike_recorder")
    post_recorder = nest.Create("spike_recorder")
    nest.Connect(pre, pre_recorder)
    nest.Connect(post, post_recorder)

    nest.Simulate(float(spec["sim_time_ms"]))

    weights = weight_recorder.get("events")
    return {
        "pre_spikes_ms": sorted(float(t) for t in pre_recorder.get("events")["times"]),
        "post_spikes_ms": sorted(float(t) for t in post_recorder.get("events")["times"]),
        "weight_times_ms": [float(t) for t in weights["times"]],
        "weights": [float(w) for w in weights["weights"]],
        "final_weight": float(nest.GetConnections(pre, post).get("weight")),
    }


def defaults() -> dict[str, Any]:
    """NEST's default numeric parameters of both synapse models and the parrot's ``tau_minus``."""
    import nest

    found: dict[str, Any] = {}
    for model in MODELS:
        found[model] = {
            key: float(value)
            for key, value in nest.GetDefaults(model).items()
            if isinstance(value, float)
        }
    found["parrot_neuron"] = {"tau_minus": float(nest.GetDefaults("parrot_neuron")["tau_minus"])}
    return found


def main(argv: list[str]) -> int:
    """Read the spec on stdin (or take ``--defaults``), run NEST, write the result alone on the
    original stdout."""
    if argv not in ([], ["--defaults"]):
        print(f"usage: {sys.argv[0]} [--defaults] < spec.json > out.json", file=sys.stderr)
        return 2
    spec = None if argv else json.load(sys.stdin)
    if spec is not None:
        check_spec(spec)
    result_stream = os.fdopen(os.dup(1), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)
    result = defaults() if spec is None else simulate(spec)
    sys.stdout.flush()
    json.dump(result, result_stream)
    result_stream.write("\n")
    result_stream.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
