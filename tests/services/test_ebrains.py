"""The EBRAINS targets against a stand-in of the neuromorphic job queue on loopback
(tests/services/ebrains_standin.py; the real queue cannot be reached from here): the REST
client, the credentials, and the launcher end to end, the stand-in running the compiled PyNN
script on pyNN.nest in the reference environment."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import stat
import subprocess
import time
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from brainsim.recording import open_store
from services.config import EbrainsConfig
from services.ebrains import (
    CredentialsError,
    EbrainsError,
    QueueClient,
    TokenRefusedError,
    read_credentials,
    write_credentials,
)
from services.jobdir import DataRoot, JobDir
from services.jobs import Job, JobState, LogStream, Target
from services.launchers.ebrains import EbrainsLauncher, _local_path, job_tag
from services.machine import Event, Exited, Launched, LaunchFailed, Started
from tests.services.ebrains_standin import COLLAB, TOKEN, StandinQueue

ROOT = Path(__file__).resolve().parents[2]
JOB_ID = "0123456789ab"
WAIT_S = 60.0


@pytest.fixture
def queue(tmp_path: Path, nest_python: Path) -> Iterator[StandinQueue]:
    with StandinQueue(nest_python, tmp_path / "platform") as standin:
        yield standin


def small_circuit() -> str:
    """circuits/tiny.yaml (100 LIF neurons, Poisson drive) recording spikes only, 200 ms."""
    document = yaml.safe_load((ROOT / "circuits" / "tiny.yaml").read_text(encoding="utf-8"))
    document["recordings"] = {"spikes": "all"}
    document["simulation"]["duration_ms"] = 200.0
    return yaml.safe_dump(document)


class Host:
    """Collects what a launcher reports; ``ended`` is set by the first final event."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.logs: list[tuple[LogStream, str]] = []
        self.ended = asyncio.Event()

    def emit(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, Exited | LaunchFailed):
            self.ended.set()

    def log(self, job_id: str, stream: LogStream, text: str) -> None:
        assert job_id == JOB_ID
        self.logs.append((stream, text))

    def now(self) -> float:
        return time.time()

    def kinds(self) -> list[type]:
        return [type(e) for e in self.events]

    def ending(self) -> Exited | LaunchFailed:
        found = [e for e in self.events if isinstance(e, Exited | LaunchFailed)]
        assert len(found) == 1, self.events
        return found[0]

    async def wait(self, condition: Callable[[], bool] | None = None) -> None:
        if condition is None:
            await asyncio.wait_for(self.ended.wait(), WAIT_S)
            return
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, self.events
            await asyncio.sleep(0.02)


def setup_job(
    tmp_path: Path,
    *,
    target: Target = Target.EBRAINS_SPINNAKER,
    token: str = TOKEN,
    duration_ms: float = 150.0,
    seed: int = 3,
) -> tuple[DataRoot, JobDir, Job]:
    root = DataRoot.create(tmp_path / "data")
    job_dir = root.job(JOB_ID)
    job_dir.path.mkdir(parents=True)
    job_dir.circuit.write_text(small_circuit(), encoding="utf-8")
    write_credentials(job_dir.credentials, token, COLLAB)
    job = Job(JOB_ID, "alice", target, 1, "tiny", duration_ms, seed, time.time())
    return root, job_dir, job


def config_of(queue: StandinQueue) -> EbrainsConfig:
    return EbrainsConfig(
        url=queue.url,
        data_proxy_url=queue.data_proxy_url,
        poll_interval_s=0.05,
        request_timeout_s=10.0,
    )


# --- the client ----------------------------------------------------------------------------------


Step = Callable[[EbrainsLauncher, Launched], Awaitable[None]]


def run_launcher(
    queue: StandinQueue, root: DataRoot, job: Job, host: Host, meanwhile: Step | None = None
) -> None:
    """Launch ``job`` with a launcher for its target, run ``meanwhile(launcher, launched)``
    once it is launched (if it was), wait until it ends, and close the launcher."""

    async def scenario() -> None:
        launcher = EbrainsLauncher(config_of(queue), job.target, root, host)
        assert launcher.target is job.target
        assert launcher.unavailable_reason() is None  # the queue is asked per job
        await launcher.launch(job)
        if meanwhile is not None and isinstance(host.events[0], Launched):
            await meanwhile(launcher, host.events[0])
        await host.wait()
        await launcher.close()

    asyncio.run(scenario())


def test_client_uploads_submits_follows_finds_and_cancels(
    queue: StandinQueue, tmp_path: Path
) -> None:
    queue.release.clear()  # the job stays submitted
    client = QueueClient(queue.url, TOKEN, data_proxy_url=queue.data_proxy_url, timeout_s=10)
    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("run.py", "print('hello')\n")
    code = client.upload_code(archive, COLLAB, "brainsim/job 1/code.zip")
    assert code == f"{queue.data_proxy_url}/v1/buckets/{COLLAB}/brainsim/job%201/code.zip"
    assert queue.objects[(COLLAB, "brainsim/job 1/code.zip")] == archive.read_bytes()

    submitted = client.submit(
        code=code,
        command="run.py spiNNaker",
        collab=COLLAB,
        hardware_platform="SpiNNaker",
        tags=["brainsim-x-1"],
    )
    assert submitted.status == "submitted"
    assert submitted.active
    assert queue.submitted[-1] == {
        "code": code,
        "command": "run.py spiNNaker",
        "collab": COLLAB,
        "hardware_platform": "SpiNNaker",
        "tags": ["brainsim-x-1"],
    }
    assert client.job(submitted.job_id).status == "submitted"
    assert [j.job_id for j in client.find(COLLAB, "brainsim-x-1")] == [submitted.job_id]
    assert client.find(COLLAB, "brainsim-y-1") == []
    client.cancel(submitted.job_id)
    assert client.job(submitted.job_id).status == "removed"
    assert not client.job(submitted.job_id).active
    assert client.find(COLLAB, "brainsim-x-1") == []  # removed jobs are not listed
    assert ("DELETE", f"/jobs/{submitted.job_id}") in queue.requests


def test_client_errors_carry_the_status_and_the_queue_s_message(queue: StandinQueue) -> None:
    good = QueueClient(queue.url, TOKEN, data_proxy_url=queue.data_proxy_url, timeout_s=10)
    bad = QueueClient(queue.url, "expired", data_proxy_url=queue.data_proxy_url, timeout_s=10)
    with pytest.raises(TokenRefusedError) as refused:
        bad.job("1")
    assert refused.value.status == 401
    assert "token was refused" in str(refused.value)
    assert "Token may have expired" in str(refused.value)
    with pytest.raises(EbrainsError) as unknown:
        good.job("999")
    assert unknown.value.status == 404
    assert not isinstance(unknown.value, TokenRefusedError)
    assert "no job with id 999" in unknown.value.message
    with pytest.raises(EbrainsError) as no_collab:
        good.submit(code="x", command="run.py", collab="elsewhere", hardware_platform="SpiNNaker")
    assert no_collab.value.status == 404
    assert "access to this collab" in no_collab.value.message
    with pytest.raises(TokenRefusedError) as no_quota:
        good.submit(code="x", command="run.py", collab=COLLAB, hardware_platform="Loihi")
    assert no_quota.value.status == 403
    assert "token does not allow this (HTTP 403: You do not have sufficient compute quota" in str(
        no_quota.value
    )
    # A body the queue cannot take: FastAPI's field problems, in one message.
    with pytest.raises(EbrainsError) as refused_body:
        good._json("submitting", "POST", "/jobs/", {"collab": COLLAB, "tags": ["x"]})
    assert refused_body.value.status == 422
    assert "body.code: Field required" in refused_body.value.message
    assert "body.hardware_platform: Field required" in refused_body.value.message
    assert "body.tags" in refused_body.value.message
    # Nothing listens there: no answer at all.
    gone = QueueClient("http://127.0.0.1:9", TOKEN, data_proxy_url="http://127.0.0.1:9")
    with pytest.raises(EbrainsError) as unreachable:
        gone.job("1")
    assert unreachable.value.status == 0
    with pytest.raises(EbrainsError, match="not an http"):
        good.download("file:///etc/passwd", Path("unused"))


def test_credentials_file_and_fallbacks(tmp_path: Path) -> None:
    job_dir = JobDir(tmp_path)
    write_credentials(job_dir.credentials, "tok", "collab-a")
    assert stat.S_IMODE(job_dir.credentials.stat().st_mode) == 0o600
    assert json.loads(job_dir.credentials.read_text()) == {"token": "tok", "collab": "collab-a"}
    found = read_credentials(job_dir, EbrainsConfig(collab="default"))
    assert (found.token, found.collab) == ("tok", "collab-a")
    assert "tok" not in repr(found)

    job_dir.credentials.unlink()
    token_file = tmp_path / "server-token"
    token_file.write_text("server-tok\n")
    found = read_credentials(job_dir, EbrainsConfig(collab="default", token_file=token_file))
    assert (found.token, found.collab) == ("server-tok", "default")
    with pytest.raises(CredentialsError, match="no EBRAINS token"):
        read_credentials(job_dir, EbrainsConfig(collab="default"))
    with pytest.raises(CredentialsError, match="no EBRAINS collab"):
        read_credentials(job_dir, EbrainsConfig(token_file=token_file))
    with pytest.raises(CredentialsError, match="cannot be read"):
        read_credentials(job_dir, EbrainsConfig(token_file=tmp_path / "missing"))
    write_credentials(job_dir.credentials, "", "")  # a job that brought neither
    found = read_credentials(job_dir, EbrainsConfig(collab="default", token_file=token_file))
    assert (found.token, found.collab) == ("server-tok", "default")


def test_output_paths_lose_the_platform_s_prefix_and_never_leave_the_folder() -> None:
    assert _local_path("c/job_7/results/E.spikes.npz", "7") == Path("E.spikes.npz")
    assert _local_path("c/job_7/reports/a/b.txt", "7") == Path("reports/a/b.txt")
    assert _local_path("http://h/data/c/job_7/results/E.pkl", "7") == Path("E.pkl")
    assert _local_path("c/job_7/results/../../x", "7") is None
    assert _local_path("c/job_7/", "7") is None


# --- the launcher --------------------------------------------------------------------------------


def count_neo_spikes(nest_python: Path, results: Path) -> dict[str, int]:
    """Spikes per population in the Neo pickles the script wrote (read with neo in the
    reference environment)."""
    script = (
        "import json, pathlib, sys, pickle\n"
        "out = {}\n"
        "for path in sorted(pathlib.Path(sys.argv[1]).glob('*.pkl')):\n"
        "    block = pickle.loads(path.read_bytes())\n"
        "    trains = block.segments[0].spiketrains\n"
        "    out[path.stem] = int(sum(len(t) for t in trains))\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(nest_python), "-c", script, str(results)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    counts: dict[str, int] = json.loads(done.stdout)
    return counts


def test_a_job_runs_through_the_queue_and_its_results_become_the_recording(
    queue: StandinQueue, tmp_path: Path, nest_python: Path
) -> None:
    root, job_dir, job = setup_job(tmp_path, duration_ms=150.0, seed=3)
    host = Host()

    run_launcher(queue, root, job, host)
    ending = host.ending()
    assert isinstance(ending, Exited)
    assert ending.outcome is JobState.SUCCEEDED, ending.reason
    assert host.kinds() == [Launched, Started, Exited]
    launched = host.events[0]
    assert isinstance(launched, Launched)
    assert queue.status(launched.external_id) == "finished"

    # What was submitted: the archive in the collab's Bucket, the platform, the command.
    body = queue.submitted[-1]
    assert body["hardware_platform"] == "SpiNNaker"
    assert body["command"] == "run.py spiNNaker --out results"
    assert body["collab"] == COLLAB
    assert body["tags"] == [job_tag(job)] == [f"brainsim-{JOB_ID}-1"]
    assert body["code"].startswith(queue.data_proxy_url + f"/v1/buckets/{COLLAB}/")
    assert body["code"].endswith(".zip")
    uploaded = queue.objects[(COLLAB, f"brainsim/{JOB_ID}/1/pynn.zip")]
    with zipfile.ZipFile(io.BytesIO(uploaded)) as zipped:
        names = zipped.namelist()
    assert "run.py" in names
    assert all(n == "run.py" or n.startswith("data/") for n in names)
    # The job's duration and seed, not the circuit's (200 ms, 42).
    script = (job_dir.artifacts / "pynn" / "run.py").read_text()
    assert "DURATION_MS = 150.0" in script
    assert "seed 3" in script
    assert json.loads(job_dir.launch_info.read_text())["queue_id"] == launched.external_id

    # The results came back; the recording holds what the platform's files hold.
    results = job_dir.artifacts / "results"
    assert sorted(p.name for p in results.iterdir()) == [
        "E.pkl",
        "E.spikes.npz",
        "I.pkl",
        "I.spikes.npz",
    ]
    store = open_store(job_dir.recording)
    assert store.status == "complete"
    assert store.duration_ms == 150.0
    assert store.seed == 3
    neo = count_neo_spikes(nest_python, results)
    for population in ("E", "I"):
        with np.load(results / f"{population}.spikes.npz") as data:
            expected = np.sort(np.asarray(data["times_ms"]))
        spikes = store.spikes(population)
        assert spikes.n_spikes == expected.size == neo[population] > 0
        assert np.allclose(np.sort(spikes.times_ms), expected, atol=store.dt_ms)
    # The platform's log is in stdout.log and went to watchers; the token is gone.
    assert "finished" in job_dir.stdout.read_text()
    assert any(stream is LogStream.STDOUT for stream, _ in host.logs)
    service = [text for stream, text in host.logs if stream is LogStream.SERVICE]
    assert any("submitted to the EBRAINS queue (SpiNNaker" in t for t in service)
    assert any(t.endswith(": running") for t in service)
    assert not job_dir.credentials.exists()


def test_a_refused_token_fails_the_launch_and_says_so(queue: StandinQueue, tmp_path: Path) -> None:
    root, job_dir, job = setup_job(tmp_path, token="not-a-valid-token")
    host = Host()

    run_launcher(queue, root, job, host)
    ending = host.ending()
    assert isinstance(ending, LaunchFailed)
    assert "EBRAINS token was refused (HTTP 401: Token may have expired)" in ending.reason
    assert queue.jobs == {}
    assert not job_dir.credentials.exists()


def test_a_job_without_credentials_fails_the_launch(queue: StandinQueue, tmp_path: Path) -> None:
    root, job_dir, job = setup_job(tmp_path)
    job_dir.credentials.unlink()
    host = Host()

    run_launcher(queue, root, job, host)
    ending = host.ending()
    assert isinstance(ending, LaunchFailed)
    assert "no EBRAINS token" in ending.reason


def test_a_job_that_errors_on_the_platform_fails_with_the_end_of_its_log(
    queue: StandinQueue, tmp_path: Path
) -> None:
    queue.simulator = "bogus"  # the script refuses it: argparse's error, exit status 2
    root, job_dir, job = setup_job(tmp_path)
    host = Host()

    run_launcher(queue, root, job, host)
    ending = host.ending()
    assert isinstance(ending, Exited)
    assert ending.outcome is JobState.FAILED
    assert "ended with status 'error'" in ending.reason
    assert "invalid choice: 'bogus'" in ending.reason
    assert "invalid choice: 'bogus'" in job_dir.stdout.read_text()
    assert not job_dir.recording.exists()
    assert not job_dir.credentials.exists()


def test_cancelling_deletes_the_job_in_the_queue(queue: StandinQueue, tmp_path: Path) -> None:
    queue.release.clear()  # it stays submitted until cancelled
    root, job_dir, job = setup_job(tmp_path)
    host = Host()

    async def cancel(launcher: EbrainsLauncher, launched: Launched) -> None:
        await launcher.kill(dataclasses.replace(job, external_id=launched.external_id))

    run_launcher(queue, root, job, host, cancel)
    ending = host.ending()
    assert isinstance(ending, Exited)
    assert ending.outcome is JobState.CANCELLED, ending.reason
    assert host.kinds() == [Launched, Exited]
    launched = host.events[0]
    assert isinstance(launched, Launched)
    assert queue.status(launched.external_id) == "removed"
    assert ("DELETE", f"/jobs/{launched.external_id}") in queue.requests
    assert not job_dir.credentials.exists()


def test_a_job_removed_outside_the_service_fails(queue: StandinQueue, tmp_path: Path) -> None:
    queue.release.clear()
    root, _, job = setup_job(tmp_path)
    host = Host()

    async def remove(_: EbrainsLauncher, launched: Launched) -> None:
        QueueClient(queue.url, TOKEN, data_proxy_url=queue.data_proxy_url).cancel(
            launched.external_id
        )

    run_launcher(queue, root, job, host, remove)
    ending = host.ending()
    assert isinstance(ending, Exited)
    assert ending.outcome is JobState.FAILED
    assert "removed from the queue outside the service" in ending.reason


def test_an_outage_of_the_queue_is_waited_out_and_said_once(
    queue: StandinQueue, tmp_path: Path
) -> None:
    queue.release.clear()
    root, _, job = setup_job(tmp_path)
    host = Host()
    down = "EBRAINS queue: asking about job {}: HTTP 503: the service is down for maintenance"

    async def outage(launcher: EbrainsLauncher, launched: Launched) -> None:
        queue.down.set()
        polls = len(queue.requests)
        await host.wait(lambda: len(queue.requests) >= polls + 5)  # several polls answered 503
        queue.down.clear()
        await launcher.kill(dataclasses.replace(job, external_id=launched.external_id))

    run_launcher(queue, root, job, host, outage)
    ending = host.ending()
    assert isinstance(ending, Exited)
    assert ending.outcome is JobState.CANCELLED, ending.reason
    launched = host.events[0]
    assert isinstance(launched, Launched)
    said = [text for _, text in host.logs if "HTTP 503" in text]
    assert said == [down.format(launched.external_id) + " (asking again)"]


def test_a_restarted_server_finds_the_job_and_follows_it_to_its_end(
    queue: StandinQueue, tmp_path: Path
) -> None:
    queue.release.clear()
    root, job_dir, job = setup_job(tmp_path)
    first, second = Host(), Host()

    async def before_restart() -> str:
        launcher = EbrainsLauncher(config_of(queue), Target.EBRAINS_SPINNAKER, root, first)
        await launcher.launch(job)
        await first.wait(lambda: bool(first.events))
        await launcher.close()  # stops following; the queue's job goes on
        launched = first.events[0]
        assert isinstance(launched, Launched)
        return launched.external_id

    queue_id = asyncio.run(before_restart())
    assert first.kinds() == [Launched]

    async def after_restart() -> None:
        launcher = EbrainsLauncher(config_of(queue), Target.EBRAINS_SPINNAKER, root, second)
        assert await launcher.locate(job) == queue_id  # from launch.json
        info = job_dir.launch_info.read_text()
        job_dir.launch_info.unlink()
        assert await launcher.locate(job) == queue_id  # from the queue, by the job's tag
        later_run = dataclasses.replace(job, segment=2)
        assert await launcher.locate(later_run) is None
        job_dir.launch_info.write_text(info)
        await launcher.adopt(dataclasses.replace(job, external_id=queue_id))
        queue.release.set()
        await second.wait()
        await launcher.close()

    asyncio.run(after_restart())
    ending = second.ending()
    assert isinstance(ending, Exited)
    assert ending.outcome is JobState.SUCCEEDED, ending.reason
    assert second.kinds() == [Started, Exited]
    assert open_store(job_dir.recording).status == "complete"
    assert any("server restarted" in text for _, text in second.logs)


def test_a_circuit_the_platform_cannot_run_fails_the_launch_with_its_violations(
    queue: StandinQueue, tmp_path: Path
) -> None:
    # BrainScaleS-2 runs current-based exponential synapses only; tiny's are delta synapses.
    root, job_dir, job = setup_job(tmp_path, target=Target.EBRAINS_BRAINSCALES2)
    host = Host()

    run_launcher(queue, root, job, host)
    ending = host.ending()
    assert isinstance(ending, LaunchFailed)
    assert "populations.E.model" in ending.reason
    assert "brainscales2" in ending.reason
    assert queue.jobs == {}
    assert queue.objects == {}
    assert not job_dir.credentials.exists()


def test_only_ebrains_targets_have_a_launcher(tmp_path: Path) -> None:
    root = DataRoot.create(tmp_path)
    with pytest.raises(ValueError, match="not an EBRAINS target"):
        EbrainsLauncher(EbrainsConfig(), Target.SLURM, root, Host())
