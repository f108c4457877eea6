"""The search strategy: the objective, the kept list of the most promising rows, and the order in
which one (implementation, op, dtype, pass) spends its budget (docs/search.md §2-§3).

Deterministic: a :class:`Searcher`'s choices depend only on the seed, its (op, dtype, pass) and
the outcomes it has been told, never on the clock or on other units. Implementations that
behave alike therefore get the same candidates (and share their exact references).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.planning.search import space
from harness.vocabulary import BACKWARD, CRASH, FAILURE_VERDICTS, TIMEOUT

# Critical outcomes (the order: critical > lost value > error/limit ratio).
CRITICAL_VERDICTS = frozenset({"nan_where_finite", "inf_where_finite", "finite_where_nan",
                               "silently_finite", "wrong_shape", "error", "timeout", "crash"})
TIERS = ("pass", "inaccurate", "lost value", "critical")
KEEP = 8  # rows kept for local refinement
FINDINGS = 5  # worst distinct findings written per (implementation, op, dtype, pass)
EXPLORE_ONLY = 0.1  # share of the budget spent before refining anything
REFINE = 0.45  # chance of a refinement step once something is kept
EXHAUSTIVE_SCAN = 2**16  # two-class 16-bit rows: every bit pattern of the second logit
STRATEGIES = ("structured", "random")
WIDE = 4096  # classes: a wider row is a "wide" one
WIDE_SHARE = 0.04  # most wide rows among the candidates (after the first 10)


def objective(fields: Mapping[str, Any]) -> tuple[int, float]:
    """(tier, limit ratio): tier 3 a critical outcome, 2 a lost value (0 where the exact value
    is a normal number), 1 any other failure, 0 a pass; ``severity`` decides where a record
    carries it (the scorer's newer field), the verdict otherwise."""
    verdict = str(fields.get("verdict") or fields.get("status") or "")
    severity = fields.get("severity")
    ratio = fields.get("limit_ratio")
    value = float(ratio) if isinstance(ratio, (int, float)) and np.isfinite(ratio) else 0.0
    counts = fields.get("counts") or {}
    failing = verdict in FAILURE_VERDICTS
    if severity == "critical" or verdict in CRITICAL_VERDICTS:
        return 3, value
    message = str(fields.get("score_message") or "")
    if failing and (counts.get("zero_for_nonzero") or "lost tail" in message
                    or "lost value" in message):
        return 2, value
    if failing or severity in ("major", "minor"):
        return 1, value
    return 0, value


def is_finding(fields: Mapping[str, Any]) -> bool:
    return str(fields.get("verdict") or "") in FAILURE_VERDICTS


def unit_seed(seed: int, op: str, dtype: str, pass_: str) -> list[int]:
    digest = hashlib.sha256(f"{op}/{dtype}/{pass_}".encode()).digest()
    return [int(seed), int.from_bytes(digest[:8], "little")]


def row_hash(row: space.Row) -> str:
    h = hashlib.sha256()
    for a in (row.x, row.targets, row.labels, row.cotangent):
        h.update(b"-" if a is None else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


@dataclass
class Candidate:
    """One row the search runs: its parameters, where it came from and its arrays."""

    index: int
    params: dict[str, Any]
    origin: str  # "explore", "refine", "scan" (exhaustive) or "random"
    row: space.Row
    digest: str
    parent: int | None = None
    move: str = ""

    def describe(self) -> dict[str, Any]:
        """The search parameters a record carries."""
        out: dict[str, Any] = {"index": self.index, "origin": self.origin,
                               "params": self.params}
        if self.parent is not None:
            out.update(parent=self.parent, move=self.move)
        return out


@dataclass
class Scored:
    candidate: Candidate
    key: tuple[int, float]
    fields: dict[str, Any]


@dataclass
class Searcher:
    """The search of one (implementation, op, dtype, pass) under a budget of ``budget`` calls."""

    op: str
    dtype: str
    pass_: str
    budget: int
    seed: int = 0
    strategy: str = "structured"
    kept: list[Scored] = field(default_factory=list)
    findings: list[Scored] = field(default_factory=list)
    best_pass: Scored | None = None
    calls: int = 0
    first_finding: int | None = None  # calls it took to find the first failing input

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}")
        self.rng = np.random.default_rng(unit_seed(self.seed, self.op, self.dtype, self.pass_))
        self._seen: set[str] = set()
        self._wide = 0  # candidates made wider than WIDE

    # -- what to try next ----------------------------------------------------------------------
    def scan_size(self) -> int:
        """Calls the exhaustive two-class scan takes: all 65,536 bit patterns for a 16-bit
        dtype where that leaves at least as many for the structured search, else none."""
        small = np.dtype(space.as_dtype(self.dtype)).itemsize == 2
        return EXHAUSTIVE_SCAN if (small and self.strategy == "structured"
                                   and self.budget >= 2 * EXHAUSTIVE_SCAN) else 0

    def candidates(self) -> Iterator[Candidate]:
        """Exactly ``budget`` candidates, each chosen after the previous one's outcome."""
        scan = self.scan_size()
        backward = self.pass_ == BACKWARD
        for i in range(self.budget):
            if i < scan:
                params, origin, parent, move = space.exhaustive(i, self.dtype), "scan", None, ""
                yield self._make(i, params, origin, parent, move)
                continue
            made = None
            for _ in range(6):  # a few tries for a row not run yet
                made = self._next(i, scan, backward)
                if made.digest not in self._seen:
                    break
            assert made is not None
            yield made

    def _next(self, i: int, scan: int, backward: bool) -> Candidate:
        if self.strategy == "random":
            return self._make(i, space.sample_random(self.rng, self.op, self.dtype, backward),
                              "random")
        explored = i - scan
        # Wide rows cost most (the reference, and slow kernels); the largest error ratios tend
        # to drift there, so their share of the calls is capped.
        wide_ok = self._wide < WIDE_SHARE * max(i, 1) + 10
        kept = [k for k in self.kept if wide_ok or k.candidate.row.x.shape[-1] <= WIDE]
        if kept and explored >= EXPLORE_ONLY * (self.budget - scan) and \
                self.rng.random() < REFINE:
            # the better ranked, the likelier; wide rows less often (their reference is slow)
            weights = 0.5 ** np.arange(len(kept)) * np.array(
                [1.0 if k.candidate.row.x.shape[-1] <= WIDE else 0.25 for k in kept])
            parent = kept[int(self.rng.choice(len(kept), p=weights / weights.sum()))]
            params, move = space.neighbour(parent.candidate.params, parent.candidate.row,
                                           self.rng, self.dtype, shrink=parent.key[0] >= 2)
            return self._make(i, params, "refine", parent.candidate.index, move)
        params = space.sample(self.rng, self.op, self.dtype, backward)
        for _ in range(10):
            if wide_ok or int(params["C"]) <= WIDE:
                break
            params = space.sample(self.rng, self.op, self.dtype, backward)
        return self._make(i, params, "explore")

    def _make(self, i: int, params: dict[str, Any], origin: str, parent: int | None = None,
              move: str = "") -> Candidate:
        row = space.build(params, self.op, self.dtype)
        self._wide += row.x.shape[-1] > WIDE
        return Candidate(i, params, origin, row, row_hash(row), parent, move)

    # -- what came back ------------------------------------------------------------------------
    def observe(self, candidate: Candidate, fields: Mapping[str, Any]) -> tuple[int, float]:
        """Take one outcome; returns its objective."""
        self.calls += 1
        self._seen.add(candidate.digest)
        key = objective(fields)
        scored = Scored(candidate, key, {k: fields.get(k) for k in (
            "verdict", "status", "limit_ratio", "max_ulp", "got", "expected", "exact",
            "worst_index", "score_message", "message", "severity")})
        if is_finding(fields):
            if self.first_finding is None:
                self.first_finding = self.calls
            self.findings = _top(self.findings, scored, FINDINGS)
        elif self.best_pass is None or key > self.best_pass.key:
            self.best_pass = scored
        # a hang or a crash is a finding but no place to refine around: every neighbour would
        # cost a timeout or a fresh worker, and the objective has nothing left to improve
        if fields.get("status") not in (TIMEOUT, CRASH) and candidate.origin != "scan":
            self.kept = _top(self.kept, scored, KEEP)
        return key


def rank(s: Scored) -> tuple[float, ...]:
    """Sort key, best first: the objective; among critical outcomes and lost values (where the
    ratio says little) the shorter row, then the earlier one. So once a row fails that badly,
    refining it minimises it: a short row is the better reproducer, and cheaper to judge."""
    tier, value = s.key
    size = float(s.candidate.row.x.shape[-1])
    if tier >= 2:
        return (-tier, size, 0.0, s.candidate.index)
    return (-tier, -value, size, s.candidate.index)


def _top(items: list[Scored], new: Scored, n: int) -> list[Scored]:
    """The ``n`` best by :func:`rank`, one per distinct row."""
    if any(s.candidate.digest == new.candidate.digest for s in items):
        return items
    return sorted([*items, new], key=rank)[:n]
