"""Compare two sets of results (as ``harness.results.load`` returns them) for regressions.

Accuracy is deterministic, so no statistics: a record regresses when its verdict or accuracy
class gets worse, or its ``max_ulp`` grows beyond a small tolerance. Timing comparison needs
statistics (spread, repeated runs) and arrives with the timing runner: ``compare_timing`` is the
seam it fills, and ``compare`` will join both tables.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.results import KEY_FIELDS
from harness.scoring import ACCURACY_CLASSES, VERDICT_RANK

__all__ = [
    "CHANGES",
    "DEFAULT_ULP_ABS_TOL",
    "DEFAULT_ULP_REL_TOL",
    "compare",
    "compare_accuracy",
    "compare_timing",
    "format_report",
    "has_regressions",
]

# Absorbs refinements of the reference or of the metric in the last bits (0.30 -> 0.31 ulp),
# never a change of algorithm: any real regression moves max_ulp by far more, or the class.
DEFAULT_ULP_ABS_TOL = 0.25
DEFAULT_ULP_REL_TOL = 0.05
CHANGES = ("regression", "improvement", "changed", "unchanged", "not_comparable",
           "only_in_base", "only_in_new")
# Outcomes that say nothing about numerics: the framework or dtype was not there.
_NOT_MEASURED = frozenset({"unsupported", "unavailable"})
_CLASS_RANK = {c: i for i, c in enumerate(ACCURACY_CLASSES)}
_COLUMNS = ("verdict", "accuracy_class", "max_ulp", "status", "message")


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per key (the last one: a resumed or repeated task keeps its newest record)."""
    keep = [c for c in (*KEY_FIELDS, *_COLUMNS) if c in frame.columns]
    return frame[keep].drop_duplicates(subset=list(KEY_FIELDS), keep="last")


def _rank(table: dict[str, int], value: Any) -> int | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return table.get(str(value))


def _num(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    v = float(value)
    return None if math.isnan(v) else v


def _verdict(row: pd.Series, side: str) -> str | None:
    value = row.get(f"verdict_{side}")
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        status = row.get(f"status_{side}")
        return None if status is None or status is pd.NA else str(status)
    return str(value)


def _classify(row: pd.Series, abs_tol: float, rel_tol: float) -> tuple[str, str]:
    """(change, reason) for one joined row."""
    if row["_merge"] == "left_only":
        return "only_in_base", "no record in the new results"
    if row["_merge"] == "right_only":
        return "only_in_new", "no record in the base results"
    vb, vn = _verdict(row, "base"), _verdict(row, "new")
    if vb in _NOT_MEASURED or vn in _NOT_MEASURED:
        return "not_comparable", f"{vb} -> {vn}"
    worse: list[str] = []
    better: list[str] = []
    rb, rn = _rank(VERDICT_RANK, vb), _rank(VERDICT_RANK, vn)
    if rb is not None and rn is not None and rb != rn:
        (worse if rn > rb else better).append(f"verdict {vb} -> {vn}")
    cb, cn = row.get("accuracy_class_base"), row.get("accuracy_class_new")
    kb, kn = _rank(_CLASS_RANK, cb), _rank(_CLASS_RANK, cn)
    if kb is not None and kn is not None and kb != kn:
        (worse if kn > kb else better).append(f"accuracy {cb} -> {cn}")
    mb, mn = _num(row.get("max_ulp_base")), _num(row.get("max_ulp_new"))
    if mb is not None and mn is not None:
        slack = max(abs_tol, rel_tol * mb)
        if mn > mb + slack:
            worse.append(f"max_ulp {mb:.4g} -> {mn:.4g}")
        elif mn < mb - slack:
            better.append(f"max_ulp {mb:.4g} -> {mn:.4g}")
    if worse:
        return "regression", "; ".join(worse + better)
    if better:
        return "improvement", "; ".join(better)
    if vb != vn:  # e.g. both failures of equal rank, or a verdict the ranks do not know
        return "changed", f"verdict {vb} -> {vn}"
    return "unchanged", ""


def compare_accuracy(base: pd.DataFrame, new: pd.DataFrame, *,
                     ulp_abs_tol: float = DEFAULT_ULP_ABS_TOL,
                     ulp_rel_tol: float = DEFAULT_ULP_REL_TOL) -> pd.DataFrame:
    """Join ``base`` and ``new`` on (implementation, op, pass, case, dtype, device).

    One row per key with ``verdict``/``accuracy_class``/``max_ulp`` of each side (suffixes
    ``_base``/``_new``), ``change`` (one of ``CHANGES``) and ``reason``. A regression is a worse
    verdict (``scoring.VERDICTS`` order), a worse accuracy class, or ``max_ulp`` growing by more
    than ``max(ulp_abs_tol, ulp_rel_tol * base)``. Regressions sort first.
    """
    joined = pd.merge(_latest(base), _latest(new), on=list(KEY_FIELDS), how="outer",
                      suffixes=("_base", "_new"), indicator=True)
    if joined.empty:
        columns = [*KEY_FIELDS, *(f"{c}_{s}" for c in _COLUMNS for s in ("base", "new")),
                   "change", "reason"]
        return pd.DataFrame(columns=columns)
    decided = [_classify(row, ulp_abs_tol, ulp_rel_tol) for _, row in joined.iterrows()]
    joined["change"] = pd.Series([d[0] for d in decided], index=joined.index, dtype="string")
    joined["reason"] = pd.Series([d[1] for d in decided], index=joined.index, dtype="string")
    joined = joined.drop(columns="_merge")
    order = {c: i for i, c in enumerate(CHANGES)}
    joined["_order"] = joined["change"].map(order)
    return (joined.sort_values(["_order", *KEY_FIELDS], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def has_regressions(comparison: pd.DataFrame) -> bool:
    """True when any row of a ``compare_accuracy`` table is a regression."""
    return bool((comparison["change"] == "regression").any()) if len(comparison) else False


def format_report(comparison: pd.DataFrame, *, show_unchanged: bool = False) -> str:
    """A plain-text table of the changes (regressions first) and a count per kind of change."""
    if not len(comparison):
        return "nothing to compare: both result sets are empty"
    shown = comparison if show_unchanged else comparison[comparison["change"] != "unchanged"]
    header = ["change", "implementation", "op", "pass", "case", "dtype", "device", "reason"]
    rows = [[str(r[c]) for c in header] for _, r in shown.iterrows()]
    counts = comparison["change"].value_counts()
    summary = ", ".join(f"{int(counts[c])} {c}" for c in CHANGES if c in counts.index)
    if not rows:
        return f"no changes ({summary})"
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join([*lines, "", summary])


def compare_timing(base: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Timing regressions (median time and spread, per machine fingerprint): not written yet."""
    raise NotImplementedError("timing comparison arrives with the timing runner; "
                              "use compare_accuracy")


def compare(base: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Everything ``softmax-bench compare`` reports; today that is the accuracy comparison."""
    return compare_accuracy(base, new)
