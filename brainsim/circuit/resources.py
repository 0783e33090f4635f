"""Estimate how many synapses a circuit has and how much memory simulating it takes.

The estimate follows the engine's storage plan (ARCHITECTURE.md, decision 1): per synapse a
4-byte target index, plus 4 bytes of weight when weights vary and 2 bytes of delay steps when
delays vary (constants are stored once); per projection an 8-byte CSR row pointer per source
neuron; per neuron :data:`BYTES_PER_NEURON` of bookkeeping, the rows of the engine's state and
parameter tables (each rank's tables have as many rows as its largest model variant declares,
:attr:`brainsim.models.Variant.table_bytes`), 8 bytes per parameter or initial value that
varies across neurons, and a float64 ring buffer spanning the longest delay (two of them, for
every neuron, when any population keeps inhibitory input apart). Synapse counts are expected
values of the connection rule, exact for all but ``pairwise_bernoulli``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from brainsim.circuit.files import (
    ConnectionFileError,
    connection_file_info,
    resolve_connection_file,
)
from brainsim.circuit.spec import (
    AllToAll,
    Circuit,
    FixedIndegree,
    FixedOutdegree,
    FixedTotalNumber,
    FromFile,
    OneToOne,
    PairwiseBernoulli,
    Population,
    Projection,
    SpikeStimulus,
    Value,
)
from brainsim.circuit.values import upper_estimate

__all__ = [
    "BYTES_PER_NEURON",
    "ResourceEstimate",
    "estimate",
    "estimate_resources",
    "format_bytes",
    "physical_memory_bytes",
]

BYTES_PER_NEURON = 48
"""The step loop's vectors of one neuron beside its model's table rows: refractory counter and
period, base and external current, spike scratch and a zero input (8 bytes each)."""

_TARGET_INDEX_BYTES = 4
_WEIGHT_BYTES = 4
_DELAY_BYTES = 2
_ROW_POINTER_BYTES = 8
_RING_SLOT_BYTES = 8


@dataclass(frozen=True, slots=True)
class ResourceEstimate:
    """Size of a circuit: neurons, expected synapses and estimated memory for the whole run."""

    n_neurons: int
    """Number of neurons (gids)."""
    n_synapses: int
    """Expected number of synapses over all projections."""
    bytes_total: int
    """Estimated memory over all ranks (bytes)."""

    def describe(self) -> str:
        """E.g. ``"77,169 neurons, 298,880,968 synapses, about 2.9 GiB"``."""
        return (
            f"{self.n_neurons:,} neurons, {self.n_synapses:,} synapses, "
            f"about {format_bytes(self.bytes_total)}"
        )


def format_bytes(count: float) -> str:
    """``3.2e9`` -> ``"3.0 GiB"``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{int(count)} B"


def estimate_resources(circuit: Circuit) -> ResourceEstimate:
    """The :class:`ResourceEstimate` of a validated circuit."""
    stimulus_delays_ms = [
        stimulus.delay_ms
        for stimulus in circuit.stimuli.values()
        if isinstance(stimulus, SpikeStimulus)
    ]
    return estimate(
        circuit.populations,
        circuit.projections.values(),
        circuit.simulation.dt_ms,
        circuit.base_dir,
        extra_delays_ms=stimulus_delays_ms,
    )


def estimate(
    populations: Mapping[str, Population],
    projections: Iterable[Projection],
    dt_ms: float,
    base_dir: str | None,
    *,
    extra_delays_ms: Iterable[float] = (),
) -> ResourceEstimate:
    """Estimate from the parts of a circuit (validation uses it before a Circuit exists).

    Projections whose populations are not in ``populations`` are left out.
    """
    n_synapses = 0
    bytes_total = 0
    longest_delay_ms = max([dt_ms, *extra_delays_ms])
    for projection in projections:
        if projection.source not in populations or projection.target not in populations:
            continue
        count, weight_varies, delay_varies = _synapses(projection, populations, base_dir)
        n_synapses += count
        per_synapse = (
            _TARGET_INDEX_BYTES
            + (_WEIGHT_BYTES if weight_varies else 0)
            + (_DELAY_BYTES if delay_varies else 0)
        )
        bytes_total += count * per_synapse
        bytes_total += (populations[projection.source].size + 1) * _ROW_POINTER_BYTES
        longest_delay_ms = max(longest_delay_ms, upper_estimate(projection.delay_ms))
    # Bounded so that absurd delays give an absurd (reportable) size instead of an overflow.
    ring_slots = math.ceil(min(longest_delay_ms / dt_ms, 2.0**62)) + 1
    variants = [population.variant for population in populations.values()]
    table_bytes = max((variant.table_bytes for variant in variants), default=0)
    channels = 2 if any(variant.separates_inhibition for variant in variants) else 1
    n_neurons = 0
    for population in populations.values():
        n_neurons += population.size
        varying = _varying_values(population)
        per_neuron = (
            BYTES_PER_NEURON + table_bytes + 8 * varying + ring_slots * _RING_SLOT_BYTES * channels
        )
        bytes_total += population.size * per_neuron
    return ResourceEstimate(n_neurons=n_neurons, n_synapses=n_synapses, bytes_total=bytes_total)


def _synapses(
    projection: Projection, populations: Mapping[str, Population], base_dir: str | None
) -> tuple[int, bool, bool]:
    """(expected count, weights vary, delays vary)."""
    n_source = populations[projection.source].size
    n_target = populations[projection.target].size
    same = projection.source == projection.target
    rule = projection.connectivity
    weight_varies = not isinstance(projection.weight, float | int)
    delay_varies = not isinstance(projection.delay_ms, float | int)
    if isinstance(rule, FromFile):
        try:
            info = connection_file_info(resolve_connection_file(rule.path, base_dir))
        except ConnectionFileError:
            return 0, weight_varies, delay_varies
        return (
            info.n_connections,
            weight_varies or info.has_weight,
            delay_varies or info.has_delay,
        )
    pairs = n_source * n_target
    if isinstance(rule, AllToAll | PairwiseBernoulli) and same and not rule.allow_autapses:
        pairs -= n_source
    if isinstance(rule, OneToOne):
        count = n_target
    elif isinstance(rule, AllToAll):
        count = pairs
    elif isinstance(rule, PairwiseBernoulli):
        count = round(rule.p * pairs)
    elif isinstance(rule, FixedIndegree):
        count = rule.indegree * n_target
    elif isinstance(rule, FixedOutdegree):
        count = rule.outdegree * n_source
    else:
        assert isinstance(rule, FixedTotalNumber)
        count = rule.n
    return count, weight_varies, delay_varies


def _varying_values(population: Population) -> int:
    params: list[Value] = [
        getattr(population.params, parameter.name) for parameter in population.variant.parameters
    ]
    values = [*params, *population.initial.values()]
    return sum(not isinstance(value, float | int) for value in values) + len(
        population.random_variables
    )


def physical_memory_bytes() -> int | None:
    """Physical memory of this machine, or ``None`` where the OS does not say."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
    if pages <= 0 or page_size <= 0:
        return None
    return int(pages) * int(page_size)
