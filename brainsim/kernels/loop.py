"""The step loop in one numba call: many exchange intervals without returning to Python.

Each interval ``[t, t + k)`` (``k``: the minimum delay in steps; the last interval may be
shorter) does, in this order:

1. the interval's Poisson drive, rate-encoder drive and spike-train input into the ring buffers
   (:func:`~brainsim.kernels.stimuli.poisson_drive`, :func:`~brainsim.kernels.stimuli.rate_drive`;
   the spike-train schedule from ``cursor``);
2. for every step: external currents (:func:`~brainsim.kernels.advance.step_currents`), then
   every population (:func:`~brainsim.kernels.advance.advance_step`), which appends the spike
   keys ``(step - t) * n_gids + gid``;
3. the exchange: with one rank the keys are already sorted; with several, ``MPI_Allgather`` of
   the counts and ``MPI_Allgatherv`` of the keys, called through the function pointers of
   :class:`~brainsim.exchange.NativeExchange`, then a sort;
4. negative keys are control messages (checkpoint, stop, flush; they sort first), the rest
   are delivered through the static projections
   (:func:`~brainsim.kernels.delivery.deliver_all`), then the plastic ones
   (:func:`~brainsim.kernels.plasticity.deliver_plastic`, which updates their weights), this
   rank's spikes join the plastic projections' post-spike histories
   (:func:`~brainsim.kernels.plasticity.record_post_spikes`), and all are appended to
   ``pending`` as absolute keys ``step * n_gids + gid`` for the recorder.

An interval never runs past ``t_stop``, the same step on every rank (a weight snapshot is due
there): the call returns once it is reached. Intervals shorter than ``k`` change no result, since
every delivery still lands after the interval and in (step, gid) order.

The control keys of ``control`` ride on the first interval's exchange. The call returns after
the interval in which any rank sent a control key, once ``t >= t_end`` or after
``max_intervals`` intervals; ranks may return after different numbers of intervals because
every rank performs the same sequence of collectives, whichever call they fall in.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import numba
import numpy as np
import numpy.typing as npt

from brainsim.kernels.advance import (
    KIND_IZHIKEVICH,
    KIND_LIF_ALPHA,
    KIND_LIF_DELTA,
    KIND_LIF_EXP,
    KIND_PARROT,
    advance_step,
    step_currents,
)
from brainsim.kernels.delivery import MODE_SWITCHES, deliver_all, modes_of
from brainsim.kernels.plasticity import PlasticArrays, deliver_plastic, record_post_spikes
from brainsim.kernels.rng import ZERO
from brainsim.kernels.stimuli import poisson_drive, rate_drive

__all__ = [
    "CONTROL_CHECKPOINT",
    "CONTROL_FLUSH",
    "CONTROL_STOP",
    "EVERYTHING",
    "MPI_FAILED",
    "PART_COMPILE_S",
    "SAW_CHECKPOINT",
    "SAW_FLUSH",
    "SAW_STOP",
    "Currents",
    "LoopPart",
    "Neurons",
    "Poisson",
    "Schedule",
    "Synapses",
    "Variant",
    "gather",
    "kind_switches",
    "loaded",
    "loop_parts",
    "mode_switches",
    "run_intervals",
    "run_variant",
    "sort_keys",
    "variant_of",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

CONTROL_CHECKPOINT = -3
CONTROL_STOP = -2
CONTROL_FLUSH = -1
SAW_STOP = 1
"""Bit of the returned control word: some rank asked to stop."""
SAW_FLUSH = 2
"""Bit of the returned control word: rank 0 asked for a flush."""
MPI_FAILED = 4
"""Bit of the returned control word: an MPI call returned an error code."""
SAW_CHECKPOINT = 8
"""Bit of the returned control word: some rank asked for a checkpoint and a stop."""

# The loop's state travels in named tuples, one per owner, whose fields carry the owner's own
# attribute names: :func:`gather` fills one from its owner by name, so a field added to an owner
# and to its tuple cannot end up in the wrong position, and the warm-up call
# (:func:`brainsim.engine.simulator.load_step_loop`) gathers from empty owners the same way.


class Neurons(NamedTuple):
    """The neuron table (:class:`brainsim.engine.populations.NeuronTable`)."""

    pops: I64
    state: F64
    params: F64
    refr: I64
    t_ref_steps: I64
    i_base_pA: F64
    i_ext_pA: F64
    spikes_out: I64
    zeros: F64
    sample_var: I64
    sample_idx: I64


class Currents(NamedTuple):
    """DC and noise inputs (:class:`brainsim.engine.populations.CurrentTable`)."""

    dc_meta: I64
    dc_idx: I64
    dc_amp: F64
    noise_meta: I64
    noise_idx: I64
    noise_gid: I64
    noise_val: F64
    noise_cache: F64
    noise_block: I64


class Poisson(NamedTuple):
    """Poisson drive (:class:`brainsim.engine.stimuli.PoissonTable`)."""

    segments: I64
    gids: I64
    columns: I64
    lam: F64
    table_of: I64
    cdf: F64
    guide: I64
    weight: F64
    words: npt.NDArray[np.uint32]
    block: I64


class Schedule(NamedTuple):
    """Spike-train input and rate encoders (:class:`brainsim.engine.stimuli.LocalStimuli`)."""

    schedule_steps: I64
    schedule_cols: I64
    schedule_w: F64
    rate_meta: I64
    rate_gids: I64
    rate_cols: I64
    rate_weight: F64
    rate_lam: F64
    rate_shows: I64


class Synapses(NamedTuple):
    """Static synapses (:class:`brainsim.engine.connectivity.DeliveryPlan`)."""

    pop_gid_bounds: I64
    by_source_ptr: I64
    by_source: I64
    meta: I64
    const_weight: F64
    indptrs: I64
    targets: npt.NDArray[np.uint32]
    targets16: npt.NDArray[np.uint16]
    weights: npt.NDArray[np.float32]
    delays: npt.NDArray[np.uint16]
    delays8: npt.NDArray[np.uint8]


Gathered = TypeVar("Gathered", Neurons, Currents, Poisson, Schedule, Synapses)


def gather(kind: type[Gathered], owner: object) -> Gathered:
    """The ``kind`` tuple of ``owner``'s attributes of the same names."""
    return kind._make(getattr(owner, name) for name in kind._fields)


class Variant(NamedTuple):
    """The optional parts a compiled step loop contains, one switch each: ``True`` compiles it
    in, ``None`` leaves it out. numba prunes a branch on a ``None`` argument before typing the
    function, so a left-out part's kernels are never typed, compiled or optimised into the
    loop: a circuit of delta LIF neurons with a Poisson drive compiles none of the other
    models, rules and stimuli (see :func:`variant_of`). The switches travel as the last
    arguments of :func:`run_intervals`; a part left out must have no work in the tables.
    """

    poisson: bool | None = True
    rate: bool | None = True
    noise: bool | None = True
    plastic: bool | None = True
    lif_delta: bool | None = True
    lif_exp: bool | None = True
    lif_alpha: bool | None = True
    izhikevich: bool | None = True
    parrot: bool | None = True
    exchange: bool | None = True
    """The MPI exchange (and its sort), left out on one rank."""
    dense: bool | None = True
    narrow: bool | None = True
    constant: bool | None = True
    narrow_byte: bool | None = True
    narrow_separate: bool | None = True
    separate: bool | None = True
    packed: bool | None = True
    """The synapses' storage modes, static and plastic (:func:`~brainsim.kernels.delivery.
    modes_of`): a mode either uses is compiled into both deliveries."""


EVERYTHING = Variant()
"""The step loop with every part: what ``brainsim compile-kernels`` and pools compile, and what
serves any circuit."""

_MODE_FIELDS = ("dense", "narrow", "constant", "narrow_byte", "narrow_separate", "separate",
                "packed")  # fmt: skip
"""The :class:`Variant` fields of the storage modes, in the order of
:data:`~brainsim.kernels.delivery.MODE_SWITCHES`."""

_KIND_SWITCH = {
    KIND_LIF_DELTA: "lif_delta",
    KIND_LIF_EXP: "lif_exp",
    KIND_LIF_ALPHA: "lif_alpha",
    KIND_IZHIKEVICH: "izhikevich",
    KIND_PARROT: "parrot",
}


def kind_switches(kinds: set[int]) -> dict[str, bool | None]:
    """The model switches of a :class:`Variant` for the neuron kernels ``kinds``."""
    return {name: (True if code in kinds else None) for code, name in _KIND_SWITCH.items()}


def mode_switches(modes: set[int]) -> dict[str, bool | None]:
    """The storage-mode switches of a :class:`Variant` for the storage modes ``modes``."""
    return {
        field: (True if mode in modes else None)
        for field, mode in zip(_MODE_FIELDS, MODE_SWITCHES, strict=True)
    }


def variant_of(
    nr: Neurons,
    cur: Currents,
    po: Poisson,
    sched: Schedule,
    syn: Synapses,
    plastic: PlasticArrays,
    n_ranks: int,
) -> Variant:
    """The smallest variant that runs these tables on ``n_ranks`` ranks: the models in
    ``nr.pops``, the inputs and plastic projections that have entries, the storage modes of
    the synapses (static or plastic), the exchange if ``n_ranks > 1``."""
    kinds = {int(kind) for kind in nr.pops[:, 0]} if nr.pops.shape[0] else set()
    switches = kind_switches(kinds)
    used = modes_of(np.concatenate((syn.meta, plastic.meta)))
    modes = dict(zip(_MODE_FIELDS, used, strict=True))
    return Variant(
        poisson=True if po.segments.shape[0] else None,
        rate=True if sched.rate_meta.shape[0] else None,
        noise=True if cur.noise_meta.shape[0] else None,
        plastic=True if plastic.post.shape[0] else None,
        exchange=True if n_ranks > 1 else None,
        **switches,
        **modes,
    )


@numba.njit(cache=True, nogil=True)
def sort_keys(keys: I64) -> None:
    """Sort the exchanged spike keys in place: a kernel of its own, since numba's sort is a
    large compilation (about 1.4 s) that a compile helper can do beside the loop's."""
    keys.sort()


def _intervals(
    t0: int,
    t_end: int,
    t_stop: int,
    n_steps: int,
    k: int,
    max_intervals: int,
    n_gids: int,
    seed: int,
    dt_ms: float,
    control: I64,
    nr: Neurons,
    cur: Currents,
    po: Poisson,
    sched: Schedule,
    cursor: int,
    syn: Synapses,
    plastic: PlasticArrays,
    samples: npt.NDArray[np.float32],
    rows: I64,
    buf_exc: F64,
    buf_inh: F64,
    keys: I64,
    pending: I64,
    n_pending: int,
    n_ranks: int,
    allgather: Any,
    allgatherv: Any,
    comm: int,
    int64_type: int,
    counts: I64,
    counts32: npt.NDArray[np.int32],
    displs32: npt.NDArray[np.int32],
    recv: I64,
    poisson_on: bool | None,
    rate_on: bool | None,
    noise_on: bool | None,
    plastic_on: bool | None,
    lif_delta: bool | None,
    lif_exp: bool | None,
    lif_alpha: bool | None,
    izhikevich: bool | None,
    parrot: bool | None,
    exchange: bool | None,
    dense: bool | None,
    narrow: bool | None,
    constant: bool | None,
    narrow_byte: bool | None,
    narrow_separate: bool | None,
    separate: bool | None,
    packed: bool | None,
) -> tuple[int, int, I64, I64, int, int, PlasticArrays]:
    """Run intervals from step ``t0`` (see the module docstring), with the parts of a
    :class:`Variant` (its switches are the last arguments).

    Returns ``(t, n_pending, pending, recv, cursor, control, plastic)``: the first step not
    yet simulated, the pending key count and the (possibly grown) pending and receive buffers,
    the spike-train cursor, the bits :data:`SAW_STOP` / :data:`SAW_FLUSH` / :data:`MPI_FAILED`
    and the plastic arrays (with longer post-spike histories if they had to grow).
    """
    n_slots = buf_exc.shape[0]
    t = t0
    done = 0
    seen = 0
    while t < t_end and t < n_steps and done < max_intervals:
        t1 = min(t + k, n_steps, t_stop)
        if poisson_on is not None:
            poisson_drive(seed, po.segments, po.gids, po.columns, po.lam, po.table_of, po.cdf,
                          po.guide, po.weight, t, t1 - t, buf_exc, buf_inh, po.words,
                          po.block)  # fmt: skip
        if rate_on is not None:
            rate_drive(seed, sched.rate_meta, sched.rate_gids, sched.rate_cols,
                       sched.rate_weight, sched.rate_lam, sched.rate_shows, t, t1 - t, buf_exc,
                       buf_inh)  # fmt: skip
        steps, cols, ws = sched.schedule_steps, sched.schedule_cols, sched.schedule_w
        while cursor < steps.shape[0] and steps[cursor] < t1:
            row = steps[cursor] % n_slots
            if ws[cursor] >= 0.0:
                buf_exc[row, cols[cursor]] += ws[cursor]
            else:
                buf_inh[row, cols[cursor]] += ws[cursor]
            cursor += 1
        n_keys = ZERO  # not a literal 0: numba would compile advance_step for it too
        if done == 0:
            for c in range(control.shape[0]):
                keys[n_keys] = control[c]
                n_keys += 1
        for step in range(t, t1):
            step_currents(step, seed, nr.i_base_pA, nr.i_ext_pA, cur.dc_meta, cur.dc_idx,
                          cur.dc_amp, cur.noise_meta, cur.noise_idx, cur.noise_gid,
                          cur.noise_val, cur.noise_cache, cur.noise_block,
                          noise_on)  # fmt: skip
            n_keys = advance_step(step, t, n_gids, dt_ms, nr.pops, nr.state, nr.params, nr.refr,
                                  nr.t_ref_steps, nr.i_ext_pA, nr.spikes_out, nr.zeros, buf_exc,
                                  buf_inh, nr.sample_var, nr.sample_idx, samples, rows, keys,
                                  n_keys, lif_delta, lif_exp, lif_alpha, izhikevich,
                                  parrot)  # fmt: skip
        if exchange is None or n_ranks == 1:
            got = keys[:n_keys]
        else:
            counts[n_ranks] = n_keys  # the send slot, after the n_ranks receive slots
            rc = allgather(counts[n_ranks:].ctypes.data, 1, int64_type, counts.ctypes.data, 1,
                           int64_type, comm)  # fmt: skip
            total = 0
            for r in range(n_ranks):
                counts32[r] = counts[r]
                displs32[r] = total
                total += counts[r]
            if total > recv.shape[0]:
                recv = np.empty(max(total, 2 * recv.shape[0]), dtype=np.int64)
            rc |= allgatherv(keys.ctypes.data, n_keys, int64_type, recv.ctypes.data,
                             counts32.ctypes.data, displs32.ctypes.data, int64_type,
                             comm)  # fmt: skip
            if rc != 0:
                return t, n_pending, pending, recv, cursor, seen | MPI_FAILED, plastic
            got = recv[:total]
            sort_keys(got)
        n_control = 0
        while n_control < got.shape[0] and got[n_control] < 0:
            if got[n_control] == CONTROL_STOP:
                seen |= SAW_STOP
            elif got[n_control] == CONTROL_CHECKPOINT:
                seen |= SAW_CHECKPOINT
            else:
                seen |= SAW_FLUSH
            n_control += 1
        spikes = got[n_control:]
        deliver_all(spikes, t, n_gids, syn.pop_gid_bounds, syn.by_source_ptr, syn.by_source,
                    syn.meta, syn.const_weight, syn.indptrs, syn.targets, syn.targets16,
                    syn.weights, syn.delays, syn.delays8, buf_exc, buf_inh, dense, narrow,
                    constant, narrow_byte, narrow_separate, separate, packed)  # fmt: skip
        if plastic_on is not None and plastic.post.shape[0] > 0:
            deliver_plastic(spikes, t, n_gids, dt_ms, plastic, buf_exc, buf_inh, dense, narrow,
                            constant, narrow_byte, narrow_separate, separate, packed)  # fmt: skip
            plastic = record_post_spikes(spikes, t, t1, t, n_gids, dt_ms, plastic)
        m = spikes.shape[0]
        if n_pending + m > pending.shape[0]:
            grown = np.empty(max(n_pending + m, 2 * pending.shape[0]), dtype=np.int64)
            for j in range(n_pending):  # no slice assignment (see connect._grow)
                grown[j] = pending[j]
            pending = grown
        base = t * n_gids
        for j in range(m):
            pending[n_pending + j] = spikes[j] + base
        n_pending += m
        t = t1
        done += 1
        if n_control > 0 or t >= t_stop:
            break
    return t, n_pending, pending, recv, cursor, seen, plastic


# Named as before in numba's cache files and in the progress display's "now run_intervals".
_intervals.__name__ = _intervals.__qualname__ = "run_intervals"
run_intervals = numba.njit(cache=True, nogil=True)(_intervals)
"""The step loop compiled with :data:`EVERYTHING` (the one a pool, ``brainsim compile-kernels``
and a circuit that uses every part run)."""

run_variant = numba.njit(cache=True, nogil=True)(_intervals)
"""The same loop for the smaller variants of :func:`variant_of` (a dispatcher of its own, so
that :data:`run_intervals` holds the one general signature; both share numba's cache index)."""


LoopPart = tuple[str, Any, tuple[Any, ...]]
"""A kernel the step loop calls: its name, its dispatcher, arguments of the types it gets."""

PART_COMPILE_S = {
    "deliver_plastic": 3.0, "record_post_spikes": 1.6, "sort_keys": 1.4, "deliver_all": 1.3,
    "advance_step": 1.0, "poisson_drive": 1.0, "rate_drive": 0.5, "step_currents": 0.3,
}  # fmt: skip
"""Rough seconds each part takes to compile (one storage mode, one model; numba's compile
events on the 2-core development machine), for ordering compile jobs largest first."""


def loop_parts(args: tuple[Any, ...], variant: Variant) -> list[LoopPart]:
    """The kernels :func:`run_variant` with ``variant`` calls when given ``args`` (its
    arguments before the switches), each with arguments of the types the loop passes it, in
    the order the loop first calls them: compiling each for those types (in any process
    sharing numba's cache) leaves the loop's own compilation only its own body
    (:mod:`brainsim.kernels.compiler`). The call sites in :func:`_intervals` and these must
    agree; a test compiles these, then the loop, and checks that no part is compiled again.
    """
    names = list(_intervals.__code__.co_varnames[: _intervals.__code__.co_argcount])
    a = dict(zip(names, (*args, *variant), strict=True))
    v, nr, cur, po, sched, syn = variant, a["nr"], a["cur"], a["po"], a["sched"], a["syn"]
    i, f = 0, 0.0  # the loop's step counters and time step: int64 and float64
    spikes, buf_exc, buf_inh = a["keys"][:0], a["buf_exc"], a["buf_inh"]
    parts: list[LoopPart] = []
    if v.poisson is not None:
        parts.append(("poisson_drive", poisson_drive, (
            i, po.segments, po.gids, po.columns, po.lam, po.table_of, po.cdf, po.guide,
            po.weight, i, i, buf_exc, buf_inh, po.words, po.block,
        )))  # fmt: skip
    if v.rate is not None:
        parts.append(("rate_drive", rate_drive, (
            i, sched.rate_meta, sched.rate_gids, sched.rate_cols, sched.rate_weight,
            sched.rate_lam, sched.rate_shows, i, i, buf_exc, buf_inh,
        )))  # fmt: skip
    parts.append(("step_currents", step_currents, (
        i, i, nr.i_base_pA, nr.i_ext_pA, cur.dc_meta, cur.dc_idx, cur.dc_amp, cur.noise_meta,
        cur.noise_idx, cur.noise_gid, cur.noise_val, cur.noise_cache, cur.noise_block, v.noise,
    )))  # fmt: skip
    parts.append(("advance_step", advance_step, (
        i, i, i, f, nr.pops, nr.state, nr.params, nr.refr, nr.t_ref_steps, nr.i_ext_pA,
        nr.spikes_out, nr.zeros, buf_exc, buf_inh, nr.sample_var, nr.sample_idx, a["samples"],
        a["rows"], a["keys"], i, v.lif_delta, v.lif_exp, v.lif_alpha, v.izhikevich, v.parrot,
    )))  # fmt: skip
    if v.exchange is not None:
        parts.append(("sort_keys", sort_keys, (spikes,)))
    modes = tuple(getattr(v, field) for field in _MODE_FIELDS)
    parts.append(("deliver_all", deliver_all, (
        spikes, i, i, syn.pop_gid_bounds, syn.by_source_ptr, syn.by_source, syn.meta,
        syn.const_weight, syn.indptrs, syn.targets, syn.targets16, syn.weights, syn.delays,
        syn.delays8, buf_exc, buf_inh, *modes,
    )))  # fmt: skip
    if v.plastic is not None:
        plastic = a["plastic"]
        parts.append(("deliver_plastic", deliver_plastic,
                      (spikes, i, i, f, plastic, buf_exc, buf_inh, *modes)))  # fmt: skip
        parts.append(("record_post_spikes", record_post_spikes,
                      (spikes, i, i, i, i, f, plastic)))  # fmt: skip
    return parts


def loaded(dispatcher: Any, args: tuple[Any, ...], from_cache: bool = True) -> bool:
    """Whether ``dispatcher`` has a compiled version for ``args``' types in this process,
    after loading it from numba's on-disk cache if it is there (and ``from_cache``); never
    compiles.

    This is what numba's ``Dispatcher.compile`` does before it compiles (numba has no public
    call for it); with a numba whose internals differ, it says False and the caller compiles.
    """
    try:
        from numba.core.compiler_lock import global_compiler_lock

        sig = tuple(dispatcher.typeof_pyval(a) for a in args)
        with global_compiler_lock:
            if dispatcher.overloads.get(sig) is not None:
                return True
            if not from_cache:
                return False
            cres = dispatcher._cache.load_overload(sig, dispatcher.targetctx)
            if cres is None:
                return False
            dispatcher._cache_hits[sig] += 1
            dispatcher.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
            dispatcher.add_overload(cres)
            return True
    except AttributeError:
        return False
