"""The search planner: a third planner on the one engine (docs/architecture.md, docs/search.md).

One adaptive unit per (implementation, op, dtype, pass): its tasks are the candidates of a
:class:`~harness.planning.search.strategy.Searcher`, produced one at a time, each after the
previous one's outcome was scored. Every candidate is one call of the implementation on one row,
in the framework's isolated worker (never stacked with other rows: that changes results for
TensorFlow and XLA), judged by the exact reference and ``harness.scoring`` like any case; it is
recorded with ``case_family`` ``search`` and the parameters that produced it. A crash or a hang
is a finding like any other, and the next candidate gets a fresh worker.
"""

from __future__ import annotations

import hashlib
import itertools
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import arrays_io, scoring
from harness.engine.core import Engine, EngineOptions, Unit
from harness.engine.local import LocalExecutor, Session
from harness.errors import ConfigError
from harness.frameworks import framework_statuses
from harness.messages import AccuracyTask, Catalog, ImplInfo, Reply
from harness.ops import OPS
from harness.planning.cases import SEARCH_FAMILY, CaseInput
from harness.planning.cases.explicit import row_status
from harness.planning.search import replay
from harness.planning.search.strategy import STRATEGIES, Candidate, Searcher
from harness.registry import choose
from harness.store import RunDirectory
from harness.vocabulary import BACKWARD, DTYPE_NAMES, ERROR, FORWARD, OK, PASSES

DEFAULT_TIMEOUT = 60.0
_ROW_KEPT = 64  # records keep their worst_row up to this many classes (findings: _FOUND_ROW_KEPT)
_FOUND_ROW_KEPT = 256  # longer rows: rebuilt from the search parameters, or worst-cases.toml
_MEMO = 2048  # exact references kept (candidates shared by implementations that behave alike)


@dataclass(frozen=True)
class SearchOptions:
    """``softmax-bench search``'s options."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ("float32",)
    passes: tuple[str, ...] = (FORWARD,)
    budget: int = 2000
    seed: int = 0
    strategy: str = "structured"
    timeout: float = DEFAULT_TIMEOUT
    device: str = "cpu"
    out: Path = Path("runs/search")
    jobs: int = 2
    threads: int | None = None
    max_timeouts: int = 3


@dataclass(frozen=True)
class SearchTask:
    """One candidate row for one implementation (or, with ``candidate`` None, the placeholder
    of a combination the implementation does not support)."""

    impl: ImplInfo
    op: str
    dtype: str
    pass_: str
    seed: int
    candidate: Candidate | None

    @property
    def framework(self) -> str:
        return self.impl.framework

    @property
    def impl_name(self) -> str:
        return self.impl.name

    @property
    def case_id(self) -> str:
        if self.candidate is None:
            return "search[unsupported]"
        return f"search[seed={self.seed},n={self.candidate.index},row={self.candidate.digest}]"

    def key(self, device: str) -> tuple[str, ...]:
        return (self.impl.name, self.op, self.pass_, self.case_id, self.dtype, device)

    def record_base(self, device: str) -> dict[str, Any]:
        c = self.candidate
        return {"implementation": self.impl.name, "framework": self.impl.framework,
                "op": self.op, "pass": self.pass_, "device": device, "dtype": self.dtype,
                "case": self.case_id, "case_family": SEARCH_FAMILY,
                "case_status": self.status,
                "shape": [] if c is None else list(c.row.x.shape),
                "search": {} if c is None else {"seed": self.seed, **c.describe()}}

    @property
    def status(self) -> str:
        return "scored" if self.candidate is None else row_status(self.op, self.pass_,
                                                                  self.candidate.row.x)

    def describe(self) -> str:
        n = "-" if self.candidate is None else self.candidate.index
        return f"{self.impl.name} {self.op} {self.dtype} {self.pass_} #{n}"

    def case_input(self) -> CaseInput:
        assert self.candidate is not None
        row = self.candidate.row
        spec = OPS[self.op]
        inputs = {"x": row.x}
        for name in spec.inputs[1:]:
            value = row.labels if name == "labels" else row.targets
            assert value is not None, f"{self.op} needs {name}"
            inputs[name] = value
        return CaseInput(self.case_id, SEARCH_FAMILY, self.op, self.dtype, inputs, {},
                         row.cotangent if spec.random_cotangent else None, self.status)


class ReferenceMemo:
    """Exact references by content (op, pass, dtype, arrays), shared by every unit; ``lock``
    serialises everything that touches a reference (mpmath's precision is global state)."""

    def __init__(self, size: int = _MEMO) -> None:
        self._memo: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self.size = size
        self.lock = threading.RLock()
        self.hits = 0

    def get(self, case: CaseInput, pass_: str) -> Any:
        h = hashlib.sha256()
        for a in (*case.inputs.values(), case.cotangent):
            h.update(b"-" if a is None else np.ascontiguousarray(a).tobytes())
        key = (case.op, pass_, case.dtype, h.hexdigest())
        if key in self._memo:
            self.hits += 1
            self._memo.move_to_end(key)
            return self._memo[key]
        try:
            value: Any = OPS[case.op].reference(pass_, case.inputs, case.cotangent, {})
        except (ValueError, TypeError) as exc:
            value = exc
        self._memo[key] = value
        if len(self._memo) > self.size:
            self._memo.popitem(last=False)
        return value


@dataclass
class SearchPlanner:
    """Plans the searches and judges every candidate (the engine's ``Planner``)."""

    opts: SearchOptions
    implementations: list[ImplInfo]
    plugin_errors: list[str] = field(default_factory=list)
    kind: str = "search"

    def __post_init__(self) -> None:
        self.device, self.timeout = self.opts.device, self.opts.timeout
        self.references = ReferenceMemo()
        self.searchers: dict[tuple[str, str, str, str], Searcher] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        self._serial = itertools.count()

    @classmethod
    def make(cls, opts: SearchOptions, catalog: Catalog | dict[str, Any]) -> SearchPlanner:
        if opts.budget < 1:
            raise ConfigError(f"--budget {opts.budget}: must be at least 1")
        if opts.jobs < 1:
            raise ConfigError(f"--jobs {opts.jobs}: must be at least 1")
        if opts.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {opts.strategy!r}; expected one of "
                              f"{', '.join(STRATEGIES)}")
        for dtype in opts.dtypes:
            if dtype not in DTYPE_NAMES:
                raise ConfigError(f"unknown dtype {dtype!r}; expected one of "
                                  f"{', '.join(DTYPE_NAMES)}")
        for pass_ in opts.passes:
            if pass_ not in PASSES:
                raise ConfigError(f"unknown pass {pass_!r}; expected forward or backward")
        catalog = Catalog.from_json(catalog)
        chosen = [i for i in choose(list(catalog.implementations), opts.device, opts.include,
                                    opts.exclude)
                  if i.op in replay.SEARCH_OPS and (not opts.ops or i.op in opts.ops)]
        if not chosen:
            raise ConfigError("no implementation matches --impl/--op (the search covers "
                              f"{', '.join(replay.SEARCH_OPS)}; see 'softmax-bench list')")
        return cls(opts, chosen, list(catalog.errors))

    # -- the engine's questions ---------------------------------------------------------------
    def units(self) -> list[Unit]:
        out = []
        for impl in self.implementations:
            for dtype in self.opts.dtypes:
                for pass_ in self.opts.passes:
                    placeholder = SearchTask(impl, impl.op, dtype, pass_, self.opts.seed, None)
                    if self.skip_reason(placeholder):
                        out.append(Unit(impl.framework, [placeholder]))
                        continue
                    searcher = Searcher(impl.op, dtype, pass_, self.opts.budget,
                                        self.opts.seed, self.opts.strategy)
                    self.searchers[(impl.name, impl.op, dtype, pass_)] = searcher
                    out.append(Unit(impl.framework, self._tasks(impl, dtype, pass_, searcher),
                                    size=self.opts.budget))
        return out

    def _tasks(self, impl: ImplInfo, dtype: str, pass_: str, searcher: Searcher
               ) -> Iterator[SearchTask]:
        for candidate in searcher.candidates():
            yield SearchTask(impl, impl.op, dtype, pass_, self.opts.seed, candidate)

    def concurrency(self) -> int | None:
        return None

    def skip_reason(self, task: SearchTask) -> str | None:
        if task.dtype not in task.impl.dtypes:
            return f"{task.impl.name} does not support {task.dtype}"
        if task.pass_ == BACKWARD and not task.impl.differentiable:
            return "no autodiff: forward only"
        return None

    def message(self, task: SearchTask) -> AccuracyTask:
        case = task.case_input()
        arrays = dict(case.inputs)
        if case.cotangent is not None:
            arrays["cotangent"] = case.cotangent
        path = self._new_path("in")
        arrays_io.save(path, arrays)
        return AccuracyTask(task.impl.name, task.pass_, task.dtype, self.device, path,
                            self._new_path("out"), {})

    def outcome(self, task: SearchTask, message: AccuracyTask, reply: Reply, session: Session
                ) -> dict[str, Any]:
        Path(message.inputs_path).unlink(missing_ok=True)
        case = task.case_input()
        if reply.status == OK:
            out_path = Path(message.out_path)
            actual = arrays_io.load(out_path)["out"]
            out_path.unlink(missing_ok=True)
            fields = {"status": OK, **self._score(task, case, actual, None)}
        elif reply.status == ERROR:
            fields = {"status": ERROR, "message": reply.message,
                      **self._score(task, case, None, reply.message)}
        else:  # crash, timeout: a finding; the session starts a fresh worker for the next
            fields = {"status": reply.status, "message": reply.message,
                      "verdict": reply.status}
        assert task.candidate is not None
        searcher = self.searchers[(task.impl.name, task.op, task.dtype, task.pass_)]
        tier, value = searcher.observe(task.candidate, fields)
        keep = _FOUND_ROW_KEPT if tier else _ROW_KEPT
        if task.candidate.row.x.shape[-1] > keep:
            fields.pop("worst_row", None)  # the row is rebuilt from the search parameters
        fields.update(search_tier=tier, search_score=value)
        return fields

    def _score(self, task: SearchTask, case: CaseInput, actual: np.ndarray | None,
               raised: str | None) -> dict[str, Any]:
        with self.references.lock:
            return scoring.score_outcome(
                op=case.op, pass_=task.pass_, dtype=case.dtype, actual=actual,
                reference=self.references.get(case, task.pass_), inputs=case.inputs,
                case_status=case.status_for(task.pass_), family=SEARCH_FAMILY, raised=raised,
                cotangent=case.cotangent)

    def run_meta(self) -> dict[str, Any]:
        o = self.opts
        return {"suite": "search", "device": o.device, "dtypes": list(o.dtypes),
                "include": list(o.include), "exclude": list(o.exclude),
                "timeout_s": o.timeout, "threads": o.threads,
                "plugin_errors": self.plugin_errors,
                "families": {SEARCH_FAMILY: {"adversarial": False}},  # its own report page
                "search": {"budget": o.budget, "seed": o.seed, "strategy": o.strategy,
                           "ops": list(o.ops), "passes": list(o.passes)},
                "implementations": [i.to_json() for i in self.implementations]}

    def end_meta(self) -> dict[str, Any]:
        return {"search_summary": self.summary()}

    def summary(self) -> list[dict[str, Any]]:
        """Per (implementation, op, dtype, pass): calls spent, the first finding, the worst."""
        out = []
        for (impl, op, dtype, pass_), s in self.searchers.items():
            worst = s.findings[0] if s.findings else s.best_pass
            out.append({"implementation": impl, "op": op, "dtype": dtype, "pass": pass_,
                        "calls": s.calls, "findings": len(s.findings),
                        "first_finding_call": s.first_finding,
                        "worst_verdict": None if worst is None else worst.fields.get("verdict"),
                        "worst_limit_ratio": None if worst is None
                        else worst.fields.get("limit_ratio")})
        return out

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _new_path(self, stem: str) -> str:
        with self._lock:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="softmax-bench-search-")
            return str(Path(self._tmp.name) / f"{stem}{next(self._serial)}.npz")


def run_search(opts: SearchOptions, progress: Callable[[int, int, str], None] | None = None,
               catalog: Catalog | dict[str, Any] | None = None,
               executor: LocalExecutor | None = None) -> tuple[Path, dict[str, int],
                                                              SearchPlanner]:
    """Search, record every candidate in the run directory ``opts.out`` and write
    ``worst-cases.toml`` there; on Ctrl-C the records and the findings so far are kept (the
    suite file is written before the interrupt goes on)."""
    import time

    from harness.engine.workers import list_implementations

    catalog = Catalog.from_json(catalog) if catalog is not None else list_implementations()
    planner = SearchPlanner.make(opts, catalog)
    executor = executor or LocalExecutor(opts.device, opts.jobs, opts.threads)
    store = RunDirectory.create(opts.out, planner.run_meta())
    engine = Engine(planner, executor, store, {s.name: s for s in framework_statuses()},
                    EngineOptions(max_timeouts=opts.max_timeouts), progress)
    started = time.perf_counter()
    try:
        counts = engine.run()
    except BaseException:
        store.close()
        replay.write_worst_cases(opts.out, planner)
        raise
    finally:
        planner.close()
    replay.write_worst_cases(opts.out, planner)
    store.finish({"counts": counts, "framework_settings": engine.settings,
                  "executor": executor.name, "wall_s": time.perf_counter() - started,
                  "reference_memo_hits": planner.references.hits, **planner.end_meta()})
    return opts.out, counts, planner
