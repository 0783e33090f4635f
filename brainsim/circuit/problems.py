"""Validation problems: what is wrong with a circuit document, located by a dotted field path.

Every stage of validation (reading, parameters, schema, semantics) records its findings in one
:class:`ProblemLog`, which keeps them all (validation reports every problem, not the first),
drops the follow-on noise under a value that is already reported, and sorts the result into
document order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_PROBLEMS",
    "MAX_STORED",
    "Path",
    "Problem",
    "ProblemLog",
    "describe",
    "format_path",
]

Path = tuple[str | int, ...]
"""A location in a document: mapping keys and list indices from the root."""

MAX_PROBLEMS = 200
"""At most this many problems are reported; one more entry says how many were left out."""

MAX_STORED = 10 * MAX_PROBLEMS
"""Problems kept for sorting into document order; later ones are only counted."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem.

    ``path`` is the dotted field path (``"projections.IE.delay_ms"``, list items as
    ``"stimuli.bg.targets[1]"``; ``""`` is the document as a whole) and ``message`` says what
    was expected and what was found.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(document)'}: {self.message}"


def format_path(path: Path) -> str:
    """``("populations", "E", "size")`` -> ``"populations.E.size"``; list indices as ``[i]``."""
    text = ""
    for item in path:
        if isinstance(item, int):
            text += f"[{item}]"
        else:
            text += f".{item}" if text else item
    return text


def describe(value: Any) -> str:
    """A short human rendering of a document value for messages (``'abc'``, ``1.5``, ``a list``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a value of type {type(value).__name__}"


def _prefixes(path: Path) -> list[Path]:
    """``path`` and every ancestor of it, the document itself (``()``) first."""
    return [path[:length] for length in range(len(path) + 1)]


class ProblemLog:
    """Collects problems from every validation stage.

    ``add(..., settles=True)`` marks a value as reported in full: later problems at or under
    that path (e.g. a schema type error on a parameter reference that could not be resolved)
    are follow-on noise and are dropped, but they still make the path unclean so later stages
    skip it. Lookups are by path prefix, so documents with very many problems stay fast; only
    the first :data:`MAX_STORED` problems found are kept for display.
    """

    def __init__(self) -> None:
        self._found: list[tuple[Path, str]] = []
        self._seen: set[tuple[Path, str]] = set()
        self._hidden = 0
        self._settled: set[Path] = set()
        self._unclean: set[Path] = set()
        self._all_unclean = False
        self._stop_message = ""

    def add(self, path: Path, message: str, *, settles: bool = False) -> None:
        """Record a problem at ``path`` (duplicates of the same path and message are merged)."""
        self._unclean.update(_prefixes(path))
        if any(prefix in self._settled for prefix in _prefixes(path)):
            return
        if settles:
            self._settled.add(path)
        key = (path, message)
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self._found) < MAX_STORED:
            self._found.append(key)
        else:
            self._hidden += 1

    def mark_invalid(self, path: Path) -> None:
        """Mark ``path`` invalid because of a problem reported elsewhere (nothing is shown for it,
        and problems under it are dropped as follow-on noise)."""
        self._unclean.update(_prefixes(path))
        self._settled.add(path)

    def stop(self, message: str) -> None:
        """Checking stopped early (``message`` says why, shown last): every path is unclean now,
        so later stages must not trust any part of the document."""
        self._all_unclean = True
        self._stop_message = message

    def is_clean(self, path: Path) -> bool:
        """True when nothing was found at or under ``path``."""
        return not self._all_unclean and path not in self._unclean

    def __bool__(self) -> bool:
        return bool(self._unclean) or self._all_unclean

    def problems(self, document: Any = None) -> list[Problem]:
        """The problems in the order of ``document`` (in the order found without one), capped
        at :data:`MAX_PROBLEMS`."""
        ordered = self._found
        if document is not None:
            positions = _Positions(document)
            ordered = sorted(ordered, key=lambda found: positions.of(found[0]))
        shown = [Problem(format_path(path), message) for path, message in ordered]
        hidden = self._hidden + max(0, len(shown) - MAX_PROBLEMS)
        if hidden:
            shown = [*shown[:MAX_PROBLEMS], Problem("", f"{hidden} more problem(s) not shown")]
        if self._stop_message:
            shown.append(Problem("", self._stop_message))
        return shown


class _Positions:
    """Sort keys of paths: the index of every step in the document (missing ones sort last)."""

    def __init__(self, document: Any) -> None:
        self._document = document
        self._key_indices: dict[int, dict[Any, int]] = {}

    def of(self, path: Path) -> tuple[int, ...]:
        key: list[int] = []
        node = self._document
        for item in path:
            index = _MISSING
            if isinstance(node, Mapping) and item in node:
                index = self._indices(node)[item]
                node = node[item]
            elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
                index = item
                node = node[item]
            else:
                node = None
            key.append(index)
        return tuple(key)

    def _indices(self, mapping: Mapping[Any, Any]) -> dict[Any, int]:
        found = self._key_indices.get(id(mapping))
        if found is None:
            found = {key: index for index, key in enumerate(mapping)}
            self._key_indices[id(mapping)] = found
        return found


_MISSING = 2**62
