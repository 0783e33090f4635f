"""Fixtures for the analysis tests: finished recordings shared by the session."""

from __future__ import annotations

from pathlib import Path

import analysis_decoding
import analysis_synthetic
import pytest


@pytest.fixture(scope="session")
def poisson_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analysis_synthetic.write_store(tmp_path_factory.mktemp("analysis") / "poisson.zarr")


@pytest.fixture(scope="session")
def decoding_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run whose samples each drive one group of neurons (see analysis_decoding)."""
    return analysis_decoding.write_store(tmp_path_factory.mktemp("decoding"))
