"""Loopback stand-ins for platform servers, for the tests and the benchmarks."""
