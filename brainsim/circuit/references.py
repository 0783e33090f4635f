"""The files a circuit document names: connection lists and the data of stimuli.

A circuit names files by paths relative to its own directory in two places:

- ``projections.<name>.connectivity.path`` of a ``from_file`` projection (an ``.npz``);
- ``stimuli.<name>.data`` of a data-driven stimulus (:data:`~.encoders.DATA_STIMULI`), as a
  string or as ``{file: ..., key: ...}`` (an ``.npy``, ``.csv`` or ``.npz``; ``spike_trains``
  read an ``.npz`` only).

:func:`referenced_files` lists them from the document alone, without reading any file, so a
program that sends a circuit elsewhere (the job service's client) can send its files with it;
:meth:`FileReference.resolve` then locates one next to the circuit by the rules validation uses
(:func:`~brainsim.circuit.files.resolve_relative_file`: relative, inside the directory, links
included, of the right kind), so a file the simulator would refuse is refused before it is
sent. Values that are not strings (inline data, a ``${...}`` reference) name no file; whatever
is wrong with them is for validation to report.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brainsim.circuit.data import DATA_SUFFIXES
from brainsim.circuit.encoders import DATA_STIMULI
from brainsim.circuit.files import resolve_relative_file
from brainsim.circuit.problems import ProblemLog, format_path
from brainsim.circuit.reading import DocumentError, parse_text, to_json_data

__all__ = ["FileReference", "referenced_files", "referenced_files_of_text"]


@dataclass(frozen=True, slots=True)
class FileReference:
    """One file a circuit names."""

    field: str
    """Where the document names it, as validation reports problems there
    (``"projections.EE.connectivity.path"``, ``"stimuli.pixels.data"``)."""
    name: str
    """The path as written in the document, relative to the circuit's directory."""
    suffixes: tuple[str, ...]
    """The kinds of file accepted there."""
    what: str
    """The feature that reads it (``"from_file"`` or ``"data"``), for messages."""

    @property
    def relative_path(self) -> str:
        """:attr:`name` normalized (``./a/../d.npy`` -> ``d.npy``): where the file lies
        relative to the circuit's directory once :meth:`resolve` has accepted it."""
        return posixpath.normpath(self.name)

    def resolve(self, base_dir: str) -> str:
        """The real path of the file next to a circuit in ``base_dir``;
        :class:`~brainsim.circuit.files.ConnectionFileError` says why the simulator would
        refuse it (absolute, out of the directory, wrong kind, missing)."""
        return resolve_relative_file(self.name, base_dir, self.suffixes, self.what)


def referenced_files(document: Any) -> list[FileReference]:
    """Every file ``document`` (a parsed circuit: plain JSON data) names, in document order.

    A file named twice is listed twice (each reference has its own field). Anything that is not
    a mapping where one is expected is skipped.
    """
    found: list[FileReference] = []
    if not isinstance(document, Mapping):
        return found
    projections = document.get("projections")
    for name, projection in _items(projections):
        connectivity = projection.get("connectivity")
        if isinstance(connectivity, Mapping) and connectivity.get("rule") == "from_file":
            path = connectivity.get("path")
            if isinstance(path, str):
                field = format_path(("projections", name, "connectivity", "path"))
                found.append(FileReference(field, path, (".npz",), "from_file"))
    for name, stimulus in _items(document.get("stimuli")):
        kind = stimulus.get("type")
        if kind not in DATA_STIMULI:
            continue
        data = stimulus.get("data")
        file = data.get("file") if isinstance(data, Mapping) else data
        if isinstance(file, str):
            suffixes = (".npz",) if kind == "spike_trains" else DATA_SUFFIXES
            found.append(
                FileReference(format_path(("stimuli", name, "data")), file, suffixes, "data")
            )
    return found


def referenced_files_of_text(text: str | bytes) -> list[FileReference]:
    """:func:`referenced_files` of a circuit given as YAML or JSON text; ``[]`` when the text
    cannot be read (validation says why)."""
    try:
        document = to_json_data(parse_text(text), ProblemLog())
    except DocumentError:
        return []
    return referenced_files(document)


def _items(section: Any) -> list[tuple[str, Mapping[str, Any]]]:
    if not isinstance(section, Mapping):
        return []
    return [
        (name, value)
        for name, value in section.items()
        if isinstance(name, str) and isinstance(value, Mapping)
    ]
