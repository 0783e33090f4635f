"""The service's subcommands of ``brainsim``: ``serve``, ``submit``, ``status``, ``watch``,
``cancel``, ``delete``, ``jobs``, ``logs`` and ``fetch`` (registered through the
``brainsim.commands`` entry point).

Client commands find the server and token in flags or the environment: ``--server`` /
``BRAINSIM_SERVER`` (default ``127.0.0.1:50051``), ``--token`` / ``BRAINSIM_TOKEN`` or
``--token-file`` / ``BRAINSIM_TOKEN_FILE``, ``--ca-cert`` / ``BRAINSIM_CA_CERT`` (TLS with that
CA) or ``--tls`` (TLS with the system's CAs). Failed calls print the status code, the message and
every field violation on stderr, without a traceback.

Exit codes: 0 success; 1 a call failed, or the job watched/waited for FAILED; 2 bad arguments or
configuration; 130 the job watched/waited for was CANCELLED.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import grpc

from services.client import (
    DEFAULT_ADDRESS,
    AttachmentError,
    DownloadError,
    JobClient,
    circuit_attachments,
    describe_error,
)
from services.config import ConfigError, ServerConfig, load_config
from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.live import STATE_NAMES, ActivityView
from services.protos import TARGET_TO_PROTO

__all__ = ["add_serve_arguments", "register", "serve_main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130

_TARGETS = {target.value: value for target, value in TARGET_TO_PROTO.items()}
_TARGET_NAMES = {value: name for name, value in _TARGETS.items()}
_STREAM_NAMES = {
    value: name.removeprefix("LOG_STREAM_").lower() for name, value in pb.LogStream.items()
}
_FINAL_EXIT = {
    pb.JOB_STATE_SUCCEEDED: EXIT_OK,
    pb.JOB_STATE_FAILED: EXIT_FAILED,
    pb.JOB_STATE_CANCELLED: EXIT_CANCELLED,
}


# --- serve ---------------------------------------------------------------------------------------


def _server_config(args: argparse.Namespace) -> ServerConfig:
    """The configuration file (if any) with the flags given laid over it."""
    overrides: dict[str, Any] = {}
    for key in ("listen",):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    for key in ("data_root", "token_file", "address_file"):
        if getattr(args, key) is not None:
            overrides[key] = Path(getattr(args, key))
    if args.insecure_no_auth:
        overrides["insecure_no_auth"] = True
    if args.allow_plaintext:
        overrides["allow_plaintext"] = True
    if args.tls_cert or args.tls_key:
        overrides["tls"] = {"cert": args.tls_cert, "key": args.tls_key}
        if args.tls_client_ca:
            overrides["tls"]["client_ca"] = args.tls_client_ca
    if args.max_local_jobs is not None:
        overrides["local"] = {"max_concurrent_jobs": args.max_local_jobs}
    if args.slurm:
        overrides["slurm"] = {}
    return load_config(args.config, overrides)


def serve_main(args: argparse.Namespace) -> int:
    """``brainsim serve``: run the job server until SIGINT/SIGTERM."""
    from services.server import serve

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = _server_config(args)
        asyncio.run(serve(config))
    except ConfigError as exc:
        sys.stderr.write(f"brainsim serve: configuration problem:\n{exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``brainsim serve`` (also ``python -m services``)."""
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:50051; port 0: any)")
    parser.add_argument("--data-root", help="folder for the job store, jobs and recordings")
    parser.add_argument("--token-file", help="bearer tokens: lines 'USER TOKEN|sha256:HEX'")
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="no authentication, every caller is 'anonymous' (loopback addresses only)",
    )
    parser.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="allow a non-loopback address without TLS (tokens travel in clear text)",
    )
    parser.add_argument("--tls-cert", help="server certificate (PEM)")
    parser.add_argument("--tls-key", help="server private key (PEM)")
    parser.add_argument("--tls-client-ca", help="require client certificates signed by this CA")
    parser.add_argument("--max-local-jobs", type=int, help="local jobs running at once")
    parser.add_argument("--slurm", action="store_true", help="enable the Slurm target")
    parser.add_argument("--address-file", help="write the bound HOST:PORT here once serving")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


# --- client plumbing -----------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> JobClient:
    """A client from the flags, falling back to the environment."""
    address = args.server or os.environ.get("BRAINSIM_SERVER") or DEFAULT_ADDRESS
    # Flags before the environment; a token before a token file at the same level.
    token = args.token
    token_file = args.token_file
    if token is None and token_file is None:
        token = os.environ.get("BRAINSIM_TOKEN")
        token_file = os.environ.get("BRAINSIM_TOKEN_FILE")
    if token is None and token_file:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    ca_cert = args.ca_cert or os.environ.get("BRAINSIM_CA_CERT")
    roots = Path(ca_cert).read_bytes() if ca_cert else None
    return JobClient(address, token, root_certificates=roots, tls=args.tls, timeout_s=args.timeout)


def _client_command(
    work: Callable[[JobClient, argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Wrap a client command: build the client, print gRPC and file errors readably."""

    def run(args: argparse.Namespace) -> int:
        try:
            with _client(args) as client:
                return work(client, args)
        except grpc.RpcError as error:
            sys.stderr.write(f"error: {describe_error(error)}\n")
            return EXIT_FAILED
        except AttachmentError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return EXIT_USAGE
        except OSError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return EXIT_USAGE
        except KeyboardInterrupt:
            return EXIT_CANCELLED

    return run


def _when(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    moment = datetime.datetime.fromtimestamp(ts.seconds, tz=datetime.UTC).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _percent(job: Any) -> float:
    return 100.0 * job.simulated_ms / job.duration_ms if job.duration_ms else 0.0


def _job_details(job: Any) -> str:
    fields: Mapping[str, str] = {
        "job": job.job_id or "(not created: validate only)",
        "state": STATE_NAMES[job.state] + (" (cancel requested)" if job.cancel_requested else ""),
        "owner": job.owner,
        "circuit": job.circuit_name,
        "target": _TARGET_NAMES[job.target] + (f" ({job.external_id})" if job.external_id else ""),
        "ranks": str(job.n_ranks),
        "progress": f"{job.simulated_ms:g} / {job.duration_ms:g} ms ({_percent(job):.0f}%)",
        "seed": str(job.seed),
        "submitted": _when(job.submit_time),
        "started": _when(job.start_time),
        "ended": _when(job.end_time),
        "recording": job.recording_uri or "-",
    }
    lines = [f"{key + ':':11s}{value}" for key, value in fields.items()]
    if job.HasField("checkpoint_every_ms"):
        lines.append(f"{'checkpoint:':11s}every {job.checkpoint_every_ms:g} ms")
    if job.max_retries or job.segment > 1:
        attempts = f"{job.attempt} of {job.max_retries + 1}, run {job.segment}"
        lines.append(f"{'attempt:':11s}{attempts}")
    if job.HasField("usage"):
        lines.append(f"{'usage:':11s}{_usage(job.usage)}")
    if job.failure_reason:
        reason = job.failure_reason.replace("\n", "\n" + " " * 11)
        lines.append(f"{'reason:':11s}{reason}")
    return "\n".join(lines)


# --- watching ----------------------------------------------------------------------------------


class _WatchPrinter:
    """Shows a watch stream: a live bar on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO, err: TextIO, show_logs: bool) -> None:
        self.out = out
        self.err = err
        self.show_logs = show_logs
        self.bar = out.isatty()
        self.state = pb.JOB_STATE_UNSPECIFIED
        self.last_line_at = float("-inf")
        self.last_fraction = -1.0
        self.bar_text = ""

    def _clear_bar(self) -> None:
        if self.bar and self.bar_text:
            self.out.write("\r" + " " * len(self.bar_text) + "\r")

    def _draw_bar(self, simulated_ms: float, duration_ms: float) -> None:
        fraction = min(1.0, simulated_ms / duration_ms) if duration_ms else 0.0
        width = 30
        filled = int(width * fraction)
        self.bar_text = (
            f"[{'#' * filled}{'.' * (width - filled)}] {100 * fraction:5.1f}%  "
            f"{simulated_ms:g}/{duration_ms:g} ms  {STATE_NAMES[self.state]}"
        )
        self.out.write("\r" + self.bar_text)
        self.out.flush()

    def job(self, job: Any) -> None:
        if job.state != self.state:
            self.state = job.state
            self._clear_bar()
            text = f"job {job.job_id}: {STATE_NAMES[job.state]}"
            if job.failure_reason:
                text += f" ({job.failure_reason})"
            self.out.write(text + "\n")
            self.bar_text = ""
            if job.state == pb.JOB_STATE_SUCCEEDED:
                self.out.write(_results_line(job))
            self.out.flush()

    def progress(self, progress: Any) -> None:
        if self.bar:
            self._draw_bar(progress.simulated_ms, progress.duration_ms)
            return
        now = time.monotonic()
        fraction = progress.simulated_ms / progress.duration_ms if progress.duration_ms else 0.0
        if (
            now - self.last_line_at >= 1.0
            or fraction >= 1.0
            or fraction - self.last_fraction >= 0.25
        ):
            self.last_line_at, self.last_fraction = now, fraction
            self.out.write(
                f"progress: {progress.simulated_ms:g}/{progress.duration_ms:g} ms "
                f"({100 * fraction:.0f}%)\n"
            )
            self.out.flush()

    def log(self, line: Any) -> None:
        if not self.show_logs:
            return
        self._clear_bar()
        self.err.write(f"[{_STREAM_NAMES[line.stream]}] {line.text}\n")
        self.err.flush()
        if self.bar and self.bar_text:
            self.out.write("\r" + self.bar_text)
            self.out.flush()


def _follow(client: JobClient, job_id: str, show_logs: bool) -> int:
    printer = _WatchPrinter(sys.stdout, sys.stderr, show_logs)
    final = pb.JOB_STATE_UNSPECIFIED
    for update in client.watch(job_id):
        kind = update.WhichOneof("update")
        if kind == "job":
            printer.job(update.job)
            final = update.job.state
        elif kind == "progress":
            printer.progress(update.progress)
        elif kind == "log":
            printer.log(update.log)
    return _FINAL_EXIT.get(final, EXIT_FAILED)


# --- client commands -----------------------------------------------------------------------------


def _submit(client: JobClient, args: argparse.Namespace) -> int:
    if args.circuit == "-":
        text, base_dir = sys.stdin.read(), Path.cwd()
    else:
        text, base_dir = Path(args.circuit).read_text("utf-8"), Path(args.circuit).parent
    # The files the circuit names (relative to its folder) travel with it.
    attachments = circuit_attachments(text, base_dir)
    job = client.submit(
        text,
        n_ranks=args.ranks,
        target=_TARGETS[args.target],
        duration_ms=args.duration_ms,
        seed=args.seed,
        time_limit_s=args.time_limit_s,
        partition=args.partition or "",
        account=args.account or "",
        validate_only=args.dry_run,
        attachments=attachments,
        checkpoint_every_ms=args.checkpoint_every_ms,
        max_retries=args.max_retries,
        ebrains_token=_ebrains_token(args),
        ebrains_collab=args.collab or "",
    )
    size = sum(len(content) for content in attachments.values())
    attached = f"attached:  {', '.join(attachments)} ({size} bytes)\n" if attachments else ""
    if args.dry_run:
        sys.stdout.write(f"{args.circuit}: accepted (dry run, nothing submitted)\n")
        sys.stdout.write(_job_details(job) + "\n" + attached)
        return EXIT_OK
    if args.quiet:
        sys.stdout.write(job.job_id + "\n")
    else:
        sys.stdout.write(
            f"submitted job {job.job_id} ({STATE_NAMES[job.state]}, {job.n_ranks} rank(s), "
            f"{_TARGET_NAMES[job.target]})\n{_results_line(job)}{attached}"
        )
    sys.stdout.flush()
    if args.wait:
        return _follow(client, job.job_id, show_logs=not args.quiet)
    return EXIT_OK


def _results_line(job: pb.Job) -> str:
    """Where the job's results are: its recording, or (a compile-only job) its artefacts."""
    if job.recording_uri:
        return f"recording: {job.recording_uri}\n"
    return f"artefacts: brainsim fetch {job.job_id} -o DIR\n"


def _ebrains_token(args: argparse.Namespace) -> str:
    """The EBRAINS token to send: from ``--ebrains-token-file``, else ``$EBRAINS_TOKEN``, else
    none (the server's own)."""
    if args.ebrains_token_file:
        return Path(args.ebrains_token_file).read_text("utf-8").strip()
    return os.environ.get("EBRAINS_TOKEN", "").strip()


def _status(client: JobClient, args: argparse.Namespace) -> int:
    if args.job is not None:
        sys.stdout.write(_job_details(client.get(args.job)) + "\n")
        return EXIT_OK
    sys.stdout.write(f"server {client.address}: {client.health()}\n")
    active = list(client.list_jobs(states=[pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING]))
    counts = dict.fromkeys(("QUEUED", "RUNNING"), 0)
    for job in active:
        counts[STATE_NAMES[job.state]] += 1
    sys.stdout.write(f"your jobs: {counts['QUEUED']} queued, {counts['RUNNING']} running\n")
    sys.stdout.write("targets:\n")
    for target in client.targets():
        where = "available" if target.available else f"unavailable: {target.unavailable_reason}"
        sys.stdout.write(f"  {target.name:<22} {where}\n")
    return EXIT_OK


def _watch(client: JobClient, args: argparse.Namespace) -> int:
    if args.activity:
        return _watch_activity(client, args)
    return _follow(client, args.job, show_logs=not args.no_logs)


def _watch_activity(client: JobClient, args: argparse.Namespace) -> int:
    view = ActivityView(sys.stdout, args.job)
    state = ""
    for frame in client.activity(args.job, bin_ms=args.bin_ms, populations=args.population or ()):
        view.show(frame)
        state = frame.state
    job = client.get(args.job)
    if job.failure_reason:
        sys.stdout.write(f"job {job.job_id}: {state} ({job.failure_reason})\n")
    return _FINAL_EXIT.get(job.state, EXIT_FAILED)


def _size(n_bytes: int) -> str:
    """``n_bytes`` for people: ``512 B``, ``3.2 MiB``."""
    size = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _usage(usage: Any) -> str:
    """A ``ResourceUse`` on one line."""
    wall_s = usage.wall_time.seconds + usage.wall_time.nanos / 1e9
    cpu_s = usage.cpu_time.seconds + usage.cpu_time.nanos / 1e9
    return (
        f"wall {wall_s:.1f} s, CPU {cpu_s:.1f} s, memory {_size(usage.peak_memory_bytes)} "
        f"(largest rank {_size(usage.peak_rank_memory_bytes)}), "
        f"folder {_size(usage.store_bytes)}"
    )


def _delete(client: JobClient, args: argparse.Namespace) -> int:
    failed = False
    for job_id in args.jobs:
        try:
            freed = client.delete(job_id)
        except grpc.RpcError as error:
            sys.stderr.write(f"error: job {job_id}: {describe_error(error)}\n")
            failed = True
            continue
        sys.stdout.write(f"job {job_id}: deleted ({_size(freed)} freed)\n")
    return EXIT_FAILED if failed else EXIT_OK


def _cancel(client: JobClient, args: argparse.Namespace) -> int:
    job = client.get(args.job)
    if job.state in _FINAL_EXIT:
        sys.stdout.write(f"job {job.job_id}: already finished ({STATE_NAMES[job.state]})\n")
        return EXIT_OK
    job = client.cancel(args.job)
    if job.cancel_requested:
        sys.stdout.write(f"job {job.job_id}: cancel requested (still {STATE_NAMES[job.state]})\n")
    else:
        sys.stdout.write(f"job {job.job_id}: {STATE_NAMES[job.state]}\n")
    return EXIT_OK


def _jobs(client: JobClient, args: argparse.Namespace) -> int:
    states = [pb.JobState.Value(f"JOB_STATE_{s.upper()}") for s in args.state or ()]
    rows = []
    for job in client.list_jobs(states=states, page_size=min(args.limit, 1000)):
        rows.append(
            (
                job.job_id,
                STATE_NAMES[job.state],
                _TARGET_NAMES[job.target],
                str(job.n_ranks),
                f"{_percent(job):.0f}%",
                _when(job.submit_time),
                job.circuit_name,
            )
        )
        if len(rows) >= args.limit:
            break
    header = ("JOB", "STATE", "TARGET", "RANKS", "PROGRESS", "SUBMITTED", "CIRCUIT")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        sys.stdout.write(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        )
    return EXIT_OK


def _logs(client: JobClient, args: argparse.Namespace) -> int:
    try:
        for line in client.logs(args.job, stream=args.stream, follow=args.follow):
            # The output files' lines exactly as written; the service's with their time.
            stamp = f"{_when(line.time)}  " if line.HasField("time") else ""
            sys.stdout.write(f"{stamp}{line.text}\n")
            sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`brainsim logs JOB | head`): no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
    return EXIT_OK


def _fetch(client: JobClient, args: argparse.Namespace) -> int:
    out_dir = Path(args.output)
    names = None if args.only is None else list(dict.fromkeys(args.only))
    try:
        written = client.fetch(args.job, out_dir, names)
    except DownloadError as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_FAILED
    for _, path, size in written:
        sys.stdout.write(f"wrote {path} ({size} bytes)\n")
    total = sum(size for _, _, size in written)
    sys.stdout.write(f"{len(written)} file(s), {total} bytes in {out_dir}\n")
    if names is None and "recording.zarr.zip" not in [name for name, _, _ in written]:
        sys.stdout.write("no recording.zarr.zip: the job has not ended, or no run wrote one\n")
    return EXIT_OK


# --- registration --------------------------------------------------------------------------------


def _connection_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("server connection")
    group.add_argument(
        "--server", help=f"HOST:PORT (env BRAINSIM_SERVER, default {DEFAULT_ADDRESS})"
    )
    group.add_argument("--token", help="bearer token (env BRAINSIM_TOKEN)")
    group.add_argument("--token-file", help="file holding the token (env BRAINSIM_TOKEN_FILE)")
    group.add_argument("--ca-cert", help="use TLS, trusting this CA (PEM; env BRAINSIM_CA_CERT)")
    group.add_argument("--tls", action="store_true", help="use TLS with the system's CAs")
    group.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")
    return parent


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the service's subcommands (see the module's docstring)."""
    connection = _connection_flags()

    p = subparsers.add_parser("serve", help="run the gRPC job server")
    add_serve_arguments(p)
    p.set_defaults(func=serve_main)

    p = subparsers.add_parser("submit", parents=[connection], help="submit a circuit as a job")
    p.add_argument(
        "circuit",
        help="circuit file (YAML or JSON; '-' reads standard input); the files it names "
        "(from_file connections, stimulus data) are sent with it",
    )
    p.add_argument("--ranks", type=_positive_int, default=1, help="MPI ranks (default 1)")
    p.add_argument("--target", choices=sorted(_TARGETS), default="local", help="where to run")
    p.add_argument("--duration-ms", type=float, help="override the circuit's duration")
    p.add_argument("--seed", type=int, help="override the circuit's seed")
    p.add_argument("--time-limit-s", type=float, help="wall-clock limit in s")
    p.add_argument("--partition", help="Slurm partition")
    p.add_argument("--account", help="Slurm account")
    p.add_argument(
        "--checkpoint-every-ms",
        type=float,
        metavar="T",
        help="checkpoint every T ms of simulated time (retries resume; Slurm jobs chain)",
    )
    p.add_argument(
        "--max-retries", type=int, default=0, help="start a failed run again up to N times"
    )
    p.add_argument(
        "--ebrains-token-file",
        metavar="FILE",
        help="EBRAINS targets: a file holding your EBRAINS access token (default: "
        "$EBRAINS_TOKEN, else the server's own)",
    )
    p.add_argument("--collab", help="EBRAINS targets: the collab whose quota the job uses")
    p.add_argument("--wait", action="store_true", help="watch the job until it ends")
    p.add_argument("--dry-run", action="store_true", help="check everything, submit nothing")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the job id")
    p.set_defaults(func=_client_command(_submit))

    p = subparsers.add_parser("status", parents=[connection], help="show a job, or the server")
    p.add_argument("job", nargs="?", help="job id (none: server health and your job counts)")
    p.set_defaults(func=_client_command(_status))

    p = subparsers.add_parser("watch", parents=[connection], help="follow a job until it ends")
    p.add_argument("job", help="job id")
    p.add_argument("--no-logs", action="store_true", help="hide the job's log lines")
    p.add_argument(
        "--activity",
        action="store_true",
        help="show the network's activity instead: rates per population as they evolve",
    )
    p.add_argument(
        "--bin-ms", type=float, default=0.0, help="with --activity: bin width (default 10 ms)"
    )
    p.add_argument(
        "--population",
        action="append",
        help="with --activity: only this population (repeatable; default all recorded)",
    )
    p.set_defaults(func=_client_command(_watch))

    p = subparsers.add_parser("cancel", parents=[connection], help="cancel a job")
    p.add_argument("job", help="job id")
    p.set_defaults(func=_client_command(_cancel))

    p = subparsers.add_parser(
        "delete", parents=[connection], help="delete ended jobs: their folders and records"
    )
    p.add_argument("jobs", nargs="+", metavar="job", help="job id")
    p.set_defaults(func=_client_command(_delete))

    p = subparsers.add_parser("jobs", parents=[connection], help="list your jobs, newest first")
    p.add_argument(
        "--state",
        action="append",
        choices=["queued", "running", "succeeded", "failed", "cancelled"],
        help="only jobs in this state (repeatable)",
    )
    p.add_argument("--limit", type=_positive_int, default=50, help="at most this many (default 50)")
    p.set_defaults(func=_client_command(_jobs))

    p = subparsers.add_parser("logs", parents=[connection], help="print a job's output or log")
    p.add_argument("job", help="job id")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--stderr",
        dest="stream",
        action="store_const",
        const=pb.LOG_STREAM_STDERR,
        help="the simulator's standard error (default: its standard output)",
    )
    which.add_argument(
        "--service",
        dest="stream",
        action="store_const",
        const=pb.LOG_STREAM_SERVICE,
        help="the service's own messages about the job, with their times",
    )
    p.set_defaults(stream=pb.LOG_STREAM_STDOUT)
    p.add_argument("--follow", action="store_true", help="wait for more until the job ends")
    p.set_defaults(func=_client_command(_logs))

    p = subparsers.add_parser(
        "fetch", parents=[connection], help="download a job's results into a folder"
    )
    p.add_argument("job", help="job id")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write into")
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="only this artefact (repeatable), e.g. recording.zarr.zip, stdout.log",
    )
    p.set_defaults(func=_client_command(_fetch))
