"""ULP error of an implementation's output against the exact reference (docs/numerics.md §7).

The score is ``|y - z| / ulp(ẑ)`` with ``ẑ = RN_dtype(z)`` (the Zimmermann / MPFR-tester
convention), computed as ``|(y - hi) - lo| / ulp(ẑ)`` in float64. Special-value mismatches are
not numbers: they are named in ``classes`` and, except where §7.3 says they are still scored,
get a NaN score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from references.formats import Format, format_of, ulp

__all__ = [
    "CLASSES",
    "FLUSHED_SUBNORMAL",
    "NAN_WHERE_FINITE",
    "SCORED_CLASSES",
    "SPURIOUS_OVERFLOW",
    "VALUE_WHERE_NAN",
    "WRONG_INFINITY",
    "WRONG_SIGN_OF_ZERO",
    "ZERO_FOR_NONZERO",
    "ExactResult",
    "UlpError",
    "ulp_error",
]

NAN_WHERE_FINITE = "nan_where_finite"
VALUE_WHERE_NAN = "value_where_nan"
WRONG_INFINITY = "wrong_infinity"
SPURIOUS_OVERFLOW = "spurious_overflow"
WRONG_SIGN_OF_ZERO = "wrong_sign_of_zero"
FLUSHED_SUBNORMAL = "flushed_subnormal"
ZERO_FOR_NONZERO = "zero_for_nonzero"

CLASSES: tuple[str, ...] = (
    NAN_WHERE_FINITE,
    VALUE_WHERE_NAN,
    WRONG_INFINITY,
    SPURIOUS_OVERFLOW,
    WRONG_SIGN_OF_ZERO,
    FLUSHED_SUBNORMAL,
    ZERO_FOR_NONZERO,
)
# Classified elements that still carry a numeric score and enter max/p99/mean.
SCORED_CLASSES: frozenset[str] = frozenset(
    {SPURIOUS_OVERFLOW, WRONG_SIGN_OF_ZERO, ZERO_FOR_NONZERO}
)
_CLASS_DTYPE = np.dtype(f"<U{max(len(c) for c in CLASSES)}")


class ExactResult(Protocol):
    """What :func:`ulp_error` needs from a reference result (see DESIGN.md, references)."""

    @property
    def hi(self) -> npt.NDArray[np.float64]: ...

    @property
    def lo(self) -> npt.NDArray[np.float64]: ...

    @property
    def direction(self) -> npt.NDArray[np.int8]: ...

    def rounded(self, dtype: Any) -> npt.NDArray[Any]: ...


@dataclass(frozen=True, eq=False)
class UlpError:
    """Per-element ULP errors of one output array, with special-value classes.

    ``ulps``: float64, NaN where a special mismatch has no number, 0.0 where both sides are the
    same special value (both NaN, both +inf, both -inf). ``classes``: a class name from
    :data:`CLASSES` or ``""``. ``numeric``: the elements that enter ``max``/``p99``/``mean``:
    both sides are numbers (``y = ±inf`` counts through its spurious-overflow replacement) and
    the score is not NaN; matching specials are excluded so they do not dilute the mean.
    Aggregates are ``None`` when no element is numeric. The arrays are read-only.
    """

    ulps: npt.NDArray[np.float64]
    classes: npt.NDArray[np.str_]
    numeric: npt.NDArray[np.bool_]
    format: Format

    @property
    def _scores(self) -> npt.NDArray[np.float64]:
        return self.ulps[self.numeric]

    @property
    def max(self) -> float | None:
        scores = self._scores
        return float(scores.max()) if scores.size else None

    @property
    def p99(self) -> float | None:
        """The smallest score that at least 99% of the numeric elements do not exceed."""
        scores = self._scores
        if not scores.size:
            return None
        return float(np.percentile(scores, 99, method="inverted_cdf"))

    @property
    def mean(self) -> float | None:
        scores = self._scores
        return float(scores.mean()) if scores.size else None

    @property
    def worst_index(self) -> tuple[int, ...] | None:
        """Index of the first numeric element with the largest score (``()`` for 0-d)."""
        if not self.numeric.any():
            return None
        masked = np.where(self.numeric, self.ulps, -np.inf)
        flat = int(np.argmax(masked))
        return tuple(int(i) for i in np.unravel_index(flat, self.ulps.shape))

    def counts(self) -> dict[str, int]:
        """Number of elements in each special class that occurs (unclassified ones omitted)."""
        names, counts = np.unique(self.classes[self.classes != ""], return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts)}


def ulp_error(actual: npt.ArrayLike, result: ExactResult, dtype: Any) -> UlpError:
    """Score ``actual`` against the exact values in ``result``, in ulps of ``dtype``.

    ``actual`` must have ``result.hi``'s shape and one of the four judged dtypes (its values
    are taken exactly). See the module docstring and docs/numerics.md §7.2–7.3 for the rules.
    """
    fmt = format_of(dtype)
    y_arr = np.asarray(actual)
    hi_arr = np.asarray(result.hi, dtype=np.float64)
    shape = hi_arr.shape
    if y_arr.shape != shape:
        raise ValueError(f"actual has shape {y_arr.shape}, expected {shape} (result.hi)")
    for name, other in (("result.lo", result.lo), ("result.direction", result.direction)):
        if np.shape(other) != shape:
            raise ValueError(f"{name} has shape {np.shape(other)}, expected {shape} (result.hi)")
    format_of(y_arr.dtype)  # TypeError for anything but the four formats
    # Work on flat copies: 0-d inputs would otherwise turn masks into numpy scalars.
    hi = hi_arr.reshape(-1)
    lo = np.asarray(result.lo, dtype=np.float64).reshape(-1)
    y = y_arr.astype(np.float64).reshape(-1)
    zhat = np.asarray(result.rounded(fmt.dtype)).astype(np.float64).reshape(-1)

    y_nan, z_nan = np.isnan(y), np.isnan(zhat)
    y_inf, z_inf = np.isinf(y), np.isinf(zhat)
    z_finite = ~z_nan & ~z_inf
    y_zero, z_zero = y == 0, zhat == 0
    z_subnormal = z_finite & ~z_zero & (np.abs(zhat) < fmt.min_normal)
    sign_differs = np.signbit(y) != np.signbit(zhat)

    classes = np.full(hi.shape, "", dtype=_CLASS_DTYPE)
    classes[z_nan & ~y_nan] = VALUE_WHERE_NAN
    classes[~z_nan & y_nan] = NAN_WHERE_FINITE
    classes[z_inf & ~y_nan & (y != zhat)] = WRONG_INFINITY
    spurious = z_finite & y_inf
    classes[spurious] = SPURIOUS_OVERFLOW
    classes[z_zero & y_zero & sign_differs] = WRONG_SIGN_OF_ZERO
    flushed = z_subnormal & y_zero
    classes[flushed] = FLUSHED_SUBNORMAL
    classes[z_finite & ~z_zero & ~z_subnormal & y_zero] = ZERO_FOR_NONZERO

    scored = z_finite & ~y_nan & ~flushed
    ulps = np.full(hi.shape, np.nan)
    ulps[(z_nan & y_nan) | (z_inf & (y == zhat))] = 0.0
    ulps[scored] = _scaled_distance(y[scored], hi[scored], lo[scored], zhat[scored], fmt)

    arrays = [a.reshape(shape) for a in (ulps, classes, scored)]
    for array in arrays:
        array.flags.writeable = False
    return UlpError(ulps=arrays[0], classes=arrays[1], numeric=arrays[2], format=fmt)


def _scaled_distance(
    y: npt.NDArray[np.float64],
    hi: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    zhat: npt.NDArray[np.float64],
    fmt: Format,
) -> npt.NDArray[np.float64]:
    """``|(y - hi) - lo| / ulp(ẑ)`` for finite ``ẑ``, with ``y = ±inf`` read as ±threshold.

    The threshold is written ``max_finite + half_ulp_at_max`` because float64's own threshold
    is not a float64. Differences that overflow float64 (only possible for float64 outputs of
    opposite sign near the top of the range) are recomputed at half scale.
    """
    sign = np.where(y > 0, 1.0, -1.0)
    spurious = np.isinf(y)
    base = np.where(spurious, sign * fmt.max_finite, y)
    extra = np.where(spurious, sign * fmt.half_ulp_at_max, 0.0)
    unit = ulp(zhat, fmt)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        distance = np.abs(((base - hi) - lo) + extra) / unit
        overflowed = ~np.isfinite(distance)
        if overflowed.any():
            b, h, el, x, un = (a[overflowed] * 0.5 for a in (base, hi, lo, extra, unit))
            distance[overflowed] = np.abs(((b - h) - el) + x) / un
    return np.asarray(distance, dtype=np.float64)
