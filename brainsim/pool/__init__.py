"""Resident ranks: a pool of MPI ranks that keep the engine loaded and run one job after another.

A ``brainsim run`` pays about a second before its first step: ``mpiexec`` starts, every rank
imports numpy, numba and zarr and loads the compiled step loop. For a small circuit that is most
of the run. ``brainsim pool start --ranks N`` starts N ranks that pay it once and then wait, idle
and without spinning, on a Unix socket; ``brainsim run --ranks N`` sends its arguments there when
such a pool runs the same brainsim, and starts ranks of its own otherwise. The recording is the
same either way, bit for bit.

- :mod:`brainsim.pool.protocol`: framing, the pool's socket path and the code fingerprint (no
  heavy imports: the client side of every ``brainsim run`` loads it);
- :mod:`brainsim.pool.client`: run a job in a pool, start, stop and list pools;
- :mod:`brainsim.pool.server`: what each pool rank runs.
"""
