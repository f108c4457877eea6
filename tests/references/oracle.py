"""Independent slow oracle for the softmax family (never imports ``references``).

Every function mirrors one of the ``references`` API and returns a numpy object array of
``gmpy2.mpfr`` values (NaN and ±inf as MPFR specials), computed element by element from the
plain definitions of docs/numerics.md §2-§4 in the cancellation-free forms of §5, with the special
values of §6.

Precision argument (default ``prec`` = 3000 bits)
-------------------------------------------------
* Inputs are exact: ``mpfr(float(v))`` is exact for float16/bfloat16/float32/float64 values.
* The shifted logits ``d_j = x_j - max`` are exact: two float64 values differ by a multiple of
  2**-1074 smaller than 2**1025, i.e. at most 2100 significant bits, and shifts are handled in
  a context of ``max(wp, 2300) + 1100`` bits (``_Ctx.sh``), where sums of a few stay exact.
* Each result is split into an exact rational part (``mpq``: ``1/K``, ``d_i``, ``g_i - G/K``,
  label sums, ...) and a correction that is a product / quotient / sum of *positive* terms
  (``e^{d_j}``, ``T = sum of the tail``, ``log1p(T/K)``, ``log K``) times exact rationals, held
  as ``m * e**s`` with an exact shift ``s`` so that nothing underflows.  Every MPFR operation
  is correctly rounded at the working precision ``wp = prec + 128``; a correction is built
  from at most a few dozen such operations without subtracting nearly equal approximations,
  so its relative error is below 2**-(prec + 100).
* The only subtractions of approximate values are (a) the softmax-VJP tail numerator
  ``g_i T - U``, accepted only with a rigorous error bound showing >= prec + 8 good bits, and
  otherwise recomputed as ``sum_k c_k e^{delta_k}`` over groups of equal ``delta`` with exact
  non-zero coefficients ``c_k``; (b) exact part + correction, and a few sums of such.  By the
  Lindemann-Weierstrass theorem, ``sum_k c_k e^{delta_k}`` with distinct ``delta_k`` and non-zero
  rational ``c_k`` is never 0, and a cancellation of more than ~2900 bits between
  quantities of this size would need an accidental agreement of e-powers with rationals to
  2**-2900; exact zeros are decided symbolically (from the exact coefficients), never
  numerically.  ``test_oracle_self.test_precision_is_stable`` checks the claim on every family
  (float16 and float64 inputs) against a 2000-bit evaluation, and ``test_matches_plain_mpmath``
  against the plain formulas in mpmath.
* The final sum ``exact + correction`` is rounded to ``prec`` bits *to odd* (round toward zero,
  then set the last bit if inexact).  So each value is within 2**-(prec-1) relative of the
  exact one, far below 2**-100, and a later round-to-nearest into any format of at most
  ``prec - 2`` bits (float64 and smaller, subnormals included) is the correct rounding of the
  exact value (Boldo-Melquiond), even when the exact value is a rational plus a correction far
  below 2**-prec, e.g. float32 ``log_softmax([32, -1e9])[1] = -1000000032 - e^-1000000032``.
* Corrections whose size is below e**-(2**26) are represented by ±2**-(2**28) (sign exact):
  they are far below the resolution of every format relative to any non-zero exact part.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import gmpy2
import ml_dtypes
import numpy as np
from gmpy2 import mpfr, mpq

DEFAULT_PREC = 3000

_GUARD = 128  # extra working bits over ``prec``
_COEF_BITS = 2400  # ratio range of exact dyadic coefficients (float64 values span 2**2100)
_CLAMP_NATS = -(2**26)  # magnitudes below e**_CLAMP_NATS become ±2**_TINY_LOG2
_TINY_LOG2 = -(2**28)

_INPUT_DTYPES = (
    np.dtype(np.float16),
    np.dtype(ml_dtypes.bfloat16),
    np.dtype(np.float32),
    np.dtype(np.float64),
)

# --------------------------------------------------------------------------------------------
# Contexts and the e-scaled numbers m * e**s
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    prec: int
    wp: int
    rz: Any  # final rounding: prec bits toward zero (the sticky bit is added by hand)
    w: Any  # working precision, round to nearest
    sh: Any  # exact arithmetic on shifts
    lo: Any  # 64-bit magnitude estimates
    drop: Any  # nats: an addend this much smaller than another is negligible
    tiny: Any


@cache
def _ctx(prec: int) -> _Ctx:
    if prec < 128:
        raise ValueError(f"prec must be at least 128 bits, got {prec}")
    wp = prec + _GUARD
    lo = gmpy2.context(precision=64)
    return _Ctx(
        prec=prec,
        wp=wp,
        rz=gmpy2.context(precision=prec, round=gmpy2.RoundToZero),
        w=gmpy2.context(precision=wp),
        sh=gmpy2.context(precision=max(wp, 2300) + 1100),
        lo=lo,
        drop=lo.mul(wp + 64, lo.const_log2()),
        tiny=gmpy2.mul_2exp(mpfr(1), _TINY_LOG2),
    )


_SHIFT0 = mpfr(0)


class _X:
    """The number ``m * e**s``: ``m`` at working precision, ``s`` an exact shift."""

    __slots__ = ("m", "s")

    def __init__(self, m: Any, s: Any = _SHIFT0) -> None:
        self.m = m
        self.s = s

    def is_zero(self) -> bool:
        return bool(self.m == 0)


_XZERO = _X(mpfr(0))


@lru_cache(maxsize=1 << 16)
def _exp_at(prec: int, s: Any) -> Any:
    """e**s at the working precision of ``prec`` (shifts repeat: one per row or group)."""
    return _ctx(prec).w.exp(s)


def _mp(c: _Ctx, q: Any) -> Any:
    """mpq/int/float -> mpfr at working precision (exact when it fits)."""
    if isinstance(q, float):
        return mpfr(q)
    return gmpy2.mpfr(q, c.wp)


def _mag(c: _Ctx, a: _X) -> Any:
    """ln|a| to 64 bits (a != 0)."""
    return c.lo.add(a.s, c.lo.log(c.lo.abs(a.m)))


def _xmul(c: _Ctx, a: _X, b: _X) -> _X:
    if a.is_zero() or b.is_zero():
        return _XZERO
    return _X(c.w.mul(a.m, b.m), c.sh.add(a.s, b.s))


def _xdiv(c: _Ctx, a: _X, b: _X) -> _X:
    if a.is_zero():
        return _XZERO
    return _X(c.w.div(a.m, b.m), c.sh.sub(a.s, b.s))


def _xscale(c: _Ctx, a: _X, q: Any) -> _X:
    if a.is_zero() or q == 0:
        return _XZERO
    return _X(c.w.mul(a.m, _mp(c, q)), a.s)


def _xneg(c: _Ctx, a: _X) -> _X:
    # Never use Python operators on mpfr here: they round to the default 53-bit context.
    return _X(c.w.minus(a.m), a.s)


def _xadd(c: _Ctx, a: _X, b: _X) -> _X:
    if a.is_zero():
        return b
    if b.is_zero():
        return a
    la, lb = _mag(c, a), _mag(c, b)
    if la < lb:
        a, b, la, lb = b, a, lb, la
    if lb < c.lo.sub(la, c.drop):
        return a  # |b| < 2**-(wp+64) |a|
    s = a.s if a.s >= b.s else b.s
    ma = a.m if a.s == s else c.w.mul(a.m, _exp_at(c.prec, c.sh.sub(a.s, s)))
    mb = b.m if b.s == s else c.w.mul(b.m, _exp_at(c.prec, c.sh.sub(b.s, s)))
    return _X(c.w.add(ma, mb), s)


def _xsum(c: _Ctx, terms: Iterable[_X]) -> _X:
    total = _XZERO
    for t in terms:
        total = _xadd(c, total, t)
    return total


def _xval(c: _Ctx, a: _X) -> Any:
    """The value as an mpfr, or ±tiny (sign exact) when it is below e**-(2**26)."""
    if a.is_zero():
        return mpfr(0)
    if _mag(c, a) < _CLAMP_NATS:
        return c.tiny if a.m > 0 else -c.tiny
    if a.s == 0:
        return a.m
    return c.w.mul(a.m, _exp_at(c.prec, a.s))


def _exact_mpfr(q: Any) -> Any:
    """A dyadic mpq as an exact mpfr."""
    return gmpy2.mpfr(q, max(2, int(abs(q.numerator)).bit_length()))


def _tail_bits(c: _Ctx, n: int) -> int:
    """Tail terms more than this many bits below the largest one are left out of T."""
    return c.wp + n.bit_length() + 64


def _is_dyadic(q: Any) -> bool:
    den = int(q.denominator)
    return den & (den - 1) == 0


def _round_odd(c: _Ctx, v: Any) -> Any:
    """Turn a prec-bit round-toward-zero result into the round-to-odd result."""
    if v.rc == 0 or not v.is_regular():
        return v
    mant, exp = v.as_mantissa_exp()
    if mant & 1:
        return v
    odd = gmpy2.mpfr(abs(mant) | 1, c.prec)
    r = c.rz.mul_2exp(odd, exp)
    return c.rz.minus(r) if mant < 0 else r


def _fin(c: _Ctx, main: Any, corr: _X) -> Any:
    """Round ``main + corr`` (main an exact mpq) to odd at ``prec`` bits."""
    if corr.is_zero():
        if main == 0:
            return mpfr(0)
        with c.rz:
            v = mpfr(main)
        return _round_odd(c, v)
    cv = _xval(c, corr)
    if main == 0:
        v = c.rz.plus(cv)
    else:
        if _is_dyadic(main):
            mf = _exact_mpfr(main)
        else:
            mf = gmpy2.mpfr(main, c.wp + 64)  # not dyadic: never a rounding boundary
        v = c.rz.add(mf, cv)
    return _round_odd(c, v)


# --------------------------------------------------------------------------------------------
# Per-row analysis (cached: every function on the same logits shares it)
# --------------------------------------------------------------------------------------------

_NAN = gmpy2.nan()
_PINF = gmpy2.inf(1)
_NINF = gmpy2.inf(-1)

# A row value: either an mpfr special (NaN, ±inf) or an (exact mpq, correction) pair.
_Val = Any


@dataclass
class _Row:
    kind: str  # "finite", "nan", "posinf", "allneginf" (C = 0 counts as all -inf: empty sum)
    n: int
    d: list[Any]  # exact x_j - max (mpfr); None where x_j = -inf
    top: list[bool]  # x_j == max
    k: int
    t: _X  # T = sum over the tail of e^{d_j}
    s: _X  # S = K + T
    lam: _X  # log K + log1p(T/K) = lse - max
    p: list[tuple[Any, _X]]  # softmax, exact part + correction
    s_top: Any  # largest tail shift
    scaled: dict[int, Any]  # tail j kept in T -> e^{d_j - s_top}
    dropped: list[int]  # tail j too small to matter in T


def _special_row(kind: str, n: int) -> _Row:
    return _Row(kind, n, [], [], 0, _XZERO, _XZERO, _XZERO, [], None, {}, [])


@lru_cache(maxsize=8192)
def _analyze(row_bytes: bytes, prec: int) -> _Row:
    c = _ctx(prec)
    vals = np.frombuffer(row_bytes, dtype=np.float64).tolist()
    n = len(vals)
    if any(math.isnan(v) for v in vals):
        return _special_row("nan", n)
    if any(v == math.inf for v in vals):
        return _special_row("posinf", n)
    if all(v == -math.inf for v in vals):
        return _special_row("allneginf", n)
    mx = max(vals)
    m = mpfr(mx)
    d: list[Any] = []
    for v in vals:
        if v == -math.inf:
            d.append(None)
        else:
            dj = c.sh.sub(mpfr(v), m)
            assert dj.rc == 0, "shift not exact"
            d.append(dj)
    top = [v == mx for v in vals]
    k = sum(top)
    tail = [j for j in range(n) if d[j] is not None and not top[j]]

    t, s_top, scaled, dropped = _XZERO, None, {}, []
    if tail:
        s_top = max(d[j] for j in tail)
        # Positive terms: dropping those below 2**-(wp + log2 n + 64) of the largest keeps T
        # relatively accurate to 2**-wp.
        cut = c.sh.sub(s_top, c.lo.mul(_tail_bits(c, n), c.lo.const_log2()))
        by_shift: dict[Any, Any] = {}  # rows often repeat a value: one exp per distinct d
        for j in tail:
            if d[j] >= cut:
                if d[j] not in by_shift:
                    by_shift[d[j]] = c.w.exp(c.sh.sub(d[j], s_top))
                scaled[j] = by_shift[d[j]]
            else:
                dropped.append(j)
        t = _X(c.w.fsum(list(scaled.values())), s_top)
    s = _xadd(c, _X(mpfr(k)), t)

    if t.is_zero():
        lam = _XZERO if k == 1 else _X(c.w.log(k))
    elif _mag(c, t) < c.lo.sub(c.lo.log(k), c.lo.mul(c.wp + 16, c.lo.const_log2())):
        # T/K < 2**-(wp+16): log1p(T/K) = (T/K)(1 - T/2K + ...) to better than 2**-wp.
        tk = _xscale(c, t, mpq(1, k))
        lam = tk if k == 1 else _xadd(c, _X(c.w.log(k)), tk)
    else:
        lam = _X(c.w.add(c.w.log(k), c.w.log1p(c.w.div(_xval(c, t), k))))

    corr_top = _xneg(c, _xdiv(c, _xscale(c, t, mpq(1, k)), s))  # 1/S - 1/K = -T/(K S)
    p: list[tuple[Any, _X]] = []
    for j in range(n):
        if d[j] is None:
            p.append((mpq(0), _XZERO))
        elif top[j]:
            p.append((mpq(1, k), corr_top))
        elif j in scaled:  # e^{d_j} / S = (e^{d_j - s_top} / S.m) e^{s_top - S.s}
            p.append((mpq(0), _X(c.w.div(scaled[j], s.m), c.sh.sub(s_top, s.s))))
        else:
            p.append((mpq(0), _xdiv(c, _X(mpfr(1), d[j]), s)))
    return _Row("finite", n, d, top, k, t, s, lam, p, s_top, scaled, dropped)


def _tail_exp(st: _Row, j: int) -> _X:
    """e^{d_j} for a tail entry, scaled by the row's common shift where possible."""
    if j in st.scaled:
        return _X(st.scaled[j], st.s_top)
    return _X(mpfr(1), st.d[j])


def _row(x_row: np.ndarray, prec: int) -> _Row:
    return _analyze(np.ascontiguousarray(x_row, dtype=np.float64).tobytes(), prec)


# --------------------------------------------------------------------------------------------
# Per-row formulas
# --------------------------------------------------------------------------------------------


def _q(v: float) -> Any:
    return mpq(v)


def _finish(c: _Ctx, v: _Val) -> Any:
    if isinstance(v, type(_NAN)):
        return v
    return _fin(c, v[0], v[1])


def _nan_row(n: int) -> list[_Val]:
    return [_NAN] * n


def _row_softmax(c: _Ctx, st: _Row) -> list[_Val]:
    if st.kind != "finite":
        return _nan_row(st.n)
    return list(st.p)


def _row_log_softmax(c: _Ctx, st: _Row) -> list[_Val]:
    if st.kind != "finite":
        return _nan_row(st.n)
    neg_lam = _xneg(c, st.lam)
    return [_NINF if dj is None else (mpq(dj), neg_lam) for dj in st.d]


def _row_logsumexp(c: _Ctx, st: _Row, x_row: np.ndarray) -> _Val:
    if st.kind == "nan":
        return _NAN
    if st.kind == "posinf":
        return _PINF
    if st.kind == "allneginf":
        return _NINF
    return (mpq(float(np.max(x_row))), st.lam)


def _row_ce_loss(c: _Ctx, st: _Row, q: Sequence[Any]) -> _Val:
    """-sum_j q_j l_j with 0 * (-inf) := 0 (docs/numerics.md §2, §5.5, §6 #6/#7)."""
    if st.kind != "finite":
        return _NAN
    infs = {1 if q[j] > 0 else -1 for j in range(st.n) if st.d[j] is None and q[j] != 0}
    if len(infs) == 2:
        return _NAN
    if infs:
        return _PINF if infs == {1} else _NINF
    main = mpq(0)
    qsum = mpq(0)
    for j in range(st.n):
        if q[j] != 0:
            main -= q[j] * mpq(st.d[j])
            qsum += q[j]
    return (main, _xscale(c, st.lam, qsum))


def _row_ce_grad(c: _Ctx, st: _Row, q: Sequence[Any]) -> list[_Val]:
    """(sum q) p - q; -q_j at -inf logits (the finite limit, §6 #7)."""
    if st.kind != "finite":
        return _nan_row(st.n)
    qsum = sum(q, mpq(0))
    out: list[_Val] = []
    for j in range(st.n):
        if st.d[j] is None:
            out.append((-q[j], _XZERO))
        else:
            main_p, corr_p = st.p[j]
            out.append((qsum * main_p - q[j], _xscale(c, corr_p, qsum)))
    return out


def _row_log_softmax_vjp(c: _Ctx, st: _Row, g: Sequence[Any]) -> list[_Val]:
    """g - p sum(g): the dense CE gradient with q = g, negated."""
    grad = _row_ce_grad(c, st, g)
    return [v if isinstance(v, type(_NAN)) else (-v[0], _xneg(c, v[1])) for v in grad]


def _row_lse_grad(c: _Ctx, st: _Row, g_row: Any) -> list[_Val]:
    if st.kind != "finite":
        return _nan_row(st.n)
    return [(g_row * mp, _xscale(c, cp, g_row)) for mp, cp in st.p]


def _row_softmax_vjp(c: _Ctx, st: _Row, g: Sequence[float]) -> list[_Val]:
    """p_i (g_i - <g, p>) = e^{d_i} N_i / S**2,  N_i = sum_j (g_i - g_j) e^{d_j}.

    N_i = c0 + N'_i with the exact top part c0 = K g_i - sum_{top} g_j and the tail part
    N'_i = sum_k (n_k g_i - gamma_k) e^{delta_k} over groups k of equal tail shift.
    """
    if st.kind != "finite":
        return _nan_row(st.n)
    gq = [_q(v) for v in g]
    k = st.k
    g_top = sum((gq[j] for j in range(st.n) if st.top[j]), mpq(0))
    tail = [j for j in range(st.n) if st.d[j] is not None and not st.top[j]]

    groups: dict[Any, list[int]] = {}
    for j in tail:
        groups.setdefault(st.d[j], []).append(j)
    means = {sum((gq[j] for j in idx), mpq(0)) / len(idx) for idx in groups.values()}
    common = next(iter(means)) if len(means) == 1 else None

    if tail:
        tp = st.t.m
        up = c.w.fsum([c.w.mul(mpfr(g[j]), v) for j, v in st.scaled.items()])
        ap = c.w.fsum([c.w.mul(abs(mpfr(g[j])), v) for j, v in st.scaled.items()])
        n_drop = len(st.dropped)
        drop_abs = sum((abs(mpfr(g[j])) for j in st.dropped), mpfr(0))
        # every dropped e^{d_j - s_top} is below this bound (see _analyze)
        e_drop = gmpy2.mul_2exp(mpfr(1), -_tail_bits(c, st.n))
        rel = gmpy2.mul_2exp(mpfr(1), -c.wp + 3)
        need = gmpy2.mul_2exp(mpfr(1), c.prec + 8)

    def tail_part(i: int) -> _X:
        if not tail or (common is not None and gq[i] == common):
            return _XZERO
        gi = mpfr(g[i])
        val = c.w.sub(c.w.mul(gi, tp), up)
        err = c.w.add(
            c.w.mul(rel, c.w.add(c.w.mul(abs(gi), tp), ap)),
            c.w.mul(c.w.add(c.w.mul(abs(gi), n_drop), drop_abs), e_drop),
        )
        if c.w.abs(val) > c.w.mul(need, err):
            return _X(val, st.s_top)
        # Fallback: exact coefficients per group; the largest group with a non-zero
        # coefficient dominates everything more than (wp + _COEF_BITS) bits below it.
        coef = [(dk, len(idx) * gq[i] - sum((gq[j] for j in idx), mpq(0)))
                for dk, idx in groups.items()]
        coef = [(dk, ck) for dk, ck in coef if ck != 0]
        d_star = max(dk for dk, _ in coef)
        cut = c.sh.sub(d_star, c.lo.mul(c.wp + _COEF_BITS + st.n.bit_length(), c.lo.const_log2()))
        terms = [
            c.w.mul(_mp(c, ck), c.w.exp(c.sh.sub(dk, d_star))) for dk, ck in coef if dk >= cut
        ]
        return _X(c.w.fsum(terms), d_star)

    s2 = _xmul(c, st.s, st.s)
    s2k = _xscale(c, s2, k * k)
    two_k_t = _xadd(c, _X(mpfr(2 * k)), st.t)
    t_2kt = _xmul(c, st.t, two_k_t)  # T (2K + T) = S**2 - K**2
    out: list[_Val] = []
    for i in range(st.n):
        if st.d[i] is None:
            out.append((mpq(0), _XZERO))
            continue
        c0 = k * gq[i] - g_top
        np_i = tail_part(i)
        if st.top[i]:
            # y = c0/K**2 + (K**2 N' - c0 T (2K + T)) / (K**2 S**2)
            num = _xadd(c, _xscale(c, np_i, k * k), _xneg(c, _xscale(c, t_2kt, c0)))
            out.append((c0 / (k * k), _xdiv(c, num, s2k)))
        else:
            n_i = _xadd(c, _X(_mp(c, c0)), np_i)
            out.append((mpq(0), _xdiv(c, _xmul(c, _tail_exp(st, i), n_i), s2)))
    return out


# --------------------------------------------------------------------------------------------
# Array plumbing
# --------------------------------------------------------------------------------------------


def _logits(x: Any, name: str = "x") -> np.ndarray:
    a = np.asarray(x)
    if a.dtype not in _INPUT_DTYPES:
        raise TypeError(f"{name}: unsupported dtype {a.dtype}")
    return a


def _floats(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu" and arr.dtype != np.dtype(ml_dtypes.bfloat16):
        raise TypeError(f"{name}: expected a real array, got {arr.dtype}")
    return arr.astype(np.float64)


def _axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} out of range for {ndim}-d input")
    return axis % ndim


def _rows_last(a: np.ndarray, axis: int) -> np.ndarray:
    """Move ``axis`` last and flatten the rest: shape (R, C), float64."""
    moved = np.moveaxis(a.astype(np.float64), axis, -1)
    return moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1])


def _obj(shape: tuple[int, ...], values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out.reshape(shape)


def _elementwise(
    x: Any,
    axis: int,
    fn: Callable[[_Ctx, _Row, int], list[_Val]],
    prec: int,
) -> np.ndarray:
    a = _logits(x)
    if a.ndim == 0:
        raise ValueError("input must have at least one dimension")
    ax = _axis(axis, a.ndim)
    rows = _rows_last(a, ax)
    c = _ctx(prec)
    vals: list[Any] = []
    for r in range(rows.shape[0]):
        st = _row(rows[r], prec)
        vals.extend(_finish(c, v) for v in fn(c, st, r))
    moved_shape: tuple[int, ...] = a.shape[:ax] + a.shape[ax + 1 :] + a.shape[ax : ax + 1]
    return np.moveaxis(_obj(moved_shape, vals), -1, ax)


def _check_classes(n_classes: int) -> None:
    if n_classes == 0:
        raise ValueError("cross-entropy needs at least one class (C = 0)")


def _sparse(labels: Any, shape: tuple[int, ...], n_classes: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"sparse labels must be integers, got {lab.dtype}")
    if lab.shape != shape:
        raise ValueError(f"labels shape {lab.shape} != logits batch shape {shape}")
    bad = (lab < 0) | (lab >= n_classes)
    if np.any(bad):
        raise ValueError(f"labels out of range [0, {n_classes}): {lab[bad][:5].tolist()}")
    return lab.reshape(-1).astype(np.int64)


def _onehot(t: int, n: int) -> list[Any]:
    q = [mpq(0)] * n
    q[t] = mpq(1)
    return q


# --------------------------------------------------------------------------------------------
# Public API: forward
# --------------------------------------------------------------------------------------------


def softmax(x: Any, axis: int = -1, *, prec: int = DEFAULT_PREC) -> np.ndarray:
    """Softmax along ``axis``."""
    return _elementwise(x, axis, lambda c, st, r: _row_softmax(c, st), prec)


def log_softmax(x: Any, axis: int = -1, *, prec: int = DEFAULT_PREC) -> np.ndarray:
    """Log-softmax along ``axis`` (``d_i - log K - log1p(T/K)``)."""
    return _elementwise(x, axis, lambda c, st, r: _row_log_softmax(c, st), prec)


def logsumexp(x: Any, axis: int = -1, *, prec: int = DEFAULT_PREC) -> np.ndarray:
    """Log-sum-exp along ``axis``; ``-inf`` for empty and all ``-inf`` rows."""
    a = _logits(x)
    if a.ndim == 0:
        raise ValueError("input must have at least one dimension")
    ax = _axis(axis, a.ndim)
    rows = _rows_last(a, ax)
    c = _ctx(prec)
    vals = [
        _finish(c, _row_logsumexp(c, _row(rows[r], prec), rows[r])) for r in range(rows.shape[0])
    ]
    return _obj(a.shape[:ax] + a.shape[ax + 1 :], vals)


def softmax_cross_entropy(
    logits: Any, labels: Any, axis: int = -1, *, prec: int = DEFAULT_PREC
) -> np.ndarray:
    """Per-row ``sum_j y_j (-l_j)`` for dense real labels; zero labels contribute 0."""
    a = _logits(logits, "logits")
    y = _floats(labels, "labels")
    if y.shape != a.shape:
        raise ValueError(f"labels shape {y.shape} != logits shape {a.shape}")
    ax = _axis(axis, a.ndim)
    _check_classes(a.shape[ax])
    rows, yrows = _rows_last(a, ax), _rows_last(y, ax)
    c = _ctx(prec)
    vals = []
    for r in range(rows.shape[0]):
        if not np.all(np.isfinite(yrows[r])):
            vals.append(_NAN)
            continue
        q = [_q(v) for v in yrows[r].tolist()]
        vals.append(_finish(c, _row_ce_loss(c, _row(rows[r], prec), q)))
    return _obj(a.shape[:ax] + a.shape[ax + 1 :], vals)


def sparse_softmax_cross_entropy(
    logits: Any, labels: Any, *, prec: int = DEFAULT_PREC
) -> np.ndarray:
    """Per-row ``-l_t`` for integer labels on the last axis."""
    a = _logits(logits, "logits")
    if a.ndim == 0:
        raise ValueError("logits must have a class axis")
    _check_classes(a.shape[-1])
    lab = _sparse(labels, a.shape[:-1], a.shape[-1])
    rows = _rows_last(a, a.ndim - 1)
    c = _ctx(prec)
    vals = [
        _finish(c, _row_ce_loss(c, _row(rows[r], prec), _onehot(int(lab[r]), a.shape[-1])))
        for r in range(rows.shape[0])
    ]
    return _obj(a.shape[:-1], vals)


# --------------------------------------------------------------------------------------------
# PyTorch cross_entropy (docs/numerics.md §3)
# --------------------------------------------------------------------------------------------


@dataclass
class _TorchRows:
    rows: np.ndarray  # (R, C) float64 logits
    q: list[list[Any] | None]  # per-row weight vector; None: the row is ignored
    nan_rows: list[bool]  # rows whose target is non-finite (probability targets)
    denom: Any  # D (index targets) or N (probability targets), exact
    batch_shape: tuple[int, ...]
    reduction: str


def _torch_rows(
    logits: Any,
    target: Any,
    weight: Any,
    ignore_index: int,
    label_smoothing: float,
    reduction: str,
) -> _TorchRows:
    a = _logits(logits, "logits")
    if a.ndim == 0:
        raise ValueError("logits must have a class axis")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"unknown reduction {reduction!r}")
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {eps}")
    n_cls = a.shape[-1]
    _check_classes(n_cls)
    if weight is None:
        w = [mpq(1)] * n_cls
    else:
        wa = _floats(weight, "weight")
        if wa.shape != (n_cls,):
            raise ValueError(f"weight shape {wa.shape} != ({n_cls},)")
        w = [_q(v) for v in wa.tolist()]
    rows = _rows_last(a, a.ndim - 1)
    e = mpq(eps)
    uni = e / n_cls
    tgt = np.asarray(target)
    q: list[list[Any] | None] = []
    nan_rows: list[bool] = []
    if tgt.shape == a.shape:
        if tgt.dtype.kind != "f" and tgt.dtype != np.dtype(ml_dtypes.bfloat16):
            raise TypeError("probability targets must be floating point")
        if ignore_index >= 0:
            raise ValueError("ignore_index must be negative with probability targets")
        y = _rows_last(tgt, tgt.ndim - 1)
        for r in range(y.shape[0]):
            ok = bool(np.all(np.isfinite(y[r])))
            nan_rows.append(not ok)
            yr = [_q(v) if ok else mpq(0) for v in y[r].tolist()]
            q.append([w[j] * ((1 - e) * yr[j] + uni) for j in range(n_cls)])
        denom = mpq(y.shape[0])
    else:
        if tgt.dtype.kind not in "iu":
            raise TypeError(f"class-index targets must be integers, got {tgt.dtype}")
        if tgt.shape != a.shape[:-1]:
            raise ValueError(f"target shape {tgt.shape} != logits batch shape {a.shape[:-1]}")
        denom = mpq(0)
        for t in tgt.reshape(-1).tolist():
            nan_rows.append(False)
            if t == ignore_index:
                q.append(None)
                continue
            if not 0 <= t < n_cls:
                raise ValueError(f"target {t} out of range [0, {n_cls})")
            qr = [w[j] * uni for j in range(n_cls)]
            qr[t] += (1 - e) * w[t]
            q.append(qr)
            denom += w[t]
    return _TorchRows(rows, q, nan_rows, denom, a.shape[:-1], reduction)


def _sum_vals(c: _Ctx, vals: Sequence[_Val]) -> _Val:
    special = [v for v in vals if isinstance(v, type(_NAN))]
    if any(v.is_nan() for v in special):
        return _NAN
    signs = {1 if v > 0 else -1 for v in special}
    if len(signs) == 2:
        return _NAN
    if signs:
        return _PINF if signs == {1} else _NINF
    main = sum((v[0] for v in vals), mpq(0))
    return (main, _xsum(c, (v[1] for v in vals)))


def _divide(c: _Ctx, v: _Val, denom: Any) -> Any:
    """IEEE-style ``v / denom`` for an exact denominator, finished to mpfr."""
    if denom != 0:
        if isinstance(v, type(_NAN)):
            return v if (v.is_nan() or denom > 0) else -v
        return _fin(c, v[0] / denom, _xscale(c, v[1], 1 / denom))
    num = _finish(c, v)
    if num.is_nan() or num == 0:
        return _NAN
    return _PINF if num > 0 else _NINF


def cross_entropy(
    logits: Any,
    target: Any,
    *,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    prec: int = DEFAULT_PREC,
) -> np.ndarray:
    """``torch.nn.functional.cross_entropy`` with the class axis last (docs/numerics.md §3).

    Ignored rows contribute exactly 0 whatever their logits.  "mean" divides by
    ``D = sum of weight[target]`` over active rows (index targets) or by the number of rows
    (probability targets); ``D = 0`` gives NaN for a zero sum.
    """
    tr = _torch_rows(logits, target, weight, ignore_index, label_smoothing, reduction)
    c = _ctx(prec)
    per_row: list[_Val] = []
    for r, qr in enumerate(tr.q):
        if qr is None:
            per_row.append((mpq(0), _XZERO))
        elif tr.nan_rows[r]:
            per_row.append(_NAN)
        else:
            per_row.append(_row_ce_loss(c, _row(tr.rows[r], prec), qr))
    if reduction == "none":
        return _obj(tr.batch_shape, [_finish(c, v) for v in per_row])
    total = _sum_vals(c, per_row)
    value = _finish(c, total) if reduction == "sum" else _divide(c, total, tr.denom)
    return _obj((), [value])


# --------------------------------------------------------------------------------------------
# Public API: gradients with respect to the logits
# --------------------------------------------------------------------------------------------


def _cotangent_rows(g: Any, a: np.ndarray, ax: int, name: str = "g") -> np.ndarray:
    ga = _floats(g, name)
    if ga.shape != a.shape:
        raise ValueError(f"{name} shape {ga.shape} != x shape {a.shape}")
    return _rows_last(ga, ax)


def softmax_vjp(x: Any, g: Any, axis: int = -1, *, prec: int = DEFAULT_PREC) -> np.ndarray:
    """``(g - <g, p>) * p``; a non-finite cotangent makes its row NaN."""
    a = _logits(x)
    grows = _cotangent_rows(g, a, _axis(axis, max(a.ndim, 1)))

    def fn(c: _Ctx, st: _Row, r: int) -> list[_Val]:
        if not np.all(np.isfinite(grows[r])):
            return _nan_row(st.n)
        return _row_softmax_vjp(c, st, grows[r].tolist())

    return _elementwise(a, axis, fn, prec)


def log_softmax_vjp(x: Any, g: Any, axis: int = -1, *, prec: int = DEFAULT_PREC) -> np.ndarray:
    """``g - p * sum(g)``; equals ``g_i`` at ``-inf`` logits."""
    a = _logits(x)
    grows = _cotangent_rows(g, a, _axis(axis, max(a.ndim, 1)))

    def fn(c: _Ctx, st: _Row, r: int) -> list[_Val]:
        if not np.all(np.isfinite(grows[r])):
            return _nan_row(st.n)
        return _row_log_softmax_vjp(c, st, [_q(v) for v in grows[r].tolist()])

    return _elementwise(a, axis, fn, prec)


def logsumexp_grad(
    x: Any, axis: int = -1, g: Any = None, *, prec: int = DEFAULT_PREC
) -> np.ndarray:
    """``g_row * softmax(x)``; ``g`` (one value per row) defaults to ones."""
    a = _logits(x)
    ax = _axis(axis, max(a.ndim, 1))
    if g is None:
        gr = np.ones(int(np.prod(a.shape[:ax] + a.shape[ax + 1 :])))
    else:
        ga = _floats(g, "g")
        if ga.shape != a.shape[:ax] + a.shape[ax + 1 :]:
            raise ValueError(f"g shape {ga.shape} does not match the reduced shape of x")
        gr = ga.reshape(-1)

    def fn(c: _Ctx, st: _Row, r: int) -> list[_Val]:
        if not math.isfinite(gr[r]):
            return _nan_row(st.n)
        return _row_lse_grad(c, st, _q(float(gr[r])))

    return _elementwise(a, axis, fn, prec)


def softmax_cross_entropy_grad(
    logits: Any, labels: Any, axis: int = -1, *, prec: int = DEFAULT_PREC
) -> np.ndarray:
    """``(sum y) p - y`` per row (docs/numerics.md §4); ``-y_j`` at ``-inf`` logits."""
    a = _logits(logits, "logits")
    y = _floats(labels, "labels")
    if y.shape != a.shape:
        raise ValueError(f"labels shape {y.shape} != logits shape {a.shape}")
    ax = _axis(axis, a.ndim)
    _check_classes(a.shape[ax])
    yrows = _rows_last(y, ax)

    def fn(c: _Ctx, st: _Row, r: int) -> list[_Val]:
        if not np.all(np.isfinite(yrows[r])):
            return _nan_row(st.n)
        return _row_ce_grad(c, st, [_q(v) for v in yrows[r].tolist()])

    return _elementwise(a, axis, fn, prec)


def sparse_softmax_cross_entropy_grad(
    logits: Any, labels: Any, *, prec: int = DEFAULT_PREC
) -> np.ndarray:
    """``p - e_t`` per row."""
    a = _logits(logits, "logits")
    if a.ndim == 0:
        raise ValueError("logits must have a class axis")
    _check_classes(a.shape[-1])
    lab = _sparse(labels, a.shape[:-1], a.shape[-1])
    n_cls = a.shape[-1]
    return _elementwise(
        a, -1, lambda c, st, r: _row_ce_grad(c, st, _onehot(int(lab[r]), n_cls)), prec
    )


def cross_entropy_grad(
    logits: Any,
    target: Any,
    *,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    prec: int = DEFAULT_PREC,
) -> np.ndarray:
    """Gradient of :func:`cross_entropy` w.r.t. the logits: ``(sum q) p - q`` per row.

    Ignored rows get exactly 0.  "mean" divides by ``D`` (a zero ``D`` gives NaN where the
    numerator is 0, ±inf elsewhere); "none" is taken as the gradient of the summed losses.
    """
    tr = _torch_rows(logits, target, weight, ignore_index, label_smoothing, reduction)
    c = _ctx(prec)
    a = np.asarray(logits)
    n_cls = a.shape[-1]
    vals: list[Any] = []
    for r, qr in enumerate(tr.q):
        if qr is None:
            row_vals: list[_Val] = [(mpq(0), _XZERO)] * n_cls
        elif tr.nan_rows[r]:
            row_vals = _nan_row(n_cls)
        else:
            row_vals = _row_ce_grad(c, _row(tr.rows[r], prec), qr)
        if reduction == "mean":
            vals.extend(_divide(c, v, tr.denom) for v in row_vals)
        else:
            vals.extend(_finish(c, v) for v in row_vals)
    return _obj(a.shape, vals)


# --------------------------------------------------------------------------------------------
# Correct rounding of oracle values into IEEE formats
# --------------------------------------------------------------------------------------------


def _ieee_context(precision: int, emin_normal: int, emax: int) -> Any:
    """MPFR context emulating an IEEE format (MPFR significands lie in [1/2, 1))."""
    return gmpy2.context(
        precision=precision,
        emin=emin_normal - precision + 2,
        emax=emax + 1,
        subnormalize=True,
        round=gmpy2.RoundToNearest,
    )


_FORMAT_CONTEXTS: dict[np.dtype, Any] = {
    np.dtype(np.float16): _ieee_context(11, -14, 15),
    np.dtype(ml_dtypes.bfloat16): _ieee_context(8, -126, 127),
    np.dtype(np.float32): _ieee_context(24, -126, 127),
    np.dtype(np.float64): _ieee_context(53, -1022, 1023),
}


def _round_with(values: Any, ctx: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    flat = [float(ctx.plus(v if isinstance(v, type(_NAN)) else mpfr(v))) for v in arr.reshape(-1)]
    return np.asarray(flat, dtype=np.float64).reshape(arr.shape)


def to_float64_rn(values: Any) -> np.ndarray:
    """Each mpfr correctly rounded to float64 (nearest-even, subnormals and overflow right)."""
    return _round_with(values, _FORMAT_CONTEXTS[np.dtype(np.float64)])


def to_format_rn(values: Any, dtype: Any) -> np.ndarray:
    """Each mpfr correctly rounded, in one step, to float16/bfloat16/float32/float64."""
    dt = np.dtype(dtype)
    if dt not in _FORMAT_CONTEXTS:
        raise TypeError(f"unsupported format {dt}")
    # The float64 intermediate is exact: the value is already representable in ``dt``.
    return _round_with(values, _FORMAT_CONTEXTS[dt]).astype(dt)


def exact(values: Any) -> np.ndarray:
    """The exact values of a float array, as an object array of mpfr."""
    arr = np.asarray(values).astype(np.float64)
    return _obj(arr.shape, [mpfr(v) for v in arr.reshape(-1).tolist()])


API_FUNCTIONS: tuple[str, ...] = (
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
    "cross_entropy",
    "softmax_vjp",
    "log_softmax_vjp",
    "logsumexp_grad",
    "softmax_cross_entropy_grad",
    "sparse_softmax_cross_entropy_grad",
    "cross_entropy_grad",
)
