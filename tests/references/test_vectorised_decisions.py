"""The vectorised rounding tests against the exact ones, value by value.

``_arb.decide_many`` (the Arb tier's batch test on balls) and ``_engine._decide_wide_f64`` (the
binary128 tier's test done in float64) may only accept what is certain: wherever they accept,
the exact per-element test (``_arb.decide``) or exact rational arithmetic must give the same
``hi`` and ``direction``, and ``lo`` must meet the contract. Inputs are built to sit on the
edges: values at and next to rounding midpoints, exact floats, signed zeros, values below half
the smallest subnormal, near the overflow threshold, tiny parts next to exact ones.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
from flint import arb

from references import _arb, _backends, _engine
from references._exact import round_fraction

QUAD = _backends.QUAD


def _ulp(h: float) -> float:
    return math.ulp(h) if h else 5e-324


def _arb_pairs(rng: np.random.Generator) -> list[tuple[Any, Any, int]]:
    pairs: list[tuple[Any, Any, int]] = []
    with _arb.precision(192):
        tiny = arb(-1e9).exp()  # far below float64's range
        for _ in range(300):
            h = float(rng.normal() * 2.0 ** int(rng.integers(-1060, 1000)))
            u = _ulp(h)
            for offset in (0.0, 0.5, 0.25, -0.5, 0.5 - 2.0**-40, 1e-30, -1e-30):
                mid = arb(h) + arb(u) * arb(offset)
                for rad in (0.0, 1e-40, 1e-20):
                    ball = mid + arb(0, abs(h) * rad) if rad else mid
                    pairs.append((None, ball, 0))
            # an exact part and a tiny ball: float + tiny, float - tiny
            pairs.append((arb(h), tiny, 0))
            pairs.append((arb(h), -tiny, 0))
            pairs.append((arb(h), arb(u) * arb(0.5) + tiny, 0))
        for hint in (1, -1, 0):
            pairs += [(None, tiny, hint), (None, -tiny, hint), (None, arb(0), hint),
                      (None, arb(0, 1e-320), hint), (None, arb(2.0**-1075), hint),
                      (None, arb(2.0**-1075) - tiny, hint), (None, arb(2.0**-1075) + tiny, hint),
                      (None, arb(5e-324) * arb(0.75), hint)]
        big = arb(np.finfo(np.float64).max)
        pairs += [(None, big, 0), (None, big + arb(2.0**970), 0), (None, big * 2, 0),
                  (None, -big * 2, 0), (None, arb("nan"), 0)]
    return pairs


def test_decide_many_accepts_only_what_decide_certifies() -> None:
    rng = np.random.default_rng(12)
    pairs = _arb_pairs(rng)
    with _arb.precision(192):
        hi, lo, direction, ok = _arb.decide_many(pairs)
        accepted = 0
        for k, pair in enumerate(pairs):
            if not ok[k]:
                continue
            accepted += 1
            h, low, d, good = _arb.decide(*pair)
            assert good, (k, pair)
            assert np.float64(hi[k]).view(np.uint64) == np.float64(h).view(np.uint64), (k, pair)
            assert direction[k] == d, (k, pair)
            if math.isfinite(h) and abs(h) >= 2.0**-922:
                assert abs(Fraction(lo[k]) - Fraction(low)) <= Fraction(2) ** -99 * abs(
                    Fraction(h)), (k, pair)
    assert accepted >= len(pairs) // 5, (accepted, len(pairs))
    # the values it declines by design: exact floats (direction 0), float + a part below the
    # working precision, balls across a boundary, h subnormal or beyond float64's range. An
    # ordinary value a quarter ulp from a normal float, known to 2**-100, is always decided:
    with _arb.precision(192):
        hs = rng.normal(size=200) * np.ldexp(1.0, rng.integers(-1000, 1000, 200))
        ordinary = [(None, arb(float(h)) + arb(_ulp(float(h))) * arb(0.25)
                     + arb(0, abs(float(h)) * 2.0**-110), 0) for h in hs]
        _, _, _, ok = _arb.decide_many(ordinary)
    assert ok.all()


def _quad_fraction(q: Any) -> Fraction:
    """The exact value of binary128 numbers as a sum of three float64 parts (checked exact)."""
    parts = []
    rest = np.asarray(q)
    for _ in range(3):
        f = QUAD.to_f64(rest)
        parts.append(f)
        rest = rest - QUAD.convert(f)
    assert float(QUAD.to_f64(rest)) == 0.0
    return sum((Fraction(float(p)) for p in parts), Fraction(0))


def test_float64_decision_of_the_binary128_tier_is_certain() -> None:
    rng = np.random.default_rng(13)
    n = 4000
    h = rng.normal(size=n) * np.ldexp(1.0, rng.integers(-1030, 1020, n))
    u = np.array([_ulp(float(v)) for v in h])
    frac = rng.choice([0.0, 0.5, -0.5, 0.25, 0.499999, 2.0**-60, -(2.0**-60), 1e-3], n)
    v = QUAD.convert(h) + QUAD.convert(u) * QUAD.convert(frac)
    err = QUAD.convert(np.abs(h)) * QUAD.convert(rng.choice([0.0, 2.0**-112, 2.0**-104,
                                                              2.0**-90], n))
    hi, lo, direction, ok, _ = _engine._decide_wide_f64(QUAD, v, err)
    hb, lb, db, okb = _engine._decide_wide_backend(QUAD, v, err, np.zeros(n, np.int8))
    assert ok.sum() >= n // 4  # not vacuous
    for k in np.nonzero(ok)[0]:
        V, Err = _quad_fraction(v[k]), _quad_fraction(err[k])
        for end in (V - Err, V + Err):
            h_end, _, d_end = round_fraction(end)
            assert h_end == hi[k] and d_end == direction[k], k
        assert abs(Fraction(float(hi[k])) + Fraction(float(lo[k])) - V) + Err <= Fraction(
            2) ** -100 * abs(V), k
        if okb[k]:  # where the backend's own test also decides, the same answer
            assert hb[k] == hi[k] and db[k] == direction[k], k


def test_the_wide_decision_keeps_the_backend_test_for_the_rest() -> None:
    """h zero, subnormal or infinite: the float64 test declines, the backend's decides."""
    v = QUAD.convert(np.array([0.0, 1e-310, 1e308])) * QUAD.convert(np.array([1.0, 1.0, 10.0]))
    tiny = QUAD.convert(np.array([2.0**-1100, 2.0**-1100, 0.0]))
    v = v + tiny
    err = QUAD.convert(np.zeros(3))
    with np.errstate(over="ignore"):
        _, _, _, ok, _ = _engine._decide_wide_f64(QUAD, v, err)
        assert not ok.any()
        got = _engine._decide_wide(QUAD, v, err, np.zeros(3, np.int8))
        want = _engine._decide_wide_backend(QUAD, v, err, np.zeros(3, np.int8))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got[0][2] == np.inf and got[2][2] == -1 and got[3][2]
