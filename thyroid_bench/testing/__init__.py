"""Fixture code for tests and benchmarks (not used by the package itself)."""
