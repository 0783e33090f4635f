"""Compile the methods that dataclasses generate once per machine, not once in every process.

A dataclass gets its ``__init__``, ``__repr__``, ``__eq__``, ``__hash__`` and, when frozen,
``__setattr__`` and ``__delattr__`` from source text that the standard library's
:mod:`dataclasses` writes and then compiles with ``exec``. On CPython 3.11 that costs about
0.8 ms for each frozen, slotted class, and a run's process creates about 80 of them (the
circuit records, the models, the engine's and the recorder's records): about 80 ms of every
rank's start-up, most of it compiling the same text as the process before.

:func:`install` makes the ``exec`` of :mod:`dataclasses` look the compiled code up by its
source text, compiling only what is not there, exactly as ``exec`` would (the file name
``<string>``, no inherited ``__future__`` flags). The classes are the same as without it: only
the compilation is skipped. The code is kept in brainsim's cache directory
(:mod:`brainsim.cachedir`), in a folder named by the interpreter's cache tag, a file per module
that defines dataclasses, read when that module first defines one. When the process exits, the
file of each module for which it compiled anything is replaced by the code the module's
dataclasses used: importing a module defines all of its dataclasses, so the file of a module
that changed holds its current code only, and nothing accumulates. Each file starts with the
interpreter's bytecode magic number; one that is unreadable, damaged or from another version
counts as empty.

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

__all__ = ["CodeCache", "cache_folder", "install", "installed"]


def cache_folder() -> Path:
    """The folder of this interpreter's compiled dataclass methods, a file per module."""
    return cache_directory() / f"dataclass-code-{sys.implementation.cache_tag}"


class CodeCache:
    """Compiled code by source text, a file of ``folder`` per module (the module whose
    namespace the code runs in: the dataclass's), each read when the module first needs it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.known: dict[str, dict[str, CodeType]] = {}
        """Per file (:func:`_file_name`): what it held, and what was compiled here."""
        self.used: dict[str, dict[str, CodeType]] = {}
        """Per file: the code this process ran."""
        self.changed: set[str] = set()
        """The files this process compiled code for."""
        self.hits = 0
        self.compiled = 0

    def exec(self, source: Any, globals: dict[str, Any] | None = None, locals: Any = None) -> None:
        """``exec(source, globals, locals)``, with text compiled from the cache."""
        if globals is None:  # exec's default: the caller's namespaces
            caller = sys._getframe(1)
            globals = caller.f_globals
            locals = caller.f_locals if locals is None else locals
        if isinstance(source, str):
            name = _file_name(str(globals.get("__name__", "")))
            known = self.known.get(name)
            if known is None:
                known = self.known[name] = _read(self.folder / name)
            code = known.get(source)
            if code is None:
                code = known[source] = compile(source, "<string>", "exec", dont_inherit=True)
                self.changed.add(name)
                self.compiled += 1
            else:
                self.hits += 1
            self.used.setdefault(name, {})[source] = code
            source = code
        builtins.exec(source, globals, locals)  # noqa: S102 (what dataclasses executes)

    def save(self) -> None:
        """Write the file of each module this process compiled code for, with the code the
        process ran in it: importing a module defines all its dataclasses, so what an older
        version of the module needed is dropped (files replaced atomically; best effort)."""
        for name in sorted(self.changed):
            path = self.folder / name
            temporary = path.with_name(f"{name}.{os.getpid()}.partial")
            with contextlib.suppress(OSError, ValueError):
                self.folder.mkdir(parents=True, exist_ok=True)
                temporary.write_bytes(MAGIC_NUMBER + marshal.dumps(self.used[name]))
                temporary.replace(path)
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        self.changed.clear()


def _file_name(module: str) -> str:
    """The file of ``module``'s code; modules whose names are not plain dotted identifiers
    share ``_other.marshal``."""
    safe = module.replace(".", "").replace("_", "").isalnum()
    return f"{module if safe else '_other'}.marshal"


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
    :func:`cache_folder`, saved when the process exits; return it (the one already installed,
    if any). ``None``, and nothing changed, where :mod:`dataclasses` does not compile its
    methods with ``exec`` (another Python implementation or version)."""
    global _installed
    if _installed is not None:
        return _installed
    if "exec" in vars(dataclasses) or not _compiles_with_exec():
        return None
    cache = CodeCache(cache_folder())
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
