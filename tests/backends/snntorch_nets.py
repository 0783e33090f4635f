"""Small snnTorch networks (CPU torch, float64) and what the comparison needs: their spikes,
their NIR export, and the same input as a brainsim stimulus.

The layers reset to zero at once (``reset_mechanism="zero"``, ``reset_delay=False``: NIR's
``v_reset`` convention) and fire on ``mem > threshold`` through a plain Heaviside (the
surrogate gradient only matters for training; snnTorch's own returns float32 spikes, which a
float64 network cannot take).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import snntorch as snn
import torch
from snntorch.export_nir import export_to_nir

DT_MS = 0.1
"""snnTorch's export assumes dt = 1e-4 s."""

torch.set_num_threads(1)


def heaviside(v: torch.Tensor) -> torch.Tensor:
    """A spike where ``v > 0``, in ``v``'s dtype."""
    return (v > 0).to(v.dtype)


AS_BRAINSIM = {
    "init_hidden": True,
    "reset_mechanism": "zero",
    "reset_delay": False,
    "spike_grad": heaviside,
}
"""How every snnTorch neuron here is configured: reset to zero in the step it spikes (the
only reset NIR expresses), an exact step function as the spike."""


def _leaky(n: int, beta: float) -> snn.Leaky:
    return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n), **AS_BRAINSIM)


class FeedForward(torch.nn.Module):
    """Input -> Linear -> Leaky -> Linear -> Leaky."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, betas: tuple[float, float]) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(n_in, n_hidden, bias=False)
        self.lif1 = _leaky(n_hidden, betas[0])
        self.fc2 = torch.nn.Linear(n_hidden, n_out, bias=False)
        self.lif2 = _leaky(n_out, betas[1])
        self.layers = {"lif1": self.lif1, "lif2": self.lif2}
        self.spikes: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.lif1(self.fc1(x))
        s2 = self.lif2(self.fc2(s1))
        self.spikes = {"lif1": s1, "lif2": s2}
        return s2


class Recurrent(torch.nn.Module):
    """Input -> Linear -> RLeaky (all-to-all recurrent weights, zero bias) -> Linear -> Leaky."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, betas: tuple[float, float]) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(n_in, n_hidden, bias=False)
        self.rec = snn.RLeaky(
            beta=betas[0],
            threshold=1.0,
            linear_features=n_hidden,
            all_to_all=True,
            **AS_BRAINSIM,
        )
        self.fc2 = torch.nn.Linear(n_hidden, n_out, bias=False)
        self.lif2 = _leaky(n_out, betas[1])
        self.layers = {"rec.lif": self.rec, "lif2": self.lif2}
        self.spikes = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.rec(self.fc1(x))
        s2 = self.lif2(self.fc2(s1))
        self.spikes = {"rec.lif": s1, "lif2": s2}
        return s2


def _synaptic(n: int, alpha: float, beta: float) -> snn.Synaptic:
    return snn.Synaptic(
        alpha=torch.full((n,), alpha),
        beta=torch.full((n,), beta),
        threshold=torch.ones(n),
        **AS_BRAINSIM,
    )


class Synaptic(torch.nn.Module):
    """Input -> Linear -> Synaptic -> Linear -> Synaptic (current-based: NIR's CubaLIF)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, betas: tuple[float, float]) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(n_in, n_hidden, bias=False)
        self.syn1 = _synaptic(n_hidden, 0.5, betas[0])
        self.fc2 = torch.nn.Linear(n_hidden, n_out, bias=False)
        self.syn2 = _synaptic(n_out, 0.8, betas[1])
        self.layers = {"syn1": self.syn1, "syn2": self.syn2}
        self.spikes = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.syn1(self.fc1(x))
        s2 = self.syn2(self.fc2(s1))
        self.spikes = {"syn1": s1, "syn2": s2}
        return s2


KINDS = {"feed_forward": FeedForward, "recurrent": Recurrent, "synaptic": Synaptic}
SCALES = {"feed_forward": 3.0, "recurrent": 3.0, "synaptic": 1.0}


def build(kind: str, seed: int, betas: tuple[float, float] = (0.9, 0.8)) -> torch.nn.Module:
    """A float64 network with weights strong enough that every layer fires."""
    torch.manual_seed(seed)
    net = KINDS[kind](20, 30, 10, betas).double()
    with torch.no_grad():
        net.fc1.weight.mul_(SCALES[kind])
        net.fc2.weight.mul_(SCALES[kind])
        if isinstance(net, Recurrent):
            net.rec.recurrent.bias.zero_()
            net.rec.recurrent.weight.mul_(2.0)
    return net


def export(net: torch.nn.Module, path: Path) -> Path:
    """``net`` exported with snnTorch's own NIR export, written with ``nir.write``."""
    import nir

    with warnings.catch_warnings():
        # snnTorch 1.0's export calls nirtorch's extract_nir_graph, deprecated in nirtorch 2.
        warnings.filterwarnings("ignore", "nirtorch.extract_nir_graph", DeprecationWarning)
        graph = export_to_nir(net, torch.zeros(1, 20, dtype=torch.float64), ignore_dims=[0])
    nir.write(path, graph)
    return path


def simulate(net: torch.nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """snnTorch's spikes ``[step, neuron]`` of each layer for the input spikes ``x``."""
    for layer in net.layers.values():
        layer.reset_mem()
        if isinstance(layer, snn.RLeaky):
            layer.spk = torch.zeros(0)
    out: dict[str, list[np.ndarray]] = {name: [] for name in net.layers}
    with torch.no_grad():
        for t in range(x.shape[0]):
            net(x[t : t + 1])
            for name, spikes in net.spikes.items():
                out[name].append(spikes[0].numpy().copy())
    return {name: np.array(rows) for name, rows in out.items()}


def input_spikes(seed: int, n_steps: int, n_in: int = 20, p: float = 0.1) -> torch.Tensor:
    """Bernoulli input spikes ``[step, neuron]``."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n_steps, n_in, generator=generator) < p).double()


def spike_trains(x: torch.Tensor, population: str) -> dict[str, Any]:
    """``x`` as a brainsim ``spike_trains`` stimulus: input step ``t`` at ``t dt``, which the
    parrots repeat in step ``t``."""
    data = [[float(t) * DT_MS for t in np.nonzero(x[:, i].numpy())[0]] for i in range(x.shape[1])]
    return {
        "type": "spike_trains",
        "targets": [population],
        "data": data,
        "weight": 1.0,
        "delay_ms": DT_MS,
    }


def as_steps(
    times_ms: np.ndarray, node_ids: np.ndarray, lag: int, shape: tuple[int, int]
) -> np.ndarray:
    """brainsim spikes as ``[step, neuron]`` of the snnTorch run: a population that lags
    ``lag`` steps (:attr:`ImportedCircuit.lag_steps`) fires snnTorch's step ``t`` in step
    ``t + lag``, stamped ``(t + lag + 1) dt``."""
    steps = np.rint(np.asarray(times_ms) / DT_MS).astype(np.int64) - lag - 1
    out = np.zeros(shape)
    keep = (steps >= 0) & (steps < shape[0])
    out[steps[keep], np.asarray(node_ids)[keep]] = 1.0
    return out
