"""The brainsim job service: a gRPC server that runs circuits locally or on Slurm, and its client.

Layout: ``machine`` (the pure job state machine), ``manager`` (the async shell executing it),
``store`` (SQLite), ``launchers/`` (local mpiexec, Slurm), ``servicer`` and ``server`` (gRPC),
``auth``, ``config``, ``validation``, ``client`` and ``cli`` (the ``brainsim`` subcommands).
Generated stubs live in ``gen/`` (``scripts/gen_protos.py``). Nothing in ``brainsim`` imports this.
"""

from __future__ import annotations

__all__: list[str] = []
