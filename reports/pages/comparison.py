"""Comparison with a baseline: ``harness.store.compare.compare``'s table, regressions first.

The comparison itself (what counts as a regression, the Mann-Whitney test on timings) belongs to
``harness.store.compare``; this page only shows its table: verdict, accuracy class, max ulp and
median time as "base → new", the ratios and the p-value, and the reason. Unchanged and not
comparable rows are counted, not listed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.store import compare
from reports import fmt
from reports.data import ReportData
from reports.pages import Page
from reports.pages.common import impl_cell, num_cell
from reports.tables import Cell, Column, Table

__all__ = ["build"]

_CHANGE_CLASS = {"regression": "v-fail", "improvement": "v-ok", "changed": "v-note"}
# Outcomes listed row by row; the others (unchanged, not comparable) are only counted.
LISTED = ("regression", "improvement", "changed", "only_in_base", "only_in_new")
# base -> new pairs shown, when the comparison has them, and how their values read.
PAIRED: tuple[tuple[str, Callable[[Any], str]], ...] = (
    ("verdict", str), ("accuracy_class", str), ("max_ulp", fmt.ulp),
    ("median_s", fmt.seconds))


def _value(value: Any, show: Callable[[Any], str] = str) -> str:
    return "–" if fmt.is_missing(value) else show(value)


def comparison_table(table: pd.DataFrame) -> tuple[Table, dict[str, int]]:
    counts = {str(k): int(v) for k, v in table["change"].value_counts().items()} \
        if len(table) else {}
    shown = table[table["change"].isin(LISTED)] if len(table) else table
    paired = [(name, show) for name, show in PAIRED
              if f"{name}_base" in table.columns and f"{name}_new" in table.columns]
    columns = [Column("change"), *([Column("kind")] if "kind" in table.columns else []),
               Column("implementation"), Column("op"), Column("pass"), Column("case"),
               Column("dtype"), Column("device"),
               *(Column(f"{name}: base → new") for name, _ in paired)]
    if "max_ulp" in dict(paired):
        columns.append(Column("ulp ratio", numeric=True, title="max ulp new / base"))
    if "ratio" in table.columns:
        columns.append(Column("time ratio", numeric=True, title="median time new / base"))
    if "p_value" in table.columns:
        columns.append(Column("p", numeric=True, title="Mann-Whitney U test on the rounds"))
    columns.append(Column("reason"))
    rows = []
    for r in shown.to_dict("records"):
        change = str(r["change"])
        row = [Cell(change, cls=f"verdict {_CHANGE_CLASS.get(change, 'v-na')}")]
        if "kind" in table.columns:
            row.append(Cell(_value(r["kind"])))
        row += [impl_cell(r["implementation"]),
                *(Cell(str(r[k])) for k in ("op", "pass", "case", "dtype", "device"))]
        for name, show in paired:
            row.append(Cell(f"{_value(r[f'{name}_base'], show)} → "
                            f"{_value(r[f'{name}_new'], show)}"))
        if "max_ulp" in dict(paired):
            base, new = r["max_ulp_base"], r["max_ulp_new"]
            ratio = (float(new) / float(base) if not fmt.is_missing(base)
                     and not fmt.is_missing(new) and float(base) > 0 else math.nan)
            row.append(num_cell(ratio, "–" if math.isnan(ratio) else f"{ratio:.3g}×"))
        if "ratio" in table.columns:
            ratio = r["ratio"]
            row.append(num_cell(ratio, "–" if fmt.is_missing(ratio) else f"{ratio:.3g}×"))
        if "p_value" in table.columns:
            row.append(num_cell(r["p_value"], fmt.number(r["p_value"], 2)))
        row.append(Cell(_value(r["reason"])))
        rows.append(row)
    return Table("comparison", columns, rows), counts


def build(data: ReportData, baseline: pd.DataFrame, baseline_runs: list[str]) -> Page:
    table = compare.compare(baseline, data.raw if data.raw is not None else data.records)
    rendered, counts = comparison_table(table)
    order = list(compare.CHANGES)
    summary = sorted(counts.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order
                                                     else len(order), kv[0]))
    context = {"table": rendered, "summary": summary, "baseline_runs": baseline_runs,
               "regressions": counts.get("regression", 0),
               "min_factor": compare.DEFAULT_MIN_FACTOR,
               "alpha": compare.DEFAULT_ALPHA}
    return Page("comparison.html", "comparison.html.j2", "Comparison with the baseline",
                "comparison", context)
