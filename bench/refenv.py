"""The reference simulators' own virtual environment: created and filled on demand, then reused.

NEST and Brian2 are never dependencies of brainsim. They live in ``bench/.venv-ref`` (ignored
by git), installed from PyPI with pip the first time a benchmark needs them. A marker file
records the requirements that were installed, so a changed requirement list reinstalls.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REQUIREMENTS", "ReferenceEnv", "ensure_reference_env", "probe_simulators"]

REQUIREMENTS: tuple[str, ...] = (
    "nest-simulator>=3.10,<3.11",
    "brian2>=2.9,<3",
    # brian2 2.9.0 wraps ndarray.ptp, which NumPy 2.4 removed.
    "numpy<2.4",
    # The pynn target's scripts run on pyNN.nest in tests (brainsim.backends.pynn).
    "PyNN==0.13.0",
)
"""What pip installs into the reference environment."""

_MARKER = "bench-requirements.json"

_PROBE = """
import json, shutil, sys
found = {"python": sys.version.split()[0]}
try:
    import nest
    found["nest"] = nest.__version__
except Exception as error:
    found["nest_error"] = f"{type(error).__name__}: {error}"
try:
    import brian2
    found["brian2"] = brian2.__version__
    if shutil.which("g++") is None and shutil.which("c++") is None:
        found["brian2_error"] = "no C++ compiler (g++/c++) for the C++ standalone device"
except Exception as error:
    found["brian2_error"] = f"{type(error).__name__}: {error}"
import numpy
found["numpy"] = numpy.__version__
print(json.dumps(found))
"""


@dataclass(frozen=True, slots=True)
class ReferenceEnv:
    """The reference environment's interpreter and what it can run."""

    python: Path
    versions: dict[str, str]
    """``python``, ``numpy`` and the version of each importable simulator."""
    errors: dict[str, str]
    """Simulator name -> why it cannot run here."""


def _python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(command: list[str], log: Path) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)


def ensure_reference_env(venv: Path, log: Path) -> Path:
    """Create ``venv`` and pip-install :data:`REQUIREMENTS` unless already done; its python.

    Raises :class:`subprocess.CalledProcessError` when venv creation or pip fails (the pip
    output is in ``log``).
    """
    marker = venv / _MARKER
    wanted = json.dumps(list(REQUIREMENTS))
    python = _python_of(venv)
    if python.exists() and marker.exists() and marker.read_text(encoding="utf-8") == wanted:
        return python
    log.parent.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], log)
    _run([str(python), "-m", "pip", "install", "--upgrade", *REQUIREMENTS], log)
    marker.write_text(wanted, encoding="utf-8")
    return python


def probe_simulators(python: Path) -> ReferenceEnv:
    """Import NEST and Brian2 in the reference interpreter and report versions and failures."""
    result = subprocess.run(
        [str(python), "-c", _PROBE], capture_output=True, text=True, check=False, timeout=300
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["probe failed"])[-1]
        return ReferenceEnv(python, {}, {"nest": reason, "brian2": reason})
    found = json.loads(result.stdout.strip().splitlines()[-1])
    errors = {
        name: found.pop(f"{name}_error") for name in ("nest", "brian2") if f"{name}_error" in found
    }
    return ReferenceEnv(python, {key: str(value) for key, value in found.items()}, errors)
