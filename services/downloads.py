"""The client's side of ``DownloadArtifact``: where an artefact goes on disk, continuing a
download that broke off, and checking the artefact's SHA-256.

An artefact is received into ``<dest>.part`` and renamed to ``<dest>`` only once all of it is
there and its SHA-256 is the one the server sent: ``<dest>`` never holds part of a file. A
``.part`` file left by a download that broke off is continued from its size (its bytes are
hashed first, so a damaged one is caught at the end: it is removed and the error says to
download again); one longer than the artefact is not part of it and is started over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import grpc

from services.gen.brainsim.v1 import job_service_pb2 as pb

__all__ = ["DownloadError", "local_path", "receive"]

_BLOCK_BYTES = 1 << 20


class DownloadError(Exception):
    """A download that did not give the artefact; the message says why and what to do."""


def local_path(out_dir: Path, name: str) -> Path:
    """Where artefact ``name`` (``attachments/inputs/conn.npz``) goes below ``out_dir``; a name
    that would lead elsewhere (absolute, ``..``), whether a user or a server gave it, is a
    :class:`DownloadError`."""
    parts = name.split("/")
    if not name or "\\" in name or "\0" in name or any(part in ("", ".", "..") for part in parts):
        raise DownloadError(
            f"{name!r} is no artefact name (a relative path without '.', '..' or empty parts)"
        )
    return out_dir.joinpath(*parts)


def _hash_file(path: Path) -> Any:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK_BYTES):
            hasher.update(block)
    return hasher


def _append(
    responses: Iterable[pb.DownloadArtifactResponse], part: Path, offset: int, name: str
) -> tuple[int, str, str]:
    """Append the stream to ``part`` (``offset`` bytes long); (total bytes, the server's
    SHA-256, the SHA-256 of ``part``)."""
    hasher = _hash_file(part) if offset else hashlib.sha256()
    position, total, digest = offset, -1, ""
    with part.open("ab") as fh:
        for response in responses:
            if response.offset != position:
                raise DownloadError(
                    f"{name}: the server sent bytes from {response.offset}, expected {position}"
                )
            fh.write(response.data)
            hasher.update(response.data)
            position += len(response.data)
            total = response.total_bytes
            digest = response.sha256 or digest
    if not digest or position != total:
        raise DownloadError(
            f"{name}: the download stopped at byte {position} of {total} without the "
            f"artefact's SHA-256; download again to continue from {part}"
        )
    return total, digest, hasher.hexdigest()


def receive(
    open_stream: Callable[[int], Iterable[pb.DownloadArtifactResponse]],
    name: str,
    dest: Path,
    *,
    resume: bool = True,
) -> int:
    """Download artefact ``name`` to ``dest`` through ``open_stream(offset)`` (a
    ``DownloadArtifact`` call from that offset); returns its size. ``resume``: continue a
    ``<dest>.part`` left by an earlier download (else start over)."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not resume:
        part.unlink(missing_ok=True)
    while True:
        offset = part.stat().st_size if part.exists() else 0
        try:
            total, expected, received = _append(open_stream(offset), part, offset, name)
        except grpc.RpcError as error:
            if cast(grpc.Call, error).code() == grpc.StatusCode.OUT_OF_RANGE and offset:
                part.unlink()  # longer than the artefact: not a part of it
                continue
            raise
        break
    if received != expected:
        part.unlink(missing_ok=True)
        continued = (
            f" (continuing the {offset} bytes of {part.name} already there)" if offset else ""
        )
        raise DownloadError(
            f"{name}: SHA-256 mismatch: the server's artefact has {expected}, the bytes "
            f"received{continued} have {received}; the damaged file was removed: download again"
        )
    part.replace(dest)
    return total
