"""Accuracy: leaderboards per op × dtype × device, the winners grid, and the family heatmaps."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.vocabulary import SEVERITY_RANK, VERDICTS
from reports import charts, fmt
from reports.data import ReportData
from reports.pages import Page
from reports.pages.common import (
    WinnersGrid,
    board_of,
    dtype_key,
    impl_cell,
    num_cell,
    op_key,
    pass_key,
    severity_cell,
    winners_grids_of,
)
from reports.summaries import winners
from reports.tables import Cell, Column, Table, mark_best

__all__ = ["WinnersGrid", "build", "winners_grids"]

LEADER_COLUMNS = (
    Column("implementation"),
    Column("framework"),
    Column("worst severity", numeric=True,
           title="the worst severity over the cases: none < minor < major < critical "
                 "(docs/scoring.md §2)"),
    Column("componentwise", numeric=True, best="max", all_rows=True,
           title="cases that meet the componentwise standard (every element within its ULP "
                 "limit, special values right) of the cases"),
    Column("normwise", numeric=True, best="max", all_rows=True,
           title="cases that meet the normwise standard (error within the limit in ulps of "
                 "the row's largest exact magnitude, special values right) of the cases that "
                 "record it"),
    Column("cases", numeric=True, title="scored cases that ran"),
    Column("failing", numeric=True, best="min", all_rows=True,
           title="records whose verdict is a failure (docs/scoring.md)"),
    Column("max ulp", numeric=True, best="min",
           title="largest ULP error over the cases, at elements whose exact value is not 0"),
    Column("at exact 0", numeric=True,
           title="largest |error| where the exact value is 0, in units of the dtype's "
                 "smallest normal number (the ULP convention would read 10^30 and more)"),
    Column("p99 ulp", numeric=True, best="min",
           title="largest per-case 99th percentile of the ULP error"),
    Column("bound ratio", numeric=True, best="min",
           title="largest error / Blanchard–Higham–Higham bound (≤ 1: within the bound)"),
    Column("worst class", title="worst accuracy class over the cases"),
)


def leader_table(table_id: str, group: pd.DataFrame) -> Table:
    rows = []
    ranked = group.assign(_sev=group["worst_severity"].map(
        lambda v: SEVERITY_RANK.get(v, len(SEVERITY_RANK)))).sort_values(
        ["_sev", "failing", "max_ulp", "p99_ulp", "implementation"], na_position="last",
        kind="stable")
    fewest = ranked["failing"].min()
    for r in ranked.itertuples(index=False):
        rows.append([impl_cell(r.implementation), Cell(str(r.framework)),
                     severity_cell(r.worst_severity),
                     num_cell(r.componentwise, f"{r.componentwise}/{r.cases}"),
                     num_cell(r.normwise, f"{r.normwise}/{r.normwise_known}"
                              if r.normwise_known else "–"),
                     num_cell(r.cases, str(r.cases)), num_cell(r.failing, str(r.failing)),
                     num_cell(r.max_ulp, fmt.ulp(r.max_ulp)),
                     num_cell(r.zero_abs_err, fmt.number(r.zero_abs_err)
                              if not fmt.is_missing(r.zero_abs_err) else "–"),
                     num_cell(r.p99_ulp, fmt.ulp(r.p99_ulp)),
                     num_cell(r.bound_ratio), Cell(r.worst_class or "–")])
    # the ULP columns' best is judged among the implementations with the fewest failures
    return mark_best(Table(table_id, LEADER_COLUMNS, rows),
                     contenders=list(ranked["failing"] == fewest))


def winners_grids(data: ReportData, board: pd.DataFrame | None = None) -> list[WinnersGrid]:
    board = board_of(data) if board is None else board

    def describe(r: Any) -> tuple[str, str]:
        severity = r["worst_severity"] or "–"
        known = int(r["normwise_known"])
        norm = f"{r['normwise']}/{known}" if known else "not recorded"
        return (f"worst {severity} · componentwise {r['componentwise']}/{r['cases']} · "
                f"normwise {norm}",
                f"worst severity {severity}; meets the componentwise standard on "
                f"{r['componentwise']} of {r['cases']} cases, the normwise standard on "
                + (f"{r['normwise']} of {known}" if known else "(not recorded)")
                + f"; max {fmt.ulp(r['max_ulp'])} ulp "
                f"(exact values not 0), p99 {fmt.ulp(r['p99_ulp'])} ulp, {r['failing']} "
                f"failing")

    return winners_grids_of(winners(board), data.platforms, describe)


def _heatmaps(data: ReportData) -> list[charts.Chart]:
    frame = data.accuracy[data.accuracy["ran"].to_numpy()]
    out: list[charts.Chart] = []
    if not len(frame):
        return out
    agg = frame.groupby(["platform", "dtype", "implementation", "case_family"], sort=True).agg(
        max_ulp=("max_ulp", "max"), failing=("fails", "sum"), total=("rank", "size"),
        rank=("rank", "max"))
    cells: dict[tuple[str, str], dict[tuple[str, str], Any]] = {}
    for (platform, dtype, impl, family), row in zip(agg.index, agg.itertuples(index=False)):
        cells.setdefault((platform, dtype), {})[(impl, family)] = row
    ordered = sorted(cells, key=lambda k: (k[0], dtype_key(k[1])))
    for n, (platform, dtype) in enumerate(ordered, start=1):
        group = cells[(platform, dtype)]
        impls = sorted({i for i, _ in group},
                       key=lambda i: (op_key(data.implementations[i].op
                                             if i in data.implementations else ""), i))
        families = sorted({f for _, f in group})
        z: list[list[float | None]] = []
        extra: list[list[list[Any]]] = []
        for impl in impls:
            zr: list[float | None] = []
            er: list[list[Any]] = []
            for fam in families:
                a = group.get((impl, fam))
                if a is None:
                    zr.append(None)
                    er.append([])
                    continue
                mu = float(a.max_ulp)
                worst = VERDICTS[a.rank] if 0 <= a.rank < len(VERDICTS) else "–"
                zr.append(math.log10(max(mu, 0.01)) if math.isfinite(mu) else None)
                er.append([fmt.ulp(mu), int(a.failing), int(a.total), worst])
            z.append(zr)
            extra.append(er)
        out.append(charts.heatmap(
            f"heatmap-{n}", impls, families, z, extra,
            hover="max %{customdata[0]} ulp<br>%{customdata[1]} failing of %{customdata[2]}"
                  "<br>worst: %{customdata[3]}",
            title=f"{platform}, {dtype}: max ulp per case family", colorbar="log10 max ulp",
            zmin=-1.0, zmax=max([3.0, *(v for r in z for v in r if v is not None)])))
    return out


def build(data: ReportData) -> Page:
    board = board_of(data)
    sections: list[dict[str, Any]] = []
    n = 0
    for platform in sorted(board["platform"].unique()) if len(board) else []:
        pboard = board[board["platform"] == platform]
        for op in sorted(pboard["op"].unique(), key=op_key):
            tables = []
            oboard = pboard[pboard["op"] == op]
            keys = sorted({(p, d) for p, d in zip(oboard["pass"], oboard["dtype"])},
                          key=lambda k: (pass_key(k[0]), dtype_key(k[1])))
            for pass_, dtype in keys:
                group = oboard[(oboard["pass"] == pass_) & (oboard["dtype"] == dtype)]
                n += 1
                table = leader_table(f"lb-{n}", group)
                table.caption = f"{op} · {pass_} · {dtype}"
                tables.append(table)
            sections.append({"platform": platform, "hardware": data.platforms.get(platform, ""),
                             "op": op, "anchor": f"acc-{n}", "tables": tables})
    context = {"grids": winners_grids(data, board), "sections": sections,
               "heatmaps": _heatmaps(data)}
    return Page("accuracy.html", "accuracy.html.j2", "Accuracy", "accuracy", context)
