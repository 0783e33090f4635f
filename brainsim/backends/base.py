"""The backend interface: what a compilation target supports, what it refuses, what it writes.

A backend (ARCHITECTURE.md, decision 9) declares its :class:`Capabilities`, checks a circuit
against them (:meth:`Backend.check`: every :class:`Violation`, each with the circuit field path
and the reason the target cannot express it; never a silent approximation), compiles it into
files (:meth:`Backend.compile` -> :class:`Artefact`) and, where the target runs on this
machine, runs it (:class:`RunnableBackend`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from brainsim.circuit.spec import Circuit
from brainsim.errors import TargetError

__all__ = [
    "Artefact",
    "Backend",
    "Capabilities",
    "RunnableBackend",
    "Violation",
    "refuse_violations",
]


@dataclass(frozen=True, slots=True)
class Violation:
    """Something in a circuit that a target cannot express."""

    path: str
    """The circuit field, as validation names it (``populations.E.model``,
    ``projections.EE.synapse.model``, ``stimuli.drive``)."""
    reason: str
    """Why the target cannot express it, in a sentence."""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a target supports, derived from the model declarations where it can be."""

    target: str
    """The backend's name."""
    summary: str
    """What the target is, in a line."""
    neuron_models: tuple[str, ...]
    """The neuron model variants it takes, as ``model`` or ``model(choice=value, ...)``."""
    synapse_models: tuple[str, ...]
    """The synapse models it takes (``static``, ``stdp``, ...)."""
    plasticity: bool
    """Whether weights may change during a run."""
    stimuli: tuple[str, ...]
    """The stimulus types it takes, with conditions in parentheses."""
    connection_rules: tuple[str, ...]
    """The connection rules it takes."""
    delays: str
    """Which synaptic delays it expresses."""
    runs_here: bool
    """Whether :meth:`RunnableBackend.run` runs it on this machine."""
    output: str
    """What :meth:`Backend.compile` writes."""

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-compatible data (``brainsim targets --json``)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Artefact:
    """What a compilation wrote."""

    target: str
    """The backend that wrote it."""
    paths: tuple[str, ...]
    """Every file written, the main one first."""


@runtime_checkable
class Backend(Protocol):
    """A compilation target."""

    @property
    def name(self) -> str:
        """The target's name (``brainsim compile --target NAME``)."""
        ...

    def capabilities(self) -> Capabilities:
        """What this target supports."""
        ...

    def check(self, circuit: Circuit) -> list[Violation]:
        """Every part of ``circuit`` this target cannot express (empty: it can take it)."""
        ...

    def compile(self, circuit: Circuit, out_dir: str | os.PathLike[str]) -> Artefact:
        """Write ``circuit`` for this target into ``out_dir`` (created if missing); raises
        :class:`~brainsim.errors.TargetError` with every violation when :meth:`check` finds
        any."""
        ...


@runtime_checkable
class RunnableBackend(Backend, Protocol):
    """A target that also runs here."""

    def run(
        self,
        circuit: Circuit,
        out: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        progress: Callable[[float, float], None] | None = None,
    ) -> str:
        """Simulate ``circuit`` into the recording ``out``; the final status
        (``complete``, ``cancelled``, ...)."""
        ...


def refuse_violations(target: str, circuit: Circuit, violations: list[Violation]) -> None:
    """Raise :class:`TargetError` listing ``violations`` unless there are none."""
    if violations:
        raise TargetError(
            f"target {target!r} cannot express circuit {circuit.name!r} "
            f"({len(violations)} violation(s))",
            [str(v) for v in violations],
        )
