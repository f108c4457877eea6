"""The Arb tier: certified ball arithmetic (python-flint) between binary128 and mpmath.

Rows that binary128 cannot decide (gaps beyond its exponent range, cancellation in the VJPs,
values of the form *float + tiny*) are evaluated here with ``flint.arb`` balls, whose radii are
rigorous error bounds computed by Arb itself, so no error analysis is needed on this tier.

Work per escalated row is O(C) for the row quantities (``T = sum of e^{d_j}`` over the tail, the
cotangent and label sums) and O(1) per *pending* element: only the elements the earlier tiers
left undecided are evaluated and tested. Equal logits share one ``exp``.

Each pending element is produced as a pair ``(a, b)`` with value ``a + b``: ``a`` an exactly
known part (a float, ``1/K``, ``g_i - sum(g)/K``, ...; evaluated at ``EXACT_PREC`` bits, exact
wherever the engine's mpmath tier uses an exact addition) and ``b`` a ball, usually tiny next to
``a``. The rounding test then works on ``r = (a - hi) + b``, formed without losing ``b``: the
value ``-1000000032 - e^-1000000032`` keeps its direction at 128 bits. The forms are the
cancellation-free ones of ``_kernels`` (docs/numerics.md §4-§5): the VJPs at the maximum, ``log1p``.

Ziv's test on a ball (``decide``): ``hi`` is the candidate ``RN64(mid)``; the element is
decided when ``r`` lies certainly strictly between the half-gaps around ``hi`` and certainly on
one side of 0 (or the value is ±0-rounded with a known sign), and its radius is below 2**-101 of
the value (the ``lo`` contract; ``lo`` is the nearest float64 of the midpoint of ``r``, so it
may differ from the mpmath tier's in its last bits, both within the contract). Otherwise the
next precision of ``PRECISIONS`` (128, then 192 doubling to ``MAX_PREC``); anything still
undecided goes on to the mpmath tier.

The test runs in two stages: ``decide_many`` reduces every pending ball of a row to float64
numbers (``h``, ``RN64(mid(v - h))`` and Arb's relative accuracy of ``v - h``, four Arb calls,
once per distinct ball) and decides the whole row with NumPy; ``decide`` above, exact and about
15 Arb operations, runs only on what that declines (exact values, float + a part below the
working precision, balls across a boundary, subnormal or overflowing values).

``flint.ctx.prec`` is process-global, like ``mpmath.mp.prec``: every evaluation runs inside
``precision(bits)``, which restores it. Not thread-safe (nor is the mpmath tier): the engine is
used from one thread per process (``references.pool`` runs it in child processes).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
from flint import arb, ctx, fmpq

if TYPE_CHECKING:
    from references._engine import Problem
    from references._kernels import Rows

# Working precisions, in order: 128 bits decide almost every element (a value closer than
# about 2**-120 of itself to a rounding boundary is rare) and cost about a quarter less than
# 192 per exp; then the ladder from 192 doubling to 3072.
PRECISIONS = (128, 192, 384, 768, 1536, 3072)
START_PREC = PRECISIONS[0]
MAX_PREC = PRECISIONS[-1]
EXACT_PREC = 2400  # x - m of two float64 values needs at most 2099 bits: exact here
_F64_MAX = float(np.finfo(np.float64).max)
_F64_TINY = 2.0**-1022
_TWO_M101 = 2.0**-101
_SLACK = 1 + 2.0**-40


@contextlib.contextmanager
def precision(bits: int) -> Iterator[None]:
    """Arb's working precision set to ``bits`` for the block, restored after it."""
    saved = ctx.prec
    ctx.prec = bits
    try:
        yield
    finally:
        ctx.prec = saved


def _threshold() -> Any:
    # float64's overflow threshold max + 2**970, exactly (53 + 54 bits)
    with precision(256):
        return arb(_F64_MAX) + arb(2.0**970)


_THRESHOLD = _threshold()
_ZERO = arb(0)
_HALF_SUBNORMAL = arb(5e-324) * arb(0.5)  # 2**-1075, exact


def _exact(fn: Any, *args: Any) -> Any:
    """fn(*args) evaluated at EXACT_PREC bits (exact for sums and differences of a few floats)."""
    saved = ctx.prec
    ctx.prec = EXACT_PREC
    try:
        return fn(*args)
    finally:
        ctx.prec = saved


def _ball(hi: float, lo: float, err: float) -> Any:
    """The ball hi + lo (exactly) with radius err."""
    v = _exact(lambda h, low: arb(h) + arb(low), hi, lo) if lo else arb(hi)
    return v + arb(0, err) if err else v


# --------------------------------------------------------------------------- rounding test

def decide(a: Any, b: Any, hint: int) -> tuple[float, float, int, bool]:
    """Ziv's test for the value a + b (a: an exact part or None; b: a ball).

    Returns (hi, lo, direction, ok), as ``_engine._decide_mp`` does for mpmath values."""
    v = b if a is None else a + b
    if not v.is_finite():
        return 0.0, 0.0, 0, False
    h = float(v)  # nearest float64 of the midpoint (correctly rounded, subnormals included)
    if math.isinf(h) or abs(h) == _F64_MAX:
        if v >= _THRESHOLD:
            return math.inf, 0.0, -1, True
        if v <= -_THRESHOLD:
            return -math.inf, 0.0, 1, True
        if math.isinf(h):
            return h, 0.0, 0, False
    # r = exact - hi = c + b with c = a - hi formed exactly: every comparison of r with a bound
    # is one of b with an exact number, so a tiny b decides even when a is a midpoint or hi
    for _ in range(3):  # the candidate, or a neighbour when a + b straddles a midpoint
        H = arb(h)
        c = _exact(_minus, a, H)
        if h == 0:
            up_half = down_half = _HALF_SUBNORMAL
        elif abs(h) < _F64_MAX:
            up_half = arb(math.nextafter(h, math.inf) - h) * 0.5
            down_half = arb(h - math.nextafter(h, -math.inf)) * 0.5
        else:
            up_half = down_half = _THRESHOLD - abs(H)
        above = _exact(_minus, up_half, c)  # r < up_half  <=>  b < above
        below = _exact(_minus, -down_half, c)  # r > -down_half  <=>  b > below
        if b >= above and abs(h) < _F64_MAX:
            h = math.nextafter(h, math.inf)
        elif b <= below and abs(h) < _F64_MAX:
            h = math.nextafter(h, -math.inf)
        else:
            break
    if math.isinf(h) or not (b < above and b > below):
        return h, 0.0, 0, False
    neg_c = -c
    if b > neg_c:
        d = 1
    elif b < neg_c:
        d = -1
    elif b.is_exact() and b == neg_c:
        d = 0
    elif h == 0 and hint != 0:
        d = hint
    else:
        return h, 0.0, 0, False
    if h == 0:
        return (-0.0 if d < 0 else 0.0), 0.0, d, True
    ok = abs(h) < _F64_TINY or (float(b.rad()) + float(c.rad())) * _SLACK <= (
        abs(h) * _TWO_M101 / _SLACK)
    return h, float(c + b), d, ok


def _minus(a: Any, b: Any) -> Any:
    return -b if a is None else a - b


_SCALE_UP = arb(1 << 1100)  # exact: brings values below float64's range into it
_SCALED_HALF_SUBNORMAL = 2.0**25  # 2**-1075 * 2**1100
_ACC_CLIP = 4000  # relative accuracies beyond this many bits act as exact for the test below


def decide_many(pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ziv's test for many values a + b at once: the balls reduced to float64 numbers in one
    pass, the decision made by NumPy on the whole batch (``decide`` per element costs about
    15 Arb operations; this costs 4).

    For each value ``v = a + b`` (one ball at the working precision), ``h = RN64(mid v)`` and
    the ball ``r = v - h`` are formed; ``lo = RN64(mid r)`` and Arb's relative accuracy ``acc``
    of ``r`` (``rad r < |mid r| * 2**-acc``, rigorous: Arb's ``rel_error_bits`` counts from the
    top bits of radius and midpoint) bound where the exact ``r`` can lie:
    ``|r - lo| <= |mid r - lo| + rad r <= E``. The element is decided when ``[lo - E, lo + E]``
    lies strictly inside the rounding interval of ``h`` (half gaps) and on one side of 0, and
    ``rad r`` meets the ``lo`` contract; every float64 operation in the bound rounds the bound
    up (slack factors) or is a comparison with a float64, which rounding cannot flip. Values
    with ``h = 0`` are scaled by 2**1100 (exactly) first, so that values far below float64's
    range keep a sign and a magnitude. Returns (hi, lo, direction, ok); elements not ``ok``
    (beyond float64's range, a ball straddling a boundary, an exact value, NaN) are left to
    ``decide``, which is exact, so the results are those of ``decide`` whatever this test
    accepts: when it accepts, the exact value lies inside the rounding interval of ``h``, on
    the side of ``h`` given by ``direction``, which ``decide`` would certify too."""
    n = len(pairs)
    h_l: list[float] = [0.0] * n
    lo_l: list[float] = [0.0] * n
    acc_l: list[int] = [0] * n
    hint_l: list[int] = [0] * n
    seen: dict[tuple[int, int], tuple[float, float, int]] = {}  # the same balls: once
    for k, (a, b, hint) in enumerate(pairs):
        key = (id(a), id(b))
        got = seen.get(key)
        if got is None:
            v = b if a is None else a + b
            h = float(v)
            r = v - h if h else v * _SCALE_UP  # h = 0: r = v * 2**1100, exactly
            got = seen[key] = (h, float(r), r.rel_accuracy_bits())
        h_l[k], lo_l[k], acc_l[k] = got
        hint_l[k] = hint
    hs = np.array(h_l, dtype=np.float64)
    los = np.array(lo_l, dtype=np.float64)
    acc = np.clip(np.array(acc_l, dtype=np.float64), -_ACC_CLIP, _ACC_CLIP)
    hints = np.array(hint_l, dtype=np.int8)
    with np.errstate(all="ignore"):
        alo = np.abs(los)
        mag = alo * (1 + 2.0**-51) + 2.0**-1073  # >= |mid r| (lo = RN64(mid r))
        e_lo = alo * 2.0**-52 + 2.0**-1074  # >= |mid r - lo|
        rad = np.ldexp(mag, -acc.astype(np.int64)) + 2.0**-1074  # >= rad r (ldexp may underflow)
        rad = np.where(acc < 1, np.inf, rad)  # the ball holds 0: nothing to conclude
        E = (e_lo + rad) * (1 + 2.0**-40)
        fin = np.isfinite(hs) & (np.abs(hs) < _F64_MAX) & np.isfinite(los)
        up_half = (np.nextafter(hs, np.inf) - hs) * 0.5  # exact for normal h; 0 (so open)
        down_half = (hs - np.nextafter(hs, -np.inf)) * 0.5  # where h is subnormal
        inside = (los + E < up_half) & (los - E > -down_half)
        direction = np.where(los - E > 0, 1, np.where(los + E < 0, -1, 0)).astype(np.int8)
        # the lo contract, rad r <= 2**-101 |h|, compared scaled by 2**s (s = 200 for tiny h)
        # so that the 2**-1074 added to rad against underflow cannot decide it
        s = np.where(np.abs(hs) < 2.0**-900, 200, 0)
        rad_s = np.ldexp(mag, s - acc.astype(np.int64)) + 2.0**-1074
        rad_s = np.where(acc < 1, np.inf, rad_s)
        ok_lo = (np.abs(hs) < _F64_TINY) | (
            rad_s * _SLACK <= np.ldexp(np.abs(hs), s - 101) / _SLACK)
        nonzero = fin & (hs != 0)
        ok = nonzero & inside & (direction != 0) & ok_lo
        # h = 0: r = v * 2**1100; decided when |v| < 2**-1075 certainly and its sign is known
        # (the ball excludes 0: acc >= 1), or the structure gives the sign (hint)
        zero = (hs == 0) & np.isfinite(los)
        below = (mag + rad) * (1 + 2.0**-40) < _SCALED_HALF_SUBNORMAL
        sign_known = (acc >= 1) & (acc < _ACC_CLIP) | ((acc >= _ACC_CLIP) & (los != 0))
        zero_dir = np.where(sign_known, np.where(np.signbit(los), -1, 1), hints).astype(np.int8)
        exact_zero_maybe = (acc >= _ACC_CLIP) & (los == 0)  # an exact 0 has direction 0
        zero_ok = zero & below & (zero_dir != 0) & ~exact_zero_maybe
    direction = np.where(zero_ok, zero_dir, direction).astype(np.int8)
    hi = np.where(zero_ok, np.where(zero_dir < 0, -0.0, 0.0), hs)
    lo = np.where(nonzero, los, 0.0)
    return hi, lo, direction, ok | zero_ok


# --------------------------------------------------------------------------- row quantities

class _Row:
    """Arb quantities of one regular row at the working precision (computed on first use)."""

    def __init__(self, p: Problem, rows: Rows, i: int, gi: int):
        self.p, self.i, self.gi = p, i, gi
        self.x = rows.x[i]
        self.m = float(rows.m[i])
        self.M = arb(self.m)
        self.K = int(rows.K[i])
        self.Kb = arb(self.K)
        self.max_mask = rows.is_max[i]
        self.is_max = self.max_mask.tolist()  # a list: per-element lookups in Python
        self.is_tail = rows.is_tail[i]
        tail = np.nonzero(self.is_tail)[0]
        uniq, inv, counts = np.unique(self.x[tail], return_inverse=True, return_counts=True)
        self.uidx = np.full(self.x.shape, -1, dtype=np.int64)
        self.uidx[tail] = inv
        self._uidx = self.uidx.tolist()
        M = self.M
        self.Eu = [(arb(v) - M).exp() for v in uniq.tolist()]  # e^{d} per distinct tail logit
        self.counts = counts.tolist()
        self._ES: list[Any] = [None] * len(self.Eu)
        self.T = _sum([e * c for e, c in zip(self.Eu, self.counts)])
        self.S = self.Kb + self.T
        L = (self.T / self.Kb).log1p()
        self.L = L + self.Kb.log() if self.K > 1 else L
        self._cache: dict[str, Any] = {}

    def E(self, j: int) -> Any:
        return self.Eu[self._uidx[j]]

    def ES(self, j: int) -> Any:
        """e^{d_j} / S, once per distinct tail logit."""
        u = self._uidx[j]
        v = self._ES[u]
        if v is None:
            v = self._ES[u] = self.Eu[u] / self.S
        return v

    def d_exact(self, j: int) -> Any:
        return _exact(lambda v, m: arb(v) - m, float(self.x[j]), self.M)

    def g(self, j: int) -> float:
        assert self.p.g is not None
        return float(self.p.g[self.gi, j])

    def tail_dot(self, w: np.ndarray) -> Any:
        """sum over the tail of w_j e^{d_j} (w float64, per column)."""
        tail = np.nonzero(self.is_tail)[0]
        ws = w[tail].tolist()
        Eu, uidx = self.Eu, self.uidx[tail].tolist()
        return _sum([Eu[u] * wj for u, wj in zip(uidx, ws) if wj])


def _sum(terms: list[Any]) -> Any:
    total = arb(0)
    for t in terms:
        total += t
    return total


# --------------------------------------------------------------------------- kernels
# Each returns, for the pending columns of one row (or the row itself: cols == [-1]),
# a list of (a, b, hint) with value a + b.

Pair = tuple[Any, Any, int]


def _softmax_like(R: _Row, j: int, scale: Any, scale_f: float) -> Pair:
    """scale * p_j; at maxima scale/K - scale*T/(K S), the exact part first."""
    hint = 1 if scale_f > 0 else -1 if scale_f < 0 else 0
    if R.is_max[j]:
        a = _exact(lambda s, k: s / k, scale, R.Kb)
        return a, -(scale * R.T) / (R.Kb * R.S), hint
    return None, R.ES(j) if scale_f == 1.0 else scale * R.ES(j), hint


def k_softmax(R: _Row, cols: list[int]) -> list[Pair]:
    one = arb(1)
    return [_softmax_like(R, j, one, 1.0) for j in cols]


def k_log_softmax(R: _Row, cols: list[int]) -> list[Pair]:
    neg_l = -R.L
    xs = R.x.tolist()
    tail = [j for j in cols if not R.is_max[j]]
    distinct = sorted({xs[j] for j in tail})
    M = R.M

    def differences() -> dict[float, Any]:  # d = x - m exactly, once per distinct logit
        return {v: arb(v) - M for v in distinct}

    d = _exact(differences)
    return [(None if R.is_max[j] else d[xs[j]], neg_l, -1) for j in cols]


def k_logsumexp(R: _Row, cols: list[int]) -> list[Pair]:
    return [(R.M, R.L, 0)]


def k_sparse_ce(R: _Row, cols: list[int]) -> list[Pair]:
    assert R.p.labels is not None
    t = int(R.p.labels[R.gi])
    a = None if R.is_max[t] else _exact(lambda m, v: m - arb(v), R.M, float(R.x[t]))
    return [(a, R.L, 1)]


def _labels(R: _Row) -> tuple[list[Any], Any]:
    """Labels Y_j and their sum as balls, once per row: exact floats, or (``cross_entropy``)
    the exact rationals of ``q_exact``, whose balls shrink as the precision grows."""
    if "Y" not in R._cache:
        p = R.p
        q = p.extra.get("q_exact")
        if q is not None:
            row = q.q[R.gi].tolist()
            Y = [_fmpq_ball(Fraction(v)) for v in row]
            total = Fraction(sum(row, Fraction(0)))
            SY = _fmpq_ball(total)
            R._cache["Q"], R._cache["QS"] = row, total
        else:
            assert p.y is not None
            Y = [arb(v) for v in p.y[R.gi].tolist()]
            SY = _exact(_sum, Y)
        R._cache["Y"], R._cache["SY"] = Y, SY
    return R._cache["Y"], R._cache["SY"]


def _fmpq_ball(q: Fraction) -> Any:
    """A rational as a ball: exact when it is dyadic and fits the precision."""
    return arb(fmpq(q.numerator, q.denominator)) if q else _ZERO


def k_dense_ce(R: _Row, cols: list[int]) -> list[Pair]:
    # loss = (sum' y) L - sum' y_j d_j over y_j != 0 (all unmasked here): an exact part and L
    Y, _ = _labels(R)
    nz = [j for j in np.nonzero(R.p.y[R.gi] != 0)[0].tolist()]  # type: ignore[index]

    def parts() -> tuple[Any, Any]:
        a = _sum([-(Y[j] * (arb(float(R.x[j])) - R.M)) for j in nz if not R.is_max[j]])
        return a, _sum([Y[j] for j in nz])

    a, sy = _exact(parts)
    return [(a, sy * R.L, 0)]


def k_logsumexp_grad(R: _Row, cols: list[int]) -> list[Pair]:
    assert R.p.g is not None
    gf = float(R.p.g[R.gi])
    G = arb(gf)
    return [_softmax_like(R, j, G, gf) for j in cols]


def k_softmax_vjp(R: _Row, cols: list[int]) -> list[Pair]:
    assert R.p.g is not None
    g = R.p.g[R.gi]
    gl = g.tolist()
    if "A" not in R._cache:
        from references._exact import exact_row_sums
        gm_hi, gm_lo, gm_err = exact_row_sums(np.where(R.max_mask, g, 0.0)[None, :])
        R._cache["GM"] = _ball(float(gm_hi[0]), float(gm_lo[0]), float(gm_err[0]))
        R._cache["AT"] = R.tail_dot(g)
        R._cache["A"] = (R._cache["GM"] + R._cache["AT"]) / R.S  # <g, p>
    GM, AT, A = R._cache["GM"], R._cache["AT"], R._cache["A"]
    out: list[Pair] = []
    K2 = R.Kb * R.Kb
    S2 = R.S * R.S
    for j in cols:
        gj = gl[j]
        if R.is_max[j]:
            # sum_j' (g_j - g_j') e_j' / S^2 = (K g_j - GM)/K^2 - (K g_j - GM) T (2K + T)/(K^2 S^2)
            #                                   + (g_j T - AT)/S^2
            c = _exact(lambda k, v, s: k * v - s, R.Kb, gj, GM)
            a = _exact(lambda n, k2: n / k2, c, K2)
            b = (-(c * R.T) * (2 * R.Kb + R.T)) / (K2 * S2) + (R.T * gj - AT) / S2
            out.append((a, b, 0))
        else:
            out.append((None, R.ES(j) * (gj - A), 0))
    return out


def k_log_softmax_vjp(R: _Row, cols: list[int]) -> list[Pair]:
    p = R.p
    assert p.g is not None
    g = p.g[R.gi]
    if "Gs" not in R._cache:
        R._cache["Gs"] = _ball(float(p.extra["gs_hi"][R.gi]), float(p.extra["gs_lo"][R.gi]),
                               float(p.extra["gs_err"][R.gi]))
    Gs = R._cache["Gs"]
    gl = g.tolist()
    out: list[Pair] = []
    for j in cols:
        gj = gl[j]
        if R.is_max[j]:
            # (g_j - sum(g)/K) + sum(g) T / (K S)
            a = _exact(lambda v, s, k: arb(v) - s / k, gj, Gs, R.Kb)
            out.append((a, (Gs * R.T) / (R.Kb * R.S), 0))
        else:
            out.append((arb(gj), -(R.ES(j) * Gs), 0))
    return out


def k_sparse_ce_grad(R: _Row, cols: list[int]) -> list[Pair]:
    assert R.p.labels is not None
    t = int(R.p.labels[R.gi])
    one = arb(1)
    out: list[Pair] = []
    for j in cols:
        if j != t:
            out.append(_softmax_like(R, j, one, 1.0))
        elif R.is_max[j]:  # p_t - 1 = -(K - 1)/K - T/(K S)
            a = _exact(lambda k: -(k - 1) / k, R.Kb)
            out.append((a, -R.T / (R.Kb * R.S), -1))
        else:  # -1 + p_t
            out.append((arb(-1), R.ES(j), -1))
    return out


def k_dense_ce_grad(R: _Row, cols: list[int]) -> list[Pair]:
    Y, SY = _labels(R)
    out: list[Pair] = []
    for j in cols:
        if R.is_max[j]:
            # (C_j - y_j T)/S with C_j = sum(y) - y_j K: C_j/K - T sum(y)/(K S)
            if "Q" in R._cache:  # exact rationals: (sum q - q_j K)/K exactly, then one rounding
                a = _fmpq_ball((R._cache["QS"] - Fraction(R._cache["Q"][j]) * R.K) / R.K)
            else:
                a = _exact(lambda s, y, k: (s - y * k) / k, SY, Y[j], R.Kb)
            out.append((a, -(R.T * SY) / (R.Kb * R.S), 0))
        else:
            out.append((-Y[j], SY * R.ES(j), 0))
    return out


KERNELS: dict[str, Any] = {
    "softmax": k_softmax,
    "log_softmax": k_log_softmax,
    "logsumexp": k_logsumexp,
    "sparse_softmax_cross_entropy": k_sparse_ce,
    "softmax_cross_entropy": k_dense_ce,
    "logsumexp_grad": k_logsumexp_grad,
    "softmax_vjp": k_softmax_vjp,
    "log_softmax_vjp": k_log_softmax_vjp,
    "sparse_softmax_cross_entropy_grad": k_sparse_ce_grad,
    "softmax_cross_entropy_grad": k_dense_ce_grad,
}


def solve(p: Problem, rows: Rows, row_ids: np.ndarray, pending: np.ndarray, prec: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """hi, lo, direction and ok (the mask of decided elements) for the ``pending`` elements.

    ``rows`` are regular rows of ``p`` (``row_ids`` their indices in ``p``); ``pending`` has the
    output shape of those rows, (n, C) or (n,). Elements not pending are returned undecided.
    Each row's pending elements are decided together by ``decide_many`` (vectorised), and only
    those it leaves open by the exact per-element ``decide``."""
    shape = pending.shape
    hi, lo = np.zeros(shape), np.zeros(shape)
    direction = np.zeros(shape, dtype=np.int8)
    ok = np.zeros(shape, dtype=bool)
    kernel = KERNELS[p.op]
    elementwise = pending.ndim == 2
    with precision(prec):
        for i in range(shape[0]):
            cols = np.nonzero(pending[i])[0].tolist() if elementwise else (
                [-1] if pending[i] else [])
            if not cols:
                continue
            R = _Row(p, rows, i, int(row_ids[i]))
            pairs = kernel(R, cols)
            h, l_, d, good = decide_many(pairs)
            for k in np.nonzero(~good)[0].tolist():  # the exact test where the fast one is open
                h[k], l_[k], d[k], good[k] = decide(*pairs[k])
            pos = (i, cols) if elementwise else ([i],)
            hi[pos], lo[pos], direction[pos], ok[pos] = h, l_, d, good
    return hi, lo, direction, ok


__all__ = ["MAX_PREC", "PRECISIONS", "START_PREC", "decide", "decide_many", "precision",
           "solve"]
