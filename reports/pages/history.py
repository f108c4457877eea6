"""History across versions: where the runs hold one framework in several versions on one
machine, how each implementation's accuracy and speed moved from version to version.

The version of a record is its framework's version in its run's environment (run.json
``environment.framework_versions``). Accuracy is judged by an exact reference, so every change
of a record's severity, verdict, standards or max ulp between two versions is shown as it is.
Timing changes follow ``harness.store.compare.compare_timing`` (Mann-Whitney U on the per-round
samples and the minimum factor, and only between records of one machine fingerprint).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.store import compare
from harness.vocabulary import SEVERITIES, SEVERITY_RANK, THROUGHPUT_FAMILY
from reports import fmt
from reports.data import ReportData, framework_version, version_key
from reports.pages import Page
from reports.pages.common import impl_cell, num_cell, severity_cell, slug, verdict_cell
from reports.tables import Cell, Column, Table, record_anchor

__all__ = ["NAV", "build", "pages"]

NAV = ("history", "history.html", "History")

VERSION_COLUMNS = (
    Column("implementation"), Column("version"),
    Column("worst severity", numeric=True, title="none < minor < major < critical"),
    *(Column(s, numeric=True, title=f"scored records of severity {s}") for s in SEVERITIES),
    Column("componentwise", numeric=True,
           title="scored records that meet the componentwise standard"),
    Column("normwise", numeric=True, title="scored records that meet the normwise standard"),
    Column("scored", numeric=True), Column("failing", numeric=True),
    Column("max ulp", numeric=True),
    Column("accuracy vs previous", title="records whose severity, verdict, standards or max "
                                         "ulp differ from the previous version"),
    Column("timings", numeric=True),
    Column("speed vs previous", title="harness.store.compare: Mann-Whitney U (p < 0.002) and a "
                                      "factor of 1.1, same machine only"),
)
CHANGE_COLUMNS = (
    Column("implementation"), Column("case"), Column("dtype"), Column("pass"),
    Column("versions"), Column("change"),
    Column("severity before", numeric=True), Column("severity after", numeric=True),
    Column("verdict before", numeric=True), Column("verdict after", numeric=True),
    Column("max ulp before", numeric=True), Column("max ulp after", numeric=True),
    Column("standards", title="componentwise / normwise, before → after"),
)
TIMING_COLUMNS = (
    Column("implementation"), Column("case"), Column("dtype"), Column("pass"),
    Column("versions"), Column("change"), Column("ratio", numeric=True, title="new / old median"),
    Column("p-value", numeric=True), Column("reason"),
)
ACCURACY_FIELDS = ("severity", "verdict", "componentwise", "normwise", "max_ulp")


def _same(a: Any, b: Any) -> bool:
    if fmt.is_missing(a) and fmt.is_missing(b):
        return True
    if fmt.is_missing(a) or fmt.is_missing(b):
        return False
    return bool(a == b)


def _direction(before: Any, after: Any) -> str:
    """"worse", "better" or "changed" (same severity and verdict: the numbers moved)."""
    sb, sa = SEVERITY_RANK.get(str(before["severity"]), -1), SEVERITY_RANK.get(
        str(after["severity"]), -1)
    if sa != sb:
        return "worse" if sa > sb else "better"
    rb, ra = int(before["rank"]), int(after["rank"])
    if ra != rb:
        return "worse" if ra > rb else "better"
    ub, ua = before["max_ulp"], after["max_ulp"]
    if not fmt.is_missing(ub) and not fmt.is_missing(ua) and ub != ua:
        return "worse" if ua > ub else "better"
    return "changed"


def _flag(value: Any) -> str:
    return "–" if fmt.is_missing(value) else ("yes" if bool(value) else "no")


def _accuracy_changes(old: pd.DataFrame, new: pd.DataFrame, v_old: str, v_new: str
                      ) -> tuple[list[list[Cell]], list[str], dict[str, int]]:
    key = ["implementation", "op", "pass", "dtype", "case", "device", "machine"]
    a = old[old["ran"].to_numpy()].set_index(key)
    b = new[new["ran"].to_numpy()].set_index(key)
    rows: list[list[Cell]] = []
    ids: list[str] = []
    counts = {"worse": 0, "better": 0, "changed": 0}
    for k in a.index.intersection(b.index).sort_values():
        before, after = a.loc[k], b.loc[k]
        if isinstance(before, pd.DataFrame):
            before = before.iloc[-1]
        if isinstance(after, pd.DataFrame):
            after = after.iloc[-1]
        if all(_same(before[f], after[f]) for f in ACCURACY_FIELDS):
            continue
        direction = _direction(before, after)
        counts[direction] += 1
        impl, _, pass_, dtype, case, device, machine = k
        ids.append(record_anchor(impl, case, dtype, device, pass_, machine))
        rows.append([
            impl_cell(impl), Cell(str(case), code=True), Cell(str(dtype)), Cell(str(pass_)),
            Cell(f"{v_old} → {v_new}"),
            Cell(direction, cls={"worse": "attn"}.get(direction, "")),
            severity_cell(before["severity"]), severity_cell(after["severity"]),
            verdict_cell(before["outcome"]), verdict_cell(after["outcome"]),
            num_cell(before["max_ulp"], fmt.ulp(before["max_ulp"])),
            num_cell(after["max_ulp"], fmt.ulp(after["max_ulp"])),
            Cell(f"{_flag(before['componentwise'])} / {_flag(before['normwise'])} → "
                 f"{_flag(after['componentwise'])} / {_flag(after['normwise'])}"),
        ])
    return rows, ids, counts


def _raw_timing(data: ReportData, impl: str, framework: str, machine: str, device: str,
                version: str) -> pd.DataFrame:
    raw = data.raw
    if raw is None or not len(raw):
        return pd.DataFrame()
    run_ids = {run.run_id for run in data.runs
               if run.machine == machine and framework_version(run, framework) == version}
    frame = raw[(raw["implementation"] == impl).fillna(False).to_numpy()
                & (raw["device"] == device).fillna(False).to_numpy()
                & raw["run_id"].isin(sorted(run_ids)).fillna(False).to_numpy()]
    return frame[compare.is_timing(frame).fillna(False).to_numpy()]


def _summary(frame: pd.DataFrame) -> dict[str, Any]:
    acc = frame[(frame["case_family"] != THROUGHPUT_FAMILY).to_numpy()]
    scored = acc[acc["ran"].to_numpy() & (acc["case_status"] == "scored").to_numpy()]
    ranks = [SEVERITY_RANK.get(str(s), -1) for s in scored["severity"]]
    worst = max(ranks, default=-1)
    ulps = pd.to_numeric(scored["max_ulp"], errors="coerce")
    return {
        "worst": SEVERITIES[worst] if worst >= 0 else None,
        "by_severity": {s: int((scored["severity"] == s).sum()) for s in SEVERITIES},
        "componentwise": int((scored["componentwise"] == True).sum()),  # noqa: E712
        "normwise": int((scored["normwise"] == True).sum()),  # noqa: E712
        "normwise_n": int(scored["normwise"].notna().sum()),
        "scored": len(scored), "failing": int(scored["fails"].sum()),
        "max_ulp": float(ulps.max()) if ulps.notna().any() else math.nan,
        "timings": int(((frame["case_family"] == THROUGHPUT_FAMILY).to_numpy()
                        & (frame["status"] == "ok").to_numpy()).sum()),
    }


def _counts_text(counts: dict[str, int]) -> str:
    shown = [f"{n} {k}" for k, n in counts.items() if n]
    return ", ".join(shown) if shown else "unchanged"


def build(data: ReportData) -> Page:
    frame = data.versions if data.versions is not None else pd.DataFrame()
    sections = []
    for (platform, framework), group in frame.groupby(["platform", "framework"], sort=True):
        versions = sorted({str(v) for v in group["version"].dropna()}, key=version_key)
        if len(versions) < 2:
            continue
        machine = str(group["machine"].iloc[0])
        device = str(group["device"].iloc[0])
        rows: list[list[Cell]] = []
        change_rows: list[list[Cell]] = []
        change_ids: list[str] = []
        timing_rows: list[list[Cell]] = []
        timing_ids: list[str] = []
        for impl, ig in group.groupby("implementation", sort=True):
            by_version = {v: ig[(ig["version"] == v).to_numpy()] for v in versions}
            previous: str | None = None
            for version in versions:
                part = by_version[version]
                if not len(part):
                    continue
                s = _summary(part)
                acc_text = speed_text = "–"
                if previous is not None:
                    found, ids, counts = _accuracy_changes(by_version[previous], part,
                                                           previous, version)
                    change_rows += found
                    change_ids += ids
                    acc_text = _counts_text(counts)
                    base = _raw_timing(data, str(impl), str(framework), machine, device,
                                       previous)
                    new = _raw_timing(data, str(impl), str(framework), machine, device, version)
                    if len(base) and len(new):
                        table = compare.compare_timing(base, new)
                        tally = {k: int((table["change"] == k).sum())
                                 for k in ("regression", "improvement", "unchanged",
                                           "not_comparable")}
                        speed_text = _counts_text(tally)
                        for _, r in table[table["change"].isin(
                                ["regression", "improvement"]).fillna(False)].iterrows():
                            timing_ids.append(record_anchor(impl, r["case"], r["dtype"],
                                                            r["device"], r["pass"], machine))
                            timing_rows.append([
                                impl_cell(impl), Cell(str(r["case"]), code=True),
                                Cell(str(r["dtype"])), Cell(str(r["pass"])),
                                Cell(f"{previous} → {version}"),
                                Cell(str(r["change"]),
                                     cls="attn" if r["change"] == "regression" else ""),
                                num_cell(r["ratio"], fmt.number(r["ratio"])),
                                num_cell(r["p_value"], fmt.number(r["p_value"])),
                                Cell(str(r["reason"]))])
                rows.append([
                    impl_cell(impl), Cell(version), severity_cell(s["worst"]),
                    *(num_cell(s["by_severity"][sev], str(s["by_severity"][sev]))
                      for sev in SEVERITIES),
                    num_cell(s["componentwise"], f"{s['componentwise']}/{s['scored']}"),
                    num_cell(s["normwise"], f"{s['normwise']}/{s['normwise_n']}"),
                    num_cell(s["scored"], str(s["scored"])),
                    num_cell(s["failing"], str(s["failing"])),
                    num_cell(s["max_ulp"], fmt.ulp(s["max_ulp"])),
                    Cell(acc_text, cls="attn" if "worse" in acc_text else ""),
                    num_cell(s["timings"], str(s["timings"])),
                    Cell(speed_text, cls="attn" if "regression" in speed_text else ""),
                ])
                previous = version
        slug_id = slug(f"{framework}-{platform}", 40)
        sections.append({
            "framework": str(framework), "platform": str(platform),
            "hardware": data.platforms.get(str(platform), ""), "versions": versions,
            "table": Table(f"history-{slug_id}", VERSION_COLUMNS, rows),
            "changes": Table(f"changes-{slug_id}", CHANGE_COLUMNS, change_rows, ids=change_ids),
            "timing": Table(f"timing-changes-{slug_id}", TIMING_COLUMNS, timing_rows,
                            ids=timing_ids),
        })
    return Page("history.html", "history.html.j2", "History", "history",
                {"sections": sections, "has_charts": False})


def pages(data: ReportData) -> list[Page]:
    """The history page, when some framework appears in two versions or more on a machine."""
    return [build(data)] if data.versions is not None else []
