"""Worker-side throughput timing: pytest-benchmark's engine with device sync, the bytes-moved
model, the copy roofline and peak memory (docs/throughput.md).

Runs inside a framework worker (``harness.worker``, task ``"mode": "time"``); the parent side is
``harness.throughput``. For one (implementation, op, pass, shape, dtype, device):

1. inputs: random normal logits generated here from a seed (float32, then rounded to the dtype)
   and converted to the framework's tensors, outside any timing; kept for the next task with
   the same shape and dtype;
2. the first call, timed on its own (``first_call_s``: compilation, tracing, autotuning);
3. a second call, timed: it sizes the warm-up and the rounds;
4. pytest-benchmark's ``BenchmarkFixture``: calibration of the calls per round (or, for a call
   that fills a round by itself, ``pedantic`` rounds of one call), warm-up, rounds and
   statistics, with the adapter's clock (synchronising where the framework queues device work)
   and target (e.g. ``jax.block_until_ready`` on every result);
5. peak memory of one more call, by the adapter's method, after the rounds (its gc,
   malloc_trim or tracemalloc never touch them);
6. GB/s from ``bytes_moved`` and the median, and its share of the copy roofline measured once
   per worker with the same engine.

Why drive ``BenchmarkFixture`` directly rather than run pytest in the worker: the fixture is
pytest-benchmark's whole measuring machinery (calibration, warm-up, rounds, ``Stats``), and it
needs no pytest session; a pytest run per task would add seconds of collection per record, its
own output capture around framework chatter, and a second result channel (its JSON) to parse.
``benchmarks/test_throughput.py`` runs the same preparation through the real pytest fixture.
"""

from __future__ import annotations

import ctypes
import hashlib
import inspect
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from harness.messages import Reply, TimingTask
from harness.ops import BACKWARD, FORWARD, OPS
from harness.registry import Implementation

__all__ = [
    "COPY_BYTES",
    "THROUGHPUT_OPS",
    "InputCache",
    "Measurement",
    "Prepared",
    "TimingOptions",
    "RoundPlan",
    "benchmark",
    "bytes_moved",
    "case_seed",
    "fidelity_check",
    "measure_copy",
    "plan_rounds",
    "prepare",
    "run_task",
    "summarize",
]

THROUGHPUT_OPS = ("softmax", "log_softmax", "logsumexp", "softmax_cross_entropy",
                  "sparse_softmax_cross_entropy")
COPY_BYTES = 256 * 2**20  # the roofline copies 256 MiB into another 256 MiB: past any cache
LABEL_ITEMSIZE = 8  # class indices are int64 in every framework here
MIN_ROUNDS_FLOOR = 3  # a task short of time still gets this many rounds
NOISY, VERY_NOISY = 0.1, 0.25  # IQR/median warning thresholds of torch.utils.benchmark


@dataclass(frozen=True)
class TimingOptions:
    """The measuring budget of one task (pytest-benchmark's options, plus a warm-up time).

    ``min_time``: calls per round are calibrated until a round lasts at least this long
    (pytest-benchmark's ``--benchmark-min-time``; docs/measuring.md asks >= 10 ms on the CPU).
    ``max_time``: rounds are added until they total this long (``--benchmark-max-time``), but
    never fewer than ``min_rounds``. ``warmup_time``: warm-up calls after the first call, in
    seconds (turned into pytest-benchmark's ``warmup_iterations``). ``copy_bytes``: the size of
    the copy roofline's buffer (copied into another as large). ``budget_s``: wall time the
    whole task may take (the parent's timeout with a margin); when one call is so slow that
    ``min_rounds`` would not fit, fewer rounds are run (never below 3) and the record says so.
    """

    max_time: float = 0.5
    min_rounds: int = 10
    min_time: float = 0.01
    warmup_time: float = 0.1
    disable_gc: bool = True
    calibration_precision: int = 10
    copy_bytes: int = COPY_BYTES
    budget_s: float | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> TimingOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(data or {}) - known
        if unknown:
            raise ValueError(f"unknown timing options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(data or {}))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- the allocator ---------------------------------------------------------------------------------

# glibc's malloc adapts two thresholds as a process runs: blocks up to 32 MiB come from the heap or
# from fresh mmaps depending on what was freed before, and freed heap memory is handed back to the
# system when the free top of the heap passes a threshold, so a 32 MB softmax output can need a
# page fault per 4 KiB on every call or on none, depending on the heap's layout. Measured here:
# torch softmax 256 x 32000 timed at 14.4 ms instead of 4.9 ms in 5 of 12 processes, for a whole
# process, while torch.utils.benchmark in the same processes saw 4.9 ms. Pinning the thresholds
# makes the steady state the same in every process: blocks up to 32 MiB (glibc's largest mmap
# threshold) are reused from the heap, larger ones are fresh mmaps on every call, as before.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**31 - 1
_MALLOC_POLICY: list[str] = []


def pin_malloc() -> str:
    """Fix glibc malloc's mmap and trim thresholds in this process (once); what was done."""
    if _MALLOC_POLICY:
        return _MALLOC_POLICY[0]
    policy = f"default (not glibc on {sys.platform})"
    if sys.platform.startswith("linux"):
        try:
            mallopt = ctypes.CDLL("libc.so.6").mallopt
            ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD,
                                                                        TRIM_THRESHOLD)
            policy = (f"glibc mallopt M_MMAP_THRESHOLD={MMAP_THRESHOLD}, M_TRIM_THRESHOLD="
                      f"{TRIM_THRESHOLD}" if ok else "default (glibc refused mallopt)")
        except (OSError, AttributeError):
            policy = "default (no glibc mallopt)"
    _MALLOC_POLICY.append(policy)
    return policy


# -- the bytes-moved model ----------------------------------------------------------------------


def bytes_moved(op: str, pass_: str, shape: tuple[int, ...], itemsize: int, out_itemsize: int,
                grad_itemsize: int | None = None, label_itemsize: int = LABEL_ITEMSIZE) -> int:
    """Minimum memory traffic of one call: every tensor the timed callable reads, once, and
    every tensor it writes, once (docs/throughput.md has the table).

    ``shape`` is the logits' (N, C); ``itemsize`` the logits' element size, ``out_itemsize`` the
    forward output's (4 for float16 logits with ``dtype=float32``), ``grad_itemsize`` the
    gradient's (default: the logits'). The ``backward`` pass times the VJP callable, which runs
    the forward as well (training's forward + backward): it reads the logits, the labels and the
    cotangent (shaped like the forward output) and writes the gradient.
    """
    if op not in THROUGHPUT_OPS:
        raise ValueError(f"no bytes model for op {op!r}; expected one of {THROUGHPUT_OPS}")
    n = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    nc = int(np.prod(shape, dtype=np.int64))
    inputs = nc * itemsize  # the logits
    if op == "softmax_cross_entropy":
        inputs += nc * itemsize  # dense labels, in the logits' dtype
    elif op == "sparse_softmax_cross_entropy":
        inputs += n * label_itemsize
    out_elements = nc if not OPS[op].per_row else n
    if pass_ == FORWARD:
        return inputs + out_elements * out_itemsize
    if pass_ == BACKWARD:
        grad = nc * (itemsize if grad_itemsize is None else grad_itemsize)
        return inputs + out_elements * out_itemsize + grad
    raise ValueError(f"unknown pass {pass_!r}")


def expected_output_shape(op: str, pass_: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if pass_ == BACKWARD or not OPS[op].per_row:
        return tuple(shape)
    return tuple(shape[:-1])


# -- inputs -------------------------------------------------------------------------------------


def case_seed(case_id: str) -> int:
    """The seed of a throughput case: SHA-256 of its id (the same on every machine)."""
    return int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "little") >> 1


def _numpy_dtype(dtype: str) -> np.dtype[Any]:
    from harness.worker.adapters.base import NUMPY_DTYPES

    return NUMPY_DTYPES[dtype] if dtype in NUMPY_DTYPES else np.dtype(dtype)


def _generate(name: str, shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """One input array, deterministic in (name, shape, dtype, seed), in the target dtype.

    Floats are drawn in float32 and rounded once to the dtype (exact for float64), so every
    dtype times the same values as far as it can hold them, and float64 never needs a float64
    draw. Each input has its own stream, so inputs do not depend on which op asks first.
    """
    salt = {"x": 0, "targets": 1, "labels": 2, "cotangent": 3}[name]
    rng = np.random.default_rng([seed, salt])
    target = _numpy_dtype(dtype)
    if name == "targets":
        return rng.integers(0, shape[-1], shape[:-1], dtype=np.int64)
    if name == "labels":
        raw = rng.random(shape, dtype=np.float32)
        raw /= raw.sum(axis=-1, keepdims=True)
        return raw if target == np.float32 else raw.astype(target)
    values = rng.standard_normal(shape, dtype=np.float32)
    return values if target == np.float32 else values.astype(target)


class InputCache:
    """Framework tensors of the current (shape, dtype, seed, device), reused by the next tasks.

    The parent orders tasks by dtype and shape, so every implementation and op of a shape shares
    one set of tensors; a new shape or dtype frees the old set first (memory for huge shapes).
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._tensors: dict[str, Any] = {}
        self._arrays: dict[str, np.ndarray] = {}

    def clear(self) -> None:
        self._key = None
        self._tensors.clear()
        self._arrays.clear()

    def get(self, adapter: Any, name: str, shape: tuple[int, ...], dtype: str, seed: int,
            device: str, *, as_numpy: bool = False) -> Any:
        key = (adapter.framework, tuple(shape), dtype, seed, device)
        if key != self._key:
            self.clear()
            self._key = key
        if as_numpy:
            if name not in self._arrays:
                self._arrays[name] = _generate(name, shape, dtype, seed)
            return self._arrays[name]
        if name not in self._tensors:
            array = _generate(name, shape, dtype, seed)
            self._tensors[name] = adapter.to_framework(
                array, dtype if array.dtype.kind == "f" else str(array.dtype), device)
            del array
        return self._tensors[name]


# -- pytest-benchmark -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """pytest-benchmark's statistics of one benchmark, per call, in seconds."""

    samples_s: list[float]  # one per round: the round's time / iterations
    iterations: int  # calls per round
    rounds: int
    median_s: float
    iqr_s: float
    min_s: float
    mean_s: float
    stddev_s: float
    q1_s: float
    q3_s: float

    @classmethod
    def from_metadata(cls, metadata: Any) -> Measurement:
        """From pytest-benchmark's ``Metadata`` (``fixture.stats``)."""
        stats = metadata.stats
        return cls(samples_s=[float(v) for v in stats.data], iterations=int(metadata.iterations),
                   rounds=int(stats.rounds), median_s=float(stats.median),
                   iqr_s=float(stats.iqr), min_s=float(stats.min), mean_s=float(stats.mean),
                   stddev_s=float(stats.stddev), q1_s=float(stats.q1), q3_s=float(stats.q3))


class _QuietLogger:
    """What BenchmarkFixture logs through; the worker's stderr is no place for it."""

    def debug(self, *args: Any, **kwargs: Any) -> None:
        return None

    info = warning = error = debug


def pytest_benchmark_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pytest-benchmark")
    except metadata.PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "unknown"


@dataclass(frozen=True)
class RoundPlan:
    """How pytest-benchmark runs one task, chosen from one warm call's time ``call_s``.

    ``rounds`` None: the fixture's calibrated mode (``benchmark(fn)``), for calls shorter than
    ``min_time``: calls per round grow until a round lasts ``min_time``. Otherwise one call
    already fills a round (calibration would choose 1 iteration), so ``pedantic`` runs
    ``rounds`` rounds of one call, sized by the same rule, ``max(min_rounds, ceil(max_time /
    call_s))``, and without the calibration call and the extra call at the end.
    """

    warmup: int  # warm-up calls (calibrated mode) or rounds (pedantic)
    rounds: int | None
    note: str = ""


def plan_rounds(options: TimingOptions, call_s: float, elapsed_s: float = 0.0) -> RoundPlan:
    """Warm-up and rounds for a call of ``call_s`` seconds, cut to what is left of
    ``options.budget_s`` after ``elapsed_s`` (never below MIN_ROUNDS_FLOOR rounds)."""
    call_s = max(call_s, 1e-9)
    warmup = max(1, math.ceil(options.warmup_time / call_s)) if options.warmup_time > 0 else 0
    if call_s < options.min_time:
        return RoundPlan(warmup, None)
    warmup = max(0, warmup - 1)  # the probe call was the first warm-up call
    rounds = max(options.min_rounds, math.ceil(options.max_time / call_s))
    if options.budget_s is None:
        return RoundPlan(warmup, rounds)
    fit = int((options.budget_s - elapsed_s) / call_s) - warmup - 1  # - the memory call
    if fit >= rounds:
        return RoundPlan(warmup, rounds)
    if fit >= options.min_rounds:
        return RoundPlan(warmup, fit)
    cut = max(MIN_ROUNDS_FLOOR, fit)
    return RoundPlan(0, cut, f"{cut} rounds only: one call takes {call_s:.3g} s and the task "
                             f"has {options.budget_s:g} s (--timeout)")


def benchmark(target: Callable[[], Any], clock: Callable[[], float], options: TimingOptions,
              *, warmup: int = 0, rounds: int | None = None,
              name: str = "softmax-bench") -> Measurement:
    """Time ``target`` with pytest-benchmark's ``BenchmarkFixture`` (no pytest session needed).

    ``rounds`` None: the fixture calibrates the calls per round against the clock's precision
    and ``options.min_time``, warms up for ``warmup`` calls, runs ``max(min_rounds,
    ceil(max_time / round))`` rounds and computes the statistics (and calls ``target`` once
    more at the end). Otherwise ``pedantic``: ``warmup`` rounds, then ``rounds`` rounds, of one
    call each (``plan_rounds`` says when).
    """
    from pytest_benchmark.fixture import BenchmarkFixture
    from pytest_benchmark.utils import NameWrapper

    collected: list[Any] = []
    wanted: dict[str, Any] = {
        # pytest-benchmark 5.3 reads node.nodeid, 5.2 node._nodeid (seen on the GPU machine)
        "node": SimpleNamespace(name=name, nodeid=name, _nodeid=name),
        "disable_gc": options.disable_gc,
        "timer": NameWrapper(clock), "min_rounds": options.min_rounds,
        "min_time": options.min_time, "max_time": options.max_time, "precision": None,
        "confidence": None, "warmup": warmup > 0, "warmup_iterations": warmup,
        "calibration_precision": options.calibration_precision, "add_stats": collected.append,
        "logger": _QuietLogger(), "warner": None, "disabled": False, "cprofile": False,
        "cprofile_loops": None, "cprofile_dump": None,
    }
    params = inspect.signature(BenchmarkFixture).parameters
    missing = [p for p, spec in params.items()
               if p not in wanted and spec.default is inspect.Parameter.empty]
    if missing:  # a pytest-benchmark this module does not know (5.x is tested)
        raise RuntimeError(f"pytest-benchmark {pytest_benchmark_version()}: BenchmarkFixture "
                           f"wants {missing}; softmax-bench drives 5.x")
    fixture = BenchmarkFixture(**{k: v for k, v in wanted.items() if k in params})
    if rounds is None:
        fixture(target)
    else:
        fixture.pedantic(target, rounds=rounds, warmup_rounds=warmup, iterations=1)
    if fixture.stats is None or not fixture.stats.stats:
        raise RuntimeError("pytest-benchmark recorded no rounds")
    return Measurement.from_metadata(fixture.stats)


# -- one task -------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """Everything timed about one task, built outside the clock."""

    impl: Implementation
    op: str
    pass_: str
    shape: tuple[int, ...]
    dtype: str
    device: str
    target: Callable[[], Any]  # one call, synchronised as the framework needs
    clock: Callable[[], float]
    timer: str  # pytest-benchmark + clock + per-call sync, for the record
    threads: int | None
    notes: list[str] = field(default_factory=list)


def prepare(adapter: Any, impl: Implementation, pass_: str, shape: tuple[int, ...], dtype: str,
            device: str, seed: int, cache: InputCache | None = None) -> Prepared:
    """Inputs as framework tensors, the callable of the pass, and the clock: nothing timed.
    Pins the allocator's thresholds first (``pin_malloc``)."""
    pin_malloc()
    cache = cache if cache is not None else InputCache()
    op = impl.op
    spec = OPS[op]
    tensors = [cache.get(adapter, name, shape, dtype, seed, device) for name in spec.inputs]
    if pass_ == BACKWARD:
        cotangent = (cache.get(adapter, "cotangent", shape, dtype, seed, device, as_numpy=True)
                     if spec.random_cotangent else None)  # per-row outputs: ones
        call = adapter.backward_fn(impl, tensors, {}, cotangent)
    elif pass_ == FORWARD:
        call = adapter.forward_fn(impl, tensors, {})
    else:
        raise ValueError(f"unknown pass {pass_!r}")
    target, per_call = adapter.timed(call, device)
    clock, clock_name = adapter.timing_clock(device)
    timer = f"pytest-benchmark {pytest_benchmark_version()} {clock_name}"
    if per_call:
        timer += f" + {per_call}"
    return Prepared(impl, op, pass_, tuple(shape), dtype, device, target, clock, timer,
                    adapter.intra_op_threads())


_ROOFLINES: dict[tuple[str, str, int], dict[str, Any]] = {}


def measure_copy(adapter: Any, device: str, options: TimingOptions) -> dict[str, Any]:
    """The copy roofline of this worker's device: GB/s of a plain copy of
    ``options.copy_bytes`` into a preallocated buffer (read + write counted), timed with the
    same engine; measured once per worker, device and size."""
    nbytes = options.copy_bytes
    key = (adapter.framework, device, nbytes)
    if key not in _ROOFLINES:
        copy, method = adapter.copy_fn(device, nbytes)
        target, _ = adapter.timed(copy, device)
        clock, clock_name = adapter.timing_clock(device)
        target()  # first touch of the destination pages
        copy_options = replace(options, budget_s=None, min_rounds=max(options.min_rounds, 10))
        m = benchmark(target, clock, copy_options, warmup=2, name="copy-roofline")
        _ROOFLINES[key] = {"copy_gbps": 2 * nbytes / m.median_s / 1e9,
                           "copy_bytes": 2 * nbytes, "copy_median_s": m.median_s,
                           "copy_iqr_s": m.iqr_s, "copy_rounds": m.rounds,
                           "copy_method": method, "copy_timer": clock_name}
        del copy, target
    return dict(_ROOFLINES[key])


def _itemsize(dtype: str) -> int:
    return int(_numpy_dtype(dtype).itemsize)


_FORWARD_OUT_DTYPE: dict[tuple[str, str], str] = {}


def forward_output_dtype(adapter: Any, prepared: Prepared, cache: InputCache, seed: int) -> str:
    """The forward output's dtype (the cotangent's), known from the forward task or probed with
    one eager forward call."""
    key = (prepared.impl.name, prepared.dtype)
    if key not in _FORWARD_OUT_DTYPE:
        from harness.worker.impls import CompiledFn

        impl = prepared.impl
        if isinstance(impl.fn, CompiledFn):
            impl = replace(impl, fn=impl.fn.eager)  # no compilation for a dtype probe
        tensors = [cache.get(adapter, name, prepared.shape, prepared.dtype, seed,
                             prepared.device) for name in OPS[prepared.op].inputs]
        out = adapter.forward(impl, tensors, {})
        _FORWARD_OUT_DTYPE[key] = adapter.dtype_of(out)
        del out
    return _FORWARD_OUT_DTYPE[key]


def summarize(prepared: Prepared, m: Measurement, *, first_call_s: float, out_dtype: str,
              forward_out_dtype: str | None, peak: tuple[int | None, str],
              copy: Mapping[str, Any] | None) -> dict[str, Any]:
    """The timing fields of a record (results.FIELDS) from one measurement."""
    s = _itemsize(prepared.dtype)
    if prepared.pass_ == BACKWARD:
        moved = bytes_moved(prepared.op, prepared.pass_, prepared.shape, s,
                            _itemsize(forward_out_dtype or prepared.dtype), _itemsize(out_dtype))
    else:
        moved = bytes_moved(prepared.op, prepared.pass_, prepared.shape, s, _itemsize(out_dtype))
    gbps = moved / m.median_s / 1e9 if m.median_s > 0 else None
    copy_gbps = copy.get("copy_gbps") if copy else None
    fraction = gbps / copy_gbps if gbps is not None and copy_gbps else None
    notes = list(prepared.notes)
    spread = m.iqr_s / m.median_s if m.median_s > 0 else 0.0
    if spread > VERY_NOISY:
        notes.append(f"very noisy: IQR/median {spread:.2f}")
    elif spread > NOISY:
        notes.append(f"noisy: IQR/median {spread:.2f}")
    if fraction is not None and fraction > 1:
        notes.append("above the copy roofline: the data stays in cache")
    return {
        "median_s": m.median_s, "iqr_s": m.iqr_s, "rounds": m.rounds, "min_s": m.min_s,
        "mean_s": m.mean_s, "stddev_s": m.stddev_s, "iterations": m.iterations,
        "samples_s": m.samples_s, "bytes_moved": moved, "gbps": gbps, "copy_gbps": copy_gbps,
        "roofline_fraction": fraction, "framework_roofline_fraction": fraction,
        "peak_bytes": peak[0], "peak_bytes_method": peak[1],
        "first_call_s": first_call_s, "threads": prepared.threads, "timer": prepared.timer,
        "output_dtype": out_dtype, "message": "; ".join(notes),
    }


def first_call(prepared: Prepared) -> tuple[float, Any]:
    """Time the first call on its own (compilation, tracing, autotuning): seconds, result."""
    start = prepared.clock()
    out = prepared.target()
    return prepared.clock() - start, out


def check_output(adapter: Any, prepared: Prepared, out: Any) -> str:
    """The output's dtype; a wrong shape becomes a note (bytes_moved assumes the right one)."""
    expected = expected_output_shape(prepared.op, prepared.pass_, prepared.shape)
    got = tuple(getattr(out, "shape", ()))
    if got != expected:
        prepared.notes.append(f"output shape {got} is not the expected {expected}; bytes_moved "
                              "counts the expected one")
    return str(adapter.dtype_of(out))


def probe(prepared: Prepared) -> float:
    """One more call, timed: the steady-state estimate that sizes the warm-up and rounds."""
    start = prepared.clock()
    prepared.target()
    return prepared.clock() - start


def run_task(adapter: Any, impl: Implementation, task: TimingTask,
             cache: InputCache | None = None) -> Reply:
    """One timing task in the worker: the reply's ``record`` fields, and the roofline."""
    started = time.perf_counter()
    cache = cache if cache is not None else _CACHE
    options = TimingOptions.from_mapping(task.timing)
    shape = tuple(int(v) for v in task.shape)
    seed = int(task.seed)
    if task.op != impl.op:
        raise ValueError(f"task op {task.op!r} is not {impl.name}'s op {impl.op!r}")
    if task.copy:  # measured by this run's first stage: the same number everywhere
        _ROOFLINES.setdefault((adapter.framework, task.device, options.copy_bytes),
                              dict(task.copy))
    prepared = prepare(adapter, impl, task.pass_, shape, task.dtype, task.device, seed,
                       cache)
    first_s, out = first_call(prepared)
    out_dtype = check_output(adapter, prepared, out)
    del out
    if prepared.pass_ == FORWARD:
        _FORWARD_OUT_DTYPE[(impl.name, prepared.dtype)] = out_dtype
        forward_out = None
    else:
        forward_out = forward_output_dtype(adapter, prepared, cache, seed)
    probe_s = probe(prepared)
    rounds = plan_rounds(options, probe_s, time.perf_counter() - started)
    if rounds.note:
        prepared.notes.append(rounds.note)
    m = benchmark(prepared.target, prepared.clock, options, warmup=rounds.warmup,
                  rounds=rounds.rounds, name=impl.name)
    peak = adapter.peak_memory(prepared.target, prepared.device)
    try:
        copy: dict[str, Any] | None = measure_copy(adapter, prepared.device, options)
    except (MemoryError, NotImplementedError, RuntimeError) as exc:
        copy = None
        prepared.notes.append(f"no copy roofline: {type(exc).__name__}: {exc}")
    record = summarize(prepared, m, first_call_s=first_s, out_dtype=out_dtype,
                       forward_out_dtype=forward_out, peak=peak, copy=copy)
    data: dict[str, Any] = {"record": record, "roofline": copy, "malloc": pin_malloc()}
    if task.fidelity:
        data["fidelity"] = fidelity_check(prepared, options)
    return Reply("ok", data=data)


_CACHE = InputCache()


# -- fidelity against torch.utils.benchmark -------------------------------------------------------

FIDELITY_TOLERANCE = 0.10


def fidelity_check(prepared: Prepared, options: TimingOptions, *, pairs: int = 3,
                   min_run_time: float = 1.0, first: Measurement | None = None
                   ) -> dict[str, Any]:
    """The harness's median against torch.utils.benchmark's on the same callable, in the same
    process, with the same intra-op threads (Timer defaults to one). Needs torch.

    ``pairs`` times, alternately: the harness (``benchmark``, ``max_time = min_run_time``) and
    ``Timer(...).blocked_autorange(min_run_time)``; the figures compared are the medians of
    each side's medians, so a load change on a shared machine hits both alike. ``first``, a
    harness measurement just taken, counts as the first harness side.
    """
    from torch.utils.benchmark import Timer

    kwargs: dict[str, Any] = {"stmt": "target()", "globals": {"target": prepared.target}}
    if prepared.threads:
        kwargs["num_threads"] = prepared.threads
    timer = Timer(**kwargs)
    harness_options = replace(options, max_time=min_run_time, budget_s=None)
    harness: list[float] = []
    timed: list[float] = []
    if first is not None:
        call_s = first.median_s
    else:
        start = prepared.clock()
        prepared.target()
        call_s = prepared.clock() - start
    plan = plan_rounds(harness_options, call_s)
    for i in range(pairs):
        m = first if (i == 0 and first is not None) else benchmark(
            prepared.target, prepared.clock, harness_options, warmup=plan.warmup,
            rounds=plan.rounds, name="fidelity")
        harness.append(m.median_s)
        timed.append(float(timer.blocked_autorange(min_run_time=min_run_time).median))
    ours, theirs = float(np.median(harness)), float(np.median(timed))
    ratio = ours / theirs
    return {"implementation": prepared.impl.name, "op": prepared.op, "pass": prepared.pass_,
            "shape": list(prepared.shape), "dtype": prepared.dtype, "device": prepared.device,
            "threads": prepared.threads, "harness_median_s": ours, "timer_median_s": theirs,
            "harness_medians_s": harness, "timer_medians_s": timed, "pairs": pairs,
            "harness_timer": prepared.timer,
            "timer": f"torch.utils.benchmark.Timer.blocked_autorange(min_run_time={min_run_time})",
            "ratio": ratio, "tolerance": FIDELITY_TOLERANCE,
            "within_tolerance": abs(ratio - 1.0) <= FIDELITY_TOLERANCE}
