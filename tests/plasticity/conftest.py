"""The NEST interpreter for the plasticity tests, and running ``nest_stdp.py`` and
``nest_network.py`` in it.

NEST is installed on demand rather than skipped when absent: these tests are the evidence that
the STDP reference means what NEST means, and a skipped comparison on a clean CI machine would
prove nothing while looking green.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NEST_SCRIPT = Path(__file__).resolve().with_name("nest_stdp.py")
NEST_NETWORK_SCRIPT = Path(__file__).resolve().with_name("nest_network.py")


def _run_script(
    nest_python: Path, args: list[str], stdin: str, script: Path = NEST_SCRIPT
) -> dict[str, Any]:
    result = subprocess.run(
        [str(nest_python), str(script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{script.name} {' '.join(args)} exited with {result.returncode}:\n"
            f"{result.stderr[-4000:]}"
        )
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def run_nest(nest_python: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``nest_stdp.py`` on ``spec`` in the NEST interpreter; its JSON result.

    Raises RuntimeError with the end of NEST's stderr when the script fails.
    """
    return _run_script(nest_python, [], json.dumps(spec))


def nest_defaults(nest_python: Path) -> dict[str, Any]:
    """NEST's defaults of both STDP models and of the parrot's ``tau_minus`` (``--defaults``)."""
    return _run_script(nest_python, ["--defaults"], "")


def run_nest_network(nest_python: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``nest_network.py`` on ``spec`` in the NEST interpreter; its JSON result."""
    return _run_script(nest_python, [], json.dumps(spec), NEST_NETWORK_SCRIPT)
