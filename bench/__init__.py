"""Benchmarks of brainsim against NEST 3.10 and Brian2 on the same machine (``python -m bench``).

The suite (``bench.cli``) runs the cases of :mod:`bench.cases` on brainsim and on the reference
simulators, whose scripts are generated from the same circuit files (:mod:`bench.nest_script`,
:mod:`bench.brian2_script`), and writes ``bench/results/<date>.json``, ``bench/RESULTS.md`` and
``bench/rtf.png``. ``bench_recording.py`` and ``bench_service.py`` are separate benchmarks of
the recorder and the job service.
"""

from __future__ import annotations

__all__: list[str] = []
