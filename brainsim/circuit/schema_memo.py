"""Remember which documents passed the schema check, so that checking one again skips jsonschema.

Every process that runs a circuit checks it: each rank of a run, and the job service before it
queues the job. The schema check itself takes a few milliseconds, but importing jsonschema with
its dependencies (referencing, attrs, rpds, its format checkers) takes about 50 ms, a tenth of
a small run's whole process. Whether a document is valid under the schema depends on nothing
but the document and the schema, so the answer is kept on disk: an empty file named by the
SHA-256 of the schema and of the document's canonical JSON (sorted keys, no spaces), in
``valid-documents/`` of brainsim's cache directory. Only documents that passed are
remembered; a document with problems is checked, and its problems reported, every time.

The cache directory is brainsim's (:func:`brainsim.cachedir.cache_directory`). Like numba's
kernel cache it is trusted: whoever can write there can make a document skip the schema check
(the checks that follow it still run). Where it cannot be read or written the schema check
simply runs. The least recently used entries beyond :data:`MAX_ENTRIES` are deleted now and
then.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from brainsim.cachedir import cache_directory

__all__ = ["MAX_ENTRIES", "known_valid", "memo_key", "remember_valid"]

MAX_ENTRIES = 4096
"""Remembered documents kept; older ones are pruned when a new one is remembered."""

_FORMAT = b"brainsim schema memo 1\0"
"""Changes whenever what a key covers changes, so that older entries no longer match."""

_PRUNE_PREFIX = "00"
"""Pruning runs when a remembered key starts with this (one new entry in 256)."""


def _memo_directory() -> Path:
    return cache_directory() / "valid-documents"


def memo_key(document: Any, schema_bytes: bytes) -> str | None:
    """The key of ``document`` (JSON data) checked against the schema ``schema_bytes``;
    ``None`` for data that has no canonical JSON form (it is then always checked)."""
    try:
        text = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):
        return None
    digest = hashlib.sha256(_FORMAT)
    digest.update(_schema_digest(schema_bytes))
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@functools.cache
def _schema_digest(schema_bytes: bytes) -> bytes:
    return hashlib.sha256(schema_bytes).digest()


def known_valid(key: str) -> bool:
    """Whether the document of ``key`` passed the schema check before (and it was kept)."""
    try:
        os.utime(_memo_directory() / key)  # marks it recently used
    except OSError:
        return False
    return True


def remember_valid(key: str) -> None:
    """Remember that the document of ``key`` passed the schema check (best effort)."""
    directory = _memo_directory()
    with contextlib.suppress(OSError):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / key).touch()
        if key.startswith(_PRUNE_PREFIX):
            _prune(directory)


def _prune(directory: Path) -> None:
    """Delete the least recently used entries beyond :data:`MAX_ENTRIES`."""
    entries = []
    with os.scandir(directory) as found:
        for entry in found:
            with contextlib.suppress(OSError):
                entries.append((entry.stat().st_mtime_ns, entry.path))
    entries.sort(reverse=True)
    for _, path in entries[MAX_ENTRIES:]:
        with contextlib.suppress(OSError):
            os.unlink(path)
