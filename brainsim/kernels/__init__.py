"""brainsim.kernels: the numba kernels of the engine.

numba's on-disk cache keys a compiled function on its own source file only, but the step loop
(:mod:`brainsim.kernels.loop`) inlines kernels from the other files of this package: after a
change to one of them alone, the cache would still hold a step loop built from the old code
(wrong results or a crash). So whenever any source file of this package changes, its cache
entries are dropped before a kernel is loaded; a digest of the sources is kept beside them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

_STAMP = "brainsim-kernels.sha256"


def drop_stale_cache(package: Path) -> bool:
    """Delete numba's cache files in ``package/__pycache__`` unless they were compiled from the
    current ``package/*.py`` (as the digest file there says); return whether any were dropped.

    Safe when several processes (MPI ranks) start at once: each either finds the new digest or
    deletes and writes it again. A read-only install is left alone.
    """
    digest = hashlib.sha256()
    for source in sorted(package.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    cache = package / "__pycache__"
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


drop_stale_cache(Path(__file__).parent)
