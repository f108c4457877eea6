"""Floating-point formats judged by the harness, and exact rounding into them.

The reference knows an exact value ``z`` only as ``hi = RN64(z)`` plus the sign of ``z - hi``
(``direction``). :func:`round_exact` turns that pair into ``RN_format(z)`` without double
rounding: it forms the float64 round-to-odd value (docs/numerics.md §10.2) and rounds it to the
target with integer arithmetic on the float64 bit pattern. No float cast that might pass
through float32 is involved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np
import numpy.typing as npt

__all__ = ["FORMATS", "Format", "format_of", "round_exact", "ulp"]


@dataclass(frozen=True)
class Format:
    """An IEEE-style binary format: precision ``p`` (hidden bit included) and exponent range.

    ``emin``/``emax`` are the exponents of the smallest and largest normal binades
    (``min_normal = 2**emin``, ``max_finite < 2**(emax + 1)``).
    """

    name: str
    precision: int
    emin: int
    emax: int
    dtype: np.dtype[Any]

    @property
    def unit_roundoff(self) -> float:
        """``u = 2**-p``."""
        return math.ldexp(1.0, -self.precision)

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive subnormal; also the spacing of the whole subnormal range."""
        return math.ldexp(1.0, self.emin - self.precision + 1)

    @property
    def max_finite(self) -> float:
        return math.ldexp(2.0 - math.ldexp(1.0, 1 - self.precision), self.emax)

    @property
    def overflow_threshold(self) -> float:
        """``(2 - 2**-p) * 2**emax``: exact values at or beyond it round to infinity.

        For float64 the threshold (``max + 2**970``) is not a float64, so this is ``math.inf``;
        code that needs the exact threshold for float64 must use ``max_finite`` plus
        ``half_ulp_at_max`` (see :func:`references.metrics.ulp_error`).
        """
        if self.precision >= 53:
            return math.inf
        return math.ldexp(2.0 - math.ldexp(1.0, -self.precision), self.emax)

    @property
    def half_ulp_at_max(self) -> float:
        """``overflow_threshold - max_finite = 2**(emax - p)``, representable for all formats."""
        return math.ldexp(1.0, self.emax - self.precision)

    @property
    def storage_bits(self) -> int:
        return 8 * self.dtype.itemsize


FLOAT16 = Format("float16", 11, -14, 15, np.dtype(np.float16))
BFLOAT16 = Format("bfloat16", 8, -126, 127, np.dtype(ml_dtypes.bfloat16))
FLOAT32 = Format("float32", 24, -126, 127, np.dtype(np.float32))
FLOAT64 = Format("float64", 53, -1022, 1023, np.dtype(np.float64))

FORMATS: dict[str, Format] = {f.name: f for f in (FLOAT16, BFLOAT16, FLOAT32, FLOAT64)}
_BY_DTYPE: dict[np.dtype[Any], Format] = {f.dtype: f for f in FORMATS.values()}


def format_of(dtype: Any) -> Format:
    """The :class:`Format` for a dtype, numpy scalar type, ``ml_dtypes.bfloat16`` or name.

    Only the four judged formats are accepted; anything else (including Python ``float`` and
    aliases such as ``"double"``) raises ``TypeError``. A :class:`Format` is returned as is.
    """
    if isinstance(dtype, Format):
        return dtype
    found: Format | None = None
    if isinstance(dtype, str):
        found = FORMATS.get(dtype)
    elif isinstance(dtype, np.dtype):
        found = _BY_DTYPE.get(dtype.newbyteorder("="))
    elif isinstance(dtype, type) and issubclass(dtype, np.generic):
        found = _BY_DTYPE.get(np.dtype(dtype))
    if found is None:
        raise TypeError(f"dtype must be one of float16, bfloat16, float32, float64; got {dtype!r}")
    return found


_SIGN64 = np.uint64(1 << 63)
_MAG64 = np.uint64((1 << 63) - 1)
_FRAC64 = np.uint64((1 << 52) - 1)
_EXP_INF64 = 0x7FF


def _round_to_odd_magnitude(
    bits: npt.NDArray[np.uint64], direction: npt.NDArray[np.int8]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """Sign and magnitude bits of ``RO_53(z)`` (float64 round-to-odd) from ``hi`` and ``direction``.

    ``ro = hi`` when ``z == hi`` or hi's last significand bit is odd, otherwise the float64
    neighbour of ``hi`` toward ``z``. For ``hi = ±0`` the neighbour is the min subnormal with
    the sign of ``z`` (the sign of ``direction``); for ``hi = ±inf`` toward zero it is ``±max``.
    """
    negative = (bits & _SIGN64) != 0
    mag = bits & _MAG64
    is_zero = mag == 0
    is_inf = (mag >> np.uint64(52)) == _EXP_INF64  # NaN is handled by the caller
    step = (direction != 0) & ((mag & np.uint64(1)) == 0)
    away = np.where(is_zero, True, (direction > 0) != negative)
    # z beyond +inf (or -inf) cannot happen; keep the infinity rather than walk into NaN space.
    step &= ~(is_inf & away)
    negative = np.where(is_zero & step, direction < 0, negative)
    one = np.uint64(1)
    mag = np.where(step & away, mag + one, np.where(step & ~away, mag - one, mag))
    return mag, negative


def round_exact(hi: npt.ArrayLike, direction: npt.ArrayLike, dtype: Any) -> npt.NDArray[Any]:
    """``RN_dtype(z)`` (ties to even) for z known as ``hi = RN64(z)`` and ``sign(z - hi)``.

    ``hi`` holds float64 values (NaN means NaN; ``±inf`` with ``direction`` 0 is a true
    infinity, with ``direction`` ∓1 a finite ``z`` beyond float64's range; ``±0`` with
    ``direction`` ±1 a nonzero ``z`` below half float64's min subnormal). Subnormals, the
    overflow threshold and signed zeros of the target are honoured. For float64 this returns a
    copy of ``hi``. The result has ``hi``'s shape and the target dtype.
    """
    fmt = format_of(dtype)
    hi_arr = np.asarray(hi, dtype=np.float64)
    dir_arr = np.sign(np.asarray(direction)).astype(np.int8)
    if hi_arr.shape != dir_arr.shape:
        raise ValueError(
            f"direction has shape {dir_arr.shape}, expected {hi_arr.shape} (the shape of hi)"
        )
    if fmt.precision >= 53:
        return hi_arr.copy()

    shape = hi_arr.shape
    flat_hi = hi_arr.reshape(-1)
    mag, negative = _round_to_odd_magnitude(flat_hi.view(np.uint64), dir_arr.reshape(-1))

    # ro = M * 2**(e - 52) with M a 53-bit integer (float64 subnormals: e = -1022, no hidden bit).
    biased = (mag >> np.uint64(52)).astype(np.int64)
    significand = (mag & _FRAC64) | np.where(biased > 0, np.uint64(1 << 52), np.uint64(0))
    e = np.maximum(biased, 1) - 1023

    # Target quantum 2**(max(e, emin) - p + 1); drop `shift` low bits of M and round to even.
    # shift >= 53 - p >= 29 > 2, so a round-to-odd input is never mistaken for a tie. Capped
    # at 60 (M < 2**53, so the value then rounds to 0) to keep shifts defined.
    p = fmt.precision
    shift = np.minimum(np.maximum(e, fmt.emin) - e + (53 - p), 60).astype(np.uint64)
    quotient = significand >> shift
    remainder = significand & ((np.uint64(1) << shift) - np.uint64(1))
    half = np.uint64(1) << (shift - np.uint64(1))
    round_up = (remainder > half) | ((remainder == half) & ((quotient & np.uint64(1)) == 1))
    n = (quotient + round_up.astype(np.uint64)).astype(np.int64)

    # Target magnitude encoding: n quanta in the subnormal range, and (e - emin) * 2**(p-1) + n
    # in binade e, where a carry to n = 2**p lands on the next binade's encoding by itself.
    target = np.maximum(e - fmt.emin, 0) * (1 << (p - 1)) + n
    inf_bits = (fmt.emax - fmt.emin + 2) << (p - 1)
    target = np.minimum(target, inf_bits)  # also covers hi = ±inf: ro is ±inf or ±max64
    target = np.where(np.isnan(flat_hi), inf_bits | (1 << (p - 2)), target)

    width = fmt.storage_bits
    target = target | np.where(negative, 1 << (width - 1), 0)
    unsigned = np.dtype(f"uint{width}")
    return target.astype(unsigned).view(fmt.dtype).reshape(shape)


def ulp(values: npt.ArrayLike, dtype: Any) -> npt.NDArray[np.float64]:
    """Unit in the last place of ``values`` in ``dtype`` (docs/numerics.md §7.2), as float64.

    ``2**(floor(log2|v|) - p + 1)`` for ``|v| >= min_normal``, the min subnormal below it
    (including 0), NaN for infinities and NaN.
    """
    fmt = format_of(dtype)
    v = np.abs(np.asarray(values).astype(np.float64))
    _, exponent = np.frexp(v)  # v = m * 2**exponent, m in [0.5, 1): floor(log2 v) = exponent-1
    spacing = np.ldexp(1.0, exponent - fmt.precision)
    out = np.where(v >= fmt.min_normal, spacing, fmt.min_subnormal)
    return np.asarray(np.where(np.isfinite(v), out, np.nan), dtype=np.float64)
