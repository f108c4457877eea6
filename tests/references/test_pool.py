"""references.pool.ReferencePool: results from worker processes, bit for bit the inline ones,
fully materialised (using them touches no global precision), errors returned, tier counts."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import flint
import ml_dtypes
import mpmath
import numpy as np
import pytest

import references
from references import _engine, metrics
from references.pool import ReferencePool

DTYPES = (np.float16, ml_dtypes.bfloat16, np.float32, np.float64)


def _calls() -> list[tuple[str, str, list[Any], dict[str, Any]]]:
    rng = np.random.default_rng(12)
    x = rng.normal(0, 3, (3, 40)).astype(np.float32)
    x[0, 1::2] = -1e9  # escalates past binary128
    xb = x.astype(ml_dtypes.bfloat16)
    g = rng.normal(size=x.shape)
    labels = rng.integers(0, 40, 3)
    y = rng.dirichlet(np.ones(40), 3)
    return [
        ("sm", "softmax", [x], {}),
        ("ls-axis0", "log_softmax", [x], {"axis": 0}),
        ("lse-bf16", "logsumexp", [xb], {}),
        ("vjp", "softmax_vjp", [x, g], {}),
        ("lsvjp", "log_softmax_vjp", [x, g], {}),
        ("lse-grad", "logsumexp_grad", [x], {"axis": -1, "g": None}),
        ("sparse", "sparse_softmax_cross_entropy_grad", [x, labels], {}),
        ("dense", "softmax_cross_entropy", [x, y], {}),
        ("ce", "cross_entropy", [x, labels],
         {"weight": [float(v) for v in np.linspace(0.5, 2, 40)], "label_smoothing": 0.1,
          "reduction": "none"}),
        ("ce-mean", "cross_entropy_grad", [x, labels], {"ignore_index": 3}),
    ]


def _inline(function: str, args: list[Any], kwargs: dict[str, Any]) -> references.ReferenceResult:
    opts = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in kwargs.items()}
    return getattr(references, function)(*args, **opts)


def _same(a: references.ReferenceResult, b: references.ReferenceResult) -> None:
    for name in ("hi", "lo"):
        np.testing.assert_array_equal(getattr(a, name).view(np.uint64),
                                      getattr(b, name).view(np.uint64), err_msg=name)
    np.testing.assert_array_equal(a.direction, b.direction)
    np.testing.assert_array_equal(a.undecided, b.undecided)
    for dt in DTYPES:
        ra, rb = a.rounded(dt), b.rounded(dt)
        np.testing.assert_array_equal(ra.view(f"u{ra.itemsize}"), rb.view(f"u{rb.itemsize}"))


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    mp = pytest.MonkeyPatch()
    mp.setenv("SOFTMAX_BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        with ReferencePool(jobs=2) as pool:
            for key, function, args, kwargs in _calls():
                pool.submit(key, function, args, kwargs)
                pool.submit(key, function, args, kwargs)  # idempotent
            bad = np.zeros((2, 4), np.float32)
            pool.submit("bad-labels", "sparse_softmax_cross_entropy", [bad, np.array([0, 9])],
                        {})
            out = {key: pool.result(key) for key, *_ in _calls()}
            out["bad-labels"] = pool.result("bad-labels")
            out["__counts__"] = pool.tier_counts()
        yield out
    finally:
        mp.undo()


def test_pooled_results_are_bit_identical_to_inline(pooled: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Any) -> None:
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")
    for key, function, args, kwargs in _calls():
        got = pooled[key]
        assert isinstance(got, references.ReferenceResult), (key, got)
        _same(got, _inline(function, args, kwargs))


def test_errors_come_back_as_the_same_exception(pooled: dict[str, Any]) -> None:
    err = pooled["bad-labels"]
    with pytest.raises(ValueError) as inline:
        references.sparse_softmax_cross_entropy(np.zeros((2, 4), np.float32), np.array([0, 9]))
    assert type(err) is ValueError and str(err) == str(inline.value)


def test_tier_counts_are_real(pooled: dict[str, Any]) -> None:
    counts = pooled["__counts__"]
    assert counts.get("arb", 0) >= 1, counts  # the rows with -1e9 entries
    assert sum(counts.values()) >= 3 * len(_calls()) - 10, counts
    assert set(counts) <= {"special", "exact", "float64", "binary128", "arb", "mpmath",
                           "undecided", "cache"}


def test_using_a_pooled_result_touches_no_global_precision(pooled: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    def forbidden(*a: Any, **k: Any) -> Any:
        raise AssertionError("a materialised result computed something")

    for name in ("solve_wide_counted", "solve_narrow_counted", "solve_total"):
        monkeypatch.setattr(_engine, name, forbidden)
    monkeypatch.setattr(mpmath, "workprec", forbidden)
    monkeypatch.setattr(type(mpmath.mp), "prec", property(forbidden, forbidden))
    monkeypatch.setattr(type(flint.ctx), "prec", property(forbidden, forbidden))
    for key, *_ in _calls():
        res = pooled[key]
        for dt in DTYPES:
            z = res.rounded(dt)
            err = metrics.ulp_error(z, res, dt)
            assert err.max in (0.0, None) or err.max <= 0.5, (key, dt, err.max)


def test_pooled_results_are_thread_safe(pooled: dict[str, Any]) -> None:
    """Many threads score against pooled results while others change mpmath's and Arb's
    precision: every thread sees the same numbers."""
    keys = [key for key, *_ in _calls()]

    def actual(k: str, dt: Any) -> np.ndarray:
        with np.errstate(over="ignore"):
            return pooled[k].rounded(np.float64).astype(dt)  # float64 values, cast: not exact

    expected = {(k, np.dtype(dt).name): metrics.ulp_error(actual(k, dt), pooled[k], dt).ulps
                for k in keys for dt in DTYPES}
    failures: list[str] = []
    stop = threading.Event()

    def churn() -> None:
        bits = 53
        while not stop.is_set():
            bits = 53 + (bits * 7) % 300
            mpmath.mp.prec = bits
            flint.ctx.prec = bits

    def score() -> None:
        for _ in range(5):
            for (k, dtn), want in expected.items():
                dt = ml_dtypes.bfloat16 if dtn == "bfloat16" else np.dtype(dtn)
                got = metrics.ulp_error(actual(k, dt), pooled[k], dt)
                if not np.array_equal(got.ulps, want, equal_nan=True):
                    failures.append(f"{k} {dtn}")

    saved = mpmath.mp.prec, flint.ctx.prec
    threads = [threading.Thread(target=churn)] + [threading.Thread(target=score)
                                                 for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads[1:]:
            t.join()
    finally:
        stop.set()
        threads[0].join()
        mpmath.mp.prec, flint.ctx.prec = saved
    assert not failures, failures[:5]


def test_inline_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")
    x = np.array([[0.0, -1e9, 1.0]], np.float32)
    with ReferencePool(jobs=0) as pool:
        assert pool.jobs == 0
        pool.submit("a", "log_softmax", [x], {})
        pool.submit("e", "sparse_softmax_cross_entropy", [x, np.array([5])], {})
        res = pool.result("a")
        assert isinstance(res, references.ReferenceResult)
        _same(res, references.log_softmax(x))
        assert isinstance(pool.result("e"), ValueError)
        assert pool.tier_counts() == {"arb": 1}
        with pytest.raises(KeyError):
            pool.result("missing")
        with pytest.raises(ValueError):
            pool.submit("f", "not_a_reference", [x], {})
    with pytest.raises(RuntimeError):
        pool.submit("g", "softmax", [x], {})


def test_default_jobs_follow_the_affinity() -> None:
    import os

    with ReferencePool() as pool:
        assert pool.jobs == len(os.sched_getaffinity(0))


def test_threads_waiting_on_the_same_key_all_get_the_result() -> None:
    """Two runner threads scoring one case wait on one future; the files it left are read once."""
    x = np.array([[0.0, -1e9, 3.0, 2.0]], dtype=np.float32)
    expected = references.softmax(x).hi
    with ReferencePool(jobs=1) as pool:
        for attempt in range(5):
            key = f"same-{attempt}"
            pool.submit(key, "softmax", [x], {})
            got: list[object] = []

            def wait(key: str = key, got: list[object] = got) -> None:
                got.append(pool.result(key))

            threads = [threading.Thread(target=wait) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(got) == 4
            for result in got:
                assert isinstance(result, references.ReferenceResult)
                assert np.array_equal(result.hi, expected)


def test_children_use_the_cache_setting_of_the_submitting_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forkserver child inherits the forkserver's environment, which the first pool of the
    process fixed; the cache directory in effect when a task is submitted must win."""
    x = np.array([[0.0, -1e9, 3.0, 2.0]], dtype=np.float32)
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", str(first))
    with ReferencePool(jobs=1) as pool:
        pool.submit("a", "softmax", [x], {})
        assert isinstance(pool.result("a"), references.ReferenceResult)
    assert any(first.rglob("*.npz"))
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", str(second))
    with ReferencePool(jobs=1) as pool:
        pool.submit("a", "softmax", [x], {})
        pool.result("a")
        counts = pool.tier_counts()
    assert "cache" not in counts, counts  # computed again, not read from the first directory
    assert any(second.rglob("*.npz"))
