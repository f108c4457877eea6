"""The built-in suites, as data in the suite-file schema (docs/suites.md).

:mod:`harness.planning.suites` validates these exactly like a user's TOML file. An entry without
``dtypes`` runs in the family's own dtypes (all four, or the low-precision ones for the §7
families); without ``ops``, every op the family applies to.
"""

from __future__ import annotations

from typing import Any

QUICK: dict[str, Any] = {
    "name": "quick",
    "description": "Every CPU family once, in few shapes: 8 rows of 2 or 4 classes (special rows "
                   "padded with N(0, 1) rows), single rows of 512 classes, C = 1, empty axes; "
                   "plus one 8192-class row in float16/bfloat16: a smoke test of every "
                   "implementation.",
    "cases": [
        {"family": "smoke_small", "rows": 8},
        {"family": "uniform_row", "params": {"C": [512], "c": [0.0]}},
        {"family": "large_offset", "params": {"c": ["0.9max"], "C": [2]}, "rows": 8},
        {"family": "random_normal",
         "params": {"sigma": [10.0], "C": [512], "rows": 1, "anchor": False}},
        {"family": "catastrophic_condition", "params": {"kind": ["c,c-1e-3"]}, "rows": 8},
        {"family": "dominant_logit", "params": {"gap": ["g_1"], "C": [2]}, "rows": 8},
        {"family": "vjp_dominant_gap", "params": {"gap": ["g_vjp"]}, "rows": 8},
        {"family": "two_class_scan", "params": {"n_gaps": 6}, "rows": 8},
        {"family": "overflow_edge", "rows": 8},
        {"family": "row_near_max", "params": {"kind": ["tf_testOverflow"]}, "rows": 8},
        {"family": "underflow_tail", "params": {"C": [2], "mix": 1}, "rows": 8},
        {"family": "all_neg_inf", "params": {"C": [2]}, "rows": 8},
        {"family": "partial_neg_inf", "params": {"kind": ["0,-inf,1,-inf"]}, "rows": 8},
        {"family": "soft_label_neg_inf_zero_label", "params": {"kind": ["onehot"]}, "rows": 8},
        {"family": "neg_inf_at_target", "params": {"kind": ["C3"], "C": 4}, "rows": 8},
        {"family": "pos_inf", "params": {"C": [2]}, "rows": 8},
        {"family": "nan_in_row", "params": {"C": 4, "mix": 1}},
        {"family": "masked_large_values", "params": {"mask": ["finfo.min"], "C": 4}, "rows": 8},
        {"family": "single_class", "params": {"kind": ["values"]}},
        {"family": "empty_axis"},
        {"family": "empty_batch", "params": {"reduction": ["none"]}},
        {"family": "labels_out_of_range", "params": {"tf": True, "label": []}, "rows": 8},
        {"family": "all_ignored", "params": {"ignore_index": [-100], "weight": [False],
                                             "reduction": ["mean"], "ignored": ["all"]}},
        {"family": "label_smoothing_weight_ignore",
         "params": {"eps": [0.1], "weight": [True], "reduction": ["mean"], "target": ["index"],
                    "errors": False}},
        {"family": "soft_labels_off_simplex", "params": {"kind": ["C4"]}, "rows": 8},
        {"family": "long_row_low_precision", "params": {"C": [8192], "rows": 1}},
        {"family": "tied_max_low_precision", "params": {"row": ["zeros"], "C": [512]}},
        {"family": "large_array_grad_fp16", "params": {"C": [1024]}},
    ],
}

# The adversarial families (the "stability" column of docs/cases.md §1), at their default sizes.
STABILITY: dict[str, Any] = {
    "name": "stability",
    "description": "The adversarial families (docs/cases.md §1 'stability'): offsets, tails, "
                   "overflow and underflow, infinities, NaN, masks, empty shapes, bad labels.",
    "cases": [
        {"family": "large_offset"},
        {"family": "catastrophic_condition"},
        {"family": "dominant_logit"},
        {"family": "dominant_logit", "params": {"gap": [20.0, "g_1"], "C": [1000]}},
        {"family": "vjp_dominant_gap"},
        {"family": "overflow_edge"},
        {"family": "row_near_max"},
        {"family": "underflow_tail"},
        {"family": "all_neg_inf"},
        {"family": "partial_neg_inf"},
        {"family": "soft_label_neg_inf_zero_label"},
        {"family": "neg_inf_at_target"},
        {"family": "pos_inf"},
        {"family": "nan_in_row"},
        {"family": "masked_large_values"},
        {"family": "empty_axis"},
        {"family": "empty_batch"},
        {"family": "labels_out_of_range"},
        {"family": "all_ignored"},
    ],
}

_LLM_VOCABULARIES = [32000, 50257, 128256]

FULL: dict[str, Any] = {
    "name": "full",
    "description": "Every CPU family at its full size, plus large vocabularies (32000, 50257, "
                   "128256 classes), more scales and shapes, and long low-precision rows.",
    "cases": [
        {"family": "smoke_small"},
        {"family": "uniform_row", "params": {"C": [1, 2, 3, 7, 64, 512]}},
        {"family": "uniform_row", "params": {"C": [8192, 32000, 128000]}},
        {"family": "large_offset"},
        {"family": "random_normal",
         "params": {"sigma": [0.1, 1.0, 3.0, 10.0, 30.0, 100.0], "C": [10, 1000], "rows": 16}},
        {"family": "random_normal",
         "params": {"sigma": [1.0, 10.0], "C": _LLM_VOCABULARIES, "rows": 1, "anchor": False}},
        {"family": "catastrophic_condition"},
        {"family": "dominant_logit"},
        {"family": "dominant_logit", "params": {"gap": [20.0, "g_1"], "C": [1000, 32000]}},
        {"family": "vjp_dominant_gap"},
        {"family": "two_class_scan", "params": {"n_gaps": 256}},
        {"family": "overflow_edge"},
        {"family": "row_near_max"},
        {"family": "underflow_tail"},
        {"family": "all_neg_inf", "params": {"C": [1, 2, 1000, 32000]}},
        {"family": "partial_neg_inf"},
        {"family": "soft_label_neg_inf_zero_label"},
        {"family": "neg_inf_at_target"},
        {"family": "pos_inf"},
        {"family": "nan_in_row"},
        {"family": "masked_large_values", "params": {"mask": ["finfo.min", "-1e9", "-1e4"]}},
        {"family": "single_class"},
        {"family": "empty_axis"},
        {"family": "empty_batch"},
        {"family": "labels_out_of_range"},
        {"family": "all_ignored"},
        {"family": "label_smoothing_weight_ignore"},
        {"family": "soft_labels_off_simplex"},
        {"family": "long_row_low_precision",
         "params": {"C": [1000, 32000, 32768, 50257, 128256, 131072]}},
        {"family": "tied_max_low_precision"},
        {"family": "tied_max_low_precision", "params": {"row": ["zeros"], "C": [32000]}},
        {"family": "large_array_grad_fp16", "params": {"C": [1024, 65536, 131072]}},
    ],
}

# Throughput (docs/throughput.md): batch x classes from a small classifier through the fidelity
# shape (256 x 32000) to LLM vocabularies (4096 x 32000, 8192 x 128256), plus the single huge row
# (1 x 2**24) where PyTorch's eager GPU softmax ran at under 1% of the copy bandwidth. Shapes
# whose estimated memory exceeds the device's bound are recorded as unsupported (on the CPU the
# bound comes from MemAvailable and is printed).
THROUGHPUT: dict[str, Any] = {
    "name": "throughput",
    "kind": "throughput",
    "description": "Time every implementation, forward and backward, over batch x classes from "
                   "64x1000 through 256x32000 to 4096x32000 and 8192x128256 (where memory "
                   "allows), plus one 2**24-class row; GB/s against a copy roofline, peak memory.",
    "timing": {"max_time": 0.5, "min_rounds": 10, "min_time": 0.01, "warmup_time": 0.1},
    "cases": [
        {"family": "throughput",
         "params": {"shape": ["64x1000", "256x32000", "4096x32000", "8192x128256",
                              "1x16777216"]},
         "dtypes": ["float32", "bfloat16", "float16", "float64"]},
    ],
}

BUILTIN: dict[str, dict[str, Any]] = {s["name"]: s for s in (QUICK, STABILITY, FULL, THROUGHPUT)}
