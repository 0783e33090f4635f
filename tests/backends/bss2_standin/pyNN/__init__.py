"""Stand-in for the part of PyNN the BrainScaleS-2 script imports (tests only)."""
