"""The engine: runs a planner's units through an executor into the store, one record per task.

Seams (docs/architecture.md):
- a **planner** (``harness.planning``) turns a request into units of tasks and knows what a task
  is: its record's identity, why it would be skipped, the message a worker gets, what a reply
  means (scoring, timing fields) and what the run keeps at the end;
- an **executor** (``harness.engine.local``; a Ray one beside it) runs units somewhere and hands
  the engine a session per unit;
- the **engine** (here) owns everything in between, once: resume, unavailable frameworks, skip
  reasons, the circuit breaker for hangs, the single writer of the store, progress and Ctrl-C.

Every planned task ends as exactly one record, appended as soon as it is known: ok, error,
crash, timeout, unsupported, unavailable or skipped, each with its reason.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.engine.local import Session
from harness.messages import Reply, Request
from harness.store import RunDirectory
from harness.vocabulary import SKIPPED, TIMEOUT, UNAVAILABLE, UNSUPPORTED

DEFAULT_MAX_TIMEOUTS = 3  # consecutive timeouts of one implementation within a unit

Progress = Callable[[int, int, str], None]


class Task(Protocol):
    """One planned (implementation, case, dtype, pass) on one device."""

    @property
    def framework(self) -> str: ...

    @property
    def impl_name(self) -> str: ...

    def key(self, device: str) -> tuple[str, ...]: ...

    def record_base(self, device: str) -> dict[str, Any]: ...

    def describe(self) -> str: ...


@dataclass
class Unit:
    """Tasks that run in order in one worker: one implementation in one dtype (compiling is the
    slow part, and per dtype). ``stage``: units of a lower stage all finish before any of a
    higher one starts. ``weight``: the tasks it executes (for the queue's balance).

    ``size``: set for an *adaptive* unit, whose ``tasks`` is an iterable the planner produces
    lazily (the search: the next candidate depends on the outcomes so far). The engine takes
    one task from it only after the previous one's outcome went to the planner, and ``size``
    is the most tasks it will yield (the progress total)."""

    framework: str
    tasks: Iterable[Any]
    stage: int = 0
    weight: int = 0
    recorded: bool = True  # False: a preparatory unit whose outcomes go to the planner only
    size: int | None = None  # adaptive: at most this many tasks, produced lazily

    def planned(self) -> int:
        """How many tasks the unit runs (at most, for an adaptive one)."""
        return self.size if self.size is not None else len(self.tasks)  # type: ignore[arg-type]


class Planner(Protocol):
    """What the engine needs of a planner (accuracy, throughput, search)."""

    kind: str
    device: str
    timeout: float

    def units(self) -> list[Unit]: ...

    def skip_reason(self, task: Any) -> str | None: ...

    def message(self, task: Any) -> Request: ...

    def outcome(self, task: Any, message: Any, reply: Reply, session: Session
                ) -> dict[str, Any]:
        """The record's fields for a reply (status included)."""

    def run_meta(self) -> dict[str, Any]: ...

    def end_meta(self) -> dict[str, Any]: ...

    def concurrency(self) -> int | None:
        """Most units at once (None: the executor's --jobs); timing is serial."""


class Executor(Protocol):
    name: str

    def run(self, units: Sequence[Unit], run_unit: Callable[[Session, Unit], None], *,
            jobs: int | None = None) -> None: ...

    def stop(self) -> None: ...

    @property
    def stopped(self) -> bool: ...


@dataclass
class EngineOptions:
    resume: bool = False
    retry_skipped: bool = False  # with resume: run again what the circuit breaker skipped
    max_timeouts: int = DEFAULT_MAX_TIMEOUTS


@dataclass
class Engine:
    planner: Any  # a Planner
    executor: Any  # an Executor
    store: RunDirectory
    framework_status: Mapping[str, Any]  # name -> FrameworkStatus (installed or not)
    options: EngineOptions = field(default_factory=EngineOptions)
    progress: Progress | None = None
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # the store, counts, progress
        self._done = 0
        self._total = 0
        self._skip_done: set[tuple[str, ...]] = set()

    # -- the store's one writer --------------------------------------------------------------

    def _emit(self, task: Any, fields: dict[str, Any]) -> None:
        record = {**task.record_base(self.planner.device), "message": "", **fields}
        with self._lock:
            self.store.append(record)
            self.counts[record["status"]] += 1
            self._done += 1
            self._report(task.describe())

    def _report(self, what: str) -> None:
        if self.progress is not None:
            self.progress(self._done, self._total, what)

    def _advance(self, n: int, what: str) -> None:
        with self._lock:
            self._done += n
            self._report(what)

    # -- running -----------------------------------------------------------------------------

    def finished_keys(self) -> set[tuple[str, ...]]:
        """Keys of the tasks a resumed run already recorded (none for a new run)."""
        return self._finished_keys()

    def _finished_keys(self) -> set[tuple[str, ...]]:
        if not self.options.resume:
            return set()
        latest: dict[tuple[str, ...], str] = {}
        for record in self.store.records():
            key = tuple(str(record.get(k)) for k in
                        ("implementation", "op", "pass", "case", "dtype", "device"))
            latest[key] = str(record.get("status"))
        return {k for k, status in latest.items()
                if not (self.options.retry_skipped and status == SKIPPED)}

    def run(self) -> dict[str, int]:
        units = self.planner.units()
        self._total = sum(u.planned() for u in units if u.recorded)
        self._skip_done = self._finished_keys()
        for unit in units:
            if unit.size is not None:  # adaptive: its tasks do not exist yet
                unit.weight = unit.size
                continue
            unit.weight = (sum(self.planner.skip_reason(t) is None for t in unit.tasks)
                           if unit.recorded else len(unit.tasks))
        try:
            for stage in sorted({u.stage for u in units}):
                if self.executor.stopped:
                    break
                self.executor.run([u for u in units if u.stage == stage], self._run_unit,
                                  jobs=self.planner.concurrency())
        except BaseException:  # Ctrl-C (or a harness bug): stop the threads, kill the workers
            self.executor.stop()
            raise
        self._done = self._total
        self._report("done")
        return dict(self.counts)

    def _run_unit(self, session: Session, unit: Unit) -> None:
        if not unit.recorded:
            for task in unit.tasks:
                if self.executor.stopped:
                    return
                message = self.planner.message(task)
                self.planner.outcome(task, message, session.request(message, self.planner.timeout),
                                     session)
            return
        device = self.planner.device
        pending: Iterable[Any]
        if unit.size is not None:  # adaptive: taken one at a time, after the last outcome
            pending = (t for t in unit.tasks if t.key(device) not in self._skip_done)
        else:
            pending = [t for t in unit.tasks if t.key(device) not in self._skip_done]
            self._advance(len(unit.tasks) - len(pending), unit.framework)  # type: ignore[arg-type]
        status = self.framework_status.get(unit.framework)
        unavailable = status.reason if status is not None and not status.available else ""
        timeouts, tripped = 0, ""
        for task in pending:
            if self.executor.stopped:
                return
            if unavailable:
                self._emit(task, {"status": UNAVAILABLE, "message": unavailable,
                                  "verdict": UNAVAILABLE})
                continue
            if reason := self.planner.skip_reason(task):
                self._emit(task, {"status": UNSUPPORTED, "message": reason,
                                  "verdict": UNSUPPORTED})
                continue
            if tripped:
                self._emit(task, {"status": SKIPPED, "message": tripped, "verdict": SKIPPED})
                continue
            start = time.perf_counter()
            message = self.planner.message(task)
            reply = session.request(message, self.planner.timeout)
            wall = time.perf_counter() - start
            if self.executor.stopped:
                return  # the worker was killed under the task: not its crash, not recorded
            if session.hello is not None:
                with self._lock:
                    self.settings.setdefault(unit.framework, dict(session.hello.settings))
            node = getattr(session, "node", None)  # where its worker ran (record field)
            if reply.status == UNAVAILABLE:
                unavailable = reply.message
                self._emit(task, {"status": UNAVAILABLE, "message": unavailable,
                                  "verdict": UNAVAILABLE, "node": node})
                continue
            self._emit(task, {**self.planner.outcome(task, message, reply, session),
                              "wall_s": wall, "node": node})
            # The circuit breaker: an implementation that hangs would cost its timeout on
            # every task; after max_timeouts in a row the rest of its unit is skipped.
            timeouts = timeouts + 1 if reply.status == TIMEOUT else 0
            if timeouts >= self.options.max_timeouts:
                tripped = (f"skipped: {task.impl_name} timed out {timeouts} times in a row in "
                           "this unit; --resume --retry-skipped runs it again")
