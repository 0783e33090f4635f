"""Write what follows from the model declarations (brainsim/models/) into the committed files.

Usage: ``python scripts/gen_models.py [--check]``. It rewrites the schema's definitions that the
declarations determine (brainsim/circuit/schema/circuit-v1.schema.json: ``$defs.synapse``,
``$defs.<model>Params`` and ``$defs.<model>Initial`` of each neuron model, and the ``model``
property and branches of ``$defs.population``) and the tables of docs/circuit-format.md between
their ``<!-- synapse-model: NAME -->`` / ``<!-- neuron-model: NAME -->`` and ``<!-- end -->``
markers. ``--check`` changes nothing and exits with 1 when a file differs from what the
declarations give; tests/models/test_synapse_models.py runs that check, so run this script after
changing a model.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from brainsim.models import (
    NEURON_MODELS,
    SYNAPSE_MODELS,
    docs_table,
    neuron_docs,
    neuron_schemas,
    population_model_schema,
    synapse_schema,
)

__all__ = ["generated", "main"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA = REPO_ROOT / "brainsim" / "circuit" / "schema" / "circuit-v1.schema.json"
DOCS = REPO_ROOT / "docs" / "circuit-format.md"
_MARKED = re.compile(
    r"(<!-- (synapse|neuron)-model: (\w+) -->\n)(?:(?!<!--).*?\n)?(<!-- end -->)", re.DOTALL
)
"""A generated table: its opening marker, the current table (none yet: nothing), the end
marker."""


def _table(match: re.Match[str]) -> str:
    kind, name = match.group(2), match.group(3)
    table = (
        docs_table(SYNAPSE_MODELS[name]) if kind == "synapse" else neuron_docs(NEURON_MODELS[name])
    )
    return f"{match.group(1)}{table}\n{match.group(4)}"


def generated() -> dict[Path, str]:
    """The text each generated file should have."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    definitions = schema["$defs"]
    definitions["synapse"] = synapse_schema(SYNAPSE_MODELS.values())
    definitions |= neuron_schemas(NEURON_MODELS.values())
    population = definitions["population"]
    population["properties"]["model"], population["allOf"] = population_model_schema(
        NEURON_MODELS.values()
    )
    docs = _MARKED.sub(_table, DOCS.read_text(encoding="utf-8"))
    return {SCHEMA: json.dumps(schema, indent=2, ensure_ascii=False) + "\n", DOCS: docs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = [p for p, text in generated().items() if p.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(REPO_ROOT)} (run python scripts/gen_models.py)")
        return 1 if stale else 0
    for path, text in generated().items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
