"""Input validation, shapes and axes, the cache, and the closed forms of the reference API."""

from __future__ import annotations

import math
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import references
from references import cache

X = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])


@pytest.mark.parametrize("bad, kind", [
    (np.array([[1, 2, 3]]), TypeError),
    (np.array([[1 + 1j, 2]]), TypeError),
    (np.array([["a", "b"]], dtype=object), TypeError),
])
def test_non_float_logits_are_rejected(bad: np.ndarray, kind: type) -> None:
    with pytest.raises(kind, match="x must be a float16, bfloat16, float32 or float64 array"):
        references.softmax(bad)


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 3]), r"labels must lie in \[0, 3\)"),
    (np.array([0, -1]), r"labels must lie in \[0, 3\)"),
    (np.array([0.5, 1.0]), "labels must be integers"),
    (np.array([0, 1, 2]), "labels must have shape"),
    (np.array(["a", "b"]), "labels must be an integer array"),
])
def test_bad_sparse_labels_are_rejected(labels: np.ndarray, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        references.sparse_softmax_cross_entropy(X, labels)


def test_dense_labels_must_match_and_be_finite() -> None:
    with pytest.raises(ValueError, match="labels must have shape"):
        references.softmax_cross_entropy(X, np.ones((2, 2)))
    with pytest.raises(ValueError, match="labels must be finite"):
        references.softmax_cross_entropy(X, np.full((2, 3), np.nan))


@pytest.mark.parametrize("kwargs, message", [
    ({"label_smoothing": 1.5}, r"label_smoothing must lie in \[0, 1\]"),
    ({"label_smoothing": -0.1}, r"label_smoothing must lie in \[0, 1\]"),
    ({"reduction": "avg"}, "reduction must be one of none, sum, mean"),
    ({"weight": np.ones(2)}, "weight must have shape"),
    ({"ignore_index": 1.5}, "ignore_index must be an integer"),
])
def test_bad_cross_entropy_options_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        references.cross_entropy(X, np.array([0, 1]), **kwargs)


def test_cross_entropy_probability_targets_need_a_negative_ignore_index() -> None:
    with pytest.raises(ValueError, match="ignore_index must be negative"):
        references.cross_entropy(X, np.full((2, 3), 1 / 3), ignore_index=0)


def test_axis_is_honoured_and_checked() -> None:
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    along0 = references.softmax(x, axis=0).hi
    moved = references.softmax(np.moveaxis(x, 0, -1)).hi
    np.testing.assert_array_equal(along0, np.moveaxis(moved, -1, 0))
    assert references.logsumexp(x, axis=1).hi.shape == (3, 5)
    with pytest.raises(ValueError, match="axis=3 is out of range"):
        references.softmax(x, axis=3)


def test_closed_forms() -> None:
    ln2 = math.log(2.0)
    r = references.softmax(np.array([0.0, ln2]))
    third = 1 / (1 + math.exp(ln2))  # the exact input is the float64 ln2, not ln 2 itself
    assert abs(r.hi[0] - third) <= 2e-16 and r.rounded(np.float32)[0] == np.float32(1 / 3)
    assert references.softmax(np.array([[1.0, 1.0, 1.0, 1.0]])).hi.tolist() == [[0.25] * 4]
    assert references.log_softmax(np.array([[5.0, 5.0]])).hi[0, 0] == -ln2
    assert references.logsumexp(np.array([[0.0, 0.0]])).hi[0] == ln2


@pytest.mark.parametrize("x, expected", [
    # CE of a dominant winning class ~ e^-gap (never 0)
    ([40.0, 0.0], math.exp(-40.0)),
    ([700.0, 0.0], math.exp(-700.0)),
])
def test_no_cancellation_in_a_dominant_row(x: list[float], expected: float) -> None:
    row = np.array([x])
    ce = references.sparse_softmax_cross_entropy(row, np.array([0])).hi[0]
    assert ce == pytest.approx(expected, rel=1e-15)
    ls = references.log_softmax(row).hi[0, 0]
    assert ls == pytest.approx(-expected, rel=1e-15)
    grad = references.sparse_softmax_cross_entropy_grad(row, np.array([0])).hi[0, 0]
    assert grad == pytest.approx(-expected, rel=1e-15)  # 1 - p_y, not 0


def test_logsumexp_near_zero_keeps_relative_precision() -> None:
    # lse([a, a]) = a + ln 2 with a the float64 nearest -ln 2: a tiny, nonzero result
    a = -math.log(2.0)
    value = references.logsumexp(np.array([[a, a]]))
    exact = float(np.float64(a)) + 0.6931471805599453094172321214581765680755  # ln 2
    assert value.hi[0] != 0 and value.hi[0] == pytest.approx(exact, rel=1e-12)
    assert abs(value.hi[0]) < 1e-16


def test_float32_log_softmax_of_a_far_tail_breaks_the_tie_right() -> None:
    # docs/numerics.md §10.2: -1000000032 - e^-1000000032 rounds to -1000000064 in float32
    r = references.log_softmax(np.array([[32.0, -1e9]], dtype=np.float32))
    assert r.rounded(np.float32)[0, 1] == np.float32(-1000000064.0)
    assert r.direction[0, 1] == -1


def test_bfloat16_inputs_are_taken_exactly() -> None:
    x = np.array([[1.0078125, 3.0]], dtype=ml_dtypes.bfloat16)
    assert references.logsumexp(x).hi[0] == references.logsumexp(x.astype(np.float64)).hi[0]


def test_results_are_cached_and_a_corrupt_entry_is_recomputed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    x = np.random.default_rng(1).normal(size=(2, 50))
    first = references.softmax(x).hi.copy()
    entries = list(tmp_path.rglob("*.npz"))
    assert len(entries) == 1
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # truncate it
    again = references.softmax(x).hi
    np.testing.assert_array_equal(first, again)
    assert cache.load(entries[0].stem) is not None  # rewritten and verified


def test_a_tampered_cache_entry_fails_verification(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    cache.store("ab" * 32, {"hi": np.arange(3.0)})
    path = next(tmp_path.rglob("*.npz"))
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["hi"] = np.arange(3.0) + 1
    np.savez(path, **arrays)
    assert cache.load("ab" * 32) is None
    assert not path.exists()


def test_cache_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _ = references.softmax(np.array([[1.0, 2.0]])).hi
    assert not list(tmp_path.rglob("*"))
    assert cache.cache_dir() is None


def test_default_cache_location_follows_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert cache.cache_dir() == Path("/somewhere/softmax-bench")
