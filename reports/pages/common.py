"""Small pieces every page uses: orders, links, cells for names, verdicts and numbers."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from harness.cases import DTYPE_NAMES
from harness.ops import OPS, PASSES
from harness.scoring import VERDICT_RANK
from reports import fmt
from reports.summaries import verdict_class
from reports.tables import Cell

__all__ = [
    "VERDICT_TEXT",
    "dtype_key",
    "impl_cell",
    "impl_path",
    "num_cell",
    "op_key",
    "pass_key",
    "slug",
    "verdict_cell",
]

# What each verdict means, one line each (docs/scoring.md §2; the runner's outcomes last).
VERDICT_TEXT: dict[str, str] = {
    "pass": "within the error limit; special values right",
    "convention_differs": "follows another documented convention on special rows (not a "
                          "failure)",
    "flushes_subnormals": "returns 0 where the answer is a subnormal number",
    "inaccurate": "some element is beyond its ULP limit, or a small result lost to 0",
    "silently_finite": "returns a number for a row that has no answer (bad label)",
    "inf_where_finite": "an infinity where the answer is finite, or a wrong infinity",
    "finite_where_nan": "a value where the answer is NaN",
    "nan_where_finite": "NaN where the answer is a number",
    "wrong_shape": "the output has the wrong shape",
    "error": "raised an exception on an input that has an answer",
    "timeout": "did not finish within the time limit",
    "crash": "the worker process died",
    "unsupported": "not run: the implementation does not take this dtype or pass",
    "unavailable": "not run: the framework or device is not there",
}


def dtype_key(dtype: Any) -> tuple[int, str]:
    name = str(dtype)
    return (DTYPE_NAMES.index(name) if name in DTYPE_NAMES else len(DTYPE_NAMES), name)


def op_key(op: Any) -> tuple[int, str]:
    names = list(OPS)
    return (names.index(str(op)) if str(op) in names else len(names), str(op))


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


def verdict_cell(verdict: Any, title: str | None = None) -> Cell:
    """A verdict badge that sorts by severity (scoring.VERDICTS order; not run first)."""
    v = None if fmt.is_missing(verdict) else str(verdict)
    return Cell(v or "–", float(VERDICT_RANK.get(v or "", -1)), cls=f"verdict {verdict_class(v)}",
                title=title if title is not None else VERDICT_TEXT.get(v or ""))
