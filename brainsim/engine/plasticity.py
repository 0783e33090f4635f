"""One rank's plastic projections: their store, traces and weight snapshots.

Plastic projections are built exactly like static ones (post-side, keyed by target gid), into a
delivery plan of their own whose weights are always stored per synapse; the traces and post-spike
histories of :class:`~brainsim.kernels.plasticity.PlasticArrays` are added beside it. A weight
snapshot puts this rank's synapses in the recording's order (by target, then source, then
creation): each rank's targets are a contiguous block of its population, so its synapses are a
contiguous block of the columns, after those of the lower ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import Circuit, Projection
from brainsim.engine.connectivity import DeliveryPlan
from brainsim.kernels.delivery import (
    DELAY_DENSE,
    DELAY_PACKED,
    META_COLUMNS,
    NARROW_MODES,
    PACK_MAX_TARGET,
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
from brainsim.models import SYNAPSE_MODELS
from brainsim.recording.base import Collectives, Recorder

__all__ = ["PlasticPlan", "SynapseIds", "WeightSnapshots", "rule_row"]

Int64Array = npt.NDArray[np.int64]

_ALL = np.iinfo(np.int64).max

_MODE = META_COLUMNS.index("delay_mode")
_IPTR = META_COLUMNS.index("indptr_offset")
_SYN = META_COLUMNS.index("synapse_offset")
_WOFF = META_COLUMNS.index("weight_offset")


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


@dataclass(frozen=True, slots=True)
class SynapseIds:
    """This rank's synapses of one plastic projection in the recording's order: ``order``
    indexes the projection's stored weights; ``sources``/``targets`` are population-local ids."""

    order: Int64Array
    sources: Int64Array
    targets: Int64Array


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

    def synapse_ids(self, q: int) -> SynapseIds:
        """Projection ``q``'s local synapses in the recording's order (by target, source,
        then creation, which is their order within a source's row)."""
        a = self.arrays
        iptr, _, n_syn = self._stored(q)
        counts = np.diff(a.indptrs[iptr : iptr + self._rows(q) + 1])
        sources = np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)
        mode, at = int(a.meta[q, _MODE]), int(a.meta[q, _SYN])
        if mode == DELAY_DENSE:
            starts = np.repeat(a.indptrs[iptr : iptr + counts.shape[0]], counts)
            targets = np.arange(n_syn, dtype=np.int64) - starts
        else:
            stored = a.targets16 if mode in NARROW_MODES else a.targets
            targets = stored[at : at + n_syn].astype(np.int64)
            if mode == DELAY_PACKED:
                targets &= PACK_MAX_TARGET
        order = np.lexsort((sources, targets)).astype(np.int64)
        return SynapseIds(
            order=order, sources=sources[order], targets=targets[order] + self.target_lo[q]
        )

    def weights_of(self, q: int) -> npt.NDArray[np.float32]:
        """Projection ``q``'s stored weights, in storage order (a view)."""
        _, woff, n_syn = self._stored(q)
        return self.arrays.weights[woff : woff + n_syn]


@dataclass(slots=True)
class _Recorded:
    """One weight recording on this rank."""

    index: int
    """Its index in ``RunInfo.weights`` (document order)."""
    q: int
    """Its projection among the plastic ones."""
    interval_steps: int | None
    order: Int64Array
    positions: Int64Array
    snapshots: int = 0


class WeightSnapshots:
    """Takes the weight snapshots of a run: at 0, every recording's interval and at the end
    (:meth:`due` says when; all ranks agree, as the snapshot steps bound the loop's calls)."""

    def __init__(
        self, circuit: Circuit, plastic: PlasticPlan, comm: Collectives, recorder: Recorder
    ) -> None:
        self._plastic = plastic
        self._recorder = recorder
        self._dt_ms = circuit.simulation.dt_ms
        self._n_steps = circuit.n_steps
        self._recorded: list[_Recorded] = []
        local = [
            plastic.synapse_ids(plastic.index(w.projection)) for w in circuit.recordings.weights
        ]
        counts = comm.allgather([ids.order.shape[0] for ids in local])
        for index, (spec, ids) in enumerate(zip(circuit.recordings.weights, local, strict=True)):
            before = sum(counts[r][index] for r in range(comm.rank))
            positions = before + np.arange(ids.order.shape[0], dtype=np.int64)
            keep = positions < (spec.first if spec.first is not None else _ALL)
            interval = None
            if spec.interval_ms is not None:
                interval = max(1, round(spec.interval_ms / self._dt_ms))
            self._recorded.append(
                _Recorded(
                    index,
                    plastic.index(spec.projection),
                    interval,
                    ids.order[keep],
                    positions[keep],
                )
            )
            recorder.add_weight_ids(index, positions[keep], ids.sources[keep], ids.targets[keep])

    def next_due(self, step: int) -> int:
        """The first step after ``step`` at which a snapshot is due (the last step at most)."""
        due = self._n_steps
        for rec in self._recorded:
            if rec.interval_steps is not None:
                due = min(due, (step // rec.interval_steps + 1) * rec.interval_steps)
        return due

    def take(self, step: int, *, final: bool = False) -> None:
        """Record the snapshots due at ``step`` (``final``: every recording's last one)."""
        for rec in self._recorded:
            regular = rec.interval_steps is not None and step % rec.interval_steps == 0
            if not (final or regular):
                continue
            values = self._plastic.weights_of(rec.q)[rec.order]
            self._recorder.add_weights(
                rec.index, rec.snapshots, step * self._dt_ms, rec.positions, values
            )
            rec.snapshots += 1
