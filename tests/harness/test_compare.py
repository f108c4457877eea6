"""harness.store.compare: regressions between two result sets (accuracy: deterministic, no
statistics; timing: a factor and a Mann-Whitney U test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import store as results
from harness.store import compare

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
    assert compare.regression_counts(table) == {"accuracy": 4, "timing": 0}
    assert list(table["change"])[:4] == ["regression"] * 4  # regressions sort first
    reason = table.set_index("case").loc["worse_verdict", "reason"]
    assert reason == "verdict pass -> flushes_subnormals"
    report = compare.format_report(table)
    assert "ulp_growth" in report and "same " not in report and "4 regression" in report


def test_identical_results_have_no_regressions(tmp_path: Path) -> None:
    records = [rec("a"), rec("b", verdict="inaccurate", cls="outside_bound", max_ulp=9e6)]
    table = compare.compare_accuracy(frame(tmp_path, "b", records), frame(tmp_path, "n", records))
    assert set(table["change"]) == {"unchanged"}
    assert compare.regression_counts(table) == {"accuracy": 0, "timing": 0}
    assert compare.format_report(table).startswith("no changes")


def test_tolerances_are_parameters(tmp_path: Path) -> None:
    base = frame(tmp_path, "b", [rec("a", max_ulp=10.0)])
    new = frame(tmp_path, "n", [rec("a", max_ulp=10.4)])
    strict = compare.compare_accuracy(base, new, ulp_abs_tol=0.1, ulp_rel_tol=0.0)
    assert changes(strict) == {"a": "regression"}


def test_empty_inputs_compare_cleanly(tmp_path: Path) -> None:
    empty = frame(tmp_path, "e", [])
    table = compare.compare_accuracy(empty, empty)
    assert len(table) == 0
    assert compare.regression_counts(table) == {"accuracy": 0, "timing": 0}
    assert "change" in table.columns


def test_repeated_records_keep_the_newest(tmp_path: Path) -> None:
    base = frame(tmp_path, "b", [rec("a", verdict="crash", status="crash", cls=None,
                                     max_ulp=None), rec("a")])
    new = frame(tmp_path, "n", [rec("a")])
    assert changes(compare.compare_accuracy(base, new)) == {"a": "unchanged"}


# -- timing (asv's rule: a factor and a Mann-Whitney U test on the raw samples) -----------------


def timed(case: str, median_ms: float, *, n: int = 20, spread: float = 0.01, seed: int = 0,
          status: str = "ok", impl: str = "torch.nn.functional.softmax") -> dict[str, Any]:
    """A timing record whose samples scatter by +-spread around median_ms."""
    rng = np.random.default_rng(seed)
    samples = (median_ms * 1e-3 * (1 + spread * rng.uniform(-1, 1, n))).tolist()
    ok = status == "ok"
    return {"implementation": impl, "framework": "torch", "op": "softmax", "pass": "forward",
            "device": "cpu", "dtype": "float32", "case": case, "case_family": "throughput",
            "shape": [256, 32000], "status": status, "message": "" if ok else "worker killed",
            "median_s": float(np.median(samples)) if ok else None,
            "samples_s": samples if ok else None, "rounds": n if ok else None}


def timing_frame(tmp_path: Path, name: str, records: list[dict[str, Any]],
                 fingerprint: str = "abc123") -> pd.DataFrame:
    store = results.RunDirectory.create(tmp_path / name, {"suite": "throughput"},
                                        env={"machine_fingerprint": fingerprint})
    for r in records:
        store.append(r)
    store.finish()
    return results.load(tmp_path / name)


def test_timing_regression_needs_both_the_factor_and_significance(tmp_path: Path) -> None:
    base = timing_frame(tmp_path, "base", [
        timed("same", 10.0, seed=1), timed("slower", 10.0, seed=2),
        timed("a_little_slower", 10.0, seed=3), timed("faster", 10.0, seed=4),
        timed("noisy", 10.0, spread=0.6, seed=5), timed("crashes_now", 10.0, seed=6),
        timed("few_rounds", 10.0, n=6, seed=7), timed("was_unsupported", 1.0, status="unsupported"),
    ])
    new = timing_frame(tmp_path, "new", [
        timed("same", 10.0, seed=11), timed("slower", 15.0, seed=12),
        timed("a_little_slower", 10.5, seed=13), timed("faster", 5.0, seed=14),
        # 20% slower in the median, but the samples overlap too much to say so at p < 0.002
        timed("noisy", 12.0, spread=0.6, seed=15), timed("crashes_now", 0, status="crash"),
        timed("few_rounds", 20.0, n=6, seed=17), timed("was_unsupported", 1.0),
    ])
    table = compare.compare_timing(base, new)
    assert changes(table) == {
        "same": "unchanged", "slower": "regression", "a_little_slower": "unchanged",
        "faster": "improvement", "noisy": "unchanged", "crashes_now": "regression",
        "few_rounds": "not_comparable", "was_unsupported": "not_comparable"}
    rows = table.set_index("case")
    assert rows.loc["slower", "ratio"] == pytest.approx(1.5, rel=0.02)
    assert rows.loc["slower", "p_value"] < compare.DEFAULT_ALPHA
    # significant (20 vs 20 clean samples), but below the 1.1 factor
    assert rows.loc["a_little_slower", "p_value"] < compare.DEFAULT_ALPHA
    assert rows.loc["noisy", "p_value"] >= compare.DEFAULT_ALPHA
    assert "cannot reach p < 0.002" in rows.loc["few_rounds", "reason"]
    assert "new crash" in rows.loc["crashes_now", "reason"]
    assert list(table["change"])[:2] == ["regression", "regression"]
    # the thresholds are parameters
    loose = compare.compare_timing(base, new, min_factor=1.02)
    assert changes(loose)["a_little_slower"] == "regression"


def test_timing_compares_only_within_one_machine(tmp_path: Path) -> None:
    base = timing_frame(tmp_path, "base", [timed("a", 10.0)], fingerprint="machine-a")
    new = timing_frame(tmp_path, "new", [timed("a", 30.0, seed=3)], fingerprint="machine-b")
    table = compare.compare_timing(base, new)
    assert changes(table) == {"a": "not_comparable"}
    assert "different machines" in table["reason"].iloc[0]


def test_min_p_value_of_the_mann_whitney_test() -> None:
    # 6 rounds a side can never give p < 0.002; 7 can (so the suites ask for at least 10)
    assert compare.min_p_value(6, 6) > compare.DEFAULT_ALPHA > compare.min_p_value(7, 7)
    assert compare.min_p_value(0, 5) == 1.0


def test_compare_joins_accuracy_and_timing(tmp_path: Path) -> None:
    base = timing_frame(tmp_path, "base", [rec("acc"), timed("t", 10.0)])
    new = timing_frame(tmp_path, "new", [rec("acc", max_ulp=50.0), timed("t", 20.0, seed=9)])
    table = compare.compare(base, new)
    assert {(r.case, r.kind, r.change) for r in table.itertuples()} == {
        ("acc", "accuracy", "regression"), ("t", "timing", "regression")}
    assert "timing" in compare.format_report(table)
    assert compare.is_timing(base).tolist() == [False, True]
    assert compare.regression_counts(table) == {"accuracy": 1, "timing": 1}
