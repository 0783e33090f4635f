"""The brainsim gRPC job service."""
