"""Stability: the implementation × adversarial family matrix of verdicts.

Each cell shows the worst severity and verdict and how many records failed; a failure on the
N(0, 1) rows that pad a case to a shared shape is charged to the column ``PADDING_FAMILY``, not
to the case's family (whose cell gets the verdict of its own rows); it opens (a ``<details>``
element, so without JavaScript too) onto the worst record per machine and dtype that did not
pass: expected against got, and the one-line command that reproduces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.vocabulary import SEVERITIES, SEVERITY_TEXT, VERDICT_RANK
from reports import fmt
from reports.data import ReportData
from reports.pages import Page
from reports.pages.common import SEVERITY_CLASS, VERDICT_TEXT, impl_path, op_key
from reports.repro import reproduce_command
from reports.summaries import PADDING_FAMILY, StabilityCell, stability_cells, verdict_class
from reports.tables import record_anchor, row_anchor

__all__ = ["Detail", "build", "details_of", "failing_specials"]


@dataclass(frozen=True)
class Detail:
    """One record shown in a cell: what was expected, what came, and how to see it again."""

    machine: str
    dtype: str
    pass_: str
    case: str
    verdict: str
    verdict_cls: str
    expected: str
    got: str
    where: str
    why: str
    command: str
    anchor: str = ""  # the permalink id of its block ("d" + the record's row id)


def _text(value: Any) -> str:
    return "" if fmt.is_missing(value) else str(value)


def details_of(data: ReportData, records: Any) -> list[Detail]:
    out = []
    for r in records:
        verdict = _text(r.get("outcome"))
        severity = _text(r.get("severity"))
        if severity:
            verdict = f"{severity} · {verdict}"
        expected = _text(r.get("expected")) or _text(r.get("convention_reference"))
        got = _text(r.get("got")) or _text(r.get("convention"))
        why = _text(r.get("score_message")) or _text(r.get("message"))
        index = r.get("worst_index")
        where = f"at {list(index)}" if isinstance(index, (list, tuple)) else ""
        suite = data.run_of(int(r["run_index"])).suite
        out.append(Detail(str(r["machine"]), str(r["dtype"]), str(r["pass"]), str(r["case"]),
                          verdict, verdict_class(_text(r.get("outcome"))), expected or "–",
                          got or "–", where,
                          why, reproduce_command(r, suite) if suite else "",
                          "d" + record_anchor(r.get("implementation"), r.get("case"),
                                              r.get("dtype"), r.get("device"), r.get("pass"),
                                              r.get("machine"))))
    return out


def failing_specials(cells: dict[tuple[str, str], StabilityCell], families: Sequence[str]
                     ) -> list[tuple[str, str, list[str]]]:
    """(family, verdict, implementations) for every failing verdict: who fails which special
    case, and how. Ordered by family (in ``families``' order), then severity."""
    found: dict[tuple[str, str], list[str]] = {}
    for cell in cells.values():
        if cell.failing and cell.verdict and verdict_class(cell.verdict) not in ("v-ok",
                                                                                "v-note"):
            found.setdefault((cell.family, cell.verdict), []).append(cell.implementation)
    order = {f: i for i, f in enumerate(families)}
    return [(fam, verdict, sorted(impls)) for (fam, verdict), impls in
            sorted(found.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][0],
                                                  -VERDICT_RANK.get(kv[0][1], 0)))]


def build(data: ReportData) -> Page:
    families = [f for f in data.adversarial_families
                if f in set(data.accuracy["case_family"].astype(str))]
    cells = stability_cells(data.accuracy, families)
    if any(family == PADDING_FAMILY for _, family in cells):
        families = [*families, PADDING_FAMILY]
    impls = sorted({impl for impl, _ in cells},
                   key=lambda i: (op_key(data.implementations[i].op
                                         if i in data.implementations else ""), i))
    rows = []
    for impl in impls:
        info = data.implementations.get(impl)
        row_cells: list[dict[str, Any] | None] = []
        for fam in families:
            cell = cells.get((impl, fam))
            if cell is None:
                row_cells.append(None)
                continue
            title = VERDICT_TEXT.get(cell.verdict or "", cell.not_run)
            if cell.severity:
                title = f"severity {cell.severity}: {SEVERITY_TEXT[cell.severity]}. {title}"
            row_cells.append({"cell": cell, "cls": verdict_class(cell.verdict),
                              "details": details_of(data, cell.shown), "title": title})
        rows.append({"impl": impl, "href": impl_path(impl), "id": row_anchor("matrix", [impl]),
                     "op": info.op if info else "",
                     "cells": row_cells})
    legend = [(v, verdict_class(v), text) for v, text in VERDICT_TEXT.items()]
    severities = [(s, SEVERITY_CLASS[s], SEVERITY_TEXT[s]) for s in SEVERITIES]
    context = {"families": families, "rows": rows, "legend": legend, "severities": severities,
               "padding_family": PADDING_FAMILY,
               "specials": failing_specials(cells, families)}
    return Page("stability.html", "stability.html.j2", "Stability", "stability", context)
