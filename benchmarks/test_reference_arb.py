"""Escalated rows: the Arb tier against today's mpmath tier, same rows, same run (issue 12).

Rows that binary128 cannot decide used to go to the mpmath tier; now they go to the Arb tier
(python-flint balls), mpmath being the last resort. Each case is one row of 32000 or 128000
classes of a family that escalates; the figure is the cold computation (cache off) of ``hi``/
``lo``/``direction`` (what the pool materialises), median of the rounds:

* "before": ``tiers("binary128", "mpmath")``: today's engine without the Arb tier;
* "after": the default tiers (binary128, then Arb, then mpmath).

Both must agree bit for bit (``hi``, ``direction``). Run:
``pytest benchmarks/test_reference_arb.py -m benchmark_reference --benchmark-only -s``
(the speedups print, with the load average before and after each case; ``--benchmark-json``
keeps them in ``extra_info``). The tied row at 128000 classes takes the mpmath tier about 15
minutes (quadratic there); skip it with ``-k "not tied_max_with_gap_softmax_vjp-128000"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import references
from references import _engine

pytestmark = pytest.mark.benchmark_reference

SIZES = (32000, 128000)


def loadavg() -> str:
    """The 1-minute load average, or "?" where /proc is not there."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def _rows(kind: str, C: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    rng = np.random.default_rng(C + len(kind))
    g = rng.normal(size=(1, C))
    if kind == "gap_beyond_binary128_softmax":  # finite masks (-1e9) on half the row
        x = rng.normal(0, 1, (1, C)).astype(np.float32)
        x[0, ::2] = -1e9
        return references.softmax, (x,)
    if kind == "gap_beyond_binary128_log_softmax":
        x = rng.normal(0, 1, (1, C)).astype(np.float32)
        x[0, ::2] = -1e9
        return references.log_softmax, (x,)
    if kind == "gap_beyond_binary128_softmax_vjp":
        x = rng.normal(0, 1, (1, C)).astype(np.float32)
        x[0, ::2] = -1e9
        return references.softmax_vjp, (x, g)
    if kind == "vjp_cancellation_random_N03":  # <g, p> cancels against some g_i
        x = rng.normal(0, 3, (1, C)).astype(np.float32)
        return references.softmax_vjp, (x, g)
    if kind == "log_softmax_vjp_random_N03":
        x = rng.normal(0, 3, (1, C)).astype(np.float32)
        return references.log_softmax_vjp, (x, g)
    if kind == "dominant_logit_softmax_vjp":  # [0, -40, ..., -40]: p_max rounds to 1
        x = np.full((1, C), -40.0, np.float32)
        x[0, 0] = 0
        return references.softmax_vjp, (x, g)
    if kind == "tied_max_with_gap_softmax_vjp":  # 8 tied maxima, the rest 1e4 below
        x = np.full((1, C), -1e4, np.float32)
        x[0, :8] = 0
        return references.softmax_vjp, (x, g)
    raise ValueError(kind)


KINDS = ["gap_beyond_binary128_softmax", "gap_beyond_binary128_log_softmax",
         "gap_beyond_binary128_softmax_vjp", "vjp_cancellation_random_N03",
         "log_softmax_vjp_random_N03", "dominant_logit_softmax_vjp",
         "tied_max_with_gap_softmax_vjp"]


@pytest.fixture(autouse=True)
def cold_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")


@pytest.mark.parametrize("C", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_escalated_row_arb_vs_mpmath(benchmark: Any, kind: str, C: int) -> None:
    fn, args = _rows(kind, C)
    load_before = loadavg()

    def after() -> references.ReferenceResult:
        r = fn(*args)
        _ = r.hi
        return r

    res = benchmark.pedantic(after, rounds=3, iterations=1, warmup_rounds=0)
    after_s = benchmark.stats.stats.median

    start = time.perf_counter()
    with _engine.tiers("binary128", "mpmath"):
        before = fn(*args)
        _ = before.hi
    before_s = time.perf_counter() - start
    load_after = loadavg()

    np.testing.assert_array_equal(res.hi.view(np.uint64), before.hi.view(np.uint64))
    np.testing.assert_array_equal(res.direction, before.direction)
    ratio = before_s / after_s
    benchmark.extra_info.update({
        "kind": kind, "classes": C, "before_mpmath_s": before_s, "after_arb_s": after_s,
        "speedup": ratio, "after_elements_per_s": C / after_s,
        "before_elements_per_s": C / before_s, "after_tiers": res.tier_counts,
        "before_tiers": before.tier_counts, "loadavg_before": load_before,
        "loadavg_after": load_after,
    })
    print(f"\n{kind} C={C}: before (mpmath tier) {before_s:.2f} s "
          f"({C / before_s / 1e3:.1f} K el/s), after (Arb tier) {after_s:.3f} s "
          f"({C / after_s / 1e3:.1f} K el/s): {ratio:.1f}x; tiers {res.tier_counts} "
          f"(before {before.tier_counts}); load {load_before} -> {load_after}")
