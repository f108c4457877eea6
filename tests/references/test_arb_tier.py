"""The Arb tier (python-flint balls) against the mpmath tier, bit for bit.

With only the Arb tier enabled (no float64, binary128 or mpmath tier: every value the structure
does not settle comes from Arb), every family of ``families.py`` x dtype x API function must give
what the mpmath tier alone gives: ``hi``, ``direction`` and every narrow rounding bit for bit,
``lo`` within the contract (both tiers round an approximation of ``exact - hi``, good to 2**-100
of the value, so ``lo`` may differ in its last bits: e.g. ``logsumexp_grad`` of ``[0, -100]``,
where the mpmath tier forms ``p_max = 1/S`` and Arb ``1/K - T/(K S)``), and nothing undecided.
Also: Arb's global precision is restored, and wide rows of the escalating kinds decide in Arb."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import flint
import numpy as np
import pytest

import references
from references import _arb, _engine
from tests.references import families as F

FAMILY_FUNCTIONS = [f for name, f in F.FAMILIES.items() if name != "labels_out_of_range"]
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _arb_and_mpmath(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
                    ) -> tuple[references.ReferenceResult, references.ReferenceResult]:
    with _engine.tiers("arb"):
        arb_res = fn(*args, **kwargs)
        _ = arb_res.hi, {d: arb_res.rounded(d) for d in F.DTYPES.values()}
    with _engine.plain_mpmath_path():
        plain = fn(*args, **kwargs)
        _ = plain.hi, {d: plain.rounded(d) for d in F.DTYPES.values()}
    return arb_res, plain


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.view(_UINT[a.itemsize])


def _assert_identical(got: references.ReferenceResult, want: references.ReferenceResult,
                      what: str) -> None:
    assert not np.asarray(got.undecided).any(), f"{what}: undecided elements in the Arb tier"
    np.testing.assert_array_equal(_bits(got.hi), _bits(want.hi), err_msg=f"{what}: hi")
    # Where the mpmath tier reaches its cap (float + a tail below 2**-32768, e.g. the float16
    # dense CE of [65504, 1, 2, 3]: its rowsum is not an exact addition) it keeps its best
    # estimate with direction 0 and flags it; Arb decides those (the MPFR oracle agrees:
    # test_against_oracle). Everything the mpmath tier decides must be identical.
    decided = ~np.asarray(want.undecided)
    np.testing.assert_array_equal(got.direction[decided], want.direction[decided],
                                  err_msg=f"{what}: direction")
    for dtype in F.DTYPES.values():
        a, b = got.rounded(dtype), want.rounded(dtype)
        np.testing.assert_array_equal(_bits(a)[decided], _bits(b)[decided],
                                      err_msg=f"{what} rounded to {dtype}")
    # lo: both meet the contract |hi + lo - exact| <= 2**-100 |exact|: they agree to twice that
    finite = np.isfinite(got.hi) & (np.abs(got.hi) >= 2.0**-922) & decided
    for h, l1, l2 in zip(got.hi[finite], got.lo[finite], want.lo[finite], strict=True):
        gap = abs(Fraction(float(l1)) - Fraction(float(l2)))
        assert gap <= Fraction(2) ** -99 * abs(Fraction(float(h))), f"{what}: lo"


@pytest.mark.parametrize("family", FAMILY_FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", list(F.DTYPES), ids=str)
def test_arb_tier_matches_the_mpmath_tier_on_every_family(family: Any, dtype: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")
    for case in family(F.DTYPES[dtype]):
        for name, call in case.op_inputs.items():
            if call.expect_error:
                continue
            got, want = _arb_and_mpmath(getattr(references, name), call.args, dict(call.kwargs))
            _assert_identical(got, want, f"{name} on {case.id} ({dtype})")


@pytest.mark.parametrize("dtype", list(F.DTYPES), ids=str)
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_arb_tier_matches_the_mpmath_tier_on_random_rows(dtype: str, scale: float,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")
    rng = np.random.default_rng(int(scale) * 11 + len(dtype))
    x = rng.normal(0, scale, (3, 200)).astype(F.DTYPES[dtype])
    x[1, ::3] = x[1, 0]  # ties, at the maximum or not
    x[2, 1::2] = -1e4 if dtype == "float16" else -1e9  # gaps beyond binary128's range
    labels = rng.integers(0, 200, 3)
    y = rng.dirichlet(np.ones(200), 3)
    g = rng.normal(size=(3, 200))
    g[1, ::2] = 0.5  # cancellation in <g, p>
    for name, args in [
        ("softmax", (x,)), ("log_softmax", (x,)), ("logsumexp", (x,)),
        ("sparse_softmax_cross_entropy", (x, labels)), ("softmax_cross_entropy", (x, y)),
        ("softmax_vjp", (x, g)), ("log_softmax_vjp", (x, g)), ("logsumexp_grad", (x,)),
        ("sparse_softmax_cross_entropy_grad", (x, labels)),
        ("softmax_cross_entropy_grad", (x, y)),
    ]:
        got, want = _arb_and_mpmath(getattr(references, name), args, {})
        _assert_identical(got, want, f"{name} N(0, {scale}) {dtype}")


def test_the_arb_tier_restores_the_global_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")
    saved = flint.ctx.prec
    flint.ctx.prec = 77
    try:
        x = np.array([[0.0, -1e9, -3.0]])
        with _engine.tiers("arb"):
            r = references.log_softmax(x)
            _ = r.hi
        assert flint.ctx.prec == 77
        assert r.tier_counts == {"arb": 1}
        with pytest.raises(RuntimeError), _arb.precision(300):
            assert flint.ctx.prec == 300
            raise RuntimeError
        assert flint.ctx.prec == 77
    finally:
        flint.ctx.prec = saved


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp",
                                  "sparse_softmax_cross_entropy_grad"])
def test_escalated_wide_rows_are_decided_by_arb(name: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows binary128 cannot take (gaps of 1e9) or cannot decide (VJP cancellation) go to Arb,
    not to mpmath, in the default tier order."""
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")
    rng = np.random.default_rng(3)
    x = rng.normal(0, 3, (2, 4096)).astype(np.float32)
    x[0, ::2] = -1e9
    g = rng.normal(size=x.shape)
    args: tuple[Any, ...] = (x,)
    if name.endswith("vjp"):
        args = (x, g)
    elif name.startswith("sparse"):
        args = (x, np.array([0, 1]))
    r = getattr(references, name)(*args)
    _ = r.hi
    counts = r.tier_counts
    assert "mpmath" not in counts and "undecided" not in counts, counts
    assert counts.get("arb", 0) >= 1, counts
