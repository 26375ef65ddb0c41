"""Benchmarks of the engine's hot paths (run by `debate bench` and `make bench`)."""
