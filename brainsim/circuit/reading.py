"""Read circuit text (YAML or JSON) or a mapping into plain JSON data, safely and within limits.

Circuits arrive from users and from the network, so reading is defensive:

- the text is at most :data:`MAX_DOCUMENT_BYTES` and must be UTF-8;
- JSON (text starting with ``{`` or ``[``) is read by :mod:`json`; anything else, and JSON that
  fails (flow-style YAML starts the same way), as YAML: the events of ``yaml.parse`` (from the
  C parser when available) are built into Python values here, without recursion, with YAML 1.2
  core scalars (``yes``/``on`` are strings, ``1e3`` is a float), the standard tags only, ``<<``
  merge keys and one document;
- anchors are resolved when their node ends (no recursive aliases) and each alias counts as a
  copy, so alias bombs stop at :data:`MAX_NODES` values;
- nesting deeper than :data:`MAX_DEPTH`, duplicate keys, non-string keys, NaN/inf, integers
  beyond 64 bits and non-JSON values (from a mapping given directly) are problems.

The result is a fresh tree of ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and
``None``, safe for JSON Schema validation; problems found on the way are in the log, and
:class:`DocumentError` means the input could not be read at all.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import yaml
from yaml import events

from brainsim.circuit.problems import Path, ProblemLog, describe

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_NODES",
    "DocumentError",
    "parse_text",
    "to_json_data",
]

MAX_DOCUMENT_BYTES = 10 * 2**20
"""Largest accepted circuit text (10 MiB)."""

MAX_DEPTH = 50
"""Deepest accepted nesting of mappings and lists (valid circuits need fewer than 10)."""

MAX_NODES = 1_000_000
"""Most values a document may hold, counting every alias as a full copy."""

_MAX_INT_DIGITS = 40
_INT_LIMIT = 2**63

_YAML_EVENT_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CORE_TAG = "tag:yaml.org,2002:"
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


class DocumentError(Exception):
    """The input cannot be read as a document at all (syntax, size, encoding, limits)."""


class _DuplicateKeys(dict[Any, Any]):
    """A mapping that remembers keys it saw more than once (the last value wins)."""

    duplicates: list[Any]


def parse_text(source: str | bytes) -> Any:
    """Parse YAML or JSON text into Python values (duplicates are kept for :func:`to_json_data`).

    Raises :class:`DocumentError` with a message naming the line and column where possible.
    """
    if len(source) > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            f"the document is {len(source):,} bytes long; at most {MAX_DOCUMENT_BYTES:,} allowed"
        )
    if isinstance(source, bytes):
        try:
            text = source.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise DocumentError(
                f"the document is not UTF-8 text (byte {source[error.start]:#04x} at offset "
                f"{error.start})"
            ) from None
    else:
        text = source
    if text.lstrip()[:1] in ("{", "["):
        try:
            return _parse_json(text)
        except DocumentError as json_error:
            try:
                return _parse_yaml(text)
            except DocumentError as yaml_error:
                raise DocumentError(f"{json_error}; read as YAML: {yaml_error}") from None
    return _parse_yaml(text)


def _parse_json(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping = _DuplicateKeys()
        mapping.duplicates = []
        for key, value in items:
            if key in mapping:
                mapping.duplicates.append(key)
            mapping[key] = value
        return mapping

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise DocumentError(f"the document nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:
        raise DocumentError(f"invalid JSON: {error}") from None


def _parse_yaml(text: str) -> Any:
    builder = _YamlBuilder()
    try:
        for event in yaml.parse(text, Loader=_YAML_EVENT_LOADER):
            builder.feed(event)
    except yaml.MarkedYAMLError as error:
        raise DocumentError(_yaml_message(error)) from None
    except yaml.YAMLError as error:
        raise DocumentError(f"invalid YAML: {error}") from None
    return builder.result()


def _yaml_message(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = error.problem or error.context or "syntax error"
    return f"invalid YAML{where}: {what}"


class _Collection:
    """A mapping or list under construction, with what is needed to finish it."""

    __slots__ = ("anchor", "items", "key", "nodes", "start")

    def __init__(self, start: events.CollectionStartEvent) -> None:
        self.start = start
        self.anchor = start.anchor
        self.items: list[Any] = []
        self.key: Any = _NO_KEY
        self.nodes = 1


_NO_KEY = object()


class _YamlBuilder:
    """Turns a stream of YAML events into Python values with an explicit stack (no recursion)."""

    def __init__(self) -> None:
        self._stack: list[_Collection] = []
        self._anchors: dict[str, tuple[Any, int]] = {}
        self._nodes = 0
        self._documents = 0
        self._result: Any = None

    def result(self) -> Any:
        return self._result

    def feed(self, event: events.Event) -> None:
        if isinstance(event, events.DocumentStartEvent):
            self._documents += 1
            if self._documents > 1:
                raise DocumentError(_at(event, "expected one document, found a second one"))
        elif isinstance(event, events.MappingStartEvent | events.SequenceStartEvent):
            self._start(event)
        elif isinstance(event, events.MappingEndEvent | events.SequenceEndEvent):
            collection = self._stack.pop()
            value = (
                self._finish_mapping(collection)
                if isinstance(collection.start, events.MappingStartEvent)
                else collection.items
            )
            self._add(value, collection.anchor, collection.nodes, event)
        elif isinstance(event, events.ScalarEvent):
            self._count(1, event)
            self._add(_scalar(event), event.anchor, 1, event)
        elif isinstance(event, events.AliasEvent):
            if event.anchor not in self._anchors:
                raise DocumentError(
                    _at(
                        event,
                        f"unknown alias *{event.anchor} (an anchor must be defined before its "
                        "aliases, and not used inside itself)",
                    )
                )
            value, nodes = self._anchors[event.anchor]
            self._count(nodes, event)
            self._add(value, None, nodes, event)

    def _start(self, event: events.CollectionStartEvent) -> None:
        allowed = "map" if isinstance(event, events.MappingStartEvent) else "seq"
        if event.tag not in (None, "!", _CORE_TAG + allowed):
            raise DocumentError(_at(event, f"unsupported tag {event.tag}"))
        if len(self._stack) >= MAX_DEPTH:
            raise DocumentError(_at(event, f"the document nests deeper than {MAX_DEPTH} levels"))
        self._count(1, event)
        self._stack.append(_Collection(event))

    def _count(self, nodes: int, event: events.Event) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise DocumentError(
                _at(
                    event,
                    f"the document holds more than {MAX_NODES:,} values (aliases count as copies)",
                )
            )

    def _add(self, value: Any, anchor: str | None, nodes: int, event: events.Event) -> None:
        if anchor is not None:
            self._anchors[anchor] = (value, nodes)
        if not self._stack:
            self._result = value
            return
        parent = self._stack[-1]
        parent.nodes += nodes
        if isinstance(parent.start, events.SequenceStartEvent):
            parent.items.append(value)
        elif parent.key is _NO_KEY:
            parent.key = (value, event)
        else:
            parent.items.append((parent.key, value))
            parent.key = _NO_KEY

    def _finish_mapping(self, collection: _Collection) -> _DuplicateKeys:
        """Build the dict: own keys win over ``<<`` merges, which apply in place, first wins."""
        own: set[Any] = set()
        duplicates: list[Any] = []
        for (key, key_event), _ in collection.items:
            if _is_merge_key(key, key_event):
                continue
            if not _hashable(key):
                raise DocumentError(_at(key_event, "a mapping key must be a scalar"))
            if key in own:
                duplicates.append(key)
            own.add(key)
        mapping = _DuplicateKeys()
        mapping.duplicates = duplicates
        for (key, key_event), value in collection.items:
            if _is_merge_key(key, key_event):
                for merged in _merge_sources(value, key_event):
                    for merged_key, merged_value in merged.items():
                        if merged_key not in own and merged_key not in mapping:
                            mapping[merged_key] = merged_value
            else:
                mapping[key] = value
        return mapping


def _is_merge_key(key: Any, key_event: events.Event) -> bool:
    return (
        key == "<<"
        and isinstance(key_event, events.ScalarEvent)
        and key_event.implicit[0]
        and key_event.tag is None
    )


def _merge_sources(value: Any, key_event: events.Event) -> Iterator[dict[Any, Any]]:
    sources = value if isinstance(value, list) else [value]
    for source in sources:
        if not isinstance(source, dict):
            raise DocumentError(_at(key_event, "a << merge key needs a mapping or list of them"))
        yield source


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _at(event: events.Event, message: str) -> str:
    mark = event.start_mark
    if mark is None:
        return f"invalid YAML: {message}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {message}"


def _scalar(event: events.ScalarEvent) -> Any:
    """Resolve a scalar with the YAML 1.2 core schema (quoted scalars are strings)."""
    text = event.value
    tag = event.tag
    if tag in (None, "!") and not event.implicit[0]:
        return text
    if tag is None:
        for resolve in (_null, _bool, _int, _float):
            found, value = resolve(text, event)
            if found:
                return value
        return text
    resolve_tagged = _TAGGED.get(tag.removeprefix(_CORE_TAG)) if tag.startswith(_CORE_TAG) else None
    if resolve_tagged is None:
        raise DocumentError(_at(event, f"unsupported tag {tag}"))
    found, value = resolve_tagged(text, event)
    if not found:
        raise DocumentError(_at(event, f"{text!r} is not a valid {tag.removeprefix(_CORE_TAG)}"))
    return value


def _str(text: str, event: events.ScalarEvent) -> tuple[bool, Any]:
    return True, text


def _null(text: str, event: events.ScalarEvent) -> tuple[bool, Any]:
    return (True, None) if _NULL.fullmatch(text) else (False, None)


def _bool(text: str, event: events.ScalarEvent) -> tuple[bool, Any]:
    return (True, text.lower() == "true") if _BOOL.fullmatch(text) else (False, None)


def _int(text: str, event: events.ScalarEvent) -> tuple[bool, Any]:
    if not _INT.fullmatch(text):
        return False, None
    if len(text) > _MAX_INT_DIGITS:
        raise DocumentError(_at(event, f"integer {text[:20]}... has too many digits"))
    if text.startswith(("0o", "0x")):
        return True, int(text[2:], 8 if text[1] == "o" else 16)
    return True, int(text, 10)


def _float(text: str, event: events.ScalarEvent) -> tuple[bool, Any]:
    if not _FLOAT.fullmatch(text):
        return False, None
    lowered = text.lower()
    if lowered.endswith((".inf", ".nan")):
        value = math.inf if "inf" in lowered else math.nan
        return True, -value if lowered.startswith("-") else value
    return True, float(text)


_TAGGED: Mapping[str, Callable[[str, events.ScalarEvent], tuple[bool, Any]]] = {
    "str": _str,
    "null": _null,
    "bool": _bool,
    "int": _int,
    "float": _float,
}


def to_json_data(value: Any, log: ProblemLog) -> Any:
    """A fresh JSON-compatible copy of ``value``; what cannot be copied is a problem.

    Bad values (NaN, inf, out-of-range integers, non-JSON types) become ``None`` and settle
    their path; entries with non-string keys are left out. Raises :class:`DocumentError` when
    the data nests deeper than :data:`MAX_DEPTH` or holds more than :data:`MAX_NODES` values.
    """
    counter = [0]
    return _copy(value, (), log, counter)


def _copy(value: Any, path: Path, log: ProblemLog, counter: list[int]) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise DocumentError(f"the document holds more than {MAX_NODES:,} values")
    if len(path) > MAX_DEPTH:
        raise DocumentError(f"the document nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, Mapping):
        return _copy_mapping(value, path, log, counter)
    if isinstance(value, list | tuple):
        return [_copy(item, (*path, index), log, counter) for index, item in enumerate(value)]
    if isinstance(value, numbers.Integral):
        number = int(value)
        if abs(number) >= _INT_LIMIT:
            log.add(
                path,
                f"integer out of range: |x| must be < 2**63, got one of {number.bit_length()} bits",
                settles=True,
            )
            return None
        return number
    if isinstance(value, numbers.Real):
        real = float(value)
        if not math.isfinite(real):
            log.add(path, f"must be a finite number, got {real}", settles=True)
            return None
        return real
    log.add(
        path, f"unsupported value: {describe(value)} (only JSON values are allowed)", settles=True
    )
    return None


def _copy_mapping(
    value: Mapping[Any, Any], path: Path, log: ProblemLog, counter: list[int]
) -> dict[str, Any]:
    copied: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            log.add(path, f"keys must be strings, got {describe(key)} (quote it)")
            continue
        copied[key] = _copy(item, (*path, key), log, counter)
    for key in getattr(value, "duplicates", ()):
        if isinstance(key, str):
            log.add((*path, key), f"duplicate key {key!r} (each key may appear once)")
    return copied
