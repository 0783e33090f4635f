"""The recorder interface the engine writes through, and the run description it is opened with.

The engine calls, on every rank and in this order::

    recorder.open(info)                       # collective
    recorder.write_weight_ids(...)            # collective, once per weight recording
    loop: recorder.add_spikes(...)            # global spikes, identical on all ranks
          recorder.add_state[_block](...)     # this rank's own recorded neurons only
          recorder.write_weights(...)         # collective, every snapshot, in order
          recorder.flush(simulated_ms)        # collective, at a bounded interval of simulated time
    recorder.close(status, ...)               # collective

``add_spikes`` receives the *global* spikes of a population (every rank has them after the
exchange) so a recorder can split the writing by chunk ownership without further communication.
``mark_failed`` is the one non-collective call: a rank that fails uses it before the run aborts.
Weights are written as they are taken, a column chunk at a time: a rank hands over a function
that gives its weights of any range of its columns, so no rank ever holds a copy of all its
synapses' weights (or ids) in the recording's order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "Collectives",
    "FinalStatus",
    "IdsOf",
    "PopulationInfo",
    "RankResources",
    "Recorder",
    "RecorderPosition",
    "ReportSpec",
    "RunInfo",
    "StimulusSpec",
    "ValuesOf",
    "WeightSpec",
]

FinalStatus = Literal["complete", "failed", "cancelled", "checkpointed"]


@dataclass(frozen=True, slots=True)
class RankResources:
    """What one rank's process used by the end of a run (``getrusage`` of the process)."""

    cpu_s: float
    """User plus system CPU time, in s."""
    peak_rss_bytes: int
    """The largest resident set size the process reached, in bytes."""


@dataclass(frozen=True, slots=True)
class PopulationInfo:
    """What the store says about one population."""

    size: int
    model: str
    gid_offset: int


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """One dense state report: ``variable`` of ``node_ids`` (population-local, ascending).

    Sample ``k`` (0 <= k < n_samples) is the state at ``start_ms + k * interval_ms``; the store's
    ``time`` coordinate holds exactly these values.
    """

    population: str
    variable: str
    units: str
    interval_ms: float
    node_ids: npt.NDArray[np.int64]
    n_samples: int
    start_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class WeightSpec:
    """Weight snapshots of one plastic projection: ``data[snapshot, synapse]`` in the store.

    Synapse columns are the projection's recorded synapses ordered by target, then source, then
    creation; each rank hands its own (a contiguous range of columns) over with
    :meth:`Recorder.write_weight_ids` once the network is built. Their number is not needed here
    (the store is opened before the network exists): it is the total the ranks give, whose
    ranges must tile ``0 .. n - 1``.
    """

    projection: str
    """The projection's name; the store group is ``weights/<projection>``."""
    model: str
    """The synapse model's name (``"stdp"``), stored as the group attribute ``model``."""
    units: str
    """Units of the weights, the target model's weight unit (``"mV"`` for delta synapses,
    ``"pA"`` for current synapses, ``"1"`` onto parrot neurons)."""
    max_snapshots: int
    """Upper bound on the snapshots (rows): at 0, every ``interval_ms`` and at the end."""
    interval_ms: float | None
    """Simulated time between snapshots; ``None``: only the final weights are recorded."""


@dataclass(frozen=True, slots=True)
class StimulusSpec:
    """When a data-driven stimulus showed its samples: ``stimuli/<name>`` in the store.

    Written once when the store is opened (the schedule is a pure function of the circuit):
    presentation ``k`` showed data row ``sample_index[k]`` from ``onsets_ms[k]`` for
    ``present_ms``, followed by ``rest_ms`` of silence.
    """

    name: str
    """The stimulus' name in the circuit."""
    type: str
    """Its kind (``"rate"``, ``"latency"``, ``"population"``), the group attribute ``type``."""
    present_ms: float
    """How long each sample is shown (ms)."""
    rest_ms: float
    """Silence after each sample (ms)."""
    onsets_ms: npt.NDArray[np.float64]
    """When each presentation began (ms), ascending; the array ``sample_onsets_ms``."""
    sample_index: npt.NDArray[np.int64]
    """The data row each presentation showed; the array ``sample_index``."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Everything a recorder needs before the first step.

    ``circuit_document`` is the normalized circuit (JSON-compatible); ``provenance`` holds the
    version strings, ``n_ranks``, ``backend`` and ``start_time`` (the recorder adds end time and
    wall seconds on close); ``stimuli`` the presentations of the data-driven stimuli.
    """

    circuit_document: Mapping[str, Any]
    circuit_sha256: str
    seed: int
    dt_ms: float
    duration_ms: float
    populations: Mapping[str, PopulationInfo]
    spike_populations: tuple[str, ...]
    reports: tuple[ReportSpec, ...] = ()
    weights: tuple[WeightSpec, ...] = ()
    provenance: Mapping[str, Any] = field(default_factory=dict)
    stimuli: tuple[StimulusSpec, ...] = ()


IdsOf = Callable[[int, int], tuple[npt.NDArray[np.integer[Any]], npt.NDArray[np.integer[Any]]]]
"""``ids(lo, hi)``: a rank's ``(sources, targets)`` of its local synapse columns lo .. hi - 1."""

ValuesOf = Callable[[int, int], npt.NDArray[np.float32]]
"""``values(lo, hi)``: a rank's weights of its local synapse columns ``lo .. hi - 1``."""


class Collectives(Protocol):
    """The collectives a parallel recorder uses; ``brainsim.exchange.Communicator`` has them.

    Declared here because ``recording`` and ``exchange`` are independent layers; any
    communicator fits structurally. Every method but ``rank``/``size`` is collective.
    """

    @property
    def rank(self) -> int: ...

    @property
    def size(self) -> int: ...

    def bcast(self, obj: Any, root: int = 0) -> Any: ...

    def allgather(self, obj: Any) -> list[Any]: ...

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None: ...

    def any(self, flag: bool) -> bool: ...


@dataclass(frozen=True, slots=True)
class RecorderPosition:
    """How much of each recorded array a flush had published: what a run resumed from a
    checkpoint taken right after that flush keeps (:meth:`ZarrRecorder.reopen`).

    ``spikes[population]`` spikes, ``reports[i]`` rows of ``info.reports[i]``, ``weights[i]``
    snapshots of ``info.weights[i]``.
    """

    spikes: Mapping[str, int]
    reports: tuple[int, ...]
    weights: tuple[int, ...]

    def document(self) -> dict[str, Any]:
        """The JSON form a checkpoint stores."""
        return {
            "spikes": dict(self.spikes),
            "reports": list(self.reports),
            "weights": list(self.weights),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RecorderPosition:
        """The position of :meth:`document`'s form."""
        return cls(
            {str(k): int(v) for k, v in doc["spikes"].items()},
            tuple(int(v) for v in doc["reports"]),
            tuple(int(v) for v in doc["weights"]),
        )


class Recorder(Protocol):
    """Writes one run's recording; see the module docstring for the call order."""

    def open(self, info: RunInfo) -> None:
        """Create the store (metadata by one rank, then a barrier). Collective."""

    def add_spikes(
        self, population: str, steps: npt.NDArray[np.int64], node_ids: npt.NDArray[np.int64]
    ) -> None:
        """Append the population's spikes of one interval, sorted by (step, node id).

        ``steps`` are time-step indices (spike time = step * dt_ms); the arrays are the same on
        every rank. Arrays are only valid during the call (the engine reuses its buffers).
        """

    def add_state(
        self,
        report: int,
        sample_index: int,
        positions: npt.NDArray[np.int64],
        values: npt.NDArray[np.float32],
    ) -> None:
        """Store this rank's values for sample ``sample_index`` of ``info.reports[report]``.

        ``positions`` index into ``reports[report].node_ids`` (the rank's own recorded
        neurons, ascending); ``values`` is aligned with ``positions``.
        """

    def add_state_block(
        self,
        report: int,
        first_sample: int,
        positions: npt.NDArray[np.int64],
        values: npt.NDArray[np.float32],
    ) -> None:
        """:meth:`add_state` for consecutive samples: ``values[r]`` is sample
        ``first_sample + r``."""

    def write_weight_ids(self, index: int, first: int, count: int, ids: IdsOf) -> None:
        """Create the arrays of ``info.weights[index]`` and write its synapse ids; collective,
        once, after ``open`` and before the first :meth:`write_weights`.

        This rank's synapses are the columns ``first .. first + count - 1`` (the ranks' ranges
        tile ``0 .. n - 1``; a rank without synapses gives ``count = 0``). ``ids(lo, hi)``
        returns their ``(sources, targets)`` for local columns ``lo .. hi - 1`` (column
        ``first + lo`` first): node ids within the source and target populations.
        """

    def write_weights(self, index: int, snapshot: int, time_ms: float, values: ValuesOf) -> None:
        """Write snapshot ``snapshot`` of ``info.weights[index]``, taken at ``time_ms``, and
        publish it; collective.

        Every rank calls it for every snapshot, in order 0, 1, 2, ..., with the same strictly
        increasing ``time_ms``. ``values(lo, hi)`` returns this rank's float32 weights of local
        columns ``lo .. hi - 1`` (as for :meth:`write_weight_ids`).
        """

    def flush(self, simulated_ms: float) -> None:
        """Make everything added so far durable and readable; update progress. Collective."""

    def close(
        self,
        status: FinalStatus,
        *,
        build_s: float,
        sim_s: float | None = None,
        n_synapses: int | None = None,
        reason: str | None = None,
        weights_s: float | None = None,
        checkpoint_s: float | None = None,
        resources: RankResources | None = None,
    ) -> None:
        """Final flush, status and timings (``build_s`` construction, ``sim_s`` the step loop,
        ``weights_s`` the weight recordings' ids and snapshots, ``checkpoint_s`` writing
        checkpoints, measured by the caller; rank 0's values are stored), the synapses each
        rank built (``n_synapses``, this rank's; stored per rank and summed) and what this
        rank's process used (``resources``; when every rank gives it, the run's entry in the
        provenance's ``runs`` list: CPU summed, peak memory as the largest and the sum).
        Collective."""

    def position(self) -> RecorderPosition:
        """What the last flush published, for a checkpoint taken right after it."""

    def mark_failed(self, reason: str) -> None:
        """Record a failure without any collective call (the other ranks may be gone)."""
