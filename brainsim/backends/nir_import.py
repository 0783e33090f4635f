"""NIR graphs into brainsim circuits (``brainsim import model.nir -o circuit.yaml``).

Neuron nodes become populations: ``LIF`` a ``lif`` population with delta synapses, ``CubaLIF``
one with exponential synapses, ``IF`` a ``lif`` whose membrane never leaks (``tau_m_ms`` =
:data:`~.nir_mapping.IF_TAU_MS`), ``LI`` a ``lif`` that never spikes (``v_th_mV`` =
:data:`~.nir_mapping.LI_THRESHOLD_MV`), allowed only as a readout (its only successors are
``Output`` nodes; its ``v`` is recorded). ``Input`` nodes become parrot populations, to be driven
by any spike stimulus (``spike_trains``, ``rate``, ...). Every path from a population through
``Linear``, ``Affine`` (zero bias), ``Scale`` and ``Delay`` nodes to a neuron node becomes
synapses read from a connection file (``rule: from_file``): one per non-zero entry of the
path's weight matrix, with the weight converted to brainsim's units and the delay ``dt`` plus
the path's ``Delay`` nodes (:mod:`.nir_mapping`, which also says how the time grid is chosen:
``exact`` or ``euler``). Populations feeding ``Output`` nodes have their spikes recorded.
Nested graphs (snnTorch's recurrent layers) are flattened first.

Everything else is an error naming the node: other node types, per-neuron parameters that
differ within a node (a population takes one value per parameter), a non-zero bias, edges into
an ``Input``, an ``Output`` or a non-spiking ``LI`` read through weights, a ``Delay`` between
two weight nodes whose delays differ, delays off the time grid.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import yaml

from brainsim.backends.nir_mapping import (
    IF_TAU_MS,
    LI_THRESHOLD_MV,
    META_CIRCUIT,
    META_DISCRETIZATION,
    META_DT,
    META_INDEX,
    META_PROJECTION,
    MS_PER_S,
    Discretization,
    load_nir,
    membrane_tau_ms,
    tidy,
)
from brainsim.circuit import Circuit, load_circuit
from brainsim.errors import TargetError

__all__ = ["DEFAULT_DT_MS", "ImportedCircuit", "import_nir"]

DEFAULT_DT_MS: Final = 0.1
"""The time step of a graph that does not state one: snnTorch's export assumes 1e-4 s."""

_NODE_TYPES = "LIF, CubaLIF, IF, LI, Affine, Linear, Scale, Delay, Input, Output"

Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ImportedCircuit:
    """What :func:`import_nir` wrote."""

    circuit: Circuit
    """The circuit, loaded back from the file written (so it validates)."""
    path: str
    """The circuit file."""
    files: tuple[str, ...]
    """The connection files it names."""
    populations: Mapping[str, str]
    """The population of each ``Input`` and neuron node, by node name."""
    lag_steps: Mapping[str, int]
    """How many steps each population's spikes come after those of forward Euler on the graph
    with edges of no delay (snnTorch's and Norse's schedule): a neuron that fires in Euler's
    step ``t`` fires in brainsim's step ``t + lag``, stamped ``(t + lag + 1) dt``. Populations
    no Input population reaches are left out."""


@dataclass(slots=True)
class _Path:
    """A walk from a population through weight nodes: ``matrix`` (current channels x source
    neurons), delays before any mixing (per source) and after (per current channel), and the
    first weight node's projection name."""

    matrix: Float64Array
    source_delay_s: Float64Array
    channel_delay_s: Float64Array
    mixed: bool
    key: str | None
    visited: tuple[str, ...]


def import_nir(
    source: str | os.PathLike[str] | Any,
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    dt_ms: float | None = None,
    duration_ms: float = 1000.0,
    discretization: Discretization | None = None,
    seed: int = 0,
    stimuli: Mapping[str, Mapping[str, Any]] | None = None,
    record_all: bool = False,
) -> ImportedCircuit:
    """Write the NIR graph ``source`` (a ``.nir`` file or a ``nir.NIRGraph``) as the circuit
    ``out`` (YAML) with its connection files in ``<stem>_connections/`` beside it.

    ``dt_ms`` and ``discretization`` default to the graph's metadata, else to
    :data:`DEFAULT_DT_MS` and ``euler`` (the scheme snnTorch and Norse simulate);
    ``stimuli`` are added to the circuit as given (e.g. ``spike_trains`` onto the Input
    populations). The spikes of the populations that feed ``Output`` nodes are recorded, of
    every population with ``record_all``. Raises :class:`~brainsim.errors.TargetError` naming
    every node that cannot be imported.
    """
    nir = load_nir()
    graph = source if isinstance(source, nir.NIRGraph) else nir.read(os.fspath(source))
    metadata = dict(graph.metadata or {})
    if dt_ms is None:
        dt_ms = float(metadata[META_DT]) * MS_PER_S if META_DT in metadata else DEFAULT_DT_MS
        dt_ms = tidy(dt_ms)
    if discretization is None:
        discretization = str(metadata.get(META_DISCRETIZATION, "euler"))  # type: ignore[assignment]
    if discretization not in ("exact", "euler"):
        raise TargetError("cannot import the graph", [f"unknown discretization {discretization!r}"])
    nodes, edges = _flatten(nir, graph)
    builder = _Builder(nir, nodes, edges, dt_ms, discretization)
    builder.build()
    if builder.problems:
        raise TargetError("cannot import the NIR graph", builder.problems)
    out_path = Path(out)
    stem = out_path.stem
    circuit_name = _dns_label(name or str(metadata.get(META_CIRCUIT, "")) or stem)
    files_dir = f"{stem}_connections"
    (out_path.parent / files_dir).mkdir(parents=True, exist_ok=True)
    files = []
    projections: dict[str, Any] = {}
    for proj_name, (src, tgt, arrays) in builder.projections.items():
        relative = f"{files_dir}/{proj_name}.npz"
        np.savez(out_path.parent / relative, **arrays)
        files.append(str(out_path.parent / relative))
        projections[proj_name] = {
            "source": src,
            "target": tgt,
            "connectivity": {"rule": "from_file", "path": relative},
            "weight": 0.0,  # every synapse's weight and delay come from the file
            "delay_ms": dt_ms,
        }
    document: dict[str, Any] = {
        "apiVersion": "brainsim/v1",
        "name": circuit_name,
        "description": f"imported from a NIR graph ({discretization} discretization, "
        f"dt {dt_ms:g} ms); populations by node: "
        + ", ".join(f"{n} -> {p}" for n, p in builder.names.items()),
        "simulation": {"dt_ms": dt_ms, "duration_ms": duration_ms, "seed": seed},
        "populations": builder.populations,
        "projections": projections,
        "stimuli": {k: dict(v) for k, v in (stimuli or {}).items()},
        "recordings": {
            "spikes": list(builder.populations) if record_all else builder.spike_recordings,
            "state": [
                {"population": p, "variables": ["v"], "interval_ms": dt_ms}
                for p in builder.state_recordings
            ],
        },
    }
    out_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return ImportedCircuit(
        circuit=load_circuit(out_path),
        path=str(out_path),
        files=tuple(files),
        populations=dict(builder.names),
        lag_steps=builder.lag_steps(),
    )


def _flatten(nir: Any, graph: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The nodes and edges of ``graph`` with nested graphs spliced in (their nodes named
    ``<graph>.<node>``; their Input and Output nodes dissolved into the edges through them)."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    ports: set[str] = set()
    entries: dict[str, list[str]] = {}
    exits: dict[str, list[str]] = {}
    for key, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[key] = node
            continue
        inner, inner_edges = _flatten(nir, node)
        for k, v in inner.items():
            nodes[f"{key}.{k}"] = v
        edges += [(f"{key}.{a}", f"{key}.{b}") for a, b in inner_edges]
        entries[key] = [f"{key}.{k}" for k, v in inner.items() if isinstance(v, nir.Input)]
        exits[key] = [f"{key}.{k}" for k, v in inner.items() if isinstance(v, nir.Output)]
        ports.update(entries[key], exits[key])
    for a, b in graph.edges:
        for src in exits.get(a, [a]):
            edges += [(src, dst) for dst in entries.get(b, [b])]
    for port in ports:
        before = [a for a, b in edges if b == port]
        after = [b for a, b in edges if a == port]
        edges = [(a, b) for a, b in edges if port not in (a, b)]
        edges += [(a, b) for a in before for b in after]
        del nodes[port]
    return nodes, list(dict.fromkeys(edges))


class _Builder:
    """Turns flattened nodes and edges into populations, connections and recordings, and
    collects every problem on the way."""

    def __init__(
        self,
        nir: Any,
        nodes: dict[str, Any],
        edges: list[tuple[str, str]],
        dt_ms: float,
        discretization: Discretization,
    ) -> None:
        self.nir = nir
        self.nodes = nodes
        self.successors: dict[str, list[str]] = {k: [] for k in nodes}
        self.problems: list[str] = []
        for a, b in edges:
            if a not in nodes or b not in nodes:
                self.problems.append(f"edge {a!r} -> {b!r}: no such node")
                continue
            self.successors[a].append(b)
        self.dt_ms = dt_ms
        self.discretization = discretization
        self.names: dict[str, str] = {}
        self.populations: dict[str, Any] = {}
        self.factors: dict[str, Float64Array] = {}
        self.projections: dict[str, tuple[str, str, dict[str, Any]]] = {}
        self.spike_recordings: list[str] = []
        self.state_recordings: list[str] = []
        self._order: dict[str, int] = {}

    @property
    def neuron_types(self) -> tuple[type, ...]:
        return (self.nir.LIF, self.nir.CubaLIF, self.nir.IF, self.nir.LI)

    @property
    def weight_types(self) -> tuple[type, ...]:
        return (self.nir.Linear, self.nir.Affine, self.nir.Scale, self.nir.Delay)

    def build(self) -> None:
        kinds = (*self.neuron_types, *self.weight_types, self.nir.Input, self.nir.Output)
        for key, node in self.nodes.items():
            if not isinstance(node, kinds):
                self.problems.append(
                    f"node {key!r}: NIR {type(node).__name__} nodes cannot be "
                    f"imported (brainsim takes {_NODE_TYPES})"
                )
        if self.problems:
            return
        for key in self._population_order():
            self._add_population(key)
        sources = {k: v for k, v in self.nodes.items() if k in self.names}
        terms: dict[str, list[tuple[str, str, _Path]]] = {}
        for key, node in sources.items():
            size = self._size(node)
            start = _Path(np.eye(size), np.zeros(size), np.zeros(size), False, None, (key,))
            for succ in self.successors[key]:
                self._walk(key, succ, start, terms)
        for key, found in sorted(terms.items(), key=lambda kv: self._order.get(kv[0], 1 << 30)):
            self._add_projection(key, found)

    def lag_steps(self) -> dict[str, int]:
        """Each population's lag behind forward Euler on the graph with edges of no delay
        (snnTorch's, Norse's schedule): along the quickest path from an Input population, each
        projection's shortest delay in steps, plus one step into each exponential-synapse
        population (its ``v`` feels a current from the step after it arrives; Euler in the
        same step)."""
        lag = {p: 0 for p, d in self.populations.items() if d["model"] == "parrot"}
        for _ in self.populations:  # Bellman-Ford: at most one pass per population
            for src, tgt, arrays in self.projections.values():
                if src not in lag or arrays["delay_ms"].size == 0:
                    continue
                steps = int(np.rint(arrays["delay_ms"].min() / self.dt_ms))
                steps += self.populations[tgt].get("params", {}).get("synapse") == "exponential"
                if lag[src] + steps < lag.get(tgt, 1 << 62):
                    lag[tgt] = lag[src] + steps
        return lag

    def _population_order(self) -> list[str]:
        keys = [
            k for k, v in self.nodes.items() if isinstance(v, (*self.neuron_types, self.nir.Input))
        ]
        indexed = {k: self._meta(k, META_INDEX) for k in keys}
        if all(v is not None for v in indexed.values()):
            return sorted(keys, key=lambda k: int(indexed[k]))
        order: list[str] = [k for k in keys if isinstance(self.nodes[k], self.nir.Input)]
        seen = set(order)
        frontier = list(order)
        while frontier:
            nxt = []
            for k in frontier:
                for s in self.successors[k]:
                    if s not in seen:
                        seen.add(s)
                        nxt.append(s)
                        if s in keys:
                            order.append(s)
            frontier = nxt
        return order + [k for k in keys if k not in order]

    def _meta(self, key: str, field: str) -> Any:
        return (getattr(self.nodes[key], "metadata", None) or {}).get(field)

    def _size(self, node: Any) -> int:
        if isinstance(node, self.nir.Input):
            return int(np.prod(np.asarray(next(iter(node.input_type.values())))))
        if isinstance(node, self.nir.IF | self.nir.LIF | self.nir.CubaLIF | self.nir.LI):
            return int(np.asarray(node.r).size)
        raise AssertionError(type(node))

    def _add_population(self, key: str) -> None:
        node = self.nodes[key]
        name = _identifier(key, set(self.populations))
        self.names[key] = name
        size = self._size(node)
        if isinstance(node, self.nir.Input):
            self.populations[name] = {"size": size, "model": "parrot"}
            return
        params = self._params(key, node)
        if params is None:
            return
        self.populations[name] = {"size": size, "model": "lif", "params": params}

    def _uniform(self, key: str, field: str, values: Any) -> float | None:
        array = np.asarray(values, dtype=np.float64).ravel()
        if array.size == 0 or not np.all(np.isfinite(array)):
            self.problems.append(f"node {key!r}: {field} must be finite numbers")
            return None
        if np.any(array != array[0]):
            self.problems.append(
                f"node {key!r}: {field} differs between neurons "
                f"({array.min():g} .. {array.max():g}); a brainsim population "
                "takes one value per parameter"
            )
            return None
        return float(array[0])

    def _tau_ms(self, key: str, field: str, values: Any) -> float | None:
        tau = self._uniform(key, field, values)
        if tau is None:
            return None
        if not tau > 0:
            self.problems.append(f"node {key!r}: {field} must be > 0, got {tau:g}")
            return None
        try:
            return membrane_tau_ms(tau, self.dt_ms, self.discretization)
        except ValueError as exc:
            self.problems.append(f"node {key!r}: {field}: {exc}")
            return None

    def _params(self, key: str, node: Any) -> dict[str, Any] | None:
        """The ``lif`` parameters of a neuron node, and its weight factors (NIR weight ->
        brainsim weight, per neuron) in ``self.factors``."""
        nir = self.nir
        dt_s = self.dt_ms / MS_PER_S
        r = np.asarray(node.r, dtype=np.float64).ravel()
        params: dict[str, Any] = {"t_ref_ms": 0.0, "i_e_pA": 0.0}
        if isinstance(node, nir.IF):
            params |= {"tau_m_ms": IF_TAU_MS, "e_l_mV": 0.0}
            self.factors[key] = np.array([tidy(x) for x in r * dt_s])
        elif isinstance(node, nir.CubaLIF):
            tau_ms = self._tau_ms(key, "tau_mem", node.tau_mem)
            syn_ms = self._tau_ms(key, "tau_syn", node.tau_syn)
            resistance = self._uniform(key, "r", r)
            if tau_ms is None or syn_ms is None or resistance is None:
                return None
            if not resistance > 0:
                self.problems.append(f"node {key!r}: r must be > 0, got {resistance:g}")
                return None
            params |= {
                "synapse": "exponential",
                "tau_m_ms": tau_ms,
                "c_m_pF": self._capacitance(key, node, tau_ms, syn_ms, resistance),
                "tau_syn_ex_ms": syn_ms,
                "tau_syn_in_ms": syn_ms,
            }
            w_in = np.asarray(node.w_in, dtype=np.float64).ravel()
            tau_syn = np.asarray(node.tau_syn, dtype=np.float64).ravel()
            self.factors[key] = np.array([tidy(x) for x in w_in * dt_s / tau_syn])
        else:
            tau_ms = self._tau_ms(key, "tau", node.tau)
            if tau_ms is None:
                return None
            params["tau_m_ms"] = tau_ms
            tau = np.asarray(node.tau, dtype=np.float64).ravel()
            self.factors[key] = np.array([tidy(x) for x in r * dt_s / tau])
        if isinstance(node, nir.LI):
            v_leak = self._uniform(key, "v_leak", node.v_leak)
            if v_leak is None:
                return None
            return params | {"e_l_mV": v_leak, "v_th_mV": LI_THRESHOLD_MV, "v_reset_mV": v_leak}
        if not isinstance(node, nir.IF):
            v_leak = self._uniform(key, "v_leak", node.v_leak)
            if v_leak is None:
                return None
            params["e_l_mV"] = v_leak
        v_th = self._uniform(key, "v_threshold", node.v_threshold)
        v_reset = self._uniform(key, "v_reset", node.v_reset)
        if v_th is None or v_reset is None:
            return None
        if not v_reset < v_th:
            self.problems.append(
                f"node {key!r}: v_reset ({v_reset:g}) must be below v_threshold ({v_th:g})"
            )
            return None
        return params | {"v_th_mV": v_th, "v_reset_mV": v_reset}

    def _capacitance(
        self, key: str, node: Any, tau_ms: float, syn_ms: float, resistance: float
    ) -> float:
        """``c_m_pF`` of a CubaLIF node: ``exact``: ``tau_mem / r`` (brainsim's ``R`` is NIR's
        ``r``); ``euler``: the one that makes brainsim's step move ``v`` by Euler's
        ``r dt / tau_mem`` per unit of current at the step's start (then brainsim's step is
        Euler's, one step later: brainsim's ``v`` feels a current from the next step on)."""
        if self.discretization == "exact":
            return tidy(tau_ms / resistance)
        from brainsim.engine.populations import lif_current_gain

        tau_mem = self._uniform(key, "tau_mem", node.tau_mem) or 1.0
        euler_gain = resistance * self.dt_ms / (tau_mem * MS_PER_S)
        return lif_current_gain(tau_ms, syn_ms, self.dt_ms) / euler_gain

    def _walk(
        self, source: str, key: str, path: _Path, terms: dict[str, list[tuple[str, str, _Path]]]
    ) -> None:
        """Follow ``path`` from ``source`` into node ``key``."""
        nir = self.nir
        node = self.nodes[key]
        if isinstance(self.nodes[source], nir.LI) and not isinstance(node, nir.Output):
            self.problems.append(
                f"node {source!r}: an LI node does not spike, so it may only "
                f"feed Output nodes, not {key!r}"
            )
            return
        if isinstance(node, nir.Input):
            self.problems.append(f"node {key!r}: an Input node takes no edges (from {source!r})")
            return
        if isinstance(node, nir.Output):
            self._output(source, key, path)
            return
        if key in self.names:
            self._arrive(source, key, path, terms)
            return
        if key in path.visited:
            self.problems.append(
                f"node {key!r}: a cycle through weight nodes only "
                f"({' -> '.join(path.visited)}) has no neuron to delay it"
            )
            return
        step = self._through(key, node, path)
        if step is None:
            return
        for succ in self.successors[key]:
            self._walk(source, succ, step, terms)

    def _through(self, key: str, node: Any, path: _Path) -> _Path | None:
        """``path`` continued through the weight node ``node``, or ``None`` (a problem)."""
        nir = self.nir
        visited = (*path.visited, key)
        width = path.matrix.shape[0]
        if isinstance(node, nir.Delay):
            delay = np.asarray(node.delay, dtype=np.float64).ravel()
            if delay.size != width or np.any(delay < 0) or not np.all(np.isfinite(delay)):
                self.problems.append(
                    f"node {key!r}: {delay.size} delays >= 0 expected for {width} channels"
                )
                return None
            if path.mixed:
                return _Path(
                    path.matrix,
                    path.source_delay_s,
                    path.channel_delay_s + delay,
                    True,
                    path.key,
                    visited,
                )
            return _Path(
                path.matrix,
                path.source_delay_s + delay,
                path.channel_delay_s,
                False,
                path.key,
                visited,
            )
        if isinstance(node, nir.Scale):
            scale = np.asarray(node.scale, dtype=np.float64).ravel()
            if scale.size != width:
                self.problems.append(f"node {key!r}: {scale.size} factors for {width} channels")
                return None
            return _Path(
                scale[:, None] * path.matrix,
                path.source_delay_s,
                path.channel_delay_s,
                path.mixed,
                path.key,
                visited,
            )
        weight = np.asarray(node.weight, dtype=np.float64)
        if weight.ndim != 2 or weight.shape[1] != width:
            self.problems.append(
                f"node {key!r}: weight of shape {weight.shape} does not take {width} channels"
            )
            return None
        if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
            self.problems.append(
                f"node {key!r}: a non-zero bias (a constant input per neuron) "
                "cannot be imported; only Affine nodes with zero bias"
            )
            return None
        channel = path.channel_delay_s
        if channel.size and np.any(channel != channel[0]):
            self.problems.append(
                f"node {key!r}: the Delay before it delays its inputs "
                "differently, but a synapse has one delay"
            )
            return None
        after = np.full(weight.shape[0], channel[0] if channel.size else 0.0)
        key_name = path.key or self._meta(key, META_PROJECTION)
        return _Path(
            weight @ path.matrix,
            path.source_delay_s,
            after,
            True,
            None if key_name is None else str(key_name),
            visited,
        )

    def _output(self, source: str, key: str, path: _Path) -> None:
        if len(path.visited) > 1:
            self.problems.append(
                f"node {key!r}: an Output reads spikes or an LI's v, not "
                f"the weighted signal of {path.visited[-1]!r}"
            )
            return
        name = self.names[source]
        if isinstance(self.nodes[source], self.nir.LI):
            self.state_recordings.append(name)
        elif name not in self.spike_recordings:
            self.spike_recordings.append(name)

    def _arrive(
        self, source: str, key: str, path: _Path, terms: dict[str, list[tuple[str, str, _Path]]]
    ) -> None:
        if path.matrix.shape[0] != self._size(self.nodes[key]):
            self.problems.append(
                f"node {key!r}: {path.matrix.shape[0]} channels arrive at "
                f"{self._size(self.nodes[key])} neurons"
            )
            return
        if len(path.visited) == 1:
            self.problems.append(
                f"edge {source!r} -> {key!r}: spikes need a weight node "
                "(Linear, Affine or Scale) between neurons"
            )
            return
        name = path.key or f"{self.names[source]}_to_{self.names[key]}"
        name = _identifier(name, set())
        index = self._meta(path.visited[1], META_INDEX)
        if index is not None:
            self._order.setdefault(name, int(index))
        terms.setdefault(name, []).append((source, key, path))

    def _add_projection(self, name: str, found: list[tuple[str, str, _Path]]) -> None:
        pairs = {(s, t) for s, t, _ in found}
        if len(pairs) != 1:
            self.problems.append(
                f"projection {name!r}: its weight nodes join different populations {sorted(pairs)}"
            )
            return
        ((source, target),) = pairs
        if target not in self.factors:
            return
        parts = []
        for _, _, path in found:
            tgt, src = np.nonzero(path.matrix)
            delay_s = path.source_delay_s[src] + path.channel_delay_s[tgt]
            steps = delay_s * MS_PER_S / self.dt_ms
            if np.any(np.abs(steps - np.rint(steps)) > 1e-6):
                self.problems.append(
                    f"projection {name!r}: delays of {path.visited[1:]} are "
                    f"not multiples of dt = {self.dt_ms:g} ms"
                )
                return
            weight = path.matrix[tgt, src] * self.factors[target][tgt]
            parts.append((src, tgt, weight, (np.rint(steps) + 1.0) * self.dt_ms))
        order = np.argsort(np.concatenate([p[1] for p in parts]), kind="stable")
        self.projections[_identifier(name, set(self.projections))] = (
            self.names[source],
            self.names[target],
            {
                "source": np.concatenate([p[0] for p in parts]).astype(np.int64)[order],
                "target": np.concatenate([p[1] for p in parts]).astype(np.int64)[order],
                "weight": np.concatenate([p[2] for p in parts])[order],
                "delay_ms": np.concatenate([p[3] for p in parts])[order],
            },
        )


def _identifier(text: str, taken: set[str]) -> str:
    """``text`` as a circuit identifier (letters, digits, ``_``; not starting with a digit),
    not one of ``taken``."""
    name = re.sub(r"\W", "_", text)[:60] or "n"
    if not re.match(r"[A-Za-z_]", name):
        name = f"n{name}"
    candidate, k = name, 1
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    return candidate


def _dns_label(text: str) -> str:
    """``text`` as a circuit name (lowercase letters, digits and ``-``, at most 63)."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return label or "imported"
