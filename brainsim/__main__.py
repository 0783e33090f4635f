"""``python -m brainsim``: the command-line interface (also what ``mpiexec`` launches)."""

from brainsim.cli import console_main

raise SystemExit(console_main())
