"""Numeric backends for the reference kernels: float64, binary128 and mpmath.

The kernels in ``_kernels`` are written once against this small interface and evaluated in
three precisions (the three tiers of ``api``). Every backend rounds each basic operation to
nearest with unit roundoff ``u``; the elementary functions ``exp``, ``log`` and ``log1p`` are
assumed accurate to ``phi * u`` relative (``phi = 4``, i.e. two ulps; libm, SLEEF's quad
functions and mpmath are all documented or measured at or below one ulp, see
``tests/references/test_backends.py``, which measures them against MPFR).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from numpy_quaddtype import QuadPrecDType

Array = Any  # numpy array of the backend's dtype (float64, quad, or object holding mpf)


@dataclass(frozen=True)
class Backend:
    """One precision in which the kernels can be evaluated."""

    name: str
    u: float  # unit roundoff, as a float64 where representable (see ``u_b``)
    phi: float  # elementary-function error in units of u
    convert: Callable[[np.ndarray], Array]
    to_f64: Callable[[Array], np.ndarray]
    exp: Callable[[Array], Array]
    log: Callable[[Array], Array]
    log1p: Callable[[Array], Array]
    min_exp_arg: float  # exp() of anything below this underflows in the backend
    prec_bits: int
    # a + b without rounding (mpmath's exact addition), or None where every add rounds
    exact_add: Callable[[Array, Array], Array] | None = None

    def u_b(self) -> Array:
        """The unit roundoff as a backend scalar array (mpmath's can be below float64's range)."""
        if self.name.startswith("mpmath"):
            return np.array(mpmath.ldexp(mpmath.mpf(1), -self.prec_bits), dtype=object)
        return self.convert(np.array(self.u))

    def zeros(self, shape: tuple[int, ...]) -> Array:
        return self.convert(np.zeros(shape))


def two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """Knuth's TwoSum: s + e == a + b exactly in any binary round-to-nearest format."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


FLOAT64 = Backend(
    name="float64",
    u=2.0**-53,
    phi=4.0,
    convert=lambda x: np.asarray(x, dtype=np.float64),
    to_f64=lambda x: np.asarray(x, dtype=np.float64),
    exp=np.exp,
    log=np.log,
    log1p=np.log1p,
    min_exp_arg=-700.0,  # e^-700 ~ 2^-1010: still normal, so relative errors hold
    prec_bits=53,
)

_QUAD = QuadPrecDType()

QUAD = Backend(
    name="binary128",
    u=2.0**-113,
    phi=4.0,
    convert=lambda x: np.asarray(x, dtype=np.float64).astype(_QUAD),
    to_f64=lambda x: np.asarray(x).astype(np.float64),
    exp=np.exp,
    log=np.log,
    log1p=np.log1p,
    min_exp_arg=-11000.0,  # e^-11000 ~ 2^-15870, inside binary128's normal range (2^-16382)
    prec_bits=113,
)


def _mp_unary(fn: Callable[[Any], Any]) -> Callable[[Array], Array]:
    ufunc = np.frompyfunc(fn, 1, 1)

    def apply(x: Array) -> Array:
        return np.asarray(ufunc(x), dtype=object)

    return apply


def _mp_convert(x: np.ndarray) -> Array:
    flat = [mpmath.mpf(float(v)) for v in np.asarray(x, dtype=np.float64).ravel()]
    return np.array(flat + [None], dtype=object)[:-1].reshape(np.shape(x))


def _mp_to_f64(x: Array) -> np.ndarray:
    # Nearest float64 of each value, as a *candidate*: the decision step checks and corrects it,
    # so a last-bit slip here (mpmath rounds subnormals twice) can never reach a result.
    return np.array([float(v) for v in np.asarray(x, dtype=object).ravel()],
                    dtype=np.float64).reshape(np.shape(x))


def mpmath_backend(prec: int) -> Backend:
    """mpmath at ``prec`` bits; callers must evaluate inside ``mpmath.workprec(prec)``."""
    return Backend(
        name=f"mpmath{prec}",
        u=2.0 ** -prec if prec < 1000 else 0.0,
        phi=4.0,
        convert=_mp_convert,
        to_f64=_mp_to_f64,
        exp=_mp_unary(mpmath.exp),
        log=_mp_unary(mpmath.log),
        log1p=_mp_unary(mpmath.log1p),
        min_exp_arg=-np.inf,  # unbounded exponent range
        prec_bits=prec,
        exact_add=_mp_exact_add,
    )


def mp_exact_add(a: Any, b: Any) -> Any:
    """a + b with no rounding, except that a term below 2^-(prec + 1200) of the other is
    replaced by a same-signed stand-in of that size: the sum then rounds to float64 (and any
    narrower format) exactly as the true sum does, in value and direction (a prec-bit value
    lies at least 2^-prec of itself away from any float64 or midpoint it does not equal), and
    the exact sum never grows to an astronomical number of bits (e.g. 1 - e^(-3e38))."""
    if not a or not b:
        return mpmath.fadd(a, b, exact=True)
    gap = mpmath.mp.prec + 1200
    ma, mb = mpmath.mag(a), mpmath.mag(b)
    if mb < ma - gap:
        b = mpmath.ldexp(mpmath.sign(b), ma - gap)
    elif ma < mb - gap:
        a = mpmath.ldexp(mpmath.sign(a), mb - gap)
    return mpmath.fadd(a, b, exact=True)


_mp_exact_add_ufunc = np.frompyfunc(mp_exact_add, 2, 1)


def _mp_exact_add(a: Array, b: Array) -> Array:
    return np.asarray(_mp_exact_add_ufunc(a, b), dtype=object)
