"""A test plugin that reports the environment its worker process sees (tests/harness/
test_ray_executor.py: a worker in a Ray actor must see what a local worker sees)."""

from __future__ import annotations

import os
from typing import Any

from harness import Implementation


def _probe(x: Any) -> Any:
    raise RuntimeError(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')!r} "
                       f"niceness={os.getpriority(os.PRIO_PROCESS, 0)}")


def plugins() -> list[Implementation]:
    return [Implementation("envprobe.environment", "softmax", "numpy", _probe,
                           dtypes=("float32",), differentiable=False,
                           description="raises with the worker's OMP_NUM_THREADS and niceness")]
