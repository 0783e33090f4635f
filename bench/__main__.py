"""``python -m bench``: run the benchmark suite (see :mod:`bench.cli`)."""

from __future__ import annotations

from bench.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
