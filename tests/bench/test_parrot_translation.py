"""``model: parrot`` in the generated scripts: NEST's ``parrot_neuron``, and a Brian2 group that
sums the weights arriving in a step and fires on a positive sum.

Beside the text of the scripts, each is run once in the reference interpreter: NEST's script
must build and simulate parrots (with ``tau_minus`` set on a plastic target), and Brian2's
parrots must repeat their input exactly (in consecutive steps too, which a ``reset`` after the
synapses would lose) and fire once in a step that many spikes reach.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.brian2_script import brian2_script
from bench.nest_script import nest_script
from bench.runners import parse_script_result
from bench.translate_common import UnsupportedCircuitError
from brainsim.circuit import Circuit, parse_circuit

DT_MS = 0.1
TRAIN_MS = [2.0, 2.1, 2.2, 7.5, 30.0]


def _document(plastic: bool = True, **changes: Any) -> dict[str, Any]:
    """A spike train repeated by 4 parrots P, relayed one to one (plastic unless ``plastic`` is
    false) to 4 parrots Q and to 2 LIF neurons L; ``changes`` by dotted path."""
    document: dict[str, Any] = {
        "apiVersion": "brainsim/v1",
        "name": "parrots",
        "simulation": {"dt_ms": DT_MS, "duration_ms": 50.0, "seed": 3},
        "populations": {
            "P": {"size": 4, "model": "parrot"},
            "Q": {"size": 4, "model": "parrot"},
            "L": {"size": 2, "model": "lif"},
        },
        "projections": {
            "PQ": {"source": "P", "target": "Q", "connectivity": {"rule": "one_to_one"},
                   "weight": 1.0, "delay_ms": 1.0,
                   "synapse": {"model": "stdp", "tau_minus_ms": 15.0, "w_max": 2.0}},
            "PL": {"source": "P", "target": "L", "connectivity": {"rule": "all_to_all"},
                   "weight": 2.0, "delay_ms": 1.5},
        },
        "stimuli": {
            "train": {"type": "spike_source_array", "targets": ["P"],
                      "spike_times_ms": TRAIN_MS, "weight": 1.0, "delay_ms": 0.5},
        },
        "recordings": {"spikes": "all"},
    }  # fmt: skip
    if not plastic:
        del document["projections"]["PQ"]["synapse"]
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = document
        for parent in parents:
            node = node[parent]
        node[key] = value
    return document


def _nest_text(circuit: Circuit) -> str:
    return nest_script(circuit, "circuit.yaml")


def test_nest_creates_parrot_neurons_without_parameters() -> None:
    text = _nest_text(parse_circuit(_document()))
    assert "pops['P'] = nest.Create(\"parrot_neuron\", 4, params={})" in text
    assert "pops['Q'] = nest.Create(\"parrot_neuron\", 4, params={})" in text
    assert 'nest.Create("iaf_psc_delta", 2,' in text
    # the plastic projection's tau_minus goes to its parrot targets, as to any neuron
    assert "pops['Q'].set({\"tau_minus\": 15.0})" in text
    assert 'nest.Connect(stimulus, pops[\'P\'], syn_spec={"weight": 1.0, "delay": 0.5})' in text


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"projections.PQ.weight": 0.0}, "projections.PQ.weight"),
        ({"projections.PQ.weight": {"uniform": {"low": 0.0, "high": 1.0}}},
         "projections.PQ.weight"),
        ({"projections.PQ.weight": {"normal": {"mean": 1.0, "std": 0.1}}},
         "projections.PQ.weight"),
        ({"stimuli.train.weight": -1.0}, "stimuli.train.weight"),
    ],
)  # fmt: skip
def test_nest_refuses_weights_onto_parrots_that_may_be_at_most_zero(
    change: dict[str, Any], path: str
) -> None:
    # NEST's parrot repeats spikes of any weight; brainsim's does not fire on a sum <= 0.
    circuit = parse_circuit(_document(plastic=False, **change))
    with pytest.raises(UnsupportedCircuitError, match=path.replace(".", r"\.")) as raised:
        _nest_text(circuit)
    assert "weights onto a parrot must be > 0" in str(raised.value)


def test_nest_accepts_weights_onto_parrots_that_are_always_positive() -> None:
    for weight in (0.5, {"uniform": {"low": 0.1, "high": 1.0}},
                   {"lognormal": {"mu": 0.0, "sigma": 0.5}}):  # fmt: skip
        changes = {"projections.PL.weight": -3.0, "projections.PQ.weight": weight}
        _nest_text(parse_circuit(_document(plastic=False, **changes)))


def test_the_nest_script_runs_the_parrots(nest_python: Path, tmp_path: Path) -> None:
    script = tmp_path / "parrots_nest.py"
    script.write_text(_nest_text(parse_circuit(_document())), encoding="utf-8")
    result = subprocess.run([str(nest_python), str(script), "--threads", "1"],
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    found = parse_script_result(result.stdout)
    # Every train spike is repeated by each P parrot and relayed to each Q parrot.
    assert found["n_spikes"]["P"] == 4 * len(TRAIN_MS)
    assert found["n_spikes"]["Q"] == 4 * len(TRAIN_MS)
    assert found["weights"]["PQ"]["count"] == 4


def _brian2_circuit() -> Circuit:
    """Poisson input to 20 parrots P (often in consecutive steps, sometimes two in one), each
    relayed to its parrot in Q after 1 ms and all to the one parrot R after 0.5 ms."""
    document = _document()
    document["populations"] = {"P": {"size": 20, "model": "parrot"},
                               "Q": {"size": 20, "model": "parrot"},
                               "R": {"size": 1, "model": "parrot"}}  # fmt: skip
    document["projections"] = {
        "PQ": {"source": "P", "target": "Q", "connectivity": {"rule": "one_to_one"},
               "weight": 1.0, "delay_ms": 1.0},
        "PR": {"source": "P", "target": "R", "connectivity": {"rule": "all_to_all"},
               "weight": 1.0, "delay_ms": 0.5},
    }  # fmt: skip
    document["stimuli"] = {
        "drive": {"type": "poisson", "targets": ["P"], "rate_hz": 2000.0, "weight": 1.0}
    }
    return parse_circuit(document)


def test_brian2_parrots_sum_their_input_and_clear_it_after_the_threshold() -> None:
    text = brian2_script(_brian2_circuit(), "circuit.yaml")
    assert "groups['P'] = b2.NeuronGroup(20, 'v : 1', threshold='v > 0', reset=''," in text
    assert "groups['P'].run_regularly('v = 0', when='after_thresholds')" in text
    # Synapses onto parrots act within the step, like delta synapses: delay - dt.
    assert "on_pre='v_post += 1.0', delay=(1.0 - 0.1) * b2.ms" in text
    assert "on_pre='v_post += 1.0', delay=(0.5 - 0.1) * b2.ms" in text
    assert "b2.PoissonInput(groups['P'], 'v', 200, 10.0 * b2.Hz, weight='1.0')" in text


def test_the_brian2_parrots_repeat_their_input_exactly(nest_python: Path, tmp_path: Path) -> None:
    # nest_python is the reference interpreter, which has Brian2 as well. The script saves
    # its spikes after the run (a line added to the generated text for this test).
    text = brian2_script(_brian2_circuit(), "circuit.yaml")
    run_line = "    binary_s = time.perf_counter() - start\n"
    assert run_line in text
    out = tmp_path / "spikes.npz"
    save = (
        f"    np.savez({str(out)!r}, **{{f'{{k}}_t': np.asarray(m.t / b2.ms) "
        "for k, m in monitors.items()}, **{f'{k}_i': np.asarray(m.i[:]) "
        "for k, m in monitors.items()})\n"
    )
    script = tmp_path / "parrots_brian2.py"
    script.write_text(text.replace(run_line, run_line + save), encoding="utf-8")
    result = subprocess.run(
        [str(nest_python), str(script), "--threads", "1", "--project", str(tmp_path / "proj")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    spikes = np.load(out)

    def steps(name: str) -> set[tuple[int, int]]:
        t, i = spikes[f"{name}_t"], spikes[f"{name}_i"]
        return set(zip(np.rint(t / DT_MS).astype(int).tolist(), i.tolist(), strict=True))

    p, n_steps = steps("P"), round(50.0 / DT_MS)
    assert len(p) == spikes["P_t"].size > 100  # at most one spike per neuron and step
    assert any((s + 1, i) in p for s, i in p)  # consecutive steps occur
    assert steps("Q") == {(s + 10, i) for s, i in p if s + 10 < n_steps}
    assert steps("R") == {(s + 5, 0) for s, _ in p if s + 5 < n_steps}
    assert spikes["R_t"].size < len(p)  # several arrivals in one step gave one spike
