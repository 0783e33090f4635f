"""Running a script in the reference simulators' interpreter (``bench/.venv-ref``) from tests.

NEST is never a brainsim dependency: a comparison with it runs a script of the test suite in the
reference interpreter (installed on demand by the ``nest_python`` fixture of tests/conftest.py,
never skipped: a skipped comparison would prove nothing while looking green), which reads a JSON
specification and writes a JSON result.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["REFERENCE_VENV", "ROOT", "run_reference_script"]

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_VENV = ROOT / "bench" / ".venv-ref"


def run_reference_script(
    python: Path, script: Path, spec: dict[str, Any], timeout: float = 300
) -> dict[str, Any]:
    """Run ``python script SPEC.json OUT.json`` and return what it wrote to ``OUT.json``.

    Raises RuntimeError with the end of the script's output when it fails.
    """
    with tempfile.TemporaryDirectory(prefix="reference-") as directory:
        spec_path, out_path = Path(directory) / "spec.json", Path(directory) / "out.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        result = subprocess.run(
            [str(python), str(script), str(spec_path), str(out_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{script.name} exited with {result.returncode}:\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )
        document: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    return document
