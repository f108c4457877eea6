"""Reference throughput: the certified fast path against plain mpmath, same rows, same run.

Run with ``make bench`` (or ``pytest benchmarks -m benchmark_reference --benchmark-only``).
Rows: 64 x 32000 float32 logits drawn from N(0, 3), sparse labels uniform. The cache is off so
every figure is a cold computation. "Plain mpmath" is the straightforward evaluation at 113
bits (shift by the maximum, one exp per element, fsum, divide or log), with no certification:
what a reference costs without the fast path. It is the fairest plain version we know of: each
exponential is evaluated once and reused (an earlier baseline evaluated them twice for softmax,
which flattered the fast path by about 2x). The load average (/proc/loadavg) before and after
each measurement is printed and kept in ``extra_info``: the machine is shared, and the ratio
moves with the load (README, "Reference engine performance").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest

import references

pytestmark = pytest.mark.benchmark_reference

ROWS, CLASSES = 64, 32000
FLOAT32_TARGET = 20.0  # the fast float32 path must be at least this many times plain mpmath


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261127)
    x = rng.normal(0.0, 3.0, (ROWS, CLASSES)).astype(np.float32)
    return x, rng.integers(0, CLASSES, ROWS)


@pytest.fixture(autouse=True)
def cold_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")


def _plain_row(op: str, row: np.ndarray, label: int) -> list[float]:
    vals = [mpmath.mpf(float(v)) for v in row]
    m = max(vals)
    d = [v - m for v in vals]
    e = [mpmath.exp(v) for v in d]  # one exponential per element, reused below
    s = mpmath.fsum(e)
    if op == "softmax":
        return [float(v / s) for v in e]
    log_s = mpmath.log(s)
    if op == "log_softmax":
        return [float(v - log_s) for v in d]
    return [float(log_s - d[label])]


def plain_mpmath(op: str, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    with mpmath.workprec(113):
        out = [_plain_row(op, r, int(t)) for r, t in zip(x, labels, strict=True)]
    return np.array(out, dtype=np.float64).squeeze(-1 if op == "sparse" else ())


def loadavg() -> str:
    """The 1-minute load average, or "?" where /proc is not there."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


CALLS: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "softmax": lambda x, t: references.softmax(x),
    "log_softmax": lambda x, t: references.log_softmax(x),
    "sparse": lambda x, t: references.sparse_softmax_cross_entropy(x, t),
}


@pytest.mark.parametrize("op", list(CALLS))
@pytest.mark.parametrize("path", ["float32", "float64"])
def test_reference_throughput(benchmark: Any, rows: tuple[np.ndarray, np.ndarray], op: str,
                              path: str) -> None:
    x, labels = rows
    call = CALLS[op]
    load_before = loadavg()
    if path == "float32":
        def fast() -> Any:
            return call(x, labels).rounded(np.float32)
    else:
        def fast() -> Any:
            r = call(x, labels)
            return r.hi, r.lo

    result = benchmark.pedantic(fast, rounds=3, iterations=1, warmup_rounds=0)
    fast_s = benchmark.stats.stats.median

    start = time.perf_counter()
    plain = plain_mpmath(op, x, labels)
    plain_s = time.perf_counter() - start
    load_after = loadavg()

    ratio = plain_s / fast_s
    elements = x.size
    benchmark.extra_info.update({
        "op": op, "path": path, "elements": elements, "fast_median_s": fast_s,
        "plain_mpmath_s": plain_s, "speedup_vs_plain_mpmath": ratio,
        "fast_elements_per_s": elements / fast_s, "plain_elements_per_s": elements / plain_s,
        "loadavg_before": load_before, "loadavg_after": load_after,
    })
    print(f"\n{op} {path}: fast {fast_s:.2f} s ({elements / fast_s / 1e6:.2f} M el/s), "
          f"plain mpmath {plain_s:.1f} s ({elements / plain_s / 1e6:.3f} M el/s): "
          f"{ratio:.1f}x (load {load_before} -> {load_after})")

    # Same values: float32 roundings agree with plain mpmath's (113-bit) rounding except where
    # that double rounding is itself wrong, which is rarer than one in a million.
    fast32 = result if path == "float32" else result[0].astype(np.float32)
    agree = (np.asarray(fast32, np.float32) == plain.astype(np.float32)).mean()
    assert agree > 0.99999, f"only {agree:.6%} of values agree with plain mpmath"
    if path == "float32":
        assert ratio >= FLOAT32_TARGET, f"float32 fast path only {ratio:.1f}x plain mpmath"
