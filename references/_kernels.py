"""The reference formulas with a certified error bound, written once for every backend.

Each kernel takes the *regular* rows of a problem (no NaN, no +inf, at least one finite logit;
the special rows are settled in ``_special``) and returns, per output element, a value ``v``, an
absolute error bound ``err`` (``|v - exact| <= err``) and a sign hint (+1/-1 where the exact
value's sign is known from the structure, 0 otherwise), all as backend arrays.

Error analysis (standard model: every +, -, *, / rounds with relative error <= u; exp, log and
log1p are within phi*u; n = number of classes; a row sum of n terms errs by at most sum_factor(n)*u*sum|terms|, about 2*sqrt(n)*u (rowsum)):
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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


import math

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
    dh, dl = two_sum(X, -M)
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
    eS = eT + u
    eL = eT + u * (B.phi + 5)
    eP = eE + eS + u * 2
    P = E / S
    LS = (dh - L) + dl
    return Terms(B, u, n, dh, dl, E, T, S, L, P, LS, eE, eT, eS, eL, eP, M)


def _abs(a: Array) -> Array:
    return np.abs(a)


def _sign(shape: tuple[int, ...], value: int) -> np.ndarray:
    return np.full(shape, value, dtype=np.int8)


Out = tuple[Array, Array, np.ndarray]


def softmax(t: Terms, rows: Rows) -> Out:
    v = t.P
    return v, t.eP * _abs(v) * SAFETY, _sign(v.shape, 1)


def log_softmax(t: Terms, rows: Rows) -> Out:
    v = t.LS
    err = (t.eL * t.L + t.u * 2 * _abs(v)) * SAFETY
    return v, err, _sign(v.shape, -1)


def logsumexp(t: Terms, rows: Rows) -> Out:
    v = (t.M + t.L)[:, 0]
    err = (t.eL * t.L[:, 0] + t.u * 2 * _abs(v)) * SAFETY
    return v, err, _sign(v.shape, 0)


def _pick(a: Array, labels: np.ndarray) -> Array:
    return np.take_along_axis(a, labels[:, None], axis=-1)[:, 0]


def sparse_ce(t: Terms, rows: Rows, labels: np.ndarray) -> Out:
    # -l_t = (m - x_t) + L: both terms >= 0.
    v = (t.L[:, 0] - _pick(t.dh, labels)) - _pick(t.dl, labels)
    err = (t.eL * t.L[:, 0] + t.u * 2 * _abs(v)) * SAFETY
    return v, err, _sign(v.shape, 1)


def _labels(t: Terms, rows: Rows, y_hi: np.ndarray, y_lo: np.ndarray | None) -> Array:
    Y = t.B.convert(np.where(rows.is_masked, 0.0, y_hi))
    if y_lo is not None:
        Y = Y + t.B.convert(np.where(rows.is_masked, 0.0, y_lo))
    return Y


def dense_ce(t: Terms, rows: Rows, y_hi: np.ndarray, y_lo: np.ndarray | None = None,
             y_rel: float = 0.0) -> Out:
    """sum_j y_j * (-l_j) over y_j != 0 (masked entries with y_j != 0 are settled elsewhere).

    Labels arrive as y_hi + y_lo with relative error ``y_rel`` (0: exact floats); the backend's
    own rounding of that sum adds u.
    """
    Y = _labels(t, rows, y_hi, y_lo)
    y_err = t.u + y_rel if y_lo is not None else 0.0
    neg_ls = -t.LS
    err_ls = t.eL * t.L + t.u * 2 * _abs(t.LS)
    terms_ = np.where(Y != 0, Y * neg_ls, t.B.zeros(y_hi.shape))
    v = rowsum(terms_)
    absY = _abs(Y)
    mag = rowsum(absY * _abs(neg_ls))
    err = (rowsum(absY * err_ls) * (y_err + 1) + mag * (t.u * (sum_factor(t.n) + 1) + y_err)
           + t.u * _abs(v)) * SAFETY
    return v, err, _sign(v.shape, 0)


def logsumexp_grad(t: Terms, rows: Rows, g: np.ndarray) -> Out:
    G = t.B.convert(g)[:, None]
    v = G * t.P
    err = (t.eP + t.u) * _abs(v) * SAFETY
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
    err = (t.P * err_D * (t.eP + 1) + t.eP * t.P * _abs(D) + t.u * _abs(v)) * SAFETY
    return v, err, _sign(v.shape, 0)


def log_softmax_vjp(t: Terms, rows: Rows, g: np.ndarray) -> Out:
    G = t.B.convert(g)
    Gs = rowsum(G, keepdims=True)
    err_Gs = rowsum(_abs(G), keepdims=True) * (t.u * sum_factor(t.n))
    PG = t.P * Gs
    v = G - PG
    err = ((t.P * (t.eP * _abs(Gs) + err_Gs)) * (t.eP + 1) + t.u * _abs(PG)
           + t.u * _abs(v)) * SAFETY
    return v, err, _sign(v.shape, 0)


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
    err_t = (t.eT + t.eS + t.u * 3) * _abs(v_t)
    v = np.where(at_t, v_t, t.P)
    err = np.where(at_t, err_t, t.eP * t.P) * SAFETY
    s = np.where(at_t, -1, 1).astype(np.int8)
    return v, err, s


def dense_ce_grad(t: Terms, rows: Rows, y_hi: np.ndarray, y_lo: np.ndarray | None = None,
                  y_rel: float = 0.0, c_hi: np.ndarray | None = None,
                  c_lo: np.ndarray | None = None) -> Out:
    """(sum y) p_i - y_i.

    At maximum entries the form ((sum y) - y_i K - y_i T) / S avoids the cancellation of
    (sum y) p_i against y_i when p_i is near 1; c_hi + c_lo holds (sum y) - y_i K there, exact
    to 2**-105 relative (computed exactly upstream), so that part of the error stays relative.
    """
    B = t.B
    Y = t.B.convert(y_hi)
    if y_lo is not None:
        Y = Y + t.B.convert(y_lo)
    y_err = t.u + y_rel if y_lo is not None else 0.0
    SY = rowsum(Y, keepdims=True)  # over every entry: masked ones still count in sum y
    err_SY = rowsum(_abs(Y), keepdims=True) * (t.u * sum_factor(t.n) + y_err)
    SP = SY * t.P
    v = SP - Y
    err = (_abs(SY) * t.eP * t.P + err_SY * t.P + t.u * _abs(SP) + y_err * _abs(Y)
           + t.u * _abs(v))
    if c_hi is not None:
        C = B.convert(np.where(rows.is_max, c_hi, 0.0))
        if c_lo is not None:
            C = C + B.convert(np.where(rows.is_max, c_lo, 0.0))
        YT = Y * t.T
        num = C - YT
        v_max = num / t.S
        err_max = ((t.u * 2 + 2.0**-105) * _abs(C) + _abs(YT) * (t.eT + t.u * 2 + y_err)
                   + t.u * _abs(num)) / t.S + _abs(v_max) * (t.eS + t.u * 2)
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
