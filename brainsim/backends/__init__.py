"""Compilation targets (ARCHITECTURE.md, decision 9): one interface, a registry by name.

``numba_mpi`` is brainsim's own engine (it takes everything and runs here); ``nir`` writes a
NIR graph for neuromorphic toolchains (:mod:`.nir_export`) and reads one back as a circuit
(:func:`import_nir`); ``pynn`` (``pynn:spiNNaker``, ``pynn:brainscales2``) writes a PyNN
script checked against that simulator's limits (:mod:`.pynn`). A backend lists its
:class:`Capabilities`, checks a circuit
(:class:`Violation` per field it cannot express), compiles it (:class:`Artefact`) and, where
it runs here (:class:`RunnableBackend`), runs it. Each model declares its name on each target
(:data:`brainsim.models.TargetNames`); docs/targets.md has the mappings.
"""

from __future__ import annotations

from collections.abc import Mapping

from brainsim.backends.base import (
    Artefact,
    Backend,
    Capabilities,
    RunnableBackend,
    Violation,
    refuse_violations,
)
from brainsim.backends.nir_export import NirBackend
from brainsim.backends.nir_import import ImportedCircuit, import_nir
from brainsim.backends.numba_mpi import NumbaMpiBackend
from brainsim.backends.pynn import PLATFORMS as PYNN_PLATFORMS
from brainsim.backends.pynn import PynnBackend
from brainsim.errors import TargetError

__all__ = [
    "BACKENDS",
    "Artefact",
    "Backend",
    "Capabilities",
    "ImportedCircuit",
    "NirBackend",
    "NumbaMpiBackend",
    "PynnBackend",
    "RunnableBackend",
    "Violation",
    "backend",
    "import_nir",
    "refuse_violations",
]

_ALL: tuple[Backend, ...] = (
    NumbaMpiBackend(),
    NirBackend(),
    *(PynnBackend(simulator) for simulator in PYNN_PLATFORMS),
)
BACKENDS: Mapping[str, Backend] = {b.name: b for b in _ALL}
"""Every backend by name, the reference first."""


def backend(name: str) -> Backend:
    """The backend called ``name``; :class:`~brainsim.errors.TargetError` listing the valid
    names when there is none."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise TargetError(f"unknown target {name!r}", [f"targets: {', '.join(BACKENDS)}"]) from None
