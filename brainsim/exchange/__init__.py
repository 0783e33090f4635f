"""Spike exchange and collectives between ranks: protocols, a local and an MPI implementation."""

from brainsim.exchange.base import Communicator, NativeExchange, SpikeExchanger
from brainsim.exchange.local import LocalCommunicator, LocalExchanger

__all__ = [
    "Communicator",
    "LocalCommunicator",
    "LocalExchanger",
    "NativeExchange",
    "SpikeExchanger",
]
