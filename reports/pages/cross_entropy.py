"""Fused vs composed cross-entropy: accuracy and speed side by side, per framework and dtype.

*Composed* is ``-log(softmax(x))`` from separate ops (the implementations named
``*composed*``); *fused* is everything else that computes the loss (one library call, or a
log-softmax-based formula). Each fused implementation is paired with the composed one of the
same framework, execution mode, op, dtype, pass and machine. Accuracy compares failing records
on the same scored cases, then max ulp (a factor of 2 counts as a difference); speed is the
geometric mean over the sizes both measured of composed time / fused time (5% counts).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from reports import charts, fmt
from reports.data import CE_OPS, ReportData, ce_kind, mode_of
from reports.pages import Page
from reports.pages.common import board_of, dtype_key, impl_cell, num_cell, op_key, pass_key
from reports.summaries import failing_mask, scored_records
from reports.tables import Cell, Column, Table

__all__ = ["Pair", "build", "pairs", "summary_table"]

ULP_FACTOR = 2.0
SPEED_MARGIN = 0.05


@dataclass(frozen=True)
class Pair:
    platform: str
    op: str
    framework: str
    mode: str
    dtype: str
    pass_: str
    fused: str
    composed: str
    fused_acc: dict[str, Any] | None
    composed_acc: dict[str, Any] | None
    fused_families: tuple[str, ...]
    composed_families: tuple[str, ...]
    speedup: float | None  # composed time / fused time, geometric mean over common sizes
    sizes: int

    @property
    def accuracy_verdict(self) -> str:
        f, c = self.fused_acc, self.composed_acc
        if f is None or c is None:
            return "no data"
        if f["failing"] != c["failing"]:
            return "fused" if f["failing"] < c["failing"] else "composed"
        fu, cu = f["max_ulp"], c["max_ulp"]
        if fmt.is_missing(fu) or fmt.is_missing(cu):
            return "tie"
        if fu * ULP_FACTOR < cu:
            return "fused"
        if cu * ULP_FACTOR < fu:
            return "composed"
        return "tie"

    @property
    def speed_verdict(self) -> str:
        if self.speedup is None:
            return "no data"
        if self.speedup > 1 + SPEED_MARGIN:
            return "fused"
        if self.speedup < 1 - SPEED_MARGIN:
            return "composed"
        return "tie"


def _families(frame: pd.DataFrame) -> dict[tuple[str, ...], tuple[str, ...]]:
    bad = frame[failing_mask(frame)]
    out: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for key, fam in zip(zip(bad["platform"], bad["op"], bad["pass"], bad["dtype"],
                            bad["implementation"]), bad["case_family"]):
        out[tuple(map(str, key))].add(str(fam))
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _medians(timing: pd.DataFrame) -> dict[tuple[str, ...], dict[int, float]]:
    """Median time per (platform, op, pass, dtype, implementation) and size: one groupby
    for every pair instead of a filter per pair."""
    if not len(timing):
        return {}
    grouped = timing.groupby(["platform", "op", "pass", "dtype", "implementation",
                              "elements"], sort=False)["median_s"].median()
    out: dict[tuple[str, ...], dict[int, float]] = defaultdict(dict)
    for (platform, op, pass_, dtype, impl, elements), value in grouped.items():
        out[tuple(map(str, (platform, op, pass_, dtype, impl)))][int(elements)] = float(value)
    return out


def _speedup(medians: dict[tuple[str, ...], dict[int, float]], key: tuple[str, str, str, str],
             fused: str, composed: str) -> tuple[float | None, int]:
    f = medians.get((*key, fused), {})
    c = medians.get((*key, composed), {})
    common = sorted(set(f) & set(c))
    ratios = [c[e] / f[e] for e in common if f[e] > 0 and c[e] > 0]
    if not ratios:
        return None, 0
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios)), len(ratios)


def pairs(data: ReportData, board: pd.DataFrame | None = None) -> list[Pair]:
    if board is None and "ce_pairs" in data.memo:
        return list(data.memo["ce_pairs"])
    found = _pairs(data, board)
    if board is None:
        data.memo["ce_pairs"] = tuple(found)
    return found


def _pairs(data: ReportData, board: pd.DataFrame | None) -> list[Pair]:
    board = board_of(data) if board is None else board
    board = board[board["op"].isin(CE_OPS)]
    acc = {(r["platform"], r["op"], r["pass"], r["dtype"], r["implementation"]): r.to_dict()
           for _, r in board.iterrows()}
    families = _families(scored_records(data.accuracy[data.accuracy["op"].isin(CE_OPS)]))
    timing = data.timing[data.timing["op"].isin(CE_OPS)] if data.has_timing else data.timing
    keys: set[tuple[str, ...]] = {tuple(map(str, k)) for k in acc}
    keys |= {tuple(map(str, k)) for k in zip(timing["platform"], timing["op"], timing["pass"],
                                             timing["dtype"], timing["implementation"])}
    groups: dict[tuple[str, ...], dict[str, list[str]]] = defaultdict(
        lambda: {"fused": [], "composed": []})
    for platform, op, pass_, dtype, impl in keys:
        info = data.implementations.get(impl)
        framework = info.framework if info else impl.split(".")[0]
        groups[(platform, op, framework, mode_of(impl), dtype, pass_)][ce_kind(impl)].append(
            impl)
    out = []
    medians = _medians(timing)
    for (platform, op, framework, mode, dtype, pass_), sides in groups.items():
        for fused in sorted(sides["fused"]):
            for composed in sorted(sides["composed"]):
                speed, sizes = _speedup(medians, (platform, op, pass_, dtype), fused, composed)
                out.append(Pair(platform, op, framework, mode, dtype, pass_, fused, composed,
                                acc.get((platform, op, pass_, dtype, fused)),
                                acc.get((platform, op, pass_, dtype, composed)),
                                families.get((platform, op, pass_, dtype, fused), ()),
                                families.get((platform, op, pass_, dtype, composed), ()),
                                speed, sizes))
    return sorted(out, key=lambda p: (p.platform, op_key(p.op), p.framework, p.mode,
                                      dtype_key(p.dtype), pass_key(p.pass_), p.fused,
                                      p.composed))


PAIR_COLUMNS = (
    Column("framework"), Column("mode"), Column("op"), Column("dtype"), Column("pass"),
    Column("fused"), Column("composed"),
    Column("failing fused", numeric=True, title="failing records of the fused loss"),
    Column("failing composed", numeric=True),
    Column("max ulp fused", numeric=True), Column("max ulp composed", numeric=True),
    Column("fails only composed", title="case families where only the composed loss fails"),
    Column("speed-up", numeric=True,
           title="composed time / fused time, geometric mean over common sizes (> 1: fused "
                 "is faster)"),
    Column("more accurate"), Column("faster"),
)


def _verdict(v: str) -> Cell:
    cls = {"fused": "v-ok", "composed": "v-fail", "tie": "v-note"}.get(v, "v-na")
    return Cell(v, v, cls=f"verdict {cls}")


def pair_table(table_id: str, items: list[Pair]) -> Table:
    rows = []
    for p in items:
        f, c = p.fused_acc or {}, p.composed_acc or {}
        only = sorted(set(p.composed_families) - set(p.fused_families))
        rows.append([
            Cell(p.framework), Cell(p.mode), Cell(p.op), Cell(p.dtype), Cell(p.pass_),
            impl_cell(p.fused), impl_cell(p.composed),
            num_cell(f.get("failing"), fmt.number(f.get("failing"), 6)),
            num_cell(c.get("failing"), fmt.number(c.get("failing"), 6)),
            num_cell(f.get("max_ulp"), fmt.ulp(f.get("max_ulp"))),
            num_cell(c.get("max_ulp"), fmt.ulp(c.get("max_ulp"))),
            Cell(", ".join(only) or "–"),
            num_cell(p.speedup, "–" if p.speedup is None else f"{p.speedup:.2f}×"),
            _verdict(p.accuracy_verdict), _verdict(p.speed_verdict),
        ])
    return Table(table_id, PAIR_COLUMNS, rows)


SUMMARY_COLUMNS = (
    Column("machine · device"), Column("framework"), Column("dtype"),
    Column("pairs", numeric=True),
    Column("fused more accurate", numeric=True), Column("as accurate", numeric=True),
    Column("composed more accurate", numeric=True),
    Column("fused faster", numeric=True), Column("as fast", numeric=True),
    Column("composed faster", numeric=True),
    Column("median speed-up", numeric=True, title="median over pairs of composed / fused time"),
)


def summary_table(table_id: str, items: list[Pair]) -> Table:
    """Per machine, framework and dtype: in how many pairs the fused loss wins."""
    grouped: dict[tuple[str, str, str], list[Pair]] = defaultdict(list)
    for p in items:
        grouped[(p.platform, p.framework, p.dtype)].append(p)
    rows = []
    for (platform, framework, dtype), ps in sorted(grouped.items(),
                                                   key=lambda kv: (kv[0][0], kv[0][1],
                                                                   dtype_key(kv[0][2]))):
        acc = [p.accuracy_verdict for p in ps]
        speed = [p.speed_verdict for p in ps]
        ups = sorted(p.speedup for p in ps if p.speedup is not None)
        median = ups[len(ups) // 2] if len(ups) % 2 else (
            (ups[len(ups) // 2 - 1] + ups[len(ups) // 2]) / 2 if ups else None)
        count = lambda vs, v: num_cell(vs.count(v), str(vs.count(v)))  # noqa: E731
        rows.append([Cell(platform), Cell(framework), Cell(dtype), num_cell(len(ps), str(len(ps))),
                     count(acc, "fused"), count(acc, "tie"), count(acc, "composed"),
                     count(speed, "fused"), count(speed, "tie"), count(speed, "composed"),
                     num_cell(median, "–" if median is None else f"{median:.2f}×")])
    return Table(table_id, SUMMARY_COLUMNS, rows)


def _charts(data: ReportData, board: pd.DataFrame) -> list[charts.Chart]:
    """Per machine and op: max ulp against GB/s at the largest size, forward pass."""
    timing = data.timing
    if not len(timing):
        return []
    timing = timing[timing["op"].isin(CE_OPS) & (timing["pass"] == "forward")]
    largest = timing.groupby(["platform", "op", "dtype"])["elements"].transform("max")
    timing = timing[timing["elements"] == largest]
    key = ["platform", "op", "pass", "dtype", "implementation"]
    merged = timing[[*key, "gbps", "elements"]].merge(board, on=key, how="inner")
    out = []
    for n, ((platform, op), g) in enumerate(sorted(merged.groupby(["platform", "op"]),
                                                   key=lambda kv: (kv[0][0], op_key(kv[0][1])))):
        series = []
        for (kind, dtype), s in sorted(g.assign(kind=[ce_kind(i) for i in g["implementation"]])
                                       .groupby(["kind", "dtype"]),
                                       key=lambda kv: (kv[0][0], dtype_key(kv[0][1]))):
            hover = [f"{charts.text(r['implementation'])} ({kind}, {charts.text(dtype)})<br>"
                     f"{fmt.number(r['gbps'])} GB/s at {int(r['elements'])} elements<br>"
                     f"max {fmt.ulp(r['max_ulp'])} ulp, {int(r['failing'])} failing of "
                     f"{int(r['cases'])}" for _, r in s.iterrows()]
            series.append(charts.Series(f"{kind} {dtype}", list(s["gbps"]),
                                        [max(float(u), 0.01) if not fmt.is_missing(u) else None
                                         for u in s["max_ulp"]], hover,
                                        symbol="circle" if kind == "fused" else "x"))
        out.append(charts.scatter(f"ce-{n}", series, title=f"{platform}: {op} (forward)",
                                  x_title="GB/s at the largest size (right is faster)",
                                  y_title="max ulp over scored cases (down is more accurate)"))
    return out


def build(data: ReportData) -> Page:
    board = board_of(data)
    items = pairs(data)
    context = {"summary": summary_table("ce-summary", items),
               "pairs": pair_table("ce-pairs", items), "charts": _charts(data, board),
               "ulp_factor": ULP_FACTOR, "speed_margin": SPEED_MARGIN}
    return Page("cross-entropy.html", "cross_entropy.html.j2", "Fused vs composed cross-entropy",
                "cross-entropy", context)
