"""Fixtures for the recording tests: a finished synthetic store written by one in-process rank."""

from __future__ import annotations

from pathlib import Path

import pytest
import recording_synthetic as synthetic

from brainsim.exchange import LocalCommunicator


@pytest.fixture(scope="module")
def complete_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("complete") / "run.zarr"
    synthetic.run(store, synthetic.STORE_STEPS, LocalCommunicator())
    return store


@pytest.fixture(scope="module")
def expected() -> dict[str, object]:
    return synthetic.expected(synthetic.STORE_STEPS)
