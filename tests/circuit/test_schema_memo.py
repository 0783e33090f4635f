"""Documents that passed the schema check are not checked again (brainsim.circuit.schema_memo)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from brainsim.cachedir import cache_directory
from brainsim.circuit import load_circuit, schema_check, schema_memo, validate
from tests.circuit.conftest import CIRCUITS, NO_MEMORY_LIMIT, load_document

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BRAINSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "valid-documents"


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the documents jsonschema checks."""
    counted: list[int] = []
    real = schema_check._validator()

    class Counting:
        def iter_errors(self, document: Any) -> Any:
            counted.append(1)
            return real.iter_errors(document)

    monkeypatch.setattr(schema_check, "_validator", Counting)
    return counted


def _document() -> dict[str, Any]:
    return load_document("brunel_delta.yaml")


def test_a_valid_document_is_checked_once(cache: Path, checks: list[int]) -> None:
    first = load_circuit(_document(), memory_limit_bytes=NO_MEMORY_LIMIT)
    assert len(checks) == 1
    assert len(list(cache.iterdir())) == 1
    second = load_circuit(_document(), memory_limit_bytes=NO_MEMORY_LIMIT)
    assert len(checks) == 1
    assert second == first


def test_a_document_with_problems_is_checked_every_time(cache: Path, checks: list[int]) -> None:
    document = _document()
    document["simulation"]["dt_ms"] = "fast"
    for _ in range(2):
        problems = validate(document, memory_limit_bytes=NO_MEMORY_LIMIT)
        assert [p.path for p in problems] == ["simulation.dt_ms"]
    assert len(checks) == 2
    assert not cache.exists() or not list(cache.iterdir())


def test_another_value_or_another_schema_is_checked_again(
    cache: Path, checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    load_circuit(_document(), memory_limit_bytes=NO_MEMORY_LIMIT)
    changed = _document()
    changed["simulation"]["seed"] += 1
    load_circuit(changed, memory_limit_bytes=NO_MEMORY_LIMIT)
    assert len(checks) == 2
    schema = schema_check._schema_bytes()
    monkeypatch.setattr(schema_check, "_schema_bytes", lambda: schema + b"\n")
    load_circuit(_document(), memory_limit_bytes=NO_MEMORY_LIMIT)
    assert len(checks) == 3
    assert len(list(cache.iterdir())) == 3


def test_an_unusable_cache_directory_only_costs_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checks: list[int]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("BRAINSIM_CACHE_DIR", str(blocker))
    for _ in range(2):
        assert validate(_document(), memory_limit_bytes=NO_MEMORY_LIMIT) == []
    assert len(checks) == 2
    bad = _document()
    bad["populations"]["E"]["size"] = -1
    assert [p.path for p in validate(bad, memory_limit_bytes=NO_MEMORY_LIMIT)] == [
        "populations.E.size"
    ]


def test_keys_are_canonical_json() -> None:
    schema = b"{}"
    assert schema_memo.memo_key({"a": 1, "b": [1, 2]}, schema) == schema_memo.memo_key(
        {"b": [1, 2], "a": 1}, schema
    )
    keys = {
        schema_memo.memo_key(document, schema)
        for document in ({"a": 1}, {"a": 1.0}, {"a": True}, {"a": "1"}, {"a": [1]})
    }
    assert len(keys) == 5
    assert schema_memo.memo_key({"a": 1}, b"{ }") != schema_memo.memo_key({"a": 1}, schema)
    assert schema_memo.memo_key({"a": float("nan")}, schema) is None
    assert schema_memo.memo_key({"a": object()}, schema) is None


def test_the_least_recently_used_entries_are_pruned(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema_memo, "MAX_ENTRIES", 3)
    cache.mkdir(parents=True)
    for age, name in enumerate(["a1", "b2", "c3", "d4"]):
        (cache / name).touch()
        os.utime(cache / name, ns=(age * 10**9, age * 10**9))
    assert schema_memo.known_valid("a1")  # the oldest, used now
    schema_memo.remember_valid("ff")  # prunes only now and then
    assert len(list(cache.iterdir())) == 5
    schema_memo.remember_valid("00e")
    assert sorted(p.name for p in cache.iterdir()) == ["00e", "a1", "ff"]
    assert not schema_memo.known_valid("b2")


def test_cache_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BRAINSIM_CACHE_DIR", str(tmp_path / "given"))
    assert cache_directory() == tmp_path / "given"
    monkeypatch.delenv("BRAINSIM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_directory() == tmp_path / "xdg" / "brainsim"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_directory() == tmp_path / "home" / ".cache" / "brainsim"


def test_a_second_process_does_not_import_jsonschema(cache: Path) -> None:
    probe = (
        "import sys; from brainsim.circuit import load_circuit; "
        f"load_circuit({str(CIRCUITS / 'brunel_delta.yaml')!r}, memory_limit_bytes=0); "
        "print('jsonschema' in sys.modules)"
    )
    seen = [
        subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert seen == ["True", "False"]
