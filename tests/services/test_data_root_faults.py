"""A data root the server cannot write (a read-only filesystem) stops ``brainsim serve`` with a
clear configuration problem, exit code 2, instead of a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.engine.test_checkpoint_faults import _in_small_filesystem


def test_a_read_only_data_root_is_a_configuration_problem(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("alice 0123456789abcdef0123\n", encoding="utf-8")
    tokens.chmod(0o600)
    root = tmp_path / "fs" / "data"
    serve = " ".join([sys.executable, "-m", "brainsim", "serve", "--data-root", str(root),
                      "--listen", "127.0.0.1:0", "--token-file", str(tokens)])  # fmt: skip
    output = _in_small_filesystem(f"timeout 60 {serve}; echo exit=$?", 1024, tmp_path,
                                  read_only=True)  # fmt: skip
    assert "exit=2" in output, output
    assert f"data_root {root}: cannot be used: Read-only file system" in output, output
    assert "Traceback" not in output
