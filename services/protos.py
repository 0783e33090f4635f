"""Conversions between the service's own records and the ``brainsim.v1`` protobuf messages."""

from __future__ import annotations

import math
import time

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from services.gen.brainsim.v1 import job_service_pb2 as pb
from services.jobdir import DataRoot
from services.jobs import Job, JobState, LogStream, Target
from services.manager import LogEntry, ProgressUpdate, Update

__all__ = [
    "STATE_FROM_PROTO",
    "STATE_TO_PROTO",
    "TARGET_FROM_PROTO",
    "TARGET_TO_PROTO",
    "duration",
    "job_to_proto",
    "resource_use",
    "timestamp",
    "update_to_proto",
]

STATE_TO_PROTO = {
    JobState.QUEUED: pb.JOB_STATE_QUEUED,
    JobState.RUNNING: pb.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: pb.JOB_STATE_SUCCEEDED,
    JobState.FAILED: pb.JOB_STATE_FAILED,
    JobState.CANCELLED: pb.JOB_STATE_CANCELLED,
}
STATE_FROM_PROTO = {value: state for state, value in STATE_TO_PROTO.items()}

TARGET_TO_PROTO = {
    Target.LOCAL: pb.TARGET_LOCAL,
    Target.SLURM: pb.TARGET_SLURM,
    Target.PYNN: pb.TARGET_PYNN,
    Target.NIR: pb.TARGET_NIR,
    Target.EBRAINS_SPINNAKER: pb.TARGET_EBRAINS_SPINNAKER,
    Target.EBRAINS_BRAINSCALES2: pb.TARGET_EBRAINS_BRAINSCALES2,
}
TARGET_FROM_PROTO = {
    pb.TARGET_UNSPECIFIED: Target.LOCAL,
    **{value: target for target, value in TARGET_TO_PROTO.items()},
}

_STREAM_TO_PROTO = {
    LogStream.STDOUT: pb.LOG_STREAM_STDOUT,
    LogStream.STDERR: pb.LOG_STREAM_STDERR,
    LogStream.SERVICE: pb.LOG_STREAM_SERVICE,
}


def timestamp(epoch_s: float) -> Timestamp:
    """A protobuf timestamp of UNIX time ``epoch_s`` (s)."""
    seconds = math.floor(epoch_s)
    return Timestamp(seconds=seconds, nanos=round((epoch_s - seconds) * 1e9) % 1_000_000_000)


def duration(seconds: float) -> Duration:
    """A protobuf duration of ``seconds`` (>= 0)."""
    whole = math.floor(seconds)
    return Duration(seconds=whole, nanos=min(round((seconds - whole) * 1e9), 999_999_999))


def resource_use(job: Job) -> pb.ResourceUse:
    """What the job's runs used so far; ``wall_time`` up to now while it runs. The CPU time
    and memory are those of the runs that closed their recording (see
    :mod:`services.usage`); ``store_bytes`` as measured at the end, or recently while it
    runs."""
    start = job.start_time if job.start_time is not None else job.submit_time
    end = job.end_time if job.end_time is not None else time.time()
    return pb.ResourceUse(
        wall_time=duration(max(0.0, end - start)),
        cpu_time=duration(job.cpu_s),
        peak_rank_memory_bytes=job.peak_rank_memory_bytes,
        peak_memory_bytes=job.peak_memory_bytes,
        store_bytes=job.store_bytes or 0,
    )


def job_to_proto(job: Job, data_root: DataRoot) -> pb.Job:
    """The API's view of a job (``job_id`` empty: a job checked with ``validate_only``)."""
    message = pb.Job(
        job_id=job.job_id,
        owner=job.owner,
        state=STATE_TO_PROTO[job.state],
        target=TARGET_TO_PROTO[job.target],
        n_ranks=job.n_ranks,
        circuit_name=job.circuit_name,
        simulated_ms=job.simulated_ms,
        duration_ms=job.duration_ms,
        seed=job.seed,
        submit_time=timestamp(job.submit_time),
        recording_uri=(
            data_root.recording_uri(job.job_id) if job.job_id and job.target.simulates else ""
        ),
        failure_reason=job.reason,
        cancel_requested=job.cancel_requested,
        external_id=job.external_id,
        slurm=pb.SlurmOptions(partition=job.slurm_partition, account=job.slurm_account),
        max_retries=job.max_retries,
        attempt=job.attempt,
        segment=job.segment,
    )
    if job.checkpoint_every_ms is not None:
        message.checkpoint_every_ms = job.checkpoint_every_ms
    if job.start_time is not None:
        message.start_time.CopyFrom(timestamp(job.start_time))
    if job.end_time is not None:
        message.end_time.CopyFrom(timestamp(job.end_time))
    if job.time_limit_s is not None:
        whole = math.floor(job.time_limit_s)
        nanos = round((job.time_limit_s - whole) * 1e9)
        message.time_limit.CopyFrom(Duration(seconds=whole, nanos=nanos))
    if job.start_time is not None:  # unset before the first run starts
        message.usage.CopyFrom(resource_use(job))
    return message


def update_to_proto(update: Update, data_root: DataRoot) -> pb.WatchJobResponse:
    """One message of a ``WatchJob`` stream."""
    if isinstance(update, Job):
        return pb.WatchJobResponse(job=job_to_proto(update, data_root))
    if isinstance(update, ProgressUpdate):
        progress = pb.Progress(
            simulated_ms=update.simulated_ms, duration_ms=update.duration_ms, wall_s=update.wall_s
        )
        return pb.WatchJobResponse(progress=progress)
    entry: LogEntry = update
    line = pb.LogLine(
        time=timestamp(entry.time), stream=_STREAM_TO_PROTO[entry.stream], text=entry.text
    )
    return pb.WatchJobResponse(log=line)
