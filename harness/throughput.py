"""Run a throughput suite: plan the timing tasks, drive one worker per framework, store records.

``softmax-bench run --suite throughput`` (any suite with ``kind = "throughput"``) comes here
from ``harness.runner.run_suite``. The parent never imports a framework and never builds the
inputs: a task names the shape, dtype and a seed, and the worker generates the arrays
(``harness.worker.timing``), so a 2**24-class row or an 8192 x 128256 batch never travels through an
``.npz`` file. Every planned task ends as exactly one record, appended as soon as it is known:
``ok`` with the timing fields, or ``error``, ``crash``, ``timeout``, ``unsupported`` (dtype, no
autodiff, beyond the memory bound) or ``unavailable``, each with its reason. A worker that
crashes or hangs is killed and the next task starts a fresh one; ``--resume`` skips records
already stored. Timing is serial: one worker, one task at a time.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import store as results
from harness.engine.workers import Worker, kill_all, list_implementations
from harness.frameworks import framework_statuses
from harness.ops import BACKWARD, FORWARD
from harness.planning import suites
from harness.registry import choose
from harness.store import environment
from harness.worker.timing import TimingOptions, case_seed

if TYPE_CHECKING:  # harness.runner imports this module lazily, from run_suite
    from harness.runner import RunOptions

CASE_FAMILY = "throughput"
DTYPE_SIZES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
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


@dataclass
class TimingTask:
    impl: dict[str, Any]
    case: TimingCase
    pass_: str

    def key(self, device: str) -> tuple[str, ...]:
        return (self.impl["name"], self.case.op, self.pass_, self.case.case_id, self.case.dtype,
                device)

    def record_base(self, device: str) -> dict[str, Any]:
        return {"implementation": self.impl["name"], "framework": self.impl["framework"],
                "op": self.case.op, "pass": self.pass_, "device": device,
                "dtype": self.case.dtype, "case": self.case.case_id,
                "case_family": CASE_FAMILY, "shape": list(self.case.shape)}


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


@dataclass
class ThroughputPlan:
    tasks: list[TimingTask]
    implementations: list[dict[str, Any]]
    plugin_errors: list[str] = field(default_factory=list)
    timing: TimingOptions = field(default_factory=TimingOptions)
    bound: MemoryBound | None = None
    threads: int | None = None


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


def make_plan(opts: RunOptions, suite: suites.Suite, catalog: dict[str, Any] | None = None,
              available: int | None = None) -> ThroughputPlan:
    """Every (implementation, case, pass) the options select, in run order."""
    catalog = catalog or list_implementations()
    chosen = choose(catalog["implementations"], opts.device, opts.include, opts.exclude)
    tasks = [TimingTask(impl, case, pass_)
             for case in cases_of(suite, opts.dtypes)
             for impl in chosen if impl["op"] == case.op
             for pass_ in (FORWARD, BACKWARD)]
    timing = TimingOptions.from_mapping(dict(suite.timing))
    timing = dataclasses.replace(timing, budget_s=opts.timeout * BUDGET_SHARE)
    return ThroughputPlan(tasks, chosen, list(catalog.get("errors", [])), timing,
                          memory_bound(opts.device, available), opts.threads)


def _log(message: str) -> None:
    print(f"softmax-bench: {message}", file=sys.stderr)


class ThroughputRunner:
    """Executes a throughput plan into a run directory."""

    def __init__(self, opts: RunOptions, plan: ThroughputPlan, store: results.RunDirectory,
                 progress: Callable[[int, int, str], None] | None = None):
        self.opts, self.plan, self.store = opts, plan, store
        self.progress = progress or (lambda done, total, what: None)
        self.counts: dict[str, int] = defaultdict(int)
        self.settings: dict[str, Any] = {}
        self.roofline: dict[str, float] = {}
        self.roofline_detail: dict[str, dict[str, Any]] = {}
        self.fidelity: dict[str, Any] | None = None
        self.malloc: dict[str, str] = {}
        self.worker_seconds: dict[str, float] = defaultdict(float)

    def _emit(self, task: TimingTask, fields: dict[str, Any]) -> None:
        record = {**task.record_base(self.opts.device), "message": "", **fields}
        self.store.append(record)
        self.counts[record["status"]] += 1

    def _skip_reason(self, task: TimingTask) -> str | None:
        if task.case.dtype not in task.impl["dtypes"]:
            return f"{task.impl['name']} does not support {task.case.dtype}"
        if task.pass_ == BACKWARD and not task.impl["differentiable"]:
            return "no autodiff: forward only"
        if self.plan.bound is not None:
            return self.plan.bound.refuses(task.case, task.pass_)
        return None

    def run(self) -> dict[str, int]:
        done_keys = self.store.finished_keys() if self.opts.resume else set()
        by_framework: dict[str, list[TimingTask]] = defaultdict(list)
        for task in self.plan.tasks:
            by_framework[task.impl["framework"]].append(task)
        total = len(self.plan.tasks)
        done = 0
        statuses = {s.name: s for s in framework_statuses()}
        env = {"SOFTMAX_BENCH_THREADS": str(self.plan.threads)} if self.plan.threads else {}
        for framework, tasks in by_framework.items():
            pending = [t for t in tasks if t.key(self.opts.device) not in done_keys]
            done += len(tasks) - len(pending)
            status = statuses.get(framework)
            unavailable = status.reason if status is not None and not status.available else ""
            worker: Worker | None = None
            started = time.perf_counter()
            for task in pending:
                self.progress(done, total, f"{task.impl['name']} {task.case.case_id} "
                                           f"{task.case.dtype} {task.pass_}")
                reason = self._skip_reason(task)
                if unavailable:
                    self._emit(task, {"status": "unavailable", "message": unavailable})
                elif reason:
                    self._emit(task, {"status": "unsupported", "message": reason})
                else:
                    if worker is None or not worker.alive:
                        worker = Worker(framework, self.opts.device, env=env)
                        self.settings.setdefault(framework, worker.hello.get("settings", {}))
                        if not worker.hello.get("available"):
                            unavailable = worker.hello.get("reason", "unavailable")
                            self._emit(task, {"status": "unavailable", "message": unavailable})
                            done += 1
                            continue
                    self._emit(task, self._execute(worker, task))
                done += 1
            if worker is not None:
                worker.close()
            self.worker_seconds[framework] += time.perf_counter() - started
        if self.opts.resume:
            self._after_resume(env)
        self.progress(total, total, "done")
        return dict(self.counts)

    def _after_resume(self, env: dict[str, str]) -> None:
        """What an interrupted run kept only in memory: the rooflines of frameworks whose
        tasks were all done before (from their records), and the fidelity check (run again,
        its record not stored twice)."""
        for record in self.store.records():
            name = f"{record.get('framework')}:{record.get('device')}"
            if record.get("copy_gbps") and name not in self.roofline:
                self.roofline[name] = record["copy_gbps"]
        if self.fidelity is not None:
            return
        for task in self.plan.tasks:
            if self._fidelity_task(task) and not self._skip_reason(task):
                worker = Worker(task.impl["framework"], self.opts.device, env=env)
                try:
                    if worker.hello.get("available"):
                        self._execute(worker, task)
                finally:
                    worker.close()
                return

    def _execute(self, worker: Worker, task: TimingTask) -> dict[str, Any]:
        message = {"type": "task", "mode": "time", "id": 0, "impl": task.impl["name"],
                   "op": task.case.op, "pass": task.pass_, "dtype": task.case.dtype,
                   "device": self.opts.device, "shape": list(task.case.shape),
                   "seed": task.case.seed, "timing": self.plan.timing.as_dict(),
                   "fidelity": self._fidelity_task(task)}
        start = time.perf_counter()
        reply = worker.request(message, self.opts.timeout)
        wall = time.perf_counter() - start
        if reply.status in ("crash", "timeout"):
            worker.kill()  # the next task starts a fresh worker
        if reply.status != "ok" or reply.data is None:
            return {"status": reply.status, "message": reply.message, "wall_s": wall}
        data = reply.data
        roofline = data.get("roofline")
        if roofline:
            name = f"{worker.framework}:{self.opts.device}"
            self.roofline[name] = roofline["copy_gbps"]
            self.roofline_detail[name] = roofline
        if data.get("fidelity"):
            self.fidelity = data["fidelity"]
        if data.get("malloc"):
            self.malloc[f"{worker.framework}:{self.opts.device}"] = data["malloc"]
        return {"status": "ok", **data.get("record", {}), "wall_s": wall}

    def _fidelity_task(self, task: TimingTask) -> bool:
        name, op, pass_, dtype, shape = FIDELITY_TASK
        return (self.opts.device == "cpu" and task.impl["name"] == name and task.case.op == op
                and task.pass_ == pass_ and task.case.dtype == dtype
                and task.case.shape == shape)


def run_suite(opts: RunOptions, suite: suites.Suite,
              progress: Callable[[int, int, str], None] | None = None,
              catalog: dict[str, Any] | None = None,
              log: Callable[[str], None] = _log) -> tuple[Path, dict[str, int], ThroughputPlan]:
    """Plan, create (or resume) the run directory, time, and finish it."""
    if opts.threads is None:
        opts = dataclasses.replace(opts, threads=default_threads())
    plan = make_plan(opts, suite, catalog)
    meta = {"suite": opts.suite, "kind": "throughput", "device": opts.device,
            "dtypes": list(opts.dtypes), "include": list(opts.include),
            "exclude": list(opts.exclude), "timeout_s": opts.timeout, "threads": plan.threads,
            "timing": plan.timing.as_dict(),
            "memory_bound": {"bytes": plan.bound.limit_bytes if plan.bound else None,
                             "source": plan.bound.source if plan.bound else None,
                             "factors": dict(MEMORY_FACTOR)},
            "plugin_errors": plan.plugin_errors, "implementations": plan.implementations}
    store = (results.RunDirectory.open_for_resume(opts.out) if opts.resume
             else results.RunDirectory.create(opts.out, meta))
    log(f"throughput: {len(plan.tasks)} tasks on {opts.device}, {plan.threads} intra-op "
        f"threads in every framework")
    if plan.bound is not None:
        log(plan.bound.describe())
        refused = sorted({(t.case.case_id, t.case.dtype, t.pass_) for t in plan.tasks
                          if plan.bound.refuses(t.case, t.pass_)})
        if refused:
            shown = "; ".join(f"{c} {d} {p}" for c, d, p in refused)
            log(f"beyond the memory bound (recorded as unsupported): {shown}")
    runner = ThroughputRunner(opts, plan, store, progress)
    try:
        counts = runner.run()
    except BaseException:  # Ctrl-C: the task being timed is dropped, not recorded
        kill_all()
        store.close()  # what was recorded stays, fsynced; --resume finishes the run
        raise
    end: dict[str, Any] = {"counts": counts, "framework_settings": runner.settings,
                           "roofline": runner.roofline, "roofline_detail": runner.roofline_detail,
                           "malloc": runner.malloc,
                           "worker_seconds": dict(runner.worker_seconds)}
    if runner.fidelity is not None:
        end["fidelity"] = runner.fidelity
        f = runner.fidelity
        log(f"fidelity: harness median {f['harness_median_s'] * 1e3:.3f} ms, "
            f"torch.utils.benchmark {f['timer_median_s'] * 1e3:.3f} ms, ratio {f['ratio']:.3f} "
            f"({'within' if f['within_tolerance'] else 'OUTSIDE'} {f['tolerance']:.0%})")
    store.finish(end)
    return opts.out, counts, plan


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
