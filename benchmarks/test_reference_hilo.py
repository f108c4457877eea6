"""The float64 ``hi``/``lo`` path: the binary128 tier's rounding test in float64 against the test
in binary128 arithmetic, same rows, same run (issue 13, item 10).

Rows: 64 x 32000 float32 logits from N(0, 3) (those of ``test_reference_speed.py``), cache off,
``hi``/``lo``/``direction`` of softmax, log_softmax and sparse CE. "before" runs the binary128
tier as it was: its rounding test in binary128 arithmetic (``_decide_wide_backend``) and
``x - max`` by TwoSum in binary128; "after" the engine as it is (test in float64 after three
conversions, ``x - max`` from float64 where that is exact). The two alternate, best of two
each, and must agree bit for bit. Run:
``pytest benchmarks/test_reference_hilo.py -m benchmark_reference --benchmark-only -s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import references
from references import _backends, _engine, _kernels

pytestmark = pytest.mark.benchmark_reference

ROWS, CLASSES = 64, 32000


def loadavg() -> str:
    """The 1-minute load average, or "?" where /proc is not there."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


@contextmanager
def binary128_test_in_binary128(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with monkeypatch.context() as m:
        m.setattr(_engine, "_decide_wide",
                  lambda B, v, err, sign: _engine._decide_wide_backend(B, v, err, sign))
        m.setattr(_kernels, "_two_sum_via_float64",
                  lambda B, x, mx, X, M: _backends.two_sum(X, -M))
        yield


CALLS: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "softmax": lambda x, t: references.softmax(x),
    "log_softmax": lambda x, t: references.log_softmax(x),
    "sparse": lambda x, t: references.sparse_softmax_cross_entropy(x, t),
}


@pytest.mark.parametrize("op", list(CALLS))
def test_hi_lo_path_before_and_after(benchmark: Any, monkeypatch: pytest.MonkeyPatch,
                                     op: str) -> None:
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")
    rng = np.random.default_rng(20261127)
    x = rng.normal(0.0, 3.0, (ROWS, CLASSES)).astype(np.float32)
    labels = rng.integers(0, CLASSES, ROWS)
    call = CALLS[op]
    load_before = loadavg()

    def run() -> references.ReferenceResult:
        r = call(x, labels)
        _ = r.hi, r.lo
        return r

    times: dict[str, list[float]] = {"before": [], "after": []}
    results: dict[str, references.ReferenceResult] = {}
    for variant in ("before", "after", "before", "after"):
        start = time.perf_counter()
        if variant == "before":
            with binary128_test_in_binary128(monkeypatch):
                results[variant] = run()
        else:
            results[variant] = run()
        times[variant].append(time.perf_counter() - start)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the timings are ours, above
    before_s, after_s = min(times["before"]), min(times["after"])
    b, a = results["before"], results["after"]
    np.testing.assert_array_equal(a.hi.view(np.uint64), b.hi.view(np.uint64))
    np.testing.assert_array_equal(a.direction, b.direction)
    n = x.size
    benchmark.extra_info.update({
        "op": op, "elements": n, "before_s": before_s, "after_s": after_s,
        "speedup": before_s / after_s, "after_elements_per_s": n / after_s,
        "tiers": a.tier_counts, "loadavg_before": load_before, "loadavg_after": loadavg(),
    })
    print(f"\n{op} hi/lo: before {before_s:.2f} s ({n / before_s / 1e6:.2f} M el/s), after "
          f"{after_s:.2f} s ({n / after_s / 1e6:.2f} M el/s): {before_s / after_s:.2f}x; tiers "
          f"{a.tier_counts}; load {load_before} -> {loadavg()}")
