"""The job record of the service: what a job is, where it runs, and the states it goes through.

These are plain frozen values shared by the state machine, the store, the launchers and the
servicer; the protobuf messages of the API are built from them at the edge (``servicer.py``).
Times are UNIX epoch seconds (UTC), as ``time.time()`` gives them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["TERMINAL_STATES", "Job", "JobState", "LogStream", "Target"]


class JobState(enum.Enum):
    """Lifecycle of a job: ``QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED``.

    A queued job may also end directly: cancelled before it ran, or failed to launch.
    """

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        """True for the three final states."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class Target(enum.Enum):
    """Where a job runs."""

    LOCAL = "local"
    """brainsim's engine on the server's machine (forked ranks, or mpiexec's)."""
    SLURM = "slurm"
    """brainsim's engine in a batch job on the server's Slurm cluster."""
    PYNN = "pynn"
    """The circuit compiled to a PyNN script and run on pyNN.nest on the server's machine."""
    NIR = "nir"
    """The circuit compiled to a NIR graph; the graph is the result (nothing runs)."""
    EBRAINS_SPINNAKER = "ebrains:spinnaker"
    """The PyNN script run on SpiNNaker through the EBRAINS neuromorphic job queue."""
    EBRAINS_BRAINSCALES2 = "ebrains:brainscales2"
    """The PyNN script run on BrainScaleS-2 through the EBRAINS neuromorphic job queue."""

    @property
    def uses_local_slots(self) -> bool:
        """Whether its jobs run on the server's machine, so wait for one of its
        ``local.max_concurrent_jobs`` slots (the others wait in their own queue: Slurm's or
        the EBRAINS one)."""
        return self in (Target.LOCAL, Target.PYNN, Target.NIR)

    @property
    def ebrains(self) -> bool:
        """Whether its jobs go to the EBRAINS neuromorphic job queue."""
        return self in (Target.EBRAINS_SPINNAKER, Target.EBRAINS_BRAINSCALES2)

    def launched_as(self, external_id: str, n_ranks: int) -> str:
        """What a job's launch on this target started, in words (the service's log lines)."""
        match self:
            case Target.SLURM:
                return f"Slurm job {external_id}"
            case Target.EBRAINS_SPINNAKER | Target.EBRAINS_BRAINSCALES2:
                return f"EBRAINS job {external_id} ({self.value})"
            case Target.PYNN | Target.NIR:
                return f"brainsim --target {self.value} (pid {external_id})"
        return f"brainsim run --ranks {n_ranks} (pid {external_id})"

    @property
    def backend(self) -> str:
        """The brainsim backend (``brainsim.backends``) that checks and compiles its jobs."""
        return _BACKENDS[self]

    @property
    def simulates(self) -> bool:
        """Whether its jobs simulate and leave a recording (``nir`` only compiles)."""
        return self is not Target.NIR


_BACKENDS = {
    Target.LOCAL: "numba_mpi",
    Target.SLURM: "numba_mpi",
    Target.PYNN: "pynn",
    Target.NIR: "nir",
    Target.EBRAINS_SPINNAKER: "pynn:spiNNaker",
    Target.EBRAINS_BRAINSCALES2: "pynn:brainscales2",
}


class LogStream(enum.Enum):
    """Where a log line of a job comes from."""

    STDOUT = "stdout"
    """The simulator's standard output (lines that are not progress reports)."""
    STDERR = "stderr"
    """The simulator's standard error."""
    SERVICE = "service"
    """The service itself (launch, cancellation, Slurm messages)."""


@dataclass(frozen=True, slots=True)
class Job:
    """One simulation job as the service knows it."""

    job_id: str
    """Server-assigned id: 12 lowercase hex digits (also the name of the job's folder)."""
    owner: str
    """The user whose token submitted the job."""
    target: Target
    """Where it runs."""
    n_ranks: int
    """Number of MPI ranks."""
    circuit_name: str
    """The circuit's ``name``."""
    duration_ms: float
    """Simulated time in all, in ms (the override, or the circuit's)."""
    seed: int
    """The seed in effect (the override, or the circuit's)."""
    submit_time: float
    """When the job was accepted."""
    state: JobState = JobState.QUEUED
    """Where the job is in its lifecycle."""
    start_time: float | None = None
    """When the simulation processes started running (``None`` before)."""
    end_time: float | None = None
    """When the job reached a final state (``None`` before)."""
    simulated_ms: float = 0.0
    """Simulated time so far, in ms (progress)."""
    reason: str = ""
    """Why the job failed or was cancelled; empty otherwise."""
    cancel_requested: bool = False
    """Cancellation was asked for and the target has not yet confirmed that the job stopped."""
    external_id: str = ""
    """The target's own id once launched: process id (local) or Slurm job id; empty before."""
    time_limit_s: float | None = None
    """Wall-clock limit in s (local: the job is stopped and fails; Slurm: ``--time``)."""
    slurm_partition: str = ""
    """``sbatch --partition`` (empty: the cluster's default)."""
    slurm_account: str = ""
    """``sbatch --account`` (empty: the user's default)."""
    checkpoint_every_ms: float | None = None
    """The run writes a checkpoint every so many ms of simulated time (``None``: none); on
    Slurm, such a job also gets the checkpoint signal before its time limit and continues in
    a chain of Slurm jobs."""
    max_retries: int = 0
    """How often a failed run is started again (resumed from its last checkpoint, else from
    the start) before the job fails."""
    attempt: int = 1
    """1 + the retries used so far."""
    segment: int = 1
    """Which run of the job this is: 1 + retries + continuations of a chain (each one process
    group or Slurm job of its own)."""
    resume_from_ms: float | None = None
    """The current run resumes from the checkpoint at this simulated time (``None``: it starts
    from the beginning)."""
    cpu_s: float = 0.0
    """User + system CPU time of every rank of the runs counted so far (``counted_runs``), in s."""
    peak_rank_memory_bytes: int = 0
    """The largest peak resident set size of one rank of those runs, in bytes."""
    peak_memory_bytes: int = 0
    """The largest sum of one run's ranks' peak resident set sizes, in bytes."""
    counted_runs: tuple[str, ...] = ()
    """Ids of the runs whose resource use is counted above (each run's entry in the
    recording's ``provenance.runs``; a run killed before it closed its store has none)."""
    store_bytes: int | None = None
    """Size of the job's folder on disk when the job ended (``None``: not measured yet)."""

    @property
    def max_attempts(self) -> int:
        """How many attempts the job may make in all."""
        return self.max_retries + 1

    @property
    def launched(self) -> bool:
        """True once the target has accepted the job (it has an external id)."""
        return bool(self.external_id)
