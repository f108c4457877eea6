"""softmax-bench's public face: test your own softmax / cross-entropy kernel against the exact
reference, with the harness's own cases, limits and verdicts.

- ``softmax_bench.testing``: ``assert_close_to_exact``, ``assert_grad_close_to_exact``,
  ``score``, ``verify``, ``assert_verified``, ``cases`` and ``testing.strategies``
  (hypothesis); the pytest plugin (marker ``softmax_cases``, fixture ``softmax_case``) comes
  with the installation.
- ``softmax_bench.references``: the exact reference itself (``softmax``, ``log_softmax``, ...).
- ``softmax_bench.Implementation``: a registration for the ``softmax_bench.plugins`` entry
  points (the same class as ``harness.Implementation``).

Submodules load on first use: ``import softmax_bench`` costs nothing (the pytest plugin lives
here and is imported by every pytest run in an environment that has softmax-bench).
See docs/testing-your-kernel.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.registry import Implementation
    from softmax_bench import references, testing

__all__ = ["Implementation", "__version__", "references", "testing"]


def __getattr__(name: str) -> Any:
    if name in ("references", "testing"):
        return importlib.import_module(f"softmax_bench.{name}")
    if name == "Implementation":
        from harness.registry import Implementation

        return Implementation
    if name == "__version__":
        from harness import __version__

        return __version__
    raise AttributeError(f"module 'softmax_bench' has no attribute {name!r}")
