"""Fixtures for the analysis tests: one finished recording shared by the session."""

from __future__ import annotations

from pathlib import Path

import analysis_synthetic
import pytest


@pytest.fixture(scope="session")
def poisson_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analysis_synthetic.write_store(tmp_path_factory.mktemp("analysis") / "poisson.zarr")
