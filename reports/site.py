"""Build the static site: load the runs, make every page, render, write atomically.

The site opens from file:// with no network: plotly.js (its cartesian partial bundle, vendored in
``reports/vendor``: every trace type the report draws, a third of the full bundle's size) is
copied into ``assets/plotly-cartesian-<version>.min.js``, and the report's own CSS and JavaScript
carry a hash of
their content in their names. Nothing in the output depends on the clock, the host or the
order of dict iteration, so the same runs give the same bytes. The output directory is
replaced as a whole (a rebuild leaves no stale page); a directory that holds anything but an
earlier report is never touched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from harness import store as results
from harness.store import HarnessError
from reports import charts
from reports.data import ReportData, load_report_data
from reports.datafiles import data_files
from reports.pages import (
    Page,
    accuracy,
    comparison,
    cross_entropy,
    history,
    implementations,
    overview,
    search,
    stability,
    throughput,
)
from reports.pages.common import VERDICT_TEXT, impl_path, slug
from reports.summaries import verdict_class
from reports.tables import Cell, Table

__all__ = ["MARKER", "ReportError", "build_report", "build_single_file", "render_single_file",
           "render_site"]

MARKER = ".softmax-bench-report"
NAV = (("overview", "index.html", "Overview"), ("accuracy", "accuracy.html", "Accuracy"),
       ("stability", "stability.html", "Stability"),
       ("throughput", "throughput.html", "Throughput"),
       ("cross-entropy", "cross-entropy.html", "Fused vs composed CE"),
       ("implementations", "implementations.html", "Implementations"))
COMPARISON_NAV = ("comparison", "comparison.html", "Comparison")


class ReportError(HarnessError):
    """The report cannot be written where asked (the run directories are fine)."""


def report_version() -> str:
    """The version of softmax-bench that writes the report (each run shows the version of the
    harness that wrote it, run.json ``harness_version``)."""
    try:
        return metadata.version("softmax-bench")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


PLOTLY_BUNDLE = "plotly-cartesian.min.js"  # in reports/vendor (see its README)


def plotly_bundle_version(source: str) -> str:
    """The plotly.js version in a bundle's header comment ("plotly.js (...) v4.1.1")."""
    match = re.search(r"plotly\.js\b[^\n]*?\bv(\d+\.\d+\.\d+)", source[:2000])
    if match is None:
        raise ReportError("the plotly.js bundle names no version in its header")
    return match.group(1)


def _plotly_js() -> tuple[str, bytes]:
    """The vendored plotly.js cartesian bundle, and a file name with its version."""
    data = resources.files("reports").joinpath("vendor", PLOTLY_BUNDLE).read_bytes()
    version = plotly_bundle_version(data[:2000].decode("utf-8", errors="replace"))
    return f"assets/plotly-cartesian-{version}.min.js", data


def _asset(name: str) -> tuple[str, bytes]:
    data = resources.files("reports").joinpath("assets", name).read_bytes()
    stem, _, ext = name.rpartition(".")
    return f"assets/{stem}-{hashlib.sha256(data).hexdigest()[:10]}.{ext}", data


def text_content(value: Any) -> markupsafe.Markup:
    """Escape for element content only (``&``, ``<``, ``>``): quotes need no escaping there,
    and the reproduce commands are full of them."""
    s = str(value)
    return markupsafe.Markup(s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True)
    env.filters.update(slug=slug, impl_path=impl_path, verdict_class=verdict_class,
                       t=text_content)
    env.globals.update(verdict_text=VERDICT_TEXT, version=report_version())
    return env


def _has_charts(value: Any) -> bool:
    if isinstance(value, (str, int, float)) or value is None:  # most leaves: decided at once
        return False
    if isinstance(value, charts.Chart):
        return True
    if isinstance(value, (Table, Cell)):  # thousands of cells, never a chart
        return False
    if isinstance(value, dict):
        return any(_has_charts(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_charts(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_has_charts(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def _subtitle(data: ReportData) -> str:
    machines = sorted({f"{p} ({hw})" for p, hw in data.platforms.items()})
    suites = sorted({r.suite for r in data.runs if r.suite})
    return (f"{len(data.records)} records from {len(data.runs)} run"
            f"{'s' if len(data.runs) != 1 else ''} (suite {', '.join(suites) or '–'}) on "
            f"{'; '.join(machines) or 'no machine'}")


def make_pages(data: ReportData, baseline: Any = None,
               baseline_runs: Sequence[str] = ()) -> list[Page]:
    pages = [overview.build(data), accuracy.build(data), stability.build(data),
             throughput.build(data), cross_entropy.build(data), implementations.build_index(data),
             *implementations.build_pages(data), *history.pages(data), *search.pages(data)]
    if baseline is not None:
        pages.append(comparison.build(data, baseline, list(baseline_runs)))
    return pages


def _nav(data: ReportData, baseline: Any, pages: Sequence[Page]) -> list[dict[str, str]]:
    paths = {p.path for p in pages}
    extra = [entry for entry in (history.NAV, search.NAV) if entry[1] in paths]
    return [{"key": k, "path": p, "label": label}
            for k, p, label in (*NAV, *((COMPARISON_NAV,) if baseline is not None else ()),
                                *extra)]


def _render_pages(data: ReportData, baseline: Any, baseline_runs: Sequence[str],
                  assets: dict[str, str], data_links: list[dict[str, Any]], single: bool
                  ) -> list[tuple[Page, str]]:
    pages = make_pages(data, baseline, baseline_runs)
    env = _environment()
    common = {"assets": assets, "nav": _nav(data, baseline, pages), "subtitle": _subtitle(data),
              "synthetic": data.synthetic_count, "run_count": len(data.runs),
              "data_links": data_links, "single": single}
    out = []
    for page in pages:
        template = env.get_template(page.template)
        has_charts = bool(page.context.get("has_charts")) if "has_charts" in page.context \
            else _has_charts(page.context)
        context = {**page.context, "has_charts": has_charts}
        out.append((page, template.render(page=page, root=page.root, **common, **context)))
    return out


def render_site(data: ReportData, baseline: Any = None,
                baseline_runs: Sequence[str] = ()) -> dict[str, bytes]:
    """Every file of the site, keyed by its path relative to the site root."""
    files: dict[str, bytes] = {}
    plotly_path, plotly_data = _plotly_js()
    css_path, css = _asset("report.css")
    js_path, js = _asset("report.js")
    files.update({plotly_path: plotly_data, css_path: css, js_path: js,
                  MARKER: b"softmax-bench report (this directory is rebuilt as a whole)\n"})
    assets = {"plotly": plotly_path, "css": css_path, "js": js_path}
    data_file_map, data_links = data_files(data)
    files.update(data_file_map)
    for page, text in _render_pages(data, baseline, baseline_runs, assets, data_links, False):
        files[page.path] = text.encode("utf-8")
    return files


def _main_of(text: str, path: str) -> str:
    """The content of a rendered page's ``<main>`` (its only one: page text is escaped)."""
    start, end = text.find("<main>"), text.rfind("</main>")
    if start < 0 or end < start:
        raise ReportError(f"page {path} has no <main> element")
    return text[start + len("<main>"):end]


def render_single_file(data: ReportData, baseline: Any = None,
                       baseline_runs: Sequence[str] = ()) -> bytes:
    """The whole report as one self-contained HTML file: every page's content in a
    ``<template>`` (inert until shown; report.js shows the one the URL fragment names),
    plotly.js, the stylesheet and the script inlined once. It opens from disk, offline."""
    _, plotly_data = _plotly_js()
    css = _asset("report.css")[1].decode("utf-8")
    js = _asset("report.js")[1].decode("utf-8")
    plotly_text = plotly_data.decode("utf-8")
    for name, text in (("plotly.js", plotly_text), ("report.js", js)):
        if "</script" in text.lower():
            raise ReportError(f"{name} holds '</script': it cannot be inlined")
    if "</style" in css.lower():
        raise ReportError("report.css holds '</style': it cannot be inlined")
    none = {"css": "", "js": "", "plotly": ""}  # the page heads are not kept
    rendered = _render_pages(data, baseline, baseline_runs, none, [], True)
    pages = [{"path": page.path, "title": f"{page.title} · softmax-bench report",
              "nav": page.nav, "html": markupsafe.Markup(_main_of(text, page.path))}
             for page, text in rendered]
    nav = _nav(data, baseline, [page for page, _ in rendered])
    template = _environment().get_template("single.html.j2")
    text = template.render(css=markupsafe.Markup(css), js=markupsafe.Markup(js),
                           plotly=markupsafe.Markup(plotly_text), pages=pages, nav=nav,
                           subtitle=_subtitle(data), run_count=len(data.runs))
    return text.encode("utf-8")


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ReportError(f"{out} already holds files that are not a softmax-bench report; "
                          "choose an empty or new --out")


def write_site(files: dict[str, bytes], out: Path) -> None:
    """Write ``files`` into ``out``, replacing an earlier report there as a whole."""
    _check_target(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc.strerror or exc}; "
                          "choose a writable --out") from None
    try:
        for rel, data in sorted(files.items()):
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        os.chmod(staging, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "site")
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ReportError(f"cannot write the report to {out}: {exc.strerror or exc}; "
                          "choose a writable --out") from None


def build_report(run_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                 baseline: Sequence[str | os.PathLike[str]] | None = None) -> Path:
    """Build the report over ``run_dirs`` (and a comparison with ``baseline`` runs) into
    ``out``; returns the path of its index.html. Raises StoreError for a missing or damaged
    run directory and ReportError when ``out`` cannot be written."""
    target = Path(out)
    _check_target(target)
    data = load_report_data(list(run_dirs))
    base = None
    base_ids: list[str] = []
    if baseline:
        base = results.load(list(baseline))
        base_ids = sorted(set(base["run_id"].dropna().astype(str))) if len(base) else []
    write_site(render_site(data, base, base_ids), target)
    return target / "index.html"


def build_single_file(run_dirs: Sequence[str | os.PathLike[str]],
                      out: str | os.PathLike[str], *,
                      baseline: Sequence[str | os.PathLike[str]] | None = None) -> Path:
    """The report over ``run_dirs`` as one self-contained HTML file at ``out`` (replaced
    atomically); returns its path. Raises StoreError for a bad run directory and ReportError
    when ``out`` cannot be written."""
    target = Path(out)
    if target.is_dir():
        raise ReportError(f"{target} is a directory; --single-file takes a file name")
    data = load_report_data(list(run_dirs))
    base = None
    base_ids: list[str] = []
    if baseline:
        base = results.load(list(baseline))
        base_ids = sorted(set(base["run_id"].dropna().astype(str))) if len(base) else []
    body = render_single_file(data, base, base_ids)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {target}: {exc.strerror or exc}; "
                          "choose a writable --single-file") from None
    return target
