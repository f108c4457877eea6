"""Run a suite: plan the tasks, drive one worker per framework, score, store as results arrive.

The parent computes every exact reference itself (``references`` knows no framework) once per
(case, op, pass, dtype) and shares it across implementations; workers only run the code under
test. Every planned task ends as exactly one record: ok (scored), error, crash, timeout,
unsupported or unavailable, each with its reason.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import arrays_io, results, scoring, suites
from harness import cases as cases_mod
from harness.errors import ConfigError
from harness.frameworks import framework_statuses
from harness.ops import BACKWARD, FORWARD, OPS
from harness.registry import select
from harness.workers import Reply, Worker, list_implementations

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
    suite = suites.get_suite(opts.suite)
    catalog = catalog or list_implementations()
    impls = [i for i in catalog["implementations"] if opts.device in i["devices"]]
    names = select([i["name"] for i in impls], list(opts.include), list(opts.exclude))
    for pattern in opts.include:
        if not select([i["name"] for i in impls], [pattern], []):
            raise ConfigError(f"--impl {pattern!r} matches no implementation; "
                              "see 'softmax-bench list'")
    chosen = [i for i in impls if i["name"] in set(names)]
    if not chosen:
        raise ConfigError("no implementation left after --impl/--exclude")
    all_cases = [c for c in cases_mod.generate(suite) if not opts.dtypes or c.dtype in opts.dtypes]
    tasks = [Task(impl, case, pass_) for impl in chosen for case in all_cases
             if _applies(impl, case) for pass_ in (FORWARD, BACKWARD)]
    return Plan(tasks, chosen, list(catalog.get("errors", [])))


class References:
    """Exact answers per (case, op, pass, dtype), computed once and shared."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, ...], Any] = {}

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
    """Executes a plan into a run directory."""

    def __init__(self, opts: RunOptions, plan: Plan, store: results.RunDirectory,
                 progress: Callable[[int, int, str], None] | None = None):
        self.opts, self.plan, self.store = opts, plan, store
        self.references = References()
        self.progress = progress or (lambda done, total, what: None)
        self._tmp = tempfile.TemporaryDirectory(prefix="softmax-bench-")
        self._inputs: dict[tuple[str, str, str], str] = {}
        self.counts: dict[str, int] = defaultdict(int)
        self.settings: dict[str, Any] = {}

    def _inputs_path(self, case: cases_mod.CaseInput) -> str:
        key = (case.case_id, case.op, case.dtype)
        if key not in self._inputs:
            path = Path(self._tmp.name) / f"in{len(self._inputs)}.npz"
            arrays = dict(case.inputs)
            if case.cotangent is not None:
                arrays["cotangent"] = case.cotangent
            arrays_io.save(path, arrays)
            self._inputs[key] = str(path)
        return self._inputs[key]

    def _emit(self, task: Task, fields: dict[str, Any]) -> None:
        record = {**task.record_base(self.opts.device), "message": "", **fields}
        self.store.append(record)
        self.counts[record["status"]] += 1

    def _finish_ok(self, task: Task, out_path: str) -> dict[str, Any]:
        actual = arrays_io.load(out_path)["out"]
        Path(out_path).unlink(missing_ok=True)
        reference = self.references.get(task.case, task.pass_)
        return scoring.score_outcome(
            op=task.case.op, pass_=task.pass_, dtype=task.case.dtype, actual=actual,
            reference=reference, inputs=task.case.inputs,
            case_status=task.case.status_for(task.pass_), family=task.case.family, raised=None,
            cotangent=task.case.cotangent)

    def _outcome(self, task: Task, reply: Reply) -> dict[str, Any]:
        if reply.status == "ok":
            return {"status": "ok", **self._finish_ok(task, self._out_path)}
        if reply.status == "error":
            # an exception can be the expected behaviour (labels out of range, conventions)
            judged = scoring.score_outcome(
                op=task.case.op, pass_=task.pass_, dtype=task.case.dtype, actual=None,
                reference=self.references.get(task.case, task.pass_), inputs=task.case.inputs,
                case_status=task.case.status_for(task.pass_), family=task.case.family,
                raised=reply.message, cotangent=task.case.cotangent)
            return {"status": "error", "message": reply.message, **judged}
        return {"status": reply.status, "message": reply.message, "verdict": reply.status}

    def _skip_reason(self, task: Task) -> str | None:
        if task.case.unsupported:
            return task.case.unsupported
        if task.case.dtype not in task.impl["dtypes"]:
            return f"{task.impl['name']} does not support {task.case.dtype}"
        if task.pass_ == BACKWARD and not task.impl["differentiable"]:
            return "no autodiff: forward only"
        return None

    def run(self) -> dict[str, int]:
        done_keys = self.store.finished_keys() if self.opts.resume else set()
        by_framework: dict[str, list[Task]] = defaultdict(list)
        for task in self.plan.tasks:
            by_framework[task.impl["framework"]].append(task)
        total = len(self.plan.tasks)
        done = 0
        statuses = {s.name: s for s in framework_statuses()}
        env = {"SOFTMAX_BENCH_THREADS": str(self.opts.threads)} if self.opts.threads else {}
        for framework, tasks in by_framework.items():
            pending = [t for t in tasks if _key(t, self.opts.device) not in done_keys]
            done += len(tasks) - len(pending)
            status = statuses.get(framework)
            worker: Worker | None = None
            if status is not None and not status.available:
                unavailable = status.reason
            else:
                unavailable = ""
            for task in pending:
                self.progress(done, total, f"{task.impl['name']} {task.case.case_id} "
                                           f"{task.case.dtype} {task.pass_}")
                reason = self._skip_reason(task)
                if unavailable:
                    self._emit(task, {"status": "unavailable", "message": unavailable,
                                      "verdict": "unavailable"})
                elif reason:
                    self._emit(task, {"status": "unsupported", "message": reason,
                                      "verdict": "unsupported"})
                else:
                    if worker is None or not worker.alive:
                        worker = Worker(framework, self.opts.device, env=env)
                        self.settings.setdefault(framework, worker.hello.get("settings", {}))
                        if not worker.hello.get("available"):
                            unavailable = worker.hello.get("reason", "unavailable")
                            self._emit(task, {"status": "unavailable", "message": unavailable,
                                              "verdict": "unavailable"})
                            done += 1
                            continue
                    self._emit(task, self._execute(worker, task))
                done += 1
            if worker is not None:
                worker.close()
        self.progress(total, total, "done")
        self._tmp.cleanup()
        return dict(self.counts)

    def _execute(self, worker: Worker, task: Task) -> dict[str, Any]:
        self._out_path = str(Path(self._tmp.name) / "out.npz")
        message = {"type": "task", "id": 0, "impl": task.impl["name"], "pass": task.pass_,
                   "dtype": task.case.dtype, "device": self.opts.device,
                   "inputs_path": self._inputs_path(task.case), "out_path": self._out_path,
                   "options": _json_options(task.case.options)}
        start = time.perf_counter()
        reply = worker.request(message, self.opts.timeout)
        outcome = self._outcome(task, reply)
        outcome["wall_s"] = time.perf_counter() - start
        if reply.status in ("crash", "timeout"):
            worker.kill()  # the next task starts a fresh worker
        return outcome


def _json_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in options.items()}


def _key(task: Task, device: str) -> tuple[str, ...]:
    return (task.impl["name"], task.case.op, task.pass_, task.case.case_id, task.case.dtype,
            device)


def run_suite(opts: RunOptions, progress: Callable[[int, int, str], None] | None = None,
              catalog: dict[str, Any] | None = None) -> tuple[Path, dict[str, int], Plan]:
    """Plan, create (or resume) the run directory, execute, and finish it."""
    plan = make_plan(opts, catalog)
    meta = {"suite": opts.suite, "device": opts.device, "dtypes": list(opts.dtypes),
            "include": list(opts.include), "exclude": list(opts.exclude),
            "timeout_s": opts.timeout, "threads": opts.threads,
            "plugin_errors": plan.plugin_errors,
            "implementations": plan.implementations}
    store = (results.RunDirectory.open_for_resume(opts.out) if opts.resume
             else results.RunDirectory.create(opts.out, meta))
    runner = Runner(opts, plan, store, progress)
    counts = runner.run()
    store.finish({"counts": counts, "framework_settings": runner.settings})
    return opts.out, counts, plan

