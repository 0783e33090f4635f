"""Settings for the whole suite."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.refenv import ensure_reference_env
from tests.reference import REFERENCE_VENV


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


@pytest.fixture(scope="session")
def nest_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference environment's python (``bench/.venv-ref``, with NEST), created and filled
    if needed; the pip log of an installation lands in this session's temporary directory."""
    log = tmp_path_factory.mktemp("refenv") / "refenv.log"
    return ensure_reference_env(REFERENCE_VENV, log)
