"""Hypothesis strategies for adversarial logits, built from the harness's case families.

``family_cases(op, ...)`` draws whole cases of a suite (the inputs that break kernels: large
offsets, dominant logits, underflowing tails, masks, infinities, ...). ``adversarial_logits``
draws fresh arrays in the same spirit: each row is one of the families' patterns with drawn
parameters (a common offset up to the dtype's largest value, one dominant logit, a tail that
underflows, finfo.min or -inf masks, ties, ordinary N(0, sigma) rows), rounded once, exactly,
to the dtype. Pair them with ``hypothesis.target`` on the ULP error to steer the search::

    @given(adversarial_logits("float32"))
    def test_my_softmax(x):
        result = softmax_bench.testing.score(my_softmax(x), x)
        hypothesis.target(result.max_ulp or 0.0, label="max ulp")
        assert result.passed, result.message

Importing this module imports hypothesis (a test dependency, not one of softmax-bench's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from harness.planning.cases import round_to, thresholds
from softmax_bench.testing._cases import Case, cases

PATTERNS: tuple[str, ...] = ("normal", "large_offset", "dominant_logit", "underflow_tail",
                             "masked", "ties", "wide_range")


def family_cases(op: str = "softmax", *, suite: str = "stability",
                 dtypes: Iterable[str] | str = ("float32",),
                 families: Iterable[str] | str | None = None,
                 include_special: bool = True) -> st.SearchStrategy[Case]:
    """A case of ``suite`` for ``op`` (unsupported ones left out; ``include_special=False``
    leaves out convention and error-expected cases too)."""
    found = [c for c in cases(op, suite=suite, dtypes=dtypes, families=families)
             if c.unsupported is None and (include_special or c.status == "scored")]
    if not found:
        raise ValueError(f"suite {suite!r} has no usable case for {op} in {dtypes}")
    return st.sampled_from(found)


@st.composite
def _row(draw: Any, dtype: str, classes: int, pattern: str) -> list[float]:
    big = float(thresholds(dtype).max)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sigma = draw(st.sampled_from([0.1, 1.0, 10.0]))
    row = rng.standard_normal(classes) * sigma
    if pattern == "large_offset":
        frac = draw(st.sampled_from([1e-3, 0.5, 0.9, 0.99, 1.0]))
        row = row + draw(st.sampled_from([-1.0, 1.0])) * frac * big * 0.999
    elif pattern == "dominant_logit":
        gap = draw(st.floats(5.0, 200.0))
        row[draw(st.integers(0, classes - 1))] = float(row.max()) + gap
    elif pattern == "underflow_tail":
        row = np.full(classes, 0.0)
        row[1:] = -draw(st.floats(10.0, 1e4)) + rng.standard_normal(classes - 1)
    elif pattern == "masked":
        mask_value = draw(st.sampled_from([-np.inf, -big, -1e9]))
        keep = rng.random(classes) < 0.5
        keep[draw(st.integers(0, classes - 1))] = True
        row = np.where(keep, row, mask_value)
    elif pattern == "ties":
        row = np.full(classes, draw(st.sampled_from([0.0, 1.0, -50.0, 80.0])))
    elif pattern == "wide_range":
        row = rng.uniform(-1, 1, classes) * draw(st.sampled_from([50.0, 1e3, 1e4]))
    return [float(v) for v in row]


@st.composite
def adversarial_logits(draw: Any, dtype: str = "float32", *, max_rows: int = 8,
                       max_classes: int = 64, min_classes: int = 2,
                       patterns: Iterable[str] = PATTERNS) -> np.ndarray:
    """An (N, C) array of ``dtype`` whose rows follow the case families' patterns."""
    chosen = tuple(patterns)
    unknown = sorted(set(chosen) - set(PATTERNS))
    if unknown:
        raise ValueError(f"unknown patterns {unknown}; expected some of {', '.join(PATTERNS)}")
    n = draw(st.integers(1, max_rows))
    c = draw(st.integers(min_classes, max_classes))
    rows = [draw(_row(dtype, c, draw(st.sampled_from(chosen)))) for _ in range(n)]
    out: np.ndarray = round_to(np.array(rows, dtype=np.float64), dtype)
    return out


@st.composite
def sparse_labels(draw: Any, x: np.ndarray) -> np.ndarray:
    """Integer class labels for the rows of ``x`` (class axis last)."""
    n, c = int(np.prod(x.shape[:-1])), x.shape[-1]
    labels = draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n))
    return np.array(labels, dtype=np.int64).reshape(x.shape[:-1])


__all__ = ["PATTERNS", "adversarial_logits", "family_cases", "sparse_labels"]
