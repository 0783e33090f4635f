"""Names, chunk shapes and codecs of the recording format (RECORDING.md), for writer and reader.

Everything here is a pure function of the run description, never of the number of ranks, so
stores written with any rank count have the same layout as well as the same content.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_REPORT_CHUNK_BYTES",
    "DEFAULT_REPORT_COMPRESSION",
    "DEFAULT_SPIKE_CHUNK",
    "DEFAULT_SPIKE_COMPRESSION",
    "DEFAULT_WEIGHT_CHUNK",
    "FORMAT",
    "FORMAT_PREFIX",
    "ROOT_KEY",
    "compressors",
    "report_chunks",
    "report_path",
    "spikes_path",
    "stimulus_path",
    "weight_chunks",
    "weights_path",
]

FORMAT: Final = "brainsim-recording/1"
"""The value of ``attrs["brainsim"]["format"]`` this version writes and reads."""

FORMAT_PREFIX: Final = "brainsim-recording/"
"""Every version of the format starts with this, so a reader can tell "newer" from "foreign"."""

ROOT_KEY: Final = "brainsim"
"""The root attribute that holds the run's metadata."""

DEFAULT_SPIKE_CHUNK: Final = 1 << 17
"""Spikes per chunk of ``timestamps``/``node_ids`` (1 MiB of float64 before compression).

Measured in ``bench/bench_recording.py`` (Brunel load, flush every 100 ms): 32Ki to 256Ki
cost the same within noise; 512Ki costs ~1.6x the CPU because the partial tail chunk is
rewritten at every flush. 128Ki keeps a 1 s Brunel run in four chunk files per array.
"""

DEFAULT_REPORT_CHUNK_BYTES: Final = 1 << 20
"""Target uncompressed size of one chunk of a report's ``data`` array (1024 samples x 256
nodes); measured best of 256 KiB .. 4 MiB for 1,000 voltages per step."""

_REPORT_CHUNK_MAX_NODES: Final = 256
"""Node columns per report chunk: reading one neuron's trace touches 1/ceil(n/256) of the data."""

_ROW_BLOCK_MAX_BYTES: Final = 64 << 20
"""Bound on one row of report chunks across all nodes (what the owners of its chunks hold in
memory together while it is partial)."""

DEFAULT_WEIGHT_CHUNK: Final = 1 << 18
"""Weights per chunk (1 MiB of float32): as many synapses of one snapshot as fit, and when a
projection has fewer synapses, as many snapshots of all of them as fit. A wide chunk holds one
snapshot, written once and never rewritten, and reading the whole network's weights at one
time (the common question) reads nothing else; a narrow projection recorded often (one
synapse at every step) still gets chunks of a useful size."""

_SNAPSHOT_TIME_CHUNK_MAX: Final = 1 << 17
"""Snapshot times per chunk of a weight recording's ``time`` (1 MiB of float64)."""

COMPRESSIONS: Final = ("blosc-zstd", "blosc-zstd-bitshuffle", "blosc-lz4", "zstd", "gzip", "none")
"""The compression options the writer accepts."""

DEFAULT_SPIKE_COMPRESSION: Final = "blosc-zstd"
"""Measured (``bench/bench_recording.py``, Brunel load): 9.0x smaller than raw, the smallest of
all options, for about 0.05 s more CPU per 470k spikes than no compression; blosc-lz4 gives
5.4x, plain zstd 6.8x, gzip 6.4x at twice the CPU time."""

DEFAULT_REPORT_COMPRESSION: Final = "blosc-lz4"
"""Measured on 1,000 noisy float32 voltages per step: blosc-zstd saves 3 % more space (1.36x vs
1.32x) for about 70 % more CPU time; float mantissas barely compress, so speed decides."""


def spikes_path(population: str) -> str:
    """Group path of a population's spikes: ``spikes/<population>``."""
    return f"spikes/{population}"


def report_path(population: str, variable: str) -> str:
    """Group path of one state report: ``report/<population>/<variable>``."""
    return f"report/{population}/{variable}"


def weights_path(projection: str) -> str:
    """Group path of one projection's weight snapshots: ``weights/<projection>``."""
    return f"weights/{projection}"


def stimulus_path(stimulus: str) -> str:
    """Group path of when a data-driven stimulus showed its samples: ``stimuli/<stimulus>``."""
    return f"stimuli/{stimulus}"


def compressors(compression: str, itemsize: int) -> tuple[dict[str, Any], ...]:
    """The bytes-to-bytes codecs for one array under ``compression``, as Zarr v3 codec JSON
    (what the arrays' metadata lists after the ``bytes`` codec; zarr-python takes the same).

    Blosc's byte shuffle groups the i-th byte of every ``itemsize``-byte element, which turns
    slowly varying float64 times and int64 ids into long runs that zstd compresses well.
    """

    def blosc(cname: str, clevel: int, shuffle: str) -> dict[str, Any]:
        configuration = {"typesize": itemsize, "cname": cname, "clevel": clevel,
                         "shuffle": shuffle, "blocksize": 0}  # fmt: skip
        return {"name": "blosc", "configuration": configuration}

    if compression == "blosc-zstd":
        return (blosc("zstd", 3, "shuffle"),)
    if compression == "blosc-zstd-bitshuffle":
        return (blosc("zstd", 3, "bitshuffle"),)
    if compression == "blosc-lz4":
        return (blosc("lz4", 5, "shuffle"),)
    if compression == "zstd":
        return ({"name": "zstd", "configuration": {"level": 3, "checksum": False}},)
    if compression == "gzip":
        return ({"name": "gzip", "configuration": {"level": 5}},)
    if compression == "none":
        return ()
    raise ValueError(f"unknown compression {compression!r}; expected one of {COMPRESSIONS}")


def report_chunks(n_nodes: int, n_samples: int, target_bytes: int) -> tuple[int, int]:
    """Chunk shape ``(samples, nodes)`` of a float32 report of ``n_samples`` x ``n_nodes``.

    Columns are capped at 256 nodes so one neuron's trace is cheap to read; rows fill the chunk
    up to ``target_bytes``, never exceed the run's sample count, and keep one row of chunks
    across all nodes (what the chunk owners keep in memory while it is partial) under 64 MiB.
    """
    cols = max(1, min(n_nodes, _REPORT_CHUNK_MAX_NODES))
    rows = max(1, target_bytes // (4 * cols))
    rows = min(rows, max(1, _ROW_BLOCK_MAX_BYTES // (4 * max(n_nodes, 1))))
    return (max(1, min(rows, n_samples)), cols)


def weight_chunks(
    n_synapses: int, max_snapshots: int, chunk_values: int
) -> tuple[tuple[int, int], int]:
    """Chunk shapes of a weight recording: ``data`` ``(snapshots, synapses)``, and ``time``.

    ``data`` chunks hold at most ``chunk_values`` weights: up to that many synapses of one
    snapshot, then as many snapshots as fit (never more than the run can take). ``source`` and
    ``target`` use the same column chunks. ``time`` holds every snapshot time in one chunk
    (capped at 128Ki times), which needs no communication since every rank knows every time.
    """
    cols = max(1, min(n_synapses, chunk_values))
    rows = max(1, min(max_snapshots, chunk_values // cols))
    return (rows, cols), max(1, min(max_snapshots, _SNAPSHOT_TIME_CHUNK_MAX))
