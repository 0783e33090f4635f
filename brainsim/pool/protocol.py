"""What a pool and its clients agree on: where the socket is, how messages are framed, and
which code the pool runs.

Messages are JSON objects, each sent as a 4-byte big-endian length and that many bytes of UTF-8.
A client sends one request per connection (``op``: ``hello``, ``run`` or ``stop``; during a run
also ``cancel``); the pool answers with ``info``, ``accepted``, ``output`` (text for the client's
standard output), ``done``, ``refused``, ``stopping`` or ``error``.

Pools live in one private directory per user (mode 0700): ``$BRAINSIM_POOL_DIR`` when set,
else ``$XDG_RUNTIME_DIR/brainsim``, else ``brainsim-UID`` in the temporary directory. The pool of
N ranks listens on ``pool-N.sock`` there and logs to ``pool-N.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

import brainsim
from brainsim.errors import PoolError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "code_fingerprint",
    "connect",
    "log_path",
    "pool_dir",
    "receive",
    "send",
    "socket_path",
]

MAX_MESSAGE_BYTES = 1 << 20
"""Longest message either side accepts (a run request is a few hundred bytes)."""

_HEADER = struct.Struct(">I")
_MAX_SOCKET_PATH = 100
"""Unix socket paths must fit ``sun_path`` (108 bytes on Linux, 104 on macOS)."""


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one framed message."""
    data = json.dumps(message, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise PoolError(f"message of {len(data)} bytes is over the {MAX_MESSAGE_BYTES} limit")
    sock.sendall(_HEADER.pack(len(data)) + data)


def receive(sock: socket.socket) -> dict[str, Any] | None:
    """Receive one framed message; ``None`` when the peer closed the connection first.

    Raises :class:`~brainsim.errors.PoolError` for a message that is too long, cut short, not
    JSON or not an object with a string ``op``.
    """
    header = _read_exactly(sock, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise PoolError(f"message of {length} bytes announced; the limit is {MAX_MESSAGE_BYTES}")
    data = _read_exactly(sock, length)
    if data is None:
        raise PoolError(f"connection closed inside a {length}-byte message")
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoolError(f"message is not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise PoolError("message is not a JSON object with a string 'op'")
    return message


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    """``n`` bytes, or ``None`` if the connection ends before the first one."""
    chunks = []
    remaining = n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 16))
        if not chunk:
            if remaining == n and n:
                return None
            raise PoolError(f"connection closed after {n - remaining} of {n} bytes")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def connect(path: Path, timeout_s: float, *, keep_timeout: bool = False) -> socket.socket:
    """A connection to the socket at ``path``, made within ``timeout_s`` (which stays on the
    connection only with ``keep_timeout``); raises OSError (ConnectionRefusedError where a
    socket file is left that nothing listens on)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    if not keep_timeout:
        sock.settimeout(None)
    return sock


def pool_dir(*, create: bool = False) -> Path:
    """This user's pool directory (see the module docstring); with ``create``, made if missing.

    Raises :class:`~brainsim.errors.PoolError` when the directory exists but another user owns
    it or others may write to it: its sockets then cannot be trusted.
    """
    configured = os.environ.get("BRAINSIM_POOL_DIR")
    if configured:
        directory = Path(configured)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        directory = Path(os.environ["XDG_RUNTIME_DIR"]) / "brainsim"
    else:
        directory = Path(tempfile.gettempdir()) / f"brainsim-{os.getuid()}"
    if create:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            message = f"cannot create the pool directory {directory}: {exc.strerror}"
            raise PoolError(message) from None
    try:
        info = directory.stat()
    except FileNotFoundError:
        return directory
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PoolError(
            f"the pool directory {directory} belongs to another user or others may write to it; "
            "set BRAINSIM_POOL_DIR to a private directory"
        )
    return directory


def socket_path(ranks: int, directory: Path | None = None) -> Path:
    """The socket of the pool of ``ranks`` ranks."""
    path = (directory or pool_dir()) / f"pool-{ranks}.sock"
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise PoolError(
            f"the pool socket path {path} is longer than {_MAX_SOCKET_PATH} bytes; "
            "set BRAINSIM_POOL_DIR to a shorter directory"
        )
    return path


def log_path(ranks: int, directory: Path | None = None) -> Path:
    """The log of the pool of ``ranks`` ranks (its ranks' standard output and error)."""
    return (directory or pool_dir()) / f"pool-{ranks}.log"


def code_fingerprint() -> str:
    """A digest of the code a run would execute: this Python and environment, brainsim's
    version and the name, size and modification time of every module of the brainsim package.

    A pool refuses jobs from a client whose fingerprint differs, so that an edited source tree
    or another environment never runs on ranks that loaded older code.
    """
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    # The environment (sys.prefix: a venv's own) and the interpreter behind any alias
    # (``python``, ``python3.11`` and a console script's shebang name the same binary).
    python = f"{sys.prefix}\0{os.path.realpath(sys.executable)}\0{sys.version}"
    digest.update(f"{python}\0{brainsim.__version__}\0".encode())
    for path, info in sorted(_modules(package)):
        digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def _modules(folder: Path, prefix: str = "") -> list[tuple[str, os.stat_result]]:
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    found += _modules(Path(entry.path), f"{prefix}{entry.name}/")
            elif entry.name.endswith((".py", ".json")):
                found.append((prefix + entry.name, entry.stat()))
    return found
