"""harness.compare: accuracy regressions between two result sets (deterministic, no statistics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness import compare, results

ENV = {"machine_fingerprint": "abc123"}


def rec(case: str, verdict: str = "pass", cls: str | None = "faithful",
        max_ulp: float | None = 0.8, status: str = "ok", impl: str = "numpy.softmax_naive"
        ) -> dict[str, Any]:
    return {"implementation": impl, "framework": "numpy", "op": "softmax", "pass": "forward",
            "device": "cpu", "dtype": "float32", "case": case, "case_family": "smoke_small",
            "shape": [2, 3], "status": status, "message": "", "verdict": verdict,
            "accuracy_class": cls, "max_ulp": max_ulp}


def frame(tmp_path: Path, name: str, records: list[dict[str, Any]]) -> pd.DataFrame:
    store = results.RunDirectory.create(tmp_path / name, {"suite": "quick"}, env=ENV)
    for r in records:
        store.append(r)
    store.finish()
    return results.load(tmp_path / name)


def changes(table: pd.DataFrame) -> dict[str, str]:
    return dict(zip(table["case"], table["change"]))


def test_regressions_improvements_and_unchanged(tmp_path: Path) -> None:
    base = frame(tmp_path, "base", [
        rec("same"), rec("tiny_growth", max_ulp=10.0), rec("ulp_growth", max_ulp=10.0),
        rec("worse_verdict"), rec("worse_class", cls="correctly_rounded", max_ulp=0.5),
        rec("better", verdict="inaccurate", cls="outside_bound", max_ulp=5e6),
        rec("crashes_now"), rec("gone"), rec("was_unavailable", verdict="unavailable",
                                             status="unavailable", cls=None, max_ulp=None),
        rec("convention", verdict="convention_differs", cls=None, max_ulp=None),
    ])
    new = frame(tmp_path, "new", [
        rec("same"), rec("tiny_growth", max_ulp=10.4), rec("ulp_growth", max_ulp=12.0),
        rec("worse_verdict", verdict="flushes_subnormals"),
        rec("worse_class", cls="faithful", max_ulp=0.6),
        rec("better", cls="within_bound", max_ulp=40.0),
        rec("crashes_now", verdict="crash", status="crash", cls=None, max_ulp=None),
        rec("was_unavailable"), rec("added"),
        rec("convention", verdict="convention_differs", cls=None, max_ulp=None),
    ])
    table = compare.compare_accuracy(base, new)
    assert changes(table) == {
        "same": "unchanged", "tiny_growth": "unchanged", "ulp_growth": "regression",
        "worse_verdict": "regression", "worse_class": "regression", "better": "improvement",
        "crashes_now": "regression", "gone": "only_in_base", "added": "only_in_new",
        "was_unavailable": "not_comparable", "convention": "unchanged",
    }
    assert compare.has_regressions(table)
    assert list(table["change"])[:4] == ["regression"] * 4  # regressions sort first
    reason = table.set_index("case").loc["worse_verdict", "reason"]
    assert reason == "verdict pass -> flushes_subnormals"
    report = compare.format_report(table)
    assert "ulp_growth" in report and "same " not in report and "4 regression" in report


def test_identical_results_have_no_regressions(tmp_path: Path) -> None:
    records = [rec("a"), rec("b", verdict="inaccurate", cls="outside_bound", max_ulp=9e6)]
    table = compare.compare_accuracy(frame(tmp_path, "b", records), frame(tmp_path, "n", records))
    assert set(table["change"]) == {"unchanged"} and not compare.has_regressions(table)
    assert compare.format_report(table).startswith("no changes")


def test_tolerances_are_parameters(tmp_path: Path) -> None:
    base = frame(tmp_path, "b", [rec("a", max_ulp=10.0)])
    new = frame(tmp_path, "n", [rec("a", max_ulp=10.4)])
    strict = compare.compare_accuracy(base, new, ulp_abs_tol=0.1, ulp_rel_tol=0.0)
    assert changes(strict) == {"a": "regression"}


def test_empty_inputs_compare_cleanly(tmp_path: Path) -> None:
    empty = frame(tmp_path, "e", [])
    table = compare.compare_accuracy(empty, empty)
    assert len(table) == 0 and not compare.has_regressions(table)
    assert "change" in table.columns


def test_repeated_records_keep_the_newest(tmp_path: Path) -> None:
    base = frame(tmp_path, "b", [rec("a", verdict="crash", status="crash", cls=None,
                                     max_ulp=None), rec("a")])
    new = frame(tmp_path, "n", [rec("a")])
    assert changes(compare.compare_accuracy(base, new)) == {"a": "unchanged"}


def test_timing_comparison_is_a_clear_seam() -> None:
    with pytest.raises(NotImplementedError, match="timing"):
        compare.compare_timing(pd.DataFrame(), pd.DataFrame())
