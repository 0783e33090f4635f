"""brainsim's per-user cache directory: where what one process works out is kept for the next.

``$BRAINSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/brainsim``, else ``~/.cache/brainsim``. It holds
the documents that passed the schema check (:mod:`brainsim.circuit.schema_memo`) and the
compiled methods of dataclasses (:mod:`brainsim.dataclass_code`). Deleting it loses nothing but
time. Like numba's kernel cache (kept elsewhere, see :mod:`brainsim.kernels`) it is trusted:
whoever can write to it can change what brainsim's processes do.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_directory"]


def cache_directory() -> Path:
    """The per-user cache directory (see the module's docstring); it may not exist yet."""
    given = os.environ.get("BRAINSIM_CACHE_DIR")
    if given:
        return Path(given)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "brainsim"
