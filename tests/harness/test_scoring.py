"""harness.scoring: verdicts, ladder, bounds, conventions and error_expected cases.

Every expected value comes from the real ``references`` functions on tiny inputs; the
"implementation outputs" are fabricated to show one behaviour each.
"""

from __future__ import annotations

import json
import math
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import references as R
from harness import scoring
from harness import store as results
from references.formats import format_of
from references.special_values import TABLE

BF16 = ml_dtypes.bfloat16
OPS_BY_TABLE_NAME = {
    "softmax": ("softmax", "forward"), "log_softmax": ("log_softmax", "forward"),
    "logsumexp": ("logsumexp", "forward"),
    "sparse_softmax_cross_entropy": ("sparse_softmax_cross_entropy", "forward"),
    "softmax_cross_entropy": ("softmax_cross_entropy", "forward"),
    "softmax_vjp": ("softmax", "backward"), "log_softmax_vjp": ("log_softmax", "backward"),
    "logsumexp_grad": ("logsumexp", "backward"),
    "sparse_softmax_cross_entropy_grad": ("sparse_softmax_cross_entropy", "backward"),
    "softmax_cross_entropy_grad": ("softmax_cross_entropy", "backward"),
}


def run(op: str, dtype: str, actual: Any, reference: Any, inputs: dict[str, Any], *,
        pass_: str = "forward", status: str = "scored", family: str = "smoke_small",
        cotangent: Any = None) -> dict[str, Any]:
    out = scoring.score(op=op, pass_=pass_, dtype=dtype, actual=np.asarray(actual),
                        reference=reference, inputs=inputs, case_status=status, family=family,
                        cotangent=cotangent)
    json.dumps(out, allow_nan=False)  # every field JSON-serialisable, no NaN
    assert set(out) == set(scoring.METRIC_FIELDS)
    return out


# ------------------------------------------------------------------------------- accuracy
def test_correctly_rounded_output_passes_and_is_correctly_rounded() -> None:
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], dtype=np.float32)
    ref = R.softmax(x)
    out = run("softmax", "float32", ref.rounded(np.float32), ref, {"x": x})
    assert out["verdict"] == "pass"
    assert out["accuracy_class"] == "correctly_rounded"
    assert out["max_ulp"] <= 0.5 and out["counts"] == {}
    assert out["bound_ratio"] < 1 and out["bound_ratio_f32acc"] is None
    assert out["sum_err_ulp"] is not None and out["sum_err_ulp"] <= 2
    assert out["worst_row"] in ([1.0, 2.0, 3.0], [0.5, -1.0, 4.0])
    assert out["expected"] == out["got"]


def test_one_ulp_off_is_faithful_and_passes() -> None:
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    ref = R.log_softmax(x)
    rounded = ref.rounded(np.float32)
    # the float32 neighbour on the other side of the exact value: between 0.5 and 1 ulp away
    toward = np.where(rounded.astype(np.float64) > ref.hi, np.float32(-np.inf), np.float32(np.inf))
    other = np.nextafter(rounded, toward.astype(np.float32))
    out = run("log_softmax", "float32", other, ref, {"x": x})
    assert 0.5 < out["max_ulp"] < 1
    assert out["accuracy_class"] == "faithful" and out["verdict"] == "pass"


def test_naive_softmax_on_large_offset_is_nan_where_finite() -> None:
    x = (np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]]) + 1000.0).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    ref = R.softmax(x)
    out = run("softmax", "float32", naive, ref, {"x": x}, family="large_offset")
    assert out["verdict"] == "nan_where_finite"
    assert out["counts"] == {"nan_where_finite": 6}
    assert out["max_ulp"] is None and out["got"] == "nan"
    assert out["worst_row"] == [1000.0, 1001.0, 1002.0]


def test_flushed_subnormals_are_a_class_not_a_ten_million_ulp_error() -> None:
    x = np.array([[0.0, -95.0], [0.0, -100.0], [1.0, 2.0]], dtype=np.float32)
    ref = R.softmax(x)
    got = np.array(ref.rounded(np.float32))
    assert 0 < got[0, 1] < np.finfo(np.float32).tiny  # a subnormal result
    got[:2, 1] = 0.0  # flush-to-zero, as TF and JAX do on CPU
    out = run("softmax", "float32", got, ref, {"x": x}, family="underflow_tail")
    assert out["verdict"] == "flushes_subnormals"
    assert out["counts"] == {"flushed_subnormal": 2}
    assert out["max_ulp"] <= 0.5  # the flushes are not in the statistics


def test_zero_for_a_subnormal_within_the_limit_is_rounding_not_a_flush() -> None:
    # exact 7.4e-46: below the smallest float32 subnormal 1.4e-45, above half of it
    x = np.array([[0.0, -103.5]], dtype=np.float32)
    ref = R.softmax(x)
    assert ref.rounded(np.float32)[0, 1] == np.float32(1.4e-45)
    out = run("softmax", "float32", np.array([[1.0, 0.0]], np.float32), ref, {"x": x})
    assert out["verdict"] == "pass" and out["counts"] == {}
    assert out["max_ulp"] < 1


def test_log_softmax_losing_the_tail_is_inaccurate_with_zero_for_nonzero() -> None:
    x = np.array([[0.0, -20.0]], dtype=np.float32)
    ref = R.log_softmax(x)
    out = run("log_softmax", "float32", x.copy(), ref, {"x": x}, family="dominant_logit")
    assert out["verdict"] == "inaccurate"
    assert out["counts"] == {"zero_for_nonzero": 1}
    assert out["max_ulp"] == pytest.approx(9.28e6, rel=1e-2)
    assert out["bound_ratio"] < 0.01  # the absolute bound cannot see it (docs/numerics.md §8.3)
    assert out["accuracy_class"] == "within_bound"
    assert out["worst_index"] == [0, 0] and out["got"] == "0.0"
    assert out["exact"].startswith("-2.0611536")


def test_correct_shifted_float64_softmax_with_53_ulp_passes() -> None:
    row = np.random.default_rng(1).normal(0, 10, 1000)[None, :]  # docs/numerics.md §9
    shifted = np.exp(row - row.max())
    shifted /= shifted.sum()
    ref = R.softmax(row)
    out = run("softmax", "float64", shifted, ref, {"x": row}, family="random_normal")
    assert out["max_ulp"] == pytest.approx(53.3, abs=0.5)
    assert out["verdict"] == "pass"
    assert out["accuracy_class"] == "within_bound"
    assert out["limit_ratio"] < 1 < out["max_ulp"]
    assert out["worst_index"] == [0, 193]


def test_low_precision_is_judged_against_float32_accumulation() -> None:
    # A bfloat16 accumulator saturating at 256 on a uniform row of 512 (executorch PR #20089)
    # is within the vacuous native bound but far outside "compute in float32, round once".
    x = np.zeros((1, 512), dtype=BF16)
    ref = R.softmax(x)
    out = run("softmax", "bfloat16", np.full((1, 512), 1 / 256, dtype=BF16), ref, {"x": x},
              family="uniform_row")
    assert out["verdict"] == "inaccurate"
    assert out["max_ulp"] == 128
    assert out["bound_ratio"] <= 1 < out["bound_ratio_f32acc"]
    good = run("softmax", "bfloat16", ref.rounded(BF16), ref, {"x": x})
    assert good["verdict"] == "pass" and good["bound_ratio_f32acc"] <= 1


def test_spurious_overflow_is_inf_where_finite() -> None:
    x = np.array([[60000.0, 0.0]], dtype=np.float16)
    ref = R.logsumexp(x)
    out = run("logsumexp", "float16", np.array([np.inf], np.float16), ref, {"x": x})
    assert out["verdict"] == "inf_where_finite"
    assert out["counts"] == {"spurious_overflow": 1}


def test_value_where_nan_expected_is_finite_where_nan() -> None:
    x = np.array([[1.0, np.nan, 2.0], [0.0, 1.0, 2.0]], dtype=np.float32)
    ref = R.softmax(x)
    got = np.array(ref.rounded(np.float32))
    got[0] = [0.25, 0.0, 0.75]  # TF CPU's [nan, 0, 1]-style leak (docs/numerics.md §6 row 1)
    out = run("softmax", "float32", got, ref, {"x": x}, family="nan_in_row")
    assert out["verdict"] == "finite_where_nan"


def test_wrong_shape_scores_nothing_else() -> None:
    x = np.zeros((2, 3), dtype=np.float32)
    ref = R.softmax(x)
    out = run("softmax", "float32", np.zeros((3, 2), np.float32), ref, {"x": x})
    assert out["verdict"] == "wrong_shape"
    assert "(3, 2)" in out["score_message"] and "(2, 3)" in out["score_message"]
    assert out["max_ulp"] is None


def test_backward_invariant_and_dominant_gap_gradient() -> None:
    x = np.array([[37.42994775023705, 0.0]])  # docs/numerics.md §4: p_0 rounds to 1 in float64
    g = np.array([[1.0, 0.0]])
    ref = R.log_softmax_vjp(x, g)
    naive_p = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    naive = g - naive_p * g.sum()  # 1 - p_0 by subtraction: exactly 0
    out = run("log_softmax", "float64", naive, ref, {"x": x}, pass_="backward", cotangent=g,
              family="vjp_dominant_gap")
    assert out["verdict"] == "inaccurate"
    assert out["grad_row_sum"] == pytest.approx(0.0, abs=1e-16)
    good = run("log_softmax", "float64", ref.rounded(np.float64), ref, {"x": x},
               pass_="backward", cotangent=g)
    assert good["verdict"] == "pass" and good["accuracy_class"] == "correctly_rounded"


def test_sparse_cross_entropy_and_gradient_pass_when_rounded() -> None:
    x = np.array([[0.5, -1.0, 2.0], [3.0, 3.0, -2.0]], dtype=np.float32)
    t = np.array([2, 0])
    for pass_, fn in (("forward", R.sparse_softmax_cross_entropy),
                      ("backward", R.sparse_softmax_cross_entropy_grad)):
        ref = fn(x, t)
        out = run("sparse_softmax_cross_entropy", "float32", ref.rounded(np.float32), ref,
                  {"x": x, "targets": t}, pass_=pass_)
        assert out["verdict"] == "pass" and out["bound_ratio"] < 1


def test_limits_grow_with_the_gap_and_use_float32_for_low_precision() -> None:
    near = np.array([[0.0, -1.0]], dtype=np.float32)
    far = np.array([[0.0, -60.0]], dtype=np.float32)
    lim_near = scoring.ulp_limits("softmax", "forward", "float32",
                                  R.softmax(near).rounded(np.float32), {"x": near})
    lim_far = scoring.ulp_limits("softmax", "forward", "float32",
                                 R.softmax(far).rounded(np.float32), {"x": far})
    assert lim_far.limit[0, 1] > 10 * lim_near.limit[0, 1]
    half = np.array([[0.0, -8.0]], dtype=np.float16)
    lim_half = scoring.ulp_limits("softmax", "forward", "float16",
                                  R.softmax(half).rounded(np.float16), {"x": half})
    assert np.all(lim_half.limit == scoring.THRESHOLDS["float16"])  # T * (0.5 + tiny) < T


# ----------------------------------------------------------------------------- conventions
def test_all_neg_inf_nan_row_follows_the_reference_convention() -> None:
    x = np.array([[-np.inf, -np.inf], [0.0, 1.0]], dtype=np.float32)
    ref = R.softmax(x)
    got = np.array(ref.rounded(np.float32))
    out = run("softmax", "float32", got, ref, {"x": x}, status="convention",
              family="all_neg_inf")
    assert out["verdict"] == "pass"
    assert out["convention"] == "NaN row" and out["follows_convention"] is True
    assert out["max_ulp"] is not None  # the ordinary row is still scored


def test_safe_softmax_zeros_are_a_listed_alternative() -> None:
    x = np.array([[-np.inf, -np.inf], [0.0, 1.0]], dtype=np.float32)
    ref = R.softmax(x)
    got = np.array(ref.rounded(np.float32))
    got[0] = 0.0
    out = run("softmax", "float32", got, ref, {"x": x}, status="convention",
              family="all_neg_inf")
    assert (out["verdict"], out["follows_convention"]) == ("pass", True)
    assert out["convention"] == "all 0 (safe softmax)"


def test_unlisted_behaviour_is_convention_differs() -> None:
    x = np.array([[-np.inf, -np.inf]], dtype=np.float32)
    ref = R.log_softmax(x)
    out = run("log_softmax", "float32", np.array([[0.0, 0.0]], np.float32), ref, {"x": x},
              status="convention", family="all_neg_inf")
    assert out["verdict"] == "convention_differs" and out["follows_convention"] is False
    assert out["convention"] == "all 0" and out["convention_reference"] == "NaN row"


@pytest.mark.parametrize(("got", "what"), [
    ([[1.0, 0.0]], "one-hot limit"),
    ([[np.nan, 0.0]], "TF: NaN at the +inf, 0 elsewhere"),
    ([[np.nan, np.nan]], "NaN row"),
])
def test_pos_inf_softmax_alternatives(got: list[list[float]], what: str) -> None:
    x = np.array([[np.inf, 0.0]], dtype=np.float32)
    ref = R.softmax(x)
    out = run("softmax", "float32", np.array(got, np.float32), ref, {"x": x},
              status="convention", family="pos_inf")
    assert out["verdict"] == "pass" and out["convention"] == what


def test_nan_leaking_into_ordinary_rows_fails_a_convention_case() -> None:
    x = np.array([[np.inf, 0.0], [0.0, 1.0]], dtype=np.float32)
    ref = R.softmax(x)
    out = run("softmax", "float32", np.full((2, 2), np.nan, np.float32), ref, {"x": x},
              status="convention", family="pos_inf")
    assert out["verdict"] == "nan_where_finite" and out["follows_convention"] is True


def test_sparse_loss_limit_at_pos_inf_is_accepted() -> None:
    x = np.array([[np.inf, 0.0], [np.inf, 0.0]], dtype=np.float32)
    t = np.array([0, 1])
    ref = R.sparse_softmax_cross_entropy(x, t)
    out = run("sparse_softmax_cross_entropy", "float32", np.array([0.0, np.inf], np.float32),
              ref, {"x": x, "targets": t}, status="convention", family="pos_inf")
    assert out["verdict"] == "pass"
    assert out["convention"] == "limit: 0 at the +inf target, +inf elsewhere"


def test_soft_label_zero_at_neg_inf_finite_value_is_scored() -> None:
    x = np.array([[0.0, -np.inf], [1.0, 2.0]], dtype=np.float32)
    y = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    ref = R.softmax_cross_entropy(x, y)
    ok = run("softmax_cross_entropy", "float32", ref.rounded(np.float32), ref,
             {"x": x, "labels": y}, status="convention", family="soft_label_neg_inf_zero_label")
    assert ok["verdict"] == "pass" and ok["follows_convention"] is True
    assert ok["n_scored"] == 2  # the special row's finite loss joins the accuracy score
    nan = run("softmax_cross_entropy", "float32", np.array([np.nan, ref.rounded(np.float32)[1]],
                                                            np.float32), ref,
              {"x": x, "labels": y}, status="convention", family="soft_label_neg_inf_zero_label")
    assert nan["verdict"] == "pass" and nan["convention"] == "NaN (plain IEEE 0 * inf)"


def test_empty_axis_empty_output_and_raising_are_accepted() -> None:
    x = np.zeros((2, 0), dtype=np.float32)
    ref = R.softmax(x)
    out = run("softmax", "float32", np.zeros((2, 0), np.float32), ref, {"x": x},
              status="convention", family="empty_axis")
    assert out["verdict"] == "pass" and out["convention"] == "empty output"
    raised = scoring.score_exception(op="softmax", pass_="forward", dtype="float32",
                                     raised="InvalidArgumentError: logits must be non-empty",
                                     case_status="convention", family="empty_axis")
    assert raised["verdict"] == "pass"
    assert raised["convention"] == "raises InvalidArgumentError"
    assert raised["follows_convention"] is True
    other = scoring.score_exception(op="softmax", pass_="forward", dtype="float32",
                                    raised="ValueError: no", case_status="convention",
                                    family="all_neg_inf")
    assert other["verdict"] == "convention_differs"


def test_every_special_value_alternative_has_a_matcher() -> None:
    """Each convention row of references.special_values with alternatives is checkable here."""
    for row in TABLE:
        if row.status != "convention" or not row.alternatives:
            continue
        if all(alt.startswith("raises") for alt in row.alternatives):
            assert row.id in scoring.RAISING_ACCEPTED
            continue
        if row.id in scoring.RAISING_ACCEPTED:
            continue
        op, pass_ = OPS_BY_TABLE_NAME[row.op]
        assert (row.id, op, pass_) in scoring.ALTERNATIVES, (row.id, row.op)


# --------------------------------------------------------------------------- error_expected
def test_labels_out_of_range_raising_or_nan_passes_finite_fails() -> None:
    x = np.array([[0.0, 1.0], [2.0, 0.5]], dtype=np.float32)
    t = np.array([2, 0])
    common = dict(op="sparse_softmax_cross_entropy", pass_="forward", dtype="float32",
                  case_status="error_expected", family="labels_out_of_range")
    raised = scoring.score_outcome(actual=None, reference=ValueError("no value"),
                                   inputs={"x": x, "targets": t},
                                   raised="IndexError: Target 2 is out of bounds.", **common)
    assert raised["verdict"] == "pass" and raised["convention"] == "raises IndexError"
    good_row = R.sparse_softmax_cross_entropy(x[1:], t[1:]).rounded(np.float32)[0]
    nan = scoring.score_outcome(actual=np.array([np.nan, good_row], np.float32),
                                reference=ValueError("no value"), inputs={"x": x, "targets": t},
                                **common)
    assert nan["verdict"] == "pass" and nan["convention"] == "NaN"
    finite = scoring.score_outcome(actual=np.array([0.0, good_row], np.float32),
                                   reference=ValueError("no value"),
                                   inputs={"x": x, "targets": t}, **common)
    assert finite["verdict"] == "silently_finite"
    assert finite["convention"] == "0 (silently)" and finite["follows_convention"] is False
    assert finite["worst_row"] == [0.0, 1.0]


def test_scored_case_that_raises_is_an_error() -> None:
    out = scoring.score_exception(op="softmax", pass_="forward", dtype="float32",
                                  raised="RuntimeError: boom", case_status="scored",
                                  family="smoke_small")
    assert out["verdict"] == "error"


# ------------------------------------------------------------------------------ contracts
def test_metric_fields_are_in_the_record_schema() -> None:
    assert set(scoring.METRIC_FIELDS) <= set(results.FIELD_BY_NAME)


def test_verdict_order_puts_pass_first_and_failures_after_conventions() -> None:
    assert scoring.VERDICTS[0] == "pass"
    assert "convention_differs" not in scoring.FAILURE_VERDICTS
    assert {"inaccurate", "nan_where_finite", "silently_finite"} <= scoring.FAILURE_VERDICTS


def test_all_dtypes_round_trip_through_json() -> None:
    x = np.array([[0.25, -3.0, 1.5]])
    for name in ("float16", "bfloat16", "float32", "float64"):
        xd = x.astype(format_of(name).dtype)
        ref = R.softmax(xd)
        out = run("softmax", name, ref.rounded(format_of(name).dtype), ref, {"x": xd})
        assert out["verdict"] == "pass" and out["output_dtype"] == name
        assert not any(isinstance(v, float) and math.isnan(v) for v in out.values())


# ------------------------------------------------------------------- families own expectations
def test_scoring_never_branches_on_a_family_name() -> None:
    """The scorer asks the family (its declared expectations); no comparison in harness/scoring/
    names a family, nor does any other literal there."""
    import ast
    from pathlib import Path

    from harness.planning.cases import FAMILIES

    def strings(node: ast.AST) -> set[str]:
        return {n.value for n in ast.walk(node)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)}

    sources = sorted(Path(scoring.__file__).parent.glob("*.py"))
    assert len(sources) > 1
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                named = strings(node) & set(FAMILIES)
                assert not named, f"{path.name}:{node.lineno} compares with {sorted(named)}"
        # nor any other literal (a table keyed by family names); docstrings may name families
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and node.value in FAMILIES
                    and id(node) not in docstrings):
                assert False, f"{path.name}:{node.lineno} names the family {node.value!r}"


def test_a_family_the_table_does_not_know_has_no_special_rows() -> None:
    x = np.array([[-np.inf, -np.inf], [0.0, 1.0]], dtype=np.float32)
    ref = R.softmax(x)
    got = np.array([[0.0, 0.0], ref.rounded(np.float32)[1]], dtype=np.float32)
    known = run("softmax", "float32", got, ref, {"x": x}, status="convention",
                family="all_neg_inf")
    assert known["verdict"] == "pass" and known["convention"] == "all 0 (safe softmax)"
    unknown = run("softmax", "float32", got, ref, {"x": x}, status="convention",
                  family="a_plugins_family")
    assert unknown["convention"] is None and unknown["verdict"] == "finite_where_nan"
    raised = scoring.score_exception(op="softmax", pass_="forward", dtype="float32",
                                     raised="ValueError: no", case_status="convention",
                                     family="a_plugins_family")
    assert raised["verdict"] == "convention_differs"
