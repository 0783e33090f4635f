"""One rank's plastic projections: their store, traces and weight snapshots.

Plastic projections are built exactly like static ones (post-side, keyed by target gid), into a
delivery plan of their own whose weights are always stored per synapse; the traces and post-spike
histories of :class:`~brainsim.kernels.plasticity.PlasticArrays` are added beside it. A weight
snapshot puts this rank's synapses in the recording's order (by target, then source, then
creation): each rank's targets are a contiguous block of its population, so its synapses are a
contiguous block of the columns, after those of the lower ranks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import Circuit, Projection
from brainsim.engine.connectivity import DeliveryPlan
from brainsim.kernels.delivery import (
    DELAY_DENSE,
    META_COLUMNS,
    NARROW_MODES,
)
from brainsim.kernels.plasticity import (
    DECAY_TABLE_TAUS,
    HISTORY_START,
    NEVER,
    RULE_COLUMNS,
    RULES,
    PlasticArrays,
    decay_table,
)
from brainsim.kernels.snapshots import count_by_target, gather_by_target
from brainsim.models import SYNAPSE_MODELS
from brainsim.recording.base import Collectives, Recorder

__all__ = ["PlasticPlan", "RecordingOrder", "WeightSnapshots", "rule_row"]

Int64Array = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]

_ALL = np.iinfo(np.int64).max

_MODE = META_COLUMNS.index("delay_mode")
_IPTR = META_COLUMNS.index("indptr_offset")
_SYN = META_COLUMNS.index("synapse_offset")
_WOFF = META_COLUMNS.index("weight_offset")
_POST_N_TARGETS = 1
"""The column of ``PlasticArrays.post`` with a projection's number of local targets."""
_NO_IDS = np.empty(0, dtype=np.int32)
_NO_WEIGHTS = np.empty(0, dtype=np.float32)


def rule_row(projection: Projection) -> npt.NDArray[np.float64]:
    """The kernel's parameter row (:data:`RULE_COLUMNS`) of a plastic projection."""
    model = SYNAPSE_MODELS[projection.synapse.model]
    row = np.zeros(len(RULE_COLUMNS))
    row[0] = RULES[model.kernel]
    for parameter in model.parameters:
        row[RULE_COLUMNS.index(parameter.slot)] = projection.synapse.params[parameter.name]
    return row


def _decay_tables(projections: list[Projection], dt_ms: float) -> npt.NDArray[np.float64]:
    """Each projection's trace decays, ``[q, (plus, minus), lag]``, over as many lags as the
    slowest trace needs to fall below ``e^-DECAY_TABLE_TAUS``."""
    taus = [
        (p.synapse.params["tau_plus_ms"], p.synapse.params["tau_minus_ms"]) for p in projections
    ]
    n = int(np.ceil(DECAY_TABLE_TAUS * max(max(pair) for pair in taus) / dt_ms))
    return np.array([[decay_table(n, dt_ms, tau) for tau in pair] for pair in taus])


@dataclass(slots=True)
class PlasticPlan:
    """The plastic projections of one rank (document order) and their kernel arrays."""

    projections: tuple[Projection, ...]
    target_lo: tuple[int, ...]
    """First population-local id of each projection's local targets."""
    arrays: PlasticArrays
    n_synapses: int

    @classmethod
    def build(
        cls,
        circuit: Circuit,
        plan: DeliveryPlan,
        projections: list[Projection],
        target_ranges: list[tuple[int, int]],
        max_delays: list[int],
    ) -> PlasticPlan:
        """Traces and histories for ``plan``, the delivery plan of ``projections`` (document
        order), whose local targets are the population-local ranges ``target_ranges`` and
        whose local synapses' largest delays (steps) are ``max_delays``."""
        if not projections:
            return cls((), (), PlasticArrays.empty(), 0)
        sizes = [circuit.populations[p.source].size for p in projections]
        n_local = [hi - lo for lo, hi in target_ranges]
        pre_first = np.cumsum([0, *sizes])[:-1]
        rows_first = np.cumsum([0, *n_local])[:-1]
        post = np.array(
            [
                [circuit.populations[p.target].gid_offset + lo, n, rows, d_max, pre]
                for p, (lo, _), n, rows, d_max, pre in zip(
                    projections,
                    target_ranges,
                    n_local,
                    rows_first,
                    max_delays,
                    pre_first,
                    strict=True,
                )
            ],
            dtype=np.int64,
        ).reshape(len(projections), 5)
        n_rows = int(sum(n_local))
        floor = np.zeros((len(projections), 2), dtype=np.int64)
        floor[:, 0], floor[:, 1] = NEVER, -1
        arrays = PlasticArrays(
            plan.pop_gid_bounds, plan.by_source_ptr, plan.by_source, plan.meta, plan.indptrs,
            plan.targets, plan.targets16, plan.weights, plan.delays, plan.delays8,
            np.array([rule_row(p) for p in projections]), post, floor,
            np.full(int(sum(sizes)), NEVER, dtype=np.int64), np.zeros(int(sum(sizes))),
            np.zeros((n_rows, 2 * HISTORY_START)), np.zeros(n_rows, dtype=np.int64),
            _decay_tables(projections, circuit.simulation.dt_ms),
        )  # fmt: skip
        return cls(
            tuple(projections), tuple(lo for lo, _ in target_ranges), arrays, plan.n_synapses
        )

    @property
    def synapse_bytes(self) -> int:
        """Bytes of the plastic synapses' store (per-source offsets included)."""
        a = self.arrays
        return int(
            a.indptrs.nbytes + a.targets.nbytes + a.targets16.nbytes + a.weights.nbytes
            + a.delays.nbytes + a.delays8.nbytes
        )  # fmt: skip

    @property
    def state_bytes(self) -> int:
        """Bytes of the traces and post-spike histories (neuron-side plastic state)."""
        a = self.arrays
        return int(
            a.pre_last.nbytes + a.pre_trace.nbytes + a.hist.nbytes + a.decay.nbytes
            + a.hist_count.nbytes
        )  # fmt: skip

    def index(self, name: str) -> int:
        """Position of projection ``name`` among the plastic ones."""
        return [p.name for p in self.projections].index(name)

    def _stored(self, q: int) -> tuple[int, int, int]:
        """Projection ``q``'s first indptr slot, first weight and synapse count here."""
        a = self.arrays
        iptr, woff = int(a.meta[q, _IPTR]), int(a.meta[q, _WOFF])
        return iptr, woff, int(a.indptrs[iptr + self._rows(q)])

    def _rows(self, q: int) -> int:
        """Number of source rows of projection ``q``'s CSR."""
        meta = self.arrays.meta
        end = self.arrays.indptrs.shape[0] if q + 1 == meta.shape[0] else int(meta[q + 1, _IPTR])
        return end - int(meta[q, _IPTR]) - 1

    def recording_kernels(self, recorded: Iterable[str]) -> list[tuple[Any, tuple[Any, ...]]]:
        """The weight recordings' kernels, each with arguments of the types :meth:`order` and
        :class:`RecordingOrder` pass it, for the projections named in ``recorded``: a compile
        helper compiles them ahead (:mod:`brainsim.kernels.compiler`)."""
        a, dtypes = self.arrays, set()
        kernels: list[tuple[Any, tuple[Any, ...]]] = []
        for name in recorded:
            mode = int(a.meta[self.index(name), _MODE])
            stored = (a.targets16 if mode in NARROW_MODES else a.targets)[:0]
            if stored.dtype in dtypes:
                continue
            dtypes.add(stored.dtype)
            i8 = a.indptrs[:0]
            kernels.append((count_by_target, (i8, stored, mode, 0)))
            kernels.append((gather_by_target, (
                i8, stored, mode, i8, 0, 0, a.weights[:0], _NO_WEIGHTS, _NO_IDS,
            )))  # fmt: skip
        return kernels

    def order(self, q: int) -> RecordingOrder:
        """Projection ``q``'s local synapses in the recording's order."""
        a = self.arrays
        iptr, woff, n_syn = self._stored(q)
        indptr = a.indptrs[iptr : iptr + self._rows(q) + 1]
        mode, at = int(a.meta[q, _MODE]), int(a.meta[q, _SYN])
        stored = a.targets16 if mode in NARROW_MODES else a.targets
        stored = stored[at : at + n_syn] if mode != DELAY_DENSE else stored[:0]
        n_targets = int(a.post[q, _POST_N_TARGETS])
        return RecordingOrder(
            indptr, stored, mode, count_by_target(indptr, stored, mode, n_targets),
            a.weights[woff : woff + n_syn], self.target_lo[q],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecordingOrder:
    """One rank's synapses of one plastic projection in the recording's order (by target,
    source, then creation), read a column range at a time (:mod:`brainsim.kernels.snapshots`):
    no per-synapse index is kept."""

    indptr: Int64Array
    stored: npt.NDArray[np.integer[Any]]
    mode: int
    tptr: Int64Array
    """``tptr[t]``: the synapses onto local targets below ``t``."""
    weights: npt.NDArray[np.float32]
    """The projection's weights in storage order (a view of the store)."""
    target_lo: int
    """Population-local id of local target 0."""

    @property
    def n_synapses(self) -> int:
        return int(self.tptr[-1])

    def weights_of(self, lo: int, hi: int) -> npt.NDArray[np.float32]:
        """The current weights of columns ``lo .. hi - 1``."""
        out = np.empty(hi - lo, dtype=np.float32)
        gather_by_target(
            self.indptr, self.stored, self.mode, self.tptr, lo, hi, self.weights, out, _NO_IDS
        )
        return out

    def set_weights(self, lo: int, values: npt.NDArray[np.float32]) -> None:
        """Store ``values`` as the weights of columns ``lo .. lo + values.size - 1``."""
        gather_by_target(
            self.indptr, self.stored, self.mode, self.tptr, lo, lo + values.size, self.weights,
            np.ascontiguousarray(values, dtype=np.float32), _NO_IDS, True,
        )  # fmt: skip

    def ids_of(self, lo: int, hi: int) -> tuple[Int32Array, Int32Array]:
        """``(sources, targets)`` of columns ``lo .. hi - 1``, population-local ids (int32:
        the populations' sizes fit, as the schema bounds them)."""
        sources = np.empty(hi - lo, dtype=np.int32)
        gather_by_target(
            self.indptr, self.stored, self.mode, self.tptr, lo, hi, self.weights, _NO_WEIGHTS,
            sources,
        )  # fmt: skip
        t_lo = int(np.searchsorted(self.tptr, lo, side="right")) - 1
        t_hi = int(np.searchsorted(self.tptr, hi, side="left"))
        counts = np.diff(np.clip(self.tptr[t_lo : t_hi + 1], lo, hi)).astype(np.int64)
        first = self.target_lo + t_lo
        targets = np.repeat(np.arange(first, first + t_hi - t_lo, dtype=np.int32), counts)
        return sources, targets


@dataclass(slots=True)
class _Recorded:
    """One weight recording on this rank."""

    index: int
    """Its index in ``RunInfo.weights`` (document order)."""
    order: RecordingOrder
    interval_steps: int | None
    snapshots: int = 0


class WeightSnapshots:
    """Takes the weight snapshots of a run: at 0, every recording's interval and at the end
    (:meth:`next_due` says when; all ranks agree, as the snapshot steps bound the loop's calls)."""

    def __init__(
        self, circuit: Circuit, plastic: PlasticPlan, comm: Collectives, recorder: Recorder
    ) -> None:
        self._recorder = recorder
        self._dt_ms = circuit.simulation.dt_ms
        self._n_steps = circuit.n_steps
        self._recorded: list[_Recorded] = []
        started = time.perf_counter()
        self.seconds = 0.0
        """Wall-clock seconds spent writing synapse ids and snapshots (not simulation)."""
        orders = [plastic.order(plastic.index(w.projection)) for w in circuit.recordings.weights]
        counts = comm.allgather([order.n_synapses for order in orders])
        for index, (spec, order) in enumerate(zip(circuit.recordings.weights, orders, strict=True)):
            before = sum(counts[r][index] for r in range(comm.rank))
            limit = spec.first if spec.first is not None else _ALL
            count = max(0, min(order.n_synapses, limit - before))
            interval = None
            if spec.interval_ms is not None:
                interval = max(1, round(spec.interval_ms / self._dt_ms))
            self._recorded.append(_Recorded(index, order, interval))
            recorder.write_weight_ids(index, min(before, limit), count, order.ids_of)
        self.seconds += time.perf_counter() - started

    def resume(self, taken: tuple[int, ...]) -> None:
        """Continue a run whose recording holds ``taken[i]`` snapshots of ``info.weights[i]``
        (a checkpoint's recorder position)."""
        for rec in self._recorded:
            rec.snapshots = int(taken[rec.index])

    def next_due(self, step: int) -> int:
        """The first step after ``step`` at which a snapshot is due (the last step at most)."""
        due = self._n_steps
        for rec in self._recorded:
            if rec.interval_steps is not None:
                due = min(due, (step // rec.interval_steps + 1) * rec.interval_steps)
        return due

    def take(self, step: int, *, final: bool = False) -> None:
        """Record the snapshots due at ``step`` (``final``: every recording's last one)."""
        started = time.perf_counter()
        for rec in self._recorded:
            regular = rec.interval_steps is not None and step % rec.interval_steps == 0
            if not (final or regular):
                continue
            self._recorder.write_weights(
                rec.index, rec.snapshots, step * self._dt_ms, rec.order.weights_of
            )
            rec.snapshots += 1
        self.seconds += time.perf_counter() - started
