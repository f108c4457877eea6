"""The accuracy planner: every (implementation, case, dtype, pass) a suite selects, and how each
reply is judged against the exact reference.

The parent computes every exact reference itself (``references`` knows no framework) once per
(case, op, pass, dtype) and shares it across implementations; workers only run the code under
test. Every case runs alone, at its own shape: stacking the rows of several cases into one call
was tried and changes results (TensorFlow's and XLA's float32 kernels round a row differently
depending on the batch size, vectorised versus remainder loops), so a record would not be
reproducible alone.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import arrays_io, scoring
from harness.engine.core import Unit
from harness.engine.local import Session, is_sticky
from harness.errors import ConfigError
from harness.messages import AccuracyTask, Catalog, ImplInfo, Reply
from harness.ops import OPS
from harness.planning import cases as cases_mod
from harness.planning import suites
from harness.planning.request import RunOptions
from harness.registry import choose
from harness.store import outputs
from harness.vocabulary import BACKWARD, ERROR, FORWARD, OK, PASSES
from references.pool import ReferencePool


@dataclass(frozen=True)
class Task:
    impl: ImplInfo
    case: cases_mod.CaseInput
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
                "case_family": self.case.family, "case_status": self.case.status,
                "shape": list(self.case.shape)}

    def describe(self) -> str:
        return f"{self.impl.name} {self.case.case_id} {self.case.dtype} {self.pass_}"


def _applies(impl: ImplInfo, case: cases_mod.CaseInput) -> bool:
    if impl.op != case.op:
        return False
    needed = {k for k, v in case.options.items() if v is not None}
    return needed <= set(impl.options) if case.op == "cross_entropy" else True


class References:
    """Exact answers per (case, op, pass, dtype), computed ahead in a process pool.

    The planner knows every case before any worker starts, so ``prefetch`` submits them all to
    a ``references.pool.ReferencePool`` (processes: mpmath's and Arb's working precisions are
    process-global), in the order the units will need them; ``get`` waits for one. A pooled
    result is fully materialised, so scoring reads it without any lock. ``jobs=0`` computes
    inline (the pool serialises that itself).
    """

    def __init__(self, jobs: int | None = None) -> None:
        self.pool = ReferencePool(jobs)

    @staticmethod
    def key(case: cases_mod.CaseInput, pass_: str) -> str:
        return "|".join((case.case_id, case.op, pass_, case.dtype))

    def submit(self, case: cases_mod.CaseInput, pass_: str) -> None:
        fn, args, kwargs = OPS[case.op].reference_call(pass_, case.inputs, case.cotangent,
                                                       case.options)
        self.pool.submit(self.key(case, pass_), fn.__name__, args, _json_options(kwargs))

    def get(self, case: cases_mod.CaseInput, pass_: str) -> Any:
        """The result, or the ValueError/TypeError of an input with no exact value (labels out
        of range, say)."""
        self.submit(case, pass_)  # idempotent: a no-op when prefetched
        return self.pool.result(self.key(case, pass_))

    def close(self) -> None:
        self.pool.close()


@dataclass
class AccuracyPlanner:
    """Plans and judges an accuracy suite."""

    opts: RunOptions
    tasks: list[Task]
    implementations: list[ImplInfo]
    plugin_errors: list[str] = field(default_factory=list)
    kind: str = "accuracy"

    def __post_init__(self) -> None:
        self.device, self.timeout = self.opts.device, self.opts.timeout
        self.references = References(self.opts.reference_jobs)
        self.scores = ScoreMemo(self.references)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._inputs: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()
        self._serial = itertools.count()

    @classmethod
    def make(cls, opts: RunOptions, catalog: Catalog | dict[str, Any]) -> AccuracyPlanner:
        """Every (implementation, case, pass) the options select, in a stable order."""
        if opts.jobs < 1:
            raise ConfigError(f"--jobs {opts.jobs}: must be at least 1")
        catalog = Catalog.from_json(catalog)
        suite = suites.get_suite(opts.suite)
        chosen = choose(list(catalog.implementations), opts.device, opts.include, opts.exclude)
        all_cases = [c for c in cases_mod.generate(suite)
                     if not opts.dtypes or c.dtype in opts.dtypes]
        tasks = [Task(impl, case, pass_) for impl in chosen for case in all_cases
                 if _applies(impl, case) for pass_ in PASSES]
        return cls(opts, tasks, chosen, list(catalog.errors))

    # -- the engine's questions ---------------------------------------------------------------

    def prefetch(self, done: Collection[tuple[str, ...]] = ()) -> None:
        """Submit every reference the run will score, in run order, before any worker starts
        (``done``: keys of tasks a resumed run already recorded)."""
        for unit in self.units():
            for task in unit.tasks:
                if self.skip_reason(task) is None and task.key(self.device) not in done:
                    self.references.submit(task.case, task.pass_)

    def units(self) -> list[Unit]:
        grouped: dict[tuple[str, str, str], list[Task]] = {}
        for task in self.tasks:
            grouped.setdefault((task.impl.framework, task.impl.name, task.case.dtype),
                               []).append(task)
        return [Unit(framework, tasks) for (framework, _, _), tasks in grouped.items()]

    def concurrency(self) -> int | None:
        return None

    def skip_reason(self, task: Task) -> str | None:
        if task.case.unsupported:
            return task.case.unsupported
        if task.case.dtype not in task.impl.dtypes:
            return f"{task.impl.name} does not support {task.case.dtype}"
        if task.pass_ == BACKWARD and not task.impl.differentiable:
            return "no autodiff: forward only"
        return None

    def message(self, task: Task) -> AccuracyTask:
        return AccuracyTask(task.impl.name, task.pass_, task.case.dtype, self.device,
                            self._inputs_path(task.case), self._new_path("out"),
                            _json_options(task.case.options))

    def outcome(self, task: Task, message: AccuracyTask, reply: Reply, session: Session
                ) -> dict[str, Any]:
        if reply.status == OK:
            out_path = Path(message.out_path)
            actual = arrays_io.load(out_path)["out"]
            out_path.unlink(missing_ok=True)
            sha = outputs.digest(actual)
            # the raw output, kept for `softmax-bench rescore` (harness.store.outputs)
            kept = (outputs.put_output(self.opts.out, actual, sha)
                    if outputs.keep(actual, self.opts.keep_outputs_up_to) else None)
            return {"status": OK, **self.scores.get(task, actual, sha), "output_sha256": kept}
        if reply.status == ERROR:
            # an exception can be the expected behaviour (labels out of range, conventions),
            # but not a device error that poisons the process (a CUDA device-side assert)
            return {"status": ERROR, "message": reply.message,
                    **self._score(task, None, reply.message, device_error=is_sticky(reply))}
        return {"status": reply.status, "message": reply.message, "verdict": reply.status}

    def run_meta(self) -> dict[str, Any]:
        opts = self.opts
        return {"suite": opts.suite, "device": opts.device, "dtypes": list(opts.dtypes),
                "include": list(opts.include), "exclude": list(opts.exclude),
                "timeout_s": opts.timeout, "threads": opts.threads,
                "keep_outputs_up_to": opts.keep_outputs_up_to,
                "plugin_errors": self.plugin_errors,
                "families": _families(self.tasks),
                "implementations": [i.to_json() for i in self.implementations]}

    def end_meta(self) -> dict[str, Any]:
        """Rows each reference tier decided (``cache``: read from the reference cache), and how
        many outputs were judged and how many reused an identical output's score."""
        return {"reference_tiers": self.references.pool.tier_counts(),
                "reference_jobs": self.references.pool.jobs,
                "outputs_scored": {"judged": self.scores.misses, "reused": self.scores.hits}}

    def close(self) -> None:
        self.references.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- inputs and outputs on disk ----------------------------------------------------------

    def _new_path(self, stem: str) -> str:
        with self._lock:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="softmax-bench-")
            return str(Path(self._tmp.name) / f"{stem}{next(self._serial)}.npz")

    def _inputs_path(self, case: cases_mod.CaseInput) -> str:
        key = (case.case_id, case.op, case.dtype)
        with self._lock:
            cached = self._inputs.get(key)
        if cached is not None:
            return cached
        path = self._new_path("in")
        arrays_io.save(path, _case_arrays(case))
        with self._lock:
            return self._inputs.setdefault(key, path)

    def _score(self, task: Task, actual: np.ndarray | None, raised: str | None,
               device_error: bool = False) -> dict[str, Any]:
        return score_case(task.case, task.pass_, actual, raised, self.references,
                          device_error=device_error)


class ScoreMemo:
    """The scores of outputs already judged, by (case, pass, dtype, output digest).

    A score is a function of the case, the pass and the output's bits alone, and most outputs of
    a suite are not new: implementations of one framework (eager, ``@compile``, ``@jit``, the
    composed and fused losses) and of different frameworks often return the same bits for the
    same case (the full suite: 27,377 outputs judged, 44,167 reused, run.json
    ``end.outputs_scored``). Judging each content once gives the same record fields; the
    parent's CPU time in the full suite fell from 235 s to 149 s. Thread-safe; bounded (least
    recently used first out)."""

    def __init__(self, references: References, capacity: int = 65536) -> None:
        self.references, self.capacity = references, capacity
        self._scores: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, task: Task, actual: np.ndarray, sha256: str) -> dict[str, Any]:
        """The metric fields of ``actual`` (digest ``sha256``) as the output of ``task``."""
        key = (References.key(task.case, task.pass_), task.case.family, sha256)
        with self._lock:
            fields = self._scores.get(key)
            if fields is not None:
                self._scores.move_to_end(key)
                self.hits += 1
                return dict(fields)  # the caller's own dict; the values are never mutated
        fields = score_case(task.case, task.pass_, actual, None, self.references)
        with self._lock:
            self.misses += 1
            self._scores[key] = dict(fields)
            while len(self._scores) > self.capacity:
                self._scores.popitem(last=False)
        return fields


def score_case(case: cases_mod.CaseInput, pass_: str, actual: np.ndarray | None,
               raised: str | None, references: References | None, *,
               device_error: bool = False) -> dict[str, Any]:
    """The metric fields of one outcome of ``case``: an output, or the exception ``raised``
    (``references`` may be None then: an exception needs no exact value). The planner and
    ``softmax-bench rescore`` judge through this one function."""
    reference = (references.get(case, pass_)
                 if actual is not None and references is not None else None)
    return scoring.score_outcome(
        op=case.op, pass_=pass_, dtype=case.dtype, actual=actual, reference=reference,
        inputs=case.inputs, case_status=case.status_for(pass_), family=case.family,
        raised=raised, cotangent=case.cotangent, own_rows=case.own_rows,
        device_error=device_error)


def _families(tasks: list[Task]) -> dict[str, dict[str, Any]]:
    """The families in the run and what the report needs to know of each."""
    names = dict.fromkeys(t.case.family for t in tasks)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        family = cases_mod.FAMILIES.get(name)
        out[name] = {"adversarial": bool(getattr(family, "adversarial", False))}
    return out


def _case_arrays(case: cases_mod.CaseInput) -> dict[str, np.ndarray]:
    arrays = dict(case.inputs)
    if case.cotangent is not None:
        arrays["cotangent"] = case.cotangent
    return arrays


def _json_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in options.items()}


__all__ = ["FORWARD", "AccuracyPlanner", "References", "ScoreMemo", "Task", "score_case"]
