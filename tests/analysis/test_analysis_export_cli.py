"""brainsim export STORE --to nwb|neo -o FILE: files that pynwb and neo read back, refusals with
exit code 2, and a missing ``nwb`` extra (simulated) named with its pip command, exit code 1."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import brainsim.analysis.export as export
from brainsim.analysis import Recording, open_recording
from brainsim.analysis.export import MissingExtraError
from brainsim.cli import main

PIP = 'pip install -e ".[nwb]"'


def run(argv: list[str]) -> int:
    """``main(argv)``'s exit code, argparse's refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def spike_counts(recording: Recording) -> dict[str, int]:
    return {p: recording.spikes(p).n_spikes for p in recording.spike_populations}


def test_nwb_file_reads_back_with_pynwb(
    poisson_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pynwb = pytest.importorskip("pynwb")
    out = tmp_path / "new" / "run.nwb"  # the folder is made
    assert main(["export", str(poisson_store), "--to", "nwb", "-o", str(out)]) == 0
    recording = open_recording(poisson_store)
    counts = spike_counts(recording)
    assert capsys.readouterr().out.strip() == (
        f"wrote {out} (nwb): {sum(counts.values())} spikes of 2 population(s)"
    )
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        units = io.read().units.to_dataframe()
    for population, count in counts.items():
        table = units[units["population"] == population]
        assert sum(len(times) for times in table["spike_times"]) == count
        spikes = recording.spikes(population)
        for node, times_s in zip(table["node_id"], table["spike_times"], strict=True):
            # NWB spike times are in seconds
            np.testing.assert_array_equal(times_s, spikes.times_ms[spikes.node_ids == node] / 1e3)
    assert sorted(p.name for p in out.parent.iterdir()) == ["run.nwb"]  # no temporary left


@pytest.mark.parametrize("suffix", [".pkl", ".mat"])
def test_neo_file_reads_back_with_neo(poisson_store: Path, tmp_path: Path, suffix: str) -> None:
    neo_io = pytest.importorskip("neo.io")
    quantities = pytest.importorskip("quantities")
    if suffix == ".mat":
        pytest.importorskip("scipy")
    out = tmp_path / f"run{suffix}"
    assert main(["export", str(poisson_store), "--to", "neo", "-o", str(out)]) == 0
    reader = neo_io.PickleIO if suffix == ".pkl" else neo_io.NeoMatlabIO
    block = reader(str(out)).read_block()
    recording = open_recording(poisson_store)
    assert [g.name for g in block.groups] == list(recording.spike_populations)
    for group in block.groups:
        spikes = recording.spikes(group.name)
        assert len(group.spiketrains) == spikes.population_size  # silent neurons included
        assert sum(len(train) for train in group.spiketrains) == spikes.n_spikes
        for train in group.spiketrains:
            assert train.units == quantities.ms
            node = train.annotations["node_id"]
            assert train.annotations["population"] == group.name
            np.testing.assert_array_equal(train.magnitude, spikes.times_ms[spikes.node_ids == node])
    assert len(block.segments[0].spiketrains) == sum(
        recording.populations[p].size for p in recording.spike_populations
    )


def test_overwrite_replaces_an_existing_output(poisson_store: Path, tmp_path: Path) -> None:
    neo_io = pytest.importorskip("neo.io")
    out = tmp_path / "run.pkl"
    out.write_text("old")
    argv = ["export", str(poisson_store), "--to", "neo", "-o", str(out)]
    assert run(argv) == 2
    assert out.read_text() == "old"
    assert main([*argv, "--overwrite"]) == 0
    assert len(neo_io.PickleIO(str(out)).read_block().groups) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pkl"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--to", "csv", "-o", "OUT/run.csv"], "argument --to: invalid choice: 'csv'"),
        (["-o", "OUT/run.nwb"], "the following arguments are required: --to"),
        (["--to", "nwb"], "the following arguments are required: -o/--output"),
        (["--to", "nwb", "-o", "OUT/run.pkl"], "nwb output OUT/run.pkl must end in .nwb"),
        (["--to", "neo", "-o", "OUT/run.nwb"], "must end in .pkl or .pickle or .mat"),
        (["--to", "nwb", "-o", "OUT/exists.nwb"], "exists; refusing to overwrite it"),
        (["--to", "neo", "-o", "OUT/exists.pkl"], "(--overwrite replaces it)"),
        (["--to", "nwb", "-o", "OUT", "--overwrite"], "must end in .nwb"),
        (["--to", "nwb", "-o", "OUT/dir.nwb", "--overwrite"], "is a directory"),
        (["STORE=missing.zarr", "--to", "nwb", "-o", "OUT/run.nwb"], "no such file or directory"),
        (["STORE=OUT", "--to", "neo", "-o", "OUT/run.pkl"], "is not a Zarr v3 store"),
    ],
)
def test_refusals_exit_2_with_a_message(
    poisson_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    (tmp_path / "exists.nwb").write_text("keep")
    (tmp_path / "exists.pkl").write_text("keep")
    (tmp_path / "dir.nwb").mkdir()
    store = str(poisson_store)
    if argv[0].startswith("STORE="):
        store = argv.pop(0).removeprefix("STORE=").replace("OUT", str(tmp_path))
        store = store if store == str(tmp_path) else str(tmp_path / store)
    argv = [a.replace("OUT", str(tmp_path)) for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert run(["export", store, *argv]) == 2
    err = capsys.readouterr().err
    assert message.replace("OUT", str(tmp_path)) in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert (tmp_path / "exists.nwb").read_text() == "keep"


@pytest.mark.parametrize(
    ("to", "name", "blocked", "named"),
    [
        ("nwb", "run.nwb", ["pynwb"], "pynwb"),
        ("neo", "run.pkl", ["neo", "neo.io"], "neo"),
        ("neo", "run.pkl", ["quantities"], "quantities"),
    ],
)
def test_a_missing_extra_is_named_with_the_pip_command(
    poisson_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    to: str,
    name: str,
    blocked: list[str],
    named: str,
) -> None:
    """Runs with or without the extra: a None in sys.modules makes ``import`` fail as if the
    package were not installed."""
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)
    assert main(["export", str(poisson_store), "--to", to, "-o", str(tmp_path / name)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("brainsim export: error: exporting to ")
    assert f"needs the Python package {named}, which is not installed" in err
    assert f"nwb extra (pynwb, neo, quantities): {PIP}" in err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_matlab_output_without_scipy_names_scipy(
    poisson_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("neo.io")  # loaded before scipy is blocked
    monkeypatch.setitem(sys.modules, "scipy", None)
    assert main(["export", str(poisson_store), "--to", "neo", "-o", str(tmp_path / "r.mat")]) == 1
    err = capsys.readouterr().err
    assert "needs the Python package scipy" in err
    assert "pip install scipy" in err
    assert not list(tmp_path.iterdir())


def test_missing_extra_error_is_an_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers of to_nwb/to_neo that catch ImportError still do."""
    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match=r"pip install -e \"\.\[nwb\]\"") as caught:
        export.require_extra("pynwb")
    assert isinstance(caught.value, MissingExtraError)


def test_a_failed_write_leaves_no_file(
    poisson_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    neo_io = pytest.importorskip("neo.io")

    def fail(self: object, block: object) -> None:
        Path(self.filename).write_text("half")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(neo_io.PickleIO, "write_block", fail)
    out = tmp_path / "run.pkl"
    out.write_text("old")
    argv = ["export", str(poisson_store), "--to", "neo", "-o", str(out), "--overwrite"]
    assert main(argv) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "old"  # the old file stays whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pkl"]
