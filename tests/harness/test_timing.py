"""harness.worker.timing, in this process: the bytes model, pytest-benchmark driving, round
planning, the first call kept apart, peak memory, the copy roofline, inputs. No timed assertions."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from harness import Implementation
from harness import store as results
from harness.messages import TimingTask
from harness.worker import timing
from harness.worker.adapters import get_adapter
from harness.worker.adapters.base import rss_peak, tracemalloc_peak

FAST = {"max_time": 0.02, "min_rounds": 10, "min_time": 0.001, "warmup_time": 0.005,
        "copy_bytes": 2**22}


def softmax(x: Any) -> Any:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numpy_impl(fn: Any, name: str = "test.softmax") -> Implementation:
    return Implementation(name, "softmax", "numpy", fn, dtypes=("float32",),
                          differentiable=False)


# -- the bytes model ----------------------------------------------------------------------------

@pytest.mark.parametrize("op, pass_, expected", [
    # N = 4, C = 10, float32 logits and outputs, int64 labels (docs/throughput.md)
    ("softmax", "forward", 160 + 160),
    ("log_softmax", "forward", 160 + 160),
    ("logsumexp", "forward", 160 + 16),
    ("sparse_softmax_cross_entropy", "forward", 160 + 32 + 16),
    ("softmax_cross_entropy", "forward", 160 + 160 + 16),
    ("softmax", "backward", 160 + 160 + 160),  # x, cotangent, gradient
    ("logsumexp", "backward", 160 + 16 + 160),
    ("sparse_softmax_cross_entropy", "backward", 160 + 32 + 16 + 160),
    ("softmax_cross_entropy", "backward", 160 + 160 + 16 + 160),
])
def test_bytes_model(op: str, pass_: str, expected: int) -> None:
    assert timing.bytes_moved(op, pass_, (4, 10), 4, 4) == expected


def test_bytes_model_with_a_wider_output() -> None:
    # float16 logits, softmax(dtype=float32): read 2-byte x, write 4-byte y
    assert timing.bytes_moved("softmax", "forward", (4, 10), 2, 4) == 80 + 160
    # backward: the cotangent has the output's dtype, the gradient the logits'
    assert timing.bytes_moved("softmax", "backward", (4, 10), 2, 4, 2) == 80 + 160 + 80
    with pytest.raises(ValueError, match="no bytes model"):
        timing.bytes_moved("cross_entropy", "forward", (4, 10), 4, 4)


# -- pytest-benchmark, driven -------------------------------------------------------------------

def test_benchmark_runs_pytest_benchmarks_rounds_and_statistics() -> None:
    calls = []
    options = timing.TimingOptions.from_mapping(FAST)
    m = timing.benchmark(lambda: calls.append(1), time.perf_counter, options, warmup=3)
    assert m.rounds == len(m.samples_s) >= options.min_rounds
    assert m.iterations > 1  # a call this short is calibrated into longer rounds
    # every round's calls, the calibration and warm-up calls, and the fixture's last call
    assert len(calls) > m.rounds * m.iterations
    assert m.min_s == min(m.samples_s) and m.min_s <= m.median_s <= max(m.samples_s)
    assert m.iqr_s == pytest.approx(m.q3_s - m.q1_s)


def test_pedantic_rounds_are_exactly_the_planned_ones() -> None:
    calls = []
    m = timing.benchmark(lambda: calls.append(1), time.perf_counter,
                         timing.TimingOptions.from_mapping(FAST), warmup=2, rounds=7)
    assert m.rounds == 7 and m.iterations == 1 and len(calls) == 2 + 7


def test_plan_rounds() -> None:
    opts = timing.TimingOptions(max_time=0.5, min_rounds=10, min_time=0.01, warmup_time=0.1)
    short = timing.plan_rounds(opts, 0.001)
    assert short.rounds is None and short.warmup == 100  # calibrated mode, 0.1 s of warm-up
    long = timing.plan_rounds(opts, 0.02)
    assert long.rounds == 25 and long.warmup == 4  # ceil(0.5 / 0.02); the probe was warm-up 1
    slow = timing.plan_rounds(opts, 2.0)
    assert slow.rounds == 10 and slow.warmup == 0 and not slow.note
    budget = timing.TimingOptions(min_rounds=10, budget_s=35.0)
    cut = timing.plan_rounds(budget, 5.0, elapsed_s=10.0)
    assert cut.rounds == 4 and "4 rounds only" in cut.note
    floor = timing.plan_rounds(budget, 20.0, elapsed_s=10.0)
    assert floor.rounds == timing.MIN_ROUNDS_FLOOR


def test_timing_options_refuse_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown timing options"):
        timing.TimingOptions.from_mapping({"max_tmie": 1.0})


# -- one task, in this process --------------------------------------------------------------------

def task(op: str = "softmax", pass_: str = "forward") -> TimingTask:
    return TimingTask("under-test", op, pass_, "float32", "cpu", (8, 64), 7, FAST)


def test_run_task_gives_every_timing_field() -> None:
    adapter = get_adapter("numpy")
    reply = timing.run_task(adapter, numpy_impl(softmax), task(), timing.InputCache()).data
    record = reply["record"]
    # the share of the device's fastest copy needs every framework's copy: the planner adds it
    assert set(results.TIMING_FIELDS) - {"device_copy_gbps"} <= set(record)
    assert record["rounds"] == len(record["samples_s"]) >= FAST["min_rounds"]
    assert record["bytes_moved"] == 2 * 8 * 64 * 4
    assert record["gbps"] == pytest.approx(record["bytes_moved"] / record["median_s"] / 1e9)
    assert record["roofline_fraction"] == pytest.approx(record["gbps"] / record["copy_gbps"])
    assert record["copy_gbps"] == reply["roofline"]["copy_gbps"] > 0
    assert reply["roofline"]["copy_bytes"] == 2 * FAST["copy_bytes"]
    assert record["threads"] == 1 and record["output_dtype"] == "float32"
    assert record["timer"].startswith("pytest-benchmark ") and "perf_counter" in record["timer"]
    assert record["peak_bytes"] >= 8 * 64 * 4 and "tracemalloc" in record["peak_bytes_method"]
    assert "fidelity" not in reply


def test_the_first_call_is_timed_apart() -> None:
    state = {"calls": 0}

    def compiles_first(x: Any) -> Any:
        state["calls"] += 1
        if state["calls"] == 1:
            time.sleep(0.3)  # "compilation"
        return softmax(x)

    record = timing.run_task(get_adapter("numpy"), numpy_impl(compiles_first), task(),
                             timing.InputCache()).data["record"]
    assert record["first_call_s"] >= 0.3
    assert max(record["samples_s"]) < 0.3  # never mixed into the steady-state rounds


def test_a_wrong_output_shape_is_noted() -> None:
    record = timing.run_task(get_adapter("numpy"), numpy_impl(lambda x: softmax(x)[:, :1]),
                             task(), timing.InputCache()).data["record"]
    assert "output shape (8, 1) is not the expected (8, 64)" in record["message"]


# -- memory ---------------------------------------------------------------------------------------

def test_tracemalloc_peak_sees_numpy_buffers() -> None:
    peak, method = tracemalloc_peak(lambda: np.ones(1_000_000))  # 8 MB
    assert peak is not None and 8_000_000 <= peak < 8_100_000
    assert method.startswith("tracemalloc")


def test_rss_peak_sees_touched_memory() -> None:
    def allocate() -> Any:
        a = np.ones(16 * 2**20)  # 128 MiB, every page written
        return a

    peak, method = rss_peak(allocate)
    assert peak is not None and 120 * 2**20 <= peak <= 160 * 2**20, peak
    assert method.startswith("rss_hwm")


# -- inputs ---------------------------------------------------------------------------------------

def test_inputs_are_one_draw_rounded_per_dtype_and_cached() -> None:
    adapter, cache = get_adapter("numpy"), timing.InputCache()
    x32 = cache.get(adapter, "x", (3, 50), "float32", 11, "cpu")
    assert cache.get(adapter, "x", (3, 50), "float32", 11, "cpu") is x32
    x16 = cache.get(adapter, "x", (3, 50), "bfloat16", 11, "cpu")
    np.testing.assert_array_equal(x16, x32.astype(ml_dtypes.bfloat16))
    targets = cache.get(adapter, "targets", (3, 50), "bfloat16", 11, "cpu")
    assert targets.dtype == np.int64 and targets.min() >= 0 and targets.max() < 50
    again = timing.InputCache().get(adapter, "x", (3, 50), "float32", 11, "cpu")
    np.testing.assert_array_equal(again, x32)  # the seed decides, on every machine
    assert timing.case_seed("throughput[shape=3x50]") == timing.case_seed("throughput[shape=3x50]")


# -- frameworks -----------------------------------------------------------------------------------

@pytest.mark.framework
def test_jax_target_blocks_and_torch_backward_is_timed(adapters: Any) -> None:
    from harness.worker.loop import all_implementations

    impls = {i.name: i for i in all_implementations()[0]}
    jax = adapters("jax")
    prepared = timing.prepare(jax, impls["jax.nn.softmax@jit"], "forward", (4, 32), "float32",
                              "cpu", 3)
    out = prepared.target()
    assert out.is_ready() and "block_until_ready" in prepared.timer
    torch = adapters("torch")
    reply = timing.run_task(torch, impls["torch.nn.functional.log_softmax"],
                            task("log_softmax", "backward"), timing.InputCache())
    record = reply.data["record"]
    assert record["bytes_moved"] == 3 * 8 * 64 * 4 and record["output_dtype"] == "float32"
    assert record["peak_bytes_method"].startswith("rss_hwm")


@pytest.mark.framework
def test_fidelity_check_reports_both_sides(adapters: Any) -> None:
    from harness.worker.loop import all_implementations

    impl = next(i for i in all_implementations()[0] if i.name == "torch.nn.functional.softmax")
    prepared = timing.prepare(adapters("torch"), impl, "forward", (4, 64), "float32", "cpu", 5)
    result = timing.fidelity_check(prepared, timing.TimingOptions.from_mapping(FAST), pairs=2,
                                   min_run_time=0.02)
    assert len(result["harness_medians_s"]) == len(result["timer_medians_s"]) == 2
    assert result["ratio"] == pytest.approx(result["harness_median_s"] /
                                            result["timer_median_s"])
    assert result["within_tolerance"] == (abs(result["ratio"] - 1) <= 0.1)


def test_the_documented_bytes_table_is_the_code() -> None:
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "throughput.md").read_text()
    rows = re.findall(r"^\| ([a-z_, ]+?)(?: \(dense labels\))? \| `([^`]+)` \| `([^`]+)` \|$",
                      text, re.M)
    names = {"N": 4, "C": 10, "s": 2, "s_y": 4, "s_g": 2, "s_l": 8}
    seen = set()
    for ops, forward, backward in rows:
        for op in ops.split(", "):
            for pass_, formula in (("forward", forward), ("backward", backward)):
                value = eval(formula.replace("·", "*"), {}, dict(names))  # noqa: S307
                assert timing.bytes_moved(op, pass_, (4, 10), 2, 4, 2) == value, (op, pass_)
                seen.add(op)
    assert seen == set(timing.THROUGHPUT_OPS)


PIN_SCRIPT = """
import resource, sys
import numpy as np
from harness.worker import timing
print(timing.pin_malloc())
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
n = 30 * 2**20 // 8  # 30 MiB blocks: below glibc's largest mmap threshold
a = np.ones(n); del a
a, b, c = np.ones(n), np.ones(n), np.ones(n); del a, b, c  # 90 MiB free at the heap's top
f = faults(); d = np.ones(n); print(faults() - f)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_pinned_malloc_reuses_freed_blocks_without_page_faults() -> None:
    # Unpinned, glibc hands the 90 MiB back to the system (its trim threshold follows the block
    # size) and the next 30 MiB block takes ~500 page faults (one per 64 KiB here); the
    # harness's timings then depend on the heap's layout (harness.worker.timing.pin_malloc).
    done = subprocess.run([sys.executable, "-c", PIN_SCRIPT], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    policy, faults = done.stdout.strip().splitlines()
    assert policy.startswith("glibc mallopt M_MMAP_THRESHOLD=33554432")
    assert int(faults) < 50
