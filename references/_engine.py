"""Evaluation driver: special rows, exact structure, then four numeric tiers with Ziv's test.

Tier 1 (float64, vectorised) serves ``rounded(dtype)`` for float32 and narrower formats: it
decides RN_dtype(exact) whenever both ends of [v - err, v + err] round to the same value.
Tier 2 (binary128 via numpy-quaddtype, vectorised), tier 3 (Arb balls via python-flint,
``_arb``, 128 bits, then 192 doubled up to 3072, only the pending elements of a row) and
tier 4 (mpmath, precision doubled from 192 bits until decided) deliver ``hi``/``lo``/
``direction``: an element is accepted when the interval lies strictly between the float64
midpoints around ``hi``, excludes ``hi`` itself (so the direction is known) and is narrower than
2**-101 of the value (so ``lo`` meets the 2**-100 contract). Anything a tier cannot decide, or
rows outside its exponent range, escalate per row. ``tiers()`` restricts the tiers (tests).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from references import _arb, _backends, _kernels, formats
from references._exact import exact_row_sums, exact_sum_is_zero, round_fraction
from references._kernels import Rows

ELEMENTWISE = {"softmax", "log_softmax", "logsumexp_grad", "softmax_vjp", "log_softmax_vjp",
               "sparse_softmax_cross_entropy_grad", "softmax_cross_entropy_grad"}
MP_START_PREC = 192
MP_MAX_PREC = 1 << 15
_TWO_M101 = 2.0**-101
_F64_TINY = 2.0**-1022


@dataclass
class Problem:
    """One reference computation on rows (class axis last), inputs as exact float64."""

    op: str
    x: np.ndarray  # (N, C) float64
    labels: np.ndarray | None = None  # (N,) int64, sparse ops
    y: np.ndarray | None = None  # (N, C) float64, dense ops
    g: np.ndarray | None = None  # (N, C) cotangent, or (N,) for logsumexp_grad
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.x.shape if self.op in ELEMENTWISE else self.x.shape[:1]

    def _lo(self, name: str, idx: np.ndarray) -> np.ndarray | None:
        lo = self.extra.get(name)
        return None if lo is None else lo[idx]

    def subset(self, rows: np.ndarray) -> Problem:
        """The same computation on some of the rows."""
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]
        extra = {k: (v[rows] if isinstance(v, np.ndarray)
                     else v.subset(rows) if isinstance(v, ExactLabels) else v)
                 for k, v in self.extra.items()}
        return Problem(self.op, self.x[rows], pick(self.labels), pick(self.y), pick(self.g), extra)

    def kernel_args(self, idx: np.ndarray) -> tuple[Any, ...]:
        if self.op.startswith("sparse"):
            assert self.labels is not None
            return (self.labels[idx],)
        if self.op == "softmax_cross_entropy":
            assert self.y is not None
            return (self.y[idx], self._lo("y_lo", idx), self._lo("y_err", idx))
        if self.op == "softmax_cross_entropy_grad":
            assert self.y is not None
            return (self.y[idx], self._lo("y_lo", idx), self._lo("y_err", idx),
                    self.extra["c_hi"][idx], self.extra["c_lo"][idx], self.extra["c_err"][idx])
        if self.op == "log_softmax_vjp":
            assert self.g is not None
            return (self.g[idx], self.extra["gs_hi"][idx], self.extra["gs_lo"][idx],
                    self.extra["gs_err"][idx])
        if self.g is not None:
            return (self.g[idx],)
        return ()


# --------------------------------------------------------------------------- special rows

def _special_rows(p: Problem) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows settled by the special-value table (docs/numerics.md §6 rows 1, 2, 4, 5)."""
    x = p.x
    nan_row = np.isnan(x).any(axis=-1)
    pinf_row = (x == np.inf).any(axis=-1) & ~nan_row
    allneg_row = ~np.isfinite(x).any(axis=-1) & ~nan_row & ~pinf_row
    regular = ~(nan_row | pinf_row | allneg_row)
    return regular, {"nan": nan_row, "pinf": pinf_row, "allneg": allneg_row}


def _special_value(op: str, kind: str) -> float:
    if op == "logsumexp":
        return {"nan": np.nan, "pinf": np.inf, "allneg": -np.inf}[kind]
    return np.nan  # every other op: NaN (math for NaN rows; the convention otherwise)


# --------------------------------------------------------------------------- exact structure

def _exact_overrides(p: Problem, rows: Rows, idx: np.ndarray) -> np.ndarray:
    """Object array over the regular rows: an exact value (float or Fraction) or None."""
    op = p.op
    n = len(idx)
    shape = (n, rows.n_classes) if op in ELEMENTWISE else (n,)
    ex = np.full(shape, None, dtype=object)
    no_tail = np.asarray(~rows.is_tail.any(axis=-1))
    masked = rows.is_masked
    x = rows.x

    def put(mask: np.ndarray, fn: Any) -> None:
        for pos in zip(*np.nonzero(mask), strict=True):
            ex[pos] = fn(*pos) if len(pos) == 2 else fn(pos[0])

    K = rows.K
    if op == "softmax":
        ex[masked] = 0.0
        put(no_tail[:, None] & rows.is_max, lambda i, j: Fraction(1, int(K[i])))
    elif op == "log_softmax":
        ex[masked] = -np.inf
        ex[(no_tail & (K == 1))[:, None] & rows.is_max] = 0.0
    elif op == "logsumexp":
        put(no_tail & (K == 1), lambda i: float(rows.m[i]))
    elif op == "sparse_softmax_cross_entropy":
        t = p.labels[idx]  # type: ignore[index]
        t_masked = masked[np.arange(n), t]
        ex[t_masked] = np.inf
        ex[no_tail & (K == 1) & ~t_masked] = 0.0
    elif op == "softmax_cross_entropy":
        lab = labels_of(p)
        live_inf = masked & lab.nonzero(idx)
        has_inf = live_inf.any(axis=-1)
        sign = lab.sign(idx)
        for i in np.nonzero(has_inf)[0]:
            signs = set(sign[i][live_inf[i]].tolist())
            ex[i] = np.nan if len(signs) > 1 else (np.inf if signs == {1} else -np.inf)
        zero_sum = lab.zero_sum_rows(idx) & ~has_inf
        for i in np.nonzero(zero_sum)[0]:
            # sum y = 0: the loss is -sum y_j d_j, a rational number
            nz = lab.nonzero(idx[i : i + 1])[0] & ~masked[i]
            m_i = Fraction(float(rows.m[i]))
            ex[i] = -sum((lab.value(int(idx[i]), int(j)) * (Fraction(float(x[i, j])) - m_i)
                          for j in np.nonzero(nz)[0]), Fraction(0))
        ex[no_tail & (K == 1) & ~has_inf & ~zero_sum] = 0.0
    elif op == "logsumexp_grad":
        g = p.g[idx]  # type: ignore[index]
        ex[masked] = 0.0
        put(no_tail[:, None] & rows.is_max, lambda i, j: Fraction(float(g[i])) / int(K[i]))
    elif op == "softmax_vjp":
        g = p.g[idx]  # type: ignore[index]
        ex[masked] = 0.0
        for i in np.nonzero(no_tail)[0]:
            mean = sum((Fraction(float(v)) for v in g[i][rows.is_max[i]]), Fraction(0)) / int(K[i])
            for j in np.nonzero(rows.is_max[i])[0]:
                ex[i, j] = (Fraction(float(g[i, j])) - mean) / int(K[i])
        for row in np.nonzero(~no_tail)[0]:
            for col in _softmax_vjp_exact_zeros(x[row], g[row], masked[row]):
                ex[row, col] = 0.0
    elif op == "log_softmax_vjp":
        g = p.g[idx]  # type: ignore[index]
        zero_sum = exact_sum_is_zero(g)
        ex[masked | zero_sum[:, None]] = 0.0  # placeholder, replaced by g below
        for i, j in zip(*np.nonzero(masked | zero_sum[:, None]), strict=True):
            ex[i, j] = float(g[i, j]) + 0.0
        for i in np.nonzero(no_tail & ~zero_sum)[0]:
            total = sum((Fraction(float(v)) for v in g[i]), Fraction(0))
            for j in np.nonzero(rows.is_max[i])[0]:
                ex[i, j] = Fraction(float(g[i, j])) - total / int(K[i])
    elif op == "sparse_softmax_cross_entropy_grad":
        t = p.labels[idx]  # type: ignore[index]
        ex[masked] = 0.0
        at_t = np.zeros(masked.shape, dtype=bool)
        at_t[np.arange(n), t] = True
        ex[masked & at_t] = -1.0
        put(no_tail[:, None] & rows.is_max,
            lambda i, j: Fraction(1, int(K[i])) - (1 if j == t[i] else 0))
    elif op == "softmax_cross_entropy_grad":
        lab = labels_of(p)
        zero_sum = lab.zero_sum_rows(idx)
        for i, j in zip(*np.nonzero(masked | zero_sum[:, None]), strict=True):
            ex[i, j] = -lab.value(idx[i], j)  # p_j = 0, or sum y = 0: the gradient is -y exactly
        for i in np.nonzero(no_tail & ~zero_sum)[0]:
            total = lab.row_sum(int(idx[i]))
            for j in np.nonzero(rows.is_max[i])[0]:
                ex[i, j] = total / int(K[i]) - lab.value(int(idx[i]), int(j))
    return ex


def _softmax_vjp_exact_zeros(x: np.ndarray, g: np.ndarray, masked: np.ndarray) -> list[int]:
    """Entries i with (g_i - <g, p>) == 0 exactly in a row that has a tail.

    sum_j (g_i - g_j) e^{d_j} groups by distinct d; the e^{d} of distinct rationals are linearly
    independent over the rationals (Lindemann–Weierstrass), so it vanishes exactly when g_i equals
    the mean of g over every group of equal logits.
    """
    live = ~masked
    xs, gs = x[live], g[live]
    if np.all(gs == gs[0]):
        return list(np.nonzero(live)[0])
    uniq, inv = np.unique(xs, return_inverse=True)
    if len(uniq) == len(xs):
        return []  # singleton groups: would need all g equal, ruled out above
    if _group_means_differ(gs, inv, len(uniq)):
        return []
    means = set()
    for k in range(len(uniq)):
        members = gs[inv == k]
        means.add(sum((Fraction(float(v)) for v in members), Fraction(0)) / len(members))
        if len(means) > 1:
            return []
    (mu,) = means
    return [int(j) for j in np.nonzero(live)[0] if Fraction(float(g[j])) == mu]


def _group_means_differ(g: np.ndarray, inv: np.ndarray, n_groups: int) -> bool:
    """True when two groups of ``g`` (group k: ``inv == k``) certainly have different means,
    decided in float64 with a rigorous bound; False means "maybe equal" (the exact test decides).

    Each group sum is a sum of n_k floats, within ``1.05 n_k u sum|g|`` whatever order numpy
    adds them in (u = 2**-53, n_k u < 0.01); the mean is that over n_k, one more rounding."""
    sums = np.bincount(inv, weights=g, minlength=n_groups)
    abs_sums = np.bincount(inv, weights=np.abs(g), minlength=n_groups)
    counts = np.bincount(inv, minlength=n_groups).astype(np.float64)
    if counts.max() * 2.0**-53 >= 0.01 or not np.all(np.isfinite(abs_sums)):
        return False
    means = sums / counts
    err = (abs_sums * (1.05 * counts * 2.0**-53) / counts + np.abs(means) * 2.0**-52
           + 2.0**-1070) * (1 + 2.0**-40)
    return bool((means - err).max() > (means + err).min())


class FloatLabels:
    """Dense labels that are floats (exact as given)."""

    def __init__(self, y: np.ndarray):
        self.y = y

    def nonzero(self, idx: np.ndarray) -> np.ndarray:
        return self.y[idx] != 0

    def sign(self, idx: np.ndarray) -> np.ndarray:
        return np.sign(self.y[idx]).astype(int)

    def zero_sum_rows(self, idx: np.ndarray) -> np.ndarray:
        return exact_sum_is_zero(self.y[idx]) if len(idx) else np.zeros(0, dtype=bool)

    def value(self, i: int, j: int) -> Fraction:
        return Fraction(float(self.y[i, j]))

    def row_sum(self, i: int) -> Fraction:
        return sum((Fraction(float(v)) for v in self.y[i]), Fraction(0))


class ExactLabels(FloatLabels):
    """Dense labels given exactly as Fractions (object array; 0 for most entries)."""

    def __init__(self, q: np.ndarray):
        self.q = q
        self.y = np.array([[float(v) for v in row] for row in q]).reshape(q.shape)

    def subset(self, rows: np.ndarray) -> ExactLabels:
        return ExactLabels(self.q[rows])

    def sign(self, idx: np.ndarray) -> np.ndarray:
        return np.array([[(v > 0) - (v < 0) for v in row] for row in self.q[idx]],
                        dtype=int).reshape(len(idx), self.q.shape[1])

    def nonzero(self, idx: np.ndarray) -> np.ndarray:
        return self.sign(idx) != 0

    def zero_sum_rows(self, idx: np.ndarray) -> np.ndarray:
        return np.array([self.row_sum(i) == 0 for i in idx], dtype=bool)

    def value(self, i: int, j: int) -> Fraction:
        return Fraction(self.q[i, j])

    def row_sum(self, i: int) -> Fraction:
        return Fraction(sum(self.q[i].tolist(), Fraction(0)))


def labels_of(p: Problem) -> FloatLabels:
    q = p.extra.get("q_exact")
    if q is not None:
        return q
    assert p.y is not None
    return FloatLabels(p.y)


# --------------------------------------------------------------------------- numeric tiers

def _evaluate(B: _backends.Backend, p: Problem, rows: Rows, idx: np.ndarray) -> _kernels.Out:
    # Overflow or NaN inside a tier only makes its bound infinite or NaN, which fails Ziv's
    # test and escalates the element: not worth a warning.
    with np.errstate(all="ignore"):
        t = _kernels.terms(B, rows)
        return _kernels.KERNELS[p.op](t, rows, *p.kernel_args(idx))


def _decide_wide(B: _backends.Backend, v: Any, err: Any, sign: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ziv's test for (hi, lo, direction) from a vectorised backend value and error bound.

    Most elements are decided in float64 after three conversions (``_decide_wide_f64``); the
    rest (h zero, subnormal or beyond float64's range, or not decided there) go through the
    test in the backend's own arithmetic (``_decide_wide_backend``)."""
    v, err = np.asarray(v), np.broadcast_to(np.asarray(err), np.shape(v))
    sign = np.broadcast_to(sign, np.shape(v))
    hi, lo, direction, ok, h = _decide_wide_f64(B, v, err)
    rest = ~ok
    if rest.any():
        h2, l2, d2, ok2 = _decide_wide_backend(B, v[rest], err[rest], sign[rest], h[rest])
        hi[rest], lo[rest], direction[rest], ok[rest] = h2, l2, d2, ok2
    return hi, lo, direction, ok


def _decide_wide_f64(B: _backends.Backend, v: Any, err: Any
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The test of ``_decide_wide`` done in float64, for candidates h with 2**-1021 <= |h| <
    max (normal, half gaps exact in float64); returns (hi, lo, direction, ok, h).

    r = v - h is formed in the backend (exact by Sterbenz's lemma when h is within a factor 2
    of v; in any case within u_B |r|), then lo = to_f64(r) and e = to_f64(err), both at most an
    ulp away (a faithful conversion suffices). So the exact value minus h lies within
    ``lo +- E`` with E = e (1 + 2**-50) + |lo| (2**-52 + 2**-110) + 2**-1073, rounded up by a
    slack factor; every comparison below is between float64 numbers, which rounding the
    operands of (monotonic) cannot flip. Accepted elements are certified exactly as by the
    backend test, so the results are the same values whichever test accepts them."""
    with np.errstate(all="ignore"):
        h = B.to_f64(v)
        normal = np.isfinite(h) & (np.abs(h) >= 2.0**-1021) & (np.abs(h) < _F64_MAX)
        hs = np.where(normal, h, 1.0)
        r = v - B.convert(hs)
        lo = B.to_f64(r)
        e = B.to_f64(err)
        E = (e * (1 + 2.0**-50) + np.abs(lo) * (2.0**-52 + 2.0**-110) + 2.0**-1073) * (
            1 + 2.0**-40)
        up_half = (np.nextafter(hs, np.inf) - hs) * 0.5
        down_half = (hs - np.nextafter(hs, -np.inf)) * 0.5
        inside = (lo + E < up_half) & (lo - E > -down_half)
        direction = np.where(lo - E > 0, 1, np.where(lo + E < 0, -1, 0)).astype(np.int8)
        ok_lo = E * (1 + 2.0**-40) <= np.abs(hs) * _TWO_M101
        ok = normal & inside & (direction != 0) & ok_lo
    return (np.where(ok, hs, 0.0), np.where(ok, lo, 0.0), np.where(ok, direction, 0).astype(
        np.int8), np.asarray(ok, dtype=bool), h)


_F64_MAX = float(np.finfo(np.float64).max)


def _decide_wide_backend(B: _backends.Backend, v: Any, err: Any, sign: np.ndarray,
                         h: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ziv's test for (hi, lo, direction) in the backend's arithmetic (see ``_decide_wide``).

    With h the backend's float64 conversion of v and r = v - h (exact), the exact value rounds
    to h when r - err and r + err both lie strictly inside (-half gap below h, +half gap above
    h); its direction is sign(r) when the interval [r - err, r + err] excludes 0. A conversion
    that is not the nearest float64 simply fails the test and escalates.
    """
    u8 = B.u_b() * 8
    err = err + np.abs(v) * u8  # covers the roundings of r - err and r + err below
    if h is None:
        h = B.to_f64(v)
    fin = np.isfinite(h)
    hs = np.where(fin, h, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        up = np.nextafter(hs, np.inf) - hs  # exact gaps (powers of two) in float64
        down = hs - np.nextafter(hs, -np.inf)
    # half gaps in the backend (2**-1075 is not a float64); overflow threshold above max
    up_half = B.convert(np.where(np.isinf(up), 2.0**970, up)) * 0.5
    up_half = np.where(np.isinf(up), up_half * 2, up_half)
    down_half = B.convert(np.where(np.isinf(down), 2.0**970, down)) * 0.5
    down_half = np.where(np.isinf(down), down_half * 2, down_half)
    r = v - B.convert(hs)
    r_lo, r_hi = r - err, r + err
    ok_hi = fin & (r_lo > -down_half) & (r_hi < up_half)
    direction = np.where(r_lo > 0, 1, np.where(r_hi < 0, -1, 0)).astype(np.int8)
    zero_h = hs == 0
    direction = np.where(zero_h & (sign != 0), sign, direction).astype(np.int8)
    hs = np.where(zero_h & (direction < 0), -0.0, hs)
    lo = np.where(zero_h, 0.0, B.to_f64(r))
    ok_lo = (err <= np.abs(v) * _TWO_M101) | (np.abs(hs) < _F64_TINY)
    ok = ok_hi & (direction != 0) & ok_lo
    # beyond float64's range: decided when the whole interval is past the overflow threshold
    thr = B.convert(np.array(np.finfo(np.float64).max)) + B.convert(np.array(2.0**970))
    over_pos = (~fin | (np.abs(hs) == np.finfo(np.float64).max)) & (v - err >= thr)
    over_neg = (~fin | (np.abs(hs) == np.finfo(np.float64).max)) & (v + err <= -thr)
    hi = np.where(over_pos, np.inf, np.where(over_neg, -np.inf, hs))
    direction = np.where(over_pos, -1, np.where(over_neg, 1, direction)).astype(np.int8)
    lo = np.where(over_pos | over_neg, 0.0, lo)
    return hi, lo, direction, np.asarray(ok | over_pos | over_neg, dtype=bool)


def _rn64_mpf(v: Any) -> float:
    """Correctly rounded float64 of an mpf (subnormals via exact integer division)."""
    if v == 0:
        return 0.0
    sign, man, exp, _ = v._mpf_  # man is the magnitude; the sign is separate
    top = int(exp) + int(man).bit_length()  # 2^(top-1) <= |v| < 2^top
    if top < -1100:  # below half the smallest subnormal (2^-1075): a signed zero
        return -0.0 if v < 0 else 0.0
    if top > 1100:
        return -np.inf if v < 0 else np.inf
    if -1000 < top < 1000:
        return float(mpmath.libmp.to_float(v._mpf_, rnd="n"))
    magnitude = Fraction(int(man)) * (Fraction(2) ** int(exp))
    return round_fraction(-magnitude if sign else magnitude)[0]


_F64_THRESHOLD = mpmath.mpf(np.finfo(np.float64).max) + mpmath.ldexp(1, 970)


def _decide_mp(v: Any, err: Any, sign: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ziv's test for mpmath values, element by element.

    The same test as ``_decide_wide`` on r = v - hi, formed exactly (v may be an exact sum of
    the form float + tiny), so that a zero error bound decides exact values too.
    """
    flat_v = np.asarray(v, dtype=object).ravel()
    flat_e = np.broadcast_to(np.asarray(err, dtype=object), np.shape(v)).ravel()
    flat_s = np.broadcast_to(sign, np.shape(v)).ravel()
    n = len(flat_v)
    hi, lo = np.zeros(n), np.zeros(n)
    direction = np.zeros(n, dtype=np.int8)
    ok = np.zeros(n, dtype=bool)
    add = _backends.mp_exact_add
    for k in range(n):
        val, e = flat_v[k], abs(flat_e[k]) * 1.001
        h = _rn64_mpf(val)
        hi[k] = h
        if np.isinf(h):
            if add(abs(val), -e) >= _F64_THRESHOLD:
                direction[k], ok[k] = (-1 if h > 0 else 1), True
            continue
        r = add(val, -mpmath.mpf(h))
        up = mpmath.mpf(float(np.nextafter(h, np.inf)) - h) / 2 if abs(h) < np.finfo(
            np.float64).max else _F64_THRESHOLD - abs(mpmath.mpf(h))
        down = mpmath.mpf(h - float(np.nextafter(h, -np.inf))) / 2 if abs(h) < np.finfo(
            np.float64).max else _F64_THRESHOLD - abs(mpmath.mpf(h))
        if not (add(r, -e) > -down and add(r, e) < up):
            continue
        if abs(r) > e:
            d = 1 if r > 0 else -1
        elif e == 0:
            d = 0  # exact
        elif h == 0 and flat_s[k] != 0:
            d = int(flat_s[k])
        else:
            continue
        if h == 0:
            hi[k] = -0.0 if d < 0 else 0.0
        direction[k] = d
        lo[k] = _rn64_mpf(r) if h != 0 else 0.0
        ok[k] = abs(h) < _F64_TINY or e <= abs(val) * _TWO_M101
    shape = np.shape(v)
    return hi.reshape(shape), lo.reshape(shape), direction.reshape(shape), ok.reshape(shape)


def _rn_from_float64(a: np.ndarray, fmt: formats.Format) -> np.ndarray:
    """RN_fmt of float64 values. numpy's float64 -> float32 (hardware) and -> float16
    (npy_double_to_half) casts round once, correctly (tests/references/test_engine.py checks
    them against round_exact on ties and subnormals); bfloat16 goes through round_exact."""
    if fmt.name in ("float32", "float16"):
        with np.errstate(over="ignore"):
            return a.astype(fmt.dtype)
    return formats.round_exact(a, np.zeros(a.shape, dtype=np.int8), fmt.dtype)


def _decide_narrow(v: np.ndarray, err: np.ndarray, sign: np.ndarray, fmt: formats.Format
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Ziv's test for RN_fmt(exact) from a float64 value and bound (tier 1)."""
    with np.errstate(invalid="ignore", over="ignore"):
        e2 = err * (1 + 2.0**-40) + np.abs(v) * 2.0**-50 + 2.0**-1070
        lower, upper = v - e2, v + e2
    lower = np.where((sign > 0) & (lower <= 0), 0.0, lower)
    upper = np.where((sign < 0) & (upper >= 0), -0.0, upper)
    rl = _rn_from_float64(lower, fmt)
    ru = _rn_from_float64(upper, fmt)
    bits = rl.view(np.uint16 if rl.itemsize == 2 else np.uint32)
    ok = (bits == ru.view(bits.dtype)) & np.isfinite(v) & np.isfinite(e2)
    return rl, ok


# --------------------------------------------------------------------------- drivers

@dataclass
class _Prepared:
    regular_idx: np.ndarray
    rows: Rows
    settled_hi: np.ndarray
    settled_lo: np.ndarray
    settled_dir: np.ndarray
    settled: np.ndarray  # bool, out_shape
    exact_values: dict[tuple[int, ...], Any]  # exact overrides on regular rows, by position


def _prepare(p: Problem) -> _Prepared:
    shape = p.out_shape
    hi = np.zeros(shape)
    lo = np.zeros(shape)
    direction = np.zeros(shape, dtype=np.int8)
    settled = np.zeros(shape, dtype=bool)
    regular, special = _special_rows(p)
    for kind, mask in special.items():
        hi[mask] = _special_value(p.op, kind)
        settled[mask] = True
    idx = np.nonzero(regular)[0]
    rows = _kernels.make_rows(p.x[idx])
    if p.op == "softmax_cross_entropy_grad":
        p.extra["c_hi"], p.extra["c_lo"], p.extra["c_err"] = _c_max(p)
    if p.op == "log_softmax_vjp":
        assert p.g is not None
        p.extra["gs_hi"], p.extra["gs_lo"], p.extra["gs_err"] = exact_row_sums(p.g)
    ex = _exact_overrides(p, rows, idx)
    exact_values: dict[tuple[int, ...], Any] = {}
    for pos in zip(*np.nonzero(ex != None), strict=True):  # noqa: E711 (object array)
        full_pos = (int(idx[pos[0]]),) + tuple(int(k) for k in pos[1:])
        hi[full_pos], lo[full_pos], direction[full_pos] = round_fraction(ex[pos])
        settled[full_pos] = True
        value = ex[pos]
        exact_values[full_pos] = value if isinstance(value, Fraction) else Fraction(value) \
            if np.isfinite(value) else value
    return _Prepared(idx, rows, hi, lo, direction, settled, exact_values)


def _c_max(p: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sum y) - y_i K at maximum entries as hi + lo within err (0 where exact); see
    dense_ce_grad."""
    assert p.y is not None
    hi, lo, err = np.zeros(p.x.shape), np.zeros(p.x.shape), np.zeros(p.x.shape)
    if not p.x.size:
        return hi, lo, err
    exact_q = p.extra.get("q_exact")  # Fractions for labels that are not floats (cross_entropy)
    finite = np.isfinite(p.x)
    m = np.where(finite, p.x, -np.inf).max(axis=-1, keepdims=True)
    is_max = (p.x == m) & finite
    labels = exact_q if exact_q is not None else FloatLabels(p.y)
    row_sums: dict[int, Fraction] = {}  # exact sum y per row, once: O(C) per row, not per entry
    counts = is_max.sum(axis=-1)
    for i, j in zip(*np.nonzero(is_max), strict=True):
        k = int(counts[i])
        if i not in row_sums:
            row_sums[i] = labels.row_sum(int(i))
        c = row_sums[i] - labels.value(int(i), int(j)) * k
        hi[i, j], lo[i, j], _ = round_fraction(c)
        rest = c - Fraction(hi[i, j]) - Fraction(lo[i, j]) if np.isfinite(hi[i, j]) else 0
        err[i, j] = 2 * abs(float(rest))
    return hi, lo, err


def _pending_rows(prep: _Prepared, todo: np.ndarray) -> np.ndarray:
    """Positions (within the regular rows) of rows that still have undecided elements."""
    sub = todo[prep.regular_idx]
    if sub.ndim == 2:
        sub = sub.any(axis=-1)
    return np.nonzero(sub)[0]


TIERS = ("float64", "binary128", "arb", "mpmath")
_ENABLED: frozenset[str] = frozenset(TIERS)  # see tiers(); process-global, like mpmath's prec


def _row_status(prep: _Prepared, special_rows: np.ndarray) -> dict[str, int]:
    """Rows settled before any numeric tier: special rows, and rows whose every element is an
    exact value (structure)."""
    settled = prep.settled[prep.regular_idx]
    if settled.ndim == 2:
        settled = settled.all(axis=-1)
    return {"special": int(special_rows.sum()), "exact": int(settled.sum())}


def _add(counts: dict[str, int], name: str, n: int) -> None:
    if n:
        counts[name] = counts.get(name, 0) + int(n)


def solve_wide(p: Problem, mpmath_only: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """hi, lo, direction and the undecided mask for every output element.

    ``mpmath_only`` skips the binary128 and Arb tiers: the plain mpmath path that the fast
    path must reproduce bit for bit (tests, and the reference benchmark's baseline).
    """
    hi, lo, direction, undecided, _ = solve_wide_counted(p, mpmath_only)
    return hi, lo, direction, undecided


def solve_wide_counted(p: Problem, mpmath_only: bool = False
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                  dict[str, int]]:
    """``solve_wide`` plus the number of rows decided by each tier (``special``: the
    special-value table; ``exact``: exact values throughout; then ``binary128``, ``arb``,
    ``mpmath``; ``undecided``: rows left with an undecided element at the precision cap)."""
    prep = _prepare(p)
    hi, lo, direction = prep.settled_hi, prep.settled_lo, prep.settled_dir
    todo = ~prep.settled
    counts = _row_status(prep, ~_regular_mask(p, prep))
    gaps = prep.rows.min_tail_gap()
    enabled = frozenset({"mpmath"}) if mpmath_only else _ENABLED
    stages: list[tuple[str, Any, float]] = []
    if "binary128" in enabled:
        stages.append(("binary128", _backends.QUAD, _backends.QUAD.min_exp_arg))
    if "arb" in enabled:
        for prec in _arb.PRECISIONS:
            stages.append(("arb", prec, -np.inf))
    if "mpmath" in enabled:
        prec = MP_START_PREC
        while prec <= MP_MAX_PREC:
            stages.append(("mpmath", _backends.mpmath_backend(prec), -np.inf))
            prec *= 2
    last = None
    for name, B, min_gap in stages:
        pos = _pending_rows(prep, todo)
        pos = pos[gaps[pos] >= min_gap]
        if not len(pos):
            continue
        full = prep.regular_idx[pos]
        if name == "arb":
            h, l_, d, ok = _arb.solve(p, prep.rows.take(pos), full, todo[full], B)
        else:
            with mpmath.workprec(B.prec_bits):
                v, err, sign = _evaluate(B, p, prep.rows.take(pos), full)
                h, l_, d, ok = (_decide_mp(v, err, sign) if name == "mpmath"
                                else _decide_wide(B, v, err, sign))
        want = todo[full] & ok
        hi[full] = np.where(want, h, hi[full])
        lo[full] = np.where(want, l_, lo[full])
        direction[full] = np.where(want, d, direction[full])
        before = todo[full]
        todo[full] &= ~ok
        after = todo[full]
        if after.ndim == 2:
            before, after = before.any(axis=-1), after.any(axis=-1)
        _add(counts, name, int((before & ~after).sum()))
        last = (h, l_, d, full)
    undecided = todo.copy()
    if undecided.any() and last is not None:  # precision cap reached: the best estimate, flagged
        h, l_, d, full = last
        und = undecided[full]
        hi[full] = np.where(und, h, hi[full])
        lo[full] = np.where(und, l_, lo[full])
        direction[full] = np.where(und, d, direction[full])
    _add(counts, "undecided", len(_pending_rows(prep, todo)))
    return hi, lo, direction, undecided, {k: v for k, v in counts.items() if v}


def _regular_mask(p: Problem, prep: _Prepared) -> np.ndarray:
    mask = np.zeros(len(p.x), dtype=bool)
    mask[prep.regular_idx] = True
    return mask


def solve_narrow(p: Problem, fmt: formats.Format) -> tuple[np.ndarray, np.ndarray]:
    """Tier 1: values correctly rounded to ``fmt`` where float64 decides them, and the mask."""
    out, done, _ = solve_narrow_counted(p, fmt)
    return out, done


def solve_narrow_counted(p: Problem, fmt: formats.Format
                         ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """``solve_narrow`` plus the rows settled before tier 1 and the rows tier 1 decided."""
    prep = _prepare(p)
    out = np.zeros(prep.settled.shape, dtype=fmt.dtype)
    done = prep.settled.copy()
    counts = _row_status(prep, ~_regular_mask(p, prep))
    if done.any():
        out[done] = formats.round_exact(prep.settled_hi[done], prep.settled_dir[done], fmt.dtype)
    gaps = prep.rows.min_tail_gap()
    pos = _pending_rows(prep, ~done)  # rows settled by structure need no evaluation
    pos = pos[gaps[pos] >= _backends.FLOAT64.min_exp_arg]
    if "float64" not in _ENABLED:
        pos = pos[:0]
    if len(pos):
        with np.errstate(all="ignore"):
            v, err, sign = _evaluate(_backends.FLOAT64, p, prep.rows.take(pos),
                                     prep.regular_idx[pos])
        vals, ok = _decide_narrow(v, err, sign, fmt)
        full = prep.regular_idx[pos]
        want = ~done[full] & ok
        out[full] = np.where(want, vals, out[full])
        done[full] |= ok
        rows_done = done[full].all(axis=-1) if done.ndim == 2 else done[full]
        _add(counts, "float64", int(rows_done.sum()))
    return out, done, {k: v for k, v in counts.items() if v}


@contextlib.contextmanager
def tiers(*names: str) -> Iterator[None]:
    """Within this block only the named tiers run (of ``TIERS``; the structural ones, special
    rows and exact values, always do). Process-global: for tests and benchmarks."""
    global _ENABLED
    unknown = set(names) - set(TIERS)
    if unknown:
        raise ValueError(f"unknown tiers {sorted(unknown)}; choose from {TIERS}")
    saved, _ENABLED = _ENABLED, frozenset(names)
    try:
        yield
    finally:
        _ENABLED = saved


@contextlib.contextmanager
def plain_mpmath_path() -> Iterator[None]:
    """Within this block every value comes from the mpmath tier alone (no float64, binary128 or
    Arb tier): the baseline the fast path must match bit for bit, and the benchmark's."""
    with tiers("mpmath"):
        yield


def solve_total(p: Problem) -> tuple[float, float, int, bool]:
    """Sum over rows of a per-row op (a reduction), decided like any other value."""
    prep = _prepare(p)
    settled_rows = prep.settled
    specials = prep.settled_hi[settled_rows & ~np.isfinite(prep.settled_hi)]
    if specials.size:  # NaN or infinite rows decide the total by IEEE rules
        total = float(np.sum(specials))
        return total, 0.0, 0, False
    exact = prep.exact_values
    numeric = np.nonzero(~settled_rows[prep.regular_idx])[0]
    if not len(numeric):
        return (*round_fraction(sum(exact.values(), Fraction(0))), False)
    gaps = prep.rows.min_tail_gap()
    backends = ([_backends.QUAD] if gaps[numeric].min() >= _backends.QUAD.min_exp_arg
                and "binary128" in _ENABLED else [])
    prec = MP_START_PREC
    while prec <= MP_MAX_PREC:  # the Arb tier does not do totals: mpmath whatever is enabled
        backends.append(_backends.mpmath_backend(prec))
        prec *= 2
    rows = prep.rows.take(numeric)
    for B in backends:
        with mpmath.workprec(B.prec_bits):
            v, err, _ = _evaluate(B, p, rows, prep.regular_idx[numeric])
            v_tot = v.sum()
            err_tot = err.sum() + np.abs(v).sum() * (B.u_b() * (1.01 * (len(v) + len(exact))))
            for q in exact.values():
                qv, q_err = _backend_fraction(B, q)
                v_tot = v_tot + qv
                err_tot = err_tot + q_err + np.abs(qv) * B.u_b()
            vt = np.asarray(v_tot).reshape(1)
            et = np.asarray(err_tot * SAFETY_TOTAL).reshape(1)
            sg = np.zeros(1, dtype=np.int8)
            h, l_, d, ok = (_decide_mp(vt, et, sg) if B.name.startswith("mpmath")
                            else _decide_wide(B, vt, et, sg))
        if ok[0]:
            break
    return float(h[0]), float(l_[0]), int(d[0]), not bool(ok[0])


SAFETY_TOTAL = 1.01


def _backend_fraction(B: _backends.Backend, q: Fraction) -> tuple[Any, Any]:
    """A backend value for an exact rational and its error bound."""
    if B.name.startswith("mpmath"):
        v = mpmath.mpf(q.numerator) / q.denominator
        return v, abs(v) * B.u_b() * 2
    hi, lo, _ = round_fraction(q)
    v = B.convert(np.array(hi)) + B.convert(np.array(lo))
    return v, np.abs(v) * (B.u_b() * 2 + 2.0**-105)
