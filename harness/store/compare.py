"""Compare two sets of results (as ``harness.store.load`` returns them) for regressions.

Accuracy is deterministic, so no statistics: a record regresses when its verdict or accuracy
class gets worse, or its ``max_ulp`` grows beyond a small tolerance. Timing needs statistics
(asv's rule): a timing record regresses when its median grows by at least a factor (default
1.1) *and* a Mann-Whitney U test on the raw per-round samples rejects equality (p < 0.002), and
only between records from the same machine fingerprint; a new error, crash or timeout is a
regression too. ``compare`` joins both tables (column ``kind``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.store.schema import KEY_FIELDS
from harness.vocabulary import ACCURACY_CLASSES, NOT_MEASURED, VERDICT_RANK

__all__ = [
    "CHANGES",
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_FACTOR",
    "DEFAULT_ULP_ABS_TOL",
    "DEFAULT_ULP_REL_TOL",
    "compare",
    "compare_accuracy",
    "compare_timing",
    "format_report",
    "is_timing",
    "min_p_value",
    "regression_counts",
]

# Absorbs refinements of the reference or of the metric in the last bits (0.30 -> 0.31 ulp),
# never a change of algorithm: any real regression moves max_ulp by far more, or the class.
DEFAULT_ULP_ABS_TOL = 0.25
DEFAULT_ULP_REL_TOL = 0.05
# asv's defaults for `asv compare` / `asv continuous`: factor 1.1 and Mann-Whitney p < 0.002.
DEFAULT_ALPHA = 0.002
DEFAULT_MIN_FACTOR = 1.1
CHANGES = ("regression", "improvement", "changed", "unchanged", "not_comparable",
           "only_in_base", "only_in_new")
# Outcomes that say nothing about numerics: the framework or dtype was not there, or the task
# was skipped.
_NOT_MEASURED = NOT_MEASURED
_CLASS_RANK = {c: i for i, c in enumerate(ACCURACY_CLASSES)}
_COLUMNS = ("verdict", "accuracy_class", "max_ulp", "status", "message")


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per key (the last one: a resumed or repeated task keeps its newest record)."""
    keep = [c for c in (*KEY_FIELDS, *_COLUMNS) if c in frame.columns]
    return frame[keep].drop_duplicates(subset=list(KEY_FIELDS), keep="last")


def _rank(table: Mapping[str, int], value: Any) -> int | None:
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
    verdict (``vocabulary.VERDICTS`` order), a worse accuracy class, or ``max_ulp`` growing by more
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


def regression_counts(comparison: pd.DataFrame) -> dict[str, int]:
    """How many rows of a comparison are regressions, per kind: ``{"accuracy": n, "timing": m}``
    (a ``compare_accuracy`` table, without ``kind``, counts as accuracy). ``softmax-bench
    compare`` fails on an accuracy regression always and on a timing one on request."""
    if not len(comparison):
        return {"accuracy": 0, "timing": 0}
    regressed = comparison[(comparison["change"] == "regression").fillna(False)]
    timing = int((regressed["kind"] == "timing").sum()) if "kind" in regressed else 0
    return {"accuracy": len(regressed) - timing, "timing": timing}


def format_report(comparison: pd.DataFrame, *, show_unchanged: bool = False) -> str:
    """A plain-text table of the changes (regressions first) and a count per kind of change."""
    if not len(comparison):
        return "nothing to compare: both result sets are empty"
    shown = comparison if show_unchanged else comparison[comparison["change"] != "unchanged"]
    header = ["change", "implementation", "op", "pass", "case", "dtype", "device", "reason"]
    if "kind" in comparison.columns:
        header.insert(1, "kind")
    rows = [[str(r[c]) for c in header] for _, r in shown.iterrows()]
    counts = comparison["change"].value_counts()
    summary = ", ".join(f"{int(counts[c])} {c}" for c in CHANGES if c in counts.index)
    if not rows:
        return f"no changes ({summary})"
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join([*lines, "", summary])


_TIMING_COLUMNS = ("median_s", "samples_s", "status", "message", "machine_fingerprint")
_FAILED = frozenset({"error", "crash", "timeout"})


def is_timing(frame: pd.DataFrame) -> pd.Series:
    """Which rows are timing records (throughput suites), as opposed to accuracy records."""
    if not len(frame):
        return pd.Series([], dtype=bool, index=frame.index)
    family = frame["case_family"].astype("string") if "case_family" in frame else None
    timed = frame["median_s"].notna() if "median_s" in frame else False
    by_family = (family == "throughput").fillna(False) if family is not None else False
    return pd.Series(by_family | timed, index=frame.index).astype(bool)


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _samples(value: Any) -> list[float]:
    if not isinstance(value, (list, tuple)):
        return []
    return [float(v) for v in value if v is not None and math.isfinite(float(v))]


def min_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided p a Mann-Whitney U test can give with n1 and n2 samples."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def _classify_timing(row: pd.Series, alpha: float, min_factor: float
                     ) -> tuple[str, str, float | None, float | None]:
    """(change, reason, ratio new/base, p) for one joined timing row."""
    if row["_merge"] == "left_only":
        return "only_in_base", "no record in the new results", None, None
    if row["_merge"] == "right_only":
        return "only_in_new", "no record in the base results", None, None
    fb, fn = _text(row.get("machine_fingerprint_base")), _text(row.get("machine_fingerprint_new"))
    if fb is None or fn is None or fb != fn:
        return "not_comparable", (f"different machines (fingerprint {fb} vs {fn}): timings "
                                  "compare on one machine only"), None, None
    sb, sn = _text(row.get("status_base")), _text(row.get("status_new"))
    if sb in _NOT_MEASURED or sn in _NOT_MEASURED:
        return "not_comparable", f"{sb} -> {sn}", None, None
    if sb == "ok" and sn in _FAILED:
        return "regression", f"new {sn}: {_text(row.get('message_new')) or ''}".strip(), None, \
            None
    if sb in _FAILED and sn == "ok":
        return "improvement", f"fixed: {sb} -> ok", None, None
    if sb != "ok" or sn != "ok":
        return ("unchanged" if sb == sn else "changed"), f"{sb} -> {sn}", None, None
    base, new = _samples(row.get("samples_s_base")), _samples(row.get("samples_s_new"))
    mb, mn = _num(row.get("median_s_base")), _num(row.get("median_s_new"))
    if mb is None or mn is None or mb <= 0:
        return "not_comparable", "no median time", None, None
    ratio = mn / mb
    if not base or not new:
        return "not_comparable", f"x{ratio:.3f}, but no raw samples to test", ratio, None
    if min_p_value(len(base), len(new)) >= alpha:
        return "not_comparable", (f"x{ratio:.3f}, but {len(base)} and {len(new)} rounds cannot "
                                  f"reach p < {alpha:g}"), ratio, None
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(base, new, alternative="two-sided").pvalue)
    if math.isnan(p):  # every sample equal on both sides
        p = 1.0
    shown = f"x{ratio:.3f} (median {mb * 1e3:.4g} -> {mn * 1e3:.4g} ms), p={p:.2g}"
    if p < alpha and ratio >= min_factor:
        return "regression", f"slower {shown}", ratio, p
    if p < alpha and ratio <= 1.0 / min_factor:
        return "improvement", f"faster {shown}", ratio, p
    return "unchanged", shown, ratio, p


def compare_timing(base: pd.DataFrame, new: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA,
                   min_factor: float = DEFAULT_MIN_FACTOR) -> pd.DataFrame:
    """Join the timing records of ``base`` and ``new`` on (implementation, op, pass, case,
    dtype, device) and classify each key.

    A regression is a median at least ``min_factor`` times the base's whose raw samples
    (``samples_s``, one per round) differ by a two-sided Mann-Whitney U test with
    ``p < alpha``, or a new error/crash/timeout; an improvement is the mirror image. Records
    from different machine fingerprints, or with too few rounds for the test to ever reach
    ``alpha``, are ``not_comparable`` (with the reason). Columns: the key, ``median_s`` and
    ``status`` of each side, ``ratio`` (new/base), ``p_value``, ``change``, ``reason``;
    regressions first.
    """
    def latest(frame: pd.DataFrame) -> pd.DataFrame:
        keep = [c for c in (*KEY_FIELDS, *_TIMING_COLUMNS) if c in frame.columns]
        return frame[keep].drop_duplicates(subset=list(KEY_FIELDS), keep="last")

    columns = [*KEY_FIELDS, *(f"{c}_{side}" for c in ("median_s", "status")
                              for side in ("base", "new")), "ratio", "p_value", "change", "reason"]
    if not len(base) and not len(new):
        return pd.DataFrame(columns=columns)
    joined = pd.merge(latest(base), latest(new), on=list(KEY_FIELDS), how="outer",
                      suffixes=("_base", "_new"), indicator=True)
    decided = [_classify_timing(row, alpha, min_factor) for _, row in joined.iterrows()]
    joined["change"] = pd.Series([d[0] for d in decided], index=joined.index, dtype="string")
    joined["reason"] = pd.Series([d[1] for d in decided], index=joined.index, dtype="string")
    joined["ratio"] = pd.Series([d[2] for d in decided], index=joined.index, dtype="float64")
    joined["p_value"] = pd.Series([d[3] for d in decided], index=joined.index, dtype="float64")
    joined = joined.drop(columns="_merge")
    order = {c: i for i, c in enumerate(CHANGES)}
    joined["_order"] = joined["change"].map(order)
    ordered = joined.sort_values(["_order", *KEY_FIELDS], kind="stable").drop(columns="_order")
    rest = [c for c in ordered.columns if c not in columns]
    return ordered[[c for c in columns if c in ordered.columns] + rest].reset_index(drop=True)


def compare(base: pd.DataFrame, new: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA,
            min_factor: float = DEFAULT_MIN_FACTOR, ulp_abs_tol: float = DEFAULT_ULP_ABS_TOL,
            ulp_rel_tol: float = DEFAULT_ULP_REL_TOL) -> pd.DataFrame:
    """Everything ``softmax-bench compare`` reports: the accuracy comparison of the accuracy
    records and the timing comparison of the timing records, one table with ``kind``
    ("accuracy" or "timing")."""
    tb, tn = is_timing(base), is_timing(new)
    parts = []
    accuracy = compare_accuracy(base[~tb], new[~tn], ulp_abs_tol=ulp_abs_tol,
                                ulp_rel_tol=ulp_rel_tol)
    if len(accuracy) or not (tb.any() or tn.any()):
        parts.append(accuracy.assign(kind="accuracy"))
    if tb.any() or tn.any():
        parts.append(compare_timing(base[tb], new[tn], alpha=alpha, min_factor=min_factor)
                     .assign(kind="timing"))
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    order = {c: i for i, c in enumerate(CHANGES)}
    table["_order"] = table["change"].map(order)
    return (table.sort_values(["_order", "kind", *KEY_FIELDS], kind="stable")
            .drop(columns="_order").reset_index(drop=True))
