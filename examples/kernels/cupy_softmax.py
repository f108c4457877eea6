"""A CuPy softmax, written as many users first write one: shift by the row maximum, exponentiate,
divide by the sum, in the input's dtype. Needs a CUDA GPU and CuPy."""

from __future__ import annotations

from typing import Any


def softmax(x: Any) -> Any:
    """Softmax over the last axis of a CUDA array (a CuPy array, or anything CuPy takes through
    DLPack, such as a torch CUDA tensor); returns a CuPy array on the same GPU."""
    import cupy as cp

    xd = cp.from_dlpack(x) if hasattr(x, "__dlpack__") else cp.asarray(x)
    shifted = xd - xd.max(axis=-1, keepdims=True)
    e = cp.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
