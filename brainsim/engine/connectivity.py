"""Post-side construction of one projection's synapses on one rank.

The rank generates the incoming synapses of its own target neurons only (keyed by target gid,
so the result does not depend on the decomposition), draws their weights and delays, and stores
them as a CSR indexed by source (see :mod:`brainsim.kernels.delivery` for the layout). No rank
ever holds the global edge list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

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
    DELAY_DENSE,
    DELAY_NARROW,
    DELAY_NARROW_BYTE,
    DELAY_NARROW_SEPARATE,
    DELAY_PACKED,
    DELAY_SEPARATE,
    META_COLUMNS,
    NARROW_MAX_TARGETS,
    PACK_MAX_DELAY,
    PACK_MAX_TARGET,
)
from brainsim.kernels.synapses import count_sources, delay_steps, scatter_by_source

__all__ = [
    "BLOCK_SYNAPSES",
    "CountedProjection",
    "DeliveryPlan",
    "LocalProjection",
    "ProjectionSynapses",
    "count_projection",
    "expected_mode",
    "fill_projection",
    "is_dense",
    "is_narrow",
    "projection_synapses",
]

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """This rank's part of a projection: a CSR over all source neurons, local targets only.

    ``weights`` is empty when every synapse has ``const_weight``; ``delays`` is empty unless
    ``delay_mode`` is :data:`~brainsim.kernels.delivery.DELAY_SEPARATE`,
    ``DELAY_NARROW_SEPARATE`` or ``DELAY_NARROW_BYTE`` (``uint8``); with ``DELAY_CONSTANT`` or
    ``DELAY_NARROW`` or ``DELAY_DENSE`` every synapse has ``delay_steps``. The
    ``DELAY_NARROW*`` modes have ``uint16`` targets; ``DELAY_DENSE`` stores none (see
    :mod:`brainsim.kernels.delivery`).
    """

    name: str
    source: str
    source_gid_offset: int
    target: str
    indptr: Int64Array
    targets: npt.NDArray[np.uint32] | npt.NDArray[np.uint16]
    weights: npt.NDArray[np.float32]
    const_weight: float
    delays: npt.NDArray[np.uint16] | npt.NDArray[np.uint8]
    delay_mode: int
    delay_steps: int
    min_delay_steps: int
    max_delay_steps: int

    @property
    def n_synapses(self) -> int:
        """Number of synapses stored on this rank."""
        return int(self.indptr[-1])


def _total_counts(circuit: Circuit, proj: Projection) -> Int64Array | None:
    """Per-target synapse counts of a ``fixed_total_number`` projection (else ``None``)."""
    rule = proj.connectivity
    if not isinstance(rule, FixedTotalNumber):
        return None
    src = circuit.populations[proj.source]
    # Without multapses each target can take at most its number of eligible sources.
    eligible = -1
    if not rule.allow_multapses:
        autapse = proj.source == proj.target and not rule.allow_autapses
        eligible = src.size - (1 if autapse else 0)
    stream = stream_of(f"projections.{proj.name}.connectivity")
    size = circuit.populations[proj.target].size
    counts = connect.fixed_total_number_counts(
        circuit.simulation.seed, stream, rule.n, size, eligible
    )
    return np.asarray(counts, dtype=np.int64)


def _per_target(circuit: Circuit, proj: Projection, total_counts: Int64Array | None) -> float:
    """About how many synapses each target of ``proj`` gets (to size the blocks);
    ``inf`` for rules drawn source by source or read from a file, which take one block."""
    rule = proj.connectivity
    n_source = circuit.populations[proj.source].size
    if isinstance(rule, OneToOne):
        return 1.0
    if isinstance(rule, AllToAll):
        return float(n_source)
    if isinstance(rule, FixedIndegree):
        return float(rule.indegree)
    if isinstance(rule, PairwiseBernoulli):
        return rule.p * n_source
    if total_counts is not None:
        return float(total_counts.max(initial=0))
    return float("inf")


def _incoming(
    circuit: Circuit,
    proj: Projection,
    lo: int,
    hi: int,
    total_counts: Int64Array | None,
) -> tuple[Int64Array, Int64Array, dict[str, npt.NDArray[np.float64]]]:
    """CSR by target for local targets ``[lo, hi)`` of ``proj``: ``(indptr, population-local
    sources, per-synapse file values)``. Draws are keyed by target gid, so any split of the
    targets into blocks gives the same synapses. ``total_counts`` are the per-target counts of
    a ``fixed_total_number`` rule (:func:`_total_counts`)."""
    src = circuit.populations[proj.source]
    tgt = circuit.populations[proj.target]
    seed = circuit.simulation.seed
    stream = stream_of(f"projections.{proj.name}.connectivity")
    rule = proj.connectivity
    target_gids = np.arange(tgt.gid_offset + lo, tgt.gid_offset + hi, dtype=np.int64)
    n_local = hi - lo
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
        assert total_counts is not None
        indptr, sources = connect.fixed_total_number(
            seed,
            stream,
            target_gids,
            total_counts[lo:hi],
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


BLOCK_SYNAPSES: Final = 1 << 18
"""About how many synapses construction draws at once (one block of targets). The int64
sources and float64 values of one block are the only transient memory that grows with the
synapse count (about 6 MiB here); measured on Brunel and the microcircuit at scale 0.1, 256Ki
builds as fast as 1Mi and keeps the peak within 0.2 bytes per synapse of what is stored."""


@dataclass(slots=True)
class CountedProjection:
    """The first pass over one projection's local synapses: how many each source has.

    ``blocks`` are ranges of local target indices drawn one at a time; with a single block its
    draws are ``kept`` for the second pass, with several they are drawn again (draws are keyed,
    so both passes see the same synapses). ``const_weight``/``const_delay_ms`` are ``None``
    when the value differs per synapse.
    """

    proj: Projection
    lo: int
    hi: int
    blocks: list[tuple[int, int]]
    total_counts: Int64Array | None
    src_indptr: Int64Array
    const_weight: float | None
    const_delay_ms: float | None
    kept: tuple[Int64Array, Int64Array, dict[str, npt.NDArray[np.float64]]] | None = None

    @property
    def n_synapses(self) -> int:
        """Synapses of this projection on this rank."""
        return int(self.src_indptr[-1])


def _constant(value: float | npt.NDArray[np.float64]) -> float | None:
    """The value itself when it is one float for every synapse, else ``None``."""
    return value if isinstance(value, float) else None


def count_projection(
    circuit: Circuit, proj: Projection, lo: int, hi: int, block_synapses: int = BLOCK_SYNAPSES
) -> CountedProjection:
    """First pass of the synapses of ``proj`` onto target-population indices ``[lo, hi)``."""
    src = circuit.populations[proj.source]
    first_gid = circuit.populations[proj.target].gid_offset + lo
    total_counts = _total_counts(circuit, proj)
    per_target = max(_per_target(circuit, proj, total_counts), 1.0)
    step = max(1, int(block_synapses / per_target)) if per_target < float("inf") else hi - lo
    blocks = [(b, min(b + step, hi)) for b in range(lo, hi, step)] or [(lo, hi)]
    counts = np.zeros(src.size + 1, dtype=np.int64)
    kept = None
    for b_lo, b_hi in blocks:
        drawn = _incoming(circuit, proj, b_lo, b_hi, total_counts)
        count_sources(drawn[1], counts[1:])
        if len(blocks) == 1:
            kept = drawn
    np.cumsum(counts, out=counts)
    empty = np.zeros(1, dtype=np.int64)
    file_values = kept[2] if kept is not None else {}
    weight = _synapse_values(circuit, proj, "weight", empty, first_gid, file_values)
    delay_ms = _synapse_values(circuit, proj, "delay_ms", empty, first_gid, file_values)
    return CountedProjection(
        proj=proj,
        lo=lo,
        hi=hi,
        blocks=blocks,
        total_counts=total_counts,
        src_indptr=counts,
        const_weight=_constant(weight),
        const_delay_ms=_constant(delay_ms),
        kept=kept,
    )


def _scatter_blocks(
    circuit: Circuit,
    counted: CountedProjection,
    mode: int,
    targets: npt.NDArray[np.uint32] | npt.NDArray[np.uint16],
    weights: npt.NDArray[np.float32],
    byte_delays: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.uint16] | npt.NDArray[np.uint8], int, int]:
    """One second pass over the blocks of ``counted`` with delay ``mode``: returns the delays
    stored apart (``byte_delays`` in ``DELAY_NARROW_BYTE`` mode; empty unless ``mode`` stores
    them) and the smallest and largest delay in steps. In ``DELAY_PACKED`` or
    ``DELAY_NARROW_BYTE`` mode it stops at the first block with a delay above 255 steps."""
    proj = counted.proj
    dt = circuit.simulation.dt_ms
    first_gid = circuit.populations[proj.target].gid_offset
    n_syn = counted.n_synapses
    no_values = np.zeros(0, dtype=np.float64)
    no_steps = np.zeros(0, dtype=np.int64)
    delays: npt.NDArray[np.uint16] | npt.NDArray[np.uint8]
    if mode == DELAY_NARROW_BYTE:
        delays = byte_delays
    else:
        apart = mode in (DELAY_SEPARATE, DELAY_NARROW_SEPARATE)
        delays = np.empty(n_syn if apart else 0, dtype=np.uint16)
    cursor = counted.src_indptr[:-1].copy()
    d_min, d_max = 1 << 62, 0
    for b_lo, b_hi in counted.blocks:
        drawn = counted.kept or _incoming(circuit, proj, b_lo, b_hi, counted.total_counts)
        indptr, sources, file_values = drawn
        block_weights = no_values
        if counted.const_weight is None:
            weight = _synapse_values(circuit, proj, "weight", indptr, first_gid + b_lo, file_values)
            # A plastic projection stores even a constant initial weight per synapse.
            block_weights = (
                np.full(int(indptr[-1]), weight) if isinstance(weight, float) else weight
            )
        block_steps = no_steps
        if mode != DELAY_CONSTANT:
            delay_ms = _synapse_values(
                circuit, proj, "delay_ms", indptr, first_gid + b_lo, file_values
            )
            block_steps = delay_steps(np.asarray(delay_ms, dtype=np.float64), dt)
        lo_b, hi_b = scatter_by_source(
            indptr, sources, b_lo - counted.lo, cursor, block_weights, block_steps, mode,
            targets, weights, delays,
        )  # fmt: skip
        d_min, d_max = min(d_min, lo_b), max(d_max, hi_b)
        if mode in (DELAY_PACKED, DELAY_NARROW_BYTE) and d_max > PACK_MAX_DELAY:
            break
    return delays, d_min, d_max


def is_narrow(counted: CountedProjection) -> bool:
    """Whether ``counted`` is stored with ``uint16`` targets (the ``DELAY_NARROW*`` modes of
    :mod:`brainsim.kernels.delivery`): it has synapses on at most 65,536 local targets."""
    return counted.n_synapses > 0 and counted.hi - counted.lo <= NARROW_MAX_TARGETS


def is_dense(counted: CountedProjection) -> bool:
    """Whether ``counted`` is stored without targets
    (:data:`~brainsim.kernels.delivery.DELAY_DENSE`): one delay, and every source reaches every
    local target once."""
    rule, proj = counted.proj.connectivity, counted.proj
    return (
        isinstance(rule, AllToAll)
        and (rule.allow_autapses or proj.source != proj.target)
        and counted.const_delay_ms is not None
        and counted.n_synapses > 0
    )


def expected_mode(circuit: Circuit, proj: Projection, n_ranks: int) -> int:
    """The storage mode ``proj``'s synapses will most likely get on ``n_ranks`` ranks, from
    the circuit alone, by the rules :func:`fill_projection` applies to the built synapses: a
    guess where only the drawn values decide (delays that all round to one step, drawn delays
    beyond a byte), for compiling ahead (:func:`brainsim.engine.simulator.expected_variant`).
    """
    n_local = -(-circuit.populations[proj.target].size // n_ranks)
    narrow = n_local <= NARROW_MAX_TARGETS
    rule = proj.connectivity
    if isinstance(proj.delay_ms, float | int) and not isinstance(rule, FromFile):
        if isinstance(rule, AllToAll) and (rule.allow_autapses or proj.source != proj.target):
            return DELAY_DENSE
        return DELAY_NARROW if narrow else DELAY_CONSTANT
    if narrow:
        return DELAY_NARROW_BYTE
    return DELAY_PACKED if n_local <= PACK_MAX_TARGET else DELAY_SEPARATE


def fill_projection(
    circuit: Circuit,
    counted: CountedProjection,
    targets: npt.NDArray[np.uint32] | npt.NDArray[np.uint16],
    weights: npt.NDArray[np.float32],
    byte_delays: npt.NDArray[np.uint8],
) -> LocalProjection:
    """Second pass: write the synapses of ``counted`` into ``targets`` (and ``weights``, empty
    for a constant weight, and ``byte_delays``, empty unless it is :func:`is_narrow` with delays
    that vary), which have its size, in CSR-by-source order. ``targets`` is empty when
    :func:`is_dense`, else ``uint16`` exactly when :func:`is_narrow`."""
    proj = counted.proj
    src = circuit.populations[proj.source]
    dense = is_dense(counted)
    narrow = targets.dtype == np.uint16
    if targets.shape[0] != (0 if dense else counted.n_synapses) or (
        not dense and narrow != is_narrow(counted)
    ):
        raise ValueError(f"{proj.name}: {targets.shape[0]} targets of dtype {targets.dtype}")
    if counted.const_delay_ms is not None or counted.n_synapses == 0:
        mode = DELAY_CONSTANT
    elif narrow:
        mode = DELAY_NARROW_BYTE
    else:
        mode = DELAY_PACKED if counted.hi - counted.lo <= PACK_MAX_TARGET else DELAY_SEPARATE
    delays, d_min, d_max = _scatter_blocks(circuit, counted, mode, targets, weights, byte_delays)
    if mode in (DELAY_PACKED, DELAY_NARROW_BYTE) and d_max > PACK_MAX_DELAY:
        # Start over with uint16 delays beside the targets.
        mode = DELAY_NARROW_SEPARATE if narrow else DELAY_SEPARATE
        delays, d_min, d_max = _scatter_blocks(
            circuit, counted, mode, targets, weights, byte_delays
        )
    counted.kept = None
    if mode == DELAY_CONSTANT:
        d_min = d_max = max(1, round((counted.const_delay_ms or 0.0) / circuit.simulation.dt_ms))
        if dense:
            mode = DELAY_DENSE
        elif narrow:
            mode = DELAY_NARROW
    elif d_max > np.iinfo(np.uint16).max:
        raise EngineError(
            f"projections.{proj.name}.delay_ms: delays above {np.iinfo(np.uint16).max} steps "
            "are not supported"
        )
    elif d_min == d_max:  # drawn delays that all round to the same step
        if mode == DELAY_PACKED:
            np.bitwise_and(targets, np.uint32(PACK_MAX_TARGET), out=targets)
        mode, delays = DELAY_NARROW if narrow else DELAY_CONSTANT, np.zeros(0, dtype=np.uint16)
    return LocalProjection(
        name=proj.name,
        source=proj.source,
        source_gid_offset=src.gid_offset,
        target=proj.target,
        indptr=counted.src_indptr,
        targets=targets,
        weights=weights,
        # Stored as float32 like varying weights, so both sum exactly the same values.
        const_weight=float(np.float32(counted.const_weight or 0.0)),
        delays=delays,
        delay_mode=mode,
        delay_steps=d_min if mode in (DELAY_CONSTANT, DELAY_NARROW, DELAY_DENSE) else 0,
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
    targets16: npt.NDArray[np.uint16]
    weights: npt.NDArray[np.float32]
    delays: npt.NDArray[np.uint16]
    delays8: npt.NDArray[np.uint8]
    n_synapses: int
    """Synapses stored on this rank."""

    @property
    def nbytes(self) -> int:
        """Bytes of synapse storage on this rank (per-source offsets included)."""
        return int(
            self.indptrs.nbytes
            + self.targets.nbytes
            + self.targets16.nbytes
            + self.weights.nbytes
            + self.delays.nbytes
            + self.delays8.nbytes
        )

    @classmethod
    def empty(cls) -> DeliveryPlan:
        """A plan without projections (what the step loop's warm-up call passes)."""
        no_int = np.zeros(0, dtype=np.int64)
        return cls(
            pop_gid_bounds=np.zeros(1, dtype=np.int64),
            by_source_ptr=np.zeros(1, dtype=np.int64),
            by_source=no_int,
            meta=np.zeros((0, len(META_COLUMNS)), dtype=np.int64),
            const_weight=np.zeros(0),
            indptrs=no_int,
            targets=np.zeros(0, dtype=np.uint32),
            targets16=np.zeros(0, dtype=np.uint16),
            weights=np.zeros(0, dtype=np.float32),
            delays=np.zeros(0, dtype=np.uint16),
            delays8=np.zeros(0, dtype=np.uint8),
            n_synapses=0,
        )

    @classmethod
    def build(
        cls,
        circuit: Circuit,
        counted: list[CountedProjection],
        populations: list[tuple[str, int, int]],
        columns: dict[str, int],
        split: dict[str, bool],
    ) -> tuple[DeliveryPlan, list[tuple[int, int]]]:
        """Plan for the counted projections (document order): their synapses are written
        straight into the plan's end-to-end arrays (:func:`fill_projection`), so no
        projection's synapses exist twice. ``populations`` are ``(name, gid_offset, size)`` in
        gid order, ``columns[target]`` its first ring-buffer column, ``split[target]`` whether
        it separates inhibitory input. Also returns each projection's ``(min, max)`` delay in
        steps."""
        names = [name for name, _, _ in populations]
        bounds = np.array([off for _, off, _ in populations] + [sum(n for *_, n in populations)])
        source_index = np.array([names.index(c.proj.source) for c in counted], dtype=np.int64)
        by_source = np.argsort(source_index, kind="stable").astype(np.int64)
        by_source_ptr = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(np.bincount(source_index, minlength=len(names)), out=by_source_ptr[1:])
        n_syn = [c.n_synapses for c in counted]
        varying = [c.const_weight is None for c in counted]
        # Each projection's targets go to one of three places: nowhere (dense), the uint16
        # targets, or the uint32 ones.
        dense = [is_dense(c) for c in counted]
        narrow = [is_narrow(c) and not d for c, d in zip(counted, dense, strict=True)]
        wide = [not n and not d for n, d in zip(narrow, dense, strict=True)]
        synapse_offsets = np.maximum(_offsets(n_syn, wide), _offsets(n_syn, narrow)).clip(0)
        weight_offsets = _offsets(n_syn, varying)
        targets = np.empty(sum(n for n, w in zip(n_syn, wide, strict=True) if w), np.uint32)
        targets16 = np.empty(sum(n for n, w in zip(n_syn, narrow, strict=True) if w), np.uint16)
        weights = np.empty(sum(n for n, v in zip(n_syn, varying, strict=True) if v), np.float32)
        # Narrow projections' varying delays, one byte each, written in place (a projection
        # whose delays exceed 255 steps stores them as uint16 instead; see below).
        byte = [n and c.const_delay_ms is None for n, c in zip(narrow, counted, strict=True)]
        byte_offsets = _offsets(n_syn, byte)
        delays8 = np.empty(sum(n for n, b in zip(n_syn, byte, strict=True) if b), np.uint8)
        projections = []
        for q, c in enumerate(counted):
            at, w_at, b_at = int(synapse_offsets[q]), int(weight_offsets[q]), int(byte_offsets[q])
            projections.append(
                fill_projection(
                    circuit,
                    c,
                    (targets16 if narrow[q] else targets)[at : at + (0 if dense[q] else n_syn[q])],
                    weights[w_at : w_at + n_syn[q]] if w_at >= 0 else weights[:0],
                    delays8[b_at : b_at + n_syn[q]] if b_at >= 0 else delays8[:0],
                )
            )
        indptr_offsets = _offsets([p.indptr.shape[0] for p in projections], [True] * len(n_syn))
        in_bytes = [p.delay_mode == DELAY_NARROW_BYTE for p in projections]
        if in_bytes != byte:  # some left their part unused: drop those parts
            delays8 = _end_to_end(
                [p.delays for p, b in zip(projections, in_bytes, strict=True) if b], np.uint8
            )
            byte_offsets = _offsets(n_syn, in_bytes)
        # uint16 delays (rare: delays above 255 steps, or more than 2^24 local targets) are
        # laid end to end now.
        apart = [p.delays.dtype == np.uint16 and p.delays.shape[0] > 0 for p in projections]
        delay_offsets = np.where(in_bytes, byte_offsets, _offsets(n_syn, apart))
        meta = np.array(
            [
                [p.source_gid_offset, p.delay_mode, p.delay_steps,
                 columns[p.target], int(split[p.target]), indptr_offsets[q], synapse_offsets[q],
                 weight_offsets[q], delay_offsets[q]]
                for q, p in enumerate(projections)
            ],
            dtype=np.int64,
        ).reshape(len(projections), len(META_COLUMNS))  # fmt: skip
        plan = cls(
            pop_gid_bounds=bounds.astype(np.int64),
            by_source_ptr=by_source_ptr,
            by_source=by_source,
            meta=meta,
            const_weight=np.array([p.const_weight for p in projections], dtype=np.float64),
            indptrs=_end_to_end([p.indptr for p in projections], np.int64),
            targets=targets,
            targets16=targets16,
            weights=weights,
            delays=_end_to_end(
                [p.delays for p, a in zip(projections, apart, strict=True) if a], np.uint16
            ),
            delays8=delays8,
            n_synapses=sum(n_syn),
        )
        return plan, [(p.min_delay_steps, p.max_delay_steps) for p in projections]


@dataclass(frozen=True, slots=True)
class ProjectionSynapses:
    """Every synapse of one projection, as the engine builds and stores them: population-local
    ``sources`` and ``targets``, ``weights`` (the float32 values the engine stores, widened)
    and ``delay_steps``, ordered by target, then as drawn (or as listed in the file)."""

    sources: Int64Array
    targets: Int64Array
    weights: npt.NDArray[np.float64]
    delay_steps: Int64Array


def projection_synapses(circuit: Circuit, proj: Projection) -> ProjectionSynapses:
    """The whole edge list of ``proj`` on one process, drawn exactly as the ranks draw it
    (keyed by target gid, so it is what any decomposition simulates): for compilers that
    need explicit connections (:mod:`brainsim.backends`), never for the engine itself."""
    size = circuit.populations[proj.target].size
    counted = count_projection(circuit, proj, 0, size)
    first_gid = circuit.populations[proj.target].gid_offset
    parts: list[tuple[Int64Array, Int64Array, npt.NDArray[np.float64], Int64Array]] = []
    for b_lo, b_hi in counted.blocks:
        indptr, sources, file_values = counted.kept or _incoming(
            circuit, proj, b_lo, b_hi, counted.total_counts
        )
        n = int(indptr[-1])
        targets = np.repeat(np.arange(b_lo, b_hi, dtype=np.int64), np.diff(indptr))
        weight = _synapse_values(circuit, proj, "weight", indptr, first_gid + b_lo, file_values)
        delay_ms = _synapse_values(circuit, proj, "delay_ms", indptr, first_gid + b_lo, file_values)
        weights = np.broadcast_to(np.asarray(weight, dtype=np.float32), (n,)).astype(np.float64)
        delays = np.broadcast_to(np.asarray(delay_ms, dtype=np.float64), (n,))
        steps = delay_steps(np.ascontiguousarray(delays), circuit.simulation.dt_ms)
        parts.append((sources, targets, weights, steps))
    return ProjectionSynapses(
        sources=np.concatenate([p[0] for p in parts]).astype(np.int64),
        targets=np.concatenate([p[1] for p in parts]),
        weights=np.concatenate([p[2] for p in parts]),
        delay_steps=np.concatenate([p[3] for p in parts]),
    )
