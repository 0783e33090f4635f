"""Stand-in for pynn_brainscales (tests only, see ../README.md)."""
