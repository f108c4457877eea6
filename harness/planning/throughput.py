"""The throughput planner: timing tasks of a throughput suite, and what their replies mean.

``softmax-bench run --suite throughput`` (any suite with ``kind = "throughput"``) plans here and
runs on the same engine as accuracy. The parent never imports a framework and never builds the
inputs: a task names the shape, dtype and a seed, and the worker generates the arrays
(``harness.worker.timing``), so a 2**24-class row or an 8192 x 128256 batch never travels through
an ``.npz`` file. The run has two stages: first every framework measures the device's copy
roofline, so that each timing record, written as soon as it is known, carries its share of the
fastest copy on the device (``roofline_fraction``) and of its own framework's copy
(``framework_roofline_fraction``); then the timing tasks, one at a time (timing is serial).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.engine.core import Unit
from harness.engine.local import Session
from harness.messages import Catalog, ImplInfo, Reply, Request, RooflineTask
from harness.messages import TimingTask as MessageTimingTask
from harness.planning import suites
from harness.planning.request import RunOptions
from harness.registry import choose
from harness.store import environment
from harness.vocabulary import BACKWARD, DTYPE_SIZES, FORWARD, OK, THROUGHPUT_FAMILY
from harness.worker.timing import TimingOptions, case_seed

CASE_FAMILY = THROUGHPUT_FAMILY
# Peak memory of one task, in multiples of the logits held in max(dtype, float32): inputs and
# their framework copies, the output, the implementations' temporaries (numpy's naive forms
# keep two or three full-size temporaries, half dtypes compute in float32), the saved forward
# and the gradient for the backward pass. Conservative on purpose: an out-of-memory kill on a
# shared machine takes other processes with it.
MEMORY_FACTOR = {FORWARD: 6, BACKWARD: 10}
MEMORY_SHARE = 0.7  # of MemAvailable at planning time, for one task
BUDGET_SHARE = 0.8  # of --timeout that the worker plans its rounds in
# The fidelity check (docs/throughput.md) rides on this task of a CPU run.
FIDELITY_TASK = ("torch.nn.functional.softmax", "softmax", FORWARD, "float32", (256, 32000))


def default_threads() -> int:
    """Intra-op threads when --threads is not given: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def case_id(shape: tuple[int, ...]) -> str:
    return f"{CASE_FAMILY}[shape={'x'.join(str(v) for v in shape)}]"


@dataclass(frozen=True)
class TimingCase:
    """One (shape, dtype, op) of a throughput suite."""

    shape: tuple[int, int]
    dtype: str
    op: str

    @property
    def case_id(self) -> str:
        return case_id(self.shape)

    @property
    def seed(self) -> int:
        return case_seed(self.case_id)


@dataclass(frozen=True)
class TimingTask:
    impl: ImplInfo
    case: TimingCase
    pass_: str

    @property
    def framework(self) -> str:
        return self.impl.framework

    @property
    def impl_name(self) -> str:
        return self.impl.name

    def key(self, device: str) -> tuple[str, ...]:
        return (self.impl.name, self.case.op, self.pass_, self.case.case_id, self.case.dtype,
                device)

    def record_base(self, device: str) -> dict[str, Any]:
        return {"implementation": self.impl.name, "framework": self.impl.framework,
                "op": self.case.op, "pass": self.pass_, "device": device,
                "dtype": self.case.dtype, "case": self.case.case_id,
                "case_family": CASE_FAMILY, "shape": list(self.case.shape)}

    def describe(self) -> str:
        return f"{self.impl.name} {self.case.case_id} {self.case.dtype} {self.pass_}"


@dataclass(frozen=True)
class RooflineProbe:
    """The first stage's task: one framework's copy roofline (kept in run.json, no record)."""

    framework: str


@dataclass(frozen=True)
class MemoryBound:
    """The largest task a device may run: bytes available to one task, or None (no bound)."""

    device: str
    limit_bytes: int | None
    source: str

    def need(self, case: TimingCase, pass_: str) -> int:
        """Estimated peak bytes of one task (MEMORY_FACTOR x the logits, at least float32)."""
        n, c = case.shape
        return MEMORY_FACTOR[pass_] * n * c * max(DTYPE_SIZES[case.dtype], 4)

    def refuses(self, case: TimingCase, pass_: str) -> str | None:
        if self.limit_bytes is None:
            return None
        need = self.need(case, pass_)
        if need <= self.limit_bytes:
            return None
        return (f"beyond the {self.device} memory bound: needs about {_gib(need)} "
                f"({MEMORY_FACTOR[pass_]} x the logits in max({case.dtype}, float32)), "
                f"{_gib(self.limit_bytes)} allowed ({self.source})")

    def describe(self) -> str:
        if self.limit_bytes is None:
            return f"{self.device} memory bound: none ({self.source})"
        largest = {d: self.limit_bytes // (MEMORY_FACTOR[FORWARD] * max(s, 4))
                   for d, s in DTYPE_SIZES.items()}
        shown = ", ".join(f"{d} {v / 1e6:.0f}M" for d, v in largest.items())
        return (f"{self.device} memory bound: {_gib(self.limit_bytes)} per task ({self.source}); "
                f"largest forward N*C elements: {shown} (backward: x{MEMORY_FACTOR[FORWARD]}/"
                f"{MEMORY_FACTOR[BACKWARD]} of that)")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def mem_available(path: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable in bytes (Linux), or None."""
    return environment.meminfo_bytes("MemAvailable", path)


def memory_bound(device: str, available: int | None = None) -> MemoryBound:
    """The per-task memory bound of ``device``, measured now (CPU: MemAvailable)."""
    if device != "cpu":
        # GPU: the parent imports no framework, so it cannot ask the device; the lead's CUDA
        # work can probe it in a worker (torch.cuda.mem_get_info) and pass it in.
        return MemoryBound(device, None, "no bound is computed for GPUs yet; out-of-memory "
                                         "errors are recorded as results")
    available = mem_available() if available is None else available
    if available is None:
        return MemoryBound(device, None, "MemAvailable is unknown on this system")
    return MemoryBound(device, int(available * MEMORY_SHARE),
                       f"{MEMORY_SHARE:.0%} of MemAvailable {_gib(available)} at start")


def cases_of(suite: suites.Suite, dtypes: tuple[str, ...] = ()) -> list[TimingCase]:
    """The suite's (shape, dtype, op) in run order: dtype (as listed: float32 first), then
    shape, then op; each once."""
    seen: set[TimingCase] = set()
    ordered: list[TimingCase] = []
    dtype_order: list[str] = []
    for entry in suite.entries:
        for d in entry.dtypes:
            if d not in dtype_order:
                dtype_order.append(d)
    for dtype in dtype_order:
        if dtypes and dtype not in dtypes:
            continue
        for entry in suite.entries:
            if dtype not in entry.dtypes:
                continue
            for shape in entry.params["shape"]:
                for op in entry.ops:
                    case = TimingCase((int(shape[0]), int(shape[1])), dtype, op)
                    if case not in seen:
                        seen.add(case)
                        ordered.append(case)
    return ordered


def make_plan(opts: RunOptions, suite: suites.Suite, catalog: Catalog | dict[str, Any],
              available: int | None = None) -> ThroughputPlanner:
    """Every (implementation, case, pass) the options select, in run order."""
    catalog = Catalog.from_json(catalog)
    if opts.threads is None:
        opts = dataclasses.replace(opts, threads=default_threads())
    chosen = choose(list(catalog.implementations), opts.device, opts.include, opts.exclude)
    tasks = [TimingTask(impl, case, pass_)
             for case in cases_of(suite, opts.dtypes)
             for impl in chosen if impl.op == case.op
             for pass_ in (FORWARD, BACKWARD)]
    timing = TimingOptions.from_mapping(dict(suite.timing))
    timing = dataclasses.replace(timing, budget_s=opts.timeout * BUDGET_SHARE)
    return ThroughputPlanner(opts, tasks, chosen, list(catalog.errors), timing,
                             memory_bound(opts.device, available), opts.threads)


def _log(message: str) -> None:
    print(f"softmax-bench: {message}", file=sys.stderr)


@dataclass
class ThroughputPlanner:
    """Plans a throughput suite and turns timing replies into records."""

    opts: RunOptions
    tasks: list[TimingTask]
    implementations: list[ImplInfo]
    plugin_errors: list[str] = field(default_factory=list)
    timing: TimingOptions = field(default_factory=TimingOptions)
    bound: MemoryBound | None = None
    threads: int | None = None
    kind: str = "throughput"

    def __post_init__(self) -> None:
        self.device, self.timeout = self.opts.device, self.opts.timeout
        self.roofline: dict[str, float] = {}  # "framework:device" -> copy GB/s
        self.roofline_detail: dict[str, dict[str, Any]] = {}
        self.fidelity: dict[str, Any] | None = None
        self.malloc: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- the engine's questions ---------------------------------------------------------------

    def units(self) -> list[Unit]:
        by_framework: dict[str, list[TimingTask]] = defaultdict(list)
        for task in self.tasks:
            by_framework[task.impl.framework].append(task)
        probes = [Unit(fw, [RooflineProbe(fw)], stage=0, recorded=False) for fw in by_framework
                  if f"{fw}:{self.device}" not in self.roofline_detail
                  and any(self.skip_reason(t) is None for t in by_framework[fw])]
        return probes + [Unit(fw, tasks, stage=1) for fw, tasks in by_framework.items()]

    def concurrency(self) -> int | None:
        return 1  # timing is serial: one worker, one task at a time

    def skip_reason(self, task: TimingTask | RooflineProbe) -> str | None:
        if isinstance(task, RooflineProbe):
            return None
        if task.case.dtype not in task.impl.dtypes:
            return f"{task.impl.name} does not support {task.case.dtype}"
        if task.pass_ == BACKWARD and not task.impl.differentiable:
            return "no autodiff: forward only"
        if self.bound is not None:
            return self.bound.refuses(task.case, task.pass_)
        return None

    def message(self, task: TimingTask | RooflineProbe) -> Request:
        if isinstance(task, RooflineProbe):
            return RooflineTask(self.device, self.timing.as_dict())
        return MessageTimingTask(task.impl.name, task.case.op, task.pass_, task.case.dtype,
                                 self.device, task.case.shape, task.case.seed,
                                 self.timing.as_dict(), self._fidelity_task(task),
                                 self.roofline_detail.get(f"{task.impl.framework}:{self.device}"))

    def outcome(self, task: TimingTask | RooflineProbe, message: Request, reply: Reply,
                session: Session) -> dict[str, Any]:
        if isinstance(task, RooflineProbe):
            self.probe_outcome(task, reply)
            return {}
        if reply.status != OK:
            return {"status": reply.status, "message": reply.message}
        data = reply.data
        name = f"{task.impl.framework}:{self.device}"
        with self._lock:
            self._keep_roofline(name, data.get("roofline"))
            if data.get("fidelity"):
                self.fidelity = data["fidelity"]
            if data.get("malloc"):
                self.malloc[name] = data["malloc"]
        return {"status": OK, **self._shares(dict(data.get("record", {})))}

    def probe_outcome(self, probe: RooflineProbe, reply: Reply) -> None:
        """The first stage's result: the framework's copy roofline, or nothing (its timing
        tasks then measure their own, as a lone worker would)."""
        if reply.status == OK:
            with self._lock:
                self._keep_roofline(f"{probe.framework}:{self.device}", reply.data.get("roofline"))

    def _keep_roofline(self, name: str, roofline: Any) -> None:
        if roofline and name not in self.roofline_detail:
            self.roofline[name] = float(roofline["copy_gbps"])
            self.roofline_detail[name] = dict(roofline)

    def device_copy_gbps(self) -> float | None:
        copies = [v for k, v in self.roofline.items() if k.endswith(f":{self.device}")]
        return max(copies) if copies else None

    def _shares(self, record: dict[str, Any]) -> dict[str, Any]:
        """Both roofline shares, stored as the report shows them: of the fastest copy on the
        device in this run, and of the framework's own copy."""
        gbps, own = record.get("gbps"), record.get("copy_gbps")
        fastest = max([v for v in (self.device_copy_gbps(), own) if v] or [0.0]) or None
        record["framework_roofline_fraction"] = gbps / own if gbps and own else None
        record["device_copy_gbps"] = fastest
        record["roofline_fraction"] = gbps / fastest if gbps and fastest else None
        return record

    def run_meta(self) -> dict[str, Any]:
        opts = self.opts
        return {"suite": opts.suite, "kind": "throughput", "device": opts.device,
                "dtypes": list(opts.dtypes), "include": list(opts.include),
                "exclude": list(opts.exclude), "timeout_s": opts.timeout,
                "threads": self.threads, "timing": self.timing.as_dict(),
                "memory_bound": {"bytes": self.bound.limit_bytes if self.bound else None,
                                 "source": self.bound.source if self.bound else None,
                                 "factors": dict(MEMORY_FACTOR)},
                "families": {CASE_FAMILY: {"adversarial": False}},
                "plugin_errors": self.plugin_errors,
                "implementations": [i.to_json() for i in self.implementations]}

    def end_meta(self) -> dict[str, Any]:
        end: dict[str, Any] = {"roofline": self.roofline, "roofline_detail": self.roofline_detail,
                               "device_copy_gbps": {self.device: self.device_copy_gbps()},
                               "malloc": self.malloc}
        if self.fidelity is not None:
            end["fidelity"] = self.fidelity
        return end

    def resume_from(self, records: Iterable[Mapping[str, Any]]) -> None:
        """A resumed run keeps the copy rooflines its records already hold (each framework's
        copy is measured once per run, so the records and run.json agree)."""
        for record in records:
            name = f"{record.get('framework')}:{record.get('device')}"
            if record.get("copy_gbps") and name not in self.roofline_detail:
                self._keep_roofline(name, {"copy_gbps": record["copy_gbps"],
                                           "copy_bytes": record.get("copy_bytes")})

    def after_resume(self, session_for: Callable[[str], Session]) -> None:
        """The fidelity check of a resumed run whose fidelity task was done before the
        interruption: run it again (its record is not stored twice)."""
        if self.fidelity is not None:
            return
        for task in self.tasks:
            if self._fidelity_task(task) and not self.skip_reason(task):
                session = session_for(task.impl.framework)
                try:
                    reply = session.request(self.message(task), self.timeout)
                    if reply.status == OK and reply.data.get("fidelity"):
                        self.fidelity = reply.data["fidelity"]
                finally:
                    session.close()
                return

    def announce(self, log: Callable[[str], None] = _log) -> None:
        log(f"throughput: {len(self.tasks)} tasks on {self.device}, {self.threads} intra-op "
            f"threads in every framework")
        if self.bound is not None:
            log(self.bound.describe())
            refused = sorted({(t.case.case_id, t.case.dtype, t.pass_) for t in self.tasks
                              if self.bound.refuses(t.case, t.pass_)})
            if refused:
                shown = "; ".join(f"{c} {d} {p}" for c, d, p in refused)
                log(f"beyond the memory bound (recorded as unsupported): {shown}")

    def report_fidelity(self, log: Callable[[str], None] = _log) -> None:
        f = self.fidelity
        if f is not None:
            log(f"fidelity: harness median {f['harness_median_s'] * 1e3:.3f} ms, "
                f"torch.utils.benchmark {f['timer_median_s'] * 1e3:.3f} ms, ratio "
                f"{f['ratio']:.3f} ({'within' if f['within_tolerance'] else 'OUTSIDE'} "
                f"{f['tolerance']:.0%})")

    def _fidelity_task(self, task: TimingTask) -> bool:
        name, op, pass_, dtype, shape = FIDELITY_TASK
        return (self.device == "cpu" and task.impl.name == name and task.case.op == op
                and task.pass_ == pass_ and task.case.dtype == dtype
                and task.case.shape == shape)


# -- fused versus composed cross-entropy ----------------------------------------------------

# (framework, op, fused, composed, modes): the composed form is softmax, then log, then pick the
# label (sparse) or dot with the labels (dense), in the same framework; each mode suffix pairs
# the compiled variants too.
FUSED_VS_COMPOSED: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("numpy", "sparse_softmax_cross_entropy", "numpy.cross_entropy_fused",
     "numpy.cross_entropy_composed", ("",)),
    ("numpy", "softmax_cross_entropy", "numpy.cross_entropy_fused(probs)",
     "numpy.cross_entropy_composed(probs)", ("",)),
    ("torch", "sparse_softmax_cross_entropy", "torch.nn.functional.cross_entropy",
     "torch.composed_softmax_log_pick", ("", "@compile")),
    ("torch", "softmax_cross_entropy", "torch.nn.functional.cross_entropy(probs)",
     "torch.composed_softmax_log_dot", ("", "@compile")),
    ("tensorflow", "sparse_softmax_cross_entropy",
     "tensorflow.nn.sparse_softmax_cross_entropy_with_logits",
     "tensorflow.composed_softmax_log_pick", ("", "@function", "@xla")),
    ("tensorflow", "softmax_cross_entropy", "tensorflow.nn.softmax_cross_entropy_with_logits",
     "tensorflow.composed_softmax_log_dot", ("", "@function", "@xla")),
    ("jax", "sparse_softmax_cross_entropy", "optax.softmax_cross_entropy_with_integer_labels",
     "jax.composed_softmax_log_pick", ("", "@jit")),
    ("jax", "softmax_cross_entropy", "optax.softmax_cross_entropy",
     "jax.composed_softmax_log_dot", ("", "@jit")),
)


def fused_vs_composed(frame: Any) -> Any:
    """The speed half of the fused-versus-composed question, from ``results.load`` rows: one
    row per (framework, op, mode, case, dtype, pass, device) where both forms were timed, with
    each side's median and GB/s and ``speedup`` = composed median / fused median (> 1: the
    fused loss is faster)."""
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    ok = frame[(frame["status"] == "ok") & frame["median_s"].notna()]
    keys = ["case", "dtype", "pass", "device"]
    rows = []
    for framework, op, fused, composed, modes in FUSED_VS_COMPOSED:
        for mode in modes:
            a = ok[ok["implementation"] == fused + mode].set_index(keys)
            b = ok[ok["implementation"] == composed + mode].set_index(keys)
            for key in a.index.intersection(b.index):
                fa, fb = a.loc[key], b.loc[key]
                rows.append({"framework": framework, "op": op, "mode": mode.lstrip("@") or
                             "eager", **dict(zip(keys, key)), "fused": fused + mode,
                             "composed": composed + mode, "fused_median_s": fa["median_s"],
                             "composed_median_s": fb["median_s"], "fused_gbps": fa["gbps"],
                             "composed_gbps": fb["gbps"],
                             "speedup": fb["median_s"] / fa["median_s"]})
    return pd.DataFrame(rows, columns=["framework", "op", "mode", *keys, "fused", "composed",
                                       "fused_median_s", "composed_median_s", "fused_gbps",
                                       "composed_gbps", "speedup"])
