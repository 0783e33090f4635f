"""numba's cache of the kernels is dropped when any kernel source changes (the step loop inlines
kernels from other files, which numba's own check does not see)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import brainsim.kernels
from brainsim.kernels import drop_stale_cache
from brainsim.kernels.rng import philox_words_ref


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


_LOAD_PROBE = """
import json, sys
import numpy as np
from numba.core import base

refreshes = []
original = base.BaseContext.refresh
def counted(self):
    refreshes.append(1)
    return original(self)
base.BaseContext.refresh = counted

import numba
from brainsim.kernels.rng import philox_words
from brainsim.kernels.delivery import encode_spikes

words = philox_words(7, 3, 11, 5, 1)
keys = np.zeros(4, np.int64)
encode_spikes(keys, 1, np.array([4, 9], np.int64), 2, 20)
loaded = len(refreshes)

sys.path.insert(0, sys.argv[1])
import outsider  # a cached function of another package: numba's own loading
outside = outsider.double(np.arange(3.0)).tolist()
after_outsider = len(refreshes)

@numba.njit
def fresh(n):  # compiling new code afterwards: the compiler refreshes as always
    d = {1: 2.0}
    return np.linalg.norm(np.ones(n)) + d[1]
print(json.dumps({"words": [int(w) for w in words], "keys": keys.tolist(),
                  "loaded": loaded, "outside": outside, "after_outsider": after_outsider,
                  "fresh": fresh(4)}))
"""


def test_cached_kernels_load_without_a_compiler_refresh(tmp_path: Path) -> None:
    """A warm process loads this package's kernels from the cache without numba's context
    refresh (every registry imported and installed: about a third of a warm run's start), and
    gets the same results as the process that compiled them; another package's cached
    function is still loaded as numba does, and new code still compiles afterwards."""
    (tmp_path / "outsider.py").write_text(
        "import numba\n\n@numba.njit(cache=True)\ndef double(x):\n    return 2 * x\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    runs = [
        subprocess.run(
            [sys.executable, "-c", _LOAD_PROBE, str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    compiled, warm = (json.loads(run.strip().splitlines()[-1]) for run in runs)
    assert compiled["loaded"] > 0  # the first process compiled: the compiler refreshed
    assert warm["loaded"] == 0  # the second loaded both kernels without a refresh
    assert warm["after_outsider"] > 0  # numba's own path for other packages' functions
    for key in ("words", "keys", "outside", "fresh"):
        assert warm[key] == compiled[key]
    assert warm["words"] == list(philox_words_ref(7, 3, 11, 5, 1))
    assert warm["keys"] == [0, 24, 29, 0]
    assert warm["outside"] == [0.0, 2.0, 4.0]
    assert warm["fresh"] == 4.0
