"""The exact reference (the judge), as the public API: ``softmax_bench.references.softmax(x)``.

Every function takes numpy arrays of float16, bfloat16 (ml_dtypes), float32 or float64 whose
element values are the exact input, class axis last, and returns a ``ReferenceResult``: ``hi``
and ``lo`` (float64; ``hi + lo`` is the exact value to about 2**-100) and ``rounded(dtype)``,
the exact value correctly rounded to a dtype. ``ulp_error(actual, result, dtype)`` measures an
output against it. The contract, special values and error analysis: docs/reference.md.
"""

from references import (
    REFERENCE_VERSION,
    ReferenceResult,
    UlpError,
    cross_entropy,
    cross_entropy_grad,
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
    ulp_error,
)

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
