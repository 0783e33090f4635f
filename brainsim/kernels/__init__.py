"""brainsim.kernels."""
