"""The case families' generators (docs/cases.md §2-§7): ``family(dtype, **params) -> cases``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.planning.cases.builders import _with, make_case, options_case
from harness.planning.cases.dtypes import (
    INF,
    NAN,
    NEG_INF,
    as_dtype,
    case_id,
    case_rng,
    next_toward,
    round_to,
    thresholds,
)
from harness.planning.cases.records import ALL_CALLS, LOSS_CALLS, Call, FamilyCase
from harness.vocabulary import (
    BACKWARD,
    CONVENTION,
    FORWARD,
    LOG_SOFTMAX,
    LOGSUMEXP,
    SPARSE_CE,
    TORCH_CE,
)

# --------------------------------------------------------------------------------------------
# §2 Scale and shift
# --------------------------------------------------------------------------------------------


def smoke_small(dtype: Any) -> list[FamilyCase]:
    """The TF kernel-test inputs."""
    return [make_case(
        "smoke_small", {"tf": "kernel_test"}, dtype, [[1, 1, 1, 1], [1, 2, 3, 4]], mix=0,
        sparse=[3, 0], dense=[[0, 0, 0, 1], [0, 0.5, 0.5, 0]],
    )]


def uniform_row(
    dtype: Any, *, C: Sequence[int] = (1, 2, 3, 7, 64), c: Sequence[float] | None = None,
    mix: int | None = None,
) -> list[FamilyCase]:
    """``x = c * 1``; offsets default to 0, 1, -5, 1e4 (and 1000 in float16).

    ``mix`` N(0, 1) rows: default 2 for C <= 64, none for wider rows.
    """
    offsets = c if c is not None else [0.0, 1.0, -5.0, 1e4] + (
        [1000.0] if as_dtype(dtype) == np.float16 else []
    )
    out: list[FamilyCase] = []
    for n in C:
        default = 2 if n <= 64 else 0
        for off in offsets:
            params = _with({"C": n, "c": float(off)}, "mix", mix, default)
            out.append(make_case("uniform_row", params, dtype, [[float(off)] * n],
                                 mix=default if mix is None else mix))
    return out


def large_offset(
    dtype: Any, *, c: Sequence[float | str] = (1e4, 1e8, 1e20, "0.9max"), C: Sequence[int] = (3, 2)
) -> list[FamilyCase]:
    """``c + r`` rows (C = 3) and ``[c, c], [-c, -c]`` (C = 2); offsets beyond max unsupported."""
    f = thresholds(dtype)
    out: list[FamilyCase] = []
    for cv in c:
        value = 0.9 * f.max if cv == "0.9max" else float(cv)
        label: float | str = "0.9max" if cv == "0.9max" else value
        for n in C:
            if n == 3:
                cid = case_id("large_offset", {"c": label, "C": 3})
                r = case_rng(cid, "/offset").standard_normal(3)
                rows = [[value, value - 1, value - 2.5], (value + r).tolist()]
            else:
                rows = [[value, value], [-value, -value]]
            out.append(make_case("large_offset", {"c": label, "C": n}, dtype, rows))
    return out


def random_normal(
    dtype: Any, *, sigma: Sequence[float] = (1.0, 10.0, 30.0), C: Sequence[int] = (10, 1000),
    rows: int = 4, anchor: bool = True,
) -> list[FamilyCase]:
    """N(0, sigma**2) logits (rows x C per case); ``anchor``: the C = 1000 row of
    docs/numerics.md §9."""
    out: list[FamilyCase] = []
    for s in sigma:
        for n in C:
            params = _with({"sigma": float(s), "C": n}, "N", rows, 4)
            cid = case_id("random_normal", params)
            x = (float(s) * case_rng(cid, "/rows").standard_normal((rows, n))).tolist()
            out.append(make_case("random_normal", params, dtype, x, mix=0))
    if anchor:
        row = np.random.default_rng(1).normal(0, 10, 1000)
        out.append(make_case(
            "random_normal", {"sigma": 10.0, "C": 1000, "row": "default_rng(1)"}, dtype,
            [row.tolist()], mix=0,
        ))
    return out


def catastrophic_condition(
    dtype: Any, *, kind: Sequence[str] = ("0,-30", "c,c-1e-3", "near_lse")
) -> list[FamilyCase]:
    """``l_j`` close to 0: ``[0, -30]``, ``[c, c - 1e-3]`` (or the neighbour below c)."""
    f = thresholds(dtype)
    out: list[FamilyCase] = []
    for k in kind:
        if k == "0,-30":
            out.append(make_case("catastrophic_condition", {"row": [0, -30]}, dtype,
                                 [[0.0, -30.0]]))
        elif k == "c,c-1e-3":
            c = 1e6 if f.max > 1e6 else 1000.0
            cr = float(round_to([c], dtype)[0].astype(np.float64))
            second = float(round_to([cr - 1e-3], dtype)[0].astype(np.float64))
            if second == cr:
                second = next_toward(cr, dtype, -1)
            out.append(make_case(
                "catastrophic_condition", {"c": c, "second": "c-1e-3 or below"}, dtype,
                [[cr, second], [second, cr]],
            ))
        else:
            out.append(make_case(
                "catastrophic_condition", {"row": "near_lse", "C": 4}, dtype,
                [[1.0, -30.0, -31.0, -32.0], [10.0, -25.0, -25.0, -25.0]],
            ))
    return out


# --------------------------------------------------------------------------------------------
# §3 Tails and range limits
# --------------------------------------------------------------------------------------------


def dominant_logit(
    dtype: Any, *,
    gap: Sequence[float | str] = (15.0, 16.6, 17.0, 20.0, 36.0, 37.43, 40.0, 100.0, "g_1",
                                  "-L_sub"),
    C: Sequence[int] = (2, 8),
) -> list[FamilyCase]:
    """``[0, -g], [g, 0]`` (C = 2) and ``[0, -g, ..., -g]`` rows: lost ``log1p`` tails.

    "g_1" and "-L_sub" are the dtype's thresholds (rounded to 4 decimals, as in the id). Rows
    wider than 64 classes are not mixed with N(0, 1) rows.
    """
    f = thresholds(dtype)
    out: list[FamilyCase] = []
    for gv in gap:
        g = round(f.g_1, 4) if gv == "g_1" else round(-f.l_sub, 4) if gv == "-L_sub" else float(gv)
        for n in C:
            params = {"gap": g, "C": n}
            if n == 2:
                out.append(make_case("dominant_logit", params, dtype, [[0.0, -g], [g, 0.0]],
                                     sparse=[0, 0], dense=[[1, 0], [1, 0]]))
            else:
                out.append(make_case(
                    "dominant_logit", params, dtype, [[0.0] + [-g] * (n - 1)],
                    mix=2 if n <= 64 else 0, sparse=[0], dense=[[1] + [0] * (n - 1)],
                ))
    return out


def vjp_dominant_gap(
    dtype: Any, *, gap: Sequence[float | str] = (37.42994775023705, "g_vjp")
) -> list[FamilyCase]:
    """``[37.42994775023705, 0]`` with cotangent ``[1, 0]``; gap ``g_vjp`` per dtype."""
    out: list[FamilyCase] = []
    for gv in gap:
        a = thresholds(dtype).g_vjp if gv == "g_vjp" else float(gv)
        label = "g_vjp" if gv == "g_vjp" else repr(float(gv))
        out.append(make_case(
            "vjp_dominant_gap", {"gap": label}, dtype, [[a, 0.0], [a, 0.0], [0.0, a]],
            sparse=[0, 0, 1], dense=[[1, 0], [1, 0], [0, 1]], g=[[1, 0], [1, 1], [0, 1]],
        ))
    return out


def two_class_scan(dtype: Any, *, n_gaps: int = 48) -> list[FamilyCase]:
    """C = 2 rows ``[0, -g]`` / ``[g, 0]`` over a sample of gaps (the exhaustive scan, sampled)."""
    f = thresholds(dtype)
    cid = case_id("two_class_scan", {"C": 2, "gaps": n_gaps})
    top = 1.1 * -f.l_sub
    half = n_gaps // 2
    gaps = np.concatenate(
        [np.geomspace(2.0**-12, top, half), case_rng(cid, "/gaps").uniform(0, top, n_gaps - half)]
    )
    rows = [[0.0, -gap] if i % 2 == 0 else [gap, 0.0] for i, gap in enumerate(gaps.tolist())]
    return [make_case("two_class_scan", {"C": 2, "gaps": n_gaps}, dtype, rows, mix=1)]


def overflow_edge(dtype: Any) -> list[FamilyCase]:
    """One entry at ``L_max ± delta`` (0.01 and one ulp) or ``2 L_max``, the others near 0."""
    lm = thresholds(dtype).l_max
    big = [lm + 0.01, lm - 0.01, next_toward(lm, dtype, 1), next_toward(lm, dtype, -1), 2 * lm]
    return [make_case("overflow_edge", {"L_max": round(lm, 4), "C": 4}, dtype,
                      [[b, 0.0, -1.0, 1.0] for b in big])]


def row_near_max(
    dtype: Any, *, kind: Sequence[str] = ("max,max,max", "tf_testOverflow")
) -> list[FamilyCase]:
    """``[max, max, max]`` and TF's ``_testOverflow`` rows."""
    mx = thresholds(dtype).max
    out: list[FamilyCase] = []
    for k in kind:
        if k == "max,max,max":
            out.append(make_case("row_near_max", {"row": "max,max,max"}, dtype, [[mx, mx, mx]]))
        else:
            out.append(make_case("row_near_max", {"tf": "_testOverflow"}, dtype,
                                 [[1, 1, 1, 1], [mx, 1, 2, 3]], mix=1))
    return out


UNDERFLOW_GAPS: dict[str, tuple[float, ...]] = {
    "float16": (9.0, 9.7041, 12.0, 16.0, 16.6355, 17.3287, 20.0),
    "bfloat16": (87.0, 87.3365, 90.0, 92.1886, 92.8817, 95.0),
    "float32": (87.0, 87.3365, 95.0, 103.2789, 103.9721, 110.0),
    "float64": (708.0, 708.3964, 730.0, 744.4401, 745.1332, 760.0),
}


def underflow_tail(dtype: Any, *, C: Sequence[int] = (2, 4), mix: int = 2) -> list[FamilyCase]:
    """Gaps spanning the subnormal band and ``zero_cut``; CE targets in the tail."""
    gaps = UNDERFLOW_GAPS[as_dtype(dtype).name]
    n = len(gaps)
    out: list[FamilyCase] = []
    for width in C:
        if width == 2:
            out.append(make_case(
                "underflow_tail", _with({"C": 2}, "mix", mix, 2), dtype, [[0.0, -g] for g in gaps],
                mix=mix,
                sparse=[i % 2 for i in range(n)], dense=[[1 - i % 2, i % 2] for i in range(n)],
            ))
        else:
            out.append(make_case(
                "underflow_tail", _with({"C": 4}, "mix", mix, 2), dtype,
                [[0.0, 0.0, -g, -g] for g in gaps], mix=mix, sparse=[2 * (i % 2) for i in range(n)],
                dense=[[0.5, 0.0, 0.5, 0.0] if i % 2 else [0.0, 1.0, 0.0, 0.0] for i in range(n)],
            ))
    return out


# --------------------------------------------------------------------------------------------
# §4 Infinities, NaN and masks
# --------------------------------------------------------------------------------------------


def all_neg_inf(dtype: Any, *, C: Sequence[int] = (1, 2, 1000)) -> list[FamilyCase]:
    """Fully masked rows."""
    return [make_case("all_neg_inf", {"C": n}, dtype, [[NEG_INF] * n], mix=1 if n > 64 else 2)
            for n in C]


def partial_neg_inf(
    dtype: Any, *, kind: Sequence[str] = ("0,-inf,1,-inf", "causal", "-inf,2.5,-inf")
) -> list[FamilyCase]:
    """Masks: ``[0, -inf, 1, -inf]``, causal rows (C = 6), a single finite entry."""
    out: list[FamilyCase] = []
    for k in kind:
        if k == "0,-inf,1,-inf":
            out.append(make_case(
                "partial_neg_inf", {"row": [0, "-inf", 1, "-inf"]}, dtype,
                [[0, NEG_INF, 1, NEG_INF]], sparse=[2], dense=[[0.5, 0, 0.5, 0]],
            ))
        elif k == "causal":
            c = 6
            cid = case_id("partial_neg_inf", {"causal": True, "C": c})
            rng = case_rng(cid, "/rows")
            rows, lab, dense = [], [], []
            for i in range(c):
                rows.append(rng.standard_normal(i + 1).tolist() + [NEG_INF] * (c - i - 1))
                lab.append(int(rng.integers(0, i + 1)))
                dense.append(rng.dirichlet(np.ones(i + 1)).tolist() + [0.0] * (c - i - 1))
            out.append(make_case("partial_neg_inf", {"causal": True, "C": c}, dtype, rows,
                                 sparse=lab, dense=dense, mix=1))
        else:
            out.append(make_case(
                "partial_neg_inf", {"row": ["-inf", 2.5, "-inf"]}, dtype,
                [[NEG_INF, 2.5, NEG_INF]], sparse=[1], dense=[[0, 1, 0]],
            ))
    return out


def soft_label_neg_inf_zero_label(
    dtype: Any, *, kind: Sequence[str] = ("C3", "onehot")
) -> list[FamilyCase]:
    """Zero soft labels at ``-inf`` logits (``0 * log 0 := 0``)."""
    out: list[FamilyCase] = []
    for k in kind:
        if k == "C3":
            out.append(make_case(
                "soft_label_neg_inf_zero_label", {"C": 3}, dtype,
                [[0, NEG_INF, 1], [2, NEG_INF, 0]], sparse=[0, 0],
                dense=[[0.5, 0, 0.5], [1, 0, 0]],
            ))
        else:
            out.append(make_case(
                "soft_label_neg_inf_zero_label", {"C": 4, "onehot": True}, dtype,
                [[2, NEG_INF, 0, NEG_INF]], sparse=[0], dense=[[1, 0, 0, 0]],
            ))
    return out


def neg_inf_at_target(
    dtype: Any, *, kind: Sequence[str] = ("C3", "signed"), C: int = 3
) -> list[FamilyCase]:
    """Sparse targets and positive soft labels at ``-inf`` logits; labels of both signs there.

    Rows of C > 3 classes extend each row with -1 (rows with two finite entries) or -inf (rows
    with one) and the soft labels with zeros.
    """
    extra = C - 3

    def widen(rows: list[list[float]], labels: list[list[float]]
              ) -> tuple[list[list[float]], list[list[float]]]:
        wide = [r + ([NEG_INF] if sum(v != NEG_INF for v in r) == 1 else [-1.0]) * extra
                for r in rows]
        return wide, [y + [0.0] * extra for y in labels]

    out: list[FamilyCase] = []
    for k in kind:
        if k == "C3":
            rows, dense = widen([[0, NEG_INF, 1], [0, NEG_INF, 1], [NEG_INF, 3, NEG_INF]],
                                [[0.2, 0.3, 0.5], [0.5, 0.5, 0], [0.5, 0.25, 0.25]])
            out.append(make_case("neg_inf_at_target", {"C": C}, dtype, rows,
                                 sparse=[1, 0, 0], dense=dense))
        else:
            rows, dense = widen([[0, NEG_INF, 1], [NEG_INF, 0, NEG_INF]],
                                [[0.5, -0.5, 1], [1, 0, -1]])
            out.append(make_case("neg_inf_at_target", {"C": C, "labels": "signed"}, dtype, rows,
                                 sparse=[0, 1], dense=dense))
    return out


def pos_inf(dtype: Any, *, C: Sequence[int] = (2, 3)) -> list[FamilyCase]:
    """``+inf`` entries, targets on and off them."""
    out: list[FamilyCase] = []
    for n in C:
        if n == 2:
            out.append(make_case("pos_inf", {"C": 2}, dtype,
                                 [[INF, 0], [INF, NEG_INF], [0, INF]], sparse=[0, 1, 0]))
        else:
            out.append(make_case("pos_inf", {"C": 3}, dtype, [[0, INF, 1], [INF, INF, 0]],
                                 sparse=[1, 2]))
    return out


def nan_in_row(dtype: Any, *, C: int = 5, mix: int = 2) -> list[FamilyCase]:
    """NaN first, middle, last, at the maximum, with ``±inf``, whole row (C >= 4 classes)."""
    ramp = [float(v) for v in range(C - 1)]  # 0, 1, ..., C - 2: the maximum is last
    middle = C // 2
    rows = [
        [NAN, *ramp],
        [*ramp[:middle], NAN, *ramp[middle:]],
        [*ramp, NAN],
        [*ramp[:-1], NAN, 1.0],  # NaN where the maximum would be
        [NAN, NEG_INF, *ramp[: C - 4], NEG_INF, 1.0],
        [NAN, INF, *ramp[: C - 2]],
        [NAN] * C,
    ]
    return [make_case("nan_in_row", _with({"C": C}, "mix", mix, 2), dtype, rows, mix=mix)]


MASKS = ("finfo.min", "-1e9", "-1e4")


def masked_large_values(dtype: Any, *, mask: Sequence[str] | None = None, C: int = 6
                        ) -> list[FamilyCase]:
    """Finite additive masks: "finfo.min", "-1e9", "-1e4" (default: finfo.min and -1e9, or
    -1e4 where -1e9 overflows), in rows of C >= 4 classes."""
    f = thresholds(dtype)
    large = "-1e9" if f.max > 1e9 else "-1e4"
    value = {"finfo.min": -f.max, "-1e9": -1e9, "-1e4": -1e4}
    out: list[FamilyCase] = []
    for label in mask if mask is not None else ("finfo.min", large):
        m = value[label]
        cid = case_id("masked_large_values", {"mask": label, "C": C})
        r = case_rng(cid, "/rows").standard_normal((2, C))
        row0 = r[0].tolist()
        row0[1] = row0[3] = m
        other = -f.max if label != "finfo.min" else value[large]
        row3 = r[1].tolist()
        row3[0], row3[C - 1] = m, other
        spread = [0.0] + [1 / (C - 2)] * (C - 2) + [0.0]  # the unmasked middle of row3
        out.append(make_case(
            "masked_large_values", {"mask": label, "C": C}, dtype,
            [row0, [0.5] + [m] * (C - 1), [m] * C, row3],
            sparse=[0, 0, 2, 2], dense=[[0.5, 0, 0.5] + [0] * (C - 3), [1] + [0] * (C - 1), None,
                                        spread],
        ))
    return out


# --------------------------------------------------------------------------------------------
# §5 Shapes
# --------------------------------------------------------------------------------------------


def single_class(dtype: Any, *, kind: Sequence[str] = ("values", "tf")) -> list[FamilyCase]:
    """C = 1 (every finite logit): softmax 1, log_softmax +0, gradients 0."""
    f = thresholds(dtype)
    out: list[FamilyCase] = []
    for k in kind:
        if k == "values":
            values = [0.0, -3.0, 1e4, f.max, -f.max, f.min_sub]
            out.append(make_case(
                "single_class", {"x": "0,-3,1e4,max,-max,subnormal"}, dtype,
                [[v] for v in values], sparse=[0] * 6, dense=[[1], [-1], [0.5], [2], [0], [1]],
            ))
        else:
            out.append(make_case(
                "single_class", {"tf": "testSingleClass"}, dtype, [[1], [-1], [0], [1]], mix=0,
                sparse=[0] * 4, dense=[[-1], [0], [1], [1]],
            ))
    return out


def empty_axis(dtype: Any) -> list[FamilyCase]:
    """C = 0, shape (3, 0): empty softmax, LSE -inf per row; cross-entropy must raise."""
    return [make_case("empty_axis", {"shape": "3x0"}, dtype, [[], [], []], n_classes=0, mix=0,
                      sparse=[0, 0, 0], errors=LOSS_CALLS)]


def empty_batch(
    dtype: Any, *, reduction: Sequence[str] = ("none", "sum", "mean")
) -> list[FamilyCase]:
    """N = 0: shape (0, C); CE 'sum' 0 and 'mean' NaN (a convention)."""
    out: list[FamilyCase] = []
    for red in reduction:
        if red == "none":
            calls = tuple(call for call in ALL_CALLS if call != (TORCH_CE, BACKWARD))
        else:
            calls = ((TORCH_CE, FORWARD), (TORCH_CE, BACKWARD))
        out.append(make_case(
            "empty_batch", {"shape": "0x4", "reduction": red}, dtype, [], n_classes=4, mix=0,
            calls=calls, ce_options={"reduction": red}, ce_grad_options={"reduction": red},
            status=CONVENTION if red == "mean" else None,
        ))
    return out


# --------------------------------------------------------------------------------------------
# §6 Labels and loss options
# --------------------------------------------------------------------------------------------

_BAD_LABEL_CALLS: tuple[Call, ...] = ((SPARSE_CE, FORWARD), (SPARSE_CE, BACKWARD),
                                      (TORCH_CE, FORWARD))


def labels_out_of_range(
    dtype: Any, *, tf: bool = True, label: Sequence[int] = (4, -1, 2**31, 2**62)
) -> list[FamilyCase]:
    """Invalid sparse labels (C = 4): the call must raise, or give NaN rows for the bad labels."""
    out: list[FamilyCase] = []
    if tf:
        out.append(make_case(
            "labels_out_of_range", {"tf": "labels=4,3,0,-1"}, dtype,
            [[1, 1, 1, 1], [1, 1, 1, 1], [1, 2, 3, 4], [1, 2, 3, 4]], mix=0,
            sparse=[4, 3, 0, -1], calls=_BAD_LABEL_CALLS, errors=_BAD_LABEL_CALLS,
        ))
    for bad in label:
        out.append(make_case(
            "labels_out_of_range", {"label": bad, "C": 4}, dtype, [[0.5, -1, 2, 0]],
            sparse=[bad], calls=_BAD_LABEL_CALLS, errors=_BAD_LABEL_CALLS,
        ))
    return out


def _weights(family: str, dtype: Any, c: int, zeros: bool) -> np.ndarray:
    w = case_rng(family, "/weights").uniform(0.5, 2.0, c)
    if zeros:
        w[1] = w[4 % c] = 0.0
    return round_to(w, dtype)


def all_ignored(
    dtype: Any, *, ignore_index: Sequence[int] = (-100, 1), weight: Sequence[bool] = (False, True),
    reduction: Sequence[str] = ("mean", "sum", "none"), ignored: Sequence[str] = ("all", "partly"),
) -> list[FamilyCase]:
    """Every target equal to ``ignore_index``, or part of the batch (N = 4, C = 5)."""
    family = "all_ignored"
    c, n = 5, 4
    x = round_to(case_rng(family, "/x").standard_normal((n, c)), dtype)
    w = _weights(family, dtype, c, zeros=False)
    out: list[FamilyCase] = []
    for ii in ignore_index:
        for weighted in weight:
            opts: dict[str, Any] = {"ignore_index": ii} if ii != -100 else {}
            if weighted:
                opts["weight"] = w
            for red in reduction:
                params = {"ignore_index": ii, "weight": weighted, "reduction": red}
                for which in ignored:
                    if which == "all":
                        target = np.full(n, ii, dtype=np.int64)
                    else:
                        target = np.array([ii, 2, ii, 0 if ii != 0 else 3], dtype=np.int64)
                    out.append(options_case(family, {**params, "ignored": which}, dtype, x,
                                            target, {**opts, "reduction": red}))
    return out


def label_smoothing_weight_ignore(
    dtype: Any, *, eps: Sequence[float] = (0.0, 0.1, 0.5, 1.0),
    weight: Sequence[bool] = (False, True), reduction: Sequence[str] = ("none", "mean", "sum"),
    target: Sequence[str] = ("index", "prob"), errors: bool = True,
) -> list[FamilyCase]:
    """PyTorch's option formula (N = 6, C = 5): smoothing x weights (with zeros) x ignored rows
    x reduction x index/probability targets; ``errors``: also eps > 1 and ignore_index >= 0
    with probability targets, which must raise."""
    family = "label_smoothing_weight_ignore"
    n, c = 6, 5
    x = round_to(case_rng(family, "/x").standard_normal((n, c)), dtype)
    index = np.array([0, 3, -100, 4, 2, -100], dtype=np.int64)
    probs = round_to(case_rng(family, "/probs").dirichlet(np.ones(c), n), dtype)
    w = _weights(family, dtype, c, zeros=True)
    out: list[FamilyCase] = []
    for e in eps:
        for weighted in weight:
            for red in reduction:
                for kind in target:
                    opts: dict[str, Any] = {"label_smoothing": float(e), "reduction": red}
                    if weighted:
                        opts["weight"] = w
                    params = {"eps": float(e), "weight": weighted, "reduction": red,
                              "target": kind}
                    out.append(options_case(family, params, dtype, x,
                                            index if kind == "index" else probs, opts))
    if errors:
        out.append(options_case(family, {"eps": 1.5, "error": "eps>1"}, dtype, x, index,
                                {"label_smoothing": 1.5}, error=True))
        out.append(options_case(
            family, {"target": "prob", "ignore_index": 0, "error": "ignore_index>=0"}, dtype, x,
            probs, {"ignore_index": 0}, error=True,
        ))
    return out


def soft_labels_off_simplex(
    dtype: Any, *, kind: Sequence[str] = ("C4", "tf")
) -> list[FamilyCase]:
    """Dense labels with zero rows, negative entries, sums of 2 and 0.5; TF's single class."""
    labels: list[Sequence[float] | None] = [
        [0, 0, 0, 0],
        [-0.5, 1, 0.5, 0],
        [1, 1, 0, 0],
        [0.25, 0.25, 0, 0],
        [-1, 0, 0, 0],
        [0.5, -0.25, 0.25, 0.5],
    ]
    out: list[FamilyCase] = []
    for k in kind:
        if k == "C4":
            cid = case_id("soft_labels_off_simplex", {"C": 4})
            rows = case_rng(cid, "/rows").standard_normal((len(labels), 4)).tolist()
            out.append(make_case("soft_labels_off_simplex", {"C": 4}, dtype, rows,
                                 dense=labels, mix=0))
        else:
            out.append(make_case(
                "soft_labels_off_simplex", {"tf": "testSingleClass"}, dtype,
                [[1], [-1], [0], [1]], mix=0, dense=[[-1], [0], [1], [1]],
            ))
    return out


# --------------------------------------------------------------------------------------------
# §7 Low precision
# --------------------------------------------------------------------------------------------


def long_row_low_precision(
    dtype: Any, *, C: Sequence[int] = (1000,), rows: int = 2
) -> list[FamilyCase]:
    """Long N(0, 1) / N(0, 9) rows (alternating), and a mean-reduced ``cross_entropy``."""
    out: list[FamilyCase] = []
    for n in C:
        params = _with({"C": n}, "N", rows, 2)
        cid = case_id("long_row_low_precision", params)
        scale = np.where(np.arange(rows) % 2 == 0, 1.0, 3.0)[:, None]
        x = case_rng(cid, "/rows").standard_normal((rows, n)) * scale
        out.append(make_case("long_row_low_precision", params, dtype, x.tolist(), mix=0,
                             ce_options={"reduction": "mean"}))
    return out


def tied_max_low_precision(
    dtype: Any, *, row: Sequence[str] = ("zeros", "1,1,0", "2,2,2,-1"),
    C: Sequence[int] = (2, 64, 1000),
) -> list[FamilyCase]:
    """Ties at the maximum: all-zero rows of each width ``C``, ``[1, 1, 0]``, ``[2, 2, 2, -1]``."""
    out: list[FamilyCase] = []
    for r in row:
        if r == "zeros":
            out.extend(
                make_case("tied_max_low_precision", {"row": "zeros", "C": n}, dtype, [[0.0] * n],
                          mix=0 if n > 64 else 2)
                for n in C
            )
        else:
            values = [float(v) for v in r.split(",")]
            out.append(make_case("tied_max_low_precision",
                                 {"row": [int(v) for v in values]}, dtype, [values]))
    return out


def large_array_grad_fp16(dtype: Any, *, C: Sequence[int] = (1024,)) -> list[FamilyCase]:
    """Gradient of ``log_softmax(x).sum()`` (cotangent ones) over one row of C entries."""
    out: list[FamilyCase] = []
    for n in C:
        cid = case_id("large_array_grad_fp16", {"C": n})
        row = case_rng(cid, "/row").standard_normal(n).tolist()
        out.append(make_case(
            "large_array_grad_fp16", {"C": n}, dtype, [row], mix=0, g=[[1.0] * n],
            calls=((LOG_SOFTMAX, BACKWARD), (LOGSUMEXP, BACKWARD), (SPARSE_CE, BACKWARD)),
        ))
    return out
