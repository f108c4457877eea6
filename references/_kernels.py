"""The reference formulas with a certified error bound, written once for every backend.

Each kernel takes the *regular* rows of a problem (no NaN, no +inf, at least one finite logit;
the special rows are settled in ``_special``) and returns, per output element, a value ``v``, an
absolute error bound ``err`` (``|v - exact| <= err``) and a sign hint (+1/-1 where the exact
value's sign is known from the structure, 0 otherwise), all as backend arrays.

Error analysis (standard model: every +, -, *, / rounds with relative error <= u; exp, log and
log1p are within phi*u; n = number of classes; a row sum of n terms errs by at most
sum_factor(n)*u*sum|terms|, about 2*sqrt(n)*u (rowsum)):
  d_j = x_j - m        exact, as the TwoSum pair (dh, dl)
  e_j = e^{d_j}        exp(dh)*(1 + dl): rel. error <= eE = (phi + 3) u  (|dl| <= u|dh|, so the
                       dropped dl^2/2 is below u while |dh| < 2^26)
  T = sum of tail e_j  (all positive, any order) rel. error <= eT = eE + sum_factor(n) u
  S = K + T            rel. error <= eS = eT + u
  L = log K + log1p(T/K) = log S, both terms >= 0: rel. error <= eL = eT + (phi + 5) u
  p_i = e_i / S        rel. error <= eP = eE + eS + 2u
  l_i = (dh_i - L) + dl_i: both parts <= 0, so no cancellation: abs. error <= eL*L + 2u|l_i|
These forms never subtract nearly equal quantities except where the exact result is itself a
difference (logsumexp near 0, gradients); there the bound is absolute and the caller raises the
precision until the rounding is decided (Ziv's strategy).

Operand order: the scalar error terms (u, eE, eT, eS, eL, eP) come after the arrays they
multiply or add to. With the mpmath backend, ``mpf * ndarray`` first makes mpmath try to convert
the array, formatting all of it for the error message it then discards (about 10x slower than
``ndarray * mpf``); the results are the same either way (IEEE and mpmath + and * commute).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from references._backends import Array, Backend, two_sum

SAFETY = 1.01  # covers the rounding of the bound computations themselves


@dataclass
class Rows:
    """Regular rows of a problem, as exact float64 values (class axis last)."""

    x: np.ndarray  # (n, C) float64; -inf marks masked entries
    m: np.ndarray  # (n,) maximum of each row
    is_max: np.ndarray  # (n, C) bool
    is_tail: np.ndarray  # (n, C) bool: finite and below the maximum
    is_masked: np.ndarray  # (n, C) bool: -inf entries
    K: np.ndarray  # (n,) number of entries equal to the maximum

    @property
    def n_classes(self) -> int:
        return int(self.x.shape[-1])

    def take(self, idx: np.ndarray) -> Rows:
        return Rows(self.x[idx], self.m[idx], self.is_max[idx], self.is_tail[idx],
                    self.is_masked[idx], self.K[idx])

    def min_tail_gap(self) -> np.ndarray:
        """Smallest d_j over the tail of each row (0 when there is no tail), in float64."""
        with np.errstate(over="ignore", invalid="ignore"):
            d = np.where(self.is_tail, self.x - self.m[:, None], 0.0)
        return d.min(axis=-1) if d.shape[-1] else np.zeros(len(self.m))


def sum_factor(n: int) -> float:
    """Error factor k of ``rowsum`` over n terms: |error| <= k * u * sum|terms|."""
    if n <= 64:
        return 1.01 * max(n, 1)
    b = math.isqrt(n - 1) + 1
    return 1.01 * (b + (n + b - 1) // b)


def rowsum(a: Array, keepdims: bool = False) -> Array:
    """Sum over the last axis in blocks of ~sqrt(n): the worst-case error drops from n*u to
    2*sqrt(n)*u whatever order numpy adds in (user dtypes such as binary128 add sequentially)."""
    n = a.shape[-1]
    if n <= 64:
        s = a.sum(axis=-1, keepdims=True)
    else:
        b = math.isqrt(n - 1) + 1
        nb = (n + b - 1) // b
        if nb * b > n:
            a = np.concatenate([a, (a[..., :1] * 0).repeat(nb * b - n, axis=-1)], axis=-1)
        s = a.reshape(a.shape[:-1] + (nb, b)).sum(axis=-1).sum(axis=-1, keepdims=True)
    return s if keepdims else s[..., 0]


def make_rows(x: np.ndarray) -> Rows:
    """Row statistics of regular rows ``x`` (n, C)."""
    finite = np.isfinite(x)
    if x.size == 0:
        empty = np.zeros(x.shape, dtype=bool)
        return Rows(x, np.zeros(x.shape[0]), empty, empty, empty, np.zeros(x.shape[0], int))
    m = np.where(finite, x, -np.inf).max(axis=-1)
    is_max = x == m[:, None]
    is_masked = x == -np.inf
    is_tail = finite & ~is_max
    return Rows(x, m, is_max, is_tail, is_masked, is_max.sum(axis=-1))


@dataclass
class Terms:
    """Backend quantities shared by every op on a set of rows."""

    B: Backend
    u: Array
    n: int
    dh: Array
    dl: Array
    E: Array  # e^{d_j}; 1 at maxima, 0 at masked entries
    T: Array  # (n, 1)
    S: Array  # (n, 1)
    L: Array  # (n, 1) log S
    P: Array  # softmax
    LS: Array  # log_softmax (masked entries hold garbage; callers mask them)
    eE: Array
    eT: Array
    eS: Array
    eL: Array
    eP: Array
    M: Array  # (n, 1) row maxima


def terms(B: Backend, rows: Rows) -> Terms:
    n = max(rows.n_classes, 1)
    u = B.u_b()
    zero = B.zeros(rows.x.shape)
    one = zero + 1
    safe_x = np.where(rows.is_masked, rows.m[:, None], rows.x)
    X = B.convert(safe_x)
    M = B.convert(rows.m)[:, None]
    if B.exact_add is not None:  # mpmath: d exactly, however far apart x and m are
        dh, dl = B.exact_add(X, -M), zero
    else:  # TwoSum; the tiers using it only see rows with |d| <= 11000, so |dl| <= u|dh| << 1
        dh, dl = _two_sum_via_float64(B, safe_x, rows.m, X, M)
    e_tail = B.exp(dh) * (dl + 1)
    E = np.where(rows.is_tail, e_tail, np.where(rows.is_max, one, zero))
    T = rowsum(np.where(rows.is_tail, E, zero), keepdims=True)
    Kb = B.convert(rows.K.astype(np.float64))[:, None]
    S = Kb + T
    L = B.log1p(T / Kb)
    if np.any(rows.K > 1):
        L = np.where(rows.K[:, None] > 1, B.log(Kb) + L, L)
    eE = u * (B.phi + 3)
    eT = eE + u * sum_factor(n)
    eS = u + eT  # u is a 0-d array, eT an mpf with mpmath: see the note on operand order
    eL = eT + u * (B.phi + 5)
    eP = eE + eS + u * 2
    P = E / S
    LS = (dh - L) + dl
    return Terms(B, u, n, dh, dl, E, T, S, L, P, LS, eE, eT, eS, eL, eP, M)


def _two_sum_via_float64(B: Backend, x: np.ndarray, m: np.ndarray, X: Array, M: Array
                         ) -> tuple[Array, Array]:
    """TwoSum(X, -M) in the backend, the same pair bit for bit, from float64 when it can be.

    Where x - m is exact in float64 (float64 TwoSum leaves no remainder: always for float32
    and narrower inputs of ordinary range) it is exact in any wider backend too, so the
    backend's TwoSum gives (x - m, 0): converting the float64 difference gives that pair
    without the backend's six operations per element. Otherwise the backend's TwoSum."""
    if B.name != "float64":
        with np.errstate(all="ignore"):
            s, e = two_sum(x, -m[:, None])
        if np.all(np.isfinite(s)) and not np.any(e):
            return B.convert(s), B.zeros(x.shape)
    return two_sum(X, -M)


def _abs(a: Array) -> Array:
    return np.abs(a)


def _sign(shape: tuple[int, ...], value: int) -> np.ndarray:
    return np.full(shape, value, dtype=np.int8)


Out = tuple[Array, Array, np.ndarray]


def add_final(t: Terms, a: Array, b: Array, err: Array) -> tuple[Array, Array]:
    """a + b as the last step of a value: exact where the backend can (mpmath), so that a
    result of the form float + tiny keeps its tiny part and its rounding direction is decided;
    elsewhere rounded, and u|a + b| joins the error bound."""
    if t.B.exact_add is not None:
        return t.B.exact_add(a, b), err
    v = a + b
    return v, err + t.u * _abs(v)


def softmax(t: Terms, rows: Rows) -> Out:
    # At maximum entries p = 1/(K + T) = 1/K - T/(K S): with T tiny this is 1/K minus a tiny
    # amount, and only the tiny part carries error.
    Kb = t.B.convert(rows.K.astype(np.float64))[:, None]
    inv_k = 1 / Kb
    tail_part = t.T / (Kb * t.S)
    k_err = np.where((rows.K & (rows.K - 1)) != 0, 1, 0)[:, None]  # 1/K inexact unless 2^k
    v_max, err_max = add_final(t, inv_k, -tail_part,
                               tail_part * (t.eT + t.eS + t.u * 3) + k_err * (t.u * inv_k))
    # ... but that subtraction amplifies errors by T, so only where the tail is small
    small_tail = rows.is_max & (rows.x.shape[-1] > 0) & np.asarray(t.T < 0.5)
    v = np.where(small_tail, v_max, t.P)
    err = np.asarray(np.where(small_tail, err_max, t.P * t.eP)) * SAFETY
    return v, err, _sign(np.shape(v), 1)


def log_softmax(t: Terms, rows: Rows) -> Out:
    if t.B.exact_add is not None:  # d exact (dl = 0): d - L with nothing rounded away
        v, err = add_final(t, t.dh, -t.L, t.L * t.eL)
    else:
        v, err = add_final(t, t.dh - t.L, t.dl, t.eL * t.L + t.u * _abs(t.dh - t.L))
    return v, err * SAFETY, _sign(v.shape, -1)


def logsumexp(t: Terms, rows: Rows) -> Out:
    v, err = add_final(t, t.M[:, 0], t.L[:, 0], t.L[:, 0] * t.eL)
    return v, err * SAFETY, _sign(v.shape, 0)


_neg_exact_ufunc = np.frompyfunc(lambda v: mpmath.fneg(v, exact=True), 1, 1)


def _neg_exact(a: Array) -> Array:
    """-a for mpmath values without rounding to the working precision."""
    return np.asarray(_neg_exact_ufunc(a), dtype=object)


def _pick(a: Array, labels: np.ndarray) -> Array:
    return np.take_along_axis(a, labels[:, None], axis=-1)[:, 0]


def sparse_ce(t: Terms, rows: Rows, labels: np.ndarray) -> Out:
    # -l_t = (m - x_t) + L: both terms >= 0.
    if t.B.exact_add is not None:
        # m - x_t exactly: mpmath's unary minus would round d (up to ~2100 bits) to the working
        # precision, losing the -1 of max - 1 (and the direction of its sum with a tiny L)
        v, err = add_final(t, t.L[:, 0], _neg_exact(_pick(t.dh, labels)), t.L[:, 0] * t.eL)
    else:
        a = t.L[:, 0] - _pick(t.dh, labels)
        v, err = add_final(t, a, -_pick(t.dl, labels), t.eL * t.L[:, 0] + t.u * _abs(a))
    return v, err * SAFETY, _sign(v.shape, 1)


def _pair(t: Terms, hi: np.ndarray, lo: np.ndarray | None, err: np.ndarray | None,
          keep: np.ndarray | None = None) -> tuple[Array, Array | float]:
    """Backend value of hi + lo (an exact quantity to within ``err`` absolute) and its bound.

    The backend adds hi + lo with one rounding (u|value|) where lo is nonzero."""
    if keep is not None:
        hi = np.where(keep, hi, 0.0)
        lo = None if lo is None else np.where(keep, lo, 0.0)
        err = None if err is None else np.where(keep, err, 0.0)
    Y = t.B.convert(hi)
    if lo is None:
        return Y, 0.0
    if t.B.exact_add is not None:
        Y, E = t.B.exact_add(Y, t.B.convert(lo)), t.B.zeros(hi.shape)
    else:
        Y = Y + t.B.convert(lo)
        E = t.u * _abs(Y) * (lo != 0)
    if err is not None:
        E = E + t.B.convert(err)
    return Y, E


def dense_ce(t: Terms, rows: Rows, y_hi: np.ndarray, y_lo: np.ndarray | None = None,
             y_err: np.ndarray | None = None) -> Out:
    """sum_j y_j * (-l_j) over y_j != 0 (masked entries with y_j != 0 are settled elsewhere).

    Labels arrive as y_hi + y_lo within ``y_err`` absolute (exact floats: y_lo = y_err = None).
    """
    Y, EY = _pair(t, y_hi, y_lo, y_err, keep=~rows.is_masked)
    neg_ls = -t.LS
    err_ls = t.L * t.eL + _abs(t.LS) * (t.u * 2)
    terms_ = np.where(Y != 0, Y * neg_ls, t.B.zeros(y_hi.shape))
    v = rowsum(terms_)
    absY = _abs(Y)
    mag = rowsum(absY * _abs(neg_ls))
    err = (rowsum(absY * err_ls) + mag * (t.u * (sum_factor(t.n) + 1)) + t.u * _abs(v))
    if y_lo is not None:
        err = err + rowsum(EY * (_abs(neg_ls) + err_ls))
    return v, err * SAFETY, _sign(v.shape, 0)


def logsumexp_grad(t: Terms, rows: Rows, g: np.ndarray) -> Out:
    G = t.B.convert(g)[:, None]
    v = G * t.P
    err = _abs(v) * (t.u + t.eP) * SAFETY
    s = np.sign(g)[:, None].astype(np.int8) * np.ones(v.shape, dtype=np.int8)
    return v, err, s


def softmax_vjp(t: Terms, rows: Rows, g: np.ndarray) -> Out:
    G = t.B.convert(g)
    absGP = rowsum(_abs(G) * t.P, keepdims=True)
    A = rowsum(G * t.P, keepdims=True)
    err_A = absGP * (t.eP + t.u * (sum_factor(t.n) + 1))
    D = G - A
    err_D = err_A + t.u * _abs(D)
    v = t.P * D
    err = t.P * err_D * (t.eP + 1) + t.P * t.eP * _abs(D) + _abs(v) * t.u
    # At maximum entries g_i - <g, p> = sum_j (g_i - g_j) e_j / S: summing the differences
    # keeps full relative accuracy when the tail is tiny (p_i rounds to 1 and <g, p> to g_i).
    order = np.argsort(~rows.is_max, axis=-1, kind="stable")  # maximum entries first
    n_rows = np.arange(rows.x.shape[0])
    for r in range(int(rows.K.max(initial=0))):
        col = order[:, r]
        has = rows.K > r
        gi = G[n_rows, col][:, None]
        terms_ = (gi - G) * t.E
        Dm = rowsum(terms_)
        err_Dm = rowsum(_abs(terms_)) * (t.eE + t.u * (sum_factor(t.n) + 2))
        S2 = t.S[:, 0] * t.S[:, 0]
        vm = Dm / S2
        em = err_Dm / S2 + _abs(vm) * (t.eS * 2 + t.u * 3)
        sel = np.zeros(rows.x.shape, dtype=bool)
        sel[n_rows[has], col[has]] = True
        v = np.where(sel, vm[:, None], v)
        err = np.where(sel, em[:, None], err)
    return v, err * SAFETY, _sign(v.shape, 0)


def log_softmax_vjp(t: Terms, rows: Rows, g: np.ndarray, gs_hi: np.ndarray,
                    gs_lo: np.ndarray, gs_err: np.ndarray) -> Out:
    """g - p * sum(g), with sum(g) given exactly as gs_hi + gs_lo (within gs_err)."""
    G = t.B.convert(g)
    Gs, err_Gs = _pair(t, gs_hi[:, None], gs_lo[:, None], gs_err[:, None])
    PG = t.P * Gs
    v, err = add_final(t, G, -PG, (t.P * (_abs(Gs) * t.eP + err_Gs)) * (t.eP + 1)
                       + t.u * _abs(PG))
    # At maximum entries p = 1/(K + T), so g - p sum(g) = (g - sum(g)/K) + sum(g) T / (K S):
    # a part that is exact for exact inputs plus a tiny one, which keeps the rounding direction
    # when p rounds to 1 (docs/numerics.md §4).
    Kb = t.B.convert(rows.K.astype(np.float64))[:, None]
    k_inexact = ((rows.K & (rows.K - 1)) != 0)[:, None]  # Gs / K is exact for K a power of 2
    Gs_k = Gs / Kb
    a, err_a = add_final(t, G, -Gs_k, err_Gs / Kb + t.u * _abs(Gs_k) * k_inexact)
    b = Gs * t.T / (Kb * t.S)
    err_b = _abs(b) * (t.eT + t.eS + t.u * 4) + err_Gs * t.T / (Kb * t.S)
    v_max, err_max = add_final(t, a, b, err_a + err_b)
    v = np.where(rows.is_max, v_max, v)
    err = np.asarray(np.where(rows.is_max, err_max, err)) * SAFETY
    return v, err, _sign(np.shape(v), 0)


def sparse_ce_grad(t: Terms, rows: Rows, labels: np.ndarray) -> Out:
    # p_i for i != t; at t, p_t - 1 = -(S - e_t)/S with S - e_t summed directly (no cancellation).
    at_t = np.zeros(rows.x.shape, dtype=bool)
    if rows.x.shape[0]:
        at_t[np.arange(rows.x.shape[0]), labels] = True
    B = t.B
    zero = B.zeros(rows.x.shape)
    T_excl = rowsum(np.where(rows.is_tail & ~at_t, t.E, zero), keepdims=True)
    t_is_max = rows.is_max[np.arange(len(labels)), labels] if len(labels) else np.zeros(0, bool)
    K_excl = B.convert((rows.K - t_is_max).astype(np.float64))[:, None]
    S_excl = K_excl + T_excl
    v_t = -(S_excl / t.S)
    err_t = _abs(v_t) * (t.eT + t.eS + t.u * 3)
    # label in the tail: p_t - 1 = -1 + p_t, exact where the backend allows (p_t may be tiny)
    t_tail = (rows.is_tail & at_t).any(axis=-1, keepdims=True)
    v_tail, err_tail = add_final(t, -(zero + 1), t.P, t.P * t.eP)
    v_t = np.where(t_tail, v_tail, v_t)
    err_t = np.where(t_tail, err_tail, err_t)
    v = np.where(at_t, v_t, t.P)
    err = np.where(at_t, err_t, t.P * t.eP) * SAFETY
    s = np.where(at_t, -1, 1).astype(np.int8)
    return v, err, s


def dense_ce_grad(t: Terms, rows: Rows, y_hi: np.ndarray, y_lo: np.ndarray | None = None,
                  y_err: np.ndarray | None = None, c_hi: np.ndarray | None = None,
                  c_lo: np.ndarray | None = None, c_err: np.ndarray | None = None) -> Out:
    """(sum y) p_i - y_i.

    At maximum entries the form ((sum y) - y_i K - y_i T) / S avoids the cancellation of
    (sum y) p_i against y_i when p_i is near 1; c_hi + c_lo holds (sum y) - y_i K there, within
    ``c_err`` absolute (computed exactly upstream), so that part of the error stays relative.
    """
    Y, EY = _pair(t, y_hi, y_lo, y_err)  # every entry: masked ones still count in sum y
    SY = rowsum(Y, keepdims=True)
    err_SY = rowsum(_abs(Y), keepdims=True) * (t.u * sum_factor(t.n))
    if y_lo is not None:
        err_SY = err_SY + rowsum(EY, keepdims=True)
    SP = SY * t.P
    v, err = add_final(t, SP, -Y, _abs(SY) * t.eP * t.P + err_SY * t.P + t.u * _abs(SP) + EY)
    if c_hi is not None:
        C, EC = _pair(t, c_hi, c_lo, c_err, keep=rows.is_max)
        YT = Y * t.T
        num = C - YT
        v_max = num / t.S
        err_max = ((EC + _abs(YT) * (t.eT + t.u * 2) + EY * t.T + t.u * _abs(num)) / t.S
                   + _abs(v_max) * (t.eS + t.u * 2))
        v = np.where(rows.is_max, v_max, v)
        err = np.where(rows.is_max, err_max, err)
    # masked entries: p = 0, so the value is -y exactly (settled upstream)
    return v, err * SAFETY, _sign(v.shape, 0)


KERNELS: dict[str, Any] = {
    "softmax": softmax,
    "log_softmax": log_softmax,
    "logsumexp": logsumexp,
    "sparse_softmax_cross_entropy": sparse_ce,
    "softmax_cross_entropy": dense_ce,
    "logsumexp_grad": logsumexp_grad,
    "softmax_vjp": softmax_vjp,
    "log_softmax_vjp": log_softmax_vjp,
    "sparse_softmax_cross_entropy_grad": sparse_ce_grad,
    "softmax_cross_entropy_grad": dense_ce_grad,
}
