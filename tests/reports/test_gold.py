"""The HTML of the fixture run's report against stored gold files (coverage.py's habit).

Scrubbed before comparing: the repository's location, the report builder's version and the
asset names that carry a hash or plotly's version (so that a CSS edit or a plotly upgrade does
not touch every gold file). After an intended change, regenerate them with
``SOFTMAX_BENCH_UPDATE_GOLD=1 pytest tests/reports/test_gold.py`` and review the diff.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from harness import store as results
from reports.data import load_report_data
from reports.pages.common import impl_path
from reports.site import render_site, report_version
from tests.reports.runs import FIXTURE, ROOT, regressed_run

GOLD = Path(__file__).resolve().parent / "gold"
PAGES = ("index.html", "accuracy.html", "stability.html", "throughput.html",
         "cross-entropy.html", "implementations.html", impl_path("numpy.softmax_naive"),
         impl_path("hostile.softmax_<i>x</i>"))


def scrub(text: str) -> str:
    # paths into the checkout (the fixture's run directory); the fixture's own recorded data
    # (its interpreter's path, say) is fixed text and stays as it is
    text = text.replace(str(ROOT / "tests"), "<repo>/tests")
    text = re.sub(r"assets/report-[0-9a-f]{10}\.(css|js)", r"assets/report-HASH.\1", text)
    text = re.sub(r"assets/plotly-cartesian-[0-9][0-9.]*\.min\.js",
                  "assets/plotly-VERSION.min.js", text)
    return text.replace(f"softmax-bench {report_version()}", "softmax-bench VERSION")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    files = render_site(load_report_data([FIXTURE]))
    runs = tmp_path_factory.mktemp("gold-runs")
    regressed = regressed_run(runs / "regressed")
    compared = render_site(load_report_data([regressed]), baseline=results.load(FIXTURE),
                           baseline_runs=["fixture"])
    out = {name: files[name].decode("utf-8") for name in PAGES}
    out["comparison.html"] = compared["comparison.html"].decode("utf-8").replace(
        str(runs), "<runs>")
    return out


@pytest.mark.parametrize("name", [*PAGES, "comparison.html"])
def test_page_matches_gold(rendered: dict[str, str], name: str) -> None:
    actual = scrub(rendered[name])
    gold = GOLD / name.replace("/", "__")
    if os.environ.get("SOFTMAX_BENCH_UPDATE_GOLD") == "1":
        gold.parent.mkdir(parents=True, exist_ok=True)
        gold.write_text(actual, encoding="utf-8")
    if not gold.exists():
        pytest.fail(f"no gold file {gold}; create it with SOFTMAX_BENCH_UPDATE_GOLD=1")
    expected = gold.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(list(difflib.unified_diff(expected.splitlines(True),
                                                 actual.splitlines(True), "gold", "now"))[:80])
        pytest.fail(f"{name} differs from {gold.name} (SOFTMAX_BENCH_UPDATE_GOLD=1 to accept):"
                    f"\n{diff}")
