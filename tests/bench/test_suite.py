"""The suite's handling of the pool configuration: its pool directory and memory prediction."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import suite
from bench.runners import Config, RunResult
from brainsim.errors import PoolError

POOL = Config("brainsim-pool", "brainsim", 2, pool=True)
FRESH = Config("brainsim", "brainsim", 2)


def test_a_pool_configuration_gets_a_short_pool_dir_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[int] = []
    monkeypatch.setattr(suite, "stop_pool", stopped.append)
    monkeypatch.setenv("BRAINSIM_POOL_DIR", "/elsewhere")
    session: Any = SimpleNamespace()
    with suite._pools(session, [FRESH, POOL]):
        directory = Path(os.environ["BRAINSIM_POOL_DIR"])
        assert directory.name.startswith("bench-pool-")
        assert directory.stat().st_mode & 0o777 == 0o700  # brainsim refuses others' dirs
        assert len(str(directory / "pool-2.sock")) < 100  # the limit of socket paths
        assert stopped == []
    assert stopped == [2]
    assert os.environ["BRAINSIM_POOL_DIR"] == "/elsewhere"
    assert not directory.exists()


def test_the_pool_dir_goes_after_a_crash_and_a_pool_that_will_not_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[int] = []
    monkeypatch.setattr(suite, "stop_pool", stopped.append)
    monkeypatch.delenv("BRAINSIM_POOL_DIR")
    session: Any = SimpleNamespace()
    directories: list[Path] = []

    def crash() -> None:
        with suite._pools(session, [POOL]):
            directories.append(Path(os.environ["BRAINSIM_POOL_DIR"]))
            raise RuntimeError("a run crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        crash()
    assert stopped == [2]
    assert "BRAINSIM_POOL_DIR" not in os.environ
    assert not directories[0].exists()
    # A pool that cannot be stopped is noted, and the rest is cleaned up all the same.
    notes: list[str] = []

    def stop_pool(ranks: int) -> None:
        raise PoolError(f"no answer from the pool of {ranks}")

    monkeypatch.setattr(suite, "stop_pool", stop_pool)
    session = SimpleNamespace(note=notes.append, save=lambda: None)
    with suite._pools(session, [POOL]):
        directories.append(Path(os.environ["BRAINSIM_POOL_DIR"]))
    assert notes == ["the pool of 2 rank(s) could not be stopped: no answer from the pool of 2"]
    assert "BRAINSIM_POOL_DIR" not in os.environ
    assert not directories[1].exists()
    # Without a pool configuration nothing changes and nothing is stopped.
    with suite._pools(session, [FRESH]):
        assert "BRAINSIM_POOL_DIR" not in os.environ
    assert stopped == [2]


def test_a_pool_run_is_predicted_as_brainsim_on_fresh_ranks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n_synapses = 100_000_000
    # brainsim measured at 1 GiB of baseline and 10 bytes per synapse: 2.0 GiB predicted,
    # more than the 1.7 GiB available. The prior (16 bytes, no baseline) would be 1.5 GiB.
    session: Any = SimpleNamespace(
        document={"baselines": {"brainsim": 2**30}},
        measured_bps={("brainsim", "circuits/brunel_delta.yaml"): 10.0},
    )
    case_run: Any = SimpleNamespace(
        case=SimpleNamespace(circuit="circuits/brunel_delta.yaml", prior_bytes_per_synapse={}),
        info=SimpleNamespace(n_synapses=n_synapses),
    )
    available = suite.MEMORY_RESERVE_BYTES + int(1.7 * 2**30)
    monkeypatch.setattr(suite, "available_memory_bytes", lambda: available)
    reason = suite._fits(session, case_run, POOL)
    assert reason == suite._fits(session, case_run, FRESH)
    assert reason == "needs about 2.0 GiB (measured cost per synapse), 1.7 GiB available"


def test_a_case_s_own_prior_predicts_its_memory_until_it_is_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NEST's plastic synapses cost more than the suite's prior for static ones: the plastic
    cases carry their own prior, and a measured cost replaces either."""
    nest = Config("nest", "nest", 2)
    session: Any = SimpleNamespace(document={"baselines": {}}, measured_bps={})
    case_run: Any = SimpleNamespace(
        case=SimpleNamespace(
            circuit="circuits/hpc_benchmark.yaml", prior_bytes_per_synapse={"nest": 150.0}
        ),
        info=SimpleNamespace(n_synapses=100_000_000),
    )
    available = suite.MEMORY_RESERVE_BYTES + 10 * 2**30
    monkeypatch.setattr(suite, "available_memory_bytes", lambda: available)
    # 150 bytes x 1e8 = 14.0 GiB; the suite's 80 bytes would have fitted (7.5 GiB).
    assert suite._fits(session, case_run, nest) == (
        "needs about 14.0 GiB (prior cost per synapse), 10.0 GiB available"
    )
    assert suite._fits(session, case_run, FRESH) is None  # brainsim: the suite's 16 bytes
    session.measured_bps[("nest", "circuits/hpc_benchmark.yaml")] = 50.0
    assert suite._fits(session, case_run, nest) is None  # 55 bytes: 5.1 GiB
    assert suite.predict_peak_bytes("nest", 10, 0.0, None, 150.0) == 1500.0
    assert suite.predict_peak_bytes("nest", 10, 0.0, None) == 800.0


def test_short_configurations_get_one_memory_run_after_their_timed_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nest = Config("nest", "nest", 2)
    slow = Config("brian2", "brian2", 2)

    def timed(config: str, wall_s: float) -> dict[str, Any]:
        return {"case": "brunel", "config": config, "ok": True, "wall_s": wall_s}

    session: Any = SimpleNamespace(
        options=SimpleNamespace(reps=3),
        document={
            "runs": [timed("brainsim", 2.0), timed("brainsim-pool", 1.0), timed("nest", 10.0),
                     timed("brian2", 90.0), {**timed("nest", 1.0), "ok": False}],
        },
    )  # fmt: skip
    calls: list[tuple[str, int, bool]] = []

    def run(config: Config, rep: int, memory_run: bool = False) -> str:
        calls.append((config.name, rep, memory_run))
        return config.name

    recorded: list[str] = []
    case_run: Any = SimpleNamespace(
        case=SimpleNamespace(name="brunel"), configs=[FRESH, POOL, nest, slow], run=run
    )
    monkeypatch.setattr(suite, "_fits", lambda *_: None)
    monkeypatch.setattr(suite, "_record", lambda _s, _c, result: recorded.append(result))
    suite._memory_runs(session, case_run, skipped=set())
    # Not the pool's (the ranks are not the client's) nor a 90 s configuration's.
    assert calls == [("brainsim", 3, True), ("nest", 3, True)]
    assert recorded == ["brainsim", "nest"]
    calls.clear()
    suite._memory_runs(session, case_run, skipped={"nest"})
    assert calls == [("brainsim", 3, True)]


def test_further_realizations_run_every_configuration_with_the_next_seeds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After the timed runs, each configuration that ran is run once on each further
    realization: the variant file with the next seeds (the references on scripts made from
    it); skipped configurations, and cases with one realization, get none."""
    variant = tmp_path / "brunel.json"
    variant.write_text(json.dumps({"simulation": {"seed": 40, "dt_ms": 0.1}, "name": "b"}))
    nest = Config("nest", "nest", 2)
    calls: list[tuple[str, int, int, str]] = []

    def run(config: Config, rep: int, realization: Any = None) -> str:
        seed, path, scripts = realization
        assert json.loads(path.read_text())["simulation"] == {"seed": seed, "dt_ms": 0.1}
        calls.append((config.name, rep, seed, scripts["nest"]))
        return config.name

    def realization(seed: int) -> tuple[Path, dict[str, str]]:
        return suite.seed_variant(variant, seed), {"nest": f"nest-{seed}.py"}

    def case_run(rate_seeds: int) -> Any:
        return SimpleNamespace(
            case=SimpleNamespace(name="brunel", rate_seeds=rate_seeds),
            circuit=SimpleNamespace(simulation=SimpleNamespace(seed=40)),
            configs=[FRESH, POOL, nest],
            run=run,
            realization=realization,
        )

    def session(rate_seeds: int | None, quick: bool = False) -> Any:
        return SimpleNamespace(options=SimpleNamespace(rate_seeds=rate_seeds, quick=quick))

    recorded: list[str] = []
    monkeypatch.setattr(suite, "_fits", lambda *_: None)
    monkeypatch.setattr(suite, "_record", lambda _s, _c, result: recorded.append(result))
    suite._rate_runs(session(None), case_run(3), skipped={"brainsim-pool"})
    assert calls == [
        ("brainsim", 1, 41, "nest-41.py"), ("nest", 1, 41, "nest-41.py"),
        ("brainsim", 2, 42, "nest-42.py"), ("nest", 2, 42, "nest-42.py"),
    ]  # fmt: skip
    assert recorded == ["brainsim", "nest", "brainsim", "nest"]
    calls.clear()
    suite._rate_runs(session(None), case_run(1), skipped=set())
    suite._rate_runs(session(None, quick=True), case_run(3), skipped=set())
    suite._rate_runs(session(1), case_run(5), skipped=set())
    assert calls == []
    suite._rate_runs(session(2), case_run(1), skipped={"nest", "brainsim"})
    assert [c[:3] for c in calls] == [("brainsim-pool", 1, 41)]


def test_the_progress_line_shows_no_peak_for_a_pooled_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A pooled run's ranks are outside the measured process tree, so it has no peak (not
    "0 MiB"); a run that failed before it was timed prints without a wall time."""
    session = SimpleNamespace(
        document={"runs": [], "baselines": {}},
        relative=lambda text: text,
        save=lambda: None,
    )
    pooled = RunResult("brunel", "brainsim-pool", 0, True, wall_s=1.5, peak_rss_bytes=None)
    fresh = RunResult("brunel", "brainsim", 0, True, wall_s=2.25, peak_rss_bytes=450 * 2**20)
    failed = RunResult("brunel", "nest", 0, False, error="no NEST")
    for result in (pooled, fresh, failed):
        suite._record(session, None, result)  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    assert "wall 1.50 peak – load" in lines[0]
    assert "wall 2.25 peak 450 MiB load" in lines[1]
    assert "FAILED: no NEST" in lines[2]
    assert "wall – peak –" in lines[2]
    assert len(session.document["runs"]) == 3
