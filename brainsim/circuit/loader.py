"""Load and validate circuit documents: the entry points the CLI, the engine and the service use.

Validation runs in stages that share one :class:`~brainsim.circuit.problems.ProblemLog`, so a
document gets every problem reported at once:

1. read the text (YAML or JSON) or mapping into plain JSON data (:mod:`.reading`);
2. resolve ``parameters`` and substitute ``${...}`` references (:mod:`.parameters`);
3. check the JSON Schema (:mod:`.schema_check`);
4. check what needs context and build the records (:mod:`.build`).

:func:`validate` never raises, whatever it is given; :func:`parse_circuit` and
:func:`load_circuit` raise :class:`~brainsim.errors.CircuitError` listing every problem.

``memory_limit_bytes`` (all entry points): the circuit's estimated memory must not exceed it;
``None`` (the default) means the physical memory of this machine, ``0`` means no limit (for a
run spread over several machines, pass their total). ``parameters`` override declared
parameters (``{"scale": 0.1}``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from brainsim.circuit.build import MemoryLimit, build_circuit
from brainsim.circuit.parameters import substitute_parameters
from brainsim.circuit.problems import Problem, ProblemLog, describe
from brainsim.circuit.reading import MAX_DOCUMENT_BYTES, DocumentError, parse_text, to_json_data
from brainsim.circuit.resources import format_bytes, physical_memory_bytes
from brainsim.circuit.schema_check import check_schema
from brainsim.circuit.spec import Circuit
from brainsim.errors import CircuitError

__all__ = ["CIRCUIT_FILE_SUFFIXES", "load_circuit", "parse_circuit", "validate", "validate_files"]

CIRCUIT_FILE_SUFFIXES = (".yaml", ".yml", ".json")
"""A string source ending in one of these (and without a line break) is a file path."""

Source = str | bytes | Mapping[str, Any]


def validate(
    source: Source,
    *,
    base_dir: str | None = None,
    parameters: Mapping[str, float] | None = None,
    memory_limit_bytes: int | None = None,
) -> list[Problem]:
    """Every problem of a circuit given as YAML/JSON text (``str``/``bytes``) or a mapping.

    Returns ``[]`` for a valid circuit. Never raises: an unexpected failure inside validation
    is itself reported as a problem. ``base_dir`` is where ``from_file`` paths resolve; without
    it, ``from_file`` projections are problems.
    """
    try:
        problems, _ = _check(source, base_dir, parameters, memory_limit_bytes)
    except Exception as error:  # the job service relies on validate never raising
        return [Problem("", f"internal error while validating: {type(error).__name__}: {error}")]
    return problems


def parse_circuit(
    source: Source,
    *,
    base_dir: str | None = None,
    parameters: Mapping[str, float] | None = None,
    memory_limit_bytes: int | None = None,
) -> Circuit:
    """The :class:`Circuit` of YAML/JSON text or a mapping; :class:`CircuitError` if invalid."""
    problems, circuit = _check(source, base_dir, parameters, memory_limit_bytes)
    if circuit is None:
        raise CircuitError([str(problem) for problem in problems])
    return circuit


def load_circuit(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    parameters: Mapping[str, float] | None = None,
    memory_limit_bytes: int | None = None,
) -> Circuit:
    """The :class:`Circuit` of a file, text or mapping; :class:`CircuitError` if invalid.

    A path-like, or a string ending in ``.yaml``, ``.yml`` or ``.json`` (without a line break),
    is read from disk, and relative ``from_file`` paths resolve against its directory; any
    other string is the document's text.
    """
    if isinstance(source, Mapping):
        return parse_circuit(source, parameters=parameters, memory_limit_bytes=memory_limit_bytes)
    if not _is_path(source):
        return parse_circuit(
            str(source), parameters=parameters, memory_limit_bytes=memory_limit_bytes
        )
    path = os.fspath(source)
    try:
        text = _read_file(path)
    except DocumentError as error:
        raise CircuitError([str(Problem("", str(error)))]) from None
    return parse_circuit(
        text,
        base_dir=_directory_of(path),
        parameters=parameters,
        memory_limit_bytes=memory_limit_bytes,
    )


def validate_files(
    paths: Sequence[str],
    *,
    parameters: Mapping[str, float] | None = None,
    memory_limit_bytes: int | None = None,
) -> dict[str, list[Problem]]:
    """The problems of each circuit file (``[]`` when valid), keyed by the path as given."""
    results: dict[str, list[Problem]] = {}
    for path in paths:
        try:
            text = _read_file(path)
        except DocumentError as error:
            results[path] = [Problem("", str(error))]
            continue
        results[path] = validate(
            text,
            base_dir=_directory_of(path),
            parameters=parameters,
            memory_limit_bytes=memory_limit_bytes,
        )
    return results


def _is_path(source: str | os.PathLike[str]) -> bool:
    if not isinstance(source, str):
        return True
    return "\n" not in source and source.lower().endswith(CIRCUIT_FILE_SUFFIXES)


def _directory_of(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _read_file(path: str) -> bytes:
    """The file's bytes; :class:`DocumentError` ("cannot read FILE: ...") when that fails."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise DocumentError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            f"cannot read {path}: larger than {format_bytes(MAX_DOCUMENT_BYTES)}, the most a "
            "circuit file may have"
        )
    return data


def _memory_limit(memory_limit_bytes: int | None) -> MemoryLimit | None:
    if memory_limit_bytes is None:
        physical = physical_memory_bytes()
        if physical is None:
            return None
        return MemoryLimit(physical, "the physical memory of this machine")
    if memory_limit_bytes <= 0:
        return None
    return MemoryLimit(memory_limit_bytes, "the given limit")


def _check(
    source: Source,
    base_dir: str | None,
    parameters: Mapping[str, float] | None,
    memory_limit_bytes: int | None,
) -> tuple[list[Problem], Circuit | None]:
    log = ProblemLog()
    try:
        raw = parse_text(source) if isinstance(source, str | bytes) else source
        data = to_json_data(raw, log)
    except DocumentError as error:
        return [Problem("", str(error))], None
    if not isinstance(data, dict):
        if data is None and not log:
            log.add((), "the document is empty")
        elif data is not None:
            log.add(
                (),
                "the document must be a mapping with the keys apiVersion, name, simulation, "
                f"populations, ...; got {describe(data)}",
            )
        return log.problems(), None
    document, values = substitute_parameters(data, log, parameters)
    check_schema(document, log)
    circuit = build_circuit(document, values, base_dir, log, _memory_limit(memory_limit_bytes))
    return log.problems(document), circuit
