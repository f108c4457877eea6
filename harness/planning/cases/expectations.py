"""What a case family expects of an implementation beyond accuracy (docs/numerics.md §6).

A family declares, in the family table, an :class:`Expectations`: which rows of a case carry its
special situation (a function of the inputs), the conventions it accepts there besides the
reference's own value (per op and pass, each a name and a matcher), and whether raising an
exception is an accepted outcome. The scorer asks the family; it never branches on family names.
A family that declares nothing (and a family the table does not know) has no special rows.

The names of the alternatives follow ``references.special_values`` (and docs/numerics.md §6
where the table has no row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.vocabulary import DENSE_CE, TORCH_CE

Array = npt.NDArray[Any]
F64 = npt.NDArray[np.float64]
RowMask = npt.NDArray[np.bool_]

SpecialRows = Callable[[str, F64, Mapping[str, Array]], RowMask]
"""``(op, x, inputs) -> mask``: the (N,) rows of the logits ``x`` (float64, (N, C)) that carry
the family's special situation; ``inputs`` are the case's arrays (``labels``, ``targets``)."""

Matcher = Callable[[F64, F64, "int | None"], bool]
"""``(output row, input row, target index or None) -> bool``: the row follows the convention."""

Alternative = tuple[str, Matcher]
"""An accepted alternative to the reference's value: (what it is called, its matcher)."""


# -------------------------------------------------------------------------------- special rows
def no_rows(op: str, x: F64, inputs: Mapping[str, Array]) -> RowMask:
    """No special rows: every row is scored for accuracy."""
    return np.zeros(x.shape[0], bool)


def every_row(op: str, x: F64, inputs: Mapping[str, Array]) -> RowMask:
    """The whole output is special (empty shapes, loss options, reductions)."""
    return np.ones(x.shape[0], bool)


def fully_masked_rows(op: str, x: F64, inputs: Mapping[str, Array]) -> RowMask:
    """Rows whose every logit is -inf (none in a row of no classes)."""
    n, c = x.shape
    return np.all(x == -np.inf, axis=1) if c else np.zeros(n, bool)


def rows_with_pos_inf(op: str, x: F64, inputs: Mapping[str, Array]) -> RowMask:
    """Rows with a +inf logit."""
    return np.any(x == np.inf, axis=1)


def _sparse_targets(x: F64, inputs: Mapping[str, Array]
                    ) -> tuple[npt.NDArray[np.int64], RowMask]:
    """The class-index targets of each row and where they are out of range."""
    n, c = x.shape
    t = np.asarray(inputs.get("targets", inputs.get("labels"))).astype(np.int64).reshape(n)
    return t, (t < 0) | (t >= c)


def rows_with_bad_label(op: str, x: F64, inputs: Mapping[str, Array]) -> RowMask:
    """Rows whose class-index target is out of range (``cross_entropy``: and not -100, its
    default ``ignore_index``); every row of the dense-label op."""
    if op == DENSE_CE:
        return every_row(op, x, inputs)
    t, bad = _sparse_targets(x, inputs)
    return bad & (t != -100) if op == TORCH_CE else bad


def rows_with_neg_inf_at_target(op: str, x: F64, inputs: Mapping[str, Array]) -> RowMask:
    """Rows with a -inf logit at the (in-range) target class, or, for dense labels, under a
    positive label."""
    if op == DENSE_CE:
        y = np.asarray(inputs["labels"]).astype(np.float64).reshape(x.shape)
        return np.any((y > 0) & (x == -np.inf), axis=1)
    t, bad = _sparse_targets(x, inputs)
    at = np.take_along_axis(x, np.where(bad, 0, t)[:, None], axis=1)[:, 0]
    return ~bad & (at == -np.inf)


def rows_with_neg_inf_at_zero_label(op: str, x: F64, inputs: Mapping[str, Array]) -> RowMask:
    """Rows with a -inf logit under a zero (dense) label."""
    y = np.asarray(inputs["labels"]).astype(np.float64).reshape(x.shape)
    return np.any((y == 0) & (x == -np.inf), axis=1)


# ------------------------------------------------------------------------------------ matchers
def all_of(pred: Callable[[F64], npt.NDArray[np.bool_]]) -> Matcher:
    """A non-empty row where ``pred`` holds everywhere."""
    return lambda a, x, t: bool(a.size) and bool(np.all(pred(a)))


ALL_NAN: Matcher = all_of(np.isnan)
ALL_ZERO: Matcher = all_of(lambda a: a == 0)
ALL_NEG_INF: Matcher = all_of(lambda a: a == -np.inf)


def at_pos_inf(at_inf: float, elsewhere: float) -> Matcher:
    """Row equal to ``at_inf`` at the single +inf logit and ``elsewhere`` at the others."""

    def match(a: F64, x: F64, t: int | None) -> bool:
        hot = x == np.inf
        if a.shape != x.shape or hot.sum() != 1:
            return False
        want = np.where(hot, at_inf, elsewhere)
        return bool(np.all((a == want) | (np.isnan(a) & np.isnan(want))))

    return match


def loss_limit_at_pos_inf(a: F64, x: F64, t: int | None) -> bool:
    """Sparse loss at its limit: 0 when the target is the single +inf logit, +inf otherwise."""
    if a.size != 1 or t is None or not 0 <= t < x.size or (x == np.inf).sum() != 1:
        return False
    return float(a[0]) == (0.0 if x[t] == np.inf else np.inf)


# -------------------------------------------------------------------------------- expectations
@dataclass(frozen=True)
class Expectations:
    """A family's expectations beyond accuracy.

    ``special_rows`` picks the rows judged by convention on cases whose status is
    ``convention`` or ``error_expected`` (scored cases have none); ``alternatives`` maps
    (op, pass) to the outcomes accepted there besides the reference's value;
    ``raising_accepted``: an exception is an accepted outcome on its convention cases.
    """

    special_rows: SpecialRows = no_rows
    alternatives: Mapping[tuple[str, str], tuple[Alternative, ...]] = field(
        default_factory=lambda: MappingProxyType({}))
    raising_accepted: bool = False

    def accepted(self, op: str, pass_: str) -> tuple[Alternative, ...]:
        """The alternatives accepted for one (op, pass)."""
        return self.alternatives.get((op, pass_), ())


NO_EXPECTATIONS = Expectations()
"""The expectations of a family that declares none, or that the family table does not know."""
