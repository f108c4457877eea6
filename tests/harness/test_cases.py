"""harness.planning.cases: deterministic, exactly rounded case inputs, per op, every CPU family."""

from __future__ import annotations

import hashlib
import inspect
from collections import Counter, defaultdict
from collections.abc import Iterable

import ml_dtypes
import numpy as np
import pytest

from harness.ops import BACKWARD, FORWARD, OPS
from harness.planning import cases as C
from harness.planning.suites import Suite, SuiteEntry, get_suite

# The family index of docs/cases.md §1: family -> suites column.
CASES_MD_FAMILIES: dict[str, set[str]] = {
    "smoke_small": {"quick"},
    "uniform_row": {"quick", "full"},
    "large_offset": {"quick", "stability"},
    "random_normal": {"quick", "full"},
    "catastrophic_condition": {"full", "stability"},
    "dominant_logit": {"quick", "stability"},
    "vjp_dominant_gap": {"quick", "stability"},
    "two_class_scan": {"full"},
    "overflow_edge": {"stability"},
    "row_near_max": {"stability"},
    "underflow_tail": {"stability"},
    "all_neg_inf": {"stability"},
    "partial_neg_inf": {"quick", "stability"},
    "soft_label_neg_inf_zero_label": {"stability"},
    "neg_inf_at_target": {"stability"},
    "pos_inf": {"stability"},
    "nan_in_row": {"quick", "stability"},
    "masked_large_values": {"stability"},
    "single_class": {"quick"},
    "empty_axis": {"stability"},
    "empty_batch": {"stability"},
    "labels_out_of_range": {"stability"},
    "all_ignored": {"stability"},
    "label_smoothing_weight_ignore": {"full"},
    "soft_labels_off_simplex": {"full"},
    "long_row_low_precision": {"full"},
    "tied_max_low_precision": {"full"},
    "large_array_grad_fp16": {"full"},
    "gpu_width_sweep": {"full"},
    "non_contiguous": {"full"},
    "eager_vs_compiled": {"full"},
    "huge_tensor": {"throughput"},
    "explicit_rows": set(),  # rows written in a suite file (worst-cases.toml): no default cases
}
UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def bits(a: np.ndarray) -> bytes:
    """The exact encoding of an array (so NaN payloads and signed zeros count)."""
    a = np.ascontiguousarray(a)
    return str((a.dtype, a.shape)).encode() + a.tobytes()


def digest(case: C.CaseInput) -> str:
    h = hashlib.sha256()
    for name in sorted(case.inputs):
        h.update(name.encode() + bits(case.inputs[name]))
    if case.cotangent is not None:
        h.update(b"g" + bits(case.cotangent))
    for key in sorted(case.options):
        value = case.options[key]
        h.update(key.encode() + (bits(value) if isinstance(value, np.ndarray) else
                                 repr(value).encode()))
    h.update(repr((case.status, case.backward_status, case.unsupported)).encode())
    return h.hexdigest()


def quick() -> list[C.CaseInput]:
    return list(C.generate(get_suite("quick")))


def one_family(family: str, dtypes: Iterable[str] = (), **params: object) -> Suite:
    """A suite of one family (default: the family's dtypes and all its ops)."""
    return Suite("t", "", (SuiteEntry(family, params, tuple(dtypes)),))


# --------------------------------------------------------------------------------------------
# Determinism and identity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["quick", "stability"])
def test_generate_is_deterministic(name: str) -> None:
    first = [(c.case_id, c.dtype, c.op, digest(c)) for c in C.generate(get_suite(name))]
    second = [(c.case_id, c.dtype, c.op, digest(c)) for c in C.generate(get_suite(name))]
    assert first == second
    assert len({k[:3] for k in first}) == len(first), "a (case, dtype, op) is repeated"


def test_seed_is_sha256_of_the_case_id() -> None:
    cid = "random_normal[sigma=1,C=10]"
    seed = int.from_bytes(hashlib.sha256(cid.encode()).digest()[:8], "little")
    assert C.case_rng(cid).standard_normal(5).tolist() == \
        np.random.default_rng(seed).standard_normal(5).tolist()


def test_a_case_id_determines_the_inputs_in_every_builtin_suite() -> None:
    """The same id and dtype is the same array in quick, stability and full."""
    seen: dict[tuple[str, str, str], str] = {}
    for name in ("quick", "stability", "full"):
        for case in C.generate(get_suite(name)):
            key = (case.case_id, case.dtype, case.op)
            assert seen.setdefault(key, digest(case)) == digest(case), (name, key)


def test_case_ids_follow_the_convention() -> None:
    for case in quick():
        assert case.case_id.startswith(case.family + "[") and case.case_id.endswith("]")
    ids = {c.case_id for c in C.generate(one_family("random_normal", ("float32",), rows=3,
                                                    sigma=[2.0], C=[10], anchor=False))}
    assert ids == {"random_normal[sigma=2,C=10,N=3]"}


def test_same_draws_in_every_dtype() -> None:
    """Seeds do not depend on the dtype: the float16 input is the float64 one rounded."""
    by_dtype = {c.dtype: c for c in C.generate(one_family("random_normal", sigma=[1.0], C=[10],
                                                          anchor=False))
                if c.op == "softmax"}
    x64 = by_dtype["float64"].inputs["x"]
    for name, case in by_dtype.items():
        np.testing.assert_array_equal(bits(case.inputs["x"]), bits(C.round_to(x64, name)))


# --------------------------------------------------------------------------------------------
# Coverage: families, suites, ops
# --------------------------------------------------------------------------------------------


def test_every_cases_md_family_is_generated_or_explained() -> None:
    assert set(C.FAMILIES) | set(C.NOT_GENERATED) == set(CASES_MD_FAMILIES)
    assert not set(C.FAMILIES) & set(C.NOT_GENERATED)


def families_of(name: str) -> set[str]:
    return {e.family for e in get_suite(name).entries}


def test_quick_and_full_hold_every_cpu_family() -> None:
    generated = set(C.FAMILIES) - C.EXPLICIT_FAMILIES
    assert families_of("quick") == generated
    assert families_of("full") == generated


def test_stability_is_the_adversarial_column_of_cases_md() -> None:
    want = {f for f, suites in CASES_MD_FAMILIES.items() if "stability" in suites}
    assert families_of("stability") == want


def test_families_are_in_the_suites_cases_md_names() -> None:
    for family, suites in CASES_MD_FAMILIES.items():
        for suite in suites & {"quick", "stability", "full"}:
            if family in C.FAMILIES:
                assert family in families_of(suite), (family, suite)


def test_quick_runs_every_op_of_every_family_in_its_dtypes() -> None:
    got = {(c.family, c.op, c.dtype) for c in quick()}
    for family in C.FAMILIES.values():
        if family.name in C.EXPLICIT_FAMILIES:
            continue
        for op in family.ops:
            for dtype in family.dtypes:
                assert (family.name, op, dtype) in got, (family.name, op, dtype)
    assert {c.dtype for c in quick()} == set(C.DTYPE_NAMES)


def test_full_has_large_vocabularies_and_scales() -> None:
    normal = [c for c in C.generate(get_suite("full")) if c.family == "random_normal"]
    assert {32000, 50257, 128256} <= {c.n_classes for c in normal}
    sigmas = {c.case_id.split("sigma=")[1].split(",")[0] for c in normal}
    assert {"0.1", "1", "3", "10", "30", "100"} <= sigmas


@pytest.mark.parametrize("family", list(C.FAMILIES))
def test_family_parameters_match_the_generator(family: str) -> None:
    """Declared parameters are the generator's keywords, and its defaults pass validation."""
    spec = C.FAMILIES[family]
    signature = inspect.signature(spec.build)
    keywords = [p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert [p.name for p in keywords] == [p.name for p in spec.params]
    assert set(spec.ops) <= set(OPS) and set(spec.dtypes) <= set(C.DTYPES)
    if family in C.EXPLICIT_FAMILIES:
        return  # no default cases: its rows come from the suite file (test_search.py)
    for dtype in spec.dtypes:
        generated = list(C.generate(one_family(family, (dtype,))))
        assert generated and {c.family for c in generated} == {family}
        assert {c.op for c in generated} == set(spec.ops)


# --------------------------------------------------------------------------------------------
# Records: inputs per op, dtypes, rounding
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["quick", "stability"])
def test_inputs_are_exactly_the_ops_inputs_in_the_dtype(name: str) -> None:
    for case in C.generate(get_suite(name)):
        spec = OPS[case.op]
        dt = C.DTYPES[case.dtype]
        assert tuple(case.inputs) == spec.inputs, case.case_id
        x = case.inputs["x"]
        assert x.dtype == dt and x.ndim == 2 and case.shape == x.shape
        assert (case.n_rows, case.n_classes) == x.shape
        if "labels" in case.inputs:
            assert case.inputs["labels"].dtype == dt and case.inputs["labels"].shape == x.shape
        if "targets" in case.inputs:
            t = case.inputs["targets"]
            if t.dtype == np.int64:
                assert t.shape == x.shape[:1]
            else:
                assert case.op == "cross_entropy" and t.dtype == dt and t.shape == x.shape
        if spec.random_cotangent:
            assert case.cotangent is not None
            assert case.cotangent.dtype == dt and case.cotangent.shape == x.shape
        else:
            assert case.cotangent is None
        assert case.options == {} or case.op == "cross_entropy"
        for value in case.options.values():
            if isinstance(value, np.ndarray):
                assert value.dtype == dt
        assert case.status in C.STATUSES
        assert case.status_for(BACKWARD) in C.STATUSES


def test_inputs_are_rounded_once_from_float64() -> None:
    """The input is RN_dtype of the float64 value, not a cast through float32."""
    v = 1 + 2.0**-8 + 2.0**-30  # just above a bfloat16 midpoint; float32 would land on it
    double = np.array([v]).astype(np.float32).astype(ml_dtypes.bfloat16)
    assert double[0] == ml_dtypes.bfloat16(1.0)  # what a cast through float32 gives
    case = C.make_case("t", {}, "bfloat16", [[v, 0.0]], mix=0)
    assert case.x[0, 0] == ml_dtypes.bfloat16(1 + 2.0**-7)


@pytest.mark.parametrize("dtype", C.DTYPE_NAMES)
def test_generated_values_are_the_rounded_float64_values(dtype: str) -> None:
    """random_normal: x is the seeded float64 draw, times sigma, rounded once."""
    for case in C.generate(one_family("random_normal", (dtype,), sigma=[3.0], C=[1000],
                                      anchor=False)):
        draw = 3.0 * C.case_rng(case.case_id, "/rows").standard_normal((4, 1000))
        assert bits(case.inputs["x"]) == bits(C.round_to(draw, dtype))
        assert case.inputs["x"].dtype == C.DTYPES[dtype]


def test_special_rows_are_mixed_with_ordinary_rows() -> None:
    (case,) = [c for c in C.generate(one_family("nan_in_row", ("float64",))) if c.op == "softmax"]
    x = case.inputs["x"]
    assert x.shape == (9, 5)
    finite_rows = [i for i in range(9) if np.all(np.isfinite(x[i]))]
    assert finite_rows == [0, 8]  # one ordinary row before the special rows, one after


def test_arrays_are_read_only() -> None:
    case = quick()[0]
    with pytest.raises(ValueError):
        case.inputs["x"][0, 0] = 0


def test_prescribed_cotangents() -> None:
    (case,) = [c for c in C.generate(one_family("vjp_dominant_gap", ("float64",),
                                                gap=[37.42994775023705]))
               if c.op == "log_softmax"]
    assert case.case_id == "vjp_dominant_gap[gap=37.42994775023705]"
    assert case.cotangent is not None
    np.testing.assert_array_equal(case.cotangent[1:4], [[1, 0], [1, 1], [0, 1]])
    np.testing.assert_array_equal(case.inputs["x"][1], [37.42994775023705, 0.0])
    (grad,) = [c for c in C.generate(one_family("large_array_grad_fp16", ("float16",)))]
    assert grad.cotangent is not None and np.all(grad.cotangent == 1)


def test_probability_targets_for_cross_entropy() -> None:
    cases = list(C.generate(one_family("label_smoothing_weight_ignore", ("float32",),
                                       eps=[0.1], weight=[True], reduction=["mean"],
                                       target=["prob"], errors=False)))
    (case,) = cases
    assert case.inputs["targets"].shape == case.shape
    assert case.options["label_smoothing"] == 0.1 and case.options["reduction"] == "mean"
    assert case.options["weight"].dtype == np.float32


# --------------------------------------------------------------------------------------------
# Status and unsupported cases
# --------------------------------------------------------------------------------------------


def statuses(family: str, dtype: str = "float32") -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for case in C.generate(one_family(family, (dtype,))):
        for pass_ in (FORWARD, BACKWARD):
            out[(case.op, pass_)].add(case.status_for(pass_))
    return out


def test_statuses_follow_cases_md() -> None:
    assert statuses("labels_out_of_range") == {
        ("sparse_softmax_cross_entropy", FORWARD): {"error_expected"},
        ("sparse_softmax_cross_entropy", BACKWARD): {"error_expected"},
    }
    s = statuses("empty_axis")
    assert s[("softmax", FORWARD)] == s[("softmax", BACKWARD)] == {"convention"}
    for op in ("softmax_cross_entropy", "sparse_softmax_cross_entropy"):
        assert s[(op, FORWARD)] == s[(op, BACKWARD)] == {"error_expected"}
    for family in ("all_neg_inf", "pos_inf"):
        s = statuses(family)
        assert s.pop(("logsumexp", FORWARD)) == {"scored"}
        assert set().union(*s.values()) == {"convention"}
    s = statuses("neg_inf_at_target")
    assert s[("sparse_softmax_cross_entropy", FORWARD)] == {"scored"}
    assert s[("sparse_softmax_cross_entropy", BACKWARD)] == {"convention"}
    by_id = {c.case_id: c.status for c in C.generate(one_family("empty_batch", ("float32",)))
             if c.op == "cross_entropy"}
    assert by_id["empty_batch[shape=0x4,reduction=mean]"] == "convention"
    assert by_id["empty_batch[shape=0x4,reduction=sum]"] == "scored"
    lswi = Counter(c.status for c in C.generate(one_family("label_smoothing_weight_ignore",
                                                           ("float64",))))
    assert lswi == {"scored": 4 * 2 * 3 * 2, "error_expected": 2}


def test_unrepresentable_parameters_are_unsupported_not_dropped() -> None:
    cases = list(C.generate(one_family("large_offset", ("float16", "float32"))))
    unsupported = {(c.case_id, c.dtype) for c in cases if c.unsupported}
    assert unsupported == {
        (f"large_offset[c={c},C={n}]", "float16") for c in ("1e+08", "1e+20") for n in (3, 2)
    }
    for case in cases:
        if case.unsupported:
            assert case.unsupported == C.UNREPRESENTABLE == "unrepresentable in dtype"
            assert case.shape[0] > 0  # the record still knows its shape
    per_op = Counter(c.op for c in cases if c.unsupported)
    assert set(per_op) == set(C.FAMILIES["large_offset"].ops) and set(per_op.values()) == {4}
    masked = [c for c in C.generate(one_family("masked_large_values", ("float16",),
                                               mask=["-1e9"]))]
    assert masked and all(c.unsupported == C.UNREPRESENTABLE for c in masked)


def test_stability_reports_its_unsupported_cases() -> None:
    got = Counter((c.dtype, c.unsupported) for c in C.generate(get_suite("stability")))
    assert got[("float16", C.UNREPRESENTABLE)] == 20
    assert not any(reason for (dtype, reason) in got if dtype != "float16")


# --------------------------------------------------------------------------------------------
# Padding to a common row count (suite entries' ``rows``)
# --------------------------------------------------------------------------------------------


def test_pad_rows_appends_ordinary_rows_and_keeps_the_special_ones() -> None:
    (case,) = C.FAMILIES["dominant_logit"].cases("float32", gap=[20.0], C=[2])
    padded = C.pad_rows(case, 8)
    assert padded.case_id == "dominant_logit[gap=20,C=2,rows=8]"
    assert padded.x.shape == (8, 2) and padded.x.dtype == case.x.dtype
    n = case.x.shape[0]
    for name in ("x", "labels", "targets", "cotangent"):
        original, grown = getattr(case, name), getattr(padded, name)
        np.testing.assert_array_equal(bits(grown[:n]), bits(original))
        assert len(grown) == 8
    extra = padded.x[n:].astype(np.float64)
    assert np.all(np.isfinite(extra)) and np.all(np.abs(extra) < 8)  # N(0, 1) rows
    assert set(padded.targets[n:].tolist()) <= {0, 1}
    np.testing.assert_allclose(padded.labels[n:].astype(np.float64).sum(axis=1), 1, atol=1e-6)
    assert padded.calls == case.calls and padded.status == case.status
    assert bits(C.pad_rows(case, 8).x) == bits(padded.x)  # deterministic


def test_pad_rows_leaves_empty_and_tall_cases_alone() -> None:
    empty = C.FAMILIES["empty_batch"].cases("float32", reduction=["none"])[0]
    no_classes = C.FAMILIES["empty_axis"].cases("float32")[0]
    (tall,) = C.FAMILIES["underflow_tail"].cases("float16", C=[2], mix=1)  # 7 gaps + 1 row
    for case in (empty, no_classes, tall):
        assert C.pad_rows(case, 8) is case
    (bare,) = C.FAMILIES["overflow_edge"].cases("float64")
    assert C.pad_rows(bare, 9).case_id.endswith(",C=4,rows=9]")


def test_a_suite_entry_pads_its_cases() -> None:
    suite = Suite("t", "", (SuiteEntry("pos_inf", {"C": [2, 3]}, ("float16",), rows=6),))
    shapes = {(c.case_id, c.shape) for c in C.generate(suite)}
    assert shapes == {("pos_inf[C=2,rows=6]", (6, 2)), ("pos_inf[C=3,rows=6]", (6, 3))}


@pytest.mark.parametrize("family, params, width", [
    ("nan_in_row", {"C": 4}, 4), ("masked_large_values", {"C": 4, "mask": ["-1e4"]}, 4),
    ("neg_inf_at_target", {"C": 5, "kind": ["C3"]}, 5)])
def test_families_with_a_width(family: str, params: dict[str, object], width: int) -> None:
    for case in C.FAMILIES[family].cases("float32", **params):
        assert case.x.shape[1] == width and f"C={width}" in case.case_id
        if family == "nan_in_row":  # every special row holds a NaN
            assert np.isnan(case.x[1:8].astype(np.float64)).any(axis=1).all()
        if family == "neg_inf_at_target":  # the -inf targets stay -inf
            rows = np.arange(case.x.shape[0])
            assert np.isneginf(case.x.astype(np.float64)[rows, case.targets]).any()


# --------------------------------------------------------------------------------------------
# The quick suite stays small
# --------------------------------------------------------------------------------------------

QUICK_MAX_SHAPES_PER_OP_AND_DTYPE = 8  # compiled modes compile once per shape: the run time
QUICK_MAX_CASES_PER_DTYPE = 110  # (case, op) records: every family once, every op it applies to
QUICK_MAX_ROWS = 8
QUICK_MAX_NARROW_CLASSES = 1024
QUICK_MAX_WIDE_ROWS_PER_DTYPE = 1  # rows of 4096-32768 classes
QUICK_MAX_ELEMENTS_PER_DTYPE = 16_000  # distinct logits (each case once, whatever its ops)


def test_quick_suite_size_bound() -> None:
    per_dtype: dict[str, list[C.CaseInput]] = defaultdict(list)
    for case in quick():
        per_dtype[case.dtype].append(case)
    assert set(per_dtype) == set(C.DTYPE_NAMES)
    for dtype, cases in per_dtype.items():
        assert len(cases) <= QUICK_MAX_CASES_PER_DTYPE, (dtype, len(cases))
        distinct = {c.case_id: c for c in cases}
        assert len(distinct) <= 40, (dtype, len(distinct))
        wide_rows = 0
        for case in distinct.values():
            assert case.n_rows <= QUICK_MAX_ROWS, case.case_id
            if case.n_classes > QUICK_MAX_NARROW_CLASSES:
                assert 4096 <= case.n_classes <= 32768, case.case_id
                wide_rows += case.n_rows
        assert wide_rows <= QUICK_MAX_WIDE_ROWS_PER_DTYPE, dtype
        elements = sum(c.inputs["x"].size for c in distinct.values())
        assert elements <= QUICK_MAX_ELEMENTS_PER_DTYPE, (dtype, elements)


def test_quick_suite_shares_few_shapes() -> None:
    """Run time follows the number of distinct (op, dtype, shape): each costs a compile in
    every compiled implementation (README, harness run time)."""
    shapes: dict[tuple[str, str], set[tuple[int, ...]]] = defaultdict(set)
    for case in quick():
        shapes[(case.op, case.dtype)].add(case.shape)
    worst = max(shapes.items(), key=lambda kv: len(kv[1]))
    assert len(worst[1]) <= QUICK_MAX_SHAPES_PER_OP_AND_DTYPE, worst
    assert sum(len(v) for v in shapes.values()) <= 150


# --------------------------------------------------------------------------------------------
# Expectations: each family declares what it expects beyond accuracy
# --------------------------------------------------------------------------------------------


def test_adversarial_families_are_the_stability_suites() -> None:
    adversarial = {name for name, family in C.FAMILIES.items() if family.adversarial}
    assert adversarial == families_of("stability")


def test_families_with_convention_or_error_cases_declare_their_special_rows() -> None:
    """Wherever a case is judged by convention, its family says which rows are special."""
    from harness.planning.cases.expectations import no_rows

    judged = {c.family for c in C.generate(get_suite("full"))
              if {c.status_for(FORWARD), c.status_for(BACKWARD)} - {"scored"}}
    assert judged
    for name in judged:
        assert C.FAMILIES[name].expects.special_rows is not no_rows, name


def test_declared_alternatives_are_for_the_familys_ops_and_passes() -> None:
    for name, family in C.FAMILIES.items():
        for (op, pass_), alternatives in family.expects.alternatives.items():
            assert op in OPS and pass_ in (FORWARD, BACKWARD), (name, op, pass_)
            assert alternatives and all(isinstance(what, str) and callable(match)
                                        for what, match in alternatives), (name, op, pass_)
        if family.expects.alternatives or family.expects.raising_accepted:
            assert family.status != "scored" or family.overrides, name


def test_an_unknown_family_expects_nothing() -> None:
    expects = C.expectations_of("a_plugins_family")
    assert expects is C.NO_EXPECTATIONS
    assert not expects.raising_accepted and expects.accepted("softmax", FORWARD) == ()
    x = np.zeros((3, 2))
    assert not expects.special_rows("softmax", x, {"x": x}).any()
    assert C.expectations_of("pos_inf") is C.FAMILIES["pos_inf"].expects


def test_special_rows_of_the_infinity_families() -> None:
    inf = np.inf
    x = np.array([[-inf, -inf], [0.0, -inf], [inf, 0.0], [1.0, 2.0]])
    inputs = {"x": x, "targets": np.array([0, 0, 1, 5])}
    rows = {name: C.expectations_of(name).special_rows("sparse_softmax_cross_entropy", x, inputs)
            for name in ("all_neg_inf", "pos_inf", "neg_inf_at_target", "labels_out_of_range",
                         "empty_axis", "smoke_small")}
    assert rows["all_neg_inf"].tolist() == [True, False, False, False]
    assert rows["pos_inf"].tolist() == [False, False, True, False]
    assert rows["neg_inf_at_target"].tolist() == [True, False, False, False]
    assert rows["labels_out_of_range"].tolist() == [False, False, False, True]
    assert rows["empty_axis"].all() and not rows["smoke_small"].any()
