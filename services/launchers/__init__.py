"""Launchers: how jobs run on each target (local mpiexec, Slurm), behind one interface."""

from __future__ import annotations

from services.launchers.base import Launcher, LauncherHost
from services.launchers.local import LocalLauncher
from services.launchers.slurm import SlurmLauncher

__all__ = ["Launcher", "LauncherHost", "LocalLauncher", "SlurmLauncher"]
