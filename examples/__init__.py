"""Examples that learn: complete experiments built on brainsim circuits, each runnable as
``python -m examples.NAME --out DIR`` (see docs/examples.md)."""
