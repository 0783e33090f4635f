"""Iris with a population code and an STDP readout taught by a teacher signal.

Each of Iris' four features (scaled to [0, 1] by the training split's range) is read by
``n_per_feature`` input neurons with Gaussian tuning curves (a ``population`` stimulus replayed
by ``parrot`` neurons, so that their synapses can learn). Every input neuron projects to every
output neuron through STDP synapses (NEST's ``stdp_synapse``, additive, potentiation-dominated);
the outputs are ``n_per_class`` LIF neurons per class. While a training sample is shown, a
teacher drives the outputs of its class (a ``rate`` stimulus of the one-hot labels, excitatory)
and silences the others (the same with the complementary labels, inhibitory), so each output
fires only for its own class and STDP strengthens the inputs that are active with it: its
weights grow with how often each input fires during its class, a template of the class in the
population code.

``python -m examples.iris --out DIR`` writes the data, the training circuit and the test
circuits into ``DIR``, trains (``epochs`` passes over the training split, each in a new random
order), then tests with the synapses frozen (``from_file`` connections) and without the
teacher, on the held-out split: once with the learned weights and once with the random initial
ones (untrained). docs/examples.md gives the figures it reaches.

Scoring: the answer to a test sample is the class whose output neurons fire most on average
while it is shown (:func:`brainsim.analysis.decode_rate` over the classes' groups, the
mapping the teacher imposed). Because the untrained network's outputs have no class, it is
also scored as Diehl & Cook do for an unsupervised network: each output is labelled with the
class it fires most for in a frozen run over the training split
(:func:`brainsim.analysis.assign_labels`) and a test sample gets the class whose labelled
outputs fire most (:func:`brainsim.analysis.classify_by_assignment`); the learned network is
scored that way too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from brainsim.analysis import (
    accuracy,
    assign_labels,
    classify_by_assignment,
    confusion_matrix,
    decode_rate,
    sample_responses,
)
from examples.common import (
    additive_stdp,
    example_parser,
    final_weights,
    run_circuit,
    save_scores,
    split_data,
    write_circuit,
    write_connections,
)

__all__ = ["Setup", "circuit", "class_groups", "load_data", "main", "run_experiment"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

N_CLASSES = 3
N_FEATURES = 4


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything the experiment depends on; the defaults are the documented run."""

    n_train: int = 100
    """Training samples (the rest of the 150 are held out); a seeded random split."""
    split_seed: int = 0
    n_per_feature: int = 10
    sigma: float = 0.1
    """Width of the input neurons' tuning curves, in the scaled features' units."""
    input_rate_hz: float = 150.0
    n_per_class: int = 5
    present_ms: float = 200.0
    rest_ms: float = 50.0
    epochs: int = 3
    order_seed: int = 0
    dt_ms: float = 1.0
    weight_low_pA: float = 0.0
    weight_high_pA: float = 100.0
    """Initial weights are uniform on [weight_low_pA, weight_high_pA)."""
    w_max_pA: float = 400.0
    learning_rate: float = 2e-4
    """NEST's ``lambda``: a potentiation step is ``lambda * w_max`` at full trace."""
    depression_ratio: float = 0.5
    """NEST's ``alpha`` (< 1: potentiation wins for inputs active with the output)."""
    tau_plus_ms: float = 20.0
    tau_minus_ms: float = 20.0
    teacher_rate_hz: float = 100.0
    teacher_pA: float = 600.0
    silencer_pA: float = -1000.0
    weight_seed: int = 1
    """Seed of the circuit (the initial weights and the Poisson draws)."""


def load_data(setup: Setup) -> tuple[FloatArray, IntArray, FloatArray, IntArray]:
    """``(train features, train labels, test features, test labels)``: scikit-learn's Iris,
    split at random with ``split_seed``, each feature scaled to [0, 1] by the training split's
    minimum and maximum (test values may fall a little outside)."""
    from sklearn.datasets import load_iris  # type: ignore[import-untyped]

    data = load_iris()
    features = np.asarray(data.data, dtype=np.float64)
    labels = np.asarray(data.target, dtype=np.int64)
    train_x, train_y, test_x, test_y = split_data(features, labels, setup.n_train, setup.split_seed)
    low, high = train_x.min(axis=0), train_x.max(axis=0)
    return (train_x - low) / (high - low), train_y, (test_x - low) / (high - low), test_y


def class_groups(setup: Setup) -> dict[int, IntArray]:
    """Output node ids of each class: class ``c`` owns ``c * n_per_class ..``."""
    n = setup.n_per_class
    return {c: np.arange(c * n, (c + 1) * n, dtype=np.int64) for c in range(N_CLASSES)}


def circuit(
    setup: Setup,
    data_file: str,
    n_samples: int,
    order: Sequence[int] | IntArray | None,
    connections_file: str,
    teacher_files: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The circuit: ``n_samples`` presentations of ``data_file`` (in ``order``, default: each
    row once), population coded, read out by the output neurons through ``connections_file``.

    With ``teacher_files`` (the one-hot labels of ``data_file``'s rows and their complement,
    repeated for each output of a class) the synapses learn with STDP and the teacher drives
    the outputs; without, the synapses are static and there is no teacher.
    """
    timing: dict[str, Any] = {"present_ms": setup.present_ms, "rest_ms": setup.rest_ms}
    if order is not None:
        timing["order"] = [int(k) for k in order]
    projection: dict[str, Any] = {
        "source": "Inputs",
        "target": "Outputs",
        "connectivity": {"rule": "from_file", "path": connections_file},
        "weight": 1.0,  # the file's weights replace it
        "delay_ms": setup.dt_ms,
    }
    stimuli: dict[str, Any] = {
        "features": {
            "type": "population",
            "targets": ["Inputs"],
            "data": data_file,
            "n_neurons_per_feature": setup.n_per_feature,
            "low": 0.0,
            "high": 1.0,
            "sigma": setup.sigma,
            "max_rate_hz": setup.input_rate_hz,
            "weight": 1.0,
        }
        | timing
    }
    if teacher_files is not None:
        projection["synapse"] = additive_stdp(
            setup.tau_plus_ms,
            setup.tau_minus_ms,
            setup.learning_rate,
            setup.depression_ratio,
            setup.w_max_pA,
        )
        own, others = teacher_files
        for name, file, weight in (
            ("teacher", own, setup.teacher_pA),
            ("silencer", others, setup.silencer_pA),
        ):
            stimuli[name] = {
                "type": "rate",
                "targets": ["Outputs"],
                "data": file,
                "max_rate_hz": setup.teacher_rate_hz,
                "weight": weight,
            } | timing
    duration = n_samples * (setup.present_ms + setup.rest_ms)
    return {
        "apiVersion": "brainsim/v1",
        "name": "iris" + ("-training" if teacher_files else "-test"),
        "description": "Iris: population-coded features, an STDP readout taught by a teacher "
        "signal (examples/iris.py).",
        "simulation": {"dt_ms": setup.dt_ms, "duration_ms": duration, "seed": setup.weight_seed},
        "populations": {
            # Parrots repeat the stimulus' spikes, so the inputs are a population whose
            # synapses can learn.
            "Inputs": {"size": N_FEATURES * setup.n_per_feature, "model": "parrot"},
            "Outputs": {
                "size": N_CLASSES * setup.n_per_class,
                "model": "lif",
                "params": {
                    "tau_m_ms": 20.0,
                    "c_m_pF": 250.0,
                    "e_l_mV": -70.0,
                    "v_reset_mV": -70.0,
                    "v_th_mV": -55.0,
                    "t_ref_ms": 2.0,
                    "synapse": "exponential",
                    "tau_syn_ex_ms": 5.0,
                    "tau_syn_in_ms": 5.0,
                },
            },
        },
        "stimuli": stimuli,
        "projections": {"InputsOutputs": projection},
        "recordings": {"spikes": ["Outputs"]},
    }


def _score(
    train_counts: IntArray,
    train_labels: IntArray,
    test_counts: IntArray,
    test_labels: IntArray,
    groups: dict[int, IntArray],
) -> dict[str, Any]:
    by_class = decode_rate(test_counts, groups)
    assignments = assign_labels(train_counts, train_labels, N_CLASSES)
    by_assignment = classify_by_assignment(test_counts, assignments)
    return {
        "accuracy": accuracy(test_labels, by_class),
        "accuracy_train": accuracy(train_labels, decode_rate(train_counts, groups)),
        "accuracy_assigned": accuracy(test_labels, by_assignment),
        "confusion": confusion_matrix(test_labels, by_class, N_CLASSES).tolist(),
        "no_answer": float(np.mean(by_class < 0)),
        "spikes_per_sample": float(test_counts.sum(axis=1).mean()),
    }


def run_experiment(out: Path, setup: Setup, ranks: int = 1) -> dict[str, Any]:
    """Train, then test the learned and the untrained weights on the held-out split; the
    figures as a dict (``learned`` and ``untrained``: accuracies, confusion matrix)."""
    out.mkdir(parents=True, exist_ok=True)
    train_x, train_y, test_x, test_y = load_data(setup)
    np.save(out / "train.npy", train_x)
    np.save(out / "test.npy", test_x)
    one_hot = np.repeat(np.eye(N_CLASSES)[train_y], setup.n_per_class, axis=1)
    np.save(out / "teacher.npy", one_hot)
    np.save(out / "silencer.npy", 1.0 - one_hot)
    n_inputs = N_FEATURES * setup.n_per_feature
    n_outputs = N_CLASSES * setup.n_per_class
    source = np.tile(np.arange(n_inputs, dtype=np.int64), n_outputs)
    target = np.repeat(np.arange(n_outputs, dtype=np.int64), n_inputs)
    rng = np.random.default_rng(setup.weight_seed)
    initial = rng.uniform(setup.weight_low_pA, setup.weight_high_pA, source.size)
    write_connections(out / "initial_weights.npz", source, target, initial)
    order_rng = np.random.default_rng(setup.order_seed)
    order = np.concatenate([order_rng.permutation(train_y.size) for _ in range(setup.epochs)])
    training = circuit(
        setup,
        "train.npy",
        order.size,
        order,
        "initial_weights.npz",
        ("teacher.npy", "silencer.npy"),
    )
    trained = run_circuit(
        write_circuit(training, out / "training.yaml"), out / "training.zarr", ranks
    )
    learned_source, learned_target, learned = final_weights(trained, "InputsOutputs")
    write_connections(out / "learned_weights.npz", learned_source, learned_target, learned)
    result: dict[str, Any] = {"setup": asdict(setup)}
    groups = class_groups(setup)
    for name in ("untrained", "learned"):
        weights = "initial_weights.npz" if name == "untrained" else "learned_weights.npz"
        counts = []
        for split, data, n in (
            ("train", "train.npy", train_y.size),
            ("test", "test.npy", test_y.size),
        ):
            document = circuit(setup, data, n, None, weights)
            recording = run_circuit(
                write_circuit(document, out / f"{name}_{split}.yaml"),
                out / f"{name}_{split}.zarr",
                ranks,
            )
            responses = sample_responses(recording, "features", "Outputs", lag_ms=2 * setup.dt_ms)
            if responses.n_left_out:
                raise RuntimeError(f"{responses.n_left_out} presentations were cut short")
            counts.append(responses.counts)
        result[name] = _score(counts[0], train_y, counts[1], test_y, groups)
    w = learned.reshape(n_outputs, n_inputs)
    result["learned_weights"] = {
        "mean_pA": float(learned.mean()),
        "fraction_near_w_max": float(np.mean(learned > 0.9 * setup.w_max_pA)),
        "per_class_mean_pA": [float(w[g].mean()) for g in groups.values()],
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Setup()
    parser = example_parser("examples.iris", __doc__)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate, help="NEST's lambda"
    )
    parser.add_argument("--split-seed", type=int, default=defaults.split_seed)
    args = parser.parse_args(argv)
    setup = replace(
        defaults,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        split_seed=args.split_seed,
    )
    result = run_experiment(args.out, setup, ranks=args.ranks)
    save_scores(args.out, result)
    for name in ("untrained", "learned"):
        s = result[name]
        print(
            f"{name:>9}: held-out accuracy {s['accuracy']:.1%} (by class groups), "
            f"{s['accuracy_assigned']:.1%} (labels assigned from training responses); "
            f"training split {s['accuracy_train']:.1%}; {s['spikes_per_sample']:.0f} "
            "output spikes per sample"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
