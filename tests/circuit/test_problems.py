"""Problems: rendering, paths, ordering, settling of follow-on noise, and the cap."""

from __future__ import annotations

from brainsim.circuit import Problem
from brainsim.circuit.problems import MAX_PROBLEMS, ProblemLog, describe, format_path


def test_problem_renders_path_and_message() -> None:
    assert str(Problem("projections.IE.delay_ms", "must be >= dt_ms (0.1), got 0.05")) == (
        "projections.IE.delay_ms: must be >= dt_ms (0.1), got 0.05"
    )
    assert str(Problem("", "the document is empty")) == "(document): the document is empty"


def test_format_path() -> None:
    assert format_path(("populations", "E", "size")) == "populations.E.size"
    assert format_path(("stimuli", "bg", "targets", 1, "node_ids")) == (
        "stimuli.bg.targets[1].node_ids"
    )
    assert format_path((0, "a")) == "[0].a"
    assert format_path(()) == ""


def test_describe() -> None:
    assert describe(None) == "null"
    assert describe(True) == "true"
    assert describe("x" * 50) == repr("x" * 37 + "...")
    assert describe(1.5) == "1.5"
    assert describe({"a": 1}) == "a mapping"
    assert describe([1]) == "a list"
    assert describe(b"x") == "a value of type bytes"


def test_log_orders_by_document_position_and_merges_duplicates() -> None:
    document = {"b": {"y": 1, "x": [0, 1]}, "a": 2}
    log = ProblemLog()
    log.add(("a",), "second")
    log.add(("b", "x", 1), "first")
    log.add(("b", "missing"), "after b's keys")
    log.add((), "whole document")
    log.add(("a",), "second")
    assert [str(problem) for problem in log.problems(document)] == [
        "(document): whole document",
        "b.x[1]: first",
        "b.missing: after b's keys",
        "a: second",
    ]


def test_settled_paths_drop_follow_on_problems_but_stay_unclean() -> None:
    log = ProblemLog()
    assert not log
    log.add(("p", "n"), "undefined parameter", settles=True)
    log.add(("p", "n"), "must be a number")
    log.add(("p", "n", "deeper"), "noise")
    log.mark_invalid(("q",))
    log.add(("q", "x"), "noise")
    assert [problem.message for problem in log.problems()] == ["undefined parameter"]
    assert not log.is_clean(("p",))
    assert not log.is_clean(("q", "x"))
    assert log.is_clean(("r",))
    assert log


def test_the_number_of_problems_is_capped() -> None:
    log = ProblemLog()
    for index in range(MAX_PROBLEMS + 5):
        log.add(("items", index), "bad")
    problems = log.problems()
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == Problem("", "5 more problem(s) not shown")
