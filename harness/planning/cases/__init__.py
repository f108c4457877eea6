"""Deterministic case inputs for the case families of docs/cases.md §2-§7 (the CPU ones).

This is the one generator of case inputs: the harness runs what it yields, and the reference
engine's tests (tests/references/families.py) build their calls from the same family functions.

Conventions (docs/cases.md §0):

* values are built in float64 (or constructed exactly) and rounded once, to nearest-even, into
  the dtype, with integer arithmetic (:func:`references.formats.round_exact`), so bfloat16 is
  never double-rounded through float32; the rounded array *is* the input;
* a parameter the dtype cannot hold (a finite value that rounds to infinity) makes the case
  *unsupported* with the reason ``"unrepresentable in dtype"``; the case is still yielded;
* randomness comes from ``numpy.random.default_rng`` seeded with the first 8 bytes of the SHA-256
  of the case id, so a case is the same on every machine and in every dtype;
* logits have shape (N, C), class axis last, special rows mixed with N(0, 1) rows; sparse labels
  are int64; dense labels and cotangents are in the logits dtype.

Each family is a function ``family(dtype, **params) -> list[FamilyCase]``; :data:`FAMILIES`
describes them (ops, status, parameters, expectations) and :func:`generate` turns a suite into
per-op :class:`CaseInput` records. Not generated here: ``gpu_width_sweep`` and ``huge_tensor``
(GPU), ``eager_vs_compiled`` (an execution mode, not an input) and ``non_contiguous`` (a memory
layout, which numpy inputs cannot carry through the adapters' conversion); see
:data:`NOT_GENERATED`.

The package, along its seams: :mod:`.dtypes` (the per-dtype constants, exact rounding, ids and
seeds), :mod:`.records` (calls, family cases, case inputs), :mod:`.builders` (``make_case``,
``options_case``), :mod:`.generators` (the families' generators), :mod:`.expectations` (what a
family expects beyond accuracy: special rows, accepted conventions, raising), :mod:`.families`
(the family table) and :mod:`.expansion` (suite -> case inputs). This module re-exports their
public names: ``from harness.planning import cases`` is the way in.
"""

from __future__ import annotations

from harness.planning.cases.builders import make_case, options_case
from harness.planning.cases.dtypes import (
    INF,
    NAN,
    NEG_INF,
    UNREPRESENTABLE,
    Thresholds,
    Unrepresentable,
    as_dtype,
    case_id,
    case_rng,
    next_toward,
    round_to,
    thresholds,
)
from harness.planning.cases.expansion import case_inputs, generate, pad_rows
from harness.planning.cases.expectations import (
    NO_EXPECTATIONS,
    Alternative,
    Expectations,
    Matcher,
    SpecialRows,
)
from harness.planning.cases.families import (
    ALL_OPS,
    EXPLICIT_FAMILIES,
    FAMILIES,
    LSE_CE_OPS,
    NOT_GENERATED,
    SEARCH_FAMILY,
    Family,
    Param,
    expectations_of,
)
from harness.planning.cases.generators import (
    MASKS,
    UNDERFLOW_GAPS,
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
from harness.planning.cases.records import (
    ALL_CALLS,
    LOSS_CALLS,
    STATUSES,
    Call,
    CallSpec,
    CaseInput,
    FamilyCase,
)

# (harness.vocabulary declares these; callers have long taken them from here)
from harness.vocabulary import DTYPE_NAMES, DTYPES

__all__ = [
    "ALL_CALLS", "ALL_OPS", "DTYPES", "DTYPE_NAMES", "EXPLICIT_FAMILIES", "FAMILIES", "INF",
    "LOSS_CALLS", "LSE_CE_OPS", "MASKS", "NAN", "NEG_INF", "NOT_GENERATED", "NO_EXPECTATIONS",
    "SEARCH_FAMILY", "STATUSES",
    "UNDERFLOW_GAPS", "UNREPRESENTABLE", "Alternative", "Call", "CallSpec", "CaseInput",
    "Expectations", "Family", "FamilyCase", "Matcher", "Param", "SpecialRows", "Thresholds",
    "Unrepresentable", "all_ignored", "all_neg_inf", "as_dtype", "case_id", "case_inputs",
    "case_rng", "catastrophic_condition", "dominant_logit", "empty_axis", "empty_batch",
    "expectations_of", "generate", "label_smoothing_weight_ignore", "labels_out_of_range",
    "large_array_grad_fp16", "large_offset", "long_row_low_precision", "make_case",
    "masked_large_values", "nan_in_row", "neg_inf_at_target", "next_toward", "options_case",
    "overflow_edge", "pad_rows", "partial_neg_inf", "pos_inf", "random_normal", "round_to",
    "row_near_max", "single_class", "smoke_small", "soft_label_neg_inf_zero_label",
    "soft_labels_off_simplex", "thresholds", "tied_max_low_precision", "two_class_scan",
    "underflow_tail", "uniform_row", "vjp_dominant_gap",
]
