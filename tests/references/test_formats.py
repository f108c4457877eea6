"""Format constants, ulp, and round_exact checked against MPFR (gmpy2) IEEE contexts.

The exact value z of each case is built in a 256-bit MPFR context from (hi, direction), and
the oracle is a single MPFR rounding of z in a context emulating the target format
(precision, exponent range, subnormalize=True, round to nearest).
"""

from __future__ import annotations

import math

import gmpy2
import ml_dtypes
import numpy as np
import numpy.typing as npt
import pytest
from gmpy2 import mpfr
from hypothesis import given, settings
from hypothesis import strategies as st

from references.formats import FORMATS, Format, format_of, round_exact, ulp

EXACT = gmpy2.context(precision=256, round=gmpy2.RoundToNearest)


def ieee_context(fmt: Format) -> gmpy2.context:
    """MPFR context for ``fmt``: MPFR significands lie in [0.5, 1), hence the +1 shifts."""
    return gmpy2.context(
        precision=fmt.precision,
        emin=fmt.emin - fmt.precision + 2,
        emax=fmt.emax + 1,
        subnormalize=True,
        round=gmpy2.RoundToNearest,
    )


def test_ieee_context_matches_gmpy2_ieee() -> None:
    for bits, name in ((16, "float16"), (32, "float32"), (64, "float64")):
        ours, theirs = ieee_context(FORMATS[name]), gmpy2.ieee(bits)
        assert (ours.precision, ours.emin, ours.emax) == (
            theirs.precision,
            theirs.emin,
            theirs.emax,
        )
        assert theirs.subnormalize


with EXACT:
    NUDGE = {1: 1 + mpfr(2) ** -80, -1: 1 - mpfr(2) ** -80}  # relative, far below half an ulp64
    BEYOND_FLOAT64 = mpfr(2) ** 1100
    BELOW_FLOAT64 = mpfr(2) ** -1100


def exact_value(hi: float, direction: int) -> mpfr:
    """A z with RN64(z) == hi and sign(z - hi) == direction (call inside EXACT)."""
    if direction == 0 or math.isnan(hi):
        return mpfr(hi)
    if hi == 0:
        return direction * BELOW_FLOAT64
    if math.isinf(hi):
        assert direction == (-1 if hi > 0 else 1)
        return -direction * BEYOND_FLOAT64
    return mpfr(hi) * NUDGE[direction if hi > 0 else -direction]


def oracle(
    hi: npt.NDArray[np.float64], direction: npt.NDArray[np.int8], fmt: Format
) -> npt.NDArray[np.float64]:
    """MPFR's RN_fmt(z), as float64 (exact); also checks the case construction against RN64."""
    with EXACT:
        zs = [exact_value(h, d) for h, d in zip(hi.tolist(), direction.tolist())]
    nudged = np.flatnonzero(direction != 0).tolist()
    with ieee_context(FORMATS["float64"]):
        hi_again = np.array([float(+zs[i]) for i in nudged], dtype=np.float64)
    np.testing.assert_array_equal(hi_again.view(np.uint64), hi[nudged].view(np.uint64))
    with ieee_context(fmt):
        return np.array([float(+z) for z in zs], dtype=np.float64)


def assert_same_bits(
    got: npt.NDArray[np.float64],
    expected: npt.NDArray[np.float64],
    hi: npt.NDArray[np.float64],
    direction: npt.NDArray[np.int8],
) -> None:
    """Bitwise equality (signed zeros count); NaNs only need to be NaN."""
    both_nan = np.isnan(got) & np.isnan(expected)
    bad = (got.view(np.uint64) != expected.view(np.uint64)) & ~both_nan
    if bad.any():
        rows = [
            f"hi={hi[i]!r} ({hi[i].hex()}) dir={direction[i]}: got {got[i]!r}, "
            f"expected {expected[i]!r}"
            for i in np.flatnonzero(bad)[:10]
        ]
        raise AssertionError(f"{bad.sum()} mismatches, first:\n" + "\n".join(rows))


def finite_nonnegative(fmt: Format) -> npt.NDArray[np.float64]:
    """Every finite non-negative value of a 16-bit format, ascending, as float64."""
    inf_bits = (2 * fmt.emax + 1) << (fmt.precision - 1)
    return np.arange(inf_bits, dtype=np.uint16).view(fmt.dtype).astype(np.float64)


def boundary_cases(points: npt.NDArray[np.float64]) -> tuple[np.ndarray, np.ndarray]:
    """(hi, direction) at each point with directions 0/±1, plus both float64 neighbours of it.

    Positive points only; the result is mirrored to negative values. +0 gets no -1 direction
    (that z would have hi = -0, which the mirror supplies).
    """
    his, dirs = [], []
    for d in (0, 1, -1):
        keep = points if d >= 0 else points[points != 0]
        his.append(keep)
        dirs.append(np.full(keep.shape, d, dtype=np.int8))
    for toward in (np.inf, 0.0):
        near = np.nextafter(points[points != 0], toward)
        his.append(near)
        dirs.append(np.zeros(near.shape, dtype=np.int8))
    hi = np.concatenate(his)
    direction = np.concatenate(dirs)
    return np.concatenate([hi, -hi]), np.concatenate([direction, -direction])


EXTREMES = [
    # (hi, direction): true infinities, finite z beyond float64, tiny z below float64, NaN
    (math.inf, 0),
    (math.inf, -1),
    (-math.inf, 0),
    (-math.inf, 1),
    (0.0, 0),
    (0.0, 1),
    (-0.0, 0),
    (-0.0, -1),
    (5e-324, 0),
    (5e-324, 1),
    (-5e-324, -1),
    (2.2250738585072014e-308, -1),
    (1.7976931348623157e308, 1),
    (-1.7976931348623157e308, 0),
    (1e300, -1),
    (1e-300, 1),
]


def extremes() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    hi, direction = zip(*EXTREMES)
    return np.array(hi, dtype=np.float64), np.array(direction, dtype=np.int8)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_round_exact_exhaustive_16_bit(name: str) -> None:
    """Every finite value, every midpoint (incl. the overflow threshold), and their neighbours."""
    fmt = FORMATS[name]
    values = np.append(finite_nonnegative(fmt), 2.0 ** (fmt.emax + 1))
    midpoints = (values[:-1] + values[1:]) / 2  # exact: p + 1 <= 53 bits
    hi, direction = boundary_cases(np.concatenate([values, midpoints]))
    ex_hi, ex_dir = extremes()
    hi, direction = np.concatenate([hi, ex_hi]), np.concatenate([direction, ex_dir])
    got = round_exact(hi, direction, fmt.dtype)
    assert got.dtype == fmt.dtype
    assert_same_bits(got.astype(np.float64), oracle(hi, direction, fmt), hi, direction)


def test_round_exact_float32_random_sample() -> None:
    """Random float32 values (uniform over bit patterns, plus subnormals), their midpoints."""
    fmt = FORMATS["float32"]
    rng = np.random.default_rng(20240611)
    bits = np.concatenate(
        [
            rng.integers(0, 0x7F800000, size=10000, dtype=np.uint32),
            rng.integers(0, 0x00800000, size=3000, dtype=np.uint32),  # subnormals
            np.array([0, 1, 2, 0x007FFFFF, 0x00800000, 0x7F7FFFFF], dtype=np.uint32),
        ]
    )
    values = bits.view(np.float32).astype(np.float64)
    with np.errstate(over="ignore"):
        upper = np.nextafter(values.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    upper[np.isinf(upper)] = 2.0**128  # above max: the midpoint is the overflow threshold
    midpoints = (values + upper) / 2
    hi, direction = boundary_cases(np.concatenate([values, midpoints]))
    ex_hi, ex_dir = extremes()
    hi, direction = np.concatenate([hi, ex_hi]), np.concatenate([direction, ex_dir])
    got = round_exact(hi, direction, fmt.dtype)
    assert got.dtype == np.float32
    assert_same_bits(got.astype(np.float64), oracle(hi, direction, fmt), hi, direction)


@pytest.mark.parametrize("name", ["float16", "float32"])
def test_round_exact_matches_numpy_cast_for_exact_hi(name: str) -> None:
    """A second, vectorised oracle: numpy's float64 -> float16/float32 cast (one rounding)."""
    rng = np.random.default_rng(7)
    mantissa = rng.uniform(-2.0, 2.0, size=200_000)
    hi = np.ldexp(mantissa, rng.integers(-160, 140, size=mantissa.size))
    direction = np.zeros(hi.shape, dtype=np.int8)
    with np.errstate(over="ignore"):
        expected = hi.astype(name).astype(np.float64)
    got = round_exact(hi, direction, name).astype(np.float64)
    assert_same_bits(got, expected, hi, direction)


@settings(max_examples=300, deadline=None)
@given(
    hi=st.floats(min_value=-1e39, max_value=1e39, allow_nan=False, allow_subnormal=True, width=64),
    direction=st.sampled_from([-1, 0, 1]),
    name=st.sampled_from(["float16", "bfloat16", "float32"]),
)
def test_round_exact_property(hi: float, direction: int, name: str) -> None:
    if hi == 0 and direction != 0:
        hi = math.copysign(0.0, direction)
    hi_arr = np.array([hi])
    dir_arr = np.array([direction], dtype=np.int8)
    got = round_exact(hi_arr, dir_arr, name).astype(np.float64)
    assert_same_bits(got, oracle(hi_arr, dir_arr, FORMATS[name]), hi_arr, dir_arr)


@pytest.mark.parametrize(
    ("name", "midpoint", "below", "above"),
    [
        ("float16", 1 + 2.0**-11, 1.0, 1 + 2.0**-10),
        ("bfloat16", 1 + 2.0**-8, 1.0, 1 + 2.0**-7),
    ],
)
def test_double_rounding_trap(name: str, midpoint: float, below: float, above: float) -> None:
    """z just above a midpoint whose float32 rounding IS the midpoint must still round up."""
    just_above = midpoint + 2.0**-40  # a float64; RN32 of it is the midpoint
    assert float(np.float32(just_above)) == midpoint
    hi = np.array([just_above, midpoint, midpoint, midpoint, -midpoint])
    direction = np.array([0, 1, 0, -1, -1], dtype=np.int8)
    got = round_exact(hi, direction, name).astype(np.float64).tolist()
    assert got == [above, above, below, below, -above]


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32"])
def test_round_exact_overflow_threshold_and_tiny(name: str) -> None:
    fmt = FORMATS[name]
    t, m, s = fmt.overflow_threshold, fmt.max_finite, fmt.min_subnormal
    hi = np.array([t, t, t, -t, (m + t) / 2, s / 2, s / 2, -s / 2, 0.75 * s, -0.25 * s])
    direction = np.array([0, -1, 1, 1, 0, 0, 1, -1, 0, 0], dtype=np.int8)
    got = round_exact(hi, direction, name).astype(np.float64)
    expected = np.array([np.inf, m, np.inf, -m, m, 0.0, s, -s, s, -0.0])
    assert_same_bits(got, expected, hi, direction)


def test_round_exact_zero_takes_sign_of_direction() -> None:
    """hi = +0 with direction -1 (a tiny negative z, sloppily signed hi) still gives -0."""
    hi = np.array([0.0, -0.0, 0.0, -0.0])
    direction = np.array([-1, 1, 0, 0], dtype=np.int8)
    got = round_exact(hi, direction, "float32")
    assert np.signbit(got).tolist() == [True, False, False, True]
    assert not got.any()


def test_round_exact_float64_returns_hi() -> None:
    hi = np.array([1.5, -0.0, np.inf, np.nan])
    got = round_exact(hi, np.array([1, -1, -1, 0], dtype=np.int8), np.float64)
    assert got.dtype == np.float64
    assert_same_bits(got, hi, hi, np.zeros(4, dtype=np.int8))
    assert got is not hi


@pytest.mark.parametrize("shape", [(), (0,), (0, 3), (2, 3, 4)])
@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_round_exact_shapes(shape: tuple[int, ...], name: str) -> None:
    hi = np.full(shape, 1 + 2.0**-11)
    direction = np.ones(shape, dtype=np.int8)
    got = round_exact(hi, direction, name)
    assert got.shape == shape
    assert got.dtype == format_of(name).dtype
    if name in ("float16", "float64"):
        assert np.all(got.astype(np.float64) > 1)


def test_round_exact_non_contiguous_and_nan() -> None:
    hi = np.array([[1.0, np.nan], [3.0, -np.nan]]).T  # non-contiguous view
    got = round_exact(hi, np.zeros((2, 2), dtype=np.int8), "bfloat16").astype(np.float64)
    assert got[0, 0] == 1.0 and got[0, 1] == 3.0
    assert np.isnan(got[1]).all()


def test_round_exact_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="direction"):
        round_exact(np.zeros(3), np.zeros(2, dtype=np.int8), "float16")


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_format_constants_match_finfo(name: str) -> None:
    fmt = FORMATS[name]
    info = ml_dtypes.finfo(fmt.dtype) if name == "bfloat16" else np.finfo(fmt.dtype)
    assert fmt.name == name
    assert fmt.precision == info.nmant + 1
    assert fmt.emin == info.minexp and fmt.emax == info.maxexp - 1
    assert fmt.min_normal == float(info.smallest_normal)
    assert fmt.min_subnormal == float(info.smallest_subnormal)
    assert fmt.max_finite == float(info.max)
    assert fmt.unit_roundoff == float(info.eps) / 2
    assert fmt.half_ulp_at_max == 2.0 ** (fmt.emax - fmt.precision)
    if name == "float64":
        assert fmt.overflow_threshold == math.inf
    else:
        assert fmt.overflow_threshold == fmt.max_finite + fmt.half_ulp_at_max
    assert FORMATS["float16"].overflow_threshold == 65520.0


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("float16", "float16"),
        (np.dtype("float32"), "float32"),
        (np.float64, "float64"),
        (ml_dtypes.bfloat16, "bfloat16"),
        (np.dtype(ml_dtypes.bfloat16), "bfloat16"),
        (np.dtype(">f4"), "float32"),
        ("bfloat16", "bfloat16"),
        (FORMATS["float16"], "float16"),
    ],
)
def test_format_of_accepts(spec: object, name: str) -> None:
    assert format_of(spec).name == name


@pytest.mark.parametrize(
    "spec", ["float", "double", "half", float, np.int32, np.dtype("int8"), np.complex64, None, 16]
)
def test_format_of_rejects(spec: object) -> None:
    with pytest.raises(TypeError, match="dtype must be one of float16, bfloat16, float32"):
        format_of(spec)


def test_ulp() -> None:
    assert ulp(np.array([1.0, -1.0, 1.9, 2.0]), "float32").tolist() == [2.0**-23] * 3 + [2.0**-22]
    assert ulp(65504.0, "float16") == 32.0
    assert ulp(1.0, "bfloat16") == 2.0**-7
    f16 = FORMATS["float16"]
    small = np.array([0.0, -0.0, f16.min_subnormal, 3 * f16.min_subnormal, f16.min_normal])
    assert ulp(small, "float16").tolist() == [2.0**-24] * 5
    assert ulp(2.0**-1022, "float64") == 5e-324 and ulp(0.0, "float64") == 5e-324
    assert np.isnan(ulp(np.array([np.inf, -np.inf, np.nan]), "float32")).all()
    assert ulp(np.zeros((2, 0)), "float16").shape == (2, 0)
    assert ulp(np.array(3.0, dtype=ml_dtypes.bfloat16), "bfloat16") == 2.0**-6
