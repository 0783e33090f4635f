"""The step loop compiled for a circuit's own parts (``run_variant`` with a
:class:`~brainsim.kernels.loop.Variant` that leaves the unused models, inputs and storage
modes out) gives the same results, bit for bit, as the general loop with every part, and
leaves out exactly what the circuit does not use."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainsim.circuit import load_circuit, parse_circuit
from brainsim.circuit.overrides import with_overrides
from brainsim.engine.run import communicator, execute
from brainsim.engine.simulator import RunConfig, build_network, expected_variant, network_variant
from brainsim.engine.warmup import WARMUP_CIRCUIT
from brainsim.kernels.loop import EVERYTHING, run_variant
from tests.engine.conftest import DATA, assert_bit_identical, read_store

ROOT = Path(__file__).resolve().parents[2]


def _run(circuit: object, out: Path, step_loop: str) -> dict[str, object]:
    comm, exchanger = communicator()
    status = execute(
        circuit,  # type: ignore[arg-type]
        out,
        comm=comm,
        exchanger=exchanger,
        config=RunConfig(step_loop=step_loop),  # type: ignore[arg-type]
    )
    assert status == "complete"
    return read_store(out)


@pytest.mark.parametrize(
    "circuit",
    [
        pytest.param(lambda: parse_circuit(WARMUP_CIRCUIT), id="every-part"),
        pytest.param(lambda: load_circuit(DATA / "features.yaml"), id="features"),
        pytest.param(
            lambda: with_overrides(
                load_circuit(ROOT / "circuits" / "brunel_stdp.yaml", parameters={"NE": 400}),
                duration_ms=100.0,
            ),
            id="brunel-stdp",
        ),
    ],
)
def test_the_circuit_s_own_loop_equals_the_general_one(circuit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = circuit()
    general = _run(spec, tmp_path / "general.zarr", "general")
    own = _run(spec, tmp_path / "own.zarr", "circuit")
    assert run_variant.signatures  # the circuit's own loop did run
    assert any(key.startswith("spikes/") and value.size for key, value in general.items())  # type: ignore[attr-defined]
    assert_bit_identical(general, own)  # type: ignore[arg-type]


def test_a_circuit_s_variant_leaves_out_what_it_does_not_use() -> None:
    comm, _ = communicator()
    tiny = load_circuit(ROOT / "circuits" / "tiny.yaml")
    variant = network_variant(build_network(tiny, comm))
    # Delta LIF neurons, a Poisson drive, static synapses, one rank.
    assert variant.lif_delta
    assert variant.poisson
    left_out = {name for name, on in variant._asdict().items() if on is None}
    assert {"lif_exp", "lif_alpha", "izhikevich", "parrot", "plastic", "noise", "rate",
            "exchange"} <= left_out  # fmt: skip
    every = network_variant(build_network(parse_circuit(WARMUP_CIRCUIT), comm))
    for name in ("lif_delta", "lif_exp", "lif_alpha", "izhikevich", "parrot", "plastic",
                 "poisson", "rate", "noise"):  # fmt: skip
        assert getattr(every, name) is True, name
    assert every.exchange is None  # one rank
    assert EVERYTHING.exchange is True


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("tiny", {}),
        ("izhikevich_2003", {}),
        ("brunel_delta", {}),
        ("brunel_stdp", {}),
        ("potjans_diesmann_2014", {"scale": 0.02}),
        ("hpc_benchmark", {"scale": 0.02}),
    ],
)
def test_the_expected_variant_of_each_example_is_the_built_one(
    name: str, parameters: dict[str, float]
) -> None:
    """What a cold run compiles ahead, before construction, from the circuit alone (its
    models, inputs and the storage modes construction will most likely choose) is what the
    built tables need: the helper's early work is not wasted on the example circuits."""
    comm, _ = communicator()
    circuit = load_circuit(ROOT / "circuits" / f"{name}.yaml", parameters=parameters)
    built = network_variant(build_network(circuit, comm))
    assert expected_variant(circuit, 1)._asdict() == built._asdict()


def test_the_expected_variant_of_a_large_population_on_more_ranks() -> None:
    """Storage modes follow the local targets: 70,000 targets are too many for 16-bit indices
    on one rank, not on two; a drawn delay gives the byte or packed modes."""
    doc = {
        "apiVersion": "brainsim/v1", "name": "big",
        "simulation": {"dt_ms": 0.1, "duration_ms": 1.0},
        "populations": {"A": {"size": 70000, "model": "lif"}},
        "projections": {
            "fixed": {"source": "A", "target": "A", "weight": 0.1, "delay_ms": 1.0,
                      "connectivity": {"rule": "fixed_indegree", "indegree": 1}},
            "drawn": {"source": "A", "target": "A", "weight": 0.1,
                      "delay_ms": {"uniform": {"low": 1.0, "high": 2.0}},
                      "connectivity": {"rule": "fixed_indegree", "indegree": 1}},
        },
    }  # fmt: skip
    circuit = parse_circuit(doc)
    one, two = expected_variant(circuit, 1), expected_variant(circuit, 2)
    assert (one.constant, one.packed, one.narrow, one.narrow_byte) == (True, True, None, None)
    assert (two.constant, two.packed, two.narrow, two.narrow_byte) == (None, None, True, True)
    assert two.exchange is True
    comm, _ = communicator()
    assert network_variant(build_network(circuit, comm))._asdict() == one._asdict()
