"""The special-value table (docs/numerics.md §6) as data: one row per input situation.

Each row gives a small input and, per op, the reference result. ``status`` says whether the
value follows from the mathematics and IEEE NaN propagation ("math": frameworks should agree and
a mismatch is an error) or is a convention where frameworks legitimately differ ("convention":
``alternatives`` lists the other accepted outcomes, so a harness can report "follows convention
X" rather than an accuracy error). The tests check the reference against every row; the docs
render the same rows (docs/reference.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

NAN, INF = float("nan"), float("inf")


@dataclass(frozen=True)
class SpecialRow:
    id: str
    situation: str
    x: tuple[float, ...]
    op: str
    expected: tuple[float, ...] | float | str  # "ValueError" where no value exists
    status: str  # "math" | "convention"
    alternatives: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # labels, target, g, dtype


TABLE: tuple[SpecialRow, ...] = (
    # 1. NaN anywhere: the whole row is NaN, whatever the label.
    SpecialRow("nan_in_row", "NaN anywhere", (1.0, NAN, 2.0), "softmax", (NAN, NAN, NAN), "math"),
    SpecialRow("nan_in_row", "NaN anywhere", (1.0, NAN, 2.0), "log_softmax", (NAN,) * 3, "math"),
    SpecialRow("nan_in_row", "NaN anywhere", (1.0, NAN, 2.0), "logsumexp", NAN, "math"),
    SpecialRow("nan_in_row", "NaN anywhere", (1.0, NAN, 2.0), "sparse_softmax_cross_entropy",
               NAN, "math", extra={"labels": 0}),
    SpecialRow("nan_in_row", "NaN anywhere", (1.0, NAN, 2.0), "softmax_cross_entropy", NAN,
               "math", extra={"labels": (1.0, 0.0, 0.0)}),
    SpecialRow("nan_in_row", "NaN anywhere", (1.0, NAN, 2.0), "softmax_vjp", (NAN,) * 3, "math",
               extra={"g": (1.0, 0.0, 0.0)}),
    # 2. All -inf.
    SpecialRow("all_neg_inf", "every logit -inf", (-INF, -INF), "logsumexp", -INF, "math"),
    SpecialRow("all_neg_inf", "every logit -inf", (-INF, -INF), "softmax", (NAN, NAN),
               "convention", ("all 0 (safe softmax)",)),
    SpecialRow("all_neg_inf", "every logit -inf", (-INF, -INF), "log_softmax", (NAN, NAN),
               "convention", ("all -inf",)),
    SpecialRow("all_neg_inf", "every logit -inf", (-INF, -INF), "sparse_softmax_cross_entropy",
               NAN, "convention", ("0",), extra={"labels": 0}),
    SpecialRow("all_neg_inf", "every logit -inf", (-INF, -INF), "logsumexp_grad", (NAN, NAN),
               "convention", ("all 0",)),
    # 3. Some -inf (a partial mask).
    SpecialRow("partial_neg_inf", "some logits -inf", (0.0, -INF, 0.0), "softmax",
               (0.5, 0.0, 0.5), "math"),
    SpecialRow("partial_neg_inf", "some logits -inf", (0.0, -INF), "log_softmax", (0.0, -INF),
               "math"),
    SpecialRow("partial_neg_inf", "some logits -inf", (0.0, -INF, 0.0), "logsumexp",
               float(np.log(2.0)), "math"),
    SpecialRow("partial_neg_inf", "some logits -inf", (0.0, -INF, 0.0), "softmax_vjp",
               (0.25, 0.0, -0.25), "math", extra={"g": (1.0, 5.0, 0.0)}),
    SpecialRow("partial_neg_inf", "some logits -inf", (0.0, -INF, 0.0), "log_softmax_vjp",
               (-2.0, 5.0, -3.0), "math", extra={"g": (1.0, 5.0, 0.0)}),
    SpecialRow("partial_neg_inf", "some logits -inf", (0.0, -INF, 0.0),
               "sparse_softmax_cross_entropy_grad", (-0.5, 0.0, 0.5), "math",
               extra={"labels": 0}),
    # 4. One +inf.
    SpecialRow("pos_inf", "one logit +inf", (INF, 0.0), "logsumexp", INF, "math"),
    SpecialRow("pos_inf", "one logit +inf", (INF, 0.0), "softmax", (NAN, NAN), "convention",
               ("one-hot limit [1, 0]", "TF: [nan, 0]")),
    SpecialRow("pos_inf", "one logit +inf", (INF, 0.0), "log_softmax", (NAN, NAN), "convention",
               ("limit [0, -inf]", "SciPy: [nan, -inf]")),
    SpecialRow("pos_inf", "one logit +inf", (INF, 0.0), "sparse_softmax_cross_entropy", NAN,
               "convention", ("limit 0 at the inf", "limit +inf elsewhere"),
               extra={"labels": 1}),
    # 5. Two or more +inf.
    SpecialRow("pos_inf", "two logits +inf", (INF, INF, 0.0), "logsumexp", INF, "math"),
    SpecialRow("pos_inf", "two logits +inf", (INF, INF, 0.0), "softmax", (NAN,) * 3,
               "convention"),
    # 6. Soft label 0 at a -inf logit: 0 * log 0 := 0.
    SpecialRow("soft_label_neg_inf_zero_label", "label 0 at a -inf logit", (0.0, -INF),
               "softmax_cross_entropy", 0.0, "convention", ("NaN (plain IEEE 0 * inf)",),
               extra={"labels": (1.0, 0.0)}),
    SpecialRow("soft_label_neg_inf_zero_label", "label 0 at a -inf logit", (0.0, -INF),
               "softmax_cross_entropy_grad", (0.0, 0.0), "convention", ("NaN",),
               extra={"labels": (1.0, 0.0)}),
    # 7. -inf at the target.
    SpecialRow("neg_inf_at_target", "-inf at the label", (0.0, -INF),
               "sparse_softmax_cross_entropy", INF, "math", extra={"labels": 1}),
    SpecialRow("neg_inf_at_target", "-inf at the label", (0.0, -INF),
               "sparse_softmax_cross_entropy_grad", (1.0, -1.0), "convention", ("NaN",),
               extra={"labels": 1}),
    # 8. Results outside the format's range: rounded, never flushed; overflow to inf.
    SpecialRow("underflow_tail", "softmax value subnormal in float32", (0.0, -100.0), "softmax",
               (1.0, 3.783506e-44), "math", extra={"dtype": "float32"}),
    SpecialRow("underflow_tail", "softmax value below half the float32 subnormal", (0.0, -104.0),
               "softmax", (1.0, 0.0), "math", extra={"dtype": "float32"}),
    SpecialRow("overflow_edge", "loss beyond float16's range", (65504.0, -65504.0),
               "sparse_softmax_cross_entropy", INF, "math",
               extra={"labels": 1, "dtype": "float16"}),
    # 10. Empty class axis.
    SpecialRow("empty_axis", "no classes (C = 0)", (), "logsumexp", -INF, "convention",
               ("raises",)),
    SpecialRow("empty_axis", "no classes (C = 0)", (), "softmax", (), "convention", ("raises",)),
    SpecialRow("empty_axis", "no classes (C = 0)", (), "sparse_softmax_cross_entropy",
               "ValueError", "convention", ("raises",), extra={"labels": 0}),
    # 12. One class.
    SpecialRow("single_class", "C = 1", (7.5,), "softmax", (1.0,), "math"),
    SpecialRow("single_class", "C = 1", (7.5,), "log_softmax", (0.0,), "math"),
    SpecialRow("single_class", "C = 1", (7.5,), "logsumexp", 7.5, "math"),
    SpecialRow("single_class", "C = 1", (7.5,), "sparse_softmax_cross_entropy", 0.0, "math",
               extra={"labels": 0}),
    SpecialRow("single_class", "C = 1", (7.5,), "softmax_cross_entropy", 0.0, "math",
               extra={"labels": (0.3,)}),
    SpecialRow("single_class", "C = 1", (7.5,), "softmax_cross_entropy_grad", (0.0,), "math",
               extra={"labels": (-1.0,)}),
    # 13. Sparse label out of range: no value.
    SpecialRow("labels_out_of_range", "label >= C", (0.0, 1.0), "sparse_softmax_cross_entropy",
               "ValueError", "convention", ("raises", "NaN row"), extra={"labels": 2}),
    # 15. Dense labels off the simplex: the loss (sum y) lse - sum y x; gradient (sum y) p - y.
    SpecialRow("soft_labels_off_simplex", "all-zero label row", (1.0, 2.0),
               "softmax_cross_entropy", 0.0, "math", extra={"labels": (0.0, 0.0)}),
    SpecialRow("soft_labels_off_simplex", "labels summing to 0", (1.0, 2.0),
               "softmax_cross_entropy", 1.0, "math", extra={"labels": (1.0, -1.0)}),
    SpecialRow("soft_labels_off_simplex", "labels summing to 0", (1.0, 2.0),
               "softmax_cross_entropy_grad", (-1.0, 1.0), "math", extra={"labels": (1.0, -1.0)}),
)
