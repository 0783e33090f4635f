"""The server's address file appears complete: a process that starts the server and waits for
the file (the tests' and the bench's ``launch_server``, scripts, supervisors) reads it as soon
as it exists, so a file created empty and then filled could be read as an empty address (it
once was: a restarted server's client connected to ``''``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import services.server
from services.server import write_address_file


def test_the_address_file_appears_only_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "address"
    target.write_text("127.0.0.1:1111\n")  # a previous server's
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(source: str | Path, destination: str | Path) -> None:
        # At the rename the file holds the whole address, and the target still the old one.
        seen.append((Path(source).read_text(), Path(destination).read_text()))
        real_replace(source, destination)

    monkeypatch.setattr(services.server.os, "replace", replace)
    write_address_file(target, "127.0.0.1:2222")
    assert seen == [("127.0.0.1:2222\n", "127.0.0.1:1111\n")]
    assert target.read_text() == "127.0.0.1:2222\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["address"]  # no temporary left


def test_a_failed_write_leaves_no_temporary(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "address"
    with pytest.raises(FileNotFoundError):
        write_address_file(missing, "127.0.0.1:2222")
    assert list(tmp_path.iterdir()) == []
