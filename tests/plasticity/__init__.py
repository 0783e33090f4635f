"""Conformance of STDP synapses: a pure-Python reference and NEST runs that it must equal."""
