"""``brainsim analyze STORE``: per-population summary of a recording (table or JSON) and figures;
with ``--decode STIMULUS``, a decoder's accuracy and confusion matrix instead.
``brainsim export STORE --to nwb|neo -o FILE``: the spikes as NWB or Neo (the ``nwb`` extra)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from brainsim.analysis.decoding import (
    NO_ANSWER,
    DecodingResult,
    Groups,
    Method,
    SampleResponses,
    decode_responses,
    parse_labels,
    sample_responses,
)
from brainsim.analysis.export import (
    ExportFormat,
    MissingExtraError,
    check_export_path,
    export_recording,
)
from brainsim.analysis.plots import (
    RASTER_NEURONS,
    plot_confusion_matrix,
    plot_raster,
    plot_rate_histogram,
    plot_traces,
)
from brainsim.analysis.recording import Recording, open_recording
from brainsim.analysis.stats import PopulationStats
from brainsim.errors import BrainsimError

__all__ = ["analyze_main", "decode_main", "export_main"]

EXIT_FAILED = 1
EXIT_ERROR = 2


def analyze_main(
    store: str,
    *,
    plot: str | None,
    as_json: bool,
    t_start_ms: float | None,
    t_stop_ms: float | None,
    raster_neurons: int | None = RASTER_NEURONS,
) -> int:
    """Print the summary of ``store`` (table, or JSON with ``as_json``); return the exit code.

    With ``plot`` (``out.png``/``.svg``/``.pdf``) it writes the raster to that file (a sample
    of ``raster_neurons`` evenly spaced neurons per population, None for all of them; see
    :func:`brainsim.analysis.plots.raster_sample`), the rate histogram beside it
    (``out.rates.png``) and one trace figure per report (``out.<population>-<variable>.png``).
    Errors go to stderr with exit code 2.
    """
    try:
        recording = open_recording(store)
        start, stop = recording.window(t_start_ms, t_stop_ms)
        stats = recording.stats(start, stop)
        figures = (
            []
            if plot is None
            else _write_figures(recording, Path(plot), start, stop, raster_neurons)
        )
    except (BrainsimError, ValueError) as exc:
        print(f"brainsim analyze: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if as_json:
        print(json.dumps(_summary(recording, stats, start, stop, figures), indent=2))
    else:
        print(_table(recording, stats, start, stop))
        for figure in figures:
            print(f"wrote {figure}")
    return 0


def _write_figures(
    recording: Recording, plot: Path, start: float, stop: float, raster_neurons: int | None
) -> list[Path]:
    def beside(tag: str) -> Path:
        return plot.with_name(f"{plot.stem}.{tag}{plot.suffix}")

    written = [
        plot_raster(recording, plot, t_start_ms=start, t_stop_ms=stop, max_neurons=raster_neurons),
        plot_rate_histogram(recording, beside("rates"), t_start_ms=start, t_stop_ms=stop),
    ]
    written.extend(
        plot_traces(
            recording,
            beside(f"{population}-{variable}"),
            population,
            variable,
            t_start_ms=start,
            t_stop_ms=stop,
        )
        for population, variable in recording.reports
    )
    return written


def _summary(
    recording: Recording,
    stats: dict[str, PopulationStats],
    start: float,
    stop: float,
    figures: list[Path],
) -> dict[str, Any]:
    return {
        "store": str(recording.path),
        "status": recording.status,
        "reason": recording.reason,
        "simulated_ms": recording.simulated_ms,
        "duration_ms": recording.duration_ms,
        "window_ms": [start, stop],
        "populations": {name: s.to_dict() for name, s in stats.items()},
        "reports": [f"{p}/{v}" for p, v in recording.reports],
        "figures": [str(f) for f in figures],
    }


def _number(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _table(
    recording: Recording, stats: dict[str, PopulationStats], start: float, stop: float
) -> str:
    status = recording.status + (f" ({recording.reason})" if recording.reason else "")
    lines = [
        f"{recording.path}: {status}, {recording.simulated_ms:g} of "
        f"{recording.duration_ms:g} ms simulated; window {start:g}-{stop:g} ms",
        f"{'population':<12}{'neurons':>10}{'spikes':>12}{'rate (Hz)':>11}{'CV ISI':>9}"
        f"{'Fano':>10}",
    ]
    lines.extend(
        f"{name:<12}{s.n_neurons:>10}{s.n_spikes:>12}{_number(s.mean_rate_hz, 3):>11}"
        f"{_number(s.cv_isi_mean, 3):>9}{_number(s.fano_factor, 2):>10}"
        for name, s in stats.items()
    )
    if not stats:
        lines.append("(no spike populations recorded)")
    return "\n".join(lines)


def decode_main(
    store: str,
    *,
    stimulus: str,
    population: str | None,
    labels: str | None,
    method: Method = "rate",
    groups: str | None = None,
    n_train: int | None = None,
    train_fraction: float | None = None,
    lag_ms: float = 0.0,
    plot: str | None = None,
    as_json: bool = False,
) -> int:
    """Decode ``population``'s responses to the presentations of ``stimulus`` in ``store``
    (:func:`brainsim.analysis.decoding.decode_responses`) and print the accuracy and the
    confusion matrix (or JSON); return the exit code.

    ``labels`` is a ``.npy`` file with one integer label per data row; ``groups`` a JSON file
    ``{"label": [node ids]}`` of candidate groups for ``rate`` and ``latency``; ``assign``
    trains on ``n_train`` presentations (or ``train_fraction``, default 0.5). ``plot`` writes
    the confusion matrix figure. Errors go to stderr with exit code 2.
    """
    try:
        if population is None or labels is None:
            raise ValueError("--decode needs --population and --labels")
        if method == "assign" and n_train is None and train_fraction is None:
            train_fraction = 0.5
        per_row = _read_labels(labels)
        candidates = None if groups is None else _read_groups(groups)
        responses = sample_responses(store, stimulus, population, lag_ms=lag_ms)
        result = decode_responses(
            responses,
            per_row,
            method=method,
            groups=candidates,
            n_train=n_train,
            train_fraction=train_fraction,
        )
        figure = None
        if plot is not None:
            title = f"{stimulus} -> {population}, {method}"
            figure = plot_confusion_matrix(result.confusion, plot, title=title)
    except (BrainsimError, ValueError) as exc:
        print(f"brainsim analyze: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if as_json:
        summary = {
            "store": store,
            "stimulus": stimulus,
            "population": population,
            "lag_ms": responses.lag_ms,
            "window_ms": responses.window_ms,
            "n_presentations": responses.n_presentations,
            "n_left_out": responses.n_left_out,
            **result.to_dict(),
            "figures": [] if figure is None else [str(figure)],
        }
        print(json.dumps(summary, indent=2))
    else:
        print(_decoding_report(store, responses, result))
        if figure is not None:
            print(f"wrote {figure}")
    return 0


def _read_labels(path: str) -> npt.NDArray[np.int64]:
    """One integer label per data row from a ``.npy`` file."""
    try:
        labels = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise ValueError(f"cannot read labels {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"labels {path} is not a .npy array: {exc}") from None
    if not isinstance(labels, np.ndarray):
        raise ValueError(f"labels {path} must be one array (.npy), not an archive")
    return parse_labels(labels, f"labels {path}")


def _read_groups(path: str) -> Groups:
    """``{"label": [node ids], ...}`` from a JSON file."""
    try:
        with open(path, encoding="utf-8") as fh:
            document = json.load(fh)
    except OSError as exc:
        raise ValueError(f"cannot read groups {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"groups {path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f'groups {path} must be a JSON object {{"label": [node ids]}}')
    groups: dict[int, list[int]] = {}
    for key, ids in document.items():
        if not key.isdigit():
            raise ValueError(f"groups {path}: label {key!r} is not an integer >= 0")
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise ValueError(f"groups {path}: group {key} must be a list of node ids")
        groups[int(key)] = ids
    return groups


def _decoding_report(store: str, responses: SampleResponses, result: DecodingResult) -> str:
    left_out = (
        f"; {responses.n_left_out} presentation(s) past the end of the run left out"
        if responses.n_left_out
        else ""
    )
    split = f"trained on {result.n_train}, " if result.method == "assign" else ""
    lines = [
        f"{store}: {responses.population} decoding stimulus {responses.stimulus} by "
        f"{result.method}; windows of {responses.window_ms:g} ms from onset + "
        f"{responses.lag_ms:g} ms{left_out}",
        f"{split}tested on {result.n_test} presentation(s)",
        f"accuracy {result.accuracy:.3f} ({result.n_correct} of {result.n_test} correct, "
        f"{result.n_no_answer} without an answer)",
    ]
    if result.assignments is not None:
        assigned = result.assignments[result.assignments != NO_ANSWER]
        per_label = np.bincount(assigned, minlength=result.n_classes)
        lines.append(
            f"neurons per label: {' '.join(f'{c}:{n}' for c, n in enumerate(per_label))}, "
            f"unassigned: {result.assignments.size - assigned.size}"
        )
    lines.append("confusion matrix (rows: true label, columns: decoded label)")
    width = max(5, len(str(result.confusion.max(initial=0))) + 1)
    header = [f"{c:>{width}}" for c in range(result.n_classes)] + [f"{'none':>{width}}"]
    lines.append(f"{'':>{width}}" + "".join(header))
    lines.extend(
        f"{label:>{width}}" + "".join(f"{count:>{width}}" for count in row)
        for label, row in enumerate(result.confusion)
    )
    return "\n".join(lines)


def export_main(store: str, *, to: ExportFormat, out: str, overwrite: bool = False) -> int:
    """Export the spikes of ``store`` to ``out`` as ``to`` (``nwb`` or ``neo``,
    :func:`brainsim.analysis.export.export_recording`); return the exit code.

    Invalid input (an output extension the format does not write, an existing output without
    ``overwrite``, a store that cannot be opened) exits with 2; a missing module of the
    ``nwb`` extra, or a failure while writing, with 1. Messages go to stderr, one line each.
    """
    try:
        path = check_export_path(out, to, overwrite=overwrite)
        recording = open_recording(store)
    except FileExistsError as exc:
        print(f"brainsim export: error: {exc} (--overwrite replaces it)", file=sys.stderr)
        return EXIT_ERROR
    except (BrainsimError, ValueError) as exc:
        print(f"brainsim export: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        written = export_recording(recording, path, to, overwrite=overwrite)
    except MissingExtraError as exc:
        print(f"brainsim export: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (BrainsimError, OSError, ValueError) as exc:
        print(f"brainsim export: error: writing {path} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    n_spikes = sum(recording.spikes(p).n_spikes for p in recording.spike_populations)
    print(
        f"wrote {written} ({to}): {n_spikes} spikes of "
        f"{len(recording.spike_populations)} population(s)"
    )
    return 0
