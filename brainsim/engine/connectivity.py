"""Post-side construction of one projection's synapses on one rank.

The rank generates the incoming synapses of its own target neurons only (keyed by target gid,
so the result does not depend on the decomposition), draws their weights and delays, and stores
them as a CSR indexed by source (see :mod:`brainsim.kernels.delivery` for the layout). No rank
ever holds the global edge list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import (
    AllToAll,
    Circuit,
    FixedIndegree,
    FixedOutdegree,
    FixedTotalNumber,
    FromFile,
    OneToOne,
    PairwiseBernoulli,
    Projection,
)
from brainsim.engine.values import per_synapse, stream_of
from brainsim.errors import EngineError
from brainsim.kernels import connect
from brainsim.kernels.delivery import (
    DELAY_CONSTANT,
    DELAY_PACKED,
    DELAY_SEPARATE,
    META_COLUMNS,
    PACK_MAX_DELAY,
    PACK_MAX_TARGET,
    PACK_SHIFT,
)
from brainsim.kernels.synapses import (
    by_source,
    pack_delays,
    permuted_delay_steps,
    permuted_weights,
)

__all__ = ["DeliveryPlan", "LocalProjection", "build_projection"]

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """This rank's part of a projection: a CSR over all source neurons, local targets only.

    ``weights`` is empty when every synapse has ``const_weight``; ``delays`` is empty unless
    ``delay_mode`` is :data:`~brainsim.kernels.delivery.DELAY_SEPARATE`; with
    ``DELAY_CONSTANT`` every synapse has ``delay_steps`` (see :mod:`brainsim.kernels.delivery`).
    """

    name: str
    source: str
    source_gid_offset: int
    target: str
    indptr: Int64Array
    targets: npt.NDArray[np.uint32]
    weights: npt.NDArray[np.float32]
    const_weight: float
    delays: npt.NDArray[np.uint16]
    delay_mode: int
    delay_steps: int
    min_delay_steps: int
    max_delay_steps: int

    @property
    def n_synapses(self) -> int:
        """Number of synapses stored on this rank."""
        return int(self.targets.shape[0])


def _incoming(
    circuit: Circuit, proj: Projection, target_gids: Int64Array, lo: int, hi: int
) -> tuple[Int64Array, Int64Array, dict[str, npt.NDArray[np.float64]]]:
    """CSR by local target: ``(indptr, population-local sources, per-synapse file values)``."""
    src = circuit.populations[proj.source]
    tgt = circuit.populations[proj.target]
    seed = circuit.simulation.seed
    stream = stream_of(f"projections.{proj.name}.connectivity")
    rule = proj.connectivity
    n_local = target_gids.shape[0]
    if isinstance(rule, OneToOne):
        indptr = np.arange(n_local + 1, dtype=np.int64)
        return indptr, np.arange(lo, hi, dtype=np.int64), {}
    if isinstance(rule, AllToAll):
        indptr, sources = connect.all_to_all(
            target_gids, src.size, src.gid_offset, rule.allow_autapses
        )
    elif isinstance(rule, FixedIndegree):
        indptr, sources = connect.fixed_indegree(
            seed,
            stream,
            target_gids,
            src.size,
            src.gid_offset,
            rule.indegree,
            rule.allow_autapses,
            rule.allow_multapses,
        )
    elif isinstance(rule, PairwiseBernoulli):
        indptr, sources = connect.pairwise_bernoulli(
            seed, stream, target_gids, src.size, src.gid_offset, rule.p, rule.allow_autapses
        )
    elif isinstance(rule, FixedTotalNumber):
        # Without multapses each target can take at most its number of eligible sources.
        eligible = -1
        if not rule.allow_multapses:
            autapse = proj.source == proj.target and not rule.allow_autapses
            eligible = src.size - (1 if autapse else 0)
        counts = connect.fixed_total_number_counts(seed, stream, rule.n, tgt.size, eligible)
        indptr, sources = connect.fixed_total_number(
            seed,
            stream,
            target_gids,
            counts[lo:hi],
            src.size,
            src.gid_offset,
            rule.allow_autapses,
            rule.allow_multapses,
        )
    elif isinstance(rule, FixedOutdegree):
        indptr, sources = connect.fixed_outdegree_local(
            seed,
            stream,
            src.size,
            src.gid_offset,
            tgt.size,
            tgt.gid_offset,
            rule.outdegree,
            rule.allow_autapses,
            rule.allow_multapses,
            lo,
            hi,
        )
    else:
        return _from_file(circuit, proj, rule, lo, hi)
    return np.asarray(indptr, dtype=np.int64), np.asarray(sources, dtype=np.int64), {}


def _from_file(
    circuit: Circuit, proj: Projection, rule: FromFile, lo: int, hi: int
) -> tuple[Int64Array, Int64Array, dict[str, npt.NDArray[np.float64]]]:
    """Read an explicit connection list and keep the rows whose target is local."""
    path = rule.path if circuit.base_dir is None else os.path.join(circuit.base_dir, rule.path)
    try:
        with np.load(path, allow_pickle=False) as data:
            sources = np.asarray(data["source"], dtype=np.int64)
            targets = np.asarray(data["target"], dtype=np.int64)
            extra = {
                k: np.asarray(data[k], dtype=np.float64)
                for k in ("weight", "delay_ms")
                if k in data
            }
    except (OSError, KeyError, ValueError) as exc:
        raise EngineError(f"projections.{proj.name}.connectivity.path: {exc}") from exc
    keep = (targets >= lo) & (targets < hi)
    # Stable sort by target keeps the file's order among each target's synapses.
    order = np.argsort(targets[keep], kind="stable")
    local_targets = targets[keep][order] - lo
    indptr = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(np.bincount(local_targets, minlength=hi - lo), out=indptr[1:])
    return indptr, sources[keep][order], {k: v[keep][order] for k, v in extra.items()}


def _synapse_values(
    circuit: Circuit,
    proj: Projection,
    name: str,
    indptr: Int64Array,
    first_gid: int,
    file_values: dict[str, npt.NDArray[np.float64]],
) -> float | npt.NDArray[np.float64]:
    """Weight or delay of every synapse (in CSR-by-target order), or one float for all."""
    if name in file_values:
        return file_values[name]
    return per_synapse(
        getattr(proj, name),
        seed=circuit.simulation.seed,
        path=f"projections.{proj.name}.{name}",
        indptr=indptr,
        first_gid=first_gid,
    )


def _common_value(values: float | npt.NDArray[np.float64]) -> float | None:
    """The value every synapse shares (0.0 for none), or ``None`` when they differ."""
    if isinstance(values, float):
        return values
    if values.shape[0] == 0:
        return 0.0
    return float(values[0]) if np.all(values == values[0]) else None


def build_projection(circuit: Circuit, proj: Projection, lo: int, hi: int) -> LocalProjection:
    """Build the synapses of ``proj`` onto target-population indices ``[lo, hi)``."""
    src = circuit.populations[proj.source]
    tgt = circuit.populations[proj.target]
    dt = circuit.simulation.dt_ms
    target_gids = np.arange(tgt.gid_offset + lo, tgt.gid_offset + hi, dtype=np.int64)
    indptr, sources, file_values = _incoming(circuit, proj, target_gids, lo, hi)
    first_gid = tgt.gid_offset + lo
    weight = _synapse_values(circuit, proj, "weight", indptr, first_gid, file_values)
    delay_ms = _synapse_values(circuit, proj, "delay_ms", indptr, first_gid, file_values)
    src_indptr, perm, local_target = by_source(indptr, sources, src.size)
    del sources

    one_weight = _common_value(weight)
    if one_weight is not None:
        # Stored as float32 like varying weights, so both sum exactly the same values.
        const_weight = float(np.float32(one_weight))
        weights = np.zeros(0, dtype=np.float32)
    else:
        const_weight = 0.0
        weights = permuted_weights(np.asarray(weight, dtype=np.float64), perm)
    one_delay = _common_value(delay_ms)
    steps: Int64Array
    if one_delay is not None:
        steps = np.array([max(1, round(one_delay / dt))], dtype=np.int64)
    else:
        steps = permuted_delay_steps(np.asarray(delay_ms, dtype=np.float64), perm, dt)
    del perm
    d_min, d_max = int(steps.min()), int(steps.max())
    delays = np.zeros(0, dtype=np.uint16)
    if d_min == d_max:
        mode, packed = DELAY_CONSTANT, local_target
    elif d_max <= PACK_MAX_DELAY and hi - lo <= PACK_MAX_TARGET:
        mode, packed = DELAY_PACKED, pack_delays(local_target, steps, PACK_SHIFT)
    elif d_max <= np.iinfo(np.uint16).max:
        mode, delays, packed = DELAY_SEPARATE, steps.astype(np.uint16), local_target
    else:
        raise EngineError(
            f"projections.{proj.name}.delay_ms: delays above {np.iinfo(np.uint16).max} steps "
            "are not supported"
        )
    return LocalProjection(
        name=proj.name,
        source=proj.source,
        source_gid_offset=src.gid_offset,
        target=proj.target,
        indptr=src_indptr,
        targets=packed,
        weights=weights,
        const_weight=const_weight,
        delays=delays,
        delay_mode=mode,
        delay_steps=d_min if mode == DELAY_CONSTANT else 0,
        min_delay_steps=d_min,
        max_delay_steps=d_max,
    )


def _end_to_end(arrays: list[npt.NDArray[Any]], dtype: type) -> npt.NDArray[Any]:
    """The arrays concatenated, as ``dtype``."""
    out = np.empty(sum(a.shape[0] for a in arrays), dtype=dtype)
    pos = 0
    for a in arrays:
        out[pos : pos + a.shape[0]] = a
        pos += a.shape[0]
    return out


def _offsets(sizes: list[int], stored: list[bool]) -> Int64Array:
    """Start of each stored part when the stored parts are laid end to end (-1: not stored)."""
    starts = np.cumsum([0, *[n if keep else 0 for n, keep in zip(sizes, stored, strict=True)]])
    return np.where(stored, starts[:-1], -1).astype(np.int64)


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """Every local projection end to end, for one
    :func:`~brainsim.kernels.delivery.deliver_all` call per interval (see it for the fields).

    Flat arrays rather than a list of arrays: numba compiles typed lists anew in every process,
    which cost seconds of start-up per rank.
    """

    pop_gid_bounds: Int64Array
    by_source_ptr: Int64Array
    by_source: Int64Array
    meta: Int64Array
    const_weight: npt.NDArray[np.float64]
    indptrs: Int64Array
    targets: npt.NDArray[np.uint32]
    weights: npt.NDArray[np.float32]
    delays: npt.NDArray[np.uint16]

    @property
    def n_synapses(self) -> int:
        """Synapses stored on this rank."""
        return int(self.targets.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of synapse storage on this rank (per-source offsets included)."""
        return int(
            self.indptrs.nbytes + self.targets.nbytes + self.weights.nbytes + self.delays.nbytes
        )

    @classmethod
    def build(
        cls,
        projections: list[LocalProjection],
        populations: list[tuple[str, int, int]],
        columns: dict[str, int],
        split: dict[str, bool],
    ) -> DeliveryPlan:
        """Plan for ``projections`` (document order); ``populations`` are ``(name, gid_offset,
        size)`` in gid order, ``columns[target]`` its first ring-buffer column, ``split[target]``
        whether it separates inhibitory input. The projections' arrays are copied end to end,
        so their memory can be released once this returns."""
        names = [name for name, _, _ in populations]
        bounds = np.array([off for _, off, _ in populations] + [sum(n for *_, n in populations)])
        source_index = np.array([names.index(p.source) for p in projections], dtype=np.int64)
        by_source = np.argsort(source_index, kind="stable").astype(np.int64)
        by_source_ptr = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(np.bincount(source_index, minlength=len(names)), out=by_source_ptr[1:])
        n_syn = [p.n_synapses for p in projections]
        indptr_offsets = _offsets([p.indptr.shape[0] for p in projections], [True] * len(n_syn))
        synapse_offsets = _offsets(n_syn, [True] * len(n_syn))
        weight_offsets = _offsets(n_syn, [p.weights.shape[0] > 0 for p in projections])
        delay_offsets = _offsets(n_syn, [p.delays.shape[0] > 0 for p in projections])
        meta = np.array(
            [
                [p.source_gid_offset, p.delay_mode, p.delay_steps,
                 columns[p.target], int(split[p.target]), indptr_offsets[q], synapse_offsets[q],
                 weight_offsets[q], delay_offsets[q]]
                for q, p in enumerate(projections)
            ],
            dtype=np.int64,
        ).reshape(len(projections), len(META_COLUMNS))  # fmt: skip
        return cls(
            pop_gid_bounds=bounds.astype(np.int64),
            by_source_ptr=by_source_ptr,
            by_source=by_source,
            meta=meta,
            const_weight=np.array([p.const_weight for p in projections], dtype=np.float64),
            indptrs=_end_to_end([p.indptr for p in projections], np.int64),
            targets=_end_to_end([p.targets for p in projections], np.uint32),
            weights=_end_to_end([p.weights for p in projections], np.float32),
            delays=_end_to_end([p.delays for p in projections], np.uint16),
        )
