"""Stand-in for the cell types of pynn_brainscales.brainscales2.standardmodels.cells: the
parameter names, defaults and documented calibration ranges of CalibHXNeuronCuba
(voltages in CADC units, times in us of chip time), checked strictly (tests only)."""

from typing import ClassVar

import numpy as np

RANGES = {
    "v_rest": (50, 160),
    "v_reset": (50, 160),
    "v_thresh": (50, 220),
    "tau_m": (0.5, 60),
    "tau_syn_E": (0.3, 30),
    "tau_syn_I": (0.3, 30),
    "cm": (0, 63),
    "tau_refrac": (0.04, 32),
    "i_synin_gm_E": (30, 800),
    "i_synin_gm_I": (30, 800),
    "synapse_dac_bias": (30, 1022),
}
VOLTAGES = ("v_rest", "v_reset", "v_thresh")


class CalibHXNeuronCuba:
    default_parameters: ClassVar[dict[str, float]] = {
        "v_rest": 80.0,
        "v_reset": 70.0,
        "v_thresh": 125.0,
        "tau_m": 10.0,
        "tau_syn_E": 10.0,
        "tau_syn_I": 10.0,
        "cm": 63,
        "tau_refrac": 2.0,
        "i_synin_gm_E": 500,
        "i_synin_gm_I": 500,
        "synapse_dac_bias": 600,
    }

    def __init__(self, plasticity_rule=None, **parameters):
        assert plasticity_rule is None
        unknown = set(parameters) - set(self.default_parameters)
        if unknown:
            raise TypeError(f"CalibHXNeuronCuba takes no {sorted(unknown)}")
        self.given = parameters
        self.parameters = {**self.default_parameters, **parameters}
        for name, value in self.parameters.items():
            values = np.atleast_1d(np.asarray(value, dtype=float))
            low, high = RANGES[name]
            if values.min() < low or values.max() > high:
                raise ValueError(f"{name} {values} outside [{low}, {high}]")
            if name in VOLTAGES and not np.array_equal(values, np.rint(values)):
                raise ValueError(f"{name} {values}: calibration targets are whole CADC values")


class SpikeSourceArray:
    def __init__(self, spike_times=()):
        self.spike_times = spike_times


class SpikeSourcePoisson:
    def __init__(self, start, rate, duration):
        self.start = start
        self.rate = rate
        self.duration = duration
