"""Severity, the two standards, padding attribution and zero exact values in the report
(issue 13 items 2, 4, 5, 9), on runs derived from the fixture with hand-made records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reports.data import load_report_data
from reports.pages import overview, stability
from reports.summaries import PADDING_FAMILY, leaderboard, stability_cells
from tests.reports.runs import derived_run

IMPL = "numpy.softmax_shifted"


def _is(r: dict[str, Any], family: str, dtype: str = "float32", pass_: str = "forward") -> bool:
    return (r["implementation"] == IMPL and r["case_family"] == family and r["dtype"] == dtype
            and r["pass"] == pass_ and r["status"] == "ok")


def test_a_padding_failure_is_charged_to_padding_rows_not_the_family(tmp_path: Path) -> None:
    def padded(r: dict[str, Any]) -> dict[str, Any]:
        if r["implementation"] == IMPL and r["case_family"] == "pos_inf" and r["status"] == "ok":
            return {**r, "verdict": "inaccurate", "severity": "minor", "decided_by": "padding",
                    "special_verdict": "pass", "special_severity": "none", "limit_ratio": 1.1}
        return r

    data = load_report_data([derived_run(tmp_path / "pad", edit=padded)])
    cells = stability_cells(data.accuracy, ["pos_inf"])
    family, pad = cells[(IMPL, "pos_inf")], cells[(IMPL, PADDING_FAMILY)]
    assert (family.verdict, family.severity, family.failing) == ("pass", "none", 0)
    assert (pad.verdict, pad.severity) == ("inaccurate", "minor")
    assert pad.failing == pad.total == family.total > 0
    page = stability.build(data)
    assert page.context["families"][-1] == PADDING_FAMILY
    baseline = load_report_data([derived_run(tmp_path / "plain")])
    assert (IMPL, PADDING_FAMILY) not in stability_cells(baseline.accuracy, ["pos_inf"])


def test_leaderboards_lead_with_severity_standards_and_hide_zero_ulp_blowups(
        tmp_path: Path) -> None:
    def edited(r: dict[str, Any]) -> dict[str, Any]:
        if _is(r, "random_normal") and r["case_status"] == "scored":
            return {**r, "verdict": "inaccurate", "severity": "major", "max_ulp": 6.5e32,
                    "max_ulp_nonzero": 3.0, "zero_abs_err": 5.0, "componentwise": False,
                    "normwise": True, "limit_ratio": 1e31}
        if _is(r, "smoke_small") and r["case_status"] == "scored":
            return {**r, "componentwise": True, "normwise": True, "max_ulp_nonzero": 0.5}
        return r

    data = load_report_data([derived_run(tmp_path / "zero", edit=edited)])
    board = leaderboard(data.accuracy)
    row = board[(board["implementation"] == IMPL) & (board["dtype"] == "float32")
                & (board["pass"] == "forward")].iloc[0]
    assert row["worst_severity"] == "major"
    assert row["max_ulp"] < 1e30 and row["zero_abs_err"] == 5.0
    assert row["normwise"] == row["normwise_known"] > 0
    assert row["componentwise"] < row["cases"]
    html = overview.build(data).context
    words = " ".join(s["text"] for s in html["severity_words"])
    assert "numpy: critical" in words or "numpy: major" in words
    standards = [s for s in html["standards_words"] if s["what"] == "softmax · forward · float32"]
    assert standards and "normwise standard on every case" in standards[0]["text"]


def test_the_overview_answers_fused_against_composed_in_a_sentence(tmp_path: Path) -> None:
    data = load_report_data([derived_run(tmp_path / "run")])
    words = overview.build(data).context["fused_words"]
    assert words, "the fixture has fused and composed cross-entropy pairs"
    for line in words:
        assert "the fused cross-entropy is more stable than the composed one in" in line["text"]
        assert " of " in line["text"] and "pairs" in line["text"]
