"""Third-party plugins used only to record the report fixture (tests/reports/make_fixture.py).

They exercise what a report must survive: text from a plugin that contains HTML and script
(descriptions, names, error messages), a worker crash, a hang (timeout), a wrong output shape
and a malformed registration. Installed into a temporary site directory with an
``entry_points.txt`` while the fixture run records them; never part of the package.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from harness import Implementation

HOSTILE_TEXT = ('<script>window.__injected = 1</script><img src=x '
                'onerror="window.__injected = 2"> <b>must show as text</b>')


def _softmax(x: Any) -> Any:
    if x.dtype == np.float16:
        raise ValueError("<script>window.__injected = 3</script> refused float16 & <b>co</b>")
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _crash(x: Any) -> Any:
    os.abort()


def _hang(x: Any) -> Any:
    time.sleep(3600)


def _wrong_shape(x: Any) -> Any:
    return np.zeros(x.shape[:-1] + (x.shape[-1] + 1,), dtype=x.dtype)


def plugins() -> list[Implementation]:
    return [
        Implementation("hostile.softmax_<i>x</i>", "softmax", "numpy", _softmax,
                       dtypes=("float16", "float32"), differentiable=False,
                       description=HOSTILE_TEXT),
        Implementation("hostile.crash", "softmax", "numpy", _crash, dtypes=("float32",),
                       differentiable=False, description="calls os.abort()"),
        Implementation("hostile.hang", "softmax", "numpy", _hang, dtypes=("float16",),
                       differentiable=False, description="sleeps for an hour"),
        Implementation("hostile.wrong_shape", "softmax", "numpy", _wrong_shape,
                       dtypes=("float32",), differentiable=False,
                       description="returns one class too many"),
    ]


def malformed() -> list[Any]:
    return ["<script>window.__injected = 4</script> not an implementation"]
