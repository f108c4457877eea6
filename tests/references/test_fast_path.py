"""The fast path (float64 and binary128 tiers) against the plain mpmath path.

The fast tiers must hand out exactly what the mpmath path does: ``hi`` and ``direction`` bit
for bit, ``lo`` within the contract, and every narrow rounding identical, on random rows and on
every adversarial family."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import references
from references import _engine
from tests.references import families as F

FAMILY_FUNCTIONS = [f for name, f in F.FAMILIES.items() if name != "labels_out_of_range"]


def _both(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
          ) -> tuple[references.ReferenceResult, references.ReferenceResult]:
    fast = fn(*args, **kwargs)
    with _engine.plain_mpmath_path():
        plain = fn(*args, **kwargs)
        _ = plain.hi, {d: plain.rounded(d) for d in F.DTYPES.values()}
    return fast, plain


def _assert_same(fast: references.ReferenceResult, plain: references.ReferenceResult,
                 what: str) -> None:
    np.testing.assert_array_equal(fast.hi.view(np.int64), plain.hi.view(np.int64), err_msg=what)
    np.testing.assert_array_equal(fast.direction, plain.direction, err_msg=what)
    for dtype in F.DTYPES.values():
        a, b = fast.rounded(dtype), plain.rounded(dtype)
        np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"),
                                      err_msg=f"{what} rounded to {dtype}")
    finite = np.isfinite(fast.hi) & (np.abs(fast.hi) >= 2.0**-922)
    for h, l1, l2 in zip(fast.hi[finite], fast.lo[finite], plain.lo[finite], strict=True):
        gap = abs(Fraction(float(l1)) - Fraction(float(l2)))
        assert gap <= Fraction(2) ** -99 * abs(Fraction(float(h))), what


@pytest.mark.parametrize("family", FAMILY_FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", list(F.DTYPES), ids=str)
def test_fast_path_matches_the_mpmath_path_on_every_family(family: Any, dtype: str) -> None:
    for case in family(F.DTYPES[dtype]):
        for name, call in case.op_inputs.items():
            if call.expect_error:
                continue
            fast, plain = _both(getattr(references, name), call.args, dict(call.kwargs))
            _assert_same(fast, plain, f"{name} on {case.id} ({dtype})")


@pytest.mark.parametrize("dtype", list(F.DTYPES), ids=str)
@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0])
def test_fast_path_matches_the_mpmath_path_on_random_rows(dtype: str, scale: float) -> None:
    rng = np.random.default_rng(int(scale) * 7 + len(dtype))
    x = (rng.normal(0, scale, (3, 300))).astype(F.DTYPES[dtype])
    labels = rng.integers(0, 300, 3)
    y = rng.dirichlet(np.ones(300), 3)
    g = rng.normal(size=(3, 300))
    calls: list[tuple[Any, tuple[Any, ...]]] = [
        (references.softmax, (x,)), (references.log_softmax, (x,)),
        (references.logsumexp, (x,)), (references.sparse_softmax_cross_entropy, (x, labels)),
        (references.softmax_cross_entropy, (x, y)), (references.softmax_vjp, (x, g)),
        (references.log_softmax_vjp, (x, g)), (references.logsumexp_grad, (x,)),
        (references.sparse_softmax_cross_entropy_grad, (x, labels)),
        (references.softmax_cross_entropy_grad, (x, y)),
    ]
    for fn, args in calls:
        fast, plain = _both(fn, args, {})
        _assert_same(fast, plain, f"{fn.__name__} N(0, {scale}) {dtype}")


def test_the_fast_path_does_not_fall_back_on_ordinary_rows() -> None:
    """The tiers are only fast if ordinary rows never reach mpmath: check the tier-1 decision
    rate on a realistic row (float32 N(0, 3), 4096 classes)."""
    x = np.random.default_rng(5).normal(0, 3, (4, 4096)).astype(np.float32)
    problem = _engine.Problem("softmax", x.astype(np.float64))
    _, decided = _engine.solve_narrow(problem, references.formats.format_of(np.float32))
    assert decided.mean() > 0.999
