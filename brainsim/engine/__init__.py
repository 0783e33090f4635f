"""The per-rank engine: build a rank's neurons and synapses, run the step loop, record.

The names below load their modules on first use, so that ``brainsim.engine.launch`` (what a
launcher needs) imports without numba or zarr.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brainsim.engine.run import communicator, execute, with_overrides
    from brainsim.engine.simulator import (
        LocalNetwork,
        RunConfig,
        Simulated,
        build_network,
        simulate,
    )

_HOME = {
    "communicator": "run",
    "execute": "run",
    "with_overrides": "run",
    "LocalNetwork": "simulator",
    "RunConfig": "simulator",
    "Simulated": "simulator",
    "build_network": "simulator",
    "simulate": "simulator",
}

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


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
