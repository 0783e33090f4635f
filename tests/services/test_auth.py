"""Bearer tokens from a token file: parsing, hashing, lookup and reloading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.auth import (
    NoAuthentication,
    TokenFileAuthenticator,
    TokenFileError,
    bearer_token,
    hash_token,
    main,
    parse_token_file,
)

ALICE = "alice-token-0123456789"
BOB = "bob-token-abcdefghijkl"


def test_plain_and_hashed_tokens_map_to_users() -> None:
    users = parse_token_file(f"# users\nalice {ALICE}\n\nbob sha256:{hash_token(BOB)}  # hashed\n")
    assert users == {hash_token(ALICE): "alice", hash_token(BOB): "bob"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice", "expected 'USER TOKEN', found 1 words"),
        ("alice short", "fewer than 16 characters"),
        ("alice sha256:abc", "64 hex digits"),
        (f"alice {ALICE}\nbob {ALICE}", ":2: the same token is given to two users"),
    ],
)
def test_bad_lines_are_reported_with_their_line_number(text: str, message: str) -> None:
    with pytest.raises(TokenFileError, match=message):
        parse_token_file(text, "tokens")


def test_bearer_token_is_read_from_authorization_metadata() -> None:
    assert bearer_token([("x-other", "1"), ("Authorization", f"Bearer {ALICE}")]) == ALICE
    assert bearer_token([("authorization", f"bearer   {ALICE} ")]) == ALICE
    assert bearer_token([("authorization", f"Basic {ALICE}")]) is None
    assert bearer_token([("authorization", "Bearer ")]) is None
    assert bearer_token(None) is None


def test_authenticator_accepts_known_tokens_only_and_reloads_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice {ALICE}\n")
    path.chmod(0o600)
    auth = TokenFileAuthenticator.load(path)
    assert auth.authenticate([("authorization", f"Bearer {ALICE}")]) == "alice"
    assert auth.authenticate([("authorization", f"Bearer {BOB}")]) is None
    assert auth.authenticate([]) is None

    path.write_text(f"bob {BOB}\n")
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the file system's resolution
    auth._checked_at = float("-inf")  # skip the wait between checks
    assert auth.authenticate([("authorization", f"Bearer {BOB}")]) == "bob"
    assert auth.authenticate([("authorization", f"Bearer {ALICE}")]) is None

    # A broken file is not loaded; the previous tokens stay.
    path.write_text("broken\n")
    os.utime(path, ns=(2, 2))
    auth._checked_at = float("-inf")
    assert auth.authenticate([("authorization", f"Bearer {BOB}")]) == "bob"


def test_no_authentication_makes_everyone_anonymous() -> None:
    assert NoAuthentication().authenticate(None) == "anonymous"


def test_new_token_command_prints_a_usable_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["carol"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].split()[-1]
    line = out[1].split(":", 1)[1].strip()
    assert parse_token_file(line) == {hash_token(token): "carol"}
