"""The reference target: brainsim's own engine (numba kernels, MPI ranks), which runs here.

It takes every circuit that validates, so :meth:`NumbaMpiBackend.check` finds nothing; its
capabilities list every declared model, stimulus and rule. Compiling writes the normalized
circuit document (what recordings store) with copies of the files it names, which
``brainsim run`` runs anywhere; running is the engine's entry point
(:func:`brainsim.engine.run.execute`) on the ranks of this process group.
"""

from __future__ import annotations

import json
import os
import shutil
import typing
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from brainsim.backends.base import Artefact, Capabilities, Violation
from brainsim.circuit.spec import Circuit, Connectivity, FromFile, Stimulus
from brainsim.models import NEURON_MODELS, SYNAPSE_MODELS, Variant

__all__ = [
    "NumbaMpiBackend",
    "connection_rules",
    "literal_tags",
    "stimulus_types",
    "variant_label",
]


def variant_label(variant: Variant) -> str:
    """``model`` or ``model(choice=value, ...)``: how capabilities name a variant."""
    if not variant.choices:
        return variant.model
    return f"{variant.model}({', '.join(f'{k}={v}' for k, v in variant.choices)})"


def literal_tags(union: object, name: str) -> tuple[str, ...]:
    """The default of field ``name`` of each record of ``union`` (its ``type``/``rule`` tag)."""
    return tuple(
        str(next(f.default for f in fields(cls) if f.name == name))
        for cls in typing.get_args(union)
    )


def stimulus_types() -> tuple[str, ...]:
    """Every stimulus type of the circuit format."""
    return literal_tags(Stimulus, "type")


def connection_rules() -> tuple[str, ...]:
    """Every connection rule of the circuit format."""
    return literal_tags(Connectivity, "rule")


class NumbaMpiBackend:
    """brainsim's engine as a backend (see the module docstring)."""

    @property
    def name(self) -> str:
        """``numba_mpi``."""
        return "numba_mpi"

    def capabilities(self) -> Capabilities:
        """Everything the circuit format declares."""
        return Capabilities(
            target=self.name,
            summary="brainsim's engine: numba kernels on MPI ranks, on this machine or a cluster",
            neuron_models=tuple(
                variant_label(v) for m in NEURON_MODELS.values() for v in m.variants()
            ),
            synapse_models=tuple(SYNAPSE_MODELS),
            plasticity=True,
            stimuli=stimulus_types(),
            connection_rules=connection_rules(),
            delays="any, rounded to whole steps of dt_ms, at least one step",
            runs_here=True,
            output="the normalized circuit document <name>.json with copies of the files it "
            "names (brainsim run runs it)",
        )

    def check(self, circuit: Circuit) -> list[Violation]:
        """Nothing: a circuit that validates runs on the engine."""
        del circuit
        return []

    def compile(self, circuit: Circuit, out_dir: str | os.PathLike[str]) -> Artefact:
        """Write ``<name>.json`` (the normalized document) and the files it names."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        main = out / f"{circuit.name}.json"
        main.write_text(json.dumps(dict(circuit.document), indent=2) + "\n", encoding="utf-8")
        paths = [str(main)]
        for relative in _named_files(circuit):
            source = Path(circuit.base_dir or ".") / relative
            copy = out / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
            paths.append(str(copy))
        return Artefact(target=self.name, paths=tuple(paths))

    def run(
        self,
        circuit: Circuit,
        out: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        progress: Callable[[float, float], None] | None = None,
    ) -> str:
        """Simulate ``circuit`` on the ranks of this process group into the store ``out``."""
        from brainsim.engine.run import communicator, execute
        from brainsim.engine.simulator import RunConfig

        comm, exchanger = communicator()
        status: str = execute(
            circuit,
            out,
            comm=comm,
            exchanger=exchanger,
            overwrite=overwrite,
            config=RunConfig(progress=progress),
        )
        return status


def _named_files(circuit: Circuit) -> list[str]:
    """The files ``circuit`` names, relative to its directory, each once."""
    named = [
        p.connectivity.path
        for p in circuit.projections.values()
        if isinstance(p.connectivity, FromFile)
    ]
    for stim in circuit.stimuli.values():
        data = getattr(stim, "data", None)
        if data is not None and data.file is not None:
            named.append(data.file)
    return list(dict.fromkeys(named))
