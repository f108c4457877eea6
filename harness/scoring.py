"""Score one implementation output against the exact reference: metrics, bounds, verdict.

``score`` turns (output, reference, inputs) into the metric fields of one results record: ULP
statistics in the output dtype, the Blanchard–Higham–Higham bound ratio, invariants, special-value
counts, the element that decided the verdict (with its input row, to reproduce it), the verdict
and the accuracy ladder. Convention and error_expected cases are described ("NaN row",
"raises ValueError") and compared with ``references.special_values`` instead of being scored as
accuracy errors. The rules, thresholds and their justification are in docs/scoring.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from references import metrics
from references.formats import Format, format_of, ulp
from references.result import ReferenceResult

__all__ = [
    "ACCURACY_CLASSES",
    "ALTERNATIVES",
    "FAILURE_VERDICTS",
    "METRIC_FIELDS",
    "THRESHOLDS",
    "VERDICTS",
    "VERDICT_RANK",
    "score",
    "score_exception",
    "score_outcome",
    "ulp_limits",
]

Array = npt.NDArray[Any]
F64 = npt.NDArray[np.float64]

# ------------------------------------------------------------------------------------ verdicts
PASS = "pass"
CONVENTION_DIFFERS = "convention_differs"
FLUSHES_SUBNORMALS = "flushes_subnormals"
INACCURATE = "inaccurate"
SILENTLY_FINITE = "silently_finite"
INF_WHERE_FINITE = "inf_where_finite"
FINITE_WHERE_NAN = "finite_where_nan"
NAN_WHERE_FINITE = "nan_where_finite"
WRONG_SHAPE = "wrong_shape"
ERROR = "error"

# Verdicts the scorer gives, mildest first; the index is the rank `compare` uses. The runner's
# own outcomes (error, timeout, crash; unsupported/unavailable are not comparable) rank last.
VERDICTS: tuple[str, ...] = (
    PASS, CONVENTION_DIFFERS, FLUSHES_SUBNORMALS, INACCURATE, SILENTLY_FINITE, INF_WHERE_FINITE,
    FINITE_WHERE_NAN, NAN_WHERE_FINITE, WRONG_SHAPE, ERROR, "timeout", "crash",
)
VERDICT_RANK: dict[str, int] = {v: i for i, v in enumerate(VERDICTS)}
# convention_differs is not a failure: the output follows another documented convention.
FAILURE_VERDICTS: frozenset[str] = frozenset(VERDICTS[2:])

ACCURACY_CLASSES: tuple[str, ...] = ("correctly_rounded", "faithful", "within_bound",
                                     "outside_bound")

# Per-dtype threshold T: an element is inaccurate when its error exceeds T * max(1, A), with A
# the error a correct shifted algorithm may make there, in ulps (see ulp_limits and
# docs/scoring.md for the model and the measurements behind the numbers).
THRESHOLDS: dict[str, float] = {"float64": 2.0, "float32": 2.0, "float16": 2.0, "bfloat16": 2.0}
F32_UNIT_ROUNDOFF = 2.0**-24  # working precision of the float16/bfloat16 model
CORRECTLY_ROUNDED_SLACK = 1e-9  # the reference's hi/lo and the float64 ulp arithmetic

# Every field `score` returns (the metric part of a results record).
METRIC_FIELDS: tuple[str, ...] = (
    "verdict", "accuracy_class", "max_ulp", "p99_ulp", "mean_ulp", "max_rel", "bound_ratio",
    "bound_ratio_f32acc", "limit_ratio", "ulp_limit", "sum_err_ulp", "grad_row_sum", "counts",
    "n_scored", "worst_index", "worst_row", "expected", "exact", "got", "output_dtype",
    "convention", "convention_reference", "follows_convention", "score_message",
)

_PER_ROW_OPS = frozenset({"logsumexp", "softmax_cross_entropy", "sparse_softmax_cross_entropy",
                          "cross_entropy"})
_LOSS_OPS = frozenset({"softmax_cross_entropy", "sparse_softmax_cross_entropy", "cross_entropy"})
_WORST_ROW_MAX = 4096  # longer rows are reproduced from the case id, not stored per record


# ----------------------------------------------------------------------------- row statistics
@dataclass(frozen=True)
class _Rows:
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


def _logit_rows(x: Array) -> _Rows:
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
        return _Rows(
            x=x2, finite=finite, valid=valid, d=d, dabs=dabs, p=p + nan[:, None],
            n=finite.sum(axis=1).astype(np.float64) + nan, m=m + nan, xmin=xmin + nan,
            gap=m - xmin + nan, tau=tail / s + nan, sigma=(p * dabs).sum(axis=1) + nan,
            log_s=np.log(s) + nan,
        )


# ------------------------------------------------------------------------------ error models
def _col(v: F64) -> F64:
    return v[:, None]


def _models(op: str, pass_: str, rows: _Rows, zhat: F64, inputs: Mapping[str, Array],
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
        if pass_ == "backward":
            e_p = e_p + np.maximum(r.p * (1.0 + np.abs(ell)) * saved_ratio, subnormal)
        # 1 - p_j: cancellation-free T/(1+T) at a dominant entry, a subtraction elsewhere.
        e_comp = np.where(r.p > 0.5, _col(r.sigma + r.tau * (3.0 + rn)), e_p + (1.0 - r.p))
        e_p_bhh = _col((r.n + 2.0 + 2.0 * r.gap) * r.pmax) * np.ones_like(r.p)
        ls_c = (r.dabs + np.abs(ell) + _col(2.0 * np.abs(r.log_s) + r.sigma
                                             + r.tau * (1.0 + rn)))
        ls_b = 2.0 * np.abs(ell) + _col(r.n + r.gap)
        fallback = 2.0 * za + np.nanmax(np.append(r.n + r.gap, 0.0))
        if op == "cross_entropy":
            return fallback, None
        if pass_ == "forward":
            return _forward_models(op, r, ls_c, ls_b, e_p, e_p_bhh, ell, inputs)
        g_row = _row_cotangent(op, r, cotangent)
        if op == "logsumexp":
            g = np.abs(_col(g_row))
            return g * e_p + za, g * e_p_bhh + za
        if op == "sparse_softmax_cross_entropy":
            t = _targets(inputs, r)
            at_t = np.arange(r.p.shape[1])[None, :] == t[:, None]
            g = np.abs(_col(g_row))
            return (g * np.where(at_t, e_comp, e_p) + za, g * e_p_bhh + za)
        if op == "softmax_cross_entropy":
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
        if op == "softmax":
            # c = <g, p>; at a dominant entry g_j - c = g_j (1 - p_j) - sum_{i!=j} g_i p_i
            c = _col((gv * r.p).sum(axis=1))
            gp = ga * r.p
            e_all = _col((ga * e_p).sum(axis=1) + rn * gp.sum(axis=1))
            e_others = e_all - ga * e_p - _col(rn) * gp
            e_diff = np.where(canc, ga * e_comp + e_others, e_all) + np.abs(gv - c)
            comp = np.abs(gv - c) * e_p + r.p * e_diff + za
            bhh = (np.abs(gv - c) + g1) * e_p_bhh + _col(r.n * gp.sum(axis=1)) * r.p + za
            return comp, bhh
        if op == "log_softmax":
            # g_j - p_j sum(g); at a dominant entry g_j (1 - p_j) - p_j sum_{i!=j} g_i
            s = _col(gv.sum(axis=1))
            comp = np.where(canc,
                            ga * e_comp + np.abs(s - gv) * e_p + r.p * _col(rn) * (g1 - ga) + za,
                            np.abs(s) * e_p + np.abs(r.p * s) + r.p * _col(rn) * g1) + za
            return comp, np.abs(s) * e_p_bhh + _col(r.n) * g1 * r.p + za
    return fallback, None


def _forward_models(op: str, r: _Rows, ls_c: F64, ls_b: F64, e_p: F64, e_p_bhh: F64, ell: F64,
                    inputs: Mapping[str, Array]) -> tuple[F64, F64 | None]:
    rn = np.sqrt(r.n)
    if op == "softmax":
        return e_p, e_p_bhh
    if op == "log_softmax":
        return ls_c, ls_b
    if op == "logsumexp":
        lse = r.m + r.log_s
        comp = np.abs(lse) + 2.0 * np.abs(r.log_s) + r.sigma + r.tau * (1.0 + rn)
        return comp, np.abs(lse + r.n - r.xmin)
    if op == "sparse_softmax_cross_entropy":
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


def _targets(inputs: Mapping[str, Array], r: _Rows) -> npt.NDArray[np.int64]:
    t = np.asarray(inputs.get("targets", inputs.get("labels")))
    return t.astype(np.int64).reshape(r.p.shape[0])


def _row_cotangent(op: str, r: _Rows, cotangent: Array | None) -> F64:
    if cotangent is None or op in ("softmax", "log_softmax"):
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
    rows = _logit_rows(inputs["x"])
    shape2 = _row_view_shape(z.shape, rows, op, pass_)
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


def _natural_shape(rows: _Rows, op: str, pass_: str) -> tuple[int, ...]:
    n, c = rows.x.shape
    return (n,) if (op in _PER_ROW_OPS and pass_ == "forward") else (n, c)


def _row_view_shape(shape: tuple[int, ...], rows: _Rows, op: str, pass_: str) -> tuple[int, ...]:
    """The output seen as (rows, k): per-row outputs (N,), elementwise (N, C), else (1, size)."""
    natural = _natural_shape(rows, op, pass_)
    size = int(np.prod(shape))
    if size == int(np.prod(natural)):
        return natural
    return (1, size)


# --------------------------------------------------------------------------- conventions
# A matcher sees the output row, the input row and the row's target index (or None).
Matcher = Callable[[F64, F64, int | None], bool]


def _all(pred: Callable[[F64], npt.NDArray[np.bool_]]) -> Matcher:
    return lambda a, x, t: bool(a.size) and bool(np.all(pred(a)))


_ALL_NAN = _all(np.isnan)
_ALL_ZERO = _all(lambda a: a == 0)
_ALL_NEG_INF = _all(lambda a: a == -np.inf)


def _at_pos_inf(at_inf: float, elsewhere: float) -> Matcher:
    """Row equal to ``at_inf`` at the single +inf logit and ``elsewhere`` at the others."""

    def match(a: F64, x: F64, t: int | None) -> bool:
        hot = x == np.inf
        if a.shape != x.shape or hot.sum() != 1:
            return False
        want = np.where(hot, at_inf, elsewhere)
        return bool(np.all((a == want) | (np.isnan(a) & np.isnan(want))))

    return match


def _loss_limit_at_pos_inf(a: F64, x: F64, t: int | None) -> bool:
    """Sparse loss at its limit: 0 when the target is the single +inf logit, +inf otherwise."""
    if a.size != 1 or t is None or not 0 <= t < x.size or (x == np.inf).sum() != 1:
        return False
    return float(a[0]) == (0.0 if x[t] == np.inf else np.inf)


# (family, op, pass) -> accepted alternatives to the reference's value, as (what, matcher).
# The names follow references.special_values (and numerics §6 where the table has no row).
ALTERNATIVES: dict[tuple[str, str, str], tuple[tuple[str, Matcher], ...]] = {
    ("all_neg_inf", "softmax", "forward"): (("all 0 (safe softmax)", _ALL_ZERO),),
    ("all_neg_inf", "log_softmax", "forward"): (("all -inf", _ALL_NEG_INF),),
    **{("all_neg_inf", op, "forward"): (("0", _ALL_ZERO),) for op in sorted(_LOSS_OPS)},
    **{("all_neg_inf", op, "backward"): (("all 0", _ALL_ZERO),)
       for op in ("softmax", "log_softmax", "logsumexp", *sorted(_LOSS_OPS))},
    ("pos_inf", "softmax", "forward"): (
        ("one-hot limit", _at_pos_inf(1.0, 0.0)),
        ("TF: NaN at the +inf, 0 elsewhere", _at_pos_inf(np.nan, 0.0)),
    ),
    ("pos_inf", "log_softmax", "forward"): (
        ("limit: 0 at the +inf, -inf elsewhere", _at_pos_inf(0.0, -np.inf)),
        ("SciPy: NaN at the +inf, -inf elsewhere", _at_pos_inf(np.nan, -np.inf)),
    ),
    ("pos_inf", "sparse_softmax_cross_entropy", "forward"): (
        ("limit: 0 at the +inf target, +inf elsewhere", _loss_limit_at_pos_inf),
    ),
    ("soft_label_neg_inf_zero_label", "softmax_cross_entropy", "forward"): (
        ("NaN (plain IEEE 0 * inf)", _ALL_NAN),),
    ("soft_label_neg_inf_zero_label", "softmax_cross_entropy", "backward"): (("NaN", _ALL_NAN),),
    **{("neg_inf_at_target", op, "backward"): (("NaN", _ALL_NAN),) for op in sorted(_LOSS_OPS)},
    ("all_ignored", "cross_entropy", "forward"): (("0 (Keras masked mean)", _ALL_ZERO),),
}
# Families where raising an exception is an accepted outcome (numerics §6 rows 10 and 13).
RAISING_ACCEPTED: frozenset[str] = frozenset({"empty_axis", "labels_out_of_range"})


def _special_rows(family: str, op: str, inputs: Mapping[str, Array], rows: _Rows
                  ) -> npt.NDArray[np.bool_]:
    """Rows of the case tensor that carry the family's special situation (others are ordinary)."""
    x = rows.x
    n, c = x.shape
    if family == "all_neg_inf":
        return np.all(x == -np.inf, axis=1) if c else np.zeros(n, bool)
    if family == "pos_inf":
        return np.any(x == np.inf, axis=1)
    if family in ("labels_out_of_range", "neg_inf_at_target") and op != "softmax_cross_entropy":
        t = np.asarray(inputs.get("targets", inputs.get("labels"))).astype(np.int64).reshape(n)
        bad = (t < 0) | (t >= c)
        if family == "labels_out_of_range":
            return bad & (t != -100) if op == "cross_entropy" else bad
        at = np.take_along_axis(x, np.where(bad, 0, t)[:, None], axis=1)[:, 0]
        return ~bad & (at == -np.inf)
    if family in ("soft_label_neg_inf_zero_label", "neg_inf_at_target"):
        y = np.asarray(inputs["labels"]).astype(np.float64).reshape(x.shape)
        hit = (y == 0) if family == "soft_label_neg_inf_zero_label" else (y > 0)
        return np.any(hit & (x == -np.inf), axis=1)
    return np.ones(n, bool)  # empty_axis, all_ignored, unknown families: the whole output


def _describe(a: F64) -> str:
    """A short name for what an output row is ("NaN row", "all 0", "finite values", ...)."""
    one = a.size == 1
    if a.size == 0:
        return "empty output"
    for pred, row_name, scalar in ((np.isnan, "NaN row", "NaN"), (lambda v: v == 0, "all 0", "0"),
                                   (lambda v: v == -np.inf, "all -inf", "-inf"),
                                   (lambda v: v == np.inf, "all +inf", "+inf")):
        if np.all(pred(a)):
            return scalar if one else row_name
    if np.all(np.isfinite(a)):
        return "finite value" if one else "finite values"
    shown = ", ".join(_num(v) for v in a[:4]) + (", ..." if a.size > 4 else "")
    return f"[{shown}]"


def _num(v: float) -> str:
    return "nan" if math.isnan(v) else repr(float(v))


def _same_pattern(a: F64, z: F64) -> bool:
    """Same special values at the same places (finite entries are judged by accuracy)."""
    if a.shape != z.shape:
        return False
    both_nan = np.isnan(a) & np.isnan(z)
    both_finite = np.isfinite(a) & np.isfinite(z)
    return bool(np.all(both_nan | both_finite | (a == z)))


# --------------------------------------------------------------------------------- scoring
def _empty_fields(**extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict.fromkeys(METRIC_FIELDS)
    fields["counts"] = {}
    fields.update(extra)
    return fields


def _f(v: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _value_str(v: Any, fmt: Format) -> str:
    if fmt.name == "bfloat16":
        return _num(float(v))
    return "nan" if np.isnan(v) else str(v)


def _row_list(row: F64) -> list[float | str]:
    """An input row for JSON: floats, non-finite values as the strings "inf", "-inf", "nan"."""
    return [float(v) if math.isfinite(v) else _num(v) for v in row]


def score(*, op: str, pass_: str, dtype: str, actual: Array, reference: ReferenceResult | None,
          inputs: Mapping[str, Array], case_status: str, family: str,
          cotangent: Array | None = None) -> dict[str, Any]:
    """The metric fields of one results record (``METRIC_FIELDS``), JSON-serialisable.

    ``inputs`` holds the case's dtype-rounded arrays (``x``; ``labels`` dense; ``targets``
    indices); the backward cotangent comes as ``cotangent`` or ``inputs["cotangent"]``.
    ``reference`` may be ``None`` only where none exists (error_expected cases).
    """
    fmt = format_of(dtype)
    status = case_status
    if cotangent is None and "cotangent" in inputs:
        cotangent = np.asarray(inputs["cotangent"])
    actual = np.asarray(actual)
    out_dtype = str(actual.dtype)
    expected_shape = (tuple(reference.shape) if reference is not None
                      else _expected_shape(op, pass_, inputs))
    if expected_shape is not None and actual.shape != expected_shape:
        return _empty_fields(verdict=WRONG_SHAPE, output_dtype=out_dtype,
                             score_message=f"output has shape {actual.shape}, expected "
                                           f"{expected_shape}")
    y = _judgeable(actual)
    rows = _logit_rows(inputs["x"])
    view = _row_view_shape(y.shape, rows, op, pass_)
    special = (_special_rows(family, op, inputs, rows)
               if status in ("convention", "error_expected") else np.zeros(rows.x.shape[0], bool))
    row_special = special if view[0] == special.shape[0] else np.full(view[0], special.any())
    y2 = y.astype(np.float64).reshape(view)
    scope = ~np.broadcast_to(row_special[:, None] if len(view) == 2 else row_special, view)
    fields = _empty_fields(output_dtype=out_dtype)

    convention: _Convention | None = None
    if row_special.any():
        zhat2 = (None if reference is None
                 else np.asarray(reference.rounded(fmt.dtype)).astype(np.float64).reshape(view))
        convention = _judge_special(family, op, pass_, status, y2, zhat2, rows, row_special,
                                    inputs, view)
        scope = scope | np.broadcast_to(
            convention.scored_rows[:, None] if len(view) == 2 else convention.scored_rows, view)
        fields.update(convention=convention.did, convention_reference=convention.reference,
                      follows_convention=convention.follows)

    verdict = PASS
    decider: tuple[int, ...] | None = None
    if reference is not None and scope.any():
        verdict, decider = _score_accuracy(op, pass_, fmt, y, reference, inputs, cotangent,
                                           scope.reshape(y.shape), rows, fields)
    if convention is not None and convention.verdict != PASS:
        if VERDICT_RANK[convention.verdict] > VERDICT_RANK[verdict]:
            verdict = convention.verdict
            decider = (tuple(int(i) for i in np.unravel_index(convention.first_element, y.shape))
                       if y.ndim else ())
    if decider is not None and y.size:
        _describe_worst(fields, decider, y, reference, rows, view, fmt)
    fields["verdict"] = verdict
    return fields


def _expected_shape(op: str, pass_: str, inputs: Mapping[str, Array]) -> tuple[int, ...] | None:
    """The output shape implied by the inputs (None for cross_entropy: it depends on reduction)."""
    shape = tuple(np.shape(inputs["x"]))
    if op == "cross_entropy":
        return None
    return shape[:-1] if op in _PER_ROW_OPS and pass_ == "forward" else shape


def _judgeable(actual: Array) -> Array:
    try:
        format_of(actual.dtype)
        return actual
    except TypeError:
        return actual.astype(np.float64)


@dataclass
class _Convention:
    did: str
    reference: str | None
    follows: bool
    verdict: str
    scored_rows: npt.NDArray[np.bool_]  # special rows whose finite values join the accuracy score
    first_element: int  # flat index of the first element of the first non-following row


def _judge_special(family: str, op: str, pass_: str, status: str, y2: F64, z2: F64 | None,
                   rows: _Rows, row_special: npt.NDArray[np.bool_],
                   inputs: Mapping[str, Array], view: tuple[int, ...]) -> _Convention:
    """Describe what the implementation did on the special rows and whether it is accepted."""
    alts = ALTERNATIVES.get((family, op, pass_), ())
    k = view[1] if len(view) == 2 else 1
    did: list[str] = []
    refs: list[str] = []
    follows, silent = True, False
    first = -1
    scored_rows = np.zeros(view[0], bool)
    targets = (np.asarray(inputs["targets"]).astype(np.int64).reshape(-1)
               if "targets" in inputs else None)
    for r in np.nonzero(row_special)[0]:
        a = y2[r].reshape(-1)
        x = rows.x[r] if view[0] == rows.x.shape[0] else np.empty(0)
        z = None if z2 is None else z2[r].reshape(-1)
        what, ok = _describe(a), False
        if status == "error_expected":
            ok = bool(np.all(np.isnan(a)))
            if not ok:
                what, silent = f"{what} (silently)", True
            refs.append("raises or NaN row")
        else:
            if z is not None:
                refs.append(_describe(z))
                if _same_pattern(a, z):
                    ok = True
                    scored_rows[r] = bool(np.all(np.isfinite(z)))
            for name, match in alts:
                if not ok and match(a, x, None if targets is None else int(targets[r])):
                    ok, what = True, name
        if what not in did:
            did.append(what)
        if not ok:
            follows = False
            if first < 0:
                first = int(r) * k
    ref_desc = "; ".join(dict.fromkeys(refs)) or None
    verdict = SILENTLY_FINITE if silent else (PASS if follows else CONVENTION_DIFFERS)
    return _Convention("; ".join(did), ref_desc, follows, verdict, scored_rows, max(first, 0))


def _score_accuracy(op: str, pass_: str, fmt: Format, y: Array, reference: ReferenceResult,
                    inputs: Mapping[str, Array], cotangent: Array | None,
                    scope: npt.NDArray[np.bool_], rows: _Rows, fields: dict[str, Any]
                    ) -> tuple[str, tuple[int, ...] | None]:
    """Fill the accuracy fields over the elements in ``scope``; return (verdict, deciding index)."""
    err = metrics.ulp_error(y, reference, fmt.dtype)
    # (reshaped: a 0-d reference may hand back its rounded value as shape (1,))
    zhat = np.asarray(reference.rounded(fmt.dtype)).astype(np.float64).reshape(y.shape)
    hi = np.asarray(reference.hi, dtype=np.float64)
    lim = ulp_limits(op, pass_, fmt, zhat, inputs, cotangent)
    numeric = err.numeric & scope
    classes = np.where(scope, err.classes, "")
    ulps = np.where(numeric, err.ulps, np.nan)
    # A 0 for a subnormal within the ulp limit of 0 is a rounding error, not a flush: score it.
    with np.errstate(all="ignore"):
        to_zero = np.abs(-hi - np.asarray(reference.lo, dtype=np.float64)) / fmt.min_subnormal
    near = (classes == metrics.FLUSHED_SUBNORMAL) & (to_zero <= lim.limit)
    classes = np.where(near, "", classes)
    numeric = numeric | near
    ulps = np.where(near, to_zero, ulps)
    names, counts = np.unique(classes[classes != ""], return_counts=True)
    count = {str(nm): int(c) for nm, c in zip(names, counts)}
    fields["counts"] = count
    fields["n_scored"] = int(numeric.sum())

    unit = ulp(zhat, fmt)
    abs_err = ulps * unit
    with np.errstate(all="ignore"):
        ratio_limit = ulps / lim.limit
        rel = np.where(numeric & (hi != 0), abs_err / np.abs(hi), np.nan)
        bound = abs_err / lim.allowance
        bound32 = None if lim.allowance_f32acc is None else abs_err / lim.allowance_f32acc
    if numeric.any():
        scores = ulps[numeric]
        fields.update(
            max_ulp=_f(scores.max()), mean_ulp=_f(scores.mean()),
            p99_ulp=_f(np.percentile(scores, 99, method="inverted_cdf")),
            max_rel=_f(np.nanmax(rel)) if np.isfinite(rel).any() else None,
            limit_ratio=_f(np.nanmax(ratio_limit)),
        )
        worst_lim = np.unravel_index(int(np.nanargmax(ratio_limit)), y.shape)
        fields["ulp_limit"] = _f(lim.limit[worst_lim])
        if np.isfinite(bound).any():
            fields["bound_ratio"] = _f(np.nanmax(bound))
        if bound32 is not None and np.isfinite(bound32).any():
            fields["bound_ratio_f32acc"] = _f(np.nanmax(bound32))
        fields["accuracy_class"] = _accuracy_class(fields["max_ulp"], fields["bound_ratio"])
    _invariants(op, pass_, fmt, y, zhat, scope, rows, inputs, cotangent, fields)

    def first(cls: str) -> tuple[int, ...]:
        return tuple(int(i) for i in np.argwhere(classes == cls)[0])

    for cls, verdict in ((metrics.NAN_WHERE_FINITE, NAN_WHERE_FINITE),
                         (metrics.VALUE_WHERE_NAN, FINITE_WHERE_NAN),
                         (metrics.WRONG_INFINITY, INF_WHERE_FINITE),
                         (metrics.SPURIOUS_OVERFLOW, INF_WHERE_FINITE)):
        if count.get(cls):
            fields["score_message"] = f"{count[cls]} element(s) {cls.replace('_', ' ')}"
            return verdict, first(cls)
    over = numeric & (ratio_limit > 1)
    # A 0 for a normal value is a lost tail unless the model shows that cancellation in the
    # formula itself allows it (e.g. g_j ~ <g, p> in a softmax VJP); the generic envelope
    # cannot tell, so there it always counts.
    lost = (classes == metrics.ZERO_FOR_NONZERO) & (over | (not lim.modelled))
    if over.any() or lost.any():
        if over.any():
            idx = tuple(int(i) for i in np.unravel_index(
                int(np.nanargmax(np.where(over, ratio_limit, np.nan))), y.shape))
            fields["score_message"] = (f"{int(over.sum())} element(s) above the ulp limit; worst "
                                       f"{ulps[idx]:.4g} ulp > limit {lim.limit[idx]:.4g}")
            return INACCURATE, idx
        fields["score_message"] = (f"{int(lost.sum())} element(s) 0 where a normal value is "
                                   "exact (lost tail)")
        return INACCURATE, tuple(int(i) for i in np.argwhere(lost)[0])
    if count.get(metrics.FLUSHED_SUBNORMAL):
        fields["score_message"] = (f"{count[metrics.FLUSHED_SUBNORMAL]} subnormal result(s) "
                                   "flushed to zero")
        return FLUSHES_SUBNORMALS, first(metrics.FLUSHED_SUBNORMAL)
    if numeric.any():
        return PASS, tuple(int(i) for i in np.unravel_index(
            int(np.nanargmax(ulps)), y.shape))
    return PASS, None


def _accuracy_class(max_ulp: float | None, bound_ratio: float | None) -> str | None:
    """The ladder of numerics §9 on the worst element."""
    if max_ulp is None:
        return None
    if max_ulp <= 0.5 + CORRECTLY_ROUNDED_SLACK:
        return "correctly_rounded"
    if max_ulp < 1.0:
        return "faithful"
    if bound_ratio is None:
        return None
    return "within_bound" if bound_ratio <= 1.0 else "outside_bound"


def _invariants(op: str, pass_: str, fmt: Format, y: Array, zhat: F64,
                scope: npt.NDArray[np.bool_], rows: _Rows, inputs: Mapping[str, Array],
                cotangent: Array | None, fields: dict[str, Any]) -> None:
    """``sum_err_ulp`` (softmax: |Σp − 1| in ulps of 1) and ``grad_row_sum`` (backward)."""
    if (op in _PER_ROW_OPS and pass_ == "forward") or op == "cross_entropy" or not y.size:
        return
    if y.shape[-1:] != rows.x.shape[-1:] or int(np.prod(y.shape)) != rows.x.size:
        return
    y2 = y.astype(np.float64).reshape(rows.x.shape)
    z2 = zhat.reshape(rows.x.shape)
    ok = (np.all(np.isfinite(y2), axis=1) & np.all(np.isfinite(z2), axis=1)
          & np.all(scope.reshape(rows.x.shape), axis=1))
    if not ok.any():
        return
    if fmt.name == "float64":  # exact row sums: float64 summation error would be a full ulp
        sums = np.array([_exact_sum(r) if good else np.nan for r, good in zip(y2, ok)])
    else:
        sums = np.where(ok, y2.sum(axis=1), np.nan)
    if op == "softmax" and pass_ == "forward":
        one_ulp = 2.0 * fmt.unit_roundoff
        fields["sum_err_ulp"] = _f(np.nanmax(np.abs(sums - 1.0)) / one_ulp)
    elif pass_ == "backward":
        target = _row_cotangent(op, rows, cotangent) if op == "logsumexp" else 0.0
        fields["grad_row_sum"] = _f(np.nanmax(np.abs(sums - target)))


def _exact_sum(row: F64) -> float:
    """The correctly rounded row sum; a plain float64 sum where the partials overflow."""
    try:
        return math.fsum(row)
    except OverflowError:
        with np.errstate(over="ignore"):
            return float(np.sum(row))


def _describe_worst(fields: dict[str, Any], index: tuple[int, ...], y: Array,
                    reference: ReferenceResult | None, rows: _Rows, view: tuple[int, ...],
                    fmt: Format) -> None:
    """``worst_index``, ``got``/``expected``/``exact`` there, and the input row to reproduce it."""
    idx = tuple(int(i) for i in index)
    fields["worst_index"] = list(idx)
    fields["got"] = _value_str(y[idx], format_of(y.dtype))
    if reference is not None:
        fields["expected"] = _value_str(
            np.asarray(reference.rounded(fmt.dtype)).reshape(y.shape)[idx], fmt)
        fields["exact"] = _num(float(np.asarray(reference.hi).reshape(y.shape)[idx]))
    row = (int(np.ravel_multi_index(idx, y.shape)) if y.ndim else 0) // (
        view[1] if len(view) == 2 and view[1] else 1)
    if view[0] == rows.x.shape[0] and rows.x.shape[1] <= _WORST_ROW_MAX:
        fields["worst_row"] = _row_list(rows.x[row])


# ---------------------------------------------------------------------------- exceptions
_EXC_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?::|$)")


def _exception_name(raised: str) -> str:
    """``"ValueError: labels ..."``, or a traceback ending so, -> ``"ValueError"``."""
    lines = [ln for ln in raised.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        m = _EXC_LINE.match(line)
        if m:
            return m.group(1).rsplit(".", 1)[-1]
    return "an exception"


def score_exception(*, op: str, pass_: str, dtype: str, raised: str, case_status: str,
                    family: str) -> dict[str, Any]:
    """Metric fields for an implementation that raised: accepted where an error is expected."""
    status = case_status
    did = f"raises {_exception_name(raised)}"
    if status == "error_expected":
        return _empty_fields(verdict=PASS, convention=did, follows_convention=True,
                             convention_reference="raises or NaN row")
    if status == "convention":
        accepted = family in RAISING_ACCEPTED
        return _empty_fields(verdict=PASS if accepted else CONVENTION_DIFFERS, convention=did,
                             follows_convention=accepted)
    last = ([ln for ln in raised.strip().splitlines() if ln.strip()] or ["no message"])[-1]
    return _empty_fields(verdict=ERROR,
                         score_message=f"raised where a value was expected: {last.strip()}")


def score_outcome(*, op: str, pass_: str, dtype: str, actual: Array | None,
                  reference: ReferenceResult | BaseException | None,
                  inputs: Mapping[str, Array], case_status: str, family: str,
                  raised: str | None = None, cotangent: Array | None = None) -> dict[str, Any]:
    """``score`` or ``score_exception`` for whatever the worker came back with.

    ``reference`` may be the exception the reference itself raised (no exact value exists, e.g.
    labels out of range); a scored case then gets verdict ``error`` naming it.
    """
    if raised is not None or actual is None:
        return score_exception(op=op, pass_=pass_, dtype=dtype, raised=raised or "no output",
                               case_status=case_status, family=family)
    status = case_status
    if isinstance(reference, BaseException):
        if status == "scored":
            return _empty_fields(verdict=ERROR, score_message=f"no exact reference: "
                                                              f"{type(reference).__name__}: "
                                                              f"{reference}")
        reference = None
    return score(op=op, pass_=pass_, dtype=dtype, actual=actual, reference=reference,
                 inputs=inputs, case_status=case_status, family=family, cotangent=cotangent)
