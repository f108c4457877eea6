"""Benchmarks: `make bench` runs the reference ones (marker `benchmark_reference`); the throughput
suite and the fidelity check (marker `benchmark_throughput`, docs/throughput.md) run on request.
Neither is part of `make test`."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("softmax-bench throughput (benchmarks/test_throughput.py)")
    group.addoption("--throughput-suite", default="throughput",
                    help="throughput suite: a built-in name or a TOML file (default throughput)")
    group.addoption("--throughput-impl", action="append", default=[], metavar="GLOB",
                    help="only implementations matching GLOB (repeatable)")
    group.addoption("--throughput-exclude", action="append", default=[], metavar="GLOB",
                    help="skip implementations matching GLOB (repeatable)")
    group.addoption("--throughput-dtype", action="append", default=[],
                    choices=["float16", "bfloat16", "float32", "float64"],
                    help="only this dtype (repeatable)")
    group.addoption("--throughput-shape", action="append", default=[], metavar="NxC",
                    help="time these shapes instead of the suite's (repeatable)")
    group.addoption("--throughput-device", default="cpu", choices=["cpu", "cuda"])
    group.addoption("--throughput-threads", type=int, default=None,
                    help="intra-op threads in every framework (default: the schedulable CPUs)")
