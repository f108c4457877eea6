"""Anything array-like -> a host numpy array, bit for bit (bfloat16 as ml_dtypes.bfloat16).

NumPy arrays pass through. Framework tensors are recognised by their type's module, never by
importing the framework: torch (``detach().cpu()``; bfloat16 through an int16 view, which numpy
cannot take directly), TensorFlow (``.numpy()``), CuPy (``.get()``), JAX (``numpy.asarray``
copies to the host). Anything else goes through ``__dlpack__`` (host memory) or ``__array__``.
"""

from __future__ import annotations

import sys
from typing import Any

import ml_dtypes
import numpy as np

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def _root_module(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def _from_torch(t: Any) -> np.ndarray:
    torch = sys.modules["torch"]
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.is_conj():
        t = t.resolve_conj()
    if t.dtype == torch.bfloat16:
        return np.array(t.view(torch.int16).numpy(), copy=True).view(BFLOAT16)
    return np.array(t.numpy(), copy=True)


def to_numpy(obj: Any) -> np.ndarray:
    """A host numpy copy of ``obj`` (an array, a framework tensor, a scalar or a list)."""
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, np.generic):
        return np.asarray(obj)
    root = _root_module(obj)
    if root == "torch" and "torch" in sys.modules and hasattr(obj, "detach"):
        return _from_torch(obj)
    if root == "cupy" and hasattr(obj, "get"):
        return np.asarray(obj.get())
    if root in ("tensorflow", "keras") and hasattr(obj, "numpy"):
        return np.asarray(obj.numpy())
    if root in ("jax", "jaxlib"):
        return np.array(obj, copy=True)
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        try:
            if obj.__dlpack_device__()[0] == 1:  # kDLCPU
                return np.array(np.from_dlpack(obj), copy=True)
        except (TypeError, BufferError, RuntimeError, ValueError):
            pass  # e.g. a dtype numpy's DLPack import does not know: try __array__
    return np.asarray(obj)
