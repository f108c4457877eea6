"""The error model: exact-enough row statistics, the componentwise model behind the verdict
limit, the Blanchard–Higham–Higham bound behind ``bound_ratio``, and the per-element ulp limits
(docs/scoring.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.vocabulary import (
    BACKWARD,
    DENSE_CE,
    DTYPE_NAMES,
    FORWARD,
    LOG_SOFTMAX,
    LOGSUMEXP,
    PER_ROW_OUTPUT_OPS,
    SOFTMAX,
    SPARSE_CE,
    TORCH_CE,
)
from references.formats import format_of, ulp

Array = npt.NDArray[Any]
F64 = npt.NDArray[np.float64]


# Per-dtype threshold T: an element is inaccurate when its error exceeds T * max(1, A), with A
# the error a correct shifted algorithm may make there, in ulps (see ulp_limits and
# docs/scoring.md for the model and the measurements behind the numbers).
# The same T for every dtype today.
THRESHOLDS: dict[str, float] = dict.fromkeys(DTYPE_NAMES, 2.0)
F32_UNIT_ROUNDOFF = 2.0**-24  # working precision of the float16/bfloat16 model


# ----------------------------------------------------------------------------- row statistics
@dataclass(frozen=True)
class Rows:
    """Exact-enough float64 facts about each logit row, for the error models.

    ``valid`` rows have no NaN and no +inf and at least one finite entry; everything else is
    NaN there. ``d = x - max`` (−inf at masked entries), ``p`` the softmax, ``tau`` the
    probability mass off the maximum, ``sigma = Σ p_i |d_i|``, ``log_s = log Σ e^{d_i}``.
    """

    x: F64  # (N, C)
    finite: npt.NDArray[np.bool_]
    valid: npt.NDArray[np.bool_]
    d: F64
    dabs: F64  # |d|, 0 at masked entries
    p: F64
    n: F64
    m: F64
    xmin: F64
    gap: F64
    tau: F64
    sigma: F64
    log_s: F64

    @property
    def pmax(self) -> F64:
        return np.asarray(np.exp(-self.log_s), dtype=np.float64)


def logit_rows(x: Array) -> Rows:
    arr = np.asarray(x)
    cols = arr.shape[-1] if arr.ndim else 1
    x2 = arr.astype(np.float64).reshape(int(np.prod(arr.shape[:-1])), cols)
    with np.errstate(all="ignore"):
        finite = np.isfinite(x2)
        valid = (~np.isnan(x2).any(axis=1) & ~(x2 == np.inf).any(axis=1) & finite.any(axis=1)
                 if cols else np.zeros(x2.shape[0], dtype=bool))
        fin_or_neg = np.where(finite, x2, -np.inf)
        fin_or_pos = np.where(finite, x2, np.inf)
        m = fin_or_neg.max(axis=1, initial=-np.inf)
        xmin = fin_or_pos.min(axis=1, initial=np.inf)
        m_safe = np.where(valid, m, 0.0)
        d = np.where(finite, x2 - m_safe[:, None], -np.inf)
        e = np.exp(d)
        k = (d == 0).sum(axis=1)
        tail = np.where(d < 0, e, 0.0).sum(axis=1)
        s = k + tail
        p = e / s[:, None]
        dabs = np.where(finite, np.abs(d), 0.0)
        nan = np.where(valid, 0.0, np.nan)
        return Rows(
            x=x2, finite=finite, valid=valid, d=d, dabs=dabs, p=p + nan[:, None],
            n=finite.sum(axis=1).astype(np.float64) + nan, m=m + nan, xmin=xmin + nan,
            gap=m - xmin + nan, tau=tail / s + nan, sigma=(p * dabs).sum(axis=1) + nan,
            log_s=np.log(s) + nan,
        )


# ------------------------------------------------------------------------------ error models
def _col(v: F64) -> F64:
    return v[:, None]


def _models(op: str, pass_: str, rows: Rows, zhat: F64, inputs: Mapping[str, Array],
            cotangent: Array | None, saved_ratio: float, subnormal: float
            ) -> tuple[F64, F64 | None]:
    """Allowed absolute error per output element, in units of the working unit roundoff.

    Returns ``(componentwise, bhh)``: the componentwise model of the recommended shifted
    algorithm (cancellation-free forms, probabilistic sqrt(n) summation) behind the verdict
    limit, and the BHH-table / project-proposal bound behind ``bound_ratio`` (``None`` where no
    bound is proposed). Shapes follow ``zhat`` viewed as (N, C) or (N,). ``saved_ratio`` is
    u_dtype / u_work: a backward pass starts from the forward output (p or log p) that autograd
    saved in the dtype, one more rounding of p_j by ``(1 + |log p_j|) u_dtype``, or by one
    subnormal spacing (``subnormal``, in units of u_work) where that is larger.
    """
    r = rows
    rn = np.sqrt(r.n)
    za = np.abs(np.where(np.isfinite(zhat), zhat, 0.0))
    with np.errstate(all="ignore"):
        ell = np.where(r.finite, r.d - _col(r.log_s), 0.0)
        e_p = r.p * (r.dabs + 2.0 + _col(r.sigma + r.tau + rn))  # |error of p_j|
        if pass_ == BACKWARD:
            e_p = e_p + np.maximum(r.p * (1.0 + np.abs(ell)) * saved_ratio, subnormal)
        # 1 - p_j: cancellation-free T/(1+T) at a dominant entry, a subtraction elsewhere.
        e_comp = np.where(r.p > 0.5, _col(r.sigma + r.tau * (3.0 + rn)), e_p + (1.0 - r.p))
        e_p_bhh = _col((r.n + 2.0 + 2.0 * r.gap) * r.pmax) * np.ones_like(r.p)
        ls_c = (r.dabs + np.abs(ell) + _col(2.0 * np.abs(r.log_s) + r.sigma
                                             + r.tau * (1.0 + rn)))
        ls_b = 2.0 * np.abs(ell) + _col(r.n + r.gap)
        fallback = 2.0 * za + np.nanmax(np.append(r.n + r.gap, 0.0))
        if op == TORCH_CE:
            return fallback, None
        if pass_ == FORWARD:
            return _forward_models(op, r, ls_c, ls_b, e_p, e_p_bhh, ell, inputs)
        g_row = row_cotangent(op, r, cotangent)
        if op == LOGSUMEXP:
            g = np.abs(_col(g_row))
            return g * e_p + za, g * e_p_bhh + za
        if op == SPARSE_CE:
            t = _targets(inputs, r)
            at_t = np.arange(r.p.shape[1])[None, :] == t[:, None]
            g = np.abs(_col(g_row))
            return (g * np.where(at_t, e_comp, e_p) + za, g * e_p_bhh + za)
        if op == DENSE_CE:
            y = np.asarray(inputs["labels"]).astype(np.float64).reshape(r.p.shape)
            s, ya = _col(y.sum(axis=1)), _col(np.abs(y).sum(axis=1))
            g = np.abs(_col(g_row))
            canc = (r.p > 0.5) & (y != 0)
            comp = g * (np.abs(s) * np.where(canc, e_comp, e_p) + rn[:, None] * ya * r.p)
            return comp + 2.0 * za, g * (np.abs(s) * e_p_bhh + _col(r.n) * ya * r.p) + za
        if cotangent is None:
            return fallback, None
        gv = np.asarray(cotangent).astype(np.float64).reshape(r.p.shape)
        ga, g1 = np.abs(gv), _col(np.abs(gv).sum(axis=1))
        canc = r.p > 0.5
        if op == SOFTMAX:
            # c = <g, p>; at a dominant entry g_j - c = g_j (1 - p_j) - sum_{i!=j} g_i p_i
            c = _col((gv * r.p).sum(axis=1))
            gp = ga * r.p
            e_all = _col((ga * e_p).sum(axis=1) + rn * gp.sum(axis=1))
            e_others = e_all - ga * e_p - _col(rn) * gp
            e_diff = np.where(canc, ga * e_comp + e_others, e_all) + np.abs(gv - c)
            comp = np.abs(gv - c) * e_p + r.p * e_diff + za
            bhh = (np.abs(gv - c) + g1) * e_p_bhh + _col(r.n * gp.sum(axis=1)) * r.p + za
            return comp, bhh
        if op == LOG_SOFTMAX:
            # g_j - p_j sum(g); at a dominant entry g_j (1 - p_j) - p_j sum_{i!=j} g_i
            s = _col(gv.sum(axis=1))
            comp = np.where(canc,
                            ga * e_comp + np.abs(s - gv) * e_p + r.p * _col(rn) * (g1 - ga) + za,
                            np.abs(s) * e_p + np.abs(r.p * s) + r.p * _col(rn) * g1) + za
            return comp, np.abs(s) * e_p_bhh + _col(r.n) * g1 * r.p + za
    return fallback, None


def _forward_models(op: str, r: Rows, ls_c: F64, ls_b: F64, e_p: F64, e_p_bhh: F64, ell: F64,
                    inputs: Mapping[str, Array]) -> tuple[F64, F64 | None]:
    rn = np.sqrt(r.n)
    if op == SOFTMAX:
        return e_p, e_p_bhh
    if op == LOG_SOFTMAX:
        return ls_c, ls_b
    if op == LOGSUMEXP:
        lse = r.m + r.log_s
        comp = np.abs(lse) + 2.0 * np.abs(r.log_s) + r.sigma + r.tau * (1.0 + rn)
        return comp, np.abs(lse + r.n - r.xmin)
    if op == SPARSE_CE:
        t = _targets(inputs, r)
        ok = (t >= 0) & (t < r.p.shape[1])
        idx = np.where(ok, t, 0)[:, None]
        pick = lambda a: np.where(ok, np.take_along_axis(a, idx, axis=1)[:, 0], np.nan)
        return pick(ls_c), pick(ls_b)
    y = np.asarray(inputs["labels"]).astype(np.float64).reshape(r.p.shape)
    ya = np.abs(y)
    nz = y != 0
    with np.errstate(all="ignore"):
        yl = np.where(nz, ya * np.abs(ell), 0.0).sum(axis=1)
        loss = np.abs(np.where(nz, -y * ell, 0.0).sum(axis=1))
        comp = np.where(nz, ya * ls_c, 0.0).sum(axis=1) + rn * yl + loss
        bhh = np.where(nz, ya * ls_b, 0.0).sum(axis=1) + r.n * yl
    return comp, bhh


def _targets(inputs: Mapping[str, Array], r: Rows) -> npt.NDArray[np.int64]:
    t = np.asarray(inputs.get("targets", inputs.get("labels")))
    return t.astype(np.int64).reshape(r.p.shape[0])


def row_cotangent(op: str, r: Rows, cotangent: Array | None) -> F64:
    if cotangent is None or op in (SOFTMAX, LOG_SOFTMAX):
        return np.ones(r.p.shape[0])
    return np.asarray(cotangent).astype(np.float64).reshape(-1)


@dataclass(frozen=True)
class Limits:
    """Per-element verdict limits and bound allowances (arrays shaped like the output).

    ``limit``: the largest acceptable error in ulps. ``allowance``/``allowance_f32acc``: the
    absolute error the bound allows (NaN where no bound applies).
    """

    limit: F64
    allowance: F64
    allowance_f32acc: F64 | None
    modelled: bool = True  # False: the generic envelope (cross_entropy), blind to lost tails


def ulp_limits(op: str, pass_: str, dtype: Any, zhat: Array, inputs: Mapping[str, Array],
               cotangent: Array | None = None) -> Limits:
    """Verdict limit (ulps) and bound allowances for each element of ``op``'s output.

    ``limit = T * max(1, A)`` with ``A`` the componentwise error model in ulps of the element;
    for float16/bfloat16 the model computes in float32 (``u = 2**-24``) and rounds once (+½).
    """
    fmt = format_of(dtype)
    z = np.asarray(zhat).astype(np.float64)
    rows = logit_rows(inputs["x"])
    shape2 = row_view_shape(z.shape, rows, op, pass_)
    z2 = z.reshape(shape2)
    low = fmt.precision < 24
    u_work = F32_UNIT_ROUNDOFF if low else fmt.unit_roundoff
    unit = ulp(z2, fmt)
    nanf = np.full(z2.shape, np.nan)
    if shape2 == _natural_shape(rows, op, pass_):
        comp, bhh = _models(op, pass_, rows, z2, inputs, cotangent,
                            fmt.unit_roundoff / u_work, fmt.min_subnormal / u_work)
    else:  # a reduced cross_entropy or an unexpected layout: the generic envelope only
        comp, bhh = 2.0 * np.abs(z2) + np.nanmax(np.append(rows.n + rows.gap, 0.0)), None
    with np.errstate(all="ignore"):
        a = comp * u_work / unit + (0.5 if low else 0.0)
        limit = THRESHOLDS[fmt.name] * np.where(np.isfinite(a), np.maximum(a, 1.0), 1.0)
        if bhh is None:
            return Limits(limit.reshape(z.shape), nanf.reshape(z.shape), None, modelled=False)
        half = 0.5 * unit
        allow = bhh * fmt.unit_roundoff + half
        f32 = bhh * F32_UNIT_ROUNDOFF + half if low else None
    return Limits(limit.reshape(z.shape), allow.reshape(z.shape),
                  None if f32 is None else f32.reshape(z.shape))


def _natural_shape(rows: Rows, op: str, pass_: str) -> tuple[int, ...]:
    n, c = rows.x.shape
    return (n,) if (op in PER_ROW_OUTPUT_OPS and pass_ == FORWARD) else (n, c)


def row_view_shape(shape: tuple[int, ...], rows: Rows, op: str, pass_: str) -> tuple[int, ...]:
    """The output seen as (rows, k): per-row outputs (N,), elementwise (N, C), else (1, size)."""
    natural = _natural_shape(rows, op, pass_)
    size = int(np.prod(shape))
    if size == int(np.prod(natural)):
        return natural
    return (1, size)
