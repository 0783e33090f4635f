"""brainsim: distributed spiking brain-circuit simulation with rank-count-invariant results.

The public entry points are imported lazily so that ``import brainsim`` stays cheap (no numba
compilation, no zarr) for tools such as the job service that only validate circuits.
"""

from __future__ import annotations

from typing import Any

__version__: str
"""The installed distribution's version, read on first use: ``importlib.metadata`` costs a
process about 40 ms that a run's launching process (which never needs it) does without."""

__all__ = ["__version__", "load_circuit", "open_recording", "run", "validate"]

_LAZY = {
    "load_circuit": "brainsim.circuit",
    "validate": "brainsim.circuit",
    "run": "brainsim.api",
    "open_recording": "brainsim.analysis",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("brainsim")
        except PackageNotFoundError:  # pragma: no cover - source tree without installation
            found = "0.0.0"
        globals()["__version__"] = found
        return found
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'brainsim' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
