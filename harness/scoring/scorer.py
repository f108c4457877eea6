"""The scorer: one implementation output against the exact reference -> the metric fields.

``score`` turns (output, reference, inputs) into the metric fields of one results record: ULP
statistics in the output dtype, the Blanchard–Higham–Higham bound ratio, invariants, special-value
counts, the element that decided the verdict (with its input row, to reproduce it), the verdict
and the accuracy ladder. The special rows of convention and error_expected cases are judged by
:mod:`harness.scoring.conventions` with the family's expectations instead of being scored as
accuracy errors; ``score_outcome`` dispatches to ``score`` or ``score_exception``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.planning.cases import expectations_of
from harness.scoring.conventions import Convention, judge_special, special_rows
from harness.scoring.error_model import (
    Rows,
    logit_rows,
    row_cotangent,
    row_view_shape,
    ulp_limits,
)
from harness.scoring.exceptions import score_exception
from harness.scoring.fields import (
    CORRECTLY_ROUNDED,
    ERROR,
    FAITHFUL,
    FINITE_WHERE_NAN,
    FLUSHES_SUBNORMALS,
    INACCURATE,
    INF_WHERE_FINITE,
    NAN_WHERE_FINITE,
    OUTSIDE_BOUND,
    PASS,
    WITHIN_BOUND,
    WRONG_SHAPE,
    empty_fields,
    finish,
    json_float,
    num_text,
    row_list,
    value_text,
)
from harness.vocabulary import (
    BACKWARD,
    FORWARD,
    LOGSUMEXP,
    PER_ROW_OUTPUT_OPS,
    SCORED,
    SEVERITY_RANK,
    SOFTMAX,
    TORCH_CE,
    VERDICT_RANK,
    severity_of,
)
from references import metrics
from references.formats import Format, format_of, ulp
from references.result import ReferenceResult

Array = npt.NDArray[Any]
F64 = npt.NDArray[np.float64]

CORRECTLY_ROUNDED_SLACK = 1e-9  # the reference's hi/lo and the float64 ulp arithmetic
_WORST_ROW_MAX = 4096  # longer rows are reproduced from the case id, not stored per record


def score(*, op: str, pass_: str, dtype: str, actual: Array, reference: ReferenceResult | None,
          inputs: Mapping[str, Array], case_status: str, family: str,
          cotangent: Array | None = None, own_rows: int | None = None) -> dict[str, Any]:
    """The metric fields of one results record (``METRIC_FIELDS``), JSON-serialisable.

    ``inputs`` holds the case's dtype-rounded arrays (``x``; ``labels`` dense; ``targets``
    indices); the backward cotangent comes as ``cotangent`` or ``inputs["cotangent"]``.
    ``reference`` may be ``None`` only where none exists (error_expected cases).
    ``own_rows``: the case was padded (``harness.planning.cases.pad_rows``); its first
    ``own_rows`` logit rows are the family's and the rest are N(0, 1) padding. The record then
    says which rows decided the verdict (``decided_by``) and the verdict of the family's own
    rows alone (``special_verdict``, ``special_severity``).
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
        return empty_fields(verdict=WRONG_SHAPE, output_dtype=out_dtype,
                             score_message=f"output has shape {actual.shape}, expected "
                                           f"{expected_shape}")
    y = _judgeable(actual)
    rows = logit_rows(inputs["x"])
    view = row_view_shape(y.shape, rows, op, pass_)
    expects = expectations_of(family)
    special = special_rows(expects, op, status, inputs, rows)
    row_special = special if view[0] == special.shape[0] else np.full(view[0], special.any())
    y2 = y.astype(np.float64).reshape(view)
    scope = ~np.broadcast_to(row_special[:, None] if len(view) == 2 else row_special, view)
    fields = empty_fields(output_dtype=out_dtype)

    convention: Convention | None = None
    if row_special.any():
        zhat2 = (None if reference is None
                 else np.asarray(reference.rounded(fmt.dtype)).astype(np.float64).reshape(view))
        convention = judge_special(expects.accepted(op, pass_), status, y2, zhat2, rows,
                                   row_special, inputs, view)
        scope = scope | np.broadcast_to(
            convention.scored_rows[:, None] if len(view) == 2 else convention.scored_rows, view)
        fields.update(convention=convention.did, convention_reference=convention.reference,
                      follows_convention=convention.follows)

    verdict, lost = PASS, False
    decider: tuple[int, ...] | None = None
    if reference is not None and scope.any():
        verdict, decider, lost = _score_accuracy(op, pass_, fmt, y, reference, inputs,
                                                 cotangent, scope.reshape(y.shape), rows, view,
                                                 fields)
    conv_verdict = PASS if convention is None else convention.verdict
    if VERDICT_RANK[conv_verdict] > VERDICT_RANK[verdict]:
        assert convention is not None
        verdict = conv_verdict
        decider = (tuple(int(i) for i in np.unravel_index(convention.first_element, y.shape))
                   if y.ndim else ())
    if decider is not None and y.size:
        _describe_worst(fields, decider, y, reference, rows, view, fmt)
    fields["verdict"] = verdict
    finish(fields, lost_value=lost)
    padded = own_rows is not None and 0 <= own_rows < rows.x.shape[0]
    if padded and view[0] == rows.x.shape[0]:
        # the family's own rows alone: the padding rows leave the scope
        own = np.arange(view[0]) < int(own_rows or 0)
        own_scope = scope & np.broadcast_to(own[:, None] if len(view) == 2 else own, view)
        own_verdict, own_lost, scratch = PASS, False, empty_fields()
        if reference is not None and own_scope.any():
            own_verdict, _, own_lost = _score_accuracy(
                op, pass_, fmt, y, reference, inputs, cotangent, own_scope.reshape(y.shape),
                rows, view, scratch)
        if VERDICT_RANK[conv_verdict] > VERDICT_RANK[own_verdict]:
            own_verdict = conv_verdict
        fields["special_verdict"] = own_verdict
        fields["special_severity"] = severity_of(own_verdict, scratch.get("limit_ratio"),
                                                 lost_value=own_lost)
        worse = VERDICT_RANK[verdict] > VERDICT_RANK[own_verdict] or (
            verdict == own_verdict and SEVERITY_RANK.get(fields["severity"], 0)
            > SEVERITY_RANK.get(fields["special_severity"], 0))
        fields["decided_by"] = "padding" if worse else "special"
    elif padded:  # a reduced output: its rows cannot be told apart, the case owns it all
        fields.update(decided_by="special", special_verdict=verdict,
                      special_severity=fields["severity"])
    return fields


def _expected_shape(op: str, pass_: str, inputs: Mapping[str, Array]) -> tuple[int, ...] | None:
    """The output shape implied by the inputs (None for cross_entropy: it depends on reduction)."""
    shape = tuple(np.shape(inputs["x"]))
    if op == TORCH_CE:
        return None
    return shape[:-1] if op in PER_ROW_OUTPUT_OPS and pass_ == FORWARD else shape


def _judgeable(actual: Array) -> Array:
    try:
        format_of(actual.dtype)
        return actual
    except TypeError:
        return actual.astype(np.float64)


def _score_accuracy(op: str, pass_: str, fmt: Format, y: Array, reference: ReferenceResult,
                    inputs: Mapping[str, Array], cotangent: Array | None,
                    scope: npt.NDArray[np.bool_], rows: Rows, view: tuple[int, ...],
                    fields: dict[str, Any]) -> tuple[str, tuple[int, ...] | None, bool]:
    """Fill the accuracy fields over the elements in ``scope``; return (verdict, deciding
    index, whether a value was lost: 0 or the wrong sign where the exact value is normal)."""
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
    classes = _lost_not_flushed(classes, hi, y, view)
    wider = (classes == metrics.ZERO_FOR_NONZERO) & ~numeric  # normal in the output dtype
    numeric = numeric | wider
    ulps = np.where(wider, to_zero, ulps)
    names, counts = np.unique(classes[classes != ""], return_counts=True)
    count = {str(nm): int(c) for nm, c in zip(names, counts)}
    fields["counts"] = count
    fields["n_scored"] = int(numeric.sum())

    unit = ulp(zhat, fmt)
    with np.errstate(all="ignore"):  # ulps of a huge error times a large ulp: inf, not a warning
        abs_err = ulps * unit
        ratio_limit = ulps / lim.limit
        rel = np.where(numeric & (hi != 0), abs_err / np.abs(hi), np.nan)
        bound = abs_err / lim.allowance
        bound32 = None if lim.allowance_f32acc is None else abs_err / lim.allowance_f32acc
    if numeric.any():
        scores = ulps[numeric]
        fields.update(
            max_ulp=json_float(scores.max()), mean_ulp=json_float(scores.mean()),
            p99_ulp=json_float(np.percentile(scores, 99, method="inverted_cdf")),
            max_rel=json_float(np.nanmax(rel)) if np.isfinite(rel).any() else None,
            limit_ratio=json_float(np.nanmax(ratio_limit)),
        )
        worst_lim = np.unravel_index(int(np.nanargmax(ratio_limit)), y.shape)
        fields["ulp_limit"] = json_float(lim.limit[worst_lim])
        if np.isfinite(bound).any():
            fields["bound_ratio"] = json_float(np.nanmax(bound))
        if bound32 is not None and np.isfinite(bound32).any():
            fields["bound_ratio_f32acc"] = json_float(np.nanmax(bound32))
        fields["accuracy_class"] = _accuracy_class(fields["max_ulp"], fields["bound_ratio"])
        _normwise(fmt, y, hi, zhat, ulps, abs_err, numeric, lim.limit, view, fields)
    _invariants(op, pass_, fmt, y, zhat, scope, rows, inputs, cotangent, fields)
    y64 = y.astype(np.float64)
    # a lost sign: a nonzero value of the wrong sign where the exact value is a normal number
    lost_sign = (numeric & (y64 != 0) & (np.abs(zhat) >= fmt.min_normal)
                 & (np.signbit(y64) != np.signbit(zhat)))

    def first(cls: str) -> tuple[int, ...]:
        return tuple(int(i) for i in np.argwhere(classes == cls)[0])

    for cls, verdict in ((metrics.NAN_WHERE_FINITE, NAN_WHERE_FINITE),
                         (metrics.VALUE_WHERE_NAN, FINITE_WHERE_NAN),
                         (metrics.WRONG_INFINITY, INF_WHERE_FINITE),
                         (metrics.SPURIOUS_OVERFLOW, INF_WHERE_FINITE)):
        if count.get(cls):
            fields["score_message"] = f"{count[cls]} element(s) {cls.replace('_', ' ')}"
            return verdict, first(cls), False
    over = numeric & (ratio_limit > 1)
    # A 0 for a normal value is a lost tail unless the model shows that cancellation in the
    # formula itself allows it (e.g. g_j ~ <g, p> in a softmax VJP); the generic envelope
    # cannot tell, so there it always counts.
    lost = (classes == metrics.ZERO_FOR_NONZERO) & (over | (not lim.modelled))
    lost_value = bool(lost.any() or (lost_sign & over).any())
    if over.any() or lost.any():
        if over.any():
            idx = tuple(int(i) for i in np.unravel_index(
                int(np.nanargmax(np.where(over, ratio_limit, np.nan))), y.shape))
            fields["score_message"] = (f"{int(over.sum())} element(s) above the ulp limit; worst "
                                       f"{ulps[idx]:.4g} ulp > limit {lim.limit[idx]:.4g}"
                                       + (f"; {int(lost.sum())} lost value(s): 0 where a normal "
                                          "value is exact" if lost.any() else "")
                                       + (f"; {int((lost_sign & over).sum())} of the wrong sign"
                                          if (lost_sign & over).any() else ""))
            return INACCURATE, idx, lost_value
        fields["score_message"] = (f"{int(lost.sum())} element(s) 0 where a normal value is "
                                   "exact (lost value)")
        return INACCURATE, tuple(int(i) for i in np.argwhere(lost)[0]), True
    if count.get(metrics.FLUSHED_SUBNORMAL):
        fields["score_message"] = (f"{count[metrics.FLUSHED_SUBNORMAL]} subnormal result(s) "
                                   "flushed to zero")
        return FLUSHES_SUBNORMALS, first(metrics.FLUSHED_SUBNORMAL), False
    if numeric.any():
        return PASS, tuple(int(i) for i in np.unravel_index(
            int(np.nanargmax(ulps)), y.shape)), False
    return PASS, None, False


# The count of 0s for subnormal exact values in a row that also lost a normal value: part of a
# lost tail, not a flush (scored as what they are: they do not enter the ULP statistics).
LOST_SUBNORMAL = "lost_subnormal"


def _lost_not_flushed(classes: Array, hi: F64, y: Array, view: tuple[int, ...]) -> Array:
    """``flushed_subnormal`` only where the exact value is subnormal in the *output* dtype and
    the row lost no normal value (docs/scoring.md §5.5). A 0 for a value that is normal in a
    wider output dtype is a lost value (``zero_for_nonzero``); 0s for subnormals in a row that
    also returned 0 for a normal value are the tail of that loss (``lost_subnormal``)."""
    flushed = classes == metrics.FLUSHED_SUBNORMAL
    if not flushed.any():
        return classes
    out = np.array(classes, copy=True)
    try:
        out_fmt = format_of(y.dtype)
    except TypeError:
        out_fmt = None
    if out_fmt is not None:
        normal_out = flushed & (np.abs(hi.reshape(classes.shape)) >= out_fmt.min_normal)
        out[normal_out] = metrics.ZERO_FOR_NONZERO
        flushed = flushed & ~normal_out
    k = view[1] if len(view) == 2 else 1
    if k > 1 and flushed.size == view[0] * k:
        lost_row = np.any((out == metrics.ZERO_FOR_NONZERO).reshape(view[0], k), axis=1)
        in_lost = np.broadcast_to(lost_row[:, None], (view[0], k)).reshape(classes.shape)
        out[flushed & in_lost] = LOST_SUBNORMAL
    return out


def _normwise(fmt: Format, y: Array, hi: F64, zhat: F64, ulps: F64, abs_err: F64,
              numeric: npt.NDArray[np.bool_], limit: F64, view: tuple[int, ...],
              fields: dict[str, Any]) -> None:
    """The normwise standard and the zero-exact display fields.

    ``norm_ulp``: max over rows of (largest absolute error in the row) / ulp(the row's largest
    exact magnitude); ``norm_ratio``: the same divided by the ULP limit at that largest
    element (≤ 1: normwise accurate). ``max_ulp_nonzero``: the largest ULP error over the
    elements whose exact value is not 0; ``zero_abs_err``: the largest |error| where the exact
    value is 0, in units of the dtype's smallest normal number."""
    n, k = (view[0], view[1]) if len(view) == 2 else (view[0] if view else 1, 1)
    if numeric.size != n * k:
        return
    with np.errstate(all="ignore"):
        err2 = np.where(numeric, abs_err, -np.inf).reshape(n, k)
        mag2 = np.where(np.isfinite(zhat), np.abs(zhat), -np.inf).reshape(n, k)
        has = numeric.reshape(n, k).any(axis=1) & np.isfinite(mag2).any(axis=1)
        if has.any():
            at = np.argmax(mag2, axis=1)
            scale = np.take_along_axis(mag2, at[:, None], axis=1)[:, 0]
            row_lim = np.take_along_axis(limit.reshape(n, k), at[:, None], axis=1)[:, 0]
            row_err = err2.max(axis=1)
            norm = np.where(has, row_err / ulp(np.where(has, scale, 0.0), fmt), np.nan)
            fields["norm_ulp"] = json_float(np.nanmax(norm))
            fields["norm_ratio"] = json_float(np.nanmax(norm / row_lim))
        exact_zero = numeric & (hi.reshape(numeric.shape) == 0)
        nonzero = numeric & ~exact_zero
        if nonzero.any():
            fields["max_ulp_nonzero"] = json_float(np.max(ulps[nonzero]))
        if exact_zero.any():
            fields["zero_abs_err"] = json_float(
                np.max(np.abs(y.astype(np.float64)[exact_zero])) / fmt.min_normal)


def _accuracy_class(max_ulp: float | None, bound_ratio: float | None) -> str | None:
    """The ladder of docs/numerics.md §9 on the worst element."""
    if max_ulp is None:
        return None
    if max_ulp <= 0.5 + CORRECTLY_ROUNDED_SLACK:
        return CORRECTLY_ROUNDED
    if max_ulp < 1.0:
        return FAITHFUL
    if bound_ratio is None:
        return None
    return WITHIN_BOUND if bound_ratio <= 1.0 else OUTSIDE_BOUND


def _invariants(op: str, pass_: str, fmt: Format, y: Array, zhat: F64,
                scope: npt.NDArray[np.bool_], rows: Rows, inputs: Mapping[str, Array],
                cotangent: Array | None, fields: dict[str, Any]) -> None:
    """``sum_err_ulp`` (softmax: |Σp − 1| in ulps of 1) and ``grad_row_sum`` (backward)."""
    if (op in PER_ROW_OUTPUT_OPS and pass_ == FORWARD) or op == TORCH_CE or not y.size:
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
    if op == SOFTMAX and pass_ == FORWARD:
        one_ulp = 2.0 * fmt.unit_roundoff
        fields["sum_err_ulp"] = json_float(np.nanmax(np.abs(sums - 1.0)) / one_ulp)
    elif pass_ == BACKWARD:
        target = row_cotangent(op, rows, cotangent) if op == LOGSUMEXP else 0.0
        fields["grad_row_sum"] = json_float(np.nanmax(np.abs(sums - target)))


def _exact_sum(row: F64) -> float:
    """The correctly rounded row sum; a plain float64 sum where the partials overflow."""
    try:
        return math.fsum(row)
    except OverflowError:
        with np.errstate(over="ignore"):
            return float(np.sum(row))


def _describe_worst(fields: dict[str, Any], index: tuple[int, ...], y: Array,
                    reference: ReferenceResult | None, rows: Rows, view: tuple[int, ...],
                    fmt: Format) -> None:
    """``worst_index``, ``got``/``expected``/``exact`` there, and the input row to reproduce it."""
    idx = tuple(int(i) for i in index)
    fields["worst_index"] = list(idx)
    fields["got"] = value_text(y[idx], format_of(y.dtype))
    if reference is not None:
        fields["expected"] = value_text(
            np.asarray(reference.rounded(fmt.dtype)).reshape(y.shape)[idx], fmt)
        fields["exact"] = num_text(float(np.asarray(reference.hi).reshape(y.shape)[idx]))
    row = (int(np.ravel_multi_index(idx, y.shape)) if y.ndim else 0) // (
        view[1] if len(view) == 2 and view[1] else 1)
    if view[0] == rows.x.shape[0] and rows.x.shape[1] <= _WORST_ROW_MAX:
        fields["worst_row"] = row_list(rows.x[row])


def score_outcome(*, op: str, pass_: str, dtype: str, actual: Array | None,
                  reference: ReferenceResult | BaseException | None,
                  inputs: Mapping[str, Array], case_status: str, family: str,
                  raised: str | None = None, cotangent: Array | None = None,
                  own_rows: int | None = None, device_error: bool = False) -> dict[str, Any]:
    """``score`` or ``score_exception`` for whatever the worker came back with.

    ``reference`` may be the exception the reference itself raised (no exact value exists, e.g.
    labels out of range); a scored case then gets verdict ``error`` naming it. ``own_rows``:
    see ``score``; ``device_error``: the exception ``raised`` is a process-poisoning device
    error (verdict ``device_assert``, see ``score_exception``).
    """
    if raised is not None or actual is None:
        out = score_exception(op=op, pass_=pass_, dtype=dtype, raised=raised or "no output",
                              case_status=case_status, family=family,
                              device_error=device_error)
        if own_rows is not None:
            out.update(decided_by="special", special_verdict=out["verdict"],
                       special_severity=out["severity"])
        return out
    status = case_status
    if isinstance(reference, BaseException):
        if status == SCORED:
            return empty_fields(verdict=ERROR, score_message=f"no exact reference: "
                                                              f"{type(reference).__name__}: "
                                                              f"{reference}")
        reference = None
    return score(op=op, pass_=pass_, dtype=dtype, actual=actual, reference=reference,
                 inputs=inputs, case_status=case_status, family=family, cotangent=cotangent,
                 own_rows=own_rows)
