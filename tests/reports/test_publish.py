"""Publishing: the data beside the site (CSV, Parquet, run.json), the single-file report,
permalinks and the history page (issue 17)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from harness import store
from harness.store.run_directory import _parse_lines
from reports import build_report, build_single_file
from reports.datafiles import CSV, PARQUET
from tests.reports.runs import FIXTURE, derived_run, read_run


def test_data_folder_holds_every_record_as_csv_and_parquet(fixture_site: Path) -> None:
    _, records = read_run()
    csv = pd.read_csv(fixture_site / CSV)
    parquet = pd.read_parquet(fixture_site / PARQUET)
    assert len(csv) == len(parquet) == len(records)
    assert list(csv.columns) == list(parquet.columns)
    loaded = store.load(FIXTURE)
    assert parquet["max_ulp"].dtype == "float64"
    assert str(parquet["rounds"].dtype) == "Int64"
    assert str(parquet["componentwise"].dtype) == "boolean"
    assert parquet["implementation"].tolist() == loaded["implementation"].tolist()
    pd.testing.assert_series_equal(parquet["max_ulp"], loaded["max_ulp"], check_names=False)
    assert [json.loads(v) for v in parquet["shape"]] == loaded["shape"].tolist()
    assert set(parquet["machine"]) == {"vm"}
    runs = sorted((fixture_site / "data" / "runs").glob("*/run.json"))
    assert len(runs) == 1
    assert json.loads(runs[0].read_text())["run_id"] == store.read_run(FIXTURE)["run_id"]
    index = (fixture_site / "index.html").read_text()
    for target in (CSV, PARQUET, runs[0].relative_to(fixture_site).as_posix()):
        assert f'href="{target}"' in index


def test_every_table_row_has_a_stable_unique_anchor(fixture_site: Path,
                                                    tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_report([FIXTURE], again)
    for page in sorted(fixture_site.rglob("*.html")):
        text = page.read_text()
        ids = re.findall(r' id="([^"]+)"', text)
        assert len(ids) == len(set(ids)), f"{page.name}: duplicate ids"
        # every row of the data tables (the table macro and the stability matrix)
        for table in re.findall(r'<table id="t-.*?</table>', text, re.S):
            body = table.split("<tbody>", 1)[-1]
            rows = re.findall(r"<tr(?: id=\"([^\"]+)\")?>", body)
            assert rows and all(rows), f"{page.name}: a table row without an anchor"
        assert text == (again / page.relative_to(fixture_site)).read_text()


def test_single_file_holds_every_page_with_plotly_once(fixture_site: Path,
                                                       tmp_path: Path) -> None:
    out = build_single_file([FIXTURE], tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    pages = sorted(p.relative_to(fixture_site).as_posix() for p in fixture_site.rglob("*.html"))
    assert re.findall(r'<template id="page:([^"]+)"', text) == [
        p for p in re.findall(r'<template id="page:([^"]+)"', text)]
    assert sorted(re.findall(r'<template id="page:([^"]+)"', text)) == pages
    assert text.count("plotly.js (") == 1 or text.count("plotly.js v") <= 1
    assert "<script src=" not in text and "<link rel=\"stylesheet\"" not in text
    assert out.stat().st_size < 10 * 10**6
    assert build_single_file([FIXTURE], tmp_path / "again.html").read_bytes() == out.read_bytes()


def test_single_file_refuses_a_directory(tmp_path: Path) -> None:
    from reports import ReportError

    with pytest.raises(ReportError):
        build_single_file([FIXTURE], tmp_path)


def _scipy(version: str):
    def edit(run: dict) -> None:
        run["environment"]["framework_versions"]["scipy"] = version
        run["run_id"] = f"20261127T000000Z-scipy{version}"
    return edit


def test_history_page_flags_accuracy_changes_between_versions(tmp_path: Path) -> None:
    old = derived_run(tmp_path / "old", edit_run=_scipy("1.15.3"),
                      edit=lambda r: {**r, "verdict": "error", "status": "error",
                                      "severity": "major", "componentwise": False,
                                      "normwise": False, "max_ulp": None}
                      if r["implementation"] == "scipy.special.softmax"
                      and r["dtype"] == "float32" and r.get("verdict") == "pass" else r)
    new = derived_run(tmp_path / "new", edit_run=_scipy("1.17.1"))
    site = tmp_path / "site"
    build_report([old, new], site)
    history = (site / "history.html").read_text()
    assert "scipy 1.15.3 → 1.17.1" in history
    assert "scipy.special.softmax" in history and ">better<" in history
    assert 'href="history.html"' in (site / "index.html").read_text()
    # one version only: no history page
    build_report([FIXTURE], tmp_path / "plain")
    assert not (tmp_path / "plain" / "history.html").exists()


def test_load_with_orjson_equals_the_standard_library(tmp_path: Path) -> None:
    text = (FIXTURE / "results.jsonl").read_text(encoding="utf-8")
    text += '{"a": NaN, "b": Infinity, "c": 123456789012345678901234567890}\n'
    records, clean = _parse_lines(tmp_path / "x", text)
    expected = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert json.dumps(records) == json.dumps(expected)
    assert clean == len(text.encode())
    assert io  # (kept for symmetry with the CSV reader above)
