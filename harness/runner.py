"""Run a suite: plan the tasks, drive one worker per framework, score, store as results arrive.

The parent computes every exact reference itself (``references`` knows no framework) once per
(case, op, pass, dtype) and shares it across implementations; workers only run the code under
test. Every planned task ends as exactly one record: ok (scored), error, crash, timeout,
unsupported or unavailable, each with its reason.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from harness import arrays_io, scoring
from harness import store as results
from harness.engine import workers
from harness.engine.workers import Reply, Worker, list_implementations
from harness.errors import ConfigError
from harness.frameworks import framework_statuses
from harness.ops import BACKWARD, FORWARD, OPS
from harness.planning import cases as cases_mod
from harness.planning import suites
from harness.registry import choose

U = TypeVar("U")

DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class RunOptions:
    suite: str = "quick"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    device: str = "cpu"
    dtypes: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    out: Path = Path("runs/latest")
    resume: bool = False
    threads: int | None = None
    jobs: int = 2  # framework workers running at once


@dataclass
class Task:
    impl: dict[str, Any]
    case: cases_mod.CaseInput
    pass_: str

    def record_base(self, device: str) -> dict[str, Any]:
        return {"implementation": self.impl["name"], "framework": self.impl["framework"],
                "op": self.case.op, "pass": self.pass_, "device": device,
                "dtype": self.case.dtype, "case": self.case.case_id,
                "case_family": self.case.family, "case_status": self.case.status,
                "shape": list(self.case.shape)}


@dataclass
class Plan:
    tasks: list[Task]
    implementations: list[dict[str, Any]]
    plugin_errors: list[str] = field(default_factory=list)


def _applies(impl: dict[str, Any], case: cases_mod.CaseInput) -> bool:
    if impl["op"] != case.op:
        return False
    needed = {k for k, v in case.options.items() if v is not None}
    return needed <= set(impl["options"]) if case.op == "cross_entropy" else True


def make_plan(opts: RunOptions, catalog: dict[str, Any] | None = None) -> Plan:
    """Every (implementation, case, pass) the options select, in a stable order."""
    if opts.jobs < 1:
        raise ConfigError(f"--jobs {opts.jobs}: must be at least 1")
    suite = suites.get_suite(opts.suite)
    catalog = catalog or list_implementations()
    chosen = choose(catalog["implementations"], opts.device, opts.include, opts.exclude)
    all_cases = [c for c in cases_mod.generate(suite) if not opts.dtypes or c.dtype in opts.dtypes]
    tasks = [Task(impl, case, pass_) for impl in chosen for case in all_cases
             if _applies(impl, case) for pass_ in (FORWARD, BACKWARD)]
    return Plan(tasks, chosen, list(catalog.get("errors", [])))


class References:
    """Exact answers per (case, op, pass, dtype), computed once and shared.

    ``lock`` serialises everything that touches a reference: mpmath's working precision is
    global state, and results evaluate lazily, so scoring holds the lock too.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[str, ...], Any] = {}
        self.lock = threading.RLock()

    def get(self, case: cases_mod.CaseInput, pass_: str) -> Any:
        key = (case.case_id, case.op, pass_, case.dtype)
        if key not in self._memo:
            spec = OPS[case.op]
            try:
                self._memo[key] = spec.reference(pass_, case.inputs, case.cotangent, case.options)
            except (ValueError, TypeError) as exc:  # no exact value (e.g. labels out of range)
                self._memo[key] = exc
        return self._memo[key]


class Runner:
    """Executes a plan into a run directory.

    ``opts.jobs`` threads take (implementation, dtype) units off one queue, each through its own
    worker process (a thread that moves on to another framework replaces its worker), so
    several units, of one framework or of several, run at once; a unit's tasks stay in plan
    order. Every case runs alone, at its own
    shape: stacking the rows of several cases into one call was tried and changes results
    (TensorFlow's and XLA's float32 kernels round a row differently depending on the batch
    size, vectorised versus remainder loops), so a record would not be reproducible alone.
    """

    def __init__(self, opts: RunOptions, plan: Plan, store: results.RunDirectory,
                 progress: Callable[[int, int, str], None] | None = None):
        self.opts, self.plan, self.store = opts, plan, store
        self.references = References()
        self._stop = threading.Event()  # set on Ctrl-C: threads finish no further task
        self._progress = progress or (lambda done, total, what: None)
        self._tmp = tempfile.TemporaryDirectory(prefix="softmax-bench-")
        self._inputs: dict[tuple[str, str, str], str] = {}
        self.counts: dict[str, int] = defaultdict(int)
        self.settings: dict[str, Any] = {}
        self._lock = threading.Lock()  # store, counts, progress and the input files
        self._done = 0
        self._serial = itertools.count()

    # -- shared state (called from every framework's thread) -----------------------------------

    def _advance(self, n: int, what: str) -> None:
        with self._lock:
            self._done += n
            self._progress(self._done, len(self.plan.tasks), what)

    def _emit(self, task: Task, fields: dict[str, Any]) -> None:
        record = {**task.record_base(self.opts.device), "message": "", **fields}
        with self._lock:
            self.store.append(record)
            self.counts[record["status"]] += 1
            self._done += 1
            self._progress(self._done, len(self.plan.tasks),
                           f"{task.impl['name']} {task.case.case_id} {task.case.dtype} "
                           f"{task.pass_}")

    def _new_path(self, stem: str) -> str:
        return str(Path(self._tmp.name) / f"{stem}{next(self._serial)}.npz")

    def _inputs_path(self, case: cases_mod.CaseInput) -> str:
        key = (case.case_id, case.op, case.dtype)
        with self._lock:
            if key not in self._inputs:
                path = self._new_path("in")
                arrays_io.save(path, _case_arrays(case))
                self._inputs[key] = path
            return self._inputs[key]

    # -- outcomes ------------------------------------------------------------------------------

    def _score(self, task: Task, actual: np.ndarray | None, raised: str | None) -> dict[str, Any]:
        case = task.case
        with self.references.lock:
            return scoring.score_outcome(
                op=case.op, pass_=task.pass_, dtype=case.dtype, actual=actual,
                reference=self.references.get(case, task.pass_), inputs=case.inputs,
                case_status=case.status_for(task.pass_), family=case.family, raised=raised,
                cotangent=case.cotangent)

    def _outcome(self, task: Task, reply: Reply, out_path: str) -> dict[str, Any]:
        if reply.status == "ok":
            actual = arrays_io.load(out_path)["out"]
            Path(out_path).unlink(missing_ok=True)
            return {"status": "ok", **self._score(task, actual, None)}
        if reply.status == "error":
            # an exception can be the expected behaviour (labels out of range, conventions)
            return {"status": "error", "message": reply.message,
                    **self._score(task, None, reply.message)}
        return {"status": reply.status, "message": reply.message, "verdict": reply.status}

    def _skip_reason(self, task: Task) -> str | None:
        if task.case.unsupported:
            return task.case.unsupported
        if task.case.dtype not in task.impl["dtypes"]:
            return f"{task.impl['name']} does not support {task.case.dtype}"
        if task.pass_ == BACKWARD and not task.impl["differentiable"]:
            return "no autodiff: forward only"
        return None

    # -- execution -----------------------------------------------------------------------------

    def run(self) -> dict[str, int]:
        done_keys = self.store.finished_keys() if self.opts.resume else set()
        statuses = {s.name: s for s in framework_statuses()}
        # A unit is one implementation's tasks in one dtype, in plan order (compiling is the
        # slow part, and per dtype), weighed by the tasks it executes; UnitQueue keeps each
        # thread on one framework.
        units: dict[tuple[str, str, str], list[Task]] = {}
        for task in self.plan.tasks:
            key = (task.impl["framework"], task.impl["name"], task.case.dtype)
            units.setdefault(key, []).append(task)
        queue: UnitQueue[list[Task]] = UnitQueue()
        for (framework, _, _), tasks in units.items():
            queue.add(framework, tasks, sum(self._skip_reason(t) is None for t in tasks))

        def drain() -> None:
            session: _WorkerSession | None = None
            try:
                while not self._stop.is_set() and \
                        (unit := queue.take(session.framework if session else None)) is not None:
                    framework, tasks = unit
                    if session is None or session.framework != framework:
                        if session is not None:
                            session.close()
                        session = _WorkerSession(self, framework)
                    self._run_unit(session, tasks, done_keys, statuses.get(framework))
            finally:
                if session is not None:
                    session.close()

        jobs = max(1, min(self.opts.jobs, len(units)))
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="runner")
        try:
            for future in [pool.submit(drain) for _ in range(jobs)]:
                future.result()  # re-raises a harness bug (a store error, say) here
        except BaseException:  # Ctrl-C (or a harness bug): stop the threads, kill the workers
            self._stop.set()
            workers.kill_all()
            raise
        finally:
            pool.shutdown(wait=True)
            self._tmp.cleanup()
        self._progress(len(self.plan.tasks), len(self.plan.tasks), "done")
        return dict(self.counts)

    def _run_unit(self, session: _WorkerSession, tasks: list[Task],
                  done_keys: set[tuple[str, ...]], status: Any) -> None:
        pending = [t for t in tasks if _key(t, self.opts.device) not in done_keys]
        self._advance(len(tasks) - len(pending), session.framework)
        for task in pending:
            if self._stop.is_set():
                return
            if status is not None and not status.available:
                self._emit(task, {"status": "unavailable", "message": status.reason,
                                  "verdict": "unavailable"})
            elif reason := self._skip_reason(task):
                self._emit(task, {"status": "unsupported", "message": reason,
                                  "verdict": "unsupported"})
            elif (outcome := self._execute(session, task)) is not None:
                self._emit(task, outcome)

    def _execute(self, session: _WorkerSession, task: Task) -> dict[str, Any] | None:
        """The task's record fields; None when the run was stopped meanwhile (the worker was
        killed under it: not a crash of the implementation, so nothing is recorded)."""
        if session.unavailable:
            return {"status": "unavailable", "message": session.unavailable,
                    "verdict": "unavailable"}
        out_path = self._new_path("out")
        start = time.perf_counter()
        reply = session.request(_message(task, self.opts.device, self._inputs_path(task.case),
                                         out_path), self.opts.timeout)
        if self._stop.is_set():
            return None
        if session.unavailable:
            return {"status": "unavailable", "message": session.unavailable,
                    "verdict": "unavailable"}
        wall = time.perf_counter() - start
        outcome = self._outcome(task, reply, out_path)
        outcome["wall_s"] = wall
        return outcome


class UnitQueue(Generic[U]):
    """Units of work grouped by framework, handed to threads with framework affinity.

    ``take(current)`` gives the thread that just finished a unit of ``current`` (None: a new
    thread) the next unit of the same framework while there is one; otherwise a unit of the
    framework with the most work left that no thread runs, or, when every framework left is
    running, of the one with the most work left. So each framework mostly lives in one worker
    process: one import, and compiled pieces shared between its implementations (JAX's
    op-by-op kernels of exp, max, sum, ...) compiled once. Thread-safe.
    """

    def __init__(self) -> None:
        self._units: dict[str, deque[tuple[U, int]]] = {}
        self._work: Counter[str] = Counter()  # weight left per framework
        self._running: Counter[str] = Counter()  # threads on each framework
        self._lock = threading.Lock()

    def add(self, framework: str, unit: U, weight: int) -> None:
        with self._lock:
            self._units.setdefault(framework, deque()).append((unit, weight))
            self._work[framework] += weight

    def take(self, current: str | None) -> tuple[str, U] | None:
        with self._lock:
            if current is not None:
                self._running[current] -= 1
            left = [fw for fw, units in self._units.items() if units]
            if not left:
                return None
            if current not in left:
                current = max(left, key=lambda fw: (self._running[fw] == 0, self._work[fw]))
            self._running[current] += 1
            unit, weight = self._units[current].popleft()
            self._work[current] -= weight
            return current, unit


# Errors after which a process's device context is unusable (CUDA errors are sticky: every later
# call fails the same way), so the worker is replaced before the next task.
STICKY_ERRORS = ("CUDA error", "cudaError", "CUDA_ERROR", "CUBLAS_STATUS", "CUDNN_STATUS",
                 "device-side assert", "illegal memory access")


class _WorkerSession:
    """The framework's worker process, (re)started on demand; a crash or hang kills it."""

    def __init__(self, runner: Runner, framework: str):
        self.runner, self.framework = runner, framework
        self.worker: Worker | None = None
        self.unavailable = ""
        threads = runner.opts.threads
        self.env = {"SOFTMAX_BENCH_THREADS": str(threads)} if threads else {}

    def request(self, message: dict[str, Any], timeout: float) -> Reply:
        if self.worker is None or not self.worker.alive:
            self.worker = Worker(self.framework, self.runner.opts.device, env=self.env)
            with self.runner._lock:
                self.runner.settings.setdefault(self.framework,
                                                self.worker.hello.get("settings", {}))
            if not self.worker.hello.get("available"):
                self.unavailable = self.worker.hello.get("reason", "unavailable")
                return Reply("unavailable", self.unavailable)
        reply = self.worker.request(message, timeout)
        if reply.status in ("crash", "timeout") or (
                reply.status == "error" and any(m in reply.message for m in STICKY_ERRORS)):
            self.worker.kill()  # the next request starts a fresh worker
        return reply

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


def _case_arrays(case: cases_mod.CaseInput) -> dict[str, np.ndarray]:
    arrays = dict(case.inputs)
    if case.cotangent is not None:
        arrays["cotangent"] = case.cotangent
    return arrays


def _message(task: Task, device: str, inputs_path: str, out_path: str) -> dict[str, Any]:
    return {"type": "task", "id": 0, "impl": task.impl["name"], "pass": task.pass_,
            "dtype": task.case.dtype, "device": device, "inputs_path": inputs_path,
            "out_path": out_path, "options": _json_options(task.case.options)}


def _json_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in options.items()}


def _key(task: Task, device: str) -> tuple[str, ...]:
    return (task.impl["name"], task.case.op, task.pass_, task.case.case_id, task.case.dtype,
            device)


def run_suite(opts: RunOptions, progress: Callable[[int, int, str], None] | None = None,
              catalog: dict[str, Any] | None = None) -> tuple[Path, dict[str, int], Plan]:
    """Plan, create (or resume) the run directory, execute, and finish it.

    A throughput suite (``kind = "throughput"``) is timed by ``harness.throughput`` instead;
    the plan returned then holds its implementations and plugin errors, and no accuracy tasks.
    """
    if suites.get_suite(opts.suite).kind == "throughput":
        from harness import throughput

        _, counts, timed = throughput.run_suite(opts, suites.get_suite(opts.suite), progress,
                                                catalog)
        return opts.out, counts, Plan([], timed.implementations, timed.plugin_errors)
    plan = make_plan(opts, catalog)
    meta = {"suite": opts.suite, "device": opts.device, "dtypes": list(opts.dtypes),
            "include": list(opts.include), "exclude": list(opts.exclude),
            "timeout_s": opts.timeout, "threads": opts.threads,
            "plugin_errors": plan.plugin_errors,
            "implementations": plan.implementations}
    store = (results.RunDirectory.open_for_resume(opts.out) if opts.resume
             else results.RunDirectory.create(opts.out, meta))
    runner = Runner(opts, plan, store, progress)
    try:
        counts = runner.run()
    except BaseException:
        store.close()  # what was recorded stays, fsynced; --resume finishes the run
        raise
    store.finish({"counts": counts, "framework_settings": runner.settings})
    return opts.out, counts, plan

