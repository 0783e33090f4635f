"""The layout helpers: group paths, chunk shapes, compression options."""

from __future__ import annotations

import pytest

from brainsim.recording.layout import (
    COMPRESSIONS,
    compressors,
    report_chunks,
    report_path,
    spikes_path,
    stimulus_path,
    weight_chunks,
    weights_path,
)


def test_group_paths_follow_recording_md() -> None:
    assert spikes_path("E") == "spikes/E"
    assert report_path("E", "v") == "report/E/v"
    assert weights_path("EE") == "weights/EE"
    assert stimulus_path("pixels") == "stimuli/pixels"


@pytest.mark.parametrize(
    ("n_synapses", "max_snapshots", "chunks"),
    [
        (10_000_000, 11, ((1, 1 << 18), 11)),  # 1 MiB of one snapshot; every time in one chunk
        (1000, 3, ((3, 1000), 3)),  # rows never exceed the snapshots the run can take
        (1000, 10_000, ((262, 1000), 10_000)),  # as many snapshots as fit in 1 MiB
        (1, 1 << 20, ((1 << 18, 1), 1 << 17)),  # one synapse at every step; time capped
        (0, 0, ((1, 1), 1)),  # nothing recorded still has valid chunk shapes
    ],
)
def test_weight_chunks(
    n_synapses: int, max_snapshots: int, chunks: tuple[tuple[int, int], int]
) -> None:
    assert weight_chunks(n_synapses, max_snapshots, 1 << 18) == chunks


@pytest.mark.parametrize(
    ("n_nodes", "n_samples", "chunks"),
    [
        (1000, 10_000, (1024, 256)),  # 1 MiB chunks, 256-node columns
        (10, 10_000, (10_000, 10)),  # rows capped by the run length
        (10, 5, (5, 10)),
        (0, 100, (100, 1)),  # an empty report still has a valid chunk shape
        (1, 0, (1, 1)),
    ],
)
def test_report_chunks(n_nodes: int, n_samples: int, chunks: tuple[int, int]) -> None:
    assert report_chunks(n_nodes, n_samples, 1 << 20) == chunks


def test_report_chunks_bound_the_owner_block_for_huge_reports() -> None:
    rows, cols = report_chunks(1_000_000, 10_000, 1 << 20)
    assert cols == 256
    assert rows * 1_000_000 * 4 <= 64 << 20
    assert rows >= 1


def test_every_compression_option_builds_and_unknown_ones_are_refused() -> None:
    assert compressors("none", 8) == ()
    for option in COMPRESSIONS:
        assert isinstance(compressors(option, 4), tuple)
    with pytest.raises(ValueError, match="blosc-zstd"):
        compressors("brotli", 8)
