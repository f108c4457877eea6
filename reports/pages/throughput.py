"""Throughput: GB/s against size with the copy roofline, forward and backward, per device.

Timing records are those of ``case_family == "throughput"`` (the timing runner's); a run
without them (accuracy only) gets a page that says so. The fastest implementation of a group is
the one with the smallest median time at the group's largest measured size.
"""

from __future__ import annotations

from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from reports import charts, fmt
from reports.data import ReportData
from reports.pages import Page
from reports.pages.common import (
    WinnersGrid,
    dtype_key,
    impl_cell,
    num_cell,
    op_key,
    pass_key,
    winners_grids_of,
)
from reports.tables import Cell, Column, Table, record_anchor

__all__ = ["FastestGrid", "NOISY_IQR", "build", "fastest", "fastest_grids", "timing_series",
           "timing_table"]

NOISY_IQR = 0.1  # IQR / median above this: the measurement is noisy (torch.utils.benchmark)
GROUP = ["platform", "op", "pass", "dtype"]


FastestGrid = WinnersGrid  # the same grid, of the fastest record per op, pass and dtype


def fastest(timing: pd.DataFrame) -> pd.DataFrame:
    """Per (platform, op, pass, dtype): the fastest record at the group's largest size."""
    if not len(timing):
        return timing
    largest = timing.groupby(GROUP)["elements"].transform("max")
    at_largest = timing[timing["elements"] == largest]
    ranked = at_largest.sort_values([*GROUP, "median_s", "implementation"], kind="stable")
    return ranked.groupby(GROUP, sort=True).head(1).reset_index(drop=True)


def _shape(shape: Any) -> str:
    return "×".join(str(int(n)) for n in shape) if isinstance(shape, (list, tuple)) else "?"


def fastest_grids(data: ReportData) -> list[FastestGrid]:
    def describe(r: Any) -> tuple[str, str]:
        return (f"{fmt.number(r['gbps'])} GB/s · {fmt.percent(r['roofline_fraction'])} of copy"
                f" · {_shape(r['shape'])}", f"median {fmt.seconds(r['median_s'])}")

    return winners_grids_of(fastest(data.timing), data.platforms, describe)


def _hover(r: Any) -> str:
    noisy = r["iqr_s"] / r["median_s"] > NOISY_IQR if r["median_s"] else False
    return (f"{charts.text(r['implementation'])}<br>{charts.text(r['dtype'])} "
            f"{charts.text(r['pass'])}, shape {_shape(r['shape'])}<br>"
            f"median {fmt.seconds(r['median_s'])} (IQR {fmt.seconds(r['iqr_s'])}"
            f"{', noisy' if noisy else ''})<br>{fmt.number(r['gbps'])} GB/s, "
            f"{fmt.percent(r['roofline_fraction'])} of copy")


def timing_series(group: pd.DataFrame, by: list[str]) -> list[charts.Series]:
    """One line per value of ``by`` (GB/s against elements) plus the copy roofline(s)."""
    series = []
    for key, g in group.groupby(by, sort=True):
        g = g.sort_values("elements")
        name = " ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        series.append(charts.Series(name, list(g["elements"]), list(g["gbps"]),
                                    [_hover(r) for _, r in g.iterrows()]))
    roof_keys = [k for k in ("platform", "dtype") if group[k].nunique() > 1]
    groups = group.groupby(roof_keys, sort=True) if roof_keys else [((), group)]
    for key, g in groups:
        roof = g.groupby("elements")["device_copy_gbps"].median().dropna()
        if not len(roof):
            continue
        label = " ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        series.append(charts.Series(f"copy roofline {label}".strip(), list(roof.index),
                                    list(roof.values),
                                    [f"copy roofline {charts.text(label)}<br>"
                                     f"{fmt.number(v)} GB/s" for v in roof.values],
                                    dash="dash", color="#333333"))
    return series


TIMING_COLUMNS = (
    Column("implementation"), Column("machine"), Column("device"), Column("op"),
    Column("pass"), Column("dtype"), Column("shape"),
    Column("median", numeric=True), Column("IQR", numeric=True,
                                           title="interquartile range / median"),
    Column("GB/s", numeric=True),
    Column("of copy", numeric=True, title="share of the copy roofline"),
    Column("peak memory", numeric=True, title="peak bytes (and how they were measured)"),
    Column("first call", numeric=True, title="first call: compilation or tracing included"),
    Column("rounds", numeric=True), Column("threads", numeric=True),
)


def timing_table(table_id: str, timing: pd.DataFrame) -> Table:
    rows = []
    frame = timing.sort_values(["implementation", "platform", "op", "pass", "dtype", "elements"],
                               kind="stable")
    ids = [record_anchor(*key) for key in zip(
        frame["implementation"], frame["case"], frame["dtype"], frame["device"],
        frame["pass"], frame["machine"])]
    for _, r in frame.iterrows():
        ratio = r["iqr_s"] / r["median_s"] if r["median_s"] else float("nan")
        method = r.get("peak_bytes_method")
        rows.append([
            impl_cell(r["implementation"]), Cell(str(r["machine"])), Cell(str(r["device"])),
            Cell(str(r["op"])), Cell(str(r["pass"])), Cell(str(r["dtype"])),
            Cell(_shape(r["shape"]), float(r["elements"])),
            num_cell(r["median_s"], fmt.seconds(r["median_s"])),
            num_cell(ratio, fmt.percent(ratio, 1), cls="noisy" if ratio > NOISY_IQR else ""),
            num_cell(r["gbps"]), num_cell(r["roofline_fraction"],
                                          fmt.percent(r["roofline_fraction"])),
            Cell(fmt.bytes_(r["peak_bytes"]), None if fmt.is_missing(r["peak_bytes"]) else
                 float(r["peak_bytes"]), title=None if fmt.is_missing(method) else str(method)),
            num_cell(r["first_call_s"], fmt.seconds(r["first_call_s"])),
            num_cell(r["rounds"], fmt.number(r["rounds"], 6)),
            num_cell(r["threads"], fmt.number(r["threads"], 6)),
        ])
    return Table(table_id, TIMING_COLUMNS, rows, ids=ids)


def build(data: ReportData) -> Page:
    timing = data.timing
    sections: list[dict[str, Any]] = []
    n = 0
    for platform in sorted(timing["platform"].unique()) if len(timing) else []:
        ptiming = timing[timing["platform"] == platform]
        for op in sorted(ptiming["op"].unique(), key=op_key):
            chart_list = []
            otiming = ptiming[ptiming["op"] == op]
            keys = sorted({(p, d) for p, d in zip(otiming["pass"], otiming["dtype"])},
                          key=lambda k: (pass_key(k[0]), dtype_key(k[1])))
            for pass_, dtype in keys:
                group = otiming[(otiming["pass"] == pass_) & (otiming["dtype"] == dtype)]
                n += 1
                chart_list.append(charts.lines(
                    f"tp-{n}", timing_series(group, ["implementation"]),
                    title=f"{op} · {pass_} · {dtype}", x_title="elements (rows × classes)",
                    y_title="GB/s"))
            sections.append({"platform": platform, "hardware": data.platforms.get(platform, ""),
                             "op": op, "charts": chart_list})
    table = timing_table("timing", timing) if len(timing) else None
    timed = data.records[data.records["case_family"] == "throughput"]
    untimed = timed[timed["status"] != "ok"]["status"].value_counts()
    context = {"grids": fastest_grids(data), "sections": sections, "table": table,
               "noisy": NOISY_IQR,
               "untimed": sorted((str(k), int(v)) for k, v in untimed.items())}
    return Page("throughput.html", "throughput.html.j2", "Throughput", "throughput", context)
