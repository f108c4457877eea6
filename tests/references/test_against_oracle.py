"""The ``references`` engine against the independent oracle, family by family.

For every family x dtype x API function that the family exercises, and every case in it:

* ``r.hi`` equals the oracle rounded to nearest float64, bit for bit (every NaN equals every
  NaN; the sign of zero must match);
* ``|r.hi + r.lo - z| <= 2**-100 |z|`` wherever the oracle value ``z`` is a normal float64
  (computed exactly in MPFR); below about 2**-922 that is finer than a float64 ``lo`` can
  resolve, so the bound there is half the subnormal spacing, 2**-1075;
* ``r.rounded(dt)`` equals the oracle rounded once to ``dt``, bit for bit, for float16,
  bfloat16, float32 and float64.

Where the oracle raises (C = 0 cross-entropy, labels out of range, invalid options), the engine
must raise too; for sparse labels out of range, NaN rows for the bad labels (and correct values
elsewhere) are accepted instead (docs/numerics.md §6 #13).

Test ids read ``test_softmax[dominant_logit-float32]``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import gmpy2
import numpy as np
import pytest
from gmpy2 import mpfr

import references
from tests.references import families as F
from tests.references import oracle as O

MAX_REPORTED = 5  # mismatching elements shown per check
_SUM_CTX = gmpy2.context(precision=2300)  # hi + lo of two float64 values is exact here
_DIFF_CTX = gmpy2.context(precision=O.DEFAULT_PREC + 200)
_REL_TOL = mpfr(2) ** -100
_MIN_NORMAL = mpfr(2.0**-1022)
_MAX64 = mpfr(float(np.finfo(np.float64).max))
_LO_FLOOR = gmpy2.mul_2exp(mpfr(1), -1075)  # half the float64 subnormal spacing: lo's limit
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}
_SPARSE = ("sparse_softmax_cross_entropy", "sparse_softmax_cross_entropy_grad")


@cache
def _cases(family: str, dtype_name: str) -> tuple[F.Case, ...]:
    return tuple(F.FAMILIES[family](F.DTYPES[dtype_name]))


def _params(fn: str) -> list[Any]:
    return [
        pytest.param(family, dtype_name, id=f"{family}-{dtype_name}")
        for family in F.FAMILIES
        for dtype_name in F.DTYPES
        if any(fn in c.op_inputs for c in _cases(family, dtype_name))
    ]


# --------------------------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------------------------


def _mismatches(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Boolean mask of elements whose encodings differ (NaNs of any payload are equal)."""
    uint = _UINT[want.dtype.itemsize]
    g_nan = np.isnan(got.astype(np.float64))
    w_nan = np.isnan(want.astype(np.float64))
    bits_differ = got.view(uint) != want.view(uint)
    return np.where(g_nan | w_nan, g_nan != w_nan, bits_differ)


def _show(a: np.ndarray) -> str:
    return np.array2string(
        np.asarray(a).astype(np.float64), precision=17, threshold=16, edgeitems=4,
        max_line_width=200, floatmode="maxprec",
    )


def _describe_inputs(call: F.Call, idx: tuple[int, ...], out_shape: tuple[int, ...]) -> str:
    """The input row(s) behind output element ``idx``."""
    x = call.args[0]
    if out_shape == x.shape:
        row: tuple[int, ...] | None = idx[:-1]
    elif out_shape == x.shape[:-1]:
        row = idx
    else:
        row = None  # a reduction over all rows
    parts = []
    names = ("x", "labels" if len(call.args) > 1 and call.args[1].dtype.kind in "iu" else "arg1")
    for name, a in zip(names, call.args):
        if row is None:
            parts.append(f"{name} = {_show(a)}")
        elif a.shape[: len(row)] == x.shape[: len(row)]:
            parts.append(f"{name}[{', '.join(map(str, row))}] = {_show(a[row])}")
    if call.kwargs:
        kw = {k: (_show(v) if isinstance(v, np.ndarray) else v) for k, v in call.kwargs.items()}
        parts.append(f"kwargs = {kw}")
    return "; ".join(parts)


def _report(
    case: F.Case, fn: str, what: str, call: F.Call, bad: np.ndarray, want: np.ndarray,
    got: np.ndarray, exact: np.ndarray,
) -> str:
    idxs = [tuple(int(i) for i in ix) for ix in np.argwhere(bad)]
    lines = [f"{case.id} {fn}: {what}: {len(idxs)} of {bad.size} elements differ"]
    for ix in idxs[:MAX_REPORTED]:
        lines.append(
            f"  element {ix}: expected {want[ix]!r} (exact {gmpy2.mpfr(exact[ix], 80)}), "
            f"got {got[ix]!r}\n    input: {_describe_inputs(call, ix, want.shape)}"
        )
    return "\n".join(lines)


def _check_hi_lo(case: F.Case, fn: str, call: F.Call, r: Any, z: np.ndarray) -> list[str]:
    out = []
    want_hi = O.to_float64_rn(z)
    hi = np.asarray(r.hi, dtype=np.float64)
    lo = np.asarray(r.lo, dtype=np.float64)
    if hi.shape != want_hi.shape or lo.shape != want_hi.shape:
        return [f"{case.id} {fn}: hi/lo shapes {hi.shape}/{lo.shape}, expected {want_hi.shape}"]
    bad = _mismatches(hi, want_hi)
    if bad.any():
        out.append(_report(case, fn, "hi != RN64(exact)", call, bad, want_hi, hi, z))
    far: list[str] = []
    for ix in np.ndindex(z.shape):
        zv: Any = z[ix]
        if not zv.is_finite():
            continue
        size = _DIFF_CTX.abs(zv)  # operators on mpfr would round to 53 bits
        if not _MIN_NORMAL <= size <= _MAX64:
            continue
        total = _SUM_CTX.add(mpfr(float(hi[ix])), mpfr(float(lo[ix])))
        err = _DIFF_CTX.abs(_DIFF_CTX.sub(total, zv))
        # lo is a float64 too: below 2**-922 its own subnormal spacing is the floor.
        if err > max(_DIFF_CTX.mul(_REL_TOL, size), _LO_FLOOR):
            rel = float(gmpy2.log2(err / size)) if err else -np.inf
            far.append(
                f"  element {ix}: exact {gmpy2.mpfr(zv, 120)}, hi {hi[ix]!r}, lo {lo[ix]!r}: "
                f"|hi + lo - exact| = 2**{rel:.1f} |exact|\n"
                f"    input: {_describe_inputs(call, ix, z.shape)}"
            )
    if far:
        out.append(f"{case.id} {fn}: |hi + lo - exact| > 2**-100 |exact| for {len(far)} of "
                   f"{z.size} elements\n" + "\n".join(far[:MAX_REPORTED]))
    return out


def _check_rounded(case: F.Case, fn: str, call: F.Call, r: Any, z: np.ndarray) -> list[str]:
    out = []
    for name, dt in F.DTYPES.items():
        want = O.to_format_rn(z, dt)
        try:
            got = np.asarray(r.rounded(dt))
        except Exception as exc:  # any failure is a finding
            out.append(f"{case.id} {fn}: rounded({name}) raised {type(exc).__name__}: {exc}")
            continue
        if got.dtype != dt or got.shape != want.shape:
            out.append(f"{case.id} {fn}: rounded({name}) gave {got.dtype}{got.shape}, "
                       f"expected {dt}{want.shape}")
            continue
        bad = _mismatches(got, want)
        if bad.any():
            out.append(_report(case, fn, f"rounded({name}) != RN(exact)", call, bad, want, got, z))
    return out


def _check_error_case(case: F.Case, fn: str, call: F.Call, exc: Exception) -> list[str]:
    """The oracle raised: the engine must raise, or give NaN rows for bad sparse labels."""
    try:
        r = getattr(references, fn)(*call.args, **call.kwargs)
        hi = np.asarray(r.hi, dtype=np.float64)
    except Exception:  # raising is the expected outcome
        return []
    x, labels = call.args[0], call.args[1] if len(call.args) > 1 else None
    if fn not in _SPARSE or labels is None or x.shape[-1] == 0:
        return [f"{case.id} {fn}: expected an error ({exc}), got values {_show(hi)}"]
    bad_rows = (labels < 0) | (labels >= x.shape[-1])
    msgs = []
    if not np.all(np.isnan(hi[bad_rows])):
        msgs.append(f"{case.id} {fn}: labels {labels[bad_rows].tolist()} are out of range: "
                    f"expected an error or NaN rows, got {_show(hi[bad_rows])}")
    good = ~bad_rows
    if good.any():
        z = getattr(O, fn)(x[good], labels[good])
        want = O.to_float64_rn(z)
        bad = _mismatches(hi[good], want)
        if bad.any():
            sub = F.Call((x[good], labels[good]))
            msgs.append(_report(case, fn, "valid rows next to bad labels", sub, bad, want,
                                hi[good], z))
    return msgs


def check(fn: str, family: str, dtype_name: str) -> None:
    """Compare ``references.<fn>`` with the oracle on every case of the family."""
    failures: list[str] = []
    cases = [c for c in _cases(family, dtype_name) if fn in c.op_inputs]
    for case in cases:
        call = case.op_inputs[fn]
        try:
            z = getattr(O, fn)(*call.args, **call.kwargs)
        except ValueError as exc:
            failures += _check_error_case(case, fn, call, exc)
            continue
        try:
            r = getattr(references, fn)(*call.args, **call.kwargs)
            failures += _check_hi_lo(case, fn, call, r, z)
            failures += _check_rounded(case, fn, call, r, z)
        except Exception as exc:  # report it and go on with the other cases
            failures.append(f"{case.id} {fn}: raised {type(exc).__name__}: {exc}\n"
                            f"    input: {_describe_inputs(call, (), ())}")
    if failures:
        pytest.fail(f"{len(failures)} failed checks in {len(cases)} cases\n\n"
                    + "\n\n".join(failures), pytrace=False)


# --------------------------------------------------------------------------------------------
# One test per API function, parametrised by family and dtype
# --------------------------------------------------------------------------------------------

ARGS = ("family", "dtype_name")


@pytest.mark.parametrize(ARGS, _params("softmax"))
def test_softmax(family: str, dtype_name: str) -> None:
    check("softmax", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("log_softmax"))
def test_log_softmax(family: str, dtype_name: str) -> None:
    check("log_softmax", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("logsumexp"))
def test_logsumexp(family: str, dtype_name: str) -> None:
    check("logsumexp", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("softmax_cross_entropy"))
def test_softmax_cross_entropy(family: str, dtype_name: str) -> None:
    check("softmax_cross_entropy", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("sparse_softmax_cross_entropy"))
def test_sparse_softmax_cross_entropy(family: str, dtype_name: str) -> None:
    check("sparse_softmax_cross_entropy", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("cross_entropy"))
def test_cross_entropy(family: str, dtype_name: str) -> None:
    check("cross_entropy", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("softmax_vjp"))
def test_softmax_vjp(family: str, dtype_name: str) -> None:
    check("softmax_vjp", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("log_softmax_vjp"))
def test_log_softmax_vjp(family: str, dtype_name: str) -> None:
    check("log_softmax_vjp", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("logsumexp_grad"))
def test_logsumexp_grad(family: str, dtype_name: str) -> None:
    check("logsumexp_grad", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("softmax_cross_entropy_grad"))
def test_softmax_cross_entropy_grad(family: str, dtype_name: str) -> None:
    check("softmax_cross_entropy_grad", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("sparse_softmax_cross_entropy_grad"))
def test_sparse_softmax_cross_entropy_grad(family: str, dtype_name: str) -> None:
    check("sparse_softmax_cross_entropy_grad", family, dtype_name)


@pytest.mark.parametrize(ARGS, _params("cross_entropy_grad"))
def test_cross_entropy_grad(family: str, dtype_name: str) -> None:
    check("cross_entropy_grad", family, dtype_name)
