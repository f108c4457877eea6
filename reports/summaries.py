"""Aggregations that several pages share: accuracy per implementation, winners, stability cells.

Conventions (docs/reports.md): accuracy statistics use the *scored* records (``case_status ==
"scored"``) that ran (not unsupported or unavailable); a record *fails* when its verdict is one
of ``harness.vocabulary.FAILURE_VERDICTS`` (``convention_differs`` is not a failure). The best
implementation of a group has the fewest failures, then the smallest max ulp, then the smallest
p99 ulp (then its name, so that ties resolve the same way every time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.vocabulary import ACCURACY_CLASSES, VERDICT_RANK
from reports.data import NOT_RUN

__all__ = [
    "GROUP",
    "StabilityCell",
    "failing_mask",
    "leaderboard",
    "scored_records",
    "stability_cells",
    "verdict_class",
    "winners",
    "worst_verdict",
]

GROUP = ["platform", "op", "pass", "dtype"]
_CLASS_RANK = {c: i for i, c in enumerate(ACCURACY_CLASSES)}


def failing_mask(frame: pd.DataFrame) -> pd.Series:
    """Records whose outcome is a failure (``fails``, computed once by reports.data)."""
    return frame["fails"]


def scored_records(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Scored cases that ran: the records accuracy statistics are made of."""
    return accuracy[(accuracy["case_status"] == "scored").to_numpy() & accuracy["ran"].to_numpy()]


def leaderboard(accuracy: pd.DataFrame) -> pd.DataFrame:
    """One row per (platform, op, pass, dtype, implementation): cases, failing, max ulp, p99 ulp
    (the largest per-case p99), bound ratio (largest), worst accuracy class."""
    frame = scored_records(accuracy)
    columns = [*GROUP, "implementation", "framework", "cases", "failing", "max_ulp", "p99_ulp",
               "bound_ratio", "worst_class"]
    if not len(frame):
        return pd.DataFrame(columns=columns)
    work = frame[[*GROUP, "implementation", "framework", "max_ulp", "p99_ulp",
                  "bound_ratio"]].assign(
        fail=frame["fails"].astype(int),
        class_rank=frame["accuracy_class"].map(_CLASS_RANK).astype("float64"))
    grouped = work.groupby([*GROUP, "implementation", "framework"], sort=True, dropna=False)
    table = grouped.agg(cases=("fail", "size"), failing=("fail", "sum"),
                        max_ulp=("max_ulp", "max"), p99_ulp=("p99_ulp", "max"),
                        bound_ratio=("bound_ratio", "max"),
                        class_rank=("class_rank", "max")).reset_index()
    table["worst_class"] = [None if np.isnan(r) else ACCURACY_CLASSES[int(r)]
                            for r in table["class_rank"]]
    return table[columns]


def winners(board: pd.DataFrame) -> pd.DataFrame:
    """The best implementation of each (platform, op, pass, dtype) group of a leaderboard."""
    if not len(board):
        return board
    ranked = board.sort_values([*GROUP, "failing", "max_ulp", "p99_ulp", "implementation"],
                               na_position="last", kind="stable")
    ranked = ranked[ranked["max_ulp"].notna() | (ranked["failing"] < ranked["cases"])]
    return ranked.groupby(GROUP, sort=True).head(1).reset_index(drop=True)


def worst_verdict(verdicts: Iterable[Any]) -> str | None:
    """The most severe verdict (vocabulary.VERDICTS order); None when none is ranked."""
    ranked = [(VERDICT_RANK[v], v) for v in verdicts if isinstance(v, str) and v in VERDICT_RANK]
    return max(ranked)[1] if ranked else None


def verdict_class(verdict: str | None) -> str:
    """CSS class of a verdict: ok, note (convention_differs), warn (flushes subnormals,
    inaccurate), fail (wrong special values, wrong shape), broke (error, timeout, crash), na."""
    if verdict is None or verdict in NOT_RUN:
        return "v-na"
    if verdict == "pass":
        return "v-ok"
    if verdict == "convention_differs":
        return "v-note"
    if verdict in ("flushes_subnormals", "inaccurate"):
        return "v-warn"
    if verdict in ("error", "timeout", "crash"):
        return "v-broke"
    return "v-fail"


@dataclass(frozen=True)
class StabilityCell:
    """One implementation × family cell: the worst verdict, how many records fail, and the
    records worth showing (the worst one per platform and dtype that did not pass, worst
    first)."""

    implementation: str
    family: str
    verdict: str | None
    failing: int
    total: int
    shown: tuple[dict[str, Any], ...]
    not_run: str  # why nothing ran, when nothing did

    @property
    def rank(self) -> int:
        return VERDICT_RANK.get(self.verdict or "", -1)


DETAIL_FIELDS = ("implementation", "op", "pass", "device", "dtype", "case", "case_family",
                 "case_status", "status", "message", "verdict", "outcome", "expected", "exact",
                 "got", "worst_index", "convention", "convention_reference", "score_message",
                 "max_ulp", "limit_ratio", "machine", "platform", "run_index")


def worst_records(frame: pd.DataFrame, per: list[str]) -> pd.DataFrame:
    """The records that ran and did not pass, worst first (severity, then how far over the
    limit), one per ``per`` group."""
    bad = frame[frame["ran"].to_numpy() & (frame["rank"] > 0).to_numpy()]
    bad = bad.assign(_ratio=bad["limit_ratio"].fillna(0.0))
    bad = bad.sort_values(["rank", "_ratio", *per, "case"],
                          ascending=[False, False, *([True] * len(per)), True], kind="stable")
    return bad.drop_duplicates(subset=per, keep="first")


def stability_cells(accuracy: pd.DataFrame, families: Iterable[str]
                    ) -> dict[tuple[str, str], StabilityCell]:
    """Cells of the implementation × family matrix for ``families`` (records of any status)."""
    frame = accuracy[accuracy["case_family"].isin(list(families)).to_numpy()]
    cells: dict[tuple[str, str], StabilityCell] = {}
    if not len(frame):
        return cells
    key = ["implementation", "case_family"]
    ran = frame[frame["ran"].to_numpy()]
    agg = ran.groupby(key, sort=True).agg(rank=("rank", "max"), failing=("fails", "sum"),
                                          total=("rank", "size"))
    worst = ran.sort_values("rank", ascending=False, kind="stable").drop_duplicates(key)
    worst_outcome = {(i, f): o for i, f, o in zip(worst["implementation"],
                                                  worst["case_family"], worst["outcome"])}
    shown: dict[tuple[str, str], list[dict[str, Any]]] = {}
    top = worst_records(frame, [*key, "platform", "dtype"])  # worst first within a cell
    for record in top[list(DETAIL_FIELDS)].to_dict("records"):
        shown.setdefault((record["implementation"], record["case_family"]), []).append(record)
    for (impl, family), row in agg.iterrows():
        verdict = worst_outcome[(impl, family)] if row["rank"] >= 0 else None
        cells[(str(impl), str(family))] = StabilityCell(
            str(impl), str(family), verdict, int(row["failing"]), int(row["total"]),
            tuple(shown.get((impl, family), ())), "")
    idle = frame[~frame["ran"].to_numpy()].drop_duplicates([*key, "message"])
    reasons: dict[tuple[str, str], set[str]] = {}
    for impl, family, message in zip(idle["implementation"], idle["case_family"],
                                     idle["message"]):
        reasons.setdefault((str(impl), str(family)), set()).add(str(message or ""))
    for (impl, family), messages in sorted(reasons.items()):
        if (impl, family) not in cells:
            cells[(impl, family)] = StabilityCell(impl, family, None, 0, 0, (),
                                                  "; ".join(sorted(messages)[:2]))
    return cells
