"""The family table: each family's generator, ops, status, parameters and expectations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from harness.planning.cases.expectations import (
    ALL_NAN,
    ALL_NEG_INF,
    ALL_ZERO,
    NO_EXPECTATIONS,
    Alternative,
    Expectations,
    at_pos_inf,
    every_row,
    fully_masked_rows,
    loss_limit_at_pos_inf,
    rows_with_bad_label,
    rows_with_neg_inf_at_target,
    rows_with_neg_inf_at_zero_label,
    rows_with_pos_inf,
)
from harness.planning.cases.explicit import EXPLICIT_FAMILY, explicit_expectations, explicit_rows
from harness.planning.cases.generators import (
    MASKS,
    all_ignored,
    all_neg_inf,
    catastrophic_condition,
    dominant_logit,
    empty_axis,
    empty_batch,
    label_smoothing_weight_ignore,
    labels_out_of_range,
    large_array_grad_fp16,
    large_offset,
    long_row_low_precision,
    masked_large_values,
    nan_in_row,
    neg_inf_at_target,
    overflow_edge,
    partial_neg_inf,
    pos_inf,
    random_normal,
    row_near_max,
    single_class,
    smoke_small,
    soft_label_neg_inf_zero_label,
    soft_labels_off_simplex,
    tied_max_low_precision,
    two_class_scan,
    underflow_tail,
    uniform_row,
    vjp_dominant_gap,
)
from harness.planning.cases.records import FamilyCase
from harness.vocabulary import (
    BACKWARD,
    CE_OPS,
    CONVENTION,
    DENSE_CE,
    DTYPE_NAMES,
    ERROR_EXPECTED,
    FORWARD,
    LOG_SOFTMAX,
    LOGSUMEXP,
    LOSS_OPS,
    LOW_PRECISION,
    ROW_OPS,
    SCORED,
    SOFTMAX,
    SPARSE_CE,
    TORCH_CE,
)

# Ops per family, from the family index of docs/cases.md §1 ("all" is the five per-row ops; "CE" is
# dense and sparse; ``cross_entropy`` only where its options are the point).
ALL_OPS = ROW_OPS
LSE_CE_OPS: tuple[str, ...] = (LOG_SOFTMAX, LOGSUMEXP, DENSE_CE, SPARSE_CE)

NOT_GENERATED: dict[str, str] = {
    "gpu_width_sweep": "it is GPU-only (kernel-selection widths)",
    "huge_tensor": "it is GPU-only (the throughput suite)",
    "eager_vs_compiled": "it compares execution modes; it is not an input",
    "non_contiguous": "it is a memory layout, which numpy inputs cannot carry through the "
                      "adapters' conversion",
}


# --------------------------------------------------------------------------------------------
# The family table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A family parameter.

    ``kind``: "number" (a finite int or float, or one of the symbolic strings in ``choices``),
    "int" (restricted to ``choices`` when given), "bool", or "str" (one of ``choices``); numbers
    and ints lie in [``minimum``, ``maximum``] where given. A ``multi``
    parameter takes a list and contributes one case per value (a product with the other lists).
    """

    name: str
    kind: str
    multi: bool = True
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Family:
    """One case family: its generator, ops, status (docs/cases.md §1), parameters and expectations.

    ``expects`` is what the scorer asks of the family (special rows, accepted conventions,
    whether raising is accepted); ``adversarial``: the family is one of the stability suite's
    (docs/cases.md §1 "stability"), the inputs built to break an implementation.
    """

    name: str
    build: Callable[..., list[FamilyCase]]
    ops: tuple[str, ...]
    status: str = SCORED
    params: tuple[Param, ...] = ()
    dtypes: tuple[str, ...] = DTYPE_NAMES
    # (op or None, pass or None) -> status, for parts of a family whose status differs.
    overrides: Mapping[tuple[str | None, str | None], str] = field(default_factory=dict)
    expects: Expectations = NO_EXPECTATIONS
    adversarial: bool = False

    @property
    def description(self) -> str:
        return (self.build.__doc__ or "").strip().splitlines()[0]

    def cases(self, dtype: Any, **params: Any) -> list[FamilyCase]:
        """The family's cases in one dtype (every one, unsupported ones included)."""
        return self.build(dtype, **params)

    def status_of(self, op: str, pass_: str) -> str:
        for key in ((op, pass_), (op, None), (None, pass_)):
            if key in self.overrides:
                return self.overrides[key]
        return self.status


def _p(name: str, kind: str, *choices: Any, multi: bool = True, minimum: float | None = None,
       maximum: float | None = None) -> Param:
    return Param(name, kind, multi, tuple(choices), minimum, maximum)


_Overrides = Mapping[tuple[str | None, str | None], str]
_LSE_SCORED: _Overrides = {(LOGSUMEXP, FORWARD): SCORED}
_BACKWARD_CONVENTION: _Overrides = {(None, BACKWARD): CONVENTION}


def _expects(alternatives: Mapping[tuple[str, str], tuple[Alternative, ...]] | None = None,
             **kw: Any) -> Expectations:
    return Expectations(alternatives=MappingProxyType(dict(alternatives or {})), **kw)


_LOSSES = sorted(LOSS_OPS)

# Fully masked rows: NaN is the reference (no finite answer); safe softmax's zeros, log-softmax's
# -inf and a loss of 0 are the other conventions, and zero gradients backward
# (docs/numerics.md §6 row 2).
_ALL_NEG_INF = _expects(
    {
        (SOFTMAX, FORWARD): (("all 0 (safe softmax)", ALL_ZERO),),
        (LOG_SOFTMAX, FORWARD): (("all -inf", ALL_NEG_INF),),
        **{(op, FORWARD): (("0", ALL_ZERO),) for op in _LOSSES},
        **{(op, BACKWARD): (("all 0", ALL_ZERO),)
           for op in (SOFTMAX, LOG_SOFTMAX, LOGSUMEXP, *_LOSSES)},
    },
    special_rows=fully_masked_rows,
)
# +inf logits: the limits (one-hot, 0 / -inf, the loss's 0 or +inf) and the NaN-at-the-+inf
# outputs of TF and SciPy (docs/numerics.md §6).
_POS_INF = _expects(
    {
        (SOFTMAX, FORWARD): (
            ("one-hot limit", at_pos_inf(1.0, 0.0)),
            ("TF: NaN at the +inf, 0 elsewhere", at_pos_inf(np.nan, 0.0)),
        ),
        (LOG_SOFTMAX, FORWARD): (
            ("limit: 0 at the +inf, -inf elsewhere", at_pos_inf(0.0, -np.inf)),
            ("SciPy: NaN at the +inf, -inf elsewhere", at_pos_inf(np.nan, -np.inf)),
        ),
        (SPARSE_CE, FORWARD): (
            ("limit: 0 at the +inf target, +inf elsewhere", loss_limit_at_pos_inf),
        ),
    },
    special_rows=rows_with_pos_inf,
)
_SOFT_LABEL_NEG_INF_ZERO_LABEL = _expects(
    {
        (DENSE_CE, FORWARD): (("NaN (plain IEEE 0 * inf)", ALL_NAN),),
        (DENSE_CE, BACKWARD): (("NaN", ALL_NAN),),
    },
    special_rows=rows_with_neg_inf_at_zero_label,
)
_NEG_INF_AT_TARGET = _expects({(op, BACKWARD): (("NaN", ALL_NAN),) for op in _LOSSES},
                              special_rows=rows_with_neg_inf_at_target)
# Raising is accepted where docs/numerics.md §6 rows 10 and 13 allow it.
_EMPTY_AXIS = _expects(special_rows=every_row, raising_accepted=True)
_LABELS_OUT_OF_RANGE = _expects(special_rows=rows_with_bad_label, raising_accepted=True)
_ALL_IGNORED = _expects({(TORCH_CE, FORWARD): (("0 (Keras masked mean)", ALL_ZERO),)},
                        special_rows=every_row)
_WHOLE_OUTPUT = _expects(special_rows=every_row)  # convention and error cases of loss options
# Explicit rows (a suite file's own arrays, the worst-case search's findings): fully masked rows
# and rows with +inf are judged like all_neg_inf's and pos_inf's on convention cases.
_EXPLICIT = explicit_expectations(_ALL_NEG_INF, _POS_INF)
SEARCH_FAMILY = "search"  # the records of `softmax-bench search` (harness.planning.search)

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("smoke_small", smoke_small, ALL_OPS),
    Family("uniform_row", uniform_row, ALL_OPS, params=(
        _p("C", "int", minimum=1), _p("c", "number"), _p("mix", "int", multi=False, minimum=0))),
    Family("large_offset", large_offset, ALL_OPS, params=(
        _p("c", "number", "0.9max"), _p("C", "int", 2, 3)), adversarial=True),
    Family("random_normal", random_normal, ALL_OPS, params=(
        _p("sigma", "number", minimum=0), _p("C", "int", minimum=1),
        _p("rows", "int", multi=False, minimum=1),
        _p("anchor", "bool", multi=False))),
    Family("catastrophic_condition", catastrophic_condition, LSE_CE_OPS, params=(
        _p("kind", "str", "0,-30", "c,c-1e-3", "near_lse"),), adversarial=True),
    Family("dominant_logit", dominant_logit, LSE_CE_OPS, params=(
        _p("gap", "number", "g_1", "-L_sub", minimum=0), _p("C", "int", minimum=2)),
           adversarial=True),
    Family("vjp_dominant_gap", vjp_dominant_gap, ALL_OPS, params=(
        _p("gap", "number", "g_vjp", minimum=0),), adversarial=True),
    Family("two_class_scan", two_class_scan, LSE_CE_OPS, params=(
        _p("n_gaps", "int", multi=False, minimum=2),)),
    Family("overflow_edge", overflow_edge, ALL_OPS, adversarial=True),
    Family("row_near_max", row_near_max, ALL_OPS, params=(
        _p("kind", "str", "max,max,max", "tf_testOverflow"),), adversarial=True),
    Family("underflow_tail", underflow_tail, (SOFTMAX, LOG_SOFTMAX, DENSE_CE, SPARSE_CE),
           params=(_p("C", "int", 2, 4), _p("mix", "int", multi=False, minimum=0)),
           adversarial=True),
    Family("all_neg_inf", all_neg_inf, ALL_OPS, CONVENTION, (_p("C", "int", minimum=1),),
           overrides=_LSE_SCORED, expects=_ALL_NEG_INF, adversarial=True),
    Family("partial_neg_inf", partial_neg_inf, ALL_OPS, params=(
        _p("kind", "str", "0,-inf,1,-inf", "causal", "-inf,2.5,-inf"),), adversarial=True),
    Family("soft_label_neg_inf_zero_label", soft_label_neg_inf_zero_label, (DENSE_CE,),
           CONVENTION, (_p("kind", "str", "C3", "onehot"),),
           expects=_SOFT_LABEL_NEG_INF_ZERO_LABEL, adversarial=True),
    Family("neg_inf_at_target", neg_inf_at_target, CE_OPS, params=(
        _p("kind", "str", "C3", "signed"), _p("C", "int", multi=False, minimum=3)),
           overrides=_BACKWARD_CONVENTION, expects=_NEG_INF_AT_TARGET, adversarial=True),
    Family("pos_inf", pos_inf, ALL_OPS, CONVENTION, (_p("C", "int", 2, 3),),
           overrides=_LSE_SCORED, expects=_POS_INF, adversarial=True),
    Family("nan_in_row", nan_in_row, ALL_OPS, params=(
        _p("C", "int", multi=False, minimum=4), _p("mix", "int", multi=False, minimum=0)),
           adversarial=True),
    Family("masked_large_values", masked_large_values, ALL_OPS, params=(
        _p("mask", "str", *MASKS), _p("C", "int", multi=False, minimum=4)), adversarial=True),
    Family("single_class", single_class, ALL_OPS, params=(
        _p("kind", "str", "values", "tf"),)),
    Family("empty_axis", empty_axis, ALL_OPS, CONVENTION, expects=_EMPTY_AXIS,
           adversarial=True),
    Family("empty_batch", empty_batch, (*ALL_OPS, TORCH_CE), params=(
        _p("reduction", "str", "none", "sum", "mean"),), expects=_WHOLE_OUTPUT,
           adversarial=True),
    Family("labels_out_of_range", labels_out_of_range, (SPARSE_CE,), ERROR_EXPECTED, (
        _p("tf", "bool", multi=False), _p("label", "int")), expects=_LABELS_OUT_OF_RANGE,
           adversarial=True),
    Family("all_ignored", all_ignored, (TORCH_CE,), CONVENTION, (
        _p("ignore_index", "int"), _p("weight", "bool"),
        _p("reduction", "str", "mean", "sum", "none"),
        _p("ignored", "str", "all", "partly")), expects=_ALL_IGNORED, adversarial=True),
    Family("label_smoothing_weight_ignore", label_smoothing_weight_ignore, (TORCH_CE,), params=(
        _p("eps", "number", minimum=0, maximum=1), _p("weight", "bool"),
        _p("reduction", "str", "none", "mean", "sum"), _p("target", "str", "index", "prob"),
        _p("errors", "bool", multi=False)), expects=_WHOLE_OUTPUT),
    Family("soft_labels_off_simplex", soft_labels_off_simplex, (DENSE_CE,), params=(
        _p("kind", "str", "C4", "tf"),)),
    Family("long_row_low_precision", long_row_low_precision, (*ALL_OPS, TORCH_CE),
           params=(_p("C", "int", minimum=1), _p("rows", "int", multi=False, minimum=1)),
           dtypes=LOW_PRECISION),
    Family("tied_max_low_precision", tied_max_low_precision, (LOG_SOFTMAX, DENSE_CE, SPARSE_CE),
           params=(_p("row", "str", "zeros", "1,1,0", "2,2,2,-1"), _p("C", "int", minimum=1)),
           dtypes=LOW_PRECISION),
    Family("large_array_grad_fp16", large_array_grad_fp16, (LOG_SOFTMAX,),
           params=(_p("C", "int", minimum=1),), dtypes=("float16",)),
    Family(EXPLICIT_FAMILY, explicit_rows, ALL_OPS, CONVENTION, overrides=_LSE_SCORED, params=(
        _p("name", "str", multi=False), _p("x", "str", multi=False),
        _p("labels", "str", multi=False), _p("targets", "str", multi=False),
        _p("cotangent", "str", multi=False),
        _p("status", "str", "", SCORED, CONVENTION, multi=False)), expects=_EXPLICIT),
)}
EXPLICIT_FAMILIES = frozenset({EXPLICIT_FAMILY})  # rows from the suite file: no default cases

# Families that only records carry (no suite generates them), with their expectations.
RECORD_FAMILIES: dict[str, Expectations] = {SEARCH_FAMILY: _EXPLICIT}


def expectations_of(family: str) -> Expectations:
    """The expectations of a family by name; a family the table does not know (a plugin's, an
    old run's) has none: no special rows, no alternatives, raising not accepted."""
    known = FAMILIES.get(family)
    if known is None:
        return RECORD_FAMILIES.get(family, NO_EXPECTATIONS)
    return known.expects
