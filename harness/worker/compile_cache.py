"""The frameworks' own persistent compilation caches, kept under the softmax-bench cache root.

A suite compiles one kernel per (implementation, shape, dtype, pass): the quick suite's
~350 distinct tiny shapes cost seconds each under torch.compile, XLA and JAX's op-by-op
dispatch, far more than running them. Each framework can keep compiled executables on disk,
keyed by everything that determines the code (graph, shapes, compile options, versions), so a
cache hit returns the same executable and cannot change a result; it only removes the
compile time of a repeated run. Each framework is told where:

- JAX: ``jax_compilation_cache_dir`` with no minimum compile time or entry size, so that
  the small executables of eager op-by-op dispatch are kept too;
- TensorFlow: ``TF_XLA_FLAGS=--tf_xla_persistent_cache_directory`` (``@xla`` functions);
- PyTorch: ``TORCHINDUCTOR_CACHE_DIR`` (inductor's FX-graph, AOTAutograd and kernel caches,
  on by default in their own directory); with caching off, a fresh temporary directory per
  worker, so every worker compiles from scratch.

A variable the user set already (``TF_XLA_FLAGS`` naming a cache, ``TORCHINDUCTOR_CACHE_DIR``)
wins. The directory is ``SOFTMAX_BENCH_COMPILE_CACHE``, by default ``softmax-bench-compile`` in the
user's cache directory, apart from the reference cache (``SOFTMAX_BENCH_CACHE``) so that
either can be cold on its own; ``off`` disables it. The setting in force is recorded in each
framework's numerics settings (run.json).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ENV = "SOFTMAX_BENCH_COMPILE_CACHE"


def directory(framework: str) -> Path | None:
    """Where ``framework`` keeps compiled code, or None when compile caching is off."""
    setting = os.environ.get(ENV, "")
    if setting.lower() in ("off", "0", "false", "none"):
        return None
    if setting:
        root = Path(setting).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = Path(base) / "softmax-bench-compile"
    return root / framework


def tensorflow_flags(current: str) -> str:
    """``TF_XLA_FLAGS`` with the persistent XLA cache added (unchanged when off or set)."""
    path = directory("tensorflow")
    if path is None or "tf_xla_persistent_cache_directory" in current:
        return current
    path.mkdir(parents=True, exist_ok=True)
    return f"{current} --tf_xla_persistent_cache_directory={path}".strip()


TORCH_ENV = "TORCHINDUCTOR_CACHE_DIR"


def torch_cache_dir() -> str:
    """The value for ``TORCHINDUCTOR_CACHE_DIR``: the user's, the cache's, or (caching off) a
    fresh temporary directory removed when the process exits."""
    current = os.environ.get(TORCH_ENV)
    if current:
        return current
    path = directory("torch")
    if path is None:
        fresh = tempfile.mkdtemp(prefix="softmax-bench-inductor-")
        atexit.register(shutil.rmtree, fresh, ignore_errors=True)
        return fresh
    path.mkdir(parents=True, exist_ok=True)
    return str(path)
