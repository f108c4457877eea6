"""Test a softmax-family kernel against the exact reference, inside your own test suite.

- ``assert_close_to_exact(actual, x, op="softmax", *, axis=-1, labels=None, max_ulp=None,
  **op_options)`` and ``assert_grad_close_to_exact(grad, x, op, *, cotangent=None, ...)``:
  the harness's verdict on one output; an ``AssertionError`` that shows the worst element (its
  index, input row, exact value, correctly rounded value, what came back, ULP error and limit).
  ``score`` / ``score_grad``: the same judgement without raising.
- ``verify(fn, op, *, suite="quick", dtypes=("float32",), passes=("forward",), device="cpu",
  isolated=False)``: every case of a suite, through the harness's engine; ``assert_verified``.
- ``cases(op, suite=..., dtypes=..., families=...)`` and ``get_case``: the cases themselves
  (what the pytest fixture ``softmax_case`` iterates over).
- ``softmax_bench.testing.strategies``: hypothesis strategies built from the case families.

See docs/testing-your-kernel.md.
"""

from softmax_bench.testing._arrays import to_numpy
from softmax_bench.testing._cases import Case, cases, get_case
from softmax_bench.testing._check import (
    CheckResult,
    assert_close_to_exact,
    assert_grad_close_to_exact,
    score,
    score_grad,
)
from softmax_bench.testing._verify import VerifyResult, assert_verified, verify

__all__ = [
    "Case",
    "CheckResult",
    "VerifyResult",
    "assert_close_to_exact",
    "assert_grad_close_to_exact",
    "assert_verified",
    "cases",
    "get_case",
    "score",
    "score_grad",
    "to_numpy",
    "verify",
]
