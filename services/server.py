"""Assemble and run the job server: store, launchers, manager, gRPC (health, reflection, TLS).

:func:`start_server` returns a :class:`RunningServer` (tests use it in-process);
:func:`serve` runs one until SIGINT/SIGTERM. Shutting down stops following jobs, never the jobs:
local jobs run in their own sessions and Slurm jobs in Slurm, and the next server adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from services.auth import Authenticator, NoAuthentication, TokenFileAuthenticator
from services.config import ConfigError, ServerConfig
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.gen.brainsim.v1 import job_service_pb2_grpc as pb_grpc
from services.jobdir import DataRoot
from services.jobs import Target
from services.launchers.ebrains import EbrainsLauncher
from services.launchers.local import LocalLauncher
from services.launchers.slurm import SlurmLauncher
from services.manager import JobManager
from services.retention import RetentionSweeper
from services.servicer import JobServiceServicer, UndecodableRequests
from services.store import JobStore

__all__ = ["SERVICE_NAME", "RunningServer", "serve", "start_server"]

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["JobService"].full_name
_GRACE_S = 5.0

_INSECURE_BANNER = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  AUTHENTICATION IS OFF (--insecure-no-auth): every caller on %s is user %r,
!!  sees every job of that user and can cancel them. For development on one machine only.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


def write_address_file(path: Path, address: str) -> None:
    """Write ``address`` to ``path`` in one rename, so that whoever waits for the file to
    appear (a test, a script, a supervisor) never reads it empty or half-written."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(address + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@dataclass(slots=True)
class RunningServer:
    """A started server; :meth:`stop` it when done."""

    server: grpc.aio.Server
    manager: JobManager
    store: JobStore
    health: health_aio.HealthServicer
    validation_pool: ThreadPoolExecutor
    store_watch: asyncio.Task[None]
    lock_fd: int
    """Holds the data root's lock (one server per data root) until :meth:`stop`."""
    address: str
    """``HOST:PORT`` actually bound (the port resolved if 0 was asked for)."""
    retention: asyncio.Task[None] | None = None
    """Applies the retention policy (see :mod:`services.retention`)."""

    async def stop(self, grace_s: float = _GRACE_S) -> None:
        """Stop serving; jobs keep running."""
        await self.health.enter_graceful_shutdown()
        for task in (self.store_watch, self.retention):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.server.stop(grace_s)
        await self.manager.close()
        await self.store.close()
        self.validation_pool.shutdown(wait=False, cancel_futures=True)
        os.close(self.lock_fd)


def _lock(data_root: DataRoot) -> int:
    """Take the data root's lock; :class:`ConfigError` if another server holds it (two servers
    would both recover and launch the same queued jobs). The kernel drops it if we die."""
    fd = os.open(data_root.path / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"another server is using the data root {data_root.path}") from None
    return fd


def _authenticator(config: ServerConfig) -> Authenticator:
    if config.insecure_no_auth:
        authenticator = NoAuthentication()
        log.warning(_INSECURE_BANNER, config.listen, authenticator.user)
        return authenticator
    if config.token_file is None:
        raise ConfigError("token_file is required")
    try:
        tokens = TokenFileAuthenticator.load(config.token_file)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"token_file: {exc}") from exc
    log.info("token file %s: %d user(s)", config.token_file, len(tokens.users))
    return tokens


def _credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if config.tls is None:
        return None
    try:
        key = config.tls.key.read_bytes()
        cert = config.tls.cert.read_bytes()
        client_ca = config.tls.client_ca.read_bytes() if config.tls.client_ca else None
    except OSError as exc:
        raise ConfigError(f"tls: {exc}") from exc
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


async def _watch_store(manager: JobManager, health: health_aio.HealthServicer) -> None:
    """Report NOT_SERVING once the job store has failed (nothing can be made durable)."""
    await manager.store_failed.wait()
    for name in ("", SERVICE_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)


async def start_server(config: ServerConfig) -> RunningServer:
    """Start serving ``config``; raises :class:`ConfigError` for an unusable configuration.

    The port is bound before any job is recovered, so a server that cannot serve never touches
    the jobs of the data root.
    """
    problems = config.problems()
    if problems:
        raise ConfigError("\n".join(problems))
    for warning in config.warnings():
        log.warning("configuration: %s", warning)
    authenticator = _authenticator(config)
    credentials = _credentials(config)
    try:
        data_root = DataRoot.create(config.data_root, config.recording_uri_base)
    except OSError as exc:  # a read-only or full filesystem, a file in the way, no permission
        raise ConfigError(
            f"data_root {config.data_root}: cannot be used: {exc.strerror or exc}"
        ) from exc
    async with contextlib.AsyncExitStack() as undo:  # releases everything if a step fails
        lock_fd = _lock(data_root)
        undo.callback(os.close, lock_fd)
        data_root.clear_incoming()  # submissions an earlier server did not finish
        server = grpc.aio.server(
            interceptors=[UndecodableRequests(SERVICE_NAME)],
            options=[
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
                # A second server on the same port must fail, not share the port silently.
                ("grpc.so_reuseport", 0),
            ],
        )
        try:
            if credentials is None:
                port = server.add_insecure_port(config.listen)
            else:
                port = server.add_secure_port(config.listen, credentials)
        except RuntimeError as exc:
            raise ConfigError(f"cannot listen on {config.listen} (in use?)") from exc

        store = await JobStore.open(data_root.database)
        undo.push_async_callback(store.close)
        manager = JobManager(store, data_root, config.local.max_concurrent_jobs)
        undo.push_async_callback(manager.close)
        manager.add_launcher(
            LocalLauncher(config.local, data_root, manager, config.default_time_limit_s)
        )
        if config.slurm is not None:
            manager.add_launcher(SlurmLauncher(config.slurm, data_root, manager))
        for target in (Target.PYNN, Target.NIR):
            manager.add_launcher(
                LocalLauncher(
                    config.local,
                    data_root,
                    manager,
                    config.default_time_limit_s,
                    target=target,
                    pynn_python=config.pynn.python,
                )
            )
        if config.ebrains is not None:
            for target in (t for t in Target if t.ebrains):
                manager.add_launcher(EbrainsLauncher(config.ebrains, target, data_root, manager))
        for target in manager.launchers:
            reason = manager.unavailable_reason(target)
            if reason is not None:
                log.warning("target %s is unavailable: %s", target.value, reason)
        await manager.start()

        validation_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="validate")
        undo.callback(validation_pool.shutdown, wait=False)
        servicer = JobServiceServicer(
            manager, authenticator, data_root, config.limits, validation_pool, config.ebrains
        )
        pb_grpc.add_JobServiceServicer_to_server(servicer, server)
        health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        await server.start()
        undo.push_async_callback(server.stop, None)
        for name in ("", SERVICE_NAME):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        address = f"{config.listen.rpartition(':')[0]}:{port}"
        if config.address_file is not None:
            write_address_file(config.address_file, address)
        undo.pop_all()  # from here on, RunningServer.stop releases everything
    store_watch = asyncio.create_task(_watch_store(manager, health), name="store-health")
    sweeper = RetentionSweeper(config.retention, store, manager, data_root)
    retention = asyncio.create_task(sweeper.run(), name="retention")
    log.info(
        "brainsim job service on %s (%s; targets: %s; data root %s)",
        address,
        "TLS" if credentials is not None else "plaintext",
        ", ".join(t.value for t in manager.launchers),
        data_root.path,
    )
    return RunningServer(
        server,
        manager,
        store,
        health,
        validation_pool,
        store_watch,
        lock_fd,
        address,
        retention=retention,
    )


async def serve(config: ServerConfig) -> None:
    """Run the server until SIGINT or SIGTERM."""
    running = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down (jobs keep running; the next server adopts them)")
    finally:
        await running.stop()
