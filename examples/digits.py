"""Unsupervised digits with STDP (after Diehl & Cook 2015, Front. Comput. Neurosci. 9:99).

scikit-learn's bundled 8x8 digits (1,797 images, no download), split at random into 1,000
training and 797 held-out images. Each pixel is a rate-coded input (``rate`` stimulus, up to
200 Hz for a white pixel, replayed by ``parrot`` neurons so that their synapses can learn); an
excitatory layer of LIF neurons reads all 64 inputs through STDP synapses and inhibits itself
(all to all), so that the neurons compete for each image: the first to fire hold the others
back, and about a fifth of them answer an image. No labels are used in training.
Afterwards each neuron is labelled with the digit it fires most for over training images (with
its synapses frozen), and a held-out image gets the digit whose labelled neurons fire most
(:func:`brainsim.analysis.assign_labels`, :func:`brainsim.analysis.classify_by_assignment`).
The same network with its random initial weights, labelled and scored the same way, is the
untrained baseline.

What makes the neurons learn different digits, and where it differs from the paper:

- STDP (NEST's ``stdp_synapse``, additive, ``alpha = 0``): a synapse grows at each
  postsynaptic spike by ``lambda * w_max`` times its presynaptic trace, i.e. with how much its
  pixel fired just before; as in Diehl & Cook's rule, which potentiates at postsynaptic spikes
  by the presynaptic trace and has almost no pre-after-post depression.
- Their rule subtracts an offset from the trace (``x_pre - x_tar``), so that pixels that stay
  dark while the neuron fires lose weight, and they rescale every neuron's weights to a fixed
  sum after each image. brainsim has neither, so training runs in chunks of ``chunk`` images
  and between chunks the example does the equivalent: each neuron's weight change in the chunk
  minus its mean over the neuron's 64 synapses (a subtractive normalization, weights kept
  >= 0), then its weights rescaled to the sum ``weight_sum_pA``.
- Their adaptive threshold (each spike raises the neuron's threshold a little, for good) keeps
  one neuron from winning every image. brainsim's LIF has no adaptive threshold, so the example
  uses two stand-ins. Long term: between chunks each neuron's threshold offset ``theta`` grows by
  ``theta_pA_per_spike`` times its spikes in the chunk minus the layer's mean, applied as a
  constant current ``-theta`` through a ``Bias`` projection from one parrot that fires every
  step (the frozen test networks keep it, as the paper keeps its thresholds). Short term, within
  a chunk: each excitatory neuron drives its own ``Adapt`` neuron, whose slow excitatory
  synapses (``adapt_tau_ms``) integrate its spikes; the Adapt neuron inhibits it back, so a
  neuron that has won several images in a row yields to others (training circuits only).
- Scale and neurons: the paper's network (784 inputs, 100 to 6,400 neurons, 60,000 images
  shown for 350 ms, conductance-based synapses, a separate inhibitory population) would not
  fit a test suite; 8x8 digits with 64 inputs, 100 current-based LIF neurons (NEST's
  ``iaf_psc_exp``), 500 images shown for 100 ms and direct inhibitory connections do. 400
  neurons trained on all 1,000 training images (``--neurons 400 --train 1000 --lateral-pA
  -250``) do better (docs/examples.md).

``python -m examples.digits --out DIR`` writes the data, every circuit, connection and bias
file into ``DIR``, trains, then labels and scores the learned and the untrained networks.
docs/examples.md gives the figures it reaches.
"""

from __future__ import annotations

import math
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

__all__ = [
    "Setup",
    "circuit",
    "load_data",
    "main",
    "normalize_weights",
    "run_experiment",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

N_PIXELS = 64
N_CLASSES = 10
TAU_SYN_MS = 5.0
"""The excitatory neurons' synaptic time constant (both channels)."""


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything the experiment depends on; the defaults are the documented run."""

    n_split: int = 1000
    """Images in the training split (the other 797 are held out); a seeded random split."""
    split_seed: int = 0
    n_train: int = 500
    """Training images (the first of the training split) shown per epoch, in a new order each."""
    epochs: int = 1
    n_assign: int = 1000
    """Training-split images (the first) whose frozen responses label the neurons."""
    n_test: int = 797
    """Held-out images scored (the first of the held-out split)."""
    n_exc: int = 100
    present_ms: float = 100.0
    rest_ms: float = 50.0
    max_rate_hz: float = 200.0
    dt_ms: float = 1.0
    chunk: int = 10
    """Images per training run; weights and thresholds are updated between runs."""
    initial_high_pA: float = 30.0
    """Initial weights: uniform on [0, initial_high_pA), then rescaled to ``weight_sum_pA``."""
    weight_sum_pA: float = 960.0
    """Every neuron's 64 input weights sum to this (mean 15 pA)."""
    w_max_pA: float = 200.0
    learning_rate: float = 1e-3
    """NEST's ``lambda``: a potentiation step is ``lambda * w_max`` at full trace."""
    depression_ratio: float = 0.0
    """NEST's ``alpha``."""
    tau_plus_ms: float = 20.0
    tau_minus_ms: float = 20.0
    lateral_pA: float = -500.0
    """Weight of the all-to-all inhibition between excitatory neurons."""
    theta_pA_per_spike: float = 4.0
    adapt_pA: float = 3.0
    """Weight of an excitatory neuron's spike onto its Adapt neuron."""
    adapt_inhibition_pA: float = -2000.0
    adapt_tau_ms: float = 7500.0
    test_theta: bool = True
    """Whether the frozen networks keep the learned thresholds (as in the paper)."""
    seed: int = 1
    """Seed of the initial weights and of the circuits' Poisson draws."""


def load_data(setup: Setup) -> tuple[FloatArray, IntArray, FloatArray, IntArray]:
    """``(train images, train labels, held-out images, held-out labels)``: scikit-learn's 8x8
    digits, intensities scaled from 0..16 to 0..1, split at random with ``split_seed``."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    data = load_digits()
    images = np.asarray(data.data, dtype=np.float64) / 16.0
    labels = np.asarray(data.target, dtype=np.int64)
    return split_data(images, labels, setup.n_split, setup.split_seed)


def circuit(
    setup: Setup,
    data_file: str,
    n_samples: int,
    order: Sequence[int] | IntArray | None,
    weights_file: str,
    bias_file: str | None,
    *,
    plastic: bool,
) -> dict[str, Any]:
    """The circuit: ``n_samples`` presentations of ``data_file`` (in ``order``, default: each
    row once) read by the excitatory layer through ``weights_file``.

    ``bias_file`` (a ``from_file`` list from the Bias parrot to every excitatory neuron) holds
    the thresholds' currents; without it there is none. ``plastic``: the input synapses learn
    with STDP and the Adapt population is there; otherwise the synapses are frozen.
    """
    timing: dict[str, Any] = {"present_ms": setup.present_ms, "rest_ms": setup.rest_ms}
    if order is not None:
        timing["order"] = [int(k) for k in order]
    duration = n_samples * (setup.present_ms + setup.rest_ms)
    exc_params = {
        "tau_m_ms": 20.0,
        "c_m_pF": 250.0,
        "e_l_mV": -70.0,
        "v_reset_mV": -70.0,
        "v_th_mV": -55.0,
        "t_ref_ms": 2.0,
        "synapse": "exponential",
        "tau_syn_ex_ms": TAU_SYN_MS,
        "tau_syn_in_ms": TAU_SYN_MS,
    }
    populations: dict[str, Any] = {
        # Parrots repeat the stimulus' spikes, so the pixels are a population whose synapses
        # can learn.
        "Pixels": {"size": N_PIXELS, "model": "parrot"},
        "Exc": {"size": setup.n_exc, "model": "lif", "params": exc_params},
    }
    input_projection: dict[str, Any] = {
        "source": "Pixels",
        "target": "Exc",
        "connectivity": {"rule": "from_file", "path": weights_file},
        "weight": 1.0,  # the file's weights replace it
        "delay_ms": setup.dt_ms,
    }
    if plastic:
        input_projection["synapse"] = additive_stdp(
            setup.tau_plus_ms,
            setup.tau_minus_ms,
            setup.learning_rate,
            setup.depression_ratio,
            setup.w_max_pA,
        )
    projections: dict[str, Any] = {
        "PixelsExc": input_projection,
        "Lateral": {
            "source": "Exc",
            "target": "Exc",
            "connectivity": {"rule": "all_to_all", "allow_autapses": False},
            "weight": setup.lateral_pA,
            "delay_ms": setup.dt_ms,
        },
    }
    stimuli: dict[str, Any] = {
        "pixels": {
            "type": "rate",
            "targets": ["Pixels"],
            "data": data_file,
            "max_rate_hz": setup.max_rate_hz,
            "weight": 1.0,
        }
        | timing
    }
    if bias_file is not None:
        # One parrot that fires in every step: a spike per step through a synapse of weight b
        # holds a current of b / (1 - exp(-dt / tau_syn)) (see bias_weights).
        populations["Bias"] = {"size": 1, "model": "parrot"}
        stimuli["always"] = {
            "type": "rate",
            "targets": ["Bias"],
            "data": [[1.0]],
            "present_ms": duration,
            "max_rate_hz": 1000.0 / setup.dt_ms,
            "weight": 1.0,
        }
        projections["Bias"] = {
            "source": "Bias",
            "target": "Exc",
            "connectivity": {"rule": "from_file", "path": bias_file},
            "weight": 1.0,
            "delay_ms": setup.dt_ms,
        }
    if plastic:
        populations["Adapt"] = {
            "size": setup.n_exc,
            "model": "lif",
            "params": exc_params
            | {
                "e_l_mV": -56.0,
                "tau_m_ms": 10.0,
                "tau_syn_ex_ms": setup.adapt_tau_ms,
            },
        }
        projections["ExcAdapt"] = {
            "source": "Exc",
            "target": "Adapt",
            "connectivity": {"rule": "one_to_one"},
            "weight": setup.adapt_pA,
            "delay_ms": setup.dt_ms,
        }
        projections["AdaptExc"] = {
            "source": "Adapt",
            "target": "Exc",
            "connectivity": {"rule": "one_to_one"},
            "weight": setup.adapt_inhibition_pA,
            "delay_ms": setup.dt_ms,
        }
    return {
        "apiVersion": "brainsim/v1",
        "name": "digits" + ("-training" if plastic else "-test"),
        "description": "Unsupervised 8x8 digits with STDP, lateral inhibition and adaptive "
        "thresholds (after Diehl & Cook 2015; examples/digits.py).",
        "simulation": {"dt_ms": setup.dt_ms, "duration_ms": duration, "seed": setup.seed},
        "populations": populations,
        "stimuli": stimuli,
        "projections": projections,
        "recordings": {"spikes": ["Exc"]},
    }


def normalize_weights(before: FloatArray, after: FloatArray, weight_sum: float) -> FloatArray:
    """``[n_exc, n_pixels]`` weights after a chunk: each neuron's STDP change minus its mean over
    the neuron's synapses (kept >= 0), then rescaled so that each neuron's weights sum to
    ``weight_sum`` (a neuron whose weights all reached 0 gets them equal)."""
    change = after - before
    weights = np.maximum(before + change - change.mean(axis=1, keepdims=True), 0.0)
    sums = weights.sum(axis=1, keepdims=True)
    flat = np.full_like(weights, weight_sum / weights.shape[1])
    scaled = weights * (weight_sum / np.where(sums > 0, sums, 1.0))
    return np.asarray(np.where(sums > 0, scaled, flat), dtype=np.float64)


def bias_weights(setup: Setup, theta_pA: FloatArray) -> FloatArray:
    """Weights from the Bias parrot (a spike every step) that hold a current ``-theta``."""
    return np.asarray(-theta_pA * (1.0 - math.exp(-setup.dt_ms / TAU_SYN_MS)), dtype=np.float64)


def _write_weights(path: Path, weights: FloatArray) -> None:
    n_exc, n_pixels = weights.shape
    write_connections(
        path,
        np.tile(np.arange(n_pixels), n_exc),
        np.repeat(np.arange(n_exc), n_pixels),
        weights.ravel(),
    )


def _write_bias(path: Path, setup: Setup, theta_pA: FloatArray) -> None:
    write_connections(
        path,
        np.zeros(setup.n_exc, dtype=np.int64),
        np.arange(setup.n_exc),
        bias_weights(setup, theta_pA),
    )


def _labelled_accuracy(
    out: Path,
    setup: Setup,
    name: str,
    weights_file: str,
    bias_file: str | None,
    labels: tuple[IntArray, IntArray],
    ranks: int,
) -> dict[str, Any]:
    """Label the frozen network's neurons from ``n_assign`` training images, score it on
    ``n_test`` held-out images."""
    counts = []
    for split, data, n in (
        ("assign", "train.npy", setup.n_assign),
        ("test", "test.npy", setup.n_test),
    ):
        document = circuit(setup, data, n, None, weights_file, bias_file, plastic=False)
        recording = run_circuit(
            write_circuit(document, out / f"{name}_{split}.yaml"),
            out / f"{name}_{split}.zarr",
            ranks,
        )
        responses = sample_responses(recording, "pixels", "Exc", lag_ms=2 * setup.dt_ms)
        if responses.n_left_out:
            raise RuntimeError(f"{responses.n_left_out} presentations were cut short")
        counts.append(responses.counts)
    train_labels, test_labels = labels[0][: setup.n_assign], labels[1][: setup.n_test]
    assignments = assign_labels(counts[0], train_labels, N_CLASSES)
    answers = classify_by_assignment(counts[1], assignments)
    return {
        "accuracy": accuracy(test_labels, answers),
        "no_answer": float(np.mean(answers < 0)),
        "confusion": confusion_matrix(test_labels, answers, N_CLASSES).tolist(),
        "neurons_per_label": np.bincount(
            assignments[assignments >= 0], minlength=N_CLASSES
        ).tolist(),
        "active_neurons": int(np.count_nonzero(counts[1].sum(axis=0))),
        "spikes_per_image": float(counts[1].sum(axis=1).mean()),
    }


def run_experiment(out: Path, setup: Setup, ranks: int = 1) -> dict[str, Any]:
    """Train in chunks, then label and score the learned and the untrained networks; the
    figures as a dict (``learned``, ``untrained``: accuracy on the held-out images and more)."""
    out.mkdir(parents=True, exist_ok=True)
    train_x, train_y, test_x, test_y = load_data(setup)
    if not (setup.n_train <= train_y.size and setup.n_assign <= train_y.size):
        raise ValueError("n_train and n_assign must not exceed the training split")
    if setup.n_test > test_y.size:
        raise ValueError(f"n_test must not exceed the {test_y.size} held-out images")
    np.save(out / "train.npy", train_x)
    np.save(out / "test.npy", test_x)
    rng = np.random.default_rng(setup.seed)
    initial = rng.uniform(0.0, setup.initial_high_pA, (setup.n_exc, N_PIXELS))
    initial *= setup.weight_sum_pA / initial.sum(axis=1, keepdims=True)
    _write_weights(out / "initial_weights.npz", initial)
    order = np.concatenate([rng.permutation(setup.n_train) for _ in range(setup.epochs)]).astype(
        np.int64
    )
    weights = initial.copy()
    theta = np.zeros(setup.n_exc)
    spikes = np.zeros(setup.n_exc, dtype=np.int64)
    curve = []
    for first in range(0, order.size, setup.chunk):
        part = order[first : first + setup.chunk]
        _write_weights(out / "chunk_weights.npz", weights)
        _write_bias(out / "chunk_bias.npz", setup, theta)
        document = circuit(
            setup,
            "train.npy",
            part.size,
            part,
            "chunk_weights.npz",
            "chunk_bias.npz",
            plastic=True,
        )
        recording = run_circuit(
            write_circuit(document, out / "training.yaml"), out / "training.zarr", ranks
        )
        source, target, values = final_weights(recording, "PixelsExc")
        after = np.zeros_like(weights)
        after[target, source] = values
        weights = normalize_weights(weights, after, setup.weight_sum_pA)
        fired = np.bincount(recording.spikes("Exc").node_ids, minlength=setup.n_exc)
        theta += setup.theta_pA_per_spike * (fired - fired.mean())
        spikes += fired
        curve.append(
            {"images": int(first + part.size), "neurons_firing": int(np.count_nonzero(fired))}
        )
    _write_weights(out / "learned_weights.npz", weights)
    _write_bias(out / "learned_bias.npz", setup, theta)
    labels = (train_y, test_y)
    result: dict[str, Any] = {"setup": asdict(setup)}
    result["untrained"] = _labelled_accuracy(
        out, setup, "untrained", "initial_weights.npz", None, labels, ranks
    )
    result["learned"] = _labelled_accuracy(
        out,
        setup,
        "learned",
        "learned_weights.npz",
        "learned_bias.npz" if setup.test_theta else None,
        labels,
        ranks,
    )
    result["training"] = {
        "spikes_per_image": float(spikes.sum() / max(order.size, 1)),
        "neurons_that_fired": int(np.count_nonzero(spikes)),
        "theta_pA": np.percentile(theta, [0, 25, 50, 75, 100]).tolist(),
        "curve": curve[:: max(1, len(curve) // 10)],
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Setup()
    parser = example_parser("examples.digits", __doc__)
    parser.add_argument("--train", type=int, default=defaults.n_train, help="training images")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--neurons", type=int, default=defaults.n_exc)
    parser.add_argument(
        "--lateral-pA",
        type=float,
        default=defaults.lateral_pA,
        help="weight of the all-to-all inhibition",
    )
    parser.add_argument("--assign", type=int, default=defaults.n_assign, help="labelling images")
    parser.add_argument("--test", type=int, default=defaults.n_test, help="held-out images")
    args = parser.parse_args(argv)
    setup = replace(
        defaults,
        n_train=args.train,
        epochs=args.epochs,
        n_exc=args.neurons,
        lateral_pA=args.lateral_pA,
        n_assign=args.assign,
        n_test=args.test,
    )
    result = run_experiment(args.out, setup, ranks=args.ranks)
    save_scores(args.out, result)
    for name in ("untrained", "learned"):
        s = result[name]
        print(
            f"{name:>9}: held-out accuracy {s['accuracy']:.1%} ({setup.n_test} images; "
            f"{s['no_answer']:.1%} without an answer), neurons per label "
            f"{s['neurons_per_label']}, {s['spikes_per_image']:.1f} spikes per image"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
