"""brainsim.kernels: the numba kernels of the engine.

numba's on-disk cache keys a compiled function on its own source file only, but the step loop
(:mod:`brainsim.kernels.loop`) inlines kernels from the other files of this package: after a
change to one of them alone, the cache would still hold a step loop built from the old code
(wrong results or a crash). So whenever any source file of this package changes, its cache
entries are dropped before a kernel is loaded; a digest of the sources is kept beside them.
That holds wherever numba keeps them: ``__pycache__`` here, or the directory numba uses instead
(``NUMBA_CACHE_DIR``, or a per-user one when this package is not writable), see
:func:`cache_directories`.
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


for _cache in cache_directories(Path(__file__).parent):
    drop_stale_cache(Path(__file__).parent, _cache)
