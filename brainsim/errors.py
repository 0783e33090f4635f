"""The exception hierarchy of brainsim: one root, one class per kind of failure."""

from __future__ import annotations

__all__ = [
    "BrainsimError",
    "CircuitError",
    "EngineError",
    "PoolError",
    "RecordingError",
    "RecordingExistsError",
    "RecordingFormatError",
    "RecordingWriteError",
    "TargetError",
]


class BrainsimError(Exception):
    """Root of every error brainsim raises on purpose; anything else is a bug."""


class CircuitError(BrainsimError):
    """A circuit document is invalid; ``problems`` holds every problem found, each with its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the circuit"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class TargetError(BrainsimError):
    """A compilation target cannot take a circuit, or brainsim cannot take a model written for
    a target (an unknown target, a circuit with violations, an unimportable NIR graph);
    ``problems`` holds every reason, each naming the circuit field or the graph node."""

    def __init__(self, head: str, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class EngineError(BrainsimError):
    """The engine could not build or advance a network (a failed rank, an impossible request)."""


class PoolError(BrainsimError):
    """A pool of resident ranks could not be started, reached or stopped."""


class RecordingError(BrainsimError):
    """A recording store could not be written or read."""


class RecordingWriteError(RecordingError):
    """Writing a recording failed while the run was going (a full disk, a lost filesystem):
    the run failed, its input was fine."""


class RecordingExistsError(RecordingError):
    """The output store exists and overwriting was not asked for."""


class RecordingFormatError(RecordingError):
    """A path is not a brainsim store, has an unknown format version, or is half written."""
