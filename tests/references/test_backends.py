"""The assumptions behind the error bounds, measured: elementary functions within 2 ulps
(phi = 4 units of u) in every backend, and numpy's narrowing casts correctly rounded."""

from __future__ import annotations

import gmpy2
import mpmath
import numpy as np
import pytest

from references import _backends, formats
from references._engine import _rn_from_float64

FUNCTIONS = {"exp": (gmpy2.exp, (-745.0, 709.0)), "log": (gmpy2.log, (1e-300, 1e300)),
             "log1p": (gmpy2.log1p, (-0.999, 1e6))}


def _samples(lo: float, hi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if lo > 0:
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return np.concatenate([rng.uniform(lo, hi, n // 2), rng.uniform(-1, 1, n // 2) * 1e-3])


def _rel_error_in_u(got: list, exact: list, u: float) -> float:
    worst = 0.0
    with gmpy2.context(precision=600):
        for g, e in zip(got, exact, strict=True):
            if e != 0:
                worst = max(worst, float(abs((gmpy2.mpfr(g) - e) / e)) / u)
    return worst


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_float64_functions_are_within_phi(name: str) -> None:
    ref, (lo, hi) = FUNCTIONS[name]
    x = _samples(lo, hi, 20000, 1)
    got = getattr(np, name)(x)
    with gmpy2.context(precision=200):
        exact = [ref(gmpy2.mpfr(float(v))) for v in x]
    ok = np.abs(got) > 2.0**-1022  # relative error is meaningful in the normal range
    worst = _rel_error_in_u([float(v) for v in got[ok]], [e for e, k in zip(exact, ok) if k],
                            _backends.FLOAT64.u)
    assert worst <= _backends.FLOAT64.phi, f"np.{name}: {worst:.2f} u"


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_binary128_functions_are_within_phi(name: str) -> None:
    ref, (lo, hi) = FUNCTIONS[name]
    x = _samples(lo, hi, 2000, 2)
    q = _backends.QUAD.convert(x)
    got = getattr(np, name)(q)
    # exact value of each quad result: hi + lo split through float64 (exact for binary128)
    h = got.astype(np.float64)
    rest = (got - _backends.QUAD.convert(h)).astype(np.float64)
    rest2 = (got - _backends.QUAD.convert(h) - _backends.QUAD.convert(rest)).astype(np.float64)
    keep = (np.abs(h) > 2.0**-900) & (np.abs(h) < 2.0**900)  # where float64 parts are exact
    with gmpy2.context(precision=400):
        exact = [ref(gmpy2.mpfr(float(v))) for v in x[keep]]
        values = [gmpy2.mpfr(float(a)) + gmpy2.mpfr(float(b)) + gmpy2.mpfr(float(c))
                  for a, b, c in zip(h[keep], rest[keep], rest2[keep], strict=True)]
    worst = _rel_error_in_u(values, exact, _backends.QUAD.u)
    assert worst <= _backends.QUAD.phi, f"quad {name}: {worst:.2f} u"


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_mpmath_functions_are_within_phi(name: str) -> None:
    ref, (lo, hi) = FUNCTIONS[name]
    x = _samples(lo, hi, 300, 3)
    with mpmath.workprec(192):
        got = [getattr(mpmath, name)(mpmath.mpf(float(v))) for v in x]
    with gmpy2.context(precision=600):
        exact = [ref(gmpy2.mpfr(float(v))) for v in x]
        values = [gmpy2.mpfr(mpmath.nstr(v, 80, min_fixed=1, max_fixed=0)) for v in got]
    worst = _rel_error_in_u(values, exact, 2.0**-192)
    assert worst <= 4.0 + 1e-3, f"mpmath {name}: {worst:.2f} u"  # nstr at 80 digits is exact enough


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_numpy_narrowing_casts_round_once_correctly(dtype: str) -> None:
    fmt = formats.format_of(dtype)
    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, 20000).astype(fmt.dtype).astype(np.float64)
    spacing = formats.ulp(base.astype(fmt.dtype), fmt.dtype)
    # midpoints, points next to them, and subnormal midpoints
    points = np.concatenate([base + spacing / 2, np.nextafter(base + spacing / 2, np.inf),
                             np.nextafter(base + spacing / 2, -np.inf),
                             (np.arange(1, 200) + 0.5) * fmt.min_subnormal,
                             np.array([fmt.max_finite + fmt.half_ulp_at_max,
                                       np.nextafter(fmt.max_finite + fmt.half_ulp_at_max, 0)])])
    expected = formats.round_exact(points, np.zeros(points.shape, np.int8), fmt.dtype)
    got = _rn_from_float64(points, fmt)
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"),
                                  expected.view(f"u{expected.itemsize}"))
