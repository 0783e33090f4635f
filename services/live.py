"""The client's side of ``StreamActivity``: frames of binned activity as numpy arrays, for
notebooks (:meth:`services.client.JobClient.activity`), and the live terminal view of
``brainsim watch JOB --activity`` (:class:`ActivityView`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import numpy.typing as npt

from services.gen.brainsim.v1 import job_service_pb2 as pb

__all__ = ["STATE_NAMES", "ActivityFrame", "ActivityView", "frame_of", "selection_messages"]

STATE_NAMES = {value: name.removeprefix("JOB_STATE_") for name, value in pb.JobState.items()}
"""A job state's name as the command line shows it (``QUEUED``, ``SUCCEEDED``, ...)."""
_FINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class ActivityFrame:
    """One message of the stream: the bins completed since the previous one (possibly none)
    and where the job stands.

    Bin ``i`` covers ``[start_ms[i], end_ms[i])`` of simulated time (the spikes of the steps in
    it). ``rates_hz[population][i]`` and ``counts[population][i]`` are that population's rate
    and spike count in bin ``i``; ``spikes[population]`` are the chosen neurons' spikes in all
    of the frame's bins, as ``(times_ms, node_ids)`` ordered by time, then id.
    """

    state: str
    """``QUEUED``, ``RUNNING``, ``SUCCEEDED``, ``FAILED`` or ``CANCELLED``."""
    simulated_ms: float
    """How far the job's recording is."""
    duration_ms: float
    wall_s: float
    """Wall-clock seconds since the job started running (0 before)."""
    start_ms: npt.NDArray[np.float64]
    end_ms: npt.NDArray[np.float64]
    rates_hz: Mapping[str, npt.NDArray[np.float64]]
    counts: Mapping[str, npt.NDArray[np.int64]]
    spikes: Mapping[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]]
    next_from_ms: float
    """Where a stream that continues after this frame starts (``from_ms``)."""

    @property
    def n_bins(self) -> int:
        return int(self.start_ms.size)

    @property
    def ended(self) -> bool:
        """True for the stream's last frame: the job has ended and every bin was sent."""
        return self.state in _FINAL and self.next_from_ms >= self.simulated_ms


def frame_of(message: pb.StreamActivityResponse) -> ActivityFrame:
    """The frame of one ``StreamActivityResponse``."""
    bins = message.bins
    rates: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    times: dict[str, list[float]] = {}
    ids: dict[str, list[int]] = {}
    for activity in bins:
        for population in activity.populations:
            rates.setdefault(population.population, []).append(population.rate_hz)
            counts.setdefault(population.population, []).append(population.n_spikes)
        for neurons in activity.neurons:
            times.setdefault(neurons.population, []).extend(neurons.times_ms)
            ids.setdefault(neurons.population, []).extend(neurons.node_ids)
    spikes = {}
    for name, values in times.items():
        t = np.asarray(values, dtype=np.float64)
        i = np.asarray(ids[name], dtype=np.int64)
        order = np.lexsort((i, t))
        spikes[name] = (t[order], i[order])
    return ActivityFrame(
        state=STATE_NAMES[message.state],
        simulated_ms=message.progress.simulated_ms,
        duration_ms=message.progress.duration_ms,
        wall_s=message.progress.wall_s,
        start_ms=np.asarray([b.start_ms for b in bins], dtype=np.float64),
        end_ms=np.asarray([b.end_ms for b in bins], dtype=np.float64),
        rates_hz={name: np.asarray(v, dtype=np.float64) for name, v in rates.items()},
        counts={name: np.asarray(v, dtype=np.int64) for name, v in counts.items()},
        spikes=spikes,
        next_from_ms=message.next_from_ms,
    )


def selection_messages(
    neurons: Mapping[str, Iterable[int]] | None,
) -> list[pb.NeuronSelection]:
    """``{population: node ids}`` as the request's ``neurons``."""
    if not neurons:
        return []
    return [
        pb.NeuronSelection(population=name, node_ids=[int(i) for i in ids])
        for name, ids in neurons.items()
    ]


_BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """``values`` as a row of block characters from their least (lowest block, a space for
    zero) to their greatest (full block)."""
    if not values:
        return ""
    low, high = min(values), max(values)
    last = len(_BLOCKS) - 1
    if high <= low:
        return _BLOCKS[last if high > 0 else 0] * len(values)
    return "".join(_BLOCKS[1 + round((v - low) / (high - low) * (last - 1))] for v in values)


class ActivityView:
    """Shows frames as they arrive: progress and an estimate of the time left, then per
    population its latest rate, its mean so far, and a sparkline of the recent bins between
    their least and greatest rate (printed after it).

    On a terminal the block is redrawn in place; otherwise (a pipe, a log file) a block is
    printed at most every ``every_s`` seconds of the job's wall clock, and always the last one.
    """

    def __init__(self, out: TextIO, job_id: str, width: int = 40, every_s: float = 1.0) -> None:
        self.out = out
        self.job_id = job_id
        self.tty = out.isatty()
        self.width = width
        self.every_s = every_s
        self.recent: dict[str, deque[float]] = {}
        self.totals: dict[str, tuple[float, float]] = {}
        """population -> (sum of rate * width, covered ms): the mean rate so far."""
        self.drawn_lines = 0
        self.last_drawn_wall = -math.inf
        self.first: tuple[float, float] | None = None
        """(wall_s, simulated_ms) of the first frame that showed progress, for the ETA."""

    def show(self, frame: ActivityFrame) -> None:
        """Take in ``frame``; redraw if it is time to."""
        for name, rates in frame.rates_hz.items():
            widths = frame.end_ms - frame.start_ms
            recent = self.recent.setdefault(name, deque(maxlen=self.width))
            recent.extend(rates.tolist())
            weighted, covered = self.totals.get(name, (0.0, 0.0))
            self.totals[name] = (
                weighted + float(np.dot(rates, widths)),
                covered + float(widths.sum()),
            )
        if self.first is None and frame.simulated_ms > 0 and frame.state == "RUNNING":
            self.first = (frame.wall_s, frame.simulated_ms)
        due = frame.wall_s - self.last_drawn_wall >= self.every_s
        if self.tty or due or frame.ended:
            self._draw(frame)
            self.last_drawn_wall = frame.wall_s

    def eta_s(self, frame: ActivityFrame) -> float | None:
        """Seconds of wall clock left at the pace since the first frame with progress."""
        if self.first is None or frame.ended:
            return None
        wall0, sim0 = self.first
        pace = (frame.simulated_ms - sim0) / (frame.wall_s - wall0) if frame.wall_s > wall0 else 0
        if pace <= 0:
            return None
        return (frame.duration_ms - frame.simulated_ms) / pace

    def lines(self, frame: ActivityFrame) -> list[str]:
        """The block of text for ``frame``."""
        fraction = frame.simulated_ms / frame.duration_ms if frame.duration_ms else 0.0
        head = (
            f"job {self.job_id}  {frame.state}  {frame.simulated_ms:g}/{frame.duration_ms:g} ms "
            f"({100 * fraction:.0f}%)  wall {frame.wall_s:.1f} s"
        )
        eta = self.eta_s(frame)
        if eta is not None:
            head += f"  ETA {eta:.0f} s"
        out = [head]
        name_width = max((len(name) for name in self.recent), default=0)
        for name, recent in self.recent.items():
            weighted, covered = self.totals[name]
            mean = weighted / covered if covered else 0.0
            latest = recent[-1] if recent else 0.0
            out.append(
                f"  {name.ljust(name_width)}  {latest:8.2f} Hz  (mean {mean:7.2f})  "
                f"{sparkline(list(recent))}  {min(recent, default=0):.1f}-"
                f"{max(recent, default=0):.1f} Hz"
            )
        return out

    def _draw(self, frame: ActivityFrame) -> None:
        text = self.lines(frame)
        if self.tty and self.drawn_lines:
            self.out.write(f"\x1b[{self.drawn_lines}F\x1b[J")  # up to the block's start, clear
        self.out.write("\n".join(text) + "\n")
        self.out.flush()
        self.drawn_lines = len(text)
