"""Live activity of a job (``StreamActivity``): binned population rates and chosen neurons'
spikes, read incrementally from the recording the run is flushing.

A run publishes its spikes with every flush (at least once a second of wall clock, see
``RunConfig.flush_every_s``) and then raises the store's ``simulated_ms``. Spikes are stamped
on the grid at the end of their step: a spike of step ``s`` has time ``(s + 1) * dt``. A bin
``[a, b)`` of simulated time therefore holds the spikes of the steps ``a / dt`` to
``b / dt - 1``, stamped in ``(a, b]``, and it is complete once ``simulated_ms >= b``: every
spike it can hold has been flushed. All arithmetic on bins is in whole steps, so a bin never
gains or loses a spike to rounding.

:class:`ActivityBinner` keeps, per population, how many spikes it has read (the next read
starts there) and the counts of the bins not yet complete, so each poll reads only what was
flushed since the previous one. A retried run rewrites the recording from a checkpoint or from
the start; the simulator gives the same spikes again bit for bit, so the counts read before stay
right and the binner simply waits until the recording has caught up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from brainsim.circuit.build import MAX_STEPS
from brainsim.circuit.loader import load_circuit
from brainsim.errors import RecordingError
from brainsim.recording.reader import RecordingStore
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.validation import Violation

__all__ = [
    "DEFAULT_BIN_MS",
    "MAX_BINS_PER_MESSAGE",
    "MAX_SELECTED_NEURONS",
    "ActivityBinner",
    "ActivityPlan",
    "plan_activity",
]

DEFAULT_BIN_MS = 10.0
"""The bin width when a request gives none (0)."""
MAX_BIN_MS = 60_000.0
"""The widest bin a request may ask for, in ms."""
MAX_SELECTED_NEURONS = 1000
"""The most neurons whose individual spikes one stream sends."""
MAX_BINS_PER_MESSAGE = 500
"""A client that starts far behind a run gets its backlog in messages of at most this many
bins (a message stays well below gRPC's 4 MiB default)."""
_READ_LIMIT = 2_000_000
"""Spikes read from one population per poll at most (bounds a poll's memory)."""


@dataclass(frozen=True, slots=True)
class ActivityPlan:
    """What one stream sends, checked against the job's circuit."""

    dt_ms: float
    bin_steps: int
    from_step: int
    populations: tuple[str, ...]
    """Populations whose rates are sent, in the request's order."""
    sizes: Mapping[str, int]
    """Size of every population named in ``populations`` or ``neurons``."""
    neurons: tuple[tuple[str, npt.NDArray[np.int64]], ...]
    """The selections of neurons whose spikes are sent: (population, sorted unique ids)."""

    def read_populations(self) -> tuple[str, ...]:
        """Every population the stream reads spikes of, once each."""
        names = dict.fromkeys(self.populations)
        names.update(dict.fromkeys(name for name, _ in self.neurons))
        return tuple(names)


def _steps(value_ms: float, dt_ms: float) -> int | None:
    """``value_ms`` in whole steps of ``dt_ms``, or ``None`` if it is not (nearly) a multiple."""
    steps = round(value_ms / dt_ms)
    if not math.isclose(steps * dt_ms, value_ms, rel_tol=1e-9, abs_tol=1e-9 * dt_ms):
        return None
    return steps


def plan_activity(
    circuit_path: Path, request: pb.StreamActivityRequest
) -> tuple[ActivityPlan | None, list[Violation], str | None]:
    """Check ``request`` against the job's circuit (``circuit_path``, files beside it).

    Returns the plan, or ``None`` with the request's field violations, or ``None`` with a
    precondition that fails (the circuit records no spikes) as the third item.
    """
    circuit = load_circuit(circuit_path)
    dt = circuit.simulation.dt_ms
    recorded = tuple(circuit.recordings.spikes)
    sizes = {name: population.size for name, population in circuit.populations.items()}
    if not recorded:
        return None, [], "the circuit records no spikes (recordings.spikes is empty)"
    found: list[Violation] = []
    bin_ms = request.bin_ms or DEFAULT_BIN_MS
    bin_steps = None
    if not (math.isfinite(bin_ms) and dt <= bin_ms * (1 + 1e-9) and bin_ms <= MAX_BIN_MS):
        found.append(
            Violation(
                "bin_ms",
                f"must be at least the circuit's dt_ms ({dt:g}) and at most {MAX_BIN_MS:g} "
                f"(0: {DEFAULT_BIN_MS:g}), got {request.bin_ms!r}",
            )
        )
    else:
        bin_steps = _steps(bin_ms, dt)
        if bin_steps is None:
            found.append(
                Violation(
                    "bin_ms", f"must be a multiple of the circuit's dt_ms ({dt:g}), got {bin_ms!r}"
                )
            )
    from_step = None
    if not (math.isfinite(request.from_ms) and 0 <= request.from_ms <= MAX_STEPS * dt):
        found.append(
            Violation(
                "from_ms",
                f"must be a number from 0 to {MAX_STEPS} steps of the circuit's dt_ms "
                f"({MAX_STEPS * dt:g}), got {request.from_ms!r}",
            )
        )
    elif bin_steps is not None:
        from_step = _steps(request.from_ms, dt)
        if from_step is None or from_step % bin_steps:
            found.append(
                Violation(
                    "from_ms",
                    f"must be a multiple of bin_ms ({bin_steps * dt:g}), got {request.from_ms!r}",
                )
            )
    populations = tuple(request.populations) or recorded
    for i, name in enumerate(request.populations):
        if name not in recorded:
            found.append(Violation(f"populations[{i}]", _not_recorded(name, sizes, recorded)))
        elif name in request.populations[:i]:
            found.append(Violation(f"populations[{i}]", f"{name!r} is named twice"))
    neurons = []
    n_selected = 0
    for i, selection in enumerate(request.neurons):
        name = selection.population
        if name not in recorded:
            path = f"neurons[{i}].population"
            found.append(Violation(path, _not_recorded(name, sizes, recorded)))
            continue
        ids = np.unique(np.asarray(selection.node_ids, dtype=np.int64))
        size = sizes[name]
        if ids.size == 0:
            found.append(Violation(f"neurons[{i}].node_ids", "is empty"))
        elif ids[0] < 0 or ids[-1] >= size:
            bad = int(ids[0] if ids[0] < 0 else ids[-1])
            found.append(
                Violation(
                    f"neurons[{i}].node_ids",
                    f"node ids of {name!r} are 0 to {size - 1}, got {bad}",
                )
            )
        n_selected += int(ids.size)
        neurons.append((name, ids))
    if n_selected > MAX_SELECTED_NEURONS:
        found.append(
            Violation(
                "neurons",
                f"at most {MAX_SELECTED_NEURONS} neurons in all, got {n_selected}",
            )
        )
    if found or bin_steps is None or from_step is None:
        return None, found, None
    plan = ActivityPlan(
        dt_ms=dt,
        bin_steps=bin_steps,
        from_step=from_step,
        populations=populations,
        sizes={name: sizes[name] for name in (*populations, *(n for n, _ in neurons))},
        neurons=tuple(neurons),
    )
    return plan, [], None


def _not_recorded(name: str, sizes: Mapping[str, int], recorded: Sequence[str]) -> str:
    if name not in sizes:
        return f"no population {name!r} in the circuit; populations: {sorted(sizes)}"
    return f"population {name!r} does not record spikes; recorded: {list(recorded)}"


@dataclass(slots=True)
class _Selected:
    """Spikes of a selection not yet sent: bin index, time, node id."""

    bins: list[npt.NDArray[np.int64]] = field(default_factory=list)
    times: list[npt.NDArray[np.float64]] = field(default_factory=list)
    ids: list[npt.NDArray[np.int64]] = field(default_factory=list)


class ActivityBinner:
    """Turns what a live recording has flushed into complete bins, reading each spike once."""

    def __init__(self, plan: ActivityPlan) -> None:
        self.plan = plan
        self.next_bin = 0
        """Index of the first bin not yet sent (bin ``b`` starts at ``from + b * width``)."""
        self.readable = False
        """True once the recording has been read at least once."""
        self.simulated_ms = 0.0
        self._cursor = dict.fromkeys(plan.read_populations(), 0)
        self._counts: dict[str, dict[int, int]] = {name: {} for name in plan.populations}
        self._selected = [_Selected() for _ in plan.neurons]

    def next_from_ms(self) -> float:
        plan = self.plan
        return (plan.from_step + self.next_bin * plan.bin_steps) * plan.dt_ms

    def poll(self, store_path: Path, ended: bool) -> list[pb.ActivityBin] | None:
        """Read what was flushed since the last poll; return the bins now complete (with
        ``ended``, also the last, shorter one), or ``None`` if the store cannot be read yet."""
        try:
            store = RecordingStore.open(store_path)
            simulated_step = round(store.simulated_ms / self.plan.dt_ms)
            for name in self._cursor:
                self._read(store, name, simulated_step)
        except (RecordingError, OSError):
            return None
        self.readable = True
        self.simulated_ms = store.simulated_ms
        return self._complete(simulated_step, ended)

    def _read(self, store: RecordingStore, name: str, simulated_step: int) -> None:
        plan = self.plan
        while True:
            trains = store.spikes(name, start=self._cursor[name])
            if trains.n_spikes == 0:
                return
            times = trains.times_ms[:_READ_LIMIT]
            ids = trains.node_ids[:_READ_LIMIT]
            self._cursor[name] += int(times.size)
            # Spike of step s is stamped (s + 1) * dt and belongs to bin (s - from) // width.
            steps = np.rint(times / plan.dt_ms).astype(np.int64) - 1
            bins = (steps - plan.from_step) // plan.bin_steps
            keep = bins >= 0
            if name in self._counts:
                counts = self._counts[name]
                found, n = np.unique(bins[keep], return_counts=True)
                for b, c in zip(found.tolist(), n.tolist(), strict=True):
                    counts[b] = counts.get(b, 0) + c
            for (selected_name, selected_ids), pending in zip(
                plan.neurons, self._selected, strict=True
            ):
                if selected_name != name:
                    continue
                chosen = keep & np.isin(ids, selected_ids)
                if chosen.any():
                    pending.bins.append(bins[chosen])
                    pending.times.append(times[chosen].astype(np.float64))
                    pending.ids.append(ids[chosen].astype(np.int64))
            if trains.n_spikes <= _READ_LIMIT:
                return

    def _complete(self, simulated_step: int, ended: bool) -> list[pb.ActivityBin]:
        plan = self.plan
        reached = simulated_step - plan.from_step
        last = reached // plan.bin_steps  # bins before this one are complete
        partial = ended and reached > last * plan.bin_steps
        stop = last + 1 if partial else last
        if stop <= self.next_bin:
            return []
        first = self.next_bin
        selected = [self._take(pending, stop) for pending in self._selected]
        out = []
        for b in range(first, stop):
            start_step = plan.from_step + b * plan.bin_steps
            end_step = min(start_step + plan.bin_steps, simulated_step)
            width_s = (end_step - start_step) * plan.dt_ms / 1000.0
            activity = pb.ActivityBin(
                start_ms=start_step * plan.dt_ms, end_ms=end_step * plan.dt_ms
            )
            for name in plan.populations:
                n = self._counts[name].pop(b, 0)
                rate = n / (plan.sizes[name] * width_s) if width_s > 0 else 0.0
                activity.populations.add(population=name, n_spikes=n, rate_hz=rate)
            for (name, _), (bins, times, ids) in zip(plan.neurons, selected, strict=True):
                here = bins == b
                activity.neurons.add(
                    population=name, node_ids=ids[here].tolist(), times_ms=times[here].tolist()
                )
            out.append(activity)
        self.next_bin = stop
        return out

    @staticmethod
    def _take(
        pending: _Selected, stop: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """The pending spikes of bins before ``stop`` (removed), sorted by time, then id."""
        if not pending.bins:
            empty = np.zeros(0, dtype=np.int64)
            return empty, np.zeros(0, dtype=np.float64), empty
        bins = np.concatenate(pending.bins)
        times = np.concatenate(pending.times)
        ids = np.concatenate(pending.ids)
        done = bins < stop
        pending.bins, pending.times, pending.ids = (
            [bins[~done]],
            [times[~done]],
            [ids[~done]],
        )
        order = np.lexsort((ids[done], times[done]))
        return bins[done][order], times[done][order], ids[done][order]
