"""The report in a real browser: Debian's chromium, driven by Playwright (sync API).

Every page loads from file:// with no console error and no request that is not a file; tables
sort and filter; charts draw; text from a plugin stays text. A screenshot of the overview is
kept for CI in $SOFTMAX_BENCH_ARTIFACTS (default: artifacts/ in the repository). Chromium is
required: `make test` installs it (scripts/ensure-browser.sh), and these tests fail, not skip,
without it (test tools cannot download browsers here, so Playwright gets chromium's path).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from reports.pages.common import impl_path
from tests.reports.runs import ROOT


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = (os.environ.get("SOFTMAX_BENCH_CHROMIUM") or shutil.which("chromium")
                  or shutil.which("chromium-browser"))
    if executable is None:
        pytest.fail("chromium is not installed: the report's browser tests need Debian's "
                    "chromium package (make test installs it as root: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


class Watched:
    """A page with its console errors, uncaught exceptions and non-file requests recorded."""

    def __init__(self, browser: Browser, **options: Any) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1400, "height": 900}, **options)
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        self.page.on("request", lambda r: None if r.url.startswith(("file:", "data:"))
                     else self.problems.append(f"request: {r.url}"))
        self.page.on("requestfailed", lambda r: self.problems.append(
            f"failed request: {r.url}"))

    def open(self, path: Path) -> Page:
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")
        return self.page


ALL_CHARTS_DRAWN = """() => [...document.querySelectorAll('div.chart')]
    .every(d => d.getAttribute('data-drawn') && d.querySelector('.main-svg'))"""


def test_every_page_loads_offline_without_errors(browser: Browser, fixture_site: Path,
                                                 comparison_site: Path) -> None:
    """Every page; on the site-wide pages and one implementation page, every chart drawn (a
    viewport as tall as the page brings them all near). The other implementation pages load
    without drawing: parsing plotly.js on each would take most of this test's time, and every
    figure is checked against plotly's schema in test_site.py."""
    pages = sorted(fixture_site.rglob("*.html")) + [comparison_site / "comparison.html"]
    draw = {p for p in pages if p.parent.name != "impl"}
    draw.add(fixture_site / impl_path("numpy.softmax_naive"))
    watched = Watched(browser)
    failures = {}
    for path in pages:
        before = len(watched.problems)
        page = watched.open(path)
        if path in draw:
            height = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": 1400, "height": min(int(height), 30000)})
            page.wait_for_function(ALL_CHARTS_DRAWN, timeout=20000)
            page.set_viewport_size({"width": 1400, "height": 900})
        if len(watched.problems) > before:
            failures[path.name] = watched.problems[before:]
    assert not failures
    assert len(pages) > 20


def test_charts_draw_and_show_values_on_hover(browser: Browser, fixture_site: Path) -> None:
    watched = Watched(browser)
    page = watched.open(fixture_site / "throughput.html")
    chart = page.locator("div.chart").first
    chart.scroll_into_view_if_needed()
    page.wait_for_selector("div.chart .main-svg")
    points = chart.locator("g.trace.scatter path.point")
    assert points.count() > 0
    points.first.hover(force=True)
    label = page.locator("g.hoverlayer g.hovertext")
    label.first.wait_for(state="attached", timeout=5000)
    assert "GB/s" in label.first.text_content()
    assert not watched.problems


def test_tables_sort_by_clicking_a_header(browser: Browser, fixture_site: Path) -> None:
    watched = Watched(browser)
    page = watched.open(fixture_site / "implementations.html")
    table = page.locator("#t-implementations")
    header = table.locator("th", has_text="records").first

    def column(index: int) -> list[float]:
        cells = table.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()
        return [float(c) for c in cells]

    index = [h.strip() for h in table.locator("thead th").all_inner_texts()].index(
        header.inner_text().strip())
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    values = column(index)
    assert values == sorted(values) and values[0] < values[-1]
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert column(index) == sorted(values, reverse=True)
    assert not watched.problems


def test_tables_filter_as_you_type(browser: Browser, fixture_site: Path) -> None:
    watched = Watched(browser)
    page = watched.open(fixture_site / "index.html")
    rows = page.locator("#t-coverage tbody tr")
    total = rows.count()
    page.locator('input.filter[data-table="t-coverage"]').fill("hostile numpy")
    visible = [t for t in rows.all_inner_texts() if t]
    shown = page.locator("#t-coverage tbody tr:not([hidden])")
    assert 0 < shown.count() < total
    assert all("hostile" in t for t in shown.all_inner_texts())
    assert len(visible) == total  # hidden rows stay in the document (all_inner_texts of all)
    page.locator('input.filter[data-table="t-coverage"]').fill("")
    assert page.locator("#t-coverage tbody tr:not([hidden])").count() == total
    assert not watched.problems


def test_script_in_plugin_text_shows_as_text_and_never_runs(browser: Browser,
                                                            fixture_site: Path) -> None:
    watched = Watched(browser)
    page = watched.open(fixture_site / impl_path("hostile.softmax_<i>x</i>"))
    assert page.evaluate("window.__injected") is None
    description = page.locator("dl.kv dd").first.inner_text()
    assert "<script>window.__injected = 1</script>" in description
    assert page.locator("h1").inner_text() == "hostile.softmax_<i>x</i>"
    assert page.locator("dl.kv img, h1 i").count() == 0
    stability = watched.open(fixture_site / "stability.html")
    stability.locator("details summary").first.click()
    assert stability.evaluate("window.__injected") is None
    assert not watched.problems


def test_pages_read_without_javascript(browser: Browser, fixture_site: Path) -> None:
    watched = Watched(browser, java_script_enabled=False)
    page = watched.open(fixture_site / "accuracy.html")
    assert page.locator("table.data tbody tr").count() > 10
    assert page.locator("input.filter").first.is_hidden()  # no dead controls
    stability = watched.open(fixture_site / "stability.html")
    cell = stability.locator("#t-matrix details").first
    cell.locator("summary").click()
    assert "expected" in cell.inner_text() and "python -c" in cell.inner_text()


def test_overview_screenshot_is_kept(browser: Browser, fixture_site: Path) -> None:
    folder = Path(os.environ.get("SOFTMAX_BENCH_ARTIFACTS") or ROOT / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "report-overview.png"
    watched = Watched(browser)
    page = watched.open(fixture_site / "index.html")
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
    assert not watched.problems


def test_overview_leads_with_the_standards_severity_and_the_fused_answer(
        browser: Browser, fixture_site: Path) -> None:
    """The first section a reader sees names both standards and the severity ladder, gives
    the worst severity per framework and the fused-against-composed answer in a sentence."""
    watched = Watched(browser)
    page = watched.open(fixture_site / "index.html")
    first = page.locator("h2").first
    assert first.inner_text() == "In words"
    lead = page.locator("#in-words + p").inner_text()
    assert "componentwise" in lead and "normwise" in lead and "critical" in lead
    assert "worst severity per framework" in page.locator("#severity-words").inner_text()
    fused = page.locator("#fused-words").inner_text()
    assert "the fused cross-entropy is more stable than the composed one in" in fused
    assert page.locator("#standards-words summary").is_visible()
    assert not watched.problems


def test_single_file_opens_offline_and_draws_every_chart(browser: Browser,
                                                         tmp_path: Path) -> None:
    """Every page of the single file, shown by its fragment: no console error, no request
    that is not the file, every chart drawn; links between pages stay in the file."""
    from reports import build_single_file
    from tests.reports.runs import FIXTURE

    out = build_single_file([FIXTURE], tmp_path / "report.html")
    watched = Watched(browser)
    page = watched.open(out)
    paths = page.evaluate("[...document.querySelectorAll('template[data-page]')]"
                          ".map(t => t.getAttribute('data-page'))")
    assert "index.html" in paths and len(paths) > 20
    assert page.locator("main#page h1").inner_text() == "Overview"
    for path in paths:
        page.evaluate("p => { location.hash = 'page=' + encodeURIComponent(p); }", path)
        page.wait_for_function("p => decodeURIComponent(location.hash).includes(p)", arg=path)
        height = page.evaluate("document.documentElement.scrollHeight")
        page.set_viewport_size({"width": 1400, "height": min(int(height), 30000)})
        page.wait_for_function(ALL_CHARTS_DRAWN, timeout=20000)
        page.set_viewport_size({"width": 1400, "height": 900})
    page.evaluate("location.hash = 'page=index.html'")
    page.wait_for_function("() => document.querySelector('main#page h1')?.innerText"
                           " === 'Overview'", timeout=10000)
    page.locator("main#page a[href='accuracy.html']").first.click()
    # the click changes the fragment; the page's script then swaps the content in
    page.wait_for_function("() => document.querySelector('main#page h1')?.innerText"
                           " === 'Accuracy'", timeout=10000)
    assert page.locator("main#page h1").inner_text() == "Accuracy"
    assert "page=accuracy.html" in page.url
    assert not watched.problems


def test_permalink_reopens_the_same_row_sorting_and_filter(browser: Browser,
                                                           fixture_site: Path) -> None:
    watched = Watched(browser)
    page = watched.open(fixture_site / "throughput.html")
    table = page.locator("#t-timing")
    page.locator('input.filter[data-table="t-timing"]').fill("float32 forward")
    header = table.locator("thead th").nth(9)  # GB/s
    header.click()
    header.click()  # descending
    row = table.locator("tbody tr:not([hidden])").nth(2)
    row.hover()
    row.locator("a.permalink").click()
    link = page.url
    assert "t-timing.filter=float32+forward" in link and "t-timing.sort=9d" in link
    row_id = row.get_attribute("id")
    assert f"row={row_id}" in link
    shown = [t.replace("\u00b6", "")
             for t in table.locator("tbody tr:not([hidden])").all_inner_texts()]
    fresh = Watched(browser)  # a new tab that opens the copied link
    again = fresh.page
    again.goto(link)
    again.wait_for_load_state("load")
    table2 = again.locator("#t-timing")
    assert [t.replace("\u00b6", "") for t in
            table2.locator("tbody tr:not([hidden])").all_inner_texts()] == shown
    assert again.locator('input.filter[data-table="t-timing"]').input_value() == \
        "float32 forward"
    assert table2.locator("thead th").nth(9).get_attribute("aria-sort") == "descending"
    assert again.locator(f"#{row_id}").get_attribute("class") == "targeted"
    assert not watched.problems and not fresh.problems
