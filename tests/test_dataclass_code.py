"""The methods dataclasses generate are compiled once per machine (brainsim.dataclass_code)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import marshal
import os
import subprocess
import sys
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from typing import Any, ClassVar

import pytest

from brainsim.dataclass_code import CodeCache

ROOT = Path(__file__).resolve().parents[1]


def _classes() -> dict[str, type]:
    """Dataclasses of the kinds brainsim declares, defined anew at each call."""

    @dataclasses.dataclass(frozen=True, slots=True)
    class Record:
        """A frozen, slotted record with defaults."""

        name: str
        size: int = 1
        weights: tuple[float, ...] = dataclasses.field(default_factory=tuple)
        note: str = dataclasses.field(default="", repr=False, compare=False)
        kind: ClassVar[str] = "record"

    @dataclasses.dataclass(order=True, kw_only=True)
    class Ordered:
        """A mutable, ordered one with keyword-only fields."""

        rank: int
        label: str = "x"

    @dataclasses.dataclass(unsafe_hash=True)
    class Hashed:
        """Hashed though mutable, with a post-init step."""

        a: int
        b: list[int] = dataclasses.field(default_factory=list, hash=False)

        def __post_init__(self) -> None:
            self.b.append(self.a)

    return {"Record": Record, "Ordered": Ordered, "Hashed": Hashed}


def _made_with(cache: CodeCache | None, monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    with monkeypatch.context() as patch:
        if cache is not None:
            patch.setattr(dataclasses, "exec", cache.exec, raising=False)
        return _classes()


def _behaviour(classes: dict[str, type]) -> list[Any]:
    """What users of the classes can observe, as comparable values."""
    record = classes["Record"]("E", 3, (0.5,), note="n")
    ordered = [classes["Ordered"](rank=r) for r in (2, 1)]
    hashed = classes["Hashed"](4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.size = 4  # type: ignore[misc]
    seen: list[Any] = [
        repr(record),
        record == classes["Record"]("E", 3, (0.5,), note="other"),
        hash(record) == hash(classes["Record"]("E", 3, (0.5,))),
        record.__slots__,
        copy.deepcopy(record) == record,  # a frozen slotted class's __getstate__
        repr(sorted(ordered)),
        hash(hashed) == hash(classes["Hashed"](4)),
        hashed.b,
    ]
    for cls in classes.values():
        init = cls.__init__
        seen += [str(inspect.signature(cls)), init.__annotations__, init.__defaults__,
                 init.__kwdefaults__, init.__code__.co_filename,
                 sorted(name for name in vars(cls) if name.startswith("__"))]  # fmt: skip
    return seen


def test_classes_made_through_the_cache_are_those_made_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _behaviour(_made_with(None, monkeypatch))
    cache = CodeCache(tmp_path)
    assert _behaviour(_made_with(cache, monkeypatch)) == plain
    compiled = cache.compiled
    assert compiled >= 10
    assert cache.hits == 0
    cache.save()
    assert [p.name for p in tmp_path.iterdir()] == [f"{__name__}.marshal"]
    again = CodeCache(tmp_path)
    assert _behaviour(_made_with(again, monkeypatch)) == plain
    assert again.hits == compiled
    assert again.compiled == 0


def test_exec_without_namespaces_runs_in_the_callers(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path)
    found: list[int] = []
    cache.exec("found.append(41 + 1)")
    assert found == [42]
    namespace: dict[str, Any] = {}
    cache.exec("x = 1", {"__builtins__": __builtins__}, namespace)
    assert namespace == {"x": 1}


def _run(cache: CodeCache, module: str, *sources: str) -> None:
    for source in sources:
        cache.exec(source, {"__name__": module}, {})


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage",
        MAGIC_NUMBER,
        MAGIC_NUMBER + b"\xff\x00",
        MAGIC_NUMBER + marshal.dumps([compile("1", "<string>", "eval")]),
        MAGIC_NUMBER + marshal.dumps({"k": 1}),
        b"\x00\x00\r\n" + marshal.dumps({"def f(): pass": compile("1", "<string>", "exec")}),
    ],
)
def test_a_damaged_or_foreign_file_counts_as_empty_and_is_replaced(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "m.marshal").write_bytes(content)
    cache = CodeCache(tmp_path)
    _run(cache, "m", "y = 2")
    assert cache.compiled == 1
    cache.save()
    again = CodeCache(tmp_path)
    _run(again, "m", "y = 2")
    assert (again.compiled, again.hits) == (0, 1)


def test_a_module_s_file_holds_what_it_used_last(tmp_path: Path) -> None:
    """A module whose classes changed gets a file with its new code only; a module with
    nothing new is not written."""
    first = CodeCache(tmp_path)
    _run(first, "m", "v = 0", "v = 1", "v = 2")
    _run(first, "n", "w = 0")
    first.save()
    n_written = (tmp_path / "n.marshal").stat().st_mtime_ns
    second = CodeCache(tmp_path)
    _run(second, "m", "v = 1", "v = 3")  # v = 0 and 2 gone, v = 3 new
    _run(second, "n", "w = 0")
    assert (second.compiled, second.hits) == (1, 2)
    second.save()
    assert (tmp_path / "n.marshal").stat().st_mtime_ns == n_written
    third = CodeCache(tmp_path)
    _run(third, "m", "v = 0", "v = 1", "v = 3")
    assert (third.compiled, third.hits) == (1, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.marshal", "n.marshal"]


def test_odd_module_names_share_one_file(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path)
    _run(cache, "../../etc/x", "a = 1")
    _run(cache, "", "b = 1")
    cache.save()
    assert [p.name for p in tmp_path.iterdir()] == ["_other.marshal"]
    again = CodeCache(tmp_path)
    _run(again, "", "a = 1", "b = 1")
    assert (again.compiled, again.hits) == (0, 2)


def test_an_unwritable_directory_only_costs_the_compilation(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = CodeCache(blocker / "code")
    namespace: dict[str, Any] = {}
    cache.exec("z = 3", {}, namespace)
    cache.save()
    assert namespace == {"z": 3}
    assert blocker.read_text() == "not a directory"


def _in_a_fresh_process(code: str, cache_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "BRAINSIM_CACHE_DIR": str(cache_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_command_line_compiles_once_and_a_library_user_is_left_alone(
    tmp_path: Path,
) -> None:
    command = (
        "import brainsim.cli; "
        f"brainsim.cli.main(['validate', {str(ROOT / 'circuits' / 'tiny.yaml')!r}]); "
        "from brainsim.dataclass_code import installed; "
        "cache = installed(); print(cache.hits, cache.compiled)"
    )
    first = _in_a_fresh_process(command, tmp_path).splitlines()[-1].split()
    second = _in_a_fresh_process(command, tmp_path).splitlines()[-1].split()
    assert int(first[1]) > 100  # the circuit records, the models, ... compiled
    assert int(second[0]) >= int(first[1])  # all of them found
    assert second[1] == "0"
    library = "import dataclasses, brainsim.api; print('exec' in vars(dataclasses))"
    assert _in_a_fresh_process(library, tmp_path) == "False"
