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
def _environment(variable: str, value: str) -> Iterator[None]:
    """``variable`` is ``value`` while the context lasts."""
    previous = os.environ.get(variable)
    os.environ[variable] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[variable]
        else:
            os.environ[variable] = previous


@pytest.fixture(autouse=True, scope="session")
def _private_pool_dir() -> Iterator[None]:
    """Give the suite a pool directory of its own (short: socket paths are limited to about
    100 bytes), so that no run under test goes to a pool the developer has started."""
    directory = tempfile.mkdtemp(prefix="bsp-")
    try:
        with _environment("BRAINSIM_POOL_DIR", directory):
            yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Give the suite a brainsim cache directory of its own, so that every document the suite
    checks is checked against the schema at least once and every dataclass compiled (not
    answered from a developer's earlier runs: :mod:`brainsim.circuit.schema_memo`,
    :mod:`brainsim.dataclass_code`). It is in this session's temporary directory, which pytest
    removes in a later session: a test that ran the command line in this process saves the
    compiled dataclass methods there when the process exits, after the fixtures."""
    with _environment("BRAINSIM_CACHE_DIR", str(tmp_path_factory.mktemp("brainsim-cache"))):
        yield


@pytest.fixture(scope="session")
def nest_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference environment's python (``bench/.venv-ref``, with NEST), created and filled
    if needed; the pip log of an installation lands in this session's temporary directory."""
    log = tmp_path_factory.mktemp("refenv") / "refenv.log"
    return ensure_reference_env(REFERENCE_VENV, log)
