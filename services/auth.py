"""Who is calling: bearer tokens from a token file, mapped to user names.

Token file format, one user per line (``#`` starts a comment, blank lines are ignored)::

    alice  sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
    bob    a-long-random-token-of-bob

The second column is the token itself or ``sha256:`` and the hex SHA-256 of it (preferred: the
file then holds no secret). ``python -m services.auth USER`` prints a new random token and the
line to add. The file is read again when it changes (checked at most every couple of seconds),
so users can be added without a restart. Clients send ``authorization: Bearer <token>``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import stat
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = [
    "ANONYMOUS",
    "Authenticator",
    "NoAuthentication",
    "TokenFileAuthenticator",
    "TokenFileError",
    "bearer_token",
    "hash_token",
    "parse_token_file",
]

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
"""The user every call runs as when authentication is off (loopback development only)."""

_MIN_TOKEN_CHARS = 16
_RECHECK_S = 2.0


class TokenFileError(ValueError):
    """The token file cannot be used; the message names the file and line."""


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token, as the token file stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_token_file(text: str, source: str = "token file") -> dict[str, str]:
    """Map token hash -> user from the file's text; :class:`TokenFileError` on a bad line."""
    users_by_hash: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise TokenFileError(
                f"{source}:{number}: expected 'USER TOKEN', found {len(parts)} words"
            )
        user, secret = parts
        if secret.startswith("sha256:"):
            digest = secret.removeprefix("sha256:").lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise TokenFileError(
                    f"{source}:{number}: sha256: must be followed by 64 hex digits"
                )
        else:
            if len(secret) < _MIN_TOKEN_CHARS:
                raise TokenFileError(
                    f"{source}:{number}: the token of {user!r} has fewer than "
                    f"{_MIN_TOKEN_CHARS} characters"
                )
            digest = hash_token(secret)
        if digest in users_by_hash:
            raise TokenFileError(f"{source}:{number}: the same token is given to two users")
        users_by_hash[digest] = user
    return users_by_hash


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an ``authorization: Bearer <token>`` metadata entry, if there is one."""
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class Authenticator(Protocol):
    """Turns a call's metadata into a user name (``None``: not authenticated)."""

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
        """The calling user, or ``None``."""


@dataclass(slots=True)
class NoAuthentication:
    """Every call is :data:`ANONYMOUS` (``--insecure-no-auth``)."""

    user: str = ANONYMOUS

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
        return self.user


@dataclass(slots=True)
class TokenFileAuthenticator:
    """Tokens from a file, reloaded when the file changes."""

    path: Path
    _users_by_hash: Mapping[str, str] = field(default_factory=dict)
    _mtime_ns: int = -1
    _checked_at: float = float("-inf")

    @classmethod
    def load(cls, path: Path) -> TokenFileAuthenticator:
        """Read the file now (errors surface at startup, not on the first call)."""
        authenticator = cls(path)
        authenticator.reload()
        return authenticator

    @property
    def users(self) -> frozenset[str]:
        """The user names the file knows."""
        return frozenset(self._users_by_hash.values())

    def reload(self) -> None:
        """Read the file; :class:`TokenFileError` or ``OSError`` if it cannot be used."""
        info = self.path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("token file %s is accessible to other users (chmod 600 it)", self.path)
        self._users_by_hash = parse_token_file(
            self.path.read_text(encoding="utf-8"), str(self.path)
        )
        self._mtime_ns = info.st_mtime_ns

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < _RECHECK_S:
            return
        self._checked_at = now
        try:
            if self.path.stat().st_mtime_ns != self._mtime_ns:
                self.reload()
                log.info("reloaded token file %s (%d users)", self.path, len(self.users))
        except (OSError, TokenFileError) as exc:
            # Keep serving with the tokens we have rather than locking everyone out.
            log.error("token file not reloaded, keeping the previous tokens: %s", exc)

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
        self._maybe_reload()
        token = bearer_token(metadata)
        if token is None:
            return None
        return self._users_by_hash.get(hash_token(token))


def main(argv: list[str] | None = None) -> int:
    """``python -m services.auth USER``: print a new token and its token-file line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m services.auth USER\n")
        return 2
    token = secrets.token_urlsafe(32)
    sys.stdout.write(f"token (give to {args[0]}):  {token}\n")
    sys.stdout.write(f"token file line:  {args[0]}  sha256:{hash_token(token)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
