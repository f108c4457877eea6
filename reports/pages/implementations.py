"""The implementations index and one page per implementation.

Every per-implementation table is cut from one aggregation over all records (a full run has
about a hundred implementations; filtering the records once per page would dominate the build).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.vocabulary import VERDICTS
from reports import charts, fmt
from reports.data import ImplInfo, ReportData
from reports.pages import Page
from reports.pages.common import (
    board_of,
    dtype_key,
    impl_cell,
    impl_path,
    num_cell,
    op_key,
    pass_key,
    verdict_cell,
)
from reports.pages.stability import details_of
from reports.pages.throughput import timing_series, timing_table
from reports.summaries import DETAIL_FIELDS, worst_records
from reports.tables import Cell, Column, Table, record_anchor

__all__ = ["build_index", "build_pages"]

INDEX_COLUMNS = (
    Column("implementation"), Column("framework"), Column("op"), Column("mode"),
    Column("source"), Column("records", numeric=True), Column("not run", numeric=True),
    Column("failing", numeric=True), Column("max ulp", numeric=True,
                                            title="largest ULP error over scored cases"),
    Column("best GB/s", numeric=True), Column("description"),
)


def _count(value: Any) -> Cell:
    n = 0 if fmt.is_missing(value) else int(value)
    return num_cell(n, str(n))


def build_index(data: ReportData) -> Page:
    recs = data.records
    per = recs.groupby("implementation").agg(records=("ran", "size"), ran=("ran", "sum"),
                                             failing=("fails", "sum"))
    board = board_of(data)
    max_ulp = board.groupby("implementation")["max_ulp"].max() if len(board) else {}
    gbps = data.timing.groupby("implementation")["gbps"].max() if data.has_timing else {}
    rows = []
    for name, info in sorted(data.implementations.items(),
                             key=lambda kv: (op_key(kv[1].op), kv[0])):
        counts = per.loc[name] if name in per.index else None
        total = 0 if counts is None else int(counts["records"])
        ran = 0 if counts is None else int(counts["ran"])
        rows.append([
            impl_cell(name), Cell(info.framework), Cell(info.op), Cell(info.mode),
            Cell(info.source or "–"), _count(total), _count(total - ran),
            _count(None if counts is None else counts["failing"]),
            num_cell(max_ulp.get(name), fmt.ulp(max_ulp.get(name))),
            num_cell(gbps.get(name)), Cell(info.description),
        ])
    table = Table("implementations", INDEX_COLUMNS, rows)
    return Page("implementations.html", "implementations.html.j2", "Implementations",
                "implementations", {"table": table})


SUMMARY_COLUMNS = (
    Column("machine · device"), Column("dtype"), Column("pass"),
    Column("records", numeric=True), Column("ran", numeric=True),
    Column("failing", numeric=True), Column("max ulp", numeric=True),
    Column("p99 ulp", numeric=True), Column("bound ratio", numeric=True),
    Column("worst class"),
)
FAMILY_COLUMNS = (
    Column("case family"), Column("worst verdict", numeric=True),
    Column("failing", numeric=True), Column("ran", numeric=True), Column("not run", numeric=True),
)
NOT_RUN_COLUMNS = (Column("status"), Column("machine"), Column("reason"),
                   Column("records", numeric=True))


def _split(frame: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Rows of ``frame`` as dicts, per implementation, in frame order."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in frame.to_dict("records"):
        out[str(row["implementation"])].append(row)
    return out


def _summaries(acc: pd.DataFrame, board: pd.DataFrame) -> dict[str, Table]:
    key = ["implementation", "platform", "dtype", "pass"]
    counts = acc.groupby(key, sort=True).agg(records=("ran", "size"), ran=("ran", "sum"),
                                             failing=("fails", "sum")).reset_index()
    stats = ["max_ulp", "p99_ulp", "bound_ratio", "worst_class"]
    merged = counts.merge(board[key + stats], on=key, how="left") if len(board) else counts.assign(
        max_ulp=None, p99_ulp=None, bound_ratio=None, worst_class=None)
    merged = merged.assign(_d=[dtype_key(d) for d in merged["dtype"]],
                           _p=[pass_key(p) for p in merged["pass"]])
    merged = merged.sort_values(["implementation", "platform", "_d", "_p"], kind="stable")
    tables = {}
    for name, rows in _split(merged).items():
        tables[name] = Table("summary", SUMMARY_COLUMNS, [[
            Cell(str(r["platform"])), Cell(str(r["dtype"])), Cell(str(r["pass"])),
            _count(r["records"]), _count(r["ran"]), _count(r["failing"]),
            num_cell(r["max_ulp"], fmt.ulp(r["max_ulp"])),
            num_cell(r["p99_ulp"], fmt.ulp(r["p99_ulp"])), num_cell(r["bound_ratio"]),
            Cell(r["worst_class"] if isinstance(r["worst_class"], str) else "–")]
            for r in rows])
    return tables


def _families(acc: pd.DataFrame) -> dict[str, Table]:
    ran = acc[acc["ran"].to_numpy()]
    agg = acc.groupby(["implementation", "case_family"], sort=True).agg(
        records=("ran", "size"), ran=("ran", "sum"), failing=("fails", "sum")).reset_index()
    worst = ran.groupby(["implementation", "case_family"])["rank"].max()
    tables = {}
    for name, rows in _split(agg).items():
        cells = []
        for r in rows:
            rank = worst.get((r["implementation"], r["case_family"]), -1)
            verdict = VERDICTS[rank] if 0 <= rank < len(VERDICTS) else None
            cells.append([Cell(str(r["case_family"])), verdict_cell(verdict),
                          _count(r["failing"]), _count(r["ran"]),
                          _count(r["records"] - r["ran"])])
        tables[name] = Table("families", FAMILY_COLUMNS, cells)
    return tables


def _not_run(recs: pd.DataFrame) -> dict[str, Table]:
    idle = recs[~recs["ran"].to_numpy()]
    grouped = idle.assign(message=idle["message"].fillna("")).groupby(
        ["implementation", "status", "machine", "message"], sort=True).size()
    rows: dict[str, list[list[Cell]]] = defaultdict(list)
    for (impl, status, machine, message), n in grouped.items():
        rows[str(impl)].append([Cell(str(status)), Cell(str(machine)), Cell(str(message)),
                                _count(n)])
    return {name: Table("not-run", NOT_RUN_COLUMNS, r) for name, r in rows.items()}


PROBLEM_LIMIT = 40  # rows listed per implementation: the site must stay small for big runs
PROBLEM_COLUMNS = (
    Column("verdict", numeric=True, title="sorts by severity"), Column("case family"),
    Column("case"), Column("dtype"), Column("pass"), Column("machine"), Column("expected"),
    Column("got"), Column("why"),
)


def _problems(data: ReportData, acc: pd.DataFrame) -> tuple[dict[str, Table],
                                                               dict[str, list[Any]]]:
    """Per implementation: a table of the records that ran and did not pass (worst verdict
    first, at most PROBLEM_LIMIT; the caption says how many there are), and the worst record
    per ordinary case family and machine with its reproduce command (the adversarial families'
    are in the stability matrix)."""
    bad = acc[acc["ran"].to_numpy() & (acc["rank"] > 0).to_numpy()]
    bad = bad.sort_values(["implementation", "rank", "platform", "case_family", "dtype", "pass",
                           "case"], ascending=[True, False, True, True, True, True, True],
                          kind="stable")
    tables = {}
    for name, rows in _split(bad[list(DETAIL_FIELDS)]).items():
        cells = []
        ids = []
        for r in rows[:PROBLEM_LIMIT]:
            ids.append(record_anchor(name, r["case"], r["dtype"], r["device"], r["pass"],
                                     r["machine"]))
            why = r["score_message"] or r["message"] or ""
            cells.append([verdict_cell(r["outcome"], title=""), Cell(str(r["case_family"])),
                          Cell(str(r["case"]), code=True), Cell(str(r["dtype"])),
                          Cell(str(r["pass"])), Cell(str(r["machine"])),
                          Cell(str(r["expected"] or r["convention_reference"] or "–"), code=True),
                          Cell(str(r["got"] or r["convention"] or "–"), code=True),
                          Cell(str(why))])
        caption = (f"{len(rows)} records, worst verdict first" if len(rows) <= PROBLEM_LIMIT
                   else f"the {PROBLEM_LIMIT} worst of {len(rows)} records (results.jsonl "
                        "holds them all)")
        tables[name] = Table("problems", PROBLEM_COLUMNS, cells, caption=caption, ids=ids)
    # the adversarial families' worst records, with their commands, are on the stability page
    ordinary = acc[~acc["case_family"].isin(data.adversarial_families).to_numpy()]
    worst = worst_records(ordinary, ["implementation", "case_family", "platform"])
    worst = worst.sort_values(["implementation", "rank", "case_family", "platform"],
                              ascending=[True, False, True, True], kind="stable")
    details = {name: details_of(data, rows)
               for name, rows in _split(worst[list(DETAIL_FIELDS)]).items()}
    return tables, details


def _page(data: ReportData, info: ImplInfo, parts: dict[str, Any]) -> Page:
    name = info.name
    timing = parts["timing"].get(name)
    chart = table = None
    if timing is not None and len(timing):
        chart = charts.lines("impl-throughput",
                             timing_series(timing, ["platform", "pass", "dtype"]),
                             title="GB/s against size", x_title="elements (rows × classes)",
                             y_title="GB/s")
        table = timing_table("timing", timing)
    context = {"info": info,
               "summary": parts["summary"].get(name, Table("summary", SUMMARY_COLUMNS)),
               "families": parts["families"].get(name, Table("families", FAMILY_COLUMNS)),
               "not_run": parts["not_run"].get(name, Table("not-run", NOT_RUN_COLUMNS)),
               "problems": parts["problems"].get(name, Table("problems", PROBLEM_COLUMNS)),
               "worst": parts["worst"].get(name, []), "chart": chart, "timing": table}
    return Page(impl_path(name), "implementation.html.j2", name, "implementations", context)


def build_pages(data: ReportData) -> list[Page]:
    acc = data.accuracy
    board = board_of(data)
    timing = {str(k): g for k, g in data.timing.groupby("implementation")} \
        if data.has_timing else {}
    problems, worst = _problems(data, acc)
    parts = {"summary": _summaries(acc, board), "families": _families(acc),
             "not_run": _not_run(data.records), "problems": problems, "worst": worst,
             "timing": timing}
    return [_page(data, info, parts) for info in data.implementations.values()]

