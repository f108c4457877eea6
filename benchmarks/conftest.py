"""Benchmarks run by `make bench` (marker `benchmark_reference`); not part of `make test`."""
