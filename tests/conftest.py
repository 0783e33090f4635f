"""Settings for the whole suite."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.refenv import ensure_reference_env
from tests.reference import REFERENCE_VENV


@contextlib.contextmanager
def _private_directory(variable: str, prefix: str) -> Iterator[None]:
    """``variable`` names a new empty directory while the context lasts."""
    directory = tempfile.mkdtemp(prefix=prefix)
    previous = os.environ.get(variable)
    os.environ[variable] = directory
    try:
        yield
    finally:
        if previous is None:
            del os.environ[variable]
        else:
            os.environ[variable] = previous
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _private_pool_dir() -> Iterator[None]:
    """Give the suite a pool directory of its own (short: socket paths are limited to about
    100 bytes), so that no run under test goes to a pool the developer has started."""
    with _private_directory("BRAINSIM_POOL_DIR", "bsp-"):
        yield


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir() -> Iterator[None]:
    """Give the suite a brainsim cache directory of its own, so that every document the suite
    checks is checked against the schema at least once (not answered from a developer's
    earlier runs, :mod:`brainsim.circuit.schema_memo`)."""
    with _private_directory("BRAINSIM_CACHE_DIR", "bsc-"):
        yield


@pytest.fixture(scope="session")
def nest_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference environment's python (``bench/.venv-ref``, with NEST), created and filled
    if needed; the pip log of an installation lands in this session's temporary directory."""
    log = tmp_path_factory.mktemp("refenv") / "refenv.log"
    return ensure_reference_env(REFERENCE_VENV, log)
