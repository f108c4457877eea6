"""The metric fields of a results record, the verdict names the scorer gives, and the
JSON-safe spellings of numbers and rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.vocabulary import ACCURACY_CLASSES, VERDICT_INFO, severity_of
from references.formats import Format

F64 = npt.NDArray[np.float64]


def _verdict(name: str) -> str:
    """A verdict's name as the vocabulary declares it (a KeyError here if it does not)."""
    return VERDICT_INFO[name].name


# The verdicts the scorer gives (harness.vocabulary declares them, their order and failures).
PASS = _verdict("pass")
CONVENTION_DIFFERS = _verdict("convention_differs")
FLUSHES_SUBNORMALS = _verdict("flushes_subnormals")
INACCURATE = _verdict("inaccurate")
SILENTLY_FINITE = _verdict("silently_finite")
INF_WHERE_FINITE = _verdict("inf_where_finite")
FINITE_WHERE_NAN = _verdict("finite_where_nan")
NAN_WHERE_FINITE = _verdict("nan_where_finite")
WRONG_SHAPE = _verdict("wrong_shape")
ERROR = _verdict("error")
DEVICE_ASSERT = _verdict("device_assert")

# The accuracy ladder of docs/numerics.md §9, mildest first.
CORRECTLY_ROUNDED, FAITHFUL, WITHIN_BOUND, OUTSIDE_BOUND = ACCURACY_CLASSES

# Every field `score` returns (the metric part of a results record).
METRIC_FIELDS: tuple[str, ...] = (
    "verdict", "accuracy_class", "max_ulp", "p99_ulp", "mean_ulp", "max_rel", "bound_ratio",
    "bound_ratio_f32acc", "limit_ratio", "ulp_limit", "sum_err_ulp", "grad_row_sum", "counts",
    "n_scored", "worst_index", "worst_row", "expected", "exact", "got", "output_dtype",
    "convention", "convention_reference", "follows_convention", "score_message",
    # the two standards, the severity and the rows that decided (docs/scoring.md §2, §8)
    "severity", "norm_ulp", "norm_ratio", "componentwise", "normwise", "decided_by",
    "special_verdict", "special_severity", "max_ulp_nonzero", "zero_abs_err",
)


def empty_fields(**extra: Any) -> dict[str, Any]:
    """Every metric field, None (``counts`` empty), updated with ``extra``; where ``extra``
    gives a verdict, the severity and the two standards follow from it (``finish``)."""
    fields: dict[str, Any] = dict.fromkeys(METRIC_FIELDS)
    fields["counts"] = {}
    fields["decided_by"] = "none"
    fields.update(extra)
    if fields.get("verdict") is not None:
        finish(fields)
    return fields


# Verdicts whose only defect is accuracy: the normwise standard can still hold for them.
_ACCURACY_ONLY = frozenset({"pass", "convention_differs", "flushes_subnormals", "inaccurate"})


def finish(fields: dict[str, Any], *, lost_value: bool = False) -> dict[str, Any]:
    """Fill ``severity``, ``componentwise`` and ``normwise`` from the verdict (and
    ``limit_ratio``, ``norm_ratio``); ``lost_value``: some element lost a normal value."""
    verdict = fields.get("verdict")
    fields["severity"] = severity_of(verdict, fields.get("limit_ratio"), lost_value=lost_value)
    if verdict is None or verdict not in VERDICT_INFO:
        return fields
    fields["componentwise"] = not VERDICT_INFO[verdict].failure
    ratio = fields.get("norm_ratio")
    fields["normwise"] = verdict in _ACCURACY_ONLY and (
        verdict in ("pass", "convention_differs") if ratio is None else ratio <= 1.0)
    return fields


def json_float(v: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def value_text(v: Any, fmt: Format) -> str:
    """A value of the output dtype as a record shows it (``got``, ``expected``)."""
    if fmt.name == "bfloat16":
        return num_text(float(v))
    return "nan" if np.isnan(v) else str(v)


def row_list(row: F64) -> list[float | str]:
    """An input row for JSON: floats, non-finite values as the strings "inf", "-inf", "nan"."""
    return [float(v) if math.isfinite(v) else num_text(v) for v in row]


def num_text(v: float) -> str:
    """A float as text: ``repr``, or "nan"."""
    return "nan" if math.isnan(v) else repr(float(v))
