"""Compile the methods that dataclasses generate once per machine, not once in every process.

A dataclass gets its ``__init__``, ``__repr__``, ``__eq__``, ``__hash__`` and, when frozen,
``__setattr__`` and ``__delattr__`` from source text that the standard library's
:mod:`dataclasses` writes and then compiles with ``exec``. On CPython 3.11 that costs about
0.8 ms for each frozen, slotted class, and a run's process creates about 80 of them (the
circuit records, the models, the engine's and the recorder's records): about 80 ms of every
rank's start-up, most of it compiling the same text as the process before.

:func:`install` makes the ``exec`` of :mod:`dataclasses` look the compiled code up by its
source text in a file of brainsim's cache directory (:mod:`brainsim.cachedir`), compiling only
what is not there, exactly as ``exec`` would (the file name ``<string>``, no inherited
``__future__`` flags); what was compiled is added to the file when the process exits. The
classes are the same as without it: only the compilation is skipped. The file is named by the
interpreter's cache tag and starts with its bytecode magic number, so another Python version
never reads it; an unreadable or damaged file counts as empty. It keeps at most
:data:`MAX_ENTRIES` functions.

The command line installs it for its own process (``brainsim run`` and the other built-in
commands); importing brainsim as a library changes nothing.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import marshal
import os
import sys
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from types import CodeType
from typing import Any

from brainsim.cachedir import cache_directory

__all__ = ["MAX_ENTRIES", "CodeCache", "install", "installed"]

MAX_ENTRIES = 4096
"""Most compiled functions the file keeps (a run needs about 500)."""


def cache_file() -> Path:
    """The file of this interpreter's compiled dataclass methods."""
    return cache_directory() / f"dataclass-code-{sys.implementation.cache_tag}.marshal"


class CodeCache:
    """Compiled code by source text, read from and written back to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.codes: dict[str, CodeType] = _read(path)
        self.added: dict[str, CodeType] = {}
        self.hits = 0

    def exec(self, source: Any, globals: dict[str, Any] | None = None, locals: Any = None) -> None:
        """``exec(source, globals, locals)``, with text compiled from the cache."""
        if globals is None:  # exec's default: the caller's namespaces
            caller = sys._getframe(1)
            globals = caller.f_globals
            locals = caller.f_locals if locals is None else locals
        if isinstance(source, str):
            code = self.codes.get(source)
            if code is None:
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self.codes[source] = self.added[source] = code
            else:
                self.hits += 1
            source = code
        builtins.exec(source, globals, locals)  # noqa: S102 (what dataclasses executes)

    def save(self) -> None:
        """Add what this process compiled to the file (replaced atomically; best effort)."""
        if not self.added:
            return
        merged = {**_read(self.path), **self.added}
        kept = dict(list(merged.items())[-MAX_ENTRIES:])
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
        with contextlib.suppress(OSError, ValueError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(MAGIC_NUMBER + marshal.dumps(kept))
            temporary.replace(self.path)
            self.added = {}
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, CodeType]:
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    if not data.startswith(MAGIC_NUMBER):
        return {}
    try:
        loaded = marshal.loads(data[len(MAGIC_NUMBER) :])  # noqa: S302 (the trusted cache)
    except (ValueError, EOFError, TypeError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, CodeType)}


_installed: CodeCache | None = None


def installed() -> CodeCache | None:
    """The cache :func:`install` put in place in this process, if any."""
    return _installed


def install() -> CodeCache | None:
    """Route the ``exec`` of :mod:`dataclasses` through a :class:`CodeCache` of
    :func:`cache_file`, saved when the process exits; return it (the one already installed,
    if any). ``None``, and nothing changed, where :mod:`dataclasses` does not compile its
    methods with ``exec`` (another Python implementation or version)."""
    global _installed
    if _installed is not None:
        return _installed
    if "exec" in vars(dataclasses) or not _compiles_with_exec():
        return None
    cache = CodeCache(cache_file())
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]
    atexit.register(cache.save)
    _installed = cache
    return cache


def _compiles_with_exec() -> bool:
    """Whether dataclasses' generated methods come from the builtin ``exec`` (its module's
    code names ``exec`` as a global, which a module attribute then overrides)."""
    return sys.implementation.name == "cpython" and any(
        "exec" in function.__code__.co_names
        for function in vars(dataclasses).values()
        if isinstance(function, type(install))
    )
