"""Overview: the answers first, then each run's environment, the suite and the coverage."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.store import environment
from harness.vocabulary import SEVERITIES, SEVERITY_TEXT, STATUSES
from reports import fmt
from reports.data import THROUGHPUT_FAMILY, ReportData, RunInfo
from reports.pages import Page
from reports.pages.accuracy import winners_grids
from reports.pages.common import board_of, dtype_key, impl_cell, op_key, pass_key
from reports.pages.cross_entropy import Pair, pairs, summary_table
from reports.pages.stability import failing_specials
from reports.pages.throughput import fastest_grids
from reports.summaries import stability_cells
from reports.tables import Cell, Column, Table

__all__ = ["build"]

RUN_COLUMNS = (
    Column("run"), Column("machine"), Column("suite"), Column("started"), Column("ended"),
    Column("harness"), Column("git commit"), Column("records", numeric=True),
    *(Column(s, numeric=True) for s in STATUSES),
)


def _duration(run: RunInfo) -> str:
    start, end = run.run.get("started_at"), run.run.get("ended_at")
    if not start or not end:
        return ""
    try:
        seconds = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()
    except (ValueError, TypeError):
        return ""
    return fmt.seconds(seconds)


def _runs_table(data: ReportData) -> Table:
    rows = []
    for run in data.runs:
        recs = data.records[data.records["run_index"] == run.index]
        counts = recs["status"].value_counts()
        commit = str(run.run.get("git_commit") or "–")
        rows.append([Cell(run.run_id, href=f"#run-{run.index}", code=True),
                     Cell(run.machine), Cell(run.suite or "–", code=True),
                     Cell(str(run.run.get("started_at") or "–")),
                     Cell(str(run.run.get("ended_at") or "not finished"),
                          title=_duration(run) or None),
                     Cell(str(run.run.get("harness_version") or "–")),
                     Cell(commit[:12], commit, title=commit, code=True),
                     Cell(str(len(recs)), float(len(recs))),
                     *(Cell(str(int(counts.get(s, 0))), float(counts.get(s, 0)))
                       for s in STATUSES)])
    return Table("runs", RUN_COLUMNS, rows, filter=False)


def _environment(run: RunInfo) -> dict[str, Any]:
    """The run's environment as rows of (key, value, meaning), in METADATA order."""
    env = dict(run.env)
    skip = {"framework_versions", "numerics_env", "frameworks_settings", "gpus"}
    rows = [(name, environment.format_value(name, env.get(name)), key.description)
            for name, key in environment.METADATA.items() if name not in skip and name in env]
    rows += [(name, environment.format_value(name, value), "")
             for name, value in sorted(env.items())
             if name not in environment.METADATA and name not in skip]
    versions = sorted((str(k), "not installed" if v is None else str(v))
                      for k, v in (env.get("framework_versions") or {}).items())
    numerics = env.get("numerics_env") or {}
    set_vars = sorted((str(k), str(v)) for k, v in numerics.items() if v is not None)
    unset = sorted(str(k) for k, v in numerics.items() if v is None)
    settings = []
    for framework, values in sorted((env.get("frameworks_settings") or {}).items()):
        if isinstance(values, dict):
            settings.append((str(framework), sorted(
                (str(k), environment.format_value(str(k), v)) for k, v in values.items())))
    gpus = [environment.format_value("gpus", [g]) if not isinstance(g, dict) else
            ", ".join(f"{k}={environment.format_value('memory_total', v) if k == 'memory' else v}"
                      for k, v in g.items()) for g in env.get("gpus") or []]
    return {"run": run, "rows": rows, "versions": versions, "numerics": set_vars,
            "unset": unset, "settings": settings, "gpus": gpus, "duration": _duration(run),
            "meta": _meta_rows(run)}


def _meta_rows(run: RunInfo) -> list[tuple[str, str]]:
    meta = run.meta
    rows = []
    for key in ("device", "dtypes", "include", "exclude", "timeout_s", "threads", "fixture"):
        if key in meta:
            value = meta[key]
            if isinstance(value, list):
                value = ", ".join(map(str, value)) or "all"
            rows.append((key, "default" if value is None else str(value)))
    return rows


SUITE_COLUMNS = (Column("case family"), Column("kind"), Column("cases", numeric=True),
                 Column("ops"), Column("dtypes"), Column("records", numeric=True))


def _suite_table(data: ReportData) -> Table:
    rows = []
    adversarial = set(data.adversarial_families)
    for family, g in data.records.groupby("case_family", sort=True):
        kind = ("timing" if family == THROUGHPUT_FAMILY else
                "adversarial" if family in adversarial else "accuracy")
        statuses = sorted(set(g["case_status"].dropna().astype(str)))
        cases = g["case"].nunique()
        rows.append([Cell(str(family)), Cell(kind + (f" ({', '.join(statuses)})"
                                                     if statuses else "")),
                     Cell(str(cases), float(cases)),
                     Cell(", ".join(sorted(set(g["op"].astype(str)), key=op_key))),
                     Cell(", ".join(sorted(set(g["dtype"].astype(str)), key=dtype_key))),
                     Cell(str(len(g)), float(len(g)))])
    return Table("suite", SUITE_COLUMNS, rows)


COVERAGE_COLUMNS = (Column("implementation"), Column("framework"), Column("machine"),
                    *(Column(s, numeric=True) for s in STATUSES))
REASON_COLUMNS = (Column("status"), Column("framework"), Column("machine"), Column("reason"),
                  Column("records", numeric=True), Column("implementations"))


def _coverage(data: ReportData) -> tuple[Table, Table]:
    recs = data.records
    counts = recs.groupby(["implementation", "framework", "machine", "status"]).size()
    per: dict[tuple[str, str, str], dict[str, int]] = {}
    for (impl, framework, machine, status), n in counts.items():
        per.setdefault((str(impl), str(framework), str(machine)), {})[str(status)] = int(n)
    rows = [[impl_cell(impl), Cell(framework), Cell(machine),
             *(Cell(str(c.get(s, 0)), float(c.get(s, 0)),
                    cls="" if s == "ok" or not c.get(s) else "attn") for s in STATUSES)]
            for (impl, framework, machine), c in sorted(per.items())]
    coverage = Table("coverage", COVERAGE_COLUMNS, rows)
    bad = recs[recs["status"] != "ok"]
    reasons = []
    if len(bad):
        grouped = bad.groupby(["status", "framework", "machine", "message"], sort=True,
                              dropna=False)
        for (status, framework, machine, message), g in grouped:
            impls = sorted(set(g["implementation"].astype(str)))
            shown = ", ".join(impls[:6]) + (f" and {len(impls) - 6} more" if len(impls) > 6
                                             else "")
            reasons.append([Cell(str(status), float(STATUSES.index(str(status)))
                                 if str(status) in STATUSES else None),
                            Cell(str(framework)), Cell(str(machine)),
                            Cell("" if fmt.is_missing(message) else str(message)),
                            Cell(str(len(g)), float(len(g))), Cell(shown)])
    return coverage, Table("reasons", REASON_COLUMNS, reasons)


def _names(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def standards_in_words(data: ReportData, board: pd.DataFrame) -> list[dict[str, Any]]:
    """Per platform, op, pass and dtype: which implementations meet the componentwise and the
    normwise standard on every scored case, in a sentence each."""
    out: list[dict[str, Any]] = []
    if not len(board):
        return out
    keys = sorted({(p, o, ps, d) for p, o, ps, d in zip(board["platform"], board["op"],
                                                        board["pass"], board["dtype"])},
                  key=lambda k: (k[0], op_key(k[1]), pass_key(k[2]), dtype_key(k[3])))
    for platform, op, pass_, dtype in keys:
        g = board[(board["platform"] == platform) & (board["op"] == op)
                  & (board["pass"] == pass_) & (board["dtype"] == dtype)]
        comp = sorted(str(i) for i, c, n in zip(g["implementation"], g["componentwise"],
                                                g["cases"]) if n and c == n)
        norm = sorted(str(i) for i, c, n in zip(g["implementation"], g["normwise"],
                                                g["normwise_known"]) if n and c == n)
        known = int((g["normwise_known"] > 0).sum())
        total = len(g)
        comp_text = (f"{len(comp)} of {total} meet the componentwise standard on every case"
                     + (f": {_names(comp)}" if comp else ""))
        norm_text = (f"{len(norm)} of {known} meet the normwise standard on every case"
                     + (f": {_names(norm)}" if norm else "")) if known else (
            "the normwise standard is not recorded (a run from before schema 3)")
        out.append({"platform": str(platform), "what": f"{op} · {pass_} · {dtype}",
                    "text": f"{comp_text}; {norm_text}."})
    return out


def severity_in_words(data: ReportData) -> list[dict[str, str]]:
    """Per platform: the worst severity of each framework over every record that ran, with
    the verdicts and families that reach it."""
    frame = data.accuracy[data.accuracy["ran"].to_numpy()]
    out: list[dict[str, str]] = []
    for platform, g in frame.groupby("platform", sort=True) if len(frame) else []:
        parts = []
        for framework, f in g.groupby("framework", sort=True):
            top = int(f["sev_rank"].max())
            if top < 0:
                continue
            worst = f[f["sev_rank"] == top]
            verdicts = sorted(set(map(str, worst["outcome"])))
            families = sorted(set(map(str, worst["case_family"])))
            parts.append(f"{framework}: {SEVERITIES[top]}"
                         + (f" ({', '.join(verdicts)} on {_names(families, 4)})"
                            if top > 0 else ""))
        if parts:
            out.append({"platform": str(platform),
                        "text": "worst severity per framework — " + "; ".join(parts) + "."})
    return out


def fused_in_words(items: list[Pair]) -> list[dict[str, str]]:
    """Per platform and framework: "the fused cross-entropy is more stable than the composed
    one in X of Y pairs and Z× faster (geometric mean)", with the exceptions named."""
    grouped: dict[tuple[str, str], list[Pair]] = {}
    for p in items:
        grouped.setdefault((p.platform, p.framework), []).append(p)
    out = []
    for (platform, framework), ps in sorted(grouped.items()):
        judged = [p for p in ps if p.accuracy_verdict != "no data"]
        better = sum(p.accuracy_verdict == "fused" for p in judged)
        worse = [p for p in judged if p.accuracy_verdict == "composed"]
        ups = [p.speedup for p in ps if p.speedup is not None and p.speedup > 0]
        text = (f"{framework}: the fused cross-entropy is more stable than the composed one in "
                f"{better} of {len(judged)} pairs"
                + (f" (as stable in {len(judged) - better - len(worse)}, less in {len(worse)})"
                   if judged else ""))
        if ups:
            mean = math.exp(sum(math.log(u) for u in ups) / len(ups))
            text += f" and {mean:.2f}× faster (geometric mean over {len(ups)} timed pairs)"
        else:
            text += "; no timings to compare speed"
        exceptions = []
        for p in worse:
            only = sorted(set(p.fused_families) - set(p.composed_families))
            exceptions.append(f"{p.fused} {p.dtype} {p.pass_}"
                              + (f" fails {', '.join(only)}" if only else ""))
        if exceptions:
            text += f". Exceptions, where the composed one is more stable: {_names(exceptions, 6)}"
        out.append({"platform": platform, "text": text + "."})
    return out


def build(data: ReportData) -> Page:
    board = board_of(data)
    ce_pairs = pairs(data)
    families = [f for f in data.adversarial_families
                if f in set(data.accuracy["case_family"].astype(str))]
    coverage, reasons = _coverage(data)
    plugin_errors = sorted({(run.machine, str(e)) for run in data.runs
                            for e in run.meta.get("plugin_errors") or []})
    context = {
        "accuracy_grids": winners_grids(data, board),
        "fastest_grids": fastest_grids(data),
        "specials": failing_specials(stability_cells(data.accuracy, families), families),
        "ce_summary": summary_table("ce-summary", ce_pairs),
        "standards_words": standards_in_words(data, board),
        "severity_words": severity_in_words(data),
        "fused_words": fused_in_words(ce_pairs),
        "severity_legend": [(name, SEVERITY_TEXT[name]) for name in SEVERITIES],
        "runs_table": _runs_table(data),
        "environments": [_environment(run) for run in data.runs],
        "suites": sorted({run.suite for run in data.runs if run.suite}),
        "suite_table": _suite_table(data),
        "coverage": coverage,
        "reasons": reasons,
        "plugin_errors": plugin_errors,
        "platforms": data.platforms,
    }
    return Page("index.html", "overview.html.j2", "Overview", "overview", context)
