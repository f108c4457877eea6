"""Exact (rational) values and their correct rounding to float64.

Some reference values are exact dyadic or rational numbers fixed by the structure of the row
(1/K for tied maxima, masked entries, gradients of rows without a tail, labels summing to zero).
An error bound can never decide the rounding of a value that is itself a float, so these are
computed exactly with ``fractions.Fraction`` and rounded here.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

_F64_MAX = Fraction(np.finfo(np.float64).max)
# Exact values at or beyond (2 - 2^-53) * 2^1023 round to infinity (docs/numerics.md §7.1).
_F64_OVERFLOW = Fraction(2) ** 1024 - Fraction(2) ** 970


def round_fraction(q: Fraction | float) -> tuple[float, float, int]:
    """(hi, lo, direction) for an exact value: hi = RN64(q), lo = RN64(q - hi), sign(q - hi)."""
    if isinstance(q, float):
        return q, 0.0, 0
    if abs(q) >= _F64_OVERFLOW:
        return (np.inf if q > 0 else -np.inf), 0.0, (-1 if q > 0 else 1)
    # int / int true division is correctly rounded in CPython, subnormals included.
    hi = q.numerator / q.denominator
    if hi == 0.0 and q < 0:
        hi = -0.0
    rest = q - Fraction(hi)
    if rest == 0:
        return hi, 0.0, 0
    lo = rest.numerator / rest.denominator
    return hi, lo, (1 if rest > 0 else -1)


def exact_sum_is_zero(values: np.ndarray) -> np.ndarray:
    """Per row (last axis): is the exact sum of the float64 values zero?"""
    import math

    lead = values.shape[:-1]
    rows = np.asarray(values, dtype=np.float64).reshape(int(np.prod(lead)), values.shape[-1])
    # math.fsum is correctly rounded, and a nonzero exact sum of floats is at least the smallest
    # subnormal in magnitude, so it cannot round to zero.
    out = np.array([math.fsum(r) == 0.0 for r in rows], dtype=bool)
    return out.reshape(lead)


def exact_row_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row sums of float64 values as hi + lo within err (err = 0 where the pair is exact).

    Each math.fsum is correctly rounded, so successive calls peel off the sum exactly."""
    import math

    n = values.shape[0]
    hi, lo, err = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, row in enumerate(np.asarray(values, dtype=np.float64)):
        terms = row.tolist()
        hi[i] = math.fsum(terms)
        if not np.isfinite(hi[i]):
            continue
        lo[i] = math.fsum(terms + [-hi[i]])
        err[i] = 2 * abs(math.fsum(terms + [-hi[i], -lo[i]]))
    return hi, lo, err
