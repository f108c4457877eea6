"""Small pieces every page uses: orders, links, cells for names, verdicts and numbers."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.vocabulary import (
    DTYPE_NAMES,
    NOT_RUN_TEXT,
    OP_NAMES,
    PASSES,
    SEVERITY_RANK,
    SEVERITY_TEXT,
    VERDICT_LIST,
    VERDICT_RANK,
)
from reports import fmt
from reports.summaries import leaderboard, verdict_class
from reports.tables import Cell

__all__ = [
    "VERDICT_TEXT",
    "board_of",
    "dtype_key",
    "impl_cell",
    "impl_path",
    "num_cell",
    "op_key",
    "pass_key",
    "severity_cell",
    "slug",
    "verdict_cell",
]

# What each verdict means, one line each (the vocabulary's words, mildest first, then the
# outcomes of tasks that did not run).
VERDICT_TEXT: dict[str, str] = {**{v.name: v.text for v in VERDICT_LIST}, **NOT_RUN_TEXT}
# The CSS class of each severity (the verdict badges' colours).
SEVERITY_CLASS: dict[str, str] = {"none": "v-ok", "minor": "v-note", "major": "v-warn",
                                  "critical": "v-fail"}


def board_of(data: Any) -> pd.DataFrame:
    """``summaries.leaderboard(data.accuracy)``, made once per report (several pages read it;
    treat it as read-only)."""
    if "board" not in data.memo:
        data.memo["board"] = leaderboard(data.accuracy)
    return data.memo["board"]


def dtype_key(dtype: Any) -> tuple[int, str]:
    name = str(dtype)
    return (DTYPE_NAMES.index(name) if name in DTYPE_NAMES else len(DTYPE_NAMES), name)


def op_key(op: Any) -> tuple[int, str]:
    return (OP_NAMES.index(str(op)) if str(op) in OP_NAMES else len(OP_NAMES), str(op))


def pass_key(pass_: Any) -> int:
    return PASSES.index(str(pass_)) if str(pass_) in PASSES else len(PASSES)


def slug(text: str, limit: int = 60) -> str:
    """A file-name-safe, unique form of ``text``: safe characters plus a short hash."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:limit] or "x"
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def impl_path(name: str) -> str:
    """The implementation's page, relative to the site root."""
    return f"impl/{slug(name)}.html"


def impl_cell(name: Any) -> Cell:
    return Cell(str(name), str(name), href=impl_path(str(name)), code=True)


def num_cell(value: Any, text: str | None = None, cls: str = "") -> Cell:
    missing = fmt.is_missing(value)
    return Cell(fmt.number(value) if text is None else text,
                None if missing else float(value), cls=cls)


def severity_cell(severity: Any) -> Cell:
    """A severity badge that sorts by the ladder (none < minor < major < critical)."""
    v = None if fmt.is_missing(severity) else str(severity)
    return Cell(v or "–", float(SEVERITY_RANK.get(v or "", -1)),
                cls=f"verdict {SEVERITY_CLASS.get(v or '', 'v-na')}",
                title=SEVERITY_TEXT.get(v or "", "not run"))


def verdict_cell(verdict: Any, title: str | None = None) -> Cell:
    """A verdict badge that sorts by severity (vocabulary.VERDICTS order; not run first)."""
    v = None if fmt.is_missing(verdict) else str(verdict)
    return Cell(v or "–", float(VERDICT_RANK.get(v or "", -1)), cls=f"verdict {verdict_class(v)}",
                title=title if title is not None else VERDICT_TEXT.get(v or ""))


@dataclass(frozen=True)
class WinnersGrid:
    """Per platform: the best implementation of each op·pass (rows) in each dtype (columns),
    and how many of those each framework won per dtype."""

    platform: str
    hardware: str
    dtypes: list[str]
    rows: list[tuple[str, list[Cell]]]
    framework_wins: list[tuple[str, str]]  # dtype -> "torch 5, jax 3"


def winners_grids_of(best: pd.DataFrame, platforms: Mapping[str, str],
                     describe: Callable[[Any], tuple[str, str]]) -> list[WinnersGrid]:
    """The grids of ``best`` (one winning record per platform, op, pass and dtype);
    ``describe(record)`` gives the cell's (note, title)."""
    grids = []
    for platform, group in best.groupby("platform", sort=True) if len(best) else []:
        dtypes = sorted(group["dtype"].unique(), key=dtype_key)
        keys = sorted({(op, p) for op, p in zip(group["op"], group["pass"])},
                      key=lambda k: (op_key(k[0]), pass_key(k[1])))
        cells = {(r["op"], r["pass"], r["dtype"]): r for _, r in group.iterrows()}
        rows = []
        for op, pass_ in keys:
            line = []
            for dtype in dtypes:
                r = cells.get((op, pass_, dtype))
                if r is None:
                    line.append(Cell("–"))
                    continue
                name = str(r["implementation"])
                note, title = describe(r)
                line.append(Cell(name, name, href=impl_path(name), code=True, note=note,
                                 title=title))
            rows.append((f"{op} · {pass_}", line))
        wins = []
        for dtype in dtypes:
            counts = Counter(group[group["dtype"] == dtype]["framework"])
            ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            wins.append((dtype, ", ".join(f"{fw} {n}" for fw, n in ordered)))
        grids.append(WinnersGrid(str(platform), platforms.get(str(platform), ""), list(dtypes),
                                 rows, wins))
    return grids
