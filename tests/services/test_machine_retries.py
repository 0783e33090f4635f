"""The state machine's retries and chains: a retryable failure starts the job again while it
has attempts left (resuming from the checkpoint the launcher found), a run stopped at a
checkpoint continues without using an attempt, and between runs the job keeps its local slot
and has no external id (so a restart launches the next run)."""

from __future__ import annotations

import dataclasses

from services.jobs import JobState, Target
from services.machine import (
    Checkpointed,
    Exited,
    Launch,
    Launched,
    Persist,
    PublishJob,
    PublishLog,
    Recovered,
    ServiceState,
    Started,
    Submitted,
    handle,
)
from tests.services.test_machine import make_job, run

KILLED = "mpiexec exited with status 9: a rank was ended by signal 9, SIGKILL (Killed)\nmore"


def running(target: Target = Target.LOCAL, **changes: object) -> ServiceState:
    job = make_job("a", target, max_retries=2, checkpoint_every_ms=100.0, **changes)
    state, _ = run(ServiceState(max_local_jobs=1), Submitted(job), Launched("a", "11", 1.0))
    state, _ = run(state, Started("a", 1.0))
    return state


def test_a_retryable_failure_resumes_from_the_checkpoint() -> None:
    state, actions = handle(running(), Exited("a", JobState.FAILED, KILLED, 2.0, True, 400.0))
    job = state.active["a"]
    assert job.state is JobState.RUNNING
    assert job.attempt == 2
    assert job.segment == 2
    assert job.external_id == ""
    assert job.resume_from_ms == 400.0
    assert job.simulated_ms == 400.0
    assert "a" in state.local_slots  # keeps its slot: nobody overtakes it
    persist, publish, line, launch = actions
    assert isinstance(persist, Persist)
    assert persist.kind == "retrying"
    assert persist.detail == {
        "attempt": 2, "of": 3, "segment": 2, "resume_from_ms": 400.0, "reason": KILLED,
    }  # fmt: skip
    assert isinstance(publish, PublishJob)
    assert isinstance(launch, Launch)
    assert line == PublishLog(
        "a",
        "attempt 2 of 3: resuming from 400 ms after: mpiexec exited with status 9: a rank was "
        "ended by signal 9, SIGKILL (Killed)",
    )
    # The next run's Launched is taken (the external id was cleared).
    state, actions = handle(state, Launched("a", "12", 3.0))
    assert state.active["a"].external_id == "12"


def test_no_checkpoint_starts_again_and_attempts_run_out() -> None:
    state = running()
    for attempt in (2, 3):
        state, actions = handle(state, Exited("a", JobState.FAILED, "boom", 2.0, True, None))
        assert state.active["a"].attempt == attempt
        assert state.active["a"].resume_from_ms is None
        assert isinstance(actions[2], PublishLog)
        assert "starting again from the beginning (no checkpoint) after: boom" in actions[2].text
        state, _ = handle(state, Launched("a", str(attempt), 3.0))
    state, actions = handle(state, Exited("a", JobState.FAILED, "last", 4.0, True, 300.0))
    assert "a" not in state.active
    assert not state.local_slots
    ended = actions[0]
    assert isinstance(ended, Persist)
    assert ended.job.state is JobState.FAILED
    assert ended.job.reason == "attempt 3 of 3 failed (no retries left): last"


def test_not_retryable_and_cancelled_runs_end_the_job() -> None:
    state, actions = handle(running(), Exited("a", JobState.FAILED, "time limit", 2.0))
    assert "a" not in state.active
    assert isinstance(actions[0], Persist)
    assert actions[0].job.reason == "time limit"
    state = running(cancel_requested=True, reason="cancelled by alice")
    state, actions = handle(state, Exited("a", JobState.FAILED, KILLED, 2.0, True, 400.0))
    assert isinstance(actions[0], Persist)
    assert actions[0].job.state is JobState.CANCELLED
    state = running(cancel_requested=True, reason="cancelled by alice")
    state, actions = handle(state, Checkpointed("a", 400.0, 2.0))
    assert isinstance(actions[0], Persist)
    assert actions[0].job.state is JobState.CANCELLED


def test_a_checkpointed_run_continues_without_using_an_attempt() -> None:
    state, actions = handle(running(Target.SLURM), Checkpointed("a", 400.0, 2.0))
    job = state.active["a"]
    assert (job.attempt, job.segment, job.resume_from_ms, job.external_id) == (1, 2, 400.0, "")
    assert isinstance(actions[0], Persist)
    assert actions[0].kind == "continuing"
    assert actions[2] == PublishLog(
        "a", "run 2: resuming from 400 ms (the previous run stopped at its checkpoint)"
    )
    assert isinstance(actions[3], Launch)
    state, _ = handle(state, Launched("a", "77", 3.0))
    # No progress since the checkpoint it resumed from: the chain would never end.
    state, actions = handle(state, Checkpointed("a", 400.0, 4.0))
    assert "a" not in state.active
    assert isinstance(actions[0], Persist)
    assert actions[0].job.state is JobState.FAILED
    assert "without progress" in actions[0].job.reason


def test_a_restart_between_runs_launches_the_next_one() -> None:
    state, _ = handle(running(), Exited("a", JobState.FAILED, KILLED, 2.0, True, 400.0))
    pending = state.active["a"]  # as persisted: RUNNING, no external id, attempt 2
    _fresh, actions = handle(ServiceState(max_local_jobs=1), Recovered((pending,), 5.0))
    assert [type(a).__name__ for a in actions] == ["Persist", "Launch"]
    launch = actions[1]
    assert isinstance(launch, Launch)
    assert launch.job == dataclasses.replace(pending)
    assert launch.job.resume_from_ms == 400.0
    assert launch.job.segment == 2
