"""The site as files: pages, local versioned assets, escaping, determinism, where it is written."""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest

from harness.store import StoreError
from reports import ReportError, build_report
from reports.data import load_report_data
from reports.pages.common import impl_path
from tests.reports.fixture_plugins import HOSTILE_TEXT
from tests.reports.runs import FIXTURE, accuracy_only_run, gpu_machine_run

MAIN_PAGES = ("index.html", "accuracy.html", "stability.html", "throughput.html",
              "cross-entropy.html", "implementations.html")
LINK = re.compile(r'\b(?:src|href)="([^"]*)"')


def pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_every_page_is_there(fixture_site: Path) -> None:
    for name in MAIN_PAGES:
        assert (fixture_site / name).is_file(), name
    data = load_report_data([FIXTURE])
    for impl in data.implementations:
        assert (fixture_site / impl_path(impl)).is_file(), impl
    assert not (fixture_site / "comparison.html").exists()  # no baseline given


def test_assets_are_local_and_versioned(fixture_site: Path) -> None:
    assets = sorted(p.name for p in (fixture_site / "assets").iterdir())
    assert any(re.fullmatch(r"plotly-cartesian-\d+\.\d+\.\d+\.min\.js", a) for a in assets), assets
    for name in assets:
        if name.startswith("report-"):
            stem, digest, ext = re.fullmatch(r"(report)-([0-9a-f]{10})\.(css|js)", name).groups()
            data = (fixture_site / "assets" / name).read_bytes()
            assert hashlib.sha256(data).hexdigest()[:10] == digest


def test_no_link_leaves_the_site(fixture_site: Path) -> None:
    for page in pages(fixture_site):
        text = page.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            assert not re.match(r"[a-z]+://|//", target), f"{page.name} links to {target}"
            if target.startswith(("#", "data:")):
                continue
            resolved = (page.parent / target.split("#")[0]).resolve()
            assert resolved.is_file(), f"{page.name}: broken link {target}"
        assert "@import" not in text and "url(http" not in text


def test_plugin_text_is_escaped_everywhere(fixture_site: Path) -> None:
    """Descriptions, names and error messages with HTML show as text, never as markup."""
    seen = False
    for page in pages(fixture_site):
        text = page.read_text(encoding="utf-8")
        assert "<script>window.__injected" not in text, page.name
        assert "<img src=x" not in text and "<b>must show" not in text, page.name
        assert "<i>x</i>" not in text, page.name
        seen = seen or HOSTILE_TEXT in html.unescape(text)
    assert seen, "the hostile description is not shown at all"
    impl_page = fixture_site / impl_path("hostile.softmax_<i>x</i>")
    assert "hostile.softmax_&lt;i&gt;x&lt;/i&gt;" in impl_page.read_text(encoding="utf-8")


def test_charts_are_valid_plotly_figures_with_fixed_ids(fixture_site: Path) -> None:
    found = 0
    bundle = next((fixture_site / "assets").glob("plotly-*.min.js")).read_text(encoding="utf-8")
    registered = set(re.findall(r'moduleType:"trace",name:"(\w+)"', bundle))
    assert {"scatter", "heatmap"} <= registered
    for page in pages(fixture_site):
        text = page.read_text(encoding="utf-8")
        ids = re.findall(r'<div class="chart" id="([^"]+)"', text)
        assert len(ids) == len(set(ids)), page.name
        for chart_id in ids:
            block = re.search(rf'<script type="application/json" id="{re.escape(chart_id)}-data">'
                              r"(.*?)</script>", text, re.S)
            assert block, f"{page.name}: chart {chart_id} has no data"
            figure = json.loads(block.group(1))
            go.Figure(figure)  # raises on anything outside plotly's schema
            for trace in figure["data"]:  # the site's partial bundle draws this trace type
                assert trace.get("type", "scatter") in registered, (page.name, trace.get("type"))
            found += 1
    assert found >= 5


def test_the_vendored_plotly_bundle_matches_the_plotly_package() -> None:
    """Figures are built by the plotly package; the page draws them with the vendored partial
    bundle, which must be the same plotly.js version (reports/vendor/README.md)."""
    from plotly.offline import get_plotlyjs

    from reports.site import PLOTLY_BUNDLE, plotly_bundle_version

    vendored = (Path(__file__).parents[2] / "reports" / "vendor" / PLOTLY_BUNDLE).read_text(
        encoding="utf-8")
    assert plotly_bundle_version(vendored) == plotly_bundle_version(get_plotlyjs())


def test_rebuilding_gives_the_same_bytes(tmp_path: Path, fixture_site: Path) -> None:
    again = tmp_path / "again"
    build_report([FIXTURE], again)

    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}

    first, second = tree(fixture_site), tree(again)
    assert first.keys() == second.keys()
    different = [k for k in first if first[k] != second[k]]
    assert not different


def test_a_rebuild_replaces_the_old_report(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_report([FIXTURE], out)
    stale = out / "impl" / "gone.html"
    stale.write_text("old")
    build_report([FIXTURE], out)
    assert not stale.exists()
    assert (out / "index.html").is_file()


def test_refuses_to_overwrite_a_directory_that_is_not_a_report(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ReportError, match="not a softmax-bench report"):
        build_report([FIXTURE], out)
    assert (out / "notes.txt").read_text() == "keep me"


def test_unwritable_output_is_a_report_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReportError, match="choose"):
        build_report([FIXTURE], blocker / "site")
    with pytest.raises(ReportError, match="is not a directory"):
        build_report([FIXTURE], blocker)


def test_missing_run_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        build_report([tmp_path / "nope"], tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_an_accuracy_only_run_gets_every_page(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_report([accuracy_only_run(tmp_path / "run")], out)
    throughput = (out / "throughput.html").read_text(encoding="utf-8")
    assert "No timing records in these runs" in throughput
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "they measured accuracy only" in index
    for name in MAIN_PAGES:
        assert (out / name).is_file()


def test_runs_from_two_machines_merge_with_the_machine_on_every_record(tmp_path: Path) -> None:
    gpu = gpu_machine_run(tmp_path / "gpu")
    out = tmp_path / "site"
    build_report([FIXTURE, gpu], out)
    data = load_report_data([FIXTURE, gpu])
    assert sorted(data.platforms) == ["gpu-box · cuda", "vm · cpu"]
    assert len(data.records) == 2 * len(load_report_data([FIXTURE]).records)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "NVIDIA H100 80GB HBM3" in index and "AMD EPYC" in index
    accuracy = (out / "accuracy.html").read_text(encoding="utf-8")
    assert "gpu-box · cuda" in accuracy and "vm · cpu" in accuracy
    impl = (out / impl_path("numpy.softmax_naive")).read_text(encoding="utf-8")
    # every record row names its machine
    rows = re.findall(r"<tr>(.*?)</tr>", impl.split('id="t-problems"')[1].split("</table>")[0])
    assert rows and all(">vm<" in r or ">gpu-box<" in r for r in rows[1:])


def test_comparison_lists_regressions_first(comparison_site: Path) -> None:
    text = (comparison_site / "comparison.html").read_text(encoding="utf-8")
    body = text.split('id="t-comparison"')[1].split("</tbody>")[0]
    changes = re.findall(r'<td class="verdict [^"]*">([a-z_]+)</td>', body)
    assert changes and changes[0] == "regression"
    assert changes == sorted(changes, key=lambda c: c != "regression")
    assert "numpy.softmax_shifted" in body
    assert 'href="comparison.html"' in (comparison_site / "index.html").read_text()
