"""Worst inputs found: per implementation, the worst row `softmax-bench search` ran
(docs/search.md §5): the input row, the exact value against what came back, the search
parameters that produced it and the command that replays it from the run's worst-cases.toml.

Reads the records only (``case_family`` ``search``); builds no page when a run has none.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from typing import Any

from harness import store as results
from reports import fmt
from reports.data import ReportData
from reports.pages import Page
from reports.summaries import verdict_class

__all__ = ["NAV", "Worst", "build", "pages", "worst_rows"]

NAV = ("search", "search.html", "Worst inputs")

SEARCH_FAMILY = "search"
WORST_CASES = "worst-cases.toml"
_SHOWN = 24  # elements of the input row shown; the rest is in worst-cases.toml


@dataclass(frozen=True)
class Worst:
    implementation: str
    op: str
    dtype: str
    pass_: str
    machine: str
    verdict: str
    verdict_cls: str
    calls: int
    failing: int
    first_call: str
    row: str
    length: int
    expected: str
    exact: str
    got: str
    where: str
    why: str
    params: str
    command: str


def _text(value: Any) -> str:
    return "" if fmt.is_missing(value) else str(value)


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return 0.0
    return out if math.isfinite(out) else 0.0


def _row_text(row: Any, length: int) -> str:
    if not isinstance(row, (list, tuple)):
        return f"{length} classes (the row is in {WORST_CASES})"
    shown = ", ".join(str(v) for v in list(row)[:_SHOWN])
    more = f", … ({length} classes)" if len(row) > _SHOWN else ""
    return f"[{shown}{more}]"


def worst_rows(data: ReportData) -> list[Worst]:
    """The worst search record per (machine, implementation, op, dtype, pass), worst first."""
    out: list[tuple[tuple[float, ...], Worst]] = []
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for run in data.runs:
        if run.suite != SEARCH_FAMILY:
            continue
        # the search fields (search, search_tier, worst_row) are not among the columns the
        # other pages keep: read them from the run's own records
        frame = results.load(run.path)
        frame = frame[frame["case_family"] == SEARCH_FAMILY]
        for r in frame.to_dict("records"):
            r["run_index"] = run.index
            key = (run.machine, *(str(r[k]) for k in ("implementation", "op", "dtype", "pass")))
            groups.setdefault(key, []).append(r)
    for key, records in sorted(groups.items()):
        scored = [r for r in records if isinstance(r.get("search"), dict) and r["search"]]
        if not scored:
            continue

        def badness(r: dict[str, Any]) -> tuple[float, ...]:
            shape = r.get("shape") if isinstance(r.get("shape"), (list, tuple)) else [0]
            return (_num(r.get("search_tier")), _num(r.get("search_score")),
                    -float(shape[-1] if shape else 0))

        worst = max(scored, key=badness)
        failing = [r for r in scored if _num(r.get("search_tier")) > 0]
        first = min((int(r["search"].get("index", 0)) + 1 for r in failing), default=None)
        shape = worst.get("shape") if isinstance(worst.get("shape"), (list, tuple)) else [0]
        run = data.run_of(int(worst["run_index"]))
        verdict = _text(worst.get("verdict")) or _text(worst.get("status"))
        index = worst.get("worst_index")
        suite = shlex.quote(str(run.path / WORST_CASES))
        out.append((badness(worst), Worst(
            str(key[1]), str(key[2]), str(key[3]), str(key[4]), str(key[0]), verdict,
            verdict_class(verdict), len(scored), len(failing),
            "–" if first is None else str(first),
            _row_text(worst.get("worst_row"), int(shape[-1]) if shape else 0),
            int(shape[-1]) if shape else 0, _text(worst.get("expected")) or "–",
            _text(worst.get("exact")) or "–", _text(worst.get("got")) or "–",
            f"at {list(index)}" if isinstance(index, (list, tuple)) else "",
            _text(worst.get("score_message")) or _text(worst.get("message")),
            json.dumps(worst["search"].get("params", {}), sort_keys=True),
            f"softmax-bench run --suite {suite} --impl {shlex.quote(str(key[1]))}")))
    out.sort(key=lambda item: (-item[0][0], -item[0][1], item[1].implementation))
    return [w for _, w in out]


def build(data: ReportData) -> Page:
    return Page("search.html", "search.html.j2", "Worst inputs found", "search",
                {"rows": worst_rows(data)})


def pages(data: ReportData) -> list[Page]:
    """The page, where the runs hold search records."""
    page = build(data)
    return [page] if page.context["rows"] else []
