"""One run, start to end: choose the planner for the suite, open the store, run the engine.

This is the one place that wires the seams together (the CLI, the tests and the public API call
it): the suite's kind picks the planner (accuracy or throughput), the executor runs its units,
the engine writes every record to the run directory, and the planner's end-of-run facts go to
run.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.engine.core import Engine, EngineOptions
from harness.engine.local import LocalExecutor
from harness.engine.ray_executor import RayExecutor
from harness.engine.workers import list_implementations
from harness.errors import ConfigError
from harness.frameworks import framework_statuses
from harness.messages import Catalog
from harness.planning import suites
from harness.planning.accuracy import AccuracyPlanner
from harness.planning.request import RunOptions
from harness.planning.throughput import ThroughputPlanner, make_plan
from harness.store import RunDirectory

Planner = AccuracyPlanner | ThroughputPlanner


def plan(opts: RunOptions, catalog: Catalog | dict[str, Any] | None = None) -> Planner:
    """The planner for ``opts.suite``: its kind decides which."""
    suite = suites.get_suite(opts.suite)
    catalog = Catalog.from_json(catalog) if catalog is not None else list_implementations()
    if suite.kind == "throughput":
        return make_plan(opts, suite, catalog)
    return AccuracyPlanner.make(opts, catalog)


def run_suite(opts: RunOptions, progress: Callable[[int, int, str], None] | None = None,
              catalog: Catalog | dict[str, Any] | None = None,
              executor: LocalExecutor | RayExecutor | None = None,
              log: Callable[[str], None] | None = None
              ) -> tuple[Path, dict[str, int], Planner]:
    """Plan, create (or resume) the run directory, execute, and finish it. ``log`` takes the
    throughput planner's notes (memory bound, fidelity); default: stderr."""
    planner = plan(opts, catalog)
    executor = executor or make_executor(opts, planner)
    try:
        store = (RunDirectory.open_for_resume(opts.out) if opts.resume
                 else RunDirectory.create(opts.out, planner.run_meta()))
    except BaseException:
        _shutdown(executor)
        raise
    if isinstance(planner, ThroughputPlanner):
        if opts.resume:
            planner.resume_from(store.records())
        planner.announce(*([log] if log else []))
    engine = Engine(planner, executor, store, {s.name: s for s in framework_statuses()},
                    EngineOptions(opts.resume, opts.retry_skipped, opts.max_timeouts), progress)
    started = time.perf_counter()
    try:
        if isinstance(planner, AccuracyPlanner):  # references computed ahead, beside the workers
            planner.prefetch(engine.finished_keys())
        counts = engine.run()
        if opts.resume and isinstance(planner, ThroughputPlanner):
            planner.after_resume(executor.session)
        end = planner.end_meta()
    except BaseException:
        store.close()  # what was recorded stays, fsynced; --resume finishes the run
        raise
    finally:
        if isinstance(planner, AccuracyPlanner):
            planner.close()
        ray_detail = executor.describe() if isinstance(executor, RayExecutor) else None
        _shutdown(executor)
    if isinstance(planner, ThroughputPlanner):
        planner.report_fidelity(*([log] if log else []))
    store.finish({"counts": counts, "framework_settings": engine.settings,
                  "executor": executor.name, "wall_s": time.perf_counter() - started,
                  **({"ray": ray_detail} if ray_detail is not None else {}), **end})
    return opts.out, counts, planner


def make_executor(opts: RunOptions, planner: Planner) -> LocalExecutor | RayExecutor:
    """The executor ``opts.executor`` names (``--executor local|ray``, docs/cluster.md)."""
    threads = planner_threads(planner, opts)
    if opts.executor == "ray":
        return RayExecutor(opts.device, opts.jobs, threads, opts.ray_address,
                           exclusive=isinstance(planner, ThroughputPlanner))
    if opts.ray_address is not None:
        raise ConfigError("--ray-address goes with --executor ray")
    return LocalExecutor(opts.device, opts.jobs, threads)


def _shutdown(executor: LocalExecutor | RayExecutor) -> None:
    if isinstance(executor, RayExecutor):
        executor.shutdown()  # the local Ray cluster started for the run, if any


def planner_threads(planner: Planner, opts: RunOptions) -> int | None:
    """Intra-op threads for the workers: timing sets them equal in every framework."""
    return planner.threads if isinstance(planner, ThroughputPlanner) else opts.threads
