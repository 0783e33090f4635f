"""The pure job state machine: each test feeds events and asserts the actions it asks for."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from services.jobs import Job, JobState, Target
from services.machine import (
    Action,
    Adopt,
    CancelRequested,
    Event,
    Exited,
    Kill,
    Launch,
    Launched,
    LaunchFailed,
    Persist,
    ProgressMade,
    PublishJob,
    PublishProgress,
    Recovered,
    ServiceState,
    Started,
    Submitted,
    handle,
)


def make_job(job_id: str, target: Target = Target.LOCAL, **changes: object) -> Job:
    job = Job(
        job_id=job_id,
        owner="alice",
        target=target,
        n_ranks=2,
        circuit_name="tiny",
        duration_ms=100.0,
        seed=7,
        submit_time=1.0,
    )
    return dataclasses.replace(job, **changes)


def run(state: ServiceState, *events: Event) -> tuple[ServiceState, list[Action]]:
    actions: list[Action] = []
    for event in events:
        state, new = handle(state, event)
        actions += new
    return state, actions


def kinds(actions: list[Action]) -> list[str]:
    """Action names with the job id, e.g. ``Persist:a:submitted``, ``Launch:a``."""
    out = []
    for action in actions:
        match action:
            case Persist(job=job, kind=kind):
                out.append(f"Persist:{job.job_id}:{kind}")
            case PublishJob(job=job):
                out.append(f"PublishJob:{job.job_id}:{job.state.value}")
            case PublishProgress(job_id=job_id, simulated_ms=ms):
                out.append(f"PublishProgress:{job_id}:{ms:g}")
            case Launch(job=job) | Kill(job=job) | Adopt(job=job):
                out.append(f"{type(action).__name__}:{job.job_id}")
    return out


def test_submitted_local_job_is_persisted_published_then_launched() -> None:
    state, actions = run(ServiceState(max_local_jobs=1), Submitted(make_job("a")))
    assert kinds(actions) == ["Persist:a:submitted", "PublishJob:a:QUEUED", "Launch:a"]
    assert state.local_slots == {"a"}
    assert state.local_queue == ()
    assert state.active["a"].state is JobState.QUEUED


def test_local_jobs_wait_for_a_free_slot_in_submission_order() -> None:
    state, actions = run(
        ServiceState(max_local_jobs=1),
        Submitted(make_job("a")),
        Submitted(make_job("b")),
        Submitted(make_job("c")),
    )
    assert [k for k in kinds(actions) if k.startswith("Launch")] == ["Launch:a"]
    assert state.local_queue == ("b", "c")
    state, actions = run(
        state,
        Launched("a", "111", 2.0),
        Started("a", 2.0),
        Exited("a", JobState.SUCCEEDED, "", 3.0),
    )
    assert kinds(actions)[-3:] == ["Persist:a:finished", "PublishJob:a:SUCCEEDED", "Launch:b"]
    assert state.local_slots == {"b"}
    assert state.local_queue == ("c",)
    assert "a" not in state.active


def test_zero_local_slots_hold_every_local_job() -> None:
    state, actions = run(ServiceState(max_local_jobs=0), Submitted(make_job("a")))
    assert "Launch:a" not in kinds(actions)
    assert state.local_queue == ("a",)


def test_slurm_jobs_are_launched_at_once_regardless_of_local_slots() -> None:
    state, actions = run(
        ServiceState(max_local_jobs=0),
        Submitted(make_job("s1", Target.SLURM)),
        Submitted(make_job("s2", Target.SLURM)),
    )
    assert [k for k in kinds(actions) if k.startswith("Launch")] == ["Launch:s1", "Launch:s2"]
    assert state.local_slots == frozenset()


def test_lifecycle_records_times_progress_and_success() -> None:
    state, _ = run(ServiceState(max_local_jobs=1), Submitted(make_job("a")))
    state, actions = run(state, Launched("a", "4242", 2.0))
    assert kinds(actions) == ["Persist:a:launched", "PublishJob:a:QUEUED"]
    assert state.active["a"].external_id == "4242"
    state, actions = run(state, Started("a", 2.5))
    assert kinds(actions) == ["Persist:a:started", "PublishJob:a:RUNNING"]
    assert state.active["a"].start_time == 2.5
    state, actions = run(state, ProgressMade("a", 40.0, 0.3, 2.8))
    assert kinds(actions) == ["PublishProgress:a:40"]
    assert state.active["a"].simulated_ms == 40.0
    state, actions = run(state, Exited("a", JobState.SUCCEEDED, "", 3.0))
    persisted = actions[0]
    assert isinstance(persisted, Persist)
    assert persisted.job.state is JobState.SUCCEEDED
    assert persisted.job.end_time == 3.0
    assert persisted.job.simulated_ms == 100.0
    assert persisted.job.reason == ""


def test_progress_never_goes_back_and_implies_running() -> None:
    state, _ = run(
        ServiceState(max_local_jobs=0),
        Submitted(make_job("s", Target.SLURM)),
        Launched("s", "17", 2.0),
    )
    state, actions = run(state, ProgressMade("s", 10.0, 0.1, 3.0))
    assert kinds(actions) == ["Persist:s:started", "PublishJob:s:RUNNING", "PublishProgress:s:10"]
    state, actions = run(state, ProgressMade("s", 5.0, 0.2, 3.1))
    assert actions == []
    assert state.active["s"].simulated_ms == 10.0


def test_cancelling_a_queued_local_job_ends_it_without_launching() -> None:
    state, _ = run(
        ServiceState(max_local_jobs=1), Submitted(make_job("a")), Submitted(make_job("b"))
    )
    state, actions = run(state, CancelRequested("b", "alice", 5.0))
    assert kinds(actions) == ["Persist:b:finished", "PublishJob:b:CANCELLED"]
    ended = actions[0]
    assert isinstance(ended, Persist)
    assert ended.job.reason == "cancelled by alice"
    assert ended.job.end_time == 5.0
    assert state.local_queue == ()
    assert "b" not in state.active


def test_cancelling_a_running_job_kills_it_and_the_exit_becomes_cancelled() -> None:
    state, _ = run(
        ServiceState(max_local_jobs=1),
        Submitted(make_job("a")),
        Launched("a", "99", 1.5),
        Started("a", 1.5),
    )
    state, actions = run(state, CancelRequested("a", "alice", 2.0))
    assert kinds(actions) == ["Persist:a:cancel_requested", "PublishJob:a:RUNNING", "Kill:a"]
    assert state.active["a"].cancel_requested
    # A second request changes nothing (no second kill).
    state, actions = run(state, CancelRequested("a", "alice", 2.1))
    assert actions == []
    # The killed process exits with a failure status; the job still ends CANCELLED.
    state, actions = run(state, Exited("a", JobState.FAILED, "killed by SIGTERM", 3.0))
    ended = actions[0]
    assert isinstance(ended, Persist)
    assert ended.job.state is JobState.CANCELLED
    assert ended.job.reason == "cancelled by alice"
    assert not ended.job.cancel_requested


def test_a_job_that_succeeds_despite_a_cancel_request_is_succeeded() -> None:
    state, _ = run(
        ServiceState(max_local_jobs=1),
        Submitted(make_job("a")),
        Launched("a", "99", 1.5),
        CancelRequested("a", "alice", 2.0),
    )
    _, actions = run(state, Exited("a", JobState.SUCCEEDED, "", 3.0))
    assert kinds(actions)[:2] == ["Persist:a:finished", "PublishJob:a:SUCCEEDED"]


def test_cancel_during_launch_kills_as_soon_as_the_launch_is_reported() -> None:
    state, _ = run(ServiceState(max_local_jobs=0), Submitted(make_job("s", Target.SLURM)))
    state, actions = run(state, CancelRequested("s", "alice", 2.0))
    assert "Kill:s" not in kinds(actions)  # nothing to kill yet
    _, actions = run(state, Launched("s", "31", 2.5))
    assert kinds(actions) == ["Persist:s:launched", "PublishJob:s:QUEUED", "Kill:s"]


def test_launch_failure_fails_the_job_and_frees_the_slot() -> None:
    state, _ = run(
        ServiceState(max_local_jobs=1), Submitted(make_job("a")), Submitted(make_job("b"))
    )
    state, actions = run(state, LaunchFailed("a", "mpiexec not found", 2.0))
    assert kinds(actions) == ["Persist:a:finished", "PublishJob:a:FAILED", "Launch:b"]
    ended = actions[0]
    assert isinstance(ended, Persist)
    assert ended.job.reason == "launch failed: mpiexec not found"


def test_events_about_unknown_or_finished_jobs_are_ignored() -> None:
    state, _ = run(
        ServiceState(max_local_jobs=1),
        Submitted(make_job("a")),
        Launched("a", "5", 1.0),
        Exited("a", JobState.FAILED, "boom", 2.0),
    )
    for event in (
        Exited("a", JobState.FAILED, "again", 3.0),
        Started("a", 3.0),
        ProgressMade("a", 1.0, 0.1, 3.0),
        CancelRequested("a", "alice", 3.0),
        Launched("zz", "6", 3.0),
    ):
        new_state, actions = handle(state, event)
        assert actions == []
        assert new_state == state


def test_recovery_requeues_unlaunched_jobs_and_adopts_launched_ones() -> None:
    jobs = (
        make_job("run1", state=JobState.RUNNING, external_id="100", start_time=1.0),
        make_job("slu1", Target.SLURM, external_id="77"),
        make_job("new1"),
        make_job("new2"),
        make_job("slu2", Target.SLURM),
        make_job("gone", cancel_requested=True, reason="cancelled by alice"),
        make_job("kill", external_id="101", cancel_requested=True, reason="cancelled by bob"),
    )
    state, actions = run(ServiceState(max_local_jobs=3), Recovered(jobs, 9.0))
    names = kinds(actions)
    assert "Adopt:run1" in names
    assert "Adopt:slu1" in names
    assert "Launch:slu2" in names
    assert names.index("Adopt:kill") < names.index("Kill:kill")
    # run1 and kill hold local slots already; one is left, for the oldest queued job.
    assert "Launch:new1" in names
    assert "Launch:new2" not in names
    assert state.local_queue == ("new2",)
    assert state.local_slots == {"run1", "kill", "new1"}
    assert "Persist:gone:finished" in names
    assert "gone" not in state.active


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["submit", "launch", "start", "progress", "exit", "fail", "cancel"]),
            st.integers(0, 5),
            st.sampled_from([Target.LOCAL, Target.SLURM]),
        ),
        max_size=60,
    ),
    st.integers(0, 3),
)
def test_invariants_hold_for_any_event_sequence(
    script: list[tuple[str, int, Target]], slots: int
) -> None:
    """Slots never exceed the limit (except adopted jobs), queued ids are active, finished jobs
    are gone, and each job is launched at most once."""
    state = ServiceState(max_local_jobs=slots)
    launches: list[str] = []
    for step, (what, index, target) in enumerate(script):
        job_id = f"j{index}"
        at = float(step)
        event: Event
        if what == "submit":
            event = Submitted(make_job(f"{job_id}-{step}", target))
        else:
            candidates = sorted(state.active)
            if not candidates:
                continue
            job_id = candidates[index % len(candidates)]
            event = {
                "launch": Launched(job_id, str(step + 1), at),
                "start": Started(job_id, at),
                "progress": ProgressMade(job_id, float(step), 0.0, at),
                "exit": Exited(job_id, JobState.SUCCEEDED, "", at),
                "fail": LaunchFailed(job_id, "x", at),
                "cancel": CancelRequested(job_id, "alice", at),
            }[what]
        state, actions = handle(state, event)
        launches += [a.job.job_id for a in actions if isinstance(a, Launch)]
        for action in actions:
            if isinstance(action, Persist) and action.job.state.terminal:
                assert action.job.job_id not in state.active
        assert len(state.local_slots) <= slots
        assert set(state.local_queue) <= set(state.active)
        assert not set(state.local_queue) & state.local_slots
        assert all(state.active[j].target is Target.LOCAL for j in state.local_queue)
    assert len(launches) == len(set(launches))
