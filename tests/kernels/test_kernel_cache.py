"""numba's cache of the kernels is dropped when any kernel source changes (the step loop inlines
kernels from other files, which numba's own check does not see)."""

from __future__ import annotations

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
