"""``python -m services``: run the job server (the same flags as ``brainsim serve``)."""

from __future__ import annotations

import argparse

from services.cli import add_serve_arguments, serve_main

parser = argparse.ArgumentParser(prog="python -m services", description="brainsim job server")
add_serve_arguments(parser)
raise SystemExit(serve_main(parser.parse_args()))
