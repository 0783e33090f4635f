"""numba's cache of the kernels is dropped when any kernel source changes (the step loop inlines
kernels from other files, which numba's own check does not see)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import brainsim.kernels
from brainsim.kernels import drop_stale_cache


def _package(root: Path) -> Path:
    package = root / "kernels"
    (package / "__pycache__").mkdir(parents=True)
    (package / "loop.py").write_text("def run(): pass\n")
    (package / "delivery.py").write_text("MODE = 1\n")
    return package


def _cached(package: Path) -> list[str]:
    return sorted(p.name for p in (package / "__pycache__").iterdir() if p.suffix != ".sha256")


def test_a_change_to_any_source_drops_every_cached_kernel(tmp_path: Path) -> None:
    package = _package(tmp_path)
    assert not drop_stale_cache(package)  # nothing cached yet; the digest is written
    for name in ("loop.run-1.py311.nbi", "loop.run-1.py311.1.nbc", "loop.cpython-311.pyc"):
        (package / "__pycache__" / name).write_text("compiled")
    assert not drop_stale_cache(package)  # sources unchanged: the cache stays
    assert len(_cached(package)) == 3
    # A change to a file that only the loop's file inlines drops the loop's entries too.
    (package / "delivery.py").write_text("MODE = 2\n")
    assert drop_stale_cache(package)
    assert _cached(package) == ["loop.cpython-311.pyc"]
    assert not drop_stale_cache(package)


def test_the_installed_kernels_carry_the_digest_of_their_sources() -> None:
    package = Path(brainsim.kernels.__file__).parent
    assert not drop_stale_cache(package)
    assert (package / "__pycache__" / "brainsim-kernels.sha256").exists()


def test_a_stale_cache_in_numba_cache_dir_is_dropped_too(tmp_path: Path) -> None:
    """With NUMBA_CACHE_DIR numba keeps the kernels there, not in ``__pycache__``: cache files
    there compiled from other sources (as the digest beside them says) are dropped on import,
    before any kernel is loaded."""
    cache_root = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_root)}
    where = subprocess.run(
        [sys.executable, "-c",
         "from pathlib import Path; import brainsim.kernels as k; "
         "print(k.cache_directories(Path(k.__file__).parent)[-1])"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    cache = Path(where)
    assert cache_root in cache.parents  # numba's locator for the package, under the root
    assert (cache / "brainsim-kernels.sha256").exists()  # the import stamped the sources
    (cache / "brainsim-kernels.sha256").write_text("0" * 64)  # as if from older sources
    stale = cache / "loop.run_intervals-9999.py311.nbi"
    stale.write_text("compiled from older sources")
    subprocess.run(
        [sys.executable, "-c", "import brainsim.kernels"], env=env, check=True, timeout=120
    )
    assert not stale.exists()
    assert (cache / "brainsim-kernels.sha256").read_text() != "0" * 64
