"""Stand-in for pyNN.parameters.Sequence: one neuron's spike times."""

import numpy as np


class Sequence:
    def __init__(self, value):
        self.value = np.asarray(value, dtype=float)
