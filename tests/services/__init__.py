"""Tests of the gRPC job service (services/)."""
