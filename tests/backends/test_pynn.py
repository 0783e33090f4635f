"""The ``pynn`` target: the script lists exactly the network brainsim builds, refuses what PyNN
or a platform cannot express with the field path, and run on the real pyNN.nest (PyNN 0.13 and
NEST 3.10 in the reference environment) gives brainsim's rates and learned weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.stats import rates_agree
from brainsim.backends import backend
from brainsim.backends.pynn import PynnBackend
from brainsim.circuit import load_circuit, parse_circuit
from brainsim.engine.connectivity import projection_synapses
from brainsim.errors import TargetError
from brainsim.recording import open_store

ROOT = Path(__file__).resolve().parents[2]
CIRCUITS = ROOT / "circuits"

READ_RESULTS = """
import json, sys
import numpy as np
from neo.io import PickleIO
out = {}
for name in sys.argv[2:]:
    trains = PickleIO(f"{sys.argv[1]}/{name}.pkl").read_block().segments[0].spiketrains
    out[name] = [len(trains), int(sum(len(t) for t in trains))]
print(json.dumps(out))
"""


def run_script(python: Path, folder: Path, populations: list[str]) -> dict[str, float]:
    """``python run.py nest`` in ``folder``; the mean rate (Hz) of each population."""
    done = subprocess.run(
        [str(python), "run.py", "nest", "--out", "results"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counted = subprocess.run(
        [str(python), "-c", READ_RESULTS, str(folder / "results"), *populations],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found = json.loads(counted.stdout.strip().splitlines()[-1])
    return {name: count for name, (_, count) in found.items()}


def brainsim_counts(
    circuit_path: Path, store: Path, params: list[str], duration: float
) -> dict[str, int]:
    subprocess.run(
        [sys.executable, "-m", "brainsim", "run", str(circuit_path), "--out", str(store),
         "--overwrite", "--progress", "none", "--duration-ms", str(duration), *params],
        check=True, timeout=900,
    )  # fmt: skip
    rec = open_store(store)
    return {name: rec.spikes(name).n_spikes for name in rec.spike_populations}


def test_the_script_lists_exactly_the_synapses_and_values_brainsim_builds(tmp_path: Path) -> None:
    circuit = load_circuit(CIRCUITS / "izhikevich_2003.yaml")
    artefact = PynnBackend().compile(circuit, tmp_path)
    assert artefact.paths[0] == str(tmp_path / "run.py")
    compile(Path(artefact.paths[0]).read_text(), "run.py", "exec")  # valid Python
    for projection in circuit.projections.values():
        synapses = projection_synapses(circuit, projection)
        parts = sorted(tmp_path.glob(f"data/projection_{projection.name}_*.npz"))
        tables = [np.load(part)["connections"] for part in parts]
        table = np.concatenate(tables)
        order = np.lexsort((table[:, 0], table[:, 1]))
        mine = np.lexsort((synapses.sources, synapses.targets))
        np.testing.assert_array_equal(table[order, 0], synapses.sources[mine])
        np.testing.assert_array_equal(table[order, 1], synapses.targets[mine])
        # Izhikevich current pulses of w pA for one 1 ms step: w * dt mV on v, sign kept.
        np.testing.assert_allclose(table[order, 2], synapses.weights[mine] * 1.0)
        np.testing.assert_allclose(table[order, 3], synapses.delay_steps[mine] * 1.0)
        for part, found in zip(parts, tables, strict=True):
            sign = np.sign(found[:, 2])
            assert np.all(sign == (1 if part.stem.endswith("_excitatory") else -1))
    # Drawn parameters (c and d of the excitatory neurons vary) are written as arrays.
    cells = np.load(tmp_path / "data" / "population_excitatory.npz")
    assert cells["c"].shape == (800,)
    assert cells["c"].min() >= -65.0
    assert cells["c"].max() <= -50.0
    assert len(np.unique(cells["d"])) > 100


def test_what_pynn_or_a_platform_cannot_express_is_named(tmp_path: Path) -> None:
    document = yaml.safe_load((CIRCUITS / "brunel_stdp.yaml").read_text())
    document["parameters"].update({"NE": 200, "NI": 50, "CE": 20, "CI": 5})
    document["populations"]["P"] = {"size": 5, "model": "parrot"}
    document["projections"]["EE"]["synapse"].update({"mu_plus": 0.5, "mu_minus": 0.5})
    document["projections"]["EI"]["delay_ms"] = 20.0
    document["projections"]["EI"]["synapse"] = {"model": "stdp_power_law"}
    document["stimuli"]["drive"] = {
        "type": "poisson", "targets": ["P"], "rate_hz": {"uniform": {"low": 1, "high": 2}},
        "weight": 1.0, "delay_ms": 1.0,
    }  # fmt: skip
    document["recordings"]["state"] = [{"population": "E", "variables": ["v"]}]
    circuit = parse_circuit(document)
    found = {v.path: v.reason for v in PynnBackend().check(circuit)}
    assert "no PyNN standard cell type" in found["populations.P.model"]
    assert "stdp_power_law" in found["projections.EI.synapse.model"]
    assert "constant" in found["stimuli.drive.rate_hz"]
    assert "spikes only" in found["recordings.state"]
    assert "projections.EE.synapse" not in found  # Gütig's rule is NEST's too
    spinnaker = {v.path: v.reason for v in backend("pynn:spiNNaker").check(circuit)}
    assert "Gütig" in spinnaker["projections.EE.synapse"]
    assert "200 steps" in spinnaker["projections.EI.delay_ms"]
    assert "at most 144" in spinnaker["projections.EI.delay_ms"]
    bss2 = {v.path: v.reason for v in backend("pynn:brainscales2").check(circuit)}
    assert "at most 512" not in bss2.get("populations", "")  # 255 neurons fit
    assert "IF_curr_delta" in bss2["populations.E.model"]
    assert "runs no STDP" in bss2["projections.EE.synapse.model"]
    with pytest.raises(TargetError) as refused:
        PynnBackend().compile(circuit, tmp_path)
    assert "populations.P.model" in str(refused.value)
    assert not (tmp_path / "run.py").exists()


def test_brainscales2_weights_must_fit_its_levels(tmp_path: Path) -> None:
    document = yaml.safe_load((CIRCUITS / "tiny.yaml").read_text())
    for population in document["populations"].values():
        population["params"] = {**population["params"], "synapse": "exponential"}
        del population["initial"]  # the chip's neurons start at rest
    del document["recordings"]["state"]
    document["stimuli"]["background"]["weight"] = 30.0
    for projection in document["projections"].values():
        projection["weight"] = 10.0 if projection["weight"] > 0 else -20.0
    checked = backend("pynn:brainscales2")
    assert checked.check(parse_circuit(document)) == []
    document["projections"]["EE"]["weight"] = {"uniform": {"low": 1.0, "high": 10.0}}
    found = {v.path: v.reason for v in checked.check(parse_circuit(document))}
    assert "64 weight levels" in found["projections.EE.weight"]
    document["projections"]["EE"]["weight"] = 10.0
    document["stimuli"]["background"]["weight"] = 25.0  # 10 pA is 25.2 levels of 25/63 pA
    found = {v.path: v.reason for v in checked.check(parse_circuit(document))}
    assert "64 weight levels" in found["projections.EE.weight"]
    document["stimuli"]["background"]["weight"] = 30.0
    fitting = parse_circuit(document)
    artefact = checked.compile(fitting, tmp_path)  # tests/backends/test_pynn_brainscales2.py
    assert "CalibHXNeuronCuba" in Path(artefact.paths[0]).read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("circuit", "params", "duration_ms"),
    [
        ("izhikevich_2003.yaml", {}, 1000.0),
        ("brunel_delta.yaml", {"NE": 1000, "NI": 250}, 1000.0),
    ],
)
def test_rates_on_pynn_nest_agree_with_brainsim(
    nest_python: Path, tmp_path: Path, circuit: str, params: dict[str, int], duration_ms: float
) -> None:
    circuit_path = CIRCUITS / circuit
    loaded = load_circuit(circuit_path, parameters=params)
    PynnBackend().compile(loaded, tmp_path / "pynn")
    names = list(loaded.recordings.spikes)
    theirs = run_script(nest_python, tmp_path / "pynn", names)
    flags = [f"--param={k}={v}" for k, v in params.items()]
    ours = brainsim_counts(circuit_path, tmp_path / "run.zarr", flags, duration_ms)
    for name in names:
        size = loaded.populations[name].size
        rate, reference = ours[name] / size / 1.0, theirs[name] / size / 1.0
        assert rate > 1.0  # a network that fires
        assert rates_agree(rate, reference), (name, rate, reference)


@pytest.mark.slow
def test_stdp_on_pynn_nest_learns_what_brainsim_learns(nest_python: Path, tmp_path: Path) -> None:
    # docs/targets.md quotes the same comparison at 2,000 + 500 neurons (in-degrees 200, 50).
    params = {"NE": 1000, "NI": 250, "CE": 100, "CI": 25}
    circuit_path = CIRCUITS / "brunel_stdp.yaml"
    loaded = load_circuit(circuit_path, parameters=params)
    PynnBackend().compile(loaded, tmp_path / "pynn")
    theirs = run_script(nest_python, tmp_path / "pynn", ["E", "I"])
    flags = [f"--param={k}={v}" for k, v in params.items()]
    ours = brainsim_counts(circuit_path, tmp_path / "run.zarr", flags, 1000.0)
    for name in ("E", "I"):
        size = loaded.populations[name].size
        assert rates_agree(ours[name] / size, theirs[name] / size), (name, ours, theirs)
    learned = np.load(tmp_path / "pynn" / "results" / "EE.excitatory.weights.npz")
    final = open_store(tmp_path / "run.zarr").weights("EE").isel(time=-1).values
    assert learned["weight"].size == final.size == 1000 * 100
    # Both moved away from the initial 0.1 mV by STDP, to the same mean and spread.
    assert abs(learned["weight"].mean() - 0.1) > 1e-5
    assert learned["weight"].mean() == pytest.approx(final.mean(), rel=5e-3)
    assert learned["weight"].std() == pytest.approx(final.std(), rel=0.05)
    assert learned["weight"].max() <= 0.2 + 1e-9  # w_max in mV, as brainsim's


def test_declared_pynn_names_are_handled() -> None:
    """Every PyNN cell type a model declares is one the script writes (its parameters and
    state translated), and the synapse models with a PyNN name are those it connects."""
    from brainsim.backends.pynn import _CELL_PARAMETERS, _STATE
    from brainsim.models import NEURON_MODELS, SYNAPSE_MODELS

    declared = {v.target_name("pynn") for m in NEURON_MODELS.values() for v in m.variants()} - {
        None
    }
    assert declared == set(_CELL_PARAMETERS) == set(_STATE)
    for model in NEURON_MODELS.values():
        for variant in model.variants():
            cell = variant.target_name("pynn")
            if cell is not None:
                names = {p.name for p in model.all_parameters()}
                assert {ours for ours, _ in _CELL_PARAMETERS[cell].values()} <= names
                assert set(_STATE[cell].values()) <= {s.name for s in variant.state}
    pynn_synapses = {m.name: m.target_name("pynn") for m in SYNAPSE_MODELS.values()}
    assert pynn_synapses == {
        "static": "StaticSynapse",
        "stdp": "STDPMechanism",
        "stdp_power_law": None,
    }
