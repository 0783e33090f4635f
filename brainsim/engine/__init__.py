"""The per-rank engine: build a rank's neurons and synapses, run the step loop, record."""

from brainsim.engine.run import communicator, execute, with_overrides
from brainsim.engine.simulator import (
    LocalNetwork,
    RunConfig,
    Simulated,
    build_network,
    simulate,
)

__all__ = [
    "LocalNetwork",
    "RunConfig",
    "Simulated",
    "build_network",
    "communicator",
    "execute",
    "simulate",
    "with_overrides",
]
