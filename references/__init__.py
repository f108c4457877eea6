"""Exact reference values for the softmax family: the judge every implementation is scored by.

All functions take numpy arrays of float16, bfloat16 (ml_dtypes), float32 or float64 whose exact
element values are the input, and return a :class:`ReferenceResult` with ``hi``/``lo``/
``direction`` and ``rounded(dtype)``. See docs/reference.md for the contract, the special-value
table and the error analysis. This package knows nothing about frameworks.
"""

from references.api import (
    REFERENCE_VERSION,
    log_softmax,
    log_softmax_vjp,
    logsumexp,
    logsumexp_grad,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    softmax_vjp,
    sparse_softmax_cross_entropy,
    sparse_softmax_cross_entropy_grad,
)
from references.cross_entropy import cross_entropy, cross_entropy_grad
from references.metrics import UlpError, ulp_error
from references.result import ReferenceResult

__all__ = [
    "REFERENCE_VERSION",
    "ReferenceResult",
    "UlpError",
    "cross_entropy",
    "cross_entropy_grad",
    "log_softmax",
    "log_softmax_vjp",
    "logsumexp",
    "logsumexp_grad",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_vjp",
    "sparse_softmax_cross_entropy",
    "sparse_softmax_cross_entropy_grad",
    "ulp_error",
]
