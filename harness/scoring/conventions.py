"""Conventions: what an implementation did on a case's special rows, and whether it is accepted.

The family says which rows are special and which outcomes it accepts there besides the
reference's value (:mod:`harness.planning.cases.expectations`); this module describes each
special row of an output ("NaN row", "all 0", ...), matches it against the reference's pattern
of special values and the family's alternatives, and gives the rows' verdict. It never asks a
family's name: only its declared expectations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.planning.cases import FAMILIES, Alternative, Expectations
from harness.scoring.error_model import Rows
from harness.scoring.fields import CONVENTION_DIFFERS, PASS, SILENTLY_FINITE, num_text
from harness.vocabulary import CONVENTION, ERROR_EXPECTED

Array = npt.NDArray[Any]
F64 = npt.NDArray[np.float64]

# Views of the family table, keyed by family name, for the tests and the docs (the scorer asks
# the family): (family, op, pass) -> accepted alternatives, and the families where raising an
# exception is an accepted outcome.
ALTERNATIVES: Mapping[tuple[str, str, str], tuple[Alternative, ...]] = MappingProxyType({
    (name, op, pass_): alternatives
    for name, family in FAMILIES.items()
    for (op, pass_), alternatives in family.expects.alternatives.items()
})
RAISING_ACCEPTED: frozenset[str] = frozenset(
    name for name, family in FAMILIES.items() if family.expects.raising_accepted)


def _describe(a: F64) -> str:
    """A short name for what an output row is ("NaN row", "all 0", "finite values", ...)."""
    one = a.size == 1
    if a.size == 0:
        return "empty output"
    for pred, row_name, scalar in ((np.isnan, "NaN row", "NaN"), (lambda v: v == 0, "all 0", "0"),
                                   (lambda v: v == -np.inf, "all -inf", "-inf"),
                                   (lambda v: v == np.inf, "all +inf", "+inf")):
        if np.all(pred(a)):
            return scalar if one else row_name
    if np.all(np.isfinite(a)):
        return "finite value" if one else "finite values"
    shown = ", ".join(num_text(v) for v in a[:4]) + (", ..." if a.size > 4 else "")
    return f"[{shown}]"


def _same_pattern(a: F64, z: F64) -> bool:
    """Same special values at the same places (finite entries are judged by accuracy)."""
    if a.shape != z.shape:
        return False
    both_nan = np.isnan(a) & np.isnan(z)
    both_finite = np.isfinite(a) & np.isfinite(z)
    return bool(np.all(both_nan | both_finite | (a == z)))


def special_rows(expects: Expectations, op: str, status: str, inputs: Mapping[str, Array],
                 rows: Rows) -> npt.NDArray[np.bool_]:
    """The rows judged by convention: the family's special rows on convention and
    error_expected cases, none on scored ones."""
    if status in (CONVENTION, ERROR_EXPECTED):
        return expects.special_rows(op, rows.x, inputs)
    return np.zeros(rows.x.shape[0], bool)


@dataclass
class Convention:
    """What an output did on the special rows (``did``), the reference's outcome there, whether
    every row follows an accepted outcome, and the verdict of the special rows."""

    did: str
    reference: str | None
    follows: bool
    verdict: str
    scored_rows: npt.NDArray[np.bool_]  # special rows whose finite values join the accuracy score
    first_element: int  # flat index of the first element of the first non-following row


def judge_special(alts: tuple[Alternative, ...], status: str, y2: F64, z2: F64 | None,
                  rows: Rows, row_special: npt.NDArray[np.bool_],
                  inputs: Mapping[str, Array], view: tuple[int, ...]) -> Convention:
    """Describe what the implementation did on the special rows and whether it is accepted
    (the reference's special values, or one of the family's alternatives ``alts``)."""
    k = view[1] if len(view) == 2 else 1
    did: list[str] = []
    refs: list[str] = []
    follows, silent = True, False
    first = -1
    scored_rows = np.zeros(view[0], bool)
    targets = (np.asarray(inputs["targets"]).astype(np.int64).reshape(-1)
               if "targets" in inputs else None)
    for r in np.nonzero(row_special)[0]:
        a = y2[r].reshape(-1)
        x = rows.x[r] if view[0] == rows.x.shape[0] else np.empty(0)
        z = None if z2 is None else z2[r].reshape(-1)
        what, ok = _describe(a), False
        if status == ERROR_EXPECTED:
            ok = bool(np.all(np.isnan(a)))
            if not ok:
                what, silent = f"{what} (silently)", True
            refs.append("raises or NaN row")
        else:
            if z is not None:
                refs.append(_describe(z))
                if _same_pattern(a, z):
                    ok = True
                    scored_rows[r] = bool(np.all(np.isfinite(z)))
            for name, match in alts:
                if not ok and match(a, x, None if targets is None else int(targets[r])):
                    ok, what = True, name
        if what not in did:
            did.append(what)
        if not ok:
            follows = False
            if first < 0:
                first = int(r) * k
    ref_desc = "; ".join(dict.fromkeys(refs)) or None
    verdict = SILENTLY_FINITE if silent else (PASS if follows else CONVENTION_DIFFERS)
    return Convention("; ".join(did), ref_desc, follows, verdict, scored_rows, max(first, 0))
