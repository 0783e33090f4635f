"""``python -m brainsim``: the command-line interface (also what ``mpiexec`` launches)."""

from brainsim.cli import main

raise SystemExit(main())
