"""Framework adapters: `get_adapter(framework)` gives the `Adapter` a worker process uses.

Importing this package imports no framework; each adapter imports its framework on first use.
"""

from __future__ import annotations

from harness.adapters.base import Adapter, NotDifferentiable
from harness.errors import ConfigError

ADAPTER_FRAMEWORKS = ("numpy", "scipy", "torch", "tensorflow", "jax")


def get_adapter(framework: str) -> Adapter:
    """A fresh adapter for `framework` ("numpy", "scipy", "torch", "tensorflow" or "jax")."""
    if framework in ("numpy", "scipy"):
        from harness.adapters.numpy_adapter import NumpyAdapter

        return NumpyAdapter(framework)
    if framework == "torch":
        from harness.adapters.torch_adapter import TorchAdapter

        return TorchAdapter()
    if framework == "tensorflow":
        from harness.adapters.tensorflow_adapter import TensorflowAdapter

        return TensorflowAdapter()
    if framework == "jax":
        from harness.adapters.jax_adapter import JaxAdapter

        return JaxAdapter()
    raise ConfigError(f"no adapter for framework {framework!r}; known: "
                      f"{', '.join(ADAPTER_FRAMEWORKS)}")


__all__ = ["ADAPTER_FRAMEWORKS", "Adapter", "NotDifferentiable", "get_adapter"]
