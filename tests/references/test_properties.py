"""Properties the exact answer must have, on random rows (hypothesis)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import references
from tests.references.strategies import logits

SETTINGS = settings(max_examples=40, deadline=None)


def _exact(result: references.ReferenceResult) -> list[Fraction]:
    """hi + lo as exact rationals, element by element."""
    return [Fraction(float(h)) + Fraction(float(lo_))
            for h, lo_ in zip(result.hi.ravel(), result.lo.ravel(), strict=True)]


@SETTINGS
@given(logits(), st.integers(-8, 8))
def test_softmax_is_unchanged_by_an_exact_shift(x: np.ndarray, k: int) -> None:
    shift = float(2.0**k)
    shifted = x.astype(np.float64) + shift
    exact_shift = (shifted - shift == x.astype(np.float64)).all()
    if not exact_shift:
        return
    a, b = references.softmax(x), references.softmax(shifted)
    np.testing.assert_array_equal(a.hi, b.hi)
    np.testing.assert_array_equal(a.direction, b.direction)


@SETTINGS
@given(logits())
def test_softmax_sums_to_one_within_the_certified_bound(x: np.ndarray) -> None:
    r = references.softmax(x)
    for row in range(x.shape[0]):
        parts = [Fraction(float(h)) + Fraction(float(lo_)) for h, lo_ in
                 zip(r.hi[row], r.lo[row], strict=True)]
        total = sum(parts, Fraction(0))
        # each element is within 2^-100 relative, so the sum of positives is too
        assert abs(total - 1) <= Fraction(2) ** -99, float(total - 1)


@SETTINGS
@given(logits(), st.randoms(use_true_random=False))
def test_permutation_equivariance(x: np.ndarray, rnd: object) -> None:
    perm = np.arange(x.shape[-1])
    rnd.shuffle(perm)  # type: ignore[attr-defined]
    for fn in (references.softmax, references.log_softmax):
        a, b = fn(x), fn(x[:, perm])
        np.testing.assert_array_equal(a.hi[:, perm], b.hi)
        np.testing.assert_array_equal(a.direction[:, perm], b.direction)
        # lo is any remainder within the contract; summation order may change its last bits
        np.testing.assert_allclose(a.lo[:, perm], b.lo, rtol=2.0**-40, atol=2.0**-1070)
    np.testing.assert_array_equal(references.logsumexp(x).hi,
                                  references.logsumexp(x[:, perm]).hi)


@SETTINGS
@given(st.floats(-1e4, 1e4, allow_nan=False), st.floats(-3, 3, allow_nan=False))
def test_single_class_rows(v: float, y: float) -> None:
    x = np.array([[v]])
    assert references.softmax(x).hi[0, 0] == 1.0
    assert references.log_softmax(x).hi[0, 0] == 0.0
    assert references.logsumexp(x).hi[0] == v
    assert references.sparse_softmax_cross_entropy(x, np.array([0])).hi[0] == 0.0
    assert references.softmax_cross_entropy(x, np.array([[y]])).hi[0] == 0.0
    assert references.softmax_cross_entropy_grad(x, np.array([[y]])).hi[0, 0] == 0.0


@SETTINGS
@given(logits(max_classes=8))
def test_log_softmax_is_x_minus_logsumexp(x: np.ndarray) -> None:
    ls = _exact(references.log_softmax(x))
    lse = _exact(references.logsumexp(x))
    c = x.shape[-1]
    for k, value in enumerate(ls):
        i, j = divmod(k, c)
        expected = Fraction(float(x[i, j])) - lse[i]
        assert abs(value - expected) <= Fraction(2) ** -98 * max(abs(expected), abs(lse[i]))


@SETTINGS
@given(logits(max_classes=8))
def test_gradients_sum_to_zero(x: np.ndarray) -> None:
    labels = np.zeros(x.shape[0], dtype=np.int64)
    grad = references.sparse_softmax_cross_entropy_grad(x, labels)
    for row in range(x.shape[0]):
        total = sum((Fraction(float(h)) + Fraction(float(lo_)) for h, lo_ in
                     zip(grad.hi[row], grad.lo[row], strict=True)), Fraction(0))
        assert abs(total) <= Fraction(2) ** -98
