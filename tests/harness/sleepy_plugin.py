"""Plugins for the timing-regression test (tests/harness/test_throughput.py): two softmaxes that
sleep, one of them longer when SOFTMAX_BENCH_TEST_SLOWDOWN (seconds) is set. Sleeping makes their
time stable on a busy machine, so only the deliberate slow-down can be a regression."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from harness import Implementation

F32 = ("float32",)
BASE_SLEEP = 0.005


def _softmax(x: Any) -> Any:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _steady(x: Any) -> Any:
    time.sleep(BASE_SLEEP)
    return _softmax(x)


def _slowed(x: Any) -> Any:
    time.sleep(BASE_SLEEP + float(os.environ.get("SOFTMAX_BENCH_TEST_SLOWDOWN", "0")))
    return _softmax(x)


def _compiles(x: Any) -> Any:
    """Slow on its first call only, like a compiled mode."""
    if not getattr(_compiles, "done", False):
        time.sleep(0.3)
        _compiles.done = True  # type: ignore[attr-defined]
    return _softmax(x)


def plugins() -> list[Implementation]:
    make = lambda name, fn: Implementation(  # noqa: E731
        f"sleepy.{name}", "softmax", "numpy", fn, dtypes=F32, differentiable=False,
        description=f"a softmax that sleeps ({name})")
    return [make("steady", _steady), make("slowed", _slowed), make("compiles", _compiles)]
