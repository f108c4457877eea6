"""ulp_error: known scores, the spacing rules of docs/numerics.md §7.2, and every class of §7.3."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import ml_dtypes
import numpy as np
import numpy.typing as npt
import pytest

from references.formats import FORMATS, round_exact
from references.metrics import CLASSES, SCORED_CLASSES, UlpError, ulp_error

Exact = Fraction | float  # a Fraction is an exact value; a float stands for itself (specials)

F32_MAX = float(np.finfo(np.float32).max)
F64_MAX = float(np.finfo(np.float64).max)


@dataclass(frozen=True)
class FakeResult:
    """hi/lo/direction of exact values, as the reference contract defines them."""

    hi: npt.NDArray[np.float64]
    lo: npt.NDArray[np.float64]
    direction: npt.NDArray[np.int8]

    def rounded(self, dtype: Any) -> npt.NDArray[Any]:
        return round_exact(self.hi, self.direction, dtype)

    @classmethod
    def of(cls, values: Sequence[Exact], shape: tuple[int, ...] | None = None) -> FakeResult:
        triples = [split(z) for z in values]
        shape = shape if shape is not None else (len(values),)
        hi, lo, direction = (
            (np.array(col).reshape(shape) for col in zip(*triples))
            if triples
            else (np.zeros(shape),) * 3
        )
        return cls(hi.astype(np.float64), lo.astype(np.float64), direction.astype(np.int8))


def split(z: Exact) -> tuple[float, float, int]:
    """(hi, lo, direction) of one exact value; a float stands for itself (specials, ±0)."""
    if isinstance(z, float):
        return z, 0.0, 0
    try:
        hi = float(z)  # Fraction -> float is correctly rounded, subnormals included
    except OverflowError:
        hi = math.inf if z > 0 else -math.inf
    if math.isinf(hi):  # finite z beyond float64's overflow threshold
        return hi, 0.0, -1 if hi > 0 else 1
    rest = z - Fraction(hi)
    return math.copysign(hi, z), float(rest), (rest > 0) - (rest < 0)


def score(actual: Sequence[float], exact: Sequence[Exact], dtype: Any) -> UlpError:
    return ulp_error(np.array(actual, dtype=dtype), FakeResult.of(exact), dtype)


def F(x: float) -> Fraction:
    return Fraction(x)


P2 = Fraction(2)


def test_next_float32_after_rounded_value() -> None:
    z = 1 + Fraction(3, 10) * P2**-23  # rounds to 1; ulp(1) = 2**-23
    err = score([1 + 2.0**-23, 1.0, 1 - 2.0**-24], [z, z, z], np.float32)
    assert err.ulps == pytest.approx([0.7, 0.3, 0.8], rel=1e-12)
    assert err.classes.tolist() == ["", "", ""]
    # the prior float32 is only 0.8 ulp away because the unit is ulp(ẑ), not ulp(y) = 2**-24


def test_spacing_just_below_power_of_two() -> None:
    z = 2 - Fraction(2, 10) * P2**-23  # rounds up to 2: unit is ulp(2) = 2**-22
    err = score([2 - 2.0**-23, 2.0], [z, z], np.float32)
    assert err.ulps == pytest.approx([0.4, 0.1], rel=1e-12)


def test_subnormal_spacing() -> None:
    tiny32 = P2**-149
    z32 = Fraction(33, 10) * tiny32
    err = score([4 * 2.0**-149, 3 * 2.0**-149], [z32, z32], np.float32)
    assert err.ulps == pytest.approx([0.7, 0.3], rel=1e-12)
    z16 = Fraction(21, 4) * P2**-24
    err16 = score([5 * 2.0**-24, 6 * 2.0**-24], [z16, z16], np.float16)
    assert err16.ulps.tolist() == [0.25, 0.75]


def test_rounded_to_zero_uses_min_subnormal() -> None:
    z = P2**-151  # ẑ = 0, unit = 2**-149
    err = score([0.0, 2.0**-149], [z, z], np.float32)
    assert err.ulps.tolist() == [0.25, 0.75]
    assert err.classes.tolist() == ["", ""]


def test_float64_uses_lo() -> None:
    z = 1 + P2**-60
    err = score([1 + 2.0**-52, 1.0], [z, z], np.float64)
    assert err.ulps.tolist() == [1 - 2.0**-8, 2.0**-8]


def test_bfloat16_actual() -> None:
    z = 1 + Fraction(3, 10) * P2**-7
    actual = np.array([1 + 2.0**-7, 1.0], dtype=ml_dtypes.bfloat16)
    err = ulp_error(actual, FakeResult.of([z, z]), ml_dtypes.bfloat16)
    assert err.ulps == pytest.approx([0.7, 0.3], rel=1e-12)
    assert err.format.name == "bfloat16"


def test_correctly_rounded_scores_at_most_half() -> None:
    rng = np.random.default_rng(3)
    exact = [Fraction(int(n), 2**60) for n in rng.integers(1, 2**62, size=300)]
    for name in ("float16", "bfloat16", "float32", "float64"):
        result = FakeResult.of(exact)
        err = ulp_error(result.rounded(name), result, name)
        assert err.max is not None and err.max <= 0.5
        assert err.max > 0.4  # the sample is dense enough to come near a tie


def test_classes_and_scores() -> None:
    cases: list[tuple[float, Exact, str, float | None]] = [
        # actual, exact, class, expected ulps (None: NaN)
        (math.nan, F(1.5), "nan_where_finite", None),
        (math.nan, math.inf, "nan_where_finite", None),
        (1.0, math.nan, "value_where_nan", None),
        (math.inf, math.nan, "value_where_nan", None),
        (-math.nan, math.nan, "", 0.0),
        (math.inf, math.inf, "", 0.0),
        (-math.inf, -math.inf, "", 0.0),
        (-math.inf, math.inf, "wrong_infinity", None),
        (F32_MAX, P2**129, "wrong_infinity", None),  # missing overflow
        (math.inf, F(F32_MAX), "spurious_overflow", 0.5),  # max + half ulp - max
        (-math.inf, F(-1.0), "spurious_overflow", (2 - 2.0**-24) * 2.0**127 / 2.0**-23 - 2**23),
        (0.0, -(P2**-200), "wrong_sign_of_zero", 2.0**-51),
        (-0.0, 0.0, "wrong_sign_of_zero", 0.0),
        (-0.0, -0.0, "", 0.0),
        (0.0, P2**-140, "flushed_subnormal", None),
        (-0.0, -(P2**-140), "flushed_subnormal", None),
        (0.0, P2**-126, "zero_for_nonzero", 2.0**23),
        (-0.0, F(1e-30), "zero_for_nonzero", float(F(1e-30) / P2 ** (-100 - 23))),
        (2.0**-149, 0.0, "", 1.0),
    ]
    actual, exact, classes, expected = zip(*cases)
    err = score(list(actual), list(exact), np.float32)
    assert err.classes.tolist() == list(classes)
    for got, want, case in zip(err.ulps.tolist(), expected, cases):
        if want is None:
            assert math.isnan(got), case
        else:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-300), case
    assert set(err.classes.tolist()) - {""} == set(CLASSES)
    assert err.counts() == {
        "nan_where_finite": 2,
        "value_where_nan": 2,
        "wrong_infinity": 2,
        "spurious_overflow": 2,
        "wrong_sign_of_zero": 2,
        "flushed_subnormal": 2,
        "zero_for_nonzero": 2,
    }
    # numeric: both sides are numbers and the score is one (matching specials excluded)
    numeric = [want is not None and math.isfinite(float(z)) for _, z, _, want in cases]
    assert err.numeric.tolist() == numeric
    assert not np.isnan(err.ulps[err.numeric]).any()
    assert err.max == pytest.approx(max(e for e, n in zip(expected, numeric) if n and e))


def test_float16_spurious_and_missing_overflow() -> None:
    err = score(
        [math.inf, 65504.0, math.inf, 65504.0],
        [F(65504.0), F(70000.0), F(70000.0), P2**1100],
        np.float16,
    )
    assert err.classes.tolist() == ["spurious_overflow", "wrong_infinity", "", "wrong_infinity"]
    assert err.ulps[0] == 0.5  # a correct-looking score, which is why the class is kept
    assert np.isnan(err.ulps[1]) and err.ulps[2] == 0.0 and np.isnan(err.ulps[3])


def test_float64_extremes() -> None:
    """Spurious overflow and a difference that overflows float64 are still finite numbers."""
    z = F(1e308)
    err = score([math.inf, F64_MAX, F64_MAX], [z, F(-F64_MAX), P2**1100], np.float64)
    threshold = Fraction(F64_MAX) + P2**970
    assert err.ulps[0] == pytest.approx(float((threshold - z) / P2 ** (1023 - 52)), rel=1e-12)
    assert err.ulps[1] == 2.0**54 - 2  # 2 * max / ulp(max)
    assert err.classes.tolist() == ["spurious_overflow", "", "wrong_infinity"]


def test_aggregates() -> None:
    exact = [Fraction(0)] * 101
    actual = [k * 2.0**-149 for k in range(100)] + [math.nan]
    err = score(actual, exact, np.float32)
    assert err.max == 99.0
    assert err.p99 == 98.0  # at least 99% of the 100 numeric scores are <= 98
    assert err.mean == pytest.approx(49.5)
    assert err.worst_index == (99,)
    assert err.counts() == {"nan_where_finite": 1}


def test_worst_index_nd_and_empty() -> None:
    exact = [F(1.0)] * 6
    actual = np.array([1.0, 1.0, math.nan, 1.0, 1 + 2.0**-9, 1.0]).reshape(2, 3)
    err = ulp_error(actual.astype(np.float16), FakeResult.of(exact, (2, 3)), "float16")
    assert err.worst_index == (1, 1)
    assert err.max == 2.0
    nothing = ulp_error(np.zeros((0, 4), np.float32), FakeResult.of([], (0, 4)), np.float32)
    assert (nothing.max, nothing.p99, nothing.mean, nothing.worst_index) == (None,) * 4
    assert nothing.counts() == {}
    only_special = score([math.nan], [math.nan], np.float32)
    assert only_special.max is None and only_special.worst_index is None


def test_zero_dimensional() -> None:
    err = ulp_error(np.float32(1.0), FakeResult.of([F(1.0)], ()), np.float32)
    assert err.ulps.shape == () and err.worst_index == () and err.max == 0.0


def test_arrays_are_read_only() -> None:
    err = score([1.0], [F(1.0)], np.float32)
    with pytest.raises(ValueError):
        err.ulps[0] = 3.0
    with pytest.raises(ValueError):
        err.classes[0] = "x"


def test_shape_and_dtype_errors() -> None:
    result = FakeResult.of([F(1.0), F(2.0)])
    with pytest.raises(ValueError, match="actual"):
        ulp_error(np.ones(3, np.float32), result, np.float32)
    with pytest.raises(TypeError, match="dtype must be one of"):
        ulp_error(np.ones(2, np.int32), result, np.float32)
    with pytest.raises(TypeError, match="dtype must be one of"):
        ulp_error(np.ones(2, np.float32), result, "float8")


def test_scored_classes_are_known() -> None:
    assert SCORED_CLASSES <= set(CLASSES)
    assert FORMATS["float32"].overflow_threshold == (2 - 2.0**-24) * 2.0**127
