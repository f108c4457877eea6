"""Aggregations that several pages share: accuracy per implementation, winners, stability cells.

Conventions (docs/reports.md): accuracy statistics use the *scored* records (``case_status ==
"scored"``) that ran (not unsupported or unavailable); a record *fails* when its verdict is one
of ``harness.vocabulary.FAILURE_VERDICTS`` (``convention_differs`` is not a failure). The best
implementation of a group has the mildest worst severity, then the fewest failures, then the
smallest max ulp, then the smallest p99 ulp (then its name, so that ties resolve the same way
every time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.vocabulary import (
    ACCURACY_CLASSES,
    FAILURE_VERDICTS,
    SEVERITIES,
    SEVERITY_RANK,
    VERDICT_RANK,
)
from reports.data import NOT_RUN

__all__ = [
    "GROUP",
    "PADDING_FAMILY",
    "attribute_padding",
    "shown_ulp",
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


def shown_ulp(frame: pd.DataFrame) -> pd.Series:
    """The ULP error a table shows per record: ``max_ulp_nonzero`` (elements whose exact value
    is not 0); NaN where only exact zeros were off (``zero_abs_err`` shows those); ``max_ulp``
    for records that predate the field (schema 1-2)."""
    nonzero = frame["max_ulp_nonzero"].astype("float64")
    zero = frame["zero_abs_err"].astype("float64")
    old = nonzero.isna() & zero.isna()
    return nonzero.where(~old, frame["max_ulp"].astype("float64"))


def _flag(column: pd.Series, value: bool) -> pd.Series:
    return column.map(lambda v: v is value or (isinstance(v, (bool, np.bool_)) and v == value))


def leaderboard(accuracy: pd.DataFrame) -> pd.DataFrame:
    """One row per (platform, op, pass, dtype, implementation): cases, failing, the worst
    severity, how many cases meet each standard (``componentwise``, ``normwise``; ``normwise``
    counts only the records that say), max ulp (over elements whose exact value is not 0, see
    ``shown_ulp``), the largest error where the exact value is 0 (in smallest normals), p99 ulp
    (the largest per-case p99), bound ratio (largest), worst accuracy class."""
    frame = scored_records(accuracy)
    columns = [*GROUP, "implementation", "framework", "cases", "failing", "worst_severity",
               "componentwise", "normwise", "normwise_known", "max_ulp", "zero_abs_err",
               "p99_ulp", "bound_ratio", "worst_class"]
    if not len(frame):
        return pd.DataFrame(columns=columns)
    work = frame[[*GROUP, "implementation", "framework", "p99_ulp", "zero_abs_err",
                  "bound_ratio", "sev_rank"]].assign(
        fail=frame["fails"].astype(int),
        max_ulp=shown_ulp(frame),
        comp=_flag(frame["componentwise"], True).astype(int),
        norm=_flag(frame["normwise"], True).astype(int),
        norm_known=(_flag(frame["normwise"], True) | _flag(frame["normwise"], False)).astype(int),
        class_rank=frame["accuracy_class"].map(_CLASS_RANK).astype("float64"))
    grouped = work.groupby([*GROUP, "implementation", "framework"], sort=True, dropna=False)
    table = grouped.agg(cases=("fail", "size"), failing=("fail", "sum"),
                        sev_rank=("sev_rank", "max"), componentwise=("comp", "sum"),
                        normwise=("norm", "sum"), normwise_known=("norm_known", "sum"),
                        max_ulp=("max_ulp", "max"), zero_abs_err=("zero_abs_err", "max"),
                        p99_ulp=("p99_ulp", "max"), bound_ratio=("bound_ratio", "max"),
                        class_rank=("class_rank", "max")).reset_index()
    table["worst_class"] = [None if np.isnan(r) else ACCURACY_CLASSES[int(r)]
                            for r in table["class_rank"]]
    table["worst_severity"] = [SEVERITIES[int(r)] if 0 <= r < len(SEVERITIES) else None
                               for r in table["sev_rank"]]
    return table[columns]


def winners(board: pd.DataFrame) -> pd.DataFrame:
    """The best implementation of each (platform, op, pass, dtype) group of a leaderboard: the
    mildest worst severity, then the fewest failures, then the smallest max ulp."""
    if not len(board):
        return board
    board = board.assign(_sev=board["worst_severity"].map(
        lambda v: SEVERITY_RANK.get(v, len(SEVERITIES))))
    ranked = board.sort_values([*GROUP, "_sev", "failing", "max_ulp", "p99_ulp",
                                "implementation"], na_position="last", kind="stable")
    ranked = ranked.drop(columns="_sev")
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
    """One implementation × family cell: the worst severity and verdict, how many records
    fail, and the records worth showing (the worst one per platform and dtype that did not
    pass, worst first)."""

    implementation: str
    family: str
    verdict: str | None
    failing: int
    total: int
    shown: tuple[dict[str, Any], ...]
    not_run: str  # why nothing ran, when nothing did
    severity: str | None = None

    @property
    def rank(self) -> int:
        """Sort key: severity first, then the verdict (both -1 when nothing ran)."""
        sev = SEVERITY_RANK.get(self.severity or "", -1)
        return sev * 100 + VERDICT_RANK.get(self.verdict or "", -1) if self.verdict else -1


# The stability matrix's column for failures on the N(0, 1) rows that pad a case to a shared
# shape (decided_by == "padding"): they are charged here, not to the case's family.
PADDING_FAMILY = "padding rows (N(0,1))"


def attribute_padding(frame: pd.DataFrame) -> pd.DataFrame:
    """Records whose verdict the padding rows decided (``decided_by == "padding"``) count
    twice: for their family with the verdict of the family's own rows (``special_verdict``),
    and in the ``PADDING_FAMILY`` column with the record's verdict."""
    if "decided_by" not in frame.columns:
        return frame
    pad = (frame["decided_by"] == "padding").to_numpy()
    if not pad.any():
        return frame
    charged = frame[pad].assign(case_family=PADDING_FAMILY)
    own = frame[pad].copy()
    own["verdict"] = own["special_verdict"]
    own["outcome"] = own["special_verdict"].where(own["special_verdict"].notna(),
                                                  own["outcome"])
    own["severity"] = own["special_severity"]
    own["rank"] = own["outcome"].map(lambda v: VERDICT_RANK.get(v, -1)).astype(int)
    own["sev_rank"] = own["severity"].map(lambda v: SEVERITY_RANK.get(v, -1)).astype(int)
    own["fails"] = own["outcome"].isin(sorted(FAILURE_VERDICTS)).astype(bool)
    own["score_message"] = [f"the family's own rows; the padding rows made the record {v}"
                            for v in frame[pad]["outcome"]]
    for column in ("expected", "got", "worst_index", "max_ulp", "limit_ratio"):
        own[column] = None
    return pd.concat([frame[~pad], own, charged], ignore_index=True)


DETAIL_FIELDS = ("implementation", "op", "pass", "device", "dtype", "case", "case_family",
                 "case_status", "status", "message", "verdict", "outcome", "expected", "exact",
                 "got", "worst_index", "convention", "convention_reference", "score_message",
                 "max_ulp", "limit_ratio", "machine", "platform", "run_index", "severity",
                 "decided_by")


def worst_records(frame: pd.DataFrame, per: list[str]) -> pd.DataFrame:
    """The records that ran and did not pass, worst first (severity, then verdict, then how
    far over the limit), one per ``per`` group."""
    bad = frame[frame["ran"].to_numpy() & (frame["rank"] > 0).to_numpy()]
    bad = bad.assign(_ratio=pd.to_numeric(bad["limit_ratio"], errors="coerce").fillna(0.0))
    bad = bad.sort_values(["sev_rank", "rank", "_ratio", *per, "case"],
                          ascending=[False, False, False, *([True] * len(per)), True],
                          kind="stable")
    return bad.drop_duplicates(subset=per, keep="first")


def stability_cells(accuracy: pd.DataFrame, families: Iterable[str]
                    ) -> dict[tuple[str, str], StabilityCell]:
    """Cells of the implementation × family matrix for ``families`` (records of any status).

    A failure that the padding rows decided is charged to ``PADDING_FAMILY`` (a key of its
    own), and the family's cell gets the verdict of its own rows (``attribute_padding``)."""
    frame = attribute_padding(accuracy[accuracy["case_family"].isin(list(families)).to_numpy()])
    cells: dict[tuple[str, str], StabilityCell] = {}
    if not len(frame):
        return cells
    key = ["implementation", "case_family"]
    ran = frame[frame["ran"].to_numpy()]
    agg = ran.groupby(key, sort=True).agg(rank=("rank", "max"), failing=("fails", "sum"),
                                          total=("rank", "size"))
    worst = ran.sort_values(["sev_rank", "rank"], ascending=False,
                            kind="stable").drop_duplicates(key)
    worst_outcome = {(i, f): o for i, f, o in zip(worst["implementation"],
                                                  worst["case_family"], worst["outcome"])}
    worst_severity = {(i, f): (None if not isinstance(v, str) else v) for i, f, v in zip(
        worst["implementation"], worst["case_family"], worst["severity"])}
    shown: dict[tuple[str, str], list[dict[str, Any]]] = {}
    top = worst_records(frame, [*key, "platform", "dtype"])  # worst first within a cell
    for record in top[list(DETAIL_FIELDS)].to_dict("records"):
        shown.setdefault((record["implementation"], record["case_family"]), []).append(record)
    for (impl, family), row in agg.iterrows():
        verdict = worst_outcome[(impl, family)] if row["rank"] >= 0 else None
        cells[(str(impl), str(family))] = StabilityCell(
            str(impl), str(family), verdict, int(row["failing"]), int(row["total"]),
            tuple(shown.get((impl, family), ())), "",
            worst_severity.get((impl, family)) if verdict else None)
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
