"""The throughput suite through pytest and pytest-benchmark, in this process.

The same preparation as ``softmax-bench run --suite throughput`` (harness.worker.timing: inputs from
the case seed, the first call timed apart, the framework's synchronising clock or per-call
sync, peak memory after the rounds, GB/s against the copy roofline), but timed by the real
``benchmark`` fixture, so every pytest-benchmark option, ``--benchmark-json``, ``--benchmark-save``
and ``--benchmark-compare`` work; the harness's figures are in each benchmark's ``extra_info``.
The suite's ``timing`` table sets min_time, max_time, min_rounds and disable_gc through the
``benchmark`` marker (which takes precedence over the matching ``--benchmark-*`` options)::

    pytest benchmarks/test_throughput.py -m benchmark_throughput --benchmark-only \\
        --throughput-impl 'torch.*' --throughput-dtype float32 --throughput-shape 256x32000 \\
        --benchmark-json tp.json

Every framework runs in this one process (the harness runs one worker per framework): select
one framework per pytest invocation with ``--throughput-impl`` for figures that match a run's.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

import pytest

from harness.ops import BACKWARD, FORWARD
from harness.planning import throughput
from harness.planning.suites import get_suite
from harness.registry import Implementation
from harness.worker import timing
from harness.worker.adapters import get_adapter
from harness.worker.adapters.base import Adapter
from harness.worker.loop import all_implementations, info

pytestmark = pytest.mark.benchmark_throughput

_IMPLS: dict[str, Implementation] = {}


def _implementations() -> dict[str, Implementation]:
    if not _IMPLS:
        _IMPLS.update({i.name: i for i in all_implementations()[0]})
    return _IMPLS


def _shape(text: str) -> tuple[int, int]:
    n, _, c = text.lower().partition("x")
    return int(n), int(c)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tp_task" not in metafunc.fixturenames:
        return
    config = metafunc.config
    suite = get_suite(config.getoption("--throughput-suite"))
    if suite.kind != "throughput":
        raise pytest.UsageError(f"--throughput-suite {suite.name!r} is not a throughput suite")
    device = config.getoption("--throughput-device")
    include, exclude = config.getoption("--throughput-impl"), config.getoption(
        "--throughput-exclude")
    dtypes = tuple(config.getoption("--throughput-dtype"))
    shapes = [_shape(s) for s in config.getoption("--throughput-shape")]
    cases = throughput.cases_of(suite, dtypes)
    if shapes:  # the suite's dtypes and ops at these shapes
        keys = dict.fromkeys((c.dtype, c.op) for c in cases)
        cases = [throughput.TimingCase(shape, d, op) for d, op in keys for shape in shapes]
    params = []
    for case in cases:
        for impl in _implementations().values():
            if impl.op != case.op or device not in impl.devices:
                continue
            if include and not any(fnmatch.fnmatchcase(impl.name, p) for p in include):
                continue
            if any(fnmatch.fnmatchcase(impl.name, p) for p in exclude):
                continue
            for pass_ in (FORWARD, BACKWARD):
                task = throughput.TimingTask(info(impl), case, pass_)
                shape = "x".join(map(str, case.shape))
                params.append(pytest.param(task, id=f"{impl.name}-{shape}-{case.dtype}-{pass_}"))
    metafunc.parametrize("tp_task", params)


@pytest.fixture(scope="session")
def tp_adapter(pytestconfig: pytest.Config) -> Callable[[str], Adapter]:
    """One adapter per framework, its threads set before its first computation."""
    threads = pytestconfig.getoption("--throughput-threads") or throughput.default_threads()
    cache: dict[str, Adapter | str] = {}

    def get(framework: str) -> Adapter:
        if framework not in cache:
            adapter = get_adapter(framework)
            available, reason = adapter.availability()
            if available:
                adapter.set_threads(threads)
            cache[framework] = adapter if available else reason
        found = cache[framework]
        if isinstance(found, str):
            pytest.skip(f"{framework} unavailable: {found}")
        return found

    return get


@pytest.fixture(scope="session")
def tp_bound(pytestconfig: pytest.Config) -> throughput.MemoryBound:
    return throughput.memory_bound(pytestconfig.getoption("--throughput-device"))


@pytest.fixture
def tp_prepared(request: pytest.FixtureRequest, tp_task: throughput.TimingTask,
                tp_adapter: Callable[[str], Adapter], tp_bound: throughput.MemoryBound
                ) -> dict[str, Any]:
    """Everything before the timed rounds; puts the clock on the ``benchmark`` marker, so this
    fixture must come before ``benchmark`` in the test's arguments."""
    task, case = tp_task, tp_task.case
    impl = _implementations()[task.impl.name]
    if case.dtype not in impl.dtypes:
        pytest.skip(f"{impl.name} does not support {case.dtype}")
    if task.pass_ == BACKWARD and not impl.differentiable:
        pytest.skip("no autodiff: forward only")
    refused = tp_bound.refuses(case, task.pass_)
    if refused:
        pytest.skip(refused)
    adapter = tp_adapter(impl.framework)
    device = request.config.getoption("--throughput-device")
    options = timing.TimingOptions.from_mapping(
        dict(get_suite(request.config.getoption("--throughput-suite")).timing))
    prepared = timing.prepare(adapter, impl, task.pass_, case.shape, case.dtype, device,
                              case.seed, _CACHE)
    first_s, out = timing.first_call(prepared)
    out_dtype = timing.check_output(adapter, prepared, out)
    del out
    forward_out = None
    if task.pass_ == BACKWARD:
        forward_out = timing.forward_output_dtype(adapter, prepared, _CACHE, case.seed)
    warmup = timing.plan_rounds(options, timing.probe(prepared)).warmup
    request.node.add_marker(pytest.mark.benchmark(
        timer=prepared.clock, group=f"{case.op} {task.pass_} {case.case_id} {case.dtype}",
        min_time=options.min_time, max_time=options.max_time, min_rounds=options.min_rounds,
        disable_gc=options.disable_gc, warmup=warmup > 0, warmup_iterations=max(warmup, 1)))
    return {"adapter": adapter, "prepared": prepared, "first_s": first_s, "out_dtype": out_dtype,
            "forward_out": forward_out, "options": options}


_CACHE = timing.InputCache()


def test_throughput(tp_prepared: dict[str, Any], benchmark: Any) -> None:
    prepared: timing.Prepared = tp_prepared["prepared"]
    benchmark(prepared.target)
    if benchmark.stats is None:  # --benchmark-disable: the call ran once, untimed
        return
    assert benchmark.stats.options["timer"] is prepared.clock, "the marker came too late"
    m = timing.Measurement.from_metadata(benchmark.stats)
    adapter = tp_prepared["adapter"]
    peak = adapter.peak_memory(prepared.target, prepared.device)  # after the rounds
    try:
        copy: dict[str, Any] | None = timing.measure_copy(adapter, prepared.device,
                                                          tp_prepared["options"])
    except (MemoryError, NotImplementedError, RuntimeError):
        copy = None
    record = timing.summarize(prepared, m, first_call_s=tp_prepared["first_s"],
                              out_dtype=tp_prepared["out_dtype"],
                              forward_out_dtype=tp_prepared["forward_out"],
                              peak=peak, copy=copy)
    record.pop("samples_s")  # pytest-benchmark keeps them in stats.data
    benchmark.extra_info.update({"implementation": prepared.impl.name, "op": prepared.op,
                                 "pass": prepared.pass_, "shape": list(prepared.shape),
                                 "dtype": prepared.dtype, "device": prepared.device, **record})
