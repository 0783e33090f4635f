"""The one interface every launcher implements, and the host interface launchers report through.

A launcher starts a job on its target and then follows it, reporting what happens as state-machine
events (:class:`~services.machine.Launched`, :class:`~services.machine.Started`,
:class:`~services.machine.ProgressMade`, :class:`~services.machine.Exited`,
:class:`~services.machine.LaunchFailed`) and log lines to its :class:`LauncherHost`. Its methods
never raise for a job's failure: a failure is an event. Stopping a launcher (:meth:`Launcher.close`)
stops the following, never the jobs, so a restarted server can adopt them.
"""

from __future__ import annotations

from typing import Protocol

from services.jobs import Job, LogStream, Target
from services.machine import Event

__all__ = ["Launcher", "LauncherHost"]


class LauncherHost(Protocol):
    """What a launcher reports to (the job manager)."""

    def emit(self, event: Event) -> None:
        """Queue a state-machine event (never blocks)."""

    def log(self, job_id: str, stream: LogStream, text: str) -> None:
        """Publish one log line of a job to its watchers, after the events emitted before it."""

    def now(self) -> float:
        """The current time, epoch seconds."""


class Launcher(Protocol):
    """Runs jobs on one target."""

    @property
    def target(self) -> Target:
        """The target this launcher serves."""

    def unavailable_reason(self) -> str | None:
        """Why this target cannot take jobs now (``None``: it can)."""

    async def launch(self, job: Job) -> None:
        """Start ``job`` (its folder holds the circuit) and follow it until it ends."""

    async def kill(self, job: Job) -> None:
        """Stop a launched job; its ending is reported as an event as usual."""

    async def locate(self, job: Job) -> str | None:
        """After a restart: the external id of a job whose launch was not recorded, if any."""

    async def adopt(self, job: Job) -> None:
        """After a restart: follow a job launched by an earlier server process."""

    async def close(self) -> None:
        """Stop following jobs (they keep running)."""
