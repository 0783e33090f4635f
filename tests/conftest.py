"""Settings for the whole suite."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_pool_dir() -> Iterator[None]:
    """Give the suite a pool directory of its own (short: socket paths are limited to about
    100 bytes), so that no run under test goes to a pool the developer has started."""
    directory = tempfile.mkdtemp(prefix="bsp-")
    previous = os.environ.get("BRAINSIM_POOL_DIR")
    os.environ["BRAINSIM_POOL_DIR"] = directory
    try:
        yield
    finally:
        if previous is None:
            del os.environ["BRAINSIM_POOL_DIR"]
        else:
            os.environ["BRAINSIM_POOL_DIR"] = previous
        shutil.rmtree(directory, ignore_errors=True)
