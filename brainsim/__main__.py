"""``python -m brainsim``: the command-line interface (also what ``mpiexec`` launches)."""

from brainsim.cli import program

program()
