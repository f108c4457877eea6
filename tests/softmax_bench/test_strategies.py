"""softmax_bench.testing.strategies: adversarial logits from the case families."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, target

from softmax_bench.testing import Case, score
from softmax_bench.testing.strategies import adversarial_logits, family_cases, sparse_labels


def stable_softmax(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        e = np.exp(x - np.where(np.isfinite(m), m, 0))
        return e / e.sum(axis=-1, keepdims=True)


@settings(max_examples=25, deadline=None)
@given(adversarial_logits("float32", max_rows=4, max_classes=16))
def test_a_stable_softmax_passes_with_target(x: np.ndarray) -> None:
    assert x.dtype == np.float32 and x.ndim == 2
    result = score(stable_softmax(x), x, "softmax")
    target(result.max_ulp or 0.0, label="max ulp")
    assert result.passed, result.message


@settings(max_examples=25, deadline=None)
@given(family_cases("softmax", suite="quick", include_special=False))
def test_family_cases_are_cases(case: Case) -> None:
    assert case.op == "softmax" and case.unsupported is None and case.status == "scored"


def test_the_strategies_find_the_naive_kernels_bug() -> None:
    found: list[str] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(adversarial_logits("float32", patterns=["large_offset", "normal"]))
    def naive(x: np.ndarray) -> None:
        with np.errstate(all="ignore"):
            e = np.exp(x)
            y = e / e.sum(axis=-1, keepdims=True)
        result = score(y, x)
        if not result.passed:
            found.append(result.verdict)
            raise AssertionError(result.message)

    try:
        naive()
    except AssertionError:
        pass
    assert found, "the large_offset pattern should break exp(x)/sum(exp(x))"


@settings(max_examples=10, deadline=None)
@given(adversarial_logits("bfloat16", max_rows=3).flatmap(
    lambda x: sparse_labels(x).map(lambda lab: (x, lab))))
def test_sparse_labels_fit_the_logits(pair: tuple[np.ndarray, np.ndarray]) -> None:
    x, labels = pair
    assert labels.shape == x.shape[:-1] and labels.dtype == np.int64
    assert ((labels >= 0) & (labels < x.shape[-1])).all()
