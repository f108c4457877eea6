"""Fidelity: the harness's timing engine against torch.utils.benchmark, same callable, same process.

torch.nn.functional.softmax on 256 x 32000 float32 logits on the CPU, prepared as a throughput run
prepares it (harness.worker.timing): the harness's median (pytest-benchmark, driven by
harness.worker.timing)
must agree within 10% with ``torch.utils.benchmark.Timer(...).blocked_autorange()``'s median.
The two alternate five times and the medians of each side's medians are compared, so a load
change on a shared machine hits both alike. A benchmark check, not a unit test::

    pytest benchmarks/test_fidelity.py -m benchmark_throughput -s

``SOFTMAX_BENCH_THREADS`` sets the intra-op threads (default: the schedulable CPUs, as a run).
"""

from __future__ import annotations

import os

import pytest

from harness.planning import throughput
from harness.planning.suites import get_suite
from harness.worker import timing
from harness.worker.adapters import get_adapter
from harness.worker.loop import all_implementations

pytestmark = pytest.mark.benchmark_throughput

IMPL, SHAPE, DTYPE = "torch.nn.functional.softmax", (256, 32000), "float32"


def test_harness_median_agrees_with_torch_utils_benchmark(
        capsys: pytest.CaptureFixture[str]) -> None:
    adapter = get_adapter("torch")
    available, reason = adapter.availability()
    if not available:
        pytest.skip(reason)
    threads = int(os.environ.get("SOFTMAX_BENCH_THREADS") or throughput.default_threads())
    adapter.set_threads(threads)
    impl = next(i for i in all_implementations()[0] if i.name == IMPL)
    prepared = timing.prepare(adapter, impl, "forward", SHAPE, DTYPE, "cpu",
                              timing.case_seed(throughput.case_id(SHAPE)))
    timing.first_call(prepared)
    options = timing.TimingOptions.from_mapping(dict(get_suite("throughput").timing))
    result = timing.fidelity_check(prepared, options, pairs=5)
    with capsys.disabled():
        print(f"\nfidelity, {IMPL} {SHAPE[0]}x{SHAPE[1]} {DTYPE} cpu, {threads} threads:")
        print(f"  harness (pytest-benchmark) medians: "
              f"{', '.join(f'{v * 1e3:.3f}' for v in result['harness_medians_s'])} ms")
        print(f"  torch.utils.benchmark medians:      "
              f"{', '.join(f'{v * 1e3:.3f}' for v in result['timer_medians_s'])} ms")
        print(f"  harness {result['harness_median_s'] * 1e3:.3f} ms, torch.utils.benchmark "
              f"{result['timer_median_s'] * 1e3:.3f} ms, ratio {result['ratio']:.3f}")
    assert result["within_tolerance"], (
        f"harness median {result['harness_median_s'] * 1e3:.3f} ms vs torch.utils.benchmark "
        f"{result['timer_median_s'] * 1e3:.3f} ms: ratio {result['ratio']:.3f} is outside "
        f"1 +- {result['tolerance']}")
