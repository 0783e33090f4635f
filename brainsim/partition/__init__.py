"""Domain decomposition of a circuit's neurons over ranks."""

from brainsim.partition.decomposition import Decomposition, block_decomposition

__all__ = ["Decomposition", "block_decomposition"]
