"""Severity, the two standards, fair attribution on padded cases, device errors, zero exact
values and lost values (issue 13, docs/scoring.md §2, §5.4, §5.5, §8).

Every expected value comes from the real ``references`` functions on tiny inputs; the
"implementation outputs" are made by hand to show one behaviour each.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pytest

import references as R
from harness import scoring
from harness import store as results
from harness.engine.local import is_sticky
from harness.messages import Reply
from harness.planning import cases as cases_mod
from harness.vocabulary import (
    MINOR_LIMIT_FACTOR,
    SEVERITIES,
    SEVERITY_RANK,
    VERDICT_SEVERITY,
    VERDICTS,
    severity_of,
)

CUDA_ASSERT = ("torch.AcceleratorError: CUDA error: device-side assert triggered\n"
               "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.")


def run(op: str, dtype: str, actual: Any, reference: Any, inputs: dict[str, Any], *,
        pass_: str = "forward", status: str = "scored", family: str = "smoke_small",
        cotangent: Any = None, own_rows: int | None = None) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scoring says nothing on the terminal
        out = scoring.score(op=op, pass_=pass_, dtype=dtype, actual=np.asarray(actual),
                            reference=reference, inputs=inputs, case_status=status,
                            family=family, cotangent=cotangent, own_rows=own_rows)
    json.dumps(out, allow_nan=False)
    assert set(out) == set(scoring.METRIC_FIELDS)
    return out


# ------------------------------------------------------------------------------ the ladder
def test_the_ladder_and_every_verdict_has_a_severity() -> None:
    assert SEVERITIES == ("none", "minor", "major", "critical")
    assert set(VERDICT_SEVERITY) == set(VERDICTS)
    assert [SEVERITY_RANK[s] for s in SEVERITIES] == [0, 1, 2, 3]
    assert severity_of("inaccurate", MINOR_LIMIT_FACTOR) == "minor"
    assert severity_of("inaccurate", MINOR_LIMIT_FACTOR * 1.01) == "major"
    assert severity_of("inaccurate", 1.5, lost_value=True) == "major"
    assert severity_of("inaccurate", None) == "major"
    assert severity_of("unsupported") is None and severity_of(None) is None
    assert severity_of("device_assert") == "critical"


def _over_limit(factor: float) -> dict[str, Any]:
    """A float32 softmax with one element ``factor`` times its ULP limit away."""
    x = np.array([[0.5, -1.0, 2.0, 0.25]], dtype=np.float32)
    ref = R.softmax(x)
    got = np.array(ref.rounded(np.float32))
    zhat = got.astype(np.float64)
    lim = scoring.ulp_limits("softmax", "forward", "float32", zhat, {"x": x})
    ulps = float(np.ceil(lim.limit[0, 2] * factor))
    got[0, 2] = np.float32(zhat[0, 2] + ulps * np.spacing(np.float32(zhat[0, 2])))
    return run("softmax", "float32", got, ref, {"x": x})


def test_small_excess_is_minor_and_far_over_is_major() -> None:
    small = _over_limit(2.0)
    assert small["verdict"] == "inaccurate"
    assert 1 < small["limit_ratio"] <= MINOR_LIMIT_FACTOR
    assert (small["severity"], small["componentwise"]) == ("minor", False)
    far = _over_limit(50.0)
    assert far["verdict"] == "inaccurate" and far["limit_ratio"] > MINOR_LIMIT_FACTOR
    assert far["severity"] == "major"


def test_pass_and_convention_are_none() -> None:
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    ref = R.softmax(x)
    out = run("softmax", "float32", ref.rounded(np.float32), ref, {"x": x})
    assert (out["severity"], out["componentwise"], out["normwise"]) == ("none", True, True)
    assert out["decided_by"] == "none" and out["special_verdict"] is None
    assert out["norm_ulp"] <= 0.5 and out["norm_ratio"] <= 1


# -------------------------------------------------------------------- the two standards
def test_log_softmax_0_minus_20_is_componentwise_inaccurate_and_normwise_accurate() -> None:
    """docs/scoring.md §8: the classic example. Returning [0, -20] loses the tail at the max
    element (a lost value: severity major) but is 0.001 ulp of the row's scale."""
    x = np.array([[0.0, -20.0]], dtype=np.float32)
    ref = R.log_softmax(x)
    out = run("log_softmax", "float32", x.copy(), ref, {"x": x}, family="dominant_logit")
    assert out["verdict"] == "inaccurate" and out["severity"] == "major"
    assert "lost value" in out["score_message"]
    assert out["componentwise"] is False and out["normwise"] is True
    assert out["max_ulp"] == pytest.approx(9.28e6, rel=1e-2)
    # error 2.06e-9 in ulps of 20 (2**-19): 0.00108
    assert out["norm_ulp"] == pytest.approx(2.0611536e-9 / 2.0**-19, rel=1e-3)
    assert out["norm_ratio"] < 0.01


def test_a_wrong_dominant_entry_fails_both_standards() -> None:
    x = np.array([[0.0, -20.0]], dtype=np.float32)
    ref = R.log_softmax(x)
    got = np.array(ref.rounded(np.float32))
    got[0, 1] = np.float32(-19.9)  # 0.1 off at the row's largest magnitude
    out = run("log_softmax", "float32", got, ref, {"x": x})
    assert out["verdict"] == "inaccurate" and out["severity"] == "major"
    assert out["normwise"] is False and out["norm_ratio"] > 1


def test_a_lost_sign_where_the_exact_value_is_normal_is_major() -> None:
    x = np.array([[0.5, -1.0, 2.0]], dtype=np.float32)
    g = np.array([[1.0, -2.0, 0.5]], dtype=np.float32)
    ref = R.softmax_vjp(x, g)
    got = np.array(ref.rounded(np.float32))
    j = int(np.argmax(np.abs(got[0])))
    got[0, j] = -got[0, j]
    out = run("softmax", "float32", got, ref, {"x": x}, pass_="backward", cotangent=g)
    assert out["verdict"] == "inaccurate" and out["severity"] == "major"
    assert "wrong sign" in out["score_message"]


def test_special_value_failures_are_critical_and_fail_both_standards() -> None:
    x = (np.array([[0.0, 1.0, 2.0]]) + 1000.0).astype(np.float32)
    ref = R.softmax(x)
    out = run("softmax", "float32", np.full((1, 3), np.nan, np.float32), ref, {"x": x})
    assert out["verdict"] == "nan_where_finite" and out["severity"] == "critical"
    assert out["componentwise"] is False and out["normwise"] is False
    shape = run("softmax", "float32", np.zeros((3,), np.float32), ref, {"x": x})
    assert (shape["verdict"], shape["severity"]) == ("wrong_shape", "critical")


# ------------------------------------------------------------ flushes and lost values
def test_a_pure_flush_is_minor() -> None:
    x = np.array([[0.0, -95.0], [0.0, -100.0], [1.0, 2.0]], dtype=np.float32)
    ref = R.softmax(x)
    got = np.array(ref.rounded(np.float32))
    got[:2, 1] = 0.0
    out = run("softmax", "float32", got, ref, {"x": x}, family="underflow_tail")
    assert out["verdict"] == "flushes_subnormals" and out["severity"] == "minor"
    assert out["counts"] == {"flushed_subnormal": 2}
    assert out["normwise"] is True


def test_subnormal_zeros_in_a_row_that_lost_a_normal_value_are_not_flushes() -> None:
    """TF on CPU returns 0 for exp(-87), a normal float32: the subnormals after it in the same
    row are part of that lost tail, not a flush."""
    x = np.array([[0.0, -87.0, -100.0]], dtype=np.float32)
    ref = R.softmax(x)
    got = np.array(ref.rounded(np.float32))
    assert got[0, 1] >= np.finfo(np.float32).tiny > got[0, 2] > 0
    got[0, 1:] = 0.0
    out = run("softmax", "float32", got, ref, {"x": x}, family="underflow_tail")
    assert out["counts"] == {"zero_for_nonzero": 1, "lost_subnormal": 1}
    assert out["verdict"] == "inaccurate" and out["severity"] == "major"


def test_zero_for_a_value_normal_in_the_wider_output_dtype_is_a_lost_value() -> None:
    """A float16 case answered in float32: 0 for 1e-6 (subnormal in float16, normal in
    float32, the output's dtype) is a lost value, not a flush."""
    x = np.array([[0.0, -14.0]], dtype=np.float16)
    ref = R.softmax(x)
    exact = float(ref.hi[0, 1])
    assert 0 < exact < float(np.finfo(np.float16).tiny)
    got = np.array(ref.rounded(np.float16)).astype(np.float32)
    got[0, 1] = 0.0
    out = run("softmax", "float16", got, ref, {"x": x}, family="underflow_tail")
    assert "flushed_subnormal" not in out["counts"]
    assert out["counts"] == {"zero_for_nonzero": 1}
    assert out["verdict"] == "inaccurate" and out["severity"] == "major"
    same = run("softmax", "float16", got.astype(np.float16), ref, {"x": x},
               family="underflow_tail")
    assert same["verdict"] == "flushes_subnormals" and same["severity"] == "minor"


# -------------------------------------------------------------------- zero exact values
def test_zero_exact_values_are_shown_as_absolute_error() -> None:
    """The softmax VJP of a constant cotangent is exactly 0: a 1e-8 there is 7e36 ulp by the
    convention (max_ulp keeps it), 8.5e29 smallest normals (what tables show)."""
    x = np.array([[0.5, -1.0, 2.0]], dtype=np.float32)
    g = np.ones((1, 3), np.float32)
    ref = R.softmax_vjp(x, g)
    assert np.all(ref.hi == 0)
    got = np.array([[1e-8, -1e-8, 0.0]], np.float32)
    out = run("softmax", "float32", got, ref, {"x": x}, pass_="backward", cotangent=g)
    tiny = float(np.finfo(np.float32).tiny)
    assert out["max_ulp"] == pytest.approx(float(np.float32(1e-8)) / 2.0**-149, rel=1e-6)
    assert out["zero_abs_err"] == pytest.approx(float(np.float32(1e-8)) / tiny, rel=1e-6)
    assert out["max_ulp_nonzero"] is None


def test_scoring_emits_no_warnings_on_an_error_that_overflows_in_float64() -> None:
    """|y - z| / ulp(z) times ulp(z) overflows float64 for -max against +max: no
    RuntimeWarning reaches the terminal (run() turns warnings into errors)."""
    big = np.finfo(np.float64).max
    x = np.array([[big, 0.0]])
    ref = R.logsumexp(x)
    out = run("logsumexp", "float64", np.array([-big]), ref, {"x": x})
    assert out["verdict"] == "inaccurate" and out["severity"] == "major"


# ---------------------------------------------------------------------- device errors
def test_a_device_side_assert_is_critical_even_where_raising_is_accepted() -> None:
    assert is_sticky(Reply("error", CUDA_ASSERT))
    x = np.array([[0.0, 1.0], [2.0, 0.5]], dtype=np.float32)
    t = np.array([2, 0])
    common: dict[str, Any] = dict(op="sparse_softmax_cross_entropy", pass_="forward",
                                  dtype="float32",
                  case_status="error_expected", family="labels_out_of_range",
                  inputs={"x": x, "targets": t}, actual=None, reference=ValueError("none"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = scoring.score_outcome(raised="IndexError: Target 2 is out of bounds.", **common)
        poisoned = scoring.score_outcome(raised=CUDA_ASSERT, device_error=True, **common)
    assert (clean["verdict"], clean["severity"]) == ("pass", "none")
    assert (poisoned["verdict"], poisoned["severity"]) == ("device_assert", "critical")
    assert poisoned["componentwise"] is False and poisoned["follows_convention"] is False
    assert "device-side assert" in poisoned["score_message"]
    assert "device_assert" in scoring.FAILURE_VERDICTS


def test_the_accuracy_planner_turns_a_sticky_reply_into_device_assert() -> None:
    from harness.planning.accuracy import AccuracyPlanner, Task

    x = np.array([[0.0, 1.0]], dtype=np.float32)
    case = cases_mod.CaseInput("labels_out_of_range[test]", "labels_out_of_range",
                               "sparse_softmax_cross_entropy", "float32",
                               {"x": x, "targets": np.array([5])}, {}, None, "error_expected")
    planner = AccuracyPlanner.__new__(AccuracyPlanner)
    planner.references = type("Refs", (), {"get": lambda self, c, p: ValueError("none")})()
    task = Task(None, case, "forward")  # type: ignore[arg-type]
    sticky = planner.outcome(task, None, Reply("error", CUDA_ASSERT), None)  # type: ignore
    clean = planner.outcome(task, None, Reply("error", "IndexError: bad"), None)  # type: ignore
    assert (sticky["status"], sticky["verdict"], sticky["severity"]) == (
        "error", "device_assert", "critical")
    assert (clean["verdict"], clean["severity"]) == ("pass", "none")


# ------------------------------------------------------------------ fair attribution
def _padded_pos_inf() -> tuple[np.ndarray, Any]:
    """One +inf row (the family's) and three N(0, 1) padding rows, float32 softmax."""
    rng = np.random.default_rng(3)
    x = np.vstack([[1.0, np.inf, 0.0], rng.standard_normal((3, 3))]).astype(np.float32)
    return x, R.softmax(x)


def test_a_failure_on_a_padding_row_is_charged_to_the_padding() -> None:
    x, ref = _padded_pos_inf()
    got = np.array(ref.rounded(np.float32))
    got[2] = np.float32(1.0 / 3.0)  # a padding row far off
    out = run("softmax", "float32", got, ref, {"x": x}, status="convention", family="pos_inf",
              own_rows=1)
    assert out["verdict"] == "inaccurate" and out["follows_convention"] is True
    assert out["decided_by"] == "padding"
    assert (out["special_verdict"], out["special_severity"]) == ("pass", "none")
    assert out["worst_index"][0] == 2


def test_a_failure_on_the_familys_row_is_charged_to_the_family() -> None:
    x, ref = _padded_pos_inf()
    got = np.array(ref.rounded(np.float32))
    got[0] = np.array([0.5, 0.5, 0.0], np.float32)  # the +inf row: no accepted convention
    got[2] = np.float32(1.0 / 3.0)
    out = run("softmax", "float32", got, ref, {"x": x}, status="convention", family="pos_inf",
              own_rows=1)
    assert out["verdict"] == "inaccurate"
    assert out["special_verdict"] == "convention_differs"
    assert out["decided_by"] == "padding"  # the padding is what made it inaccurate
    worse = np.array(ref.rounded(np.float32))
    worse[1] = np.nan  # the first padding row: NaN where finite, the family's row is fine
    out = run("softmax", "float32", worse, ref, {"x": x}, status="convention",
              family="pos_inf", own_rows=1)
    assert (out["verdict"], out["decided_by"], out["special_verdict"]) == (
        "nan_where_finite", "padding", "pass")
    own = np.array(ref.rounded(np.float32))
    own[0] = np.array([0.5, 0.5, 0.0], np.float32)  # a finite row that is neither
    out = run("softmax", "float32", own, ref, {"x": x}, status="convention", family="pos_inf",
              own_rows=1)
    assert (out["verdict"], out["decided_by"], out["special_verdict"]) == (
        "convention_differs", "special", "convention_differs")


def test_pad_rows_records_the_familys_rows_and_the_case_input_carries_them() -> None:
    case = cases_mod.pos_inf("float32")[0]
    n = case.x.shape[0]
    padded = cases_mod.pad_rows(case, n + 5)
    assert padded.own_rows == n and padded.x.shape[0] == n + 5
    assert cases_mod.pad_rows(padded, n + 9).own_rows == n  # padding twice keeps the count
    inputs = list(cases_mod.case_inputs(padded))
    assert inputs and all(ci.own_rows == n for ci in inputs)
    assert all(ci.own_rows is None for ci in cases_mod.case_inputs(case))


def test_an_exception_on_a_padded_case_is_the_cases_own() -> None:
    out = scoring.score_outcome(op="softmax", pass_="forward", dtype="float32", actual=None,
                                reference=None, inputs={"x": np.zeros((2, 2), np.float32)},
                                case_status="scored", family="smoke_small",
                                raised="RuntimeError: boom", own_rows=1)
    assert (out["verdict"], out["severity"], out["decided_by"]) == ("error", "major", "special")


# ---------------------------------------------------------------------------- the store
def test_new_fields_are_in_the_schema_and_old_records_get_a_derived_severity() -> None:
    names = {f.name for f in results.FIELDS}
    assert {"severity", "norm_ulp", "norm_ratio", "decided_by", "componentwise", "normwise",
            "special_verdict", "special_severity", "max_ulp_nonzero",
            "zero_abs_err"} <= names
    base = {"case_family": "dominant_logit", "status": "ok", "case": "dominant_logit[gap=20]"}
    cases: list[tuple[dict[str, Any], str | None]] = [
             ({"verdict": "inaccurate", "limit_ratio": 2.0}, "minor"),
             ({"verdict": "inaccurate", "limit_ratio": 40.0}, "major"),
             ({"verdict": "inaccurate", "limit_ratio": 2.0,
               "score_message": "1 element(s) 0 where a normal value is exact (lost tail)"},
              "major"),
             ({"verdict": "flushes_subnormals"}, "minor"),
             ({"verdict": "pass"}, "none"),
             ({"verdict": "crash", "status": "crash"}, "critical"),
             ({"verdict": "unsupported", "status": "unsupported"}, None)]
    for extra, want in cases:
        for version in (1, 2):
            up = results.upgrade_record({**base, **extra}, version)
            assert up["severity"] == want, (extra, version)
    up = results.upgrade_record({**base, "verdict": "pass"}, 2)
    assert up["decided_by"] == "none" and up["componentwise"] is True
    padded = results.upgrade_record({**base, "case": "pos_inf[rows=64]", "verdict": "pass"}, 2)
    assert "decided_by" not in padded  # which rows decided was not stored: unknown
    fresh = {**base, "verdict": "inaccurate", "limit_ratio": 2.0, "severity": "major"}
    assert results.upgrade_record(fresh, 3)["severity"] == "major"  # stored wins
