"""brainsim.kernels: the numba kernels of the engine.

numba's on-disk cache keys a compiled function on its own source file only, but the step loop
(:mod:`brainsim.kernels.loop`) inlines kernels from the other files of this package: after a
change to one of them alone, the cache would still hold a step loop built from the old code
(wrong results or a crash). So whenever any source file of this package changes, its cache
entries are dropped before a kernel is loaded; a digest of the sources is kept beside them.
That holds wherever numba keeps them: ``__pycache__`` here, or the directory numba uses instead
(``NUMBA_CACHE_DIR``, or a per-user one when this package is not writable), see
:func:`cache_directories`.

Importing the package also makes numba load these kernels from its cache without first
refreshing its compiler (:func:`load_cached_kernels_without_refresh`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

_STAMP = "brainsim-kernels.sha256"


def drop_stale_cache(package: Path, cache: Path | None = None) -> bool:
    """Delete numba's cache files in ``cache`` (by default ``package/__pycache__``) unless they
    were compiled from the current ``package/*.py`` (as the digest file there says); return
    whether any were dropped.

    Safe when several processes (MPI ranks) start at once: each either finds the new digest or
    deletes and writes it again. A read-only directory is left alone.
    """
    digest = hashlib.sha256()
    for source in sorted(package.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    cache = package / "__pycache__" if cache is None else cache
    stamp = cache / _STAMP
    with contextlib.suppress(OSError):
        if stamp.read_text(encoding="ascii") == digest.hexdigest():
            return False
    dropped = False
    with contextlib.suppress(OSError):
        cache.mkdir(exist_ok=True)
        for entry in cache.iterdir():
            if entry.suffix in (".nbi", ".nbc"):
                entry.unlink(missing_ok=True)
                dropped = True
        fresh = cache / f"{_STAMP}.{os.getpid()}"
        fresh.write_text(digest.hexdigest(), encoding="ascii")
        fresh.replace(stamp)
    return dropped


def _probe() -> None:
    """A function of this package's directory for numba's cache locators (which read only its
    line number)."""


def cache_directories(package: Path) -> list[Path]:
    """Where numba keeps the cached kernels of ``package``: ``__pycache__`` and, if numba
    would put them elsewhere, the directory its own locators choose (``NUMBA_CACHE_DIR``, or a
    per-user directory when the package is not writable)."""
    found = [package / "__pycache__"]
    try:
        from numba.core.caching import CacheImpl

        locator_classes: list[Any] = list(getattr(CacheImpl, "_locator_classes", []))
        for locator_class in locator_classes:
            locator = locator_class.from_function(_probe, str(package / "loop.py"))
            if locator is not None:
                found.append(Path(locator.get_cache_path()))
                break
    except (ImportError, AttributeError, OSError, TypeError):  # another numba: __pycache__
        pass
    return list(dict.fromkeys(found))


def load_cached_kernels_without_refresh() -> bool:
    """Make numba load this package's cached kernels without refreshing its compiler first;
    return whether that is in place (False with a numba whose internals differ: it then
    loads them as it always does).

    Before loading any function from its on-disk cache, numba "refreshes" its target context:
    it imports and installs every typing and lowering registry it has (linear algebra, typed
    containers, random generators, jitclass, ...) and starts its runtime: 0.35 s on its own
    after ``import numba``; a warm run starts about 0.1 s sooner without it (a run imports
    some of those modules anyway). Loading compiled machine code needs only
    the runtime (its functions are the symbols cached code links against); the registries are
    needed to type and lower new code, and numba's compiler refreshes the context itself
    before every compilation. So for the functions of this package it starts the runtime and
    loads; every other function is loaded as numba does.
    """
    try:
        from numba.core.caching import Cache
        from numba.core.runtime.nrt import rtsys
    except ImportError:
        return False
    original = Cache.load_overload
    if getattr(original, "_brainsim_fast", False):
        return True
    if not all(
        hasattr(Cache, name) for name in ("_load_overload", "_guard_against_spurious_io_errors")
    ):
        return False

    def load_overload(self: Any, sig: Any, target_context: Any) -> Any:
        module = getattr(getattr(self, "_py_func", None), "__module__", None) or ""
        if not module.startswith("brainsim.kernels."):
            return original(self, sig, target_context)  # type: ignore[no-untyped-call]
        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)

    load_overload._brainsim_fast = True  # type: ignore[attr-defined]
    setattr(Cache, "load_overload", load_overload)  # noqa: B010 (a method, replaced)
    return True


for _cache in cache_directories(Path(__file__).parent):
    drop_stale_cache(Path(__file__).parent, _cache)
load_cached_kernels_without_refresh()
