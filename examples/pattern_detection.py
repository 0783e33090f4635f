"""Pattern detection with STDP (after Masquelier, Guyonneau & Thorpe 2008, PLoS ONE 3:e1377).

A 50 ms spatio-temporal spike pattern of half of 1,000 afferents is pasted into their ongoing
activity at random times; every afferent keeps firing at the same rates inside and outside the
pattern (inhomogeneous Poisson trains whose rates wander between 0 and 90 Hz, at least one spike
every 50 ms, plus 10 Hz of independent noise spikes everywhere), so the pattern shows in no
rate, only in the repetition of precise spike times. Parrot neurons replay the afferents'
spikes; ten LIF neurons ("detectors", independent: no connections between them) each receive
all afferents through STDP synapses (NEST's ``stdp_synapse``, additive), with initial weights
drawn at random. They start by firing at 50-120 Hz everywhere; STDP depresses the synapses of
afferents whose spikes are not followed by a detector's spikes and strengthens those that
keep preceding them, and within a minute most detectors fire almost only, and always, when the
pattern is shown.

``python -m examples.pattern_detection --out DIR`` writes the input spike trains, the training
circuit and two test circuits into ``DIR``, trains, picks the detector that did best in the
last fifth of training, then scores every detector on fresh input (another realization of the
afferents' activity, the same pattern) with its synapses frozen (``from_file`` connections):
once at the initial weights (untrained) and once at the learned ones. docs/examples.md gives
the figures it reaches.

Scoring (:func:`detection_scores`): time is cut into the 50 ms sections the pattern is pasted
on, shifted by the input's latency to the neuron (:func:`response_lag_ms`). The hit rate is the
fraction of pattern sections in which the neuron fires, the false-alarm rate the fraction of
pattern-free sections in which it fires; the latency is the first spike's delay from the
pattern's onset, over hits.

Differences from the paper, and why: the paper's neuron is a spike-response model with
nearest-spike STDP (a+ = 2^-5, a- = 0.85 a+, tau+ = 16.8 ms, tau- = 33.7 ms), 2,000 afferents
and one neuron. brainsim's rule is NEST's all-to-all pairing; with all-to-all pairs the paper's
strongly depression-dominated window (a- tau- / a+ tau+ = 1.7) silences the neuron before it
locks onto the pattern, so this example uses Song, Miller & Abbott's (2000) balance of a
slightly depression-dominated window (tau- = tau+ = 16.8 ms, alpha = 1.08), under which
correlated inputs win the competition; w_max (7 pA, 1.5 times the mean initial weight) bounds
the drive the pattern's afferents can reach, so a selective neuron does not drift back into
firing outside the pattern. The detectors are NEST's ``iaf_psc_exp`` with the paper's membrane
and synaptic time constants (10 ms, 2.5 ms), reset 30 mV below rest (the paper's neuron has a
strong negative after-potential). Whether one neuron locks onto the pattern depends on its
start (about half of them do); ten independent ones make the outcome dependable.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from examples.common import (
    additive_stdp,
    example_parser,
    run_circuit,
    save_scores,
    write_circuit,
    write_connections,
)

__all__ = [
    "Inputs",
    "Scores",
    "Setup",
    "afferent_activity",
    "circuit",
    "detection_scores",
    "detects",
    "main",
    "make_inputs",
    "response_lag_ms",
    "run_experiment",
]

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything the experiment depends on; the defaults are the documented run."""

    n_afferents: int = 1000
    pattern_afferents: int = 500
    dt_ms: float = 1.0
    pattern_ms: float = 50.0
    p_pattern: float = 0.25
    """Chance that a 50 ms section (not following a pattern section) shows the pattern."""
    max_rate_hz: float = 90.0
    max_slope_hz_per_s: float = 1800.0
    slope_step_hz_per_s: float = 360.0
    max_silence_ms: float = 50.0
    noise_hz: float = 10.0
    train_ms: float = 80000.0
    test_ms: float = 20000.0
    input_seed: int = 2
    reset_mV: float = -100.0
    n_detectors: int = 10
    weight_pA: float = 4.75
    weight_spread_pA: float = 1.0
    """Initial weights are uniform on ``weight_pA -+ weight_spread_pA`` (0: all ``weight_pA``)."""
    w_max_pA: float = 7.0
    learning_rate: float = 0.005
    """NEST's ``lambda``: a potentiation step is ``lambda * w_max`` at full trace."""
    depression_ratio: float = 1.08
    """NEST's ``alpha``."""
    tau_plus_ms: float = 16.8
    tau_minus_ms: float = 16.8


@dataclass(frozen=True, slots=True)
class Inputs:
    """The afferents' spikes and where the pattern is."""

    times_ms: FloatArray
    node_ids: npt.NDArray[np.int64]
    pattern_sections: BoolArray
    """One entry per ``pattern_ms`` section of the run: whether it shows the pattern."""
    pattern: BoolArray
    """``[pattern steps, pattern_afferents]``: the pattern's spikes (without the noise)."""

    @property
    def onsets_ms(self) -> FloatArray:
        """When each presentation of the pattern begins."""
        section = float(self.pattern.shape[0])
        return np.flatnonzero(self.pattern_sections).astype(np.float64) * section


@dataclass(frozen=True, slots=True)
class Scores:
    """How well the neuron's spikes mark the pattern (see the module docstring)."""

    hit_rate: float
    false_alarm_rate: float
    false_alarms_hz: float
    latency_ms: float
    n_presentations: int
    output_rate_hz: float


def afferent_activity(rng: np.random.Generator, setup: Setup, n_steps: int) -> BoolArray:
    """``[n_steps, n_afferents]`` spikes: per afferent an inhomogeneous Poisson train.

    Its rate ``r`` (0 to ``max_rate_hz``) moves with a slope that takes a uniform random step
    of at most ``slope_step_hz_per_s`` each time step, bounded by ``max_slope_hz_per_s``; an
    afferent silent for ``max_silence_ms`` is made to fire.
    """
    n = setup.n_afferents
    dt_s = setup.dt_ms / 1000.0
    rate = rng.uniform(0.0, setup.max_rate_hz, n)
    slope = rng.uniform(-setup.max_slope_hz_per_s, setup.max_slope_hz_per_s, n)
    max_silence = round(setup.max_silence_ms / setup.dt_ms)
    silent = rng.integers(0, max_silence, n)
    spikes = np.zeros((n_steps, n), dtype=np.bool_)
    for step in range(n_steps):
        fired = rng.random(n) < rate * dt_s
        silent += 1
        fired |= silent >= max_silence
        silent[fired] = 0
        spikes[step] = fired
        slope = np.clip(
            slope + rng.uniform(-setup.slope_step_hz_per_s, setup.slope_step_hz_per_s, n),
            -setup.max_slope_hz_per_s,
            setup.max_slope_hz_per_s,
        )
        rate = np.clip(rate + slope * dt_s, 0.0, setup.max_rate_hz)
    return spikes


def make_inputs(
    setup: Setup, duration_ms: float, seed: int, pattern: BoolArray | None = None
) -> Inputs:
    """The afferents' spikes for ``duration_ms``, with the pattern pasted in.

    Without ``pattern``, the first ``pattern_afferents`` afferents' activity in a random section
    becomes the pattern. A section shows the pattern with probability ``p_pattern`` unless the
    section before it did; then every afferent gets independent ``noise_hz`` Poisson spikes.
    """
    rng = np.random.default_rng(seed)
    n_steps = round(duration_ms / setup.dt_ms)
    length = round(setup.pattern_ms / setup.dt_ms)
    spikes = afferent_activity(rng, setup, n_steps)
    n_sections = n_steps // length
    if pattern is None:
        first = int(rng.integers(0, n_sections)) * length
        pattern = spikes[first : first + length, : setup.pattern_afferents].copy()
    sections = np.zeros(n_sections, dtype=np.bool_)
    for k in range(1, n_sections):
        sections[k] = not sections[k - 1] and rng.random() < setup.p_pattern
    for shown in np.flatnonzero(sections):
        spikes[shown * length : (shown + 1) * length, : setup.pattern_afferents] = pattern
    spikes |= rng.random(spikes.shape) < setup.noise_hz * setup.dt_ms / 1000.0
    steps, afferents = np.nonzero(spikes)
    order = np.lexsort((steps, afferents))
    return Inputs(
        times_ms=(steps[order] * setup.dt_ms).astype(np.float64),
        node_ids=afferents[order].astype(np.int64),
        pattern_sections=sections,
        pattern=pattern,
    )


def response_lag_ms(setup: Setup) -> float:
    """How long an input spike takes to reach the neuron's membrane: the stimulus' delay into
    the afferent population, the afferent's spike one step later, the synaptic delay."""
    return 3 * setup.dt_ms


def circuit(
    setup: Setup, duration_ms: float, spikes_file: str, connections_file: str | None = None
) -> dict[str, Any]:
    """The circuit: parrots replaying ``spikes_file``, ``n_detectors`` LIF neurons reading them.

    With ``connections_file`` (a ``from_file`` list with weights) the synapses are static;
    without, they start at ``weight_pA`` and learn with STDP.
    """
    projection: dict[str, Any] = {"source": "Afferents", "target": "Detector"}
    if connections_file is None:
        projection |= {
            "connectivity": {"rule": "all_to_all"},
            "weight": {
                "uniform": {
                    "low": setup.weight_pA - setup.weight_spread_pA,
                    "high": setup.weight_pA + setup.weight_spread_pA,
                }
            }
            if setup.weight_spread_pA > 0
            else setup.weight_pA,
            "synapse": additive_stdp(
                setup.tau_plus_ms,
                setup.tau_minus_ms,
                setup.learning_rate,
                setup.depression_ratio,
                setup.w_max_pA,
            ),
        }
    else:
        projection |= {"connectivity": {"rule": "from_file", "path": connections_file}}
        # The file's weights replace this one.
        projection |= {"weight": setup.weight_pA}
    projection["delay_ms"] = setup.dt_ms
    recordings: dict[str, Any] = {"spikes": ["Detector"]}
    if connections_file is None:
        recordings["weights"] = [{"projection": "AD", "interval_ms": duration_ms / 10}]
    return {
        "apiVersion": "brainsim/v1",
        "name": "pattern-detection" + ("-test" if connections_file else "-training"),
        "description": "Masquelier et al. (2008): LIF neurons learn a repeated spike "
        "pattern hidden in its 1,000 afferents' activity (examples/pattern_detection.py).",
        "simulation": {"dt_ms": setup.dt_ms, "duration_ms": duration_ms, "seed": 1},
        "populations": {
            # Parrots (NEST's parrot_neuron) repeat the afferents' spikes, so the afferents
            # are a population whose synapses can learn.
            "Afferents": {"size": setup.n_afferents, "model": "parrot"},
            "Detector": {
                "size": setup.n_detectors,
                "model": "lif",
                "params": {
                    "tau_m_ms": 10.0,
                    "c_m_pF": 250.0,
                    "e_l_mV": -70.0,
                    "v_reset_mV": setup.reset_mV,
                    "v_th_mV": -55.0,
                    "t_ref_ms": 1.0,
                    "synapse": "exponential",
                    "tau_syn_ex_ms": 2.5,
                    "tau_syn_in_ms": 2.5,
                },
            },
        },
        "stimuli": {
            "afferents": {
                "type": "spike_trains",
                "targets": ["Afferents"],
                "data": {"file": spikes_file},
                "weight": 1.0,
            }
        },
        "projections": {"AD": projection},
        "recordings": recordings,
    }


def detection_scores(
    spike_times_ms: FloatArray, inputs: Inputs, setup: Setup, duration_ms: float
) -> Scores:
    """Hit rate, false alarms and latency of the neuron's spikes (module docstring)."""
    lag = response_lag_ms(setup)
    section_ms = setup.pattern_ms
    sections = inputs.pattern_sections
    shifted = np.asarray(spike_times_ms, dtype=np.float64) - lag
    index = np.floor(shifted / section_ms).astype(np.int64)
    inside = (index >= 0) & (index < sections.size)
    fired = np.zeros(sections.size, dtype=np.bool_)
    fired[index[inside]] = True
    n_patterns = int(sections.sum())
    n_free = int((~sections).sum())
    first = np.full(sections.size, np.inf)
    np.minimum.at(first, index[inside], shifted[inside] - index[inside] * section_ms)
    hits = sections & fired
    false_alarms = ~sections & fired
    free_spikes = int(np.count_nonzero(~sections[index[inside]]))
    return Scores(
        hit_rate=float(hits.sum() / max(n_patterns, 1)),
        false_alarm_rate=float(false_alarms.sum() / max(n_free, 1)),
        false_alarms_hz=free_spikes / (n_free * section_ms / 1000.0) if n_free else 0.0,
        latency_ms=float(first[hits].mean() + lag) if hits.any() else float("nan"),
        n_presentations=n_patterns,
        output_rate_hz=float(spike_times_ms.size / (duration_ms / 1000.0)),
    )


def _write_inputs(path: Path, inputs: Inputs) -> None:
    np.savez(path, times=inputs.times_ms, node_ids=inputs.node_ids)


def _training_curve(
    spikes: FloatArray, training: Inputs, setup: Setup, n_blocks: int = 10
) -> list[Scores]:
    """One neuron's scores in each of ``n_blocks`` equal parts of the training run."""
    block_ms = setup.train_ms / n_blocks
    per_block = round(block_ms / setup.pattern_ms)
    curve = []
    for b in range(n_blocks):
        lo = b * block_ms
        part = replace(
            training,
            pattern_sections=training.pattern_sections[b * per_block : (b + 1) * per_block],
        )
        inside = (spikes >= lo) & (spikes < lo + block_ms)
        curve.append(detection_scores(spikes[inside] - lo, part, setup, block_ms))
    return curve


def _by_neuron(times_ms: FloatArray, node_ids: npt.NDArray[np.int64], n: int) -> list[FloatArray]:
    return [times_ms[node_ids == i] for i in range(n)]


def detects(scores: Scores, hits: float = 0.9, false_alarms: float = 0.1) -> bool:
    """The issue's criterion: at least 90 % hits with at most 10 % false alarms."""
    return scores.hit_rate >= hits and scores.false_alarm_rate <= false_alarms


def run_experiment(out: Path, setup: Setup, ranks: int = 1) -> dict[str, Any]:
    """Train, pick the detector that learned best on the training run's last fifth, then test
    every detector on fresh input with its synapses frozen at their initial weights
    (untrained) and at the learned ones; the figures as a dict."""
    out.mkdir(parents=True, exist_ok=True)
    training = make_inputs(setup, setup.train_ms, seed=setup.input_seed)
    test = make_inputs(setup, setup.test_ms, seed=setup.input_seed + 1, pattern=training.pattern)
    _write_inputs(out / "training_spikes.npz", training)
    _write_inputs(out / "test_spikes.npz", test)
    trained = run_circuit(
        write_circuit(circuit(setup, setup.train_ms, "training_spikes.npz"), out / "training.yaml"),
        out / "training.zarr",
        ranks,
    )
    spikes = trained.spikes("Detector")
    curves = [
        _training_curve(times, training, setup)
        for times in _by_neuron(spikes.times_ms, spikes.node_ids, setup.n_detectors)
    ]
    late = [sum(c.hit_rate - c.false_alarm_rate for c in curve[-2:]) for curve in curves]
    chosen = int(np.argmax(late))
    weights = trained.weights("AD")
    source = np.asarray(weights["source"].values, dtype=np.int64)
    target = np.asarray(weights["target"].values, dtype=np.int64)
    result: dict[str, Any] = {
        "setup": asdict(setup),
        "chosen_detector": chosen,
        "training_curve": [asdict(c) for c in curves[chosen]],
    }
    for name, snapshot in (("untrained", 0), ("learned", -1)):
        values = np.asarray(weights.isel(time=snapshot).values, dtype=np.float64)
        connections = f"{name}_weights.npz"
        write_connections(out / connections, source, target, values)
        document = circuit(setup, setup.test_ms, "test_spikes.npz", connections)
        recording = run_circuit(
            write_circuit(document, out / f"test_{name}.yaml"), out / f"test_{name}.zarr", ranks
        )
        tested = recording.spikes("Detector")
        scores = [
            detection_scores(times, test, setup, setup.test_ms)
            for times in _by_neuron(tested.times_ms, tested.node_ids, setup.n_detectors)
        ]
        result[name] = asdict(scores[chosen])
        result[f"{name}_detecting"] = sum(detects(s) for s in scores)
        if name == "learned":
            mine = target == chosen
            in_pattern = source[mine] < setup.pattern_afferents
            strong = values[mine] > 0.9 * setup.w_max_pA
            result["learned_weights"] = {
                "pattern_afferents_mean_pA": float(values[mine][in_pattern].mean()),
                "other_afferents_mean_pA": float(values[mine][~in_pattern].mean()),
                "strong_synapses": int(strong.sum()),
                "pattern_share_of_strong": float(in_pattern[strong].mean())
                if strong.any()
                else 0.0,
            }
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = result["training_curve"]
    seconds = [(b + 0.5) * result["setup"]["train_ms"] / 10 / 1000 for b in range(len(blocks))]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(seconds, [b["hit_rate"] for b in blocks], "o-", label="hits")
    ax.plot(seconds, [b["false_alarm_rate"] for b in blocks], "s-", label="false alarms")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("fraction of 50 ms sections")
    ax.set_ylim(-0.05, 1.05)
    ax.legend()
    ax.set_title("STDP pattern detection (Masquelier et al. 2008)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Setup()
    parser = example_parser("examples.pattern_detection", __doc__)
    parser.add_argument("--train-s", type=float, default=defaults.train_ms / 1000)
    parser.add_argument("--test-s", type=float, default=defaults.test_ms / 1000)
    parser.add_argument("--seed", type=int, default=defaults.input_seed, help="input seed")
    parser.add_argument("--plot", type=Path, help="write the training curve here (PNG)")
    args = parser.parse_args(argv)
    setup = replace(
        defaults,
        train_ms=args.train_s * 1000,
        test_ms=args.test_s * 1000,
        input_seed=args.seed,
    )
    result = run_experiment(args.out, setup, ranks=args.ranks)
    save_scores(args.out, result)
    for name in ("untrained", "learned"):
        s = result[name]
        print(
            f"{name:>9}: hits {s['hit_rate']:.1%}  false alarms {s['false_alarm_rate']:.1%} "
            f"({s['false_alarms_hz']:.2f}/s)  latency {s['latency_ms']:.1f} ms  "
            f"output {s['output_rate_hz']:.1f} Hz  ({s['n_presentations']} presentations); "
            f"{result[name + '_detecting']} of {setup.n_detectors} detectors meet the criterion"
        )
    if args.plot:
        _plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
