"""softmax-bench harness: runs softmax-family implementations and scores them on the reference.

The engine (registry, framework adapters, workers, results store) and the `softmax-bench` CLI live
here. `harness` depends on `references`; nothing here imports a framework at import time.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("softmax-bench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from harness.registry import Implementation  # noqa: E402  (the plugin API: harness.Implementation)

__all__ = ["Implementation", "__version__"]
