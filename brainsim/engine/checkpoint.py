"""Checkpoints: a run's whole state at an interval boundary, keyed by gid, so that it can
continue on any number of ranks and produce exactly what an uninterrupted run produces.

A checkpoint is the ``checkpoint/`` group of the recording (docs/recording.md), taken at step
``t`` right after a flush (every spike and sample before ``t`` is in the store):

- ``neurons/<population>/<variable>`` (float64, one entry per neuron of the population, by node
  id) for each state variable of its model, and ``neurons/<population>/refractory`` (int64:
  steps of refractoriness left);
- ``rings/excitatory`` and ``rings/inhibitory`` (float64 ``[n_slots, n_gids]``): row ``j`` holds
  the input that arrives at each neuron (by gid) in step ``t + j``: the spikes in flight;
- ``plastic/<projection>/weights`` (float32, the recording's order: by target, source,
  creation), ``pre_last`` (int64, the step of each source's last spike), ``pre_trace``
  (float64, its ``K+`` just after it), and the targets' post-spike histories:
  ``history_count`` (int64, spikes ever added) and ``history_steps``/``history_k`` (float64
  ``[n_targets, L]``, the last ``L`` spikes' steps and ``K-`` just after each, oldest first,
  NaN-padded where a target has fewer);
- attributes: ``format``, ``step``, ``time_ms``, ``circuit_sha256``, ``n_ranks`` (of the run
  that wrote it) and ``recorder`` (what the store held: :class:`~brainsim.recording.base.
  RecorderPosition`), written last: a group without them is incomplete.

Nothing else needs saving: every random number is a pure function of (seed, stream, gid, step)
(the Poisson and noise caches refill themselves), the spike-train input cursor follows from
``t``, and the facilitation floor of the plastic projections is a cache recomputed on demand.

The group is stored atomically by :mod:`brainsim.recording.checkpoint`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from brainsim.circuit.spec import Circuit
from brainsim.engine.plasticity import PlasticPlan, WeightSnapshots
from brainsim.engine.simulator import LocalNetwork
from brainsim.errors import EngineError
from brainsim.exchange import Communicator
from brainsim.kernels.plasticity import HISTORY_START, NEVER, PlasticArrays
from brainsim.recording.base import RecorderPosition
from brainsim.recording.checkpoint import StoredCheckpoint, latest_checkpoint, store_checkpoint

__all__ = ["StoredCheckpoint", "latest_checkpoint", "restore", "write_checkpoint"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


# -- taking ------------------------------------------------------------------------------------


def _local_state(network: LocalNetwork, step: int) -> dict[str, Any]:
    """This rank's part of the checkpoint, every array keyed by gid or population-local id."""
    n_slots = network.buf_exc.shape[0]
    order = (step + np.arange(n_slots)) % n_slots
    neurons = {
        pop.name: (
            pop.lo,
            {name: np.array(values) for name, values in pop.state.items()},
            np.array(pop.refr),
        )
        for pop in network.populations.values()
    }
    pops = list(network.populations.values())
    columns = np.concatenate(
        [np.zeros(0, np.int64), *(np.arange(p.col, p.col + p.n) for p in pops)]
    ).astype(np.int64)
    gids = np.concatenate(
        [np.zeros(0, np.int64), *(np.arange(p.first_gid, p.first_gid + p.n) for p in pops)]
    ).astype(np.int64)
    rings = (gids, network.buf_exc[order][:, columns], network.buf_inh[order][:, columns])
    plastic = []
    plan = network.plastic
    for q, projection in enumerate(plan.projections):
        recording_order = plan.order(q)
        weights = recording_order.weights_of(0, recording_order.n_synapses)
        plastic.append((projection.name, weights, *_histories(plan.arrays, q)))
    return {"neurons": neurons, "rings": rings, "plastic": plastic, "target_lo": plan.target_lo}


def _histories(a: PlasticArrays, q: int) -> tuple[I64, F64, F64]:
    """Projection ``q``'s local targets' post-spike histories: counts, and the entries each
    ring holds (oldest first, NaN-padded)."""
    first, n = int(a.post[q, 2]), int(a.post[q, 1])
    size = a.hist.shape[1] // 2
    counts = a.hist_count[first : first + n].copy()
    live = np.minimum(counts, size)
    lanes = np.arange(int(live.max(initial=0)))
    valid = lanes[np.newaxis, :] < live[:, np.newaxis]
    at = 2 * ((counts - live)[:, np.newaxis] + lanes[np.newaxis, :]) % (2 * size)
    rows = np.arange(first, first + n)[:, np.newaxis]
    steps = np.where(valid, a.hist[rows, at], np.nan)
    ks = np.where(valid, a.hist[rows, at + 1], np.nan)
    return counts, steps, ks


def write_checkpoint(
    store: str | os.PathLike[str],
    circuit: Circuit,
    circuit_sha256: str,
    network: LocalNetwork,
    comm: Communicator,
    step: int,
    recorder: RecorderPosition,
) -> None:
    """Write the checkpoint of step ``step`` into ``store``; collective (rank 0 writes)."""
    gathered = comm.gather(_local_state(network, step), root=0)
    error: str | None = None
    if comm.rank == 0:
        assert gathered is not None
        try:
            _write(store, circuit, circuit_sha256, network, gathered, step, recorder,
                   comm.size)  # fmt: skip
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
    error = comm.bcast(error, root=0)
    if error is not None:
        raise EngineError(f"could not write the checkpoint of step {step}: {error}")


def _write(
    root: str | os.PathLike[str],
    circuit: Circuit,
    circuit_sha256: str,
    network: LocalNetwork,
    parts: list[dict[str, Any]],
    step: int,
    recorder: RecorderPosition,
    n_ranks: int,
) -> None:
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, population in circuit.populations.items():
        pieces = [part["neurons"][name] for part in parts]
        for variable in pieces[0][1]:
            values = np.zeros(population.size)
            for lo, state, _ in pieces:
                values[lo : lo + state[variable].size] = state[variable]
            arrays[f"neurons/{name}/{variable}"] = values
        refractory = np.zeros(population.size, dtype=np.int64)
        for lo, _, refr in pieces:
            refractory[lo : lo + refr.size] = refr
        arrays[f"neurons/{name}/refractory"] = refractory
    n_gids = network.decomposition.n_gids
    n_slots = network.buf_exc.shape[0]
    for key, index in (("excitatory", 1), ("inhibitory", 2)):
        ring = np.zeros((n_slots, n_gids))
        for part in parts:
            ring[:, part["rings"][0]] = part["rings"][index]
        arrays[f"rings/{key}"] = ring
    plastic = network.plastic.arrays
    for q, projection in enumerate(network.plastic.projections):
        pieces = [part["plastic"][q] for part in parts]
        target_size = circuit.populations[projection.target].size
        counts = np.zeros(target_size, dtype=np.int64)
        width = max((p[3].shape[1] for p in pieces), default=0)
        steps = np.full((target_size, width), np.nan)
        ks = np.full((target_size, width), np.nan)
        for part, (_, _, count, s, k) in zip(parts, pieces, strict=True):
            lo = part["target_lo"][q]
            counts[lo : lo + count.size] = count
            steps[lo : lo + count.size, : s.shape[1]] = s
            ks[lo : lo + count.size, : k.shape[1]] = k
        pre = int(plastic.post[q, 4])
        n_sources = circuit.populations[projection.source].size
        base = f"plastic/{projection.name}"
        arrays[f"{base}/weights"] = np.concatenate([p[1] for p in pieces])
        arrays[f"{base}/pre_last"] = plastic.pre_last[pre : pre + n_sources]
        arrays[f"{base}/pre_trace"] = plastic.pre_trace[pre : pre + n_sources]
        arrays[f"{base}/history_count"] = counts
        arrays[f"{base}/history_steps"] = steps
        arrays[f"{base}/history_k"] = ks
    store_checkpoint(
        root,
        arrays,
        step=step,
        time_ms=step * circuit.simulation.dt_ms,
        circuit_sha256=circuit_sha256,
        n_ranks=n_ranks,
        recorder=recorder,
    )


# -- restoring ---------------------------------------------------------------------------------


def restore(
    checkpoint: StoredCheckpoint,
    network: LocalNetwork,
    comm: Communicator,
    snapshots: WeightSnapshots | None = None,
) -> None:
    """Load ``checkpoint`` into this rank's freshly built ``network`` (any decomposition);
    collective (the ranks agree on where each one's plastic synapses start)."""
    step = checkpoint.step
    n_slots = network.buf_exc.shape[0]
    stored_slots = checkpoint.shape("rings/excitatory")[0]
    if stored_slots != n_slots:
        raise EngineError(
            f"the checkpoint's ring buffers have {stored_slots} slots, this network "
            f"{n_slots}: it was written for another circuit"
        )
    rows = (step + np.arange(n_slots)) % n_slots
    for pop in network.populations.values():
        base = f"neurons/{pop.name}"
        for variable, values in pop.state.items():
            values[:] = checkpoint.read(f"{base}/{variable}", slice(pop.lo, pop.hi))
        pop.refr[:] = checkpoint.read(f"{base}/refractory", slice(pop.lo, pop.hi))
        gids = slice(pop.first_gid, pop.first_gid + pop.n)
        columns = np.arange(pop.col, pop.col + pop.n)
        for key, buffer in (("excitatory", network.buf_exc), ("inhibitory", network.buf_inh)):
            block = checkpoint.read(f"rings/{key}", slice(None), gids)
            buffer[rows[:, np.newaxis], columns[np.newaxis, :]] = block
    _restore_plastic(checkpoint, network.plastic, comm)
    stimuli = network.stimuli
    stimuli.cursor = int(np.searchsorted(stimuli.schedule_steps, step, side="left"))
    if snapshots is not None:
        snapshots.resume(checkpoint.recorder.weights)


def _restore_plastic(checkpoint: StoredCheckpoint, plan: PlasticPlan, comm: Communicator) -> None:
    counts = comm.allgather([plan.order(q).n_synapses for q in range(len(plan.projections))])
    a = plan.arrays
    histories: list[tuple[int, I64, F64, F64]] = []
    for q, projection in enumerate(plan.projections):
        base = f"plastic/{projection.name}"
        order = plan.order(q)
        before = sum(counts[r][q] for r in range(comm.rank))
        order.set_weights(
            0, checkpoint.read(f"{base}/weights", slice(before, before + order.n_synapses))
        )
        pre_last = checkpoint.read(f"{base}/pre_last")
        pre = int(a.post[q, 4])
        a.pre_last[pre : pre + pre_last.size] = pre_last
        a.pre_trace[pre : pre + pre_last.size] = checkpoint.read(f"{base}/pre_trace")
        lo, n = plan.target_lo[q], int(a.post[q, 1])
        targets = slice(lo, lo + n)
        histories.append(
            (
                int(a.post[q, 2]),
                checkpoint.read(f"{base}/history_count", targets),
                checkpoint.read(f"{base}/history_steps", targets),
                checkpoint.read(f"{base}/history_k", targets),
            )
        )
    if not histories:
        return
    width = max((h[2].shape[1] for h in histories), default=0)
    size = HISTORY_START
    while size < width:
        size *= 2
    hist = np.zeros((a.hist.shape[0], 2 * size))
    for first, count, steps, ks in histories:
        live = np.count_nonzero(~np.isnan(steps), axis=1)
        lanes = np.arange(steps.shape[1])
        valid = lanes[np.newaxis, :] < live[:, np.newaxis]
        at = 2 * ((count - live)[:, np.newaxis] + lanes[np.newaxis, :]) % (2 * size)
        rows = np.broadcast_to(np.arange(first, first + count.size)[:, np.newaxis], at.shape)
        hist[rows[valid], at[valid]] = steps[valid]
        hist[rows[valid], at[valid] + 1] = ks[valid]
        a.hist_count[first : first + count.size] = count
    a.floor[:, 0], a.floor[:, 1] = NEVER, -1
    plan.arrays = a._replace(hist=hist)
