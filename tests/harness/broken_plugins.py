"""Deliberately broken third-party plugins for the isolation tests (installed into a temporary
site directory with an entry_points.txt by tests/harness/test_isolation.py)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from harness import Implementation

F32 = ("float32",)


def _softmax(x: Any) -> Any:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _crash(x: Any) -> Any:
    os.abort()


def _hang(x: Any) -> Any:
    pidfile = os.environ.get("SOFTMAX_BENCH_TEST_PIDFILE")
    if pidfile:  # tells the interrupt test which worker process hangs
        with open(pidfile, "w") as fh:
            fh.write(str(os.getpid()))
    time.sleep(3600)


def _raise(x: Any) -> Any:
    raise RuntimeError("kaboom from a plugin")


def _wrong_shape(x: Any) -> Any:
    return _softmax(x)[:, :1]


def plugins() -> list[Implementation]:
    make = lambda name, fn: Implementation(  # noqa: E731
        f"broken.{name}", "softmax", "numpy", fn, dtypes=F32, differentiable=False,
        description=f"a plugin that does {name} <script>alert('x')</script>")
    return [make("good", _softmax), make("crash", _crash), make("hang", _hang),
            make("raise", _raise), make("wrong_shape", _wrong_shape)]


def malformed() -> list[Any]:
    return [Implementation("broken.bad_op", "softmaxx", "numpy", _softmax),
            "not an implementation"]


def factory_that_raises() -> list[Implementation]:
    raise ImportError("a dependency of this plugin is missing")


def _sticky_device_error(x: Any) -> Any:
    # what a CUDA error looks like from PyTorch; the pid shows which worker process ran it
    raise RuntimeError(f"CUDA error: an illegal memory access was encountered (pid {os.getpid()})")


def sticky_plugins() -> list[Implementation]:
    return [Implementation("sticky.cuda_error", "softmax", "numpy", _sticky_device_error,
                           dtypes=F32, differentiable=False)]
