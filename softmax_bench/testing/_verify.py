"""``verify``: run a function over a suite's cases through the harness's own engine.

The accuracy planner plans the (case, dtype, pass) tasks exactly as for ``softmax-bench run``,
the engine runs them and writes one record per task to a run directory, and the records come
back as ``harness.store.load`` reads them. In process by default (``InProcessExecutor``: the
function may be a local one in a test file; no timeout, a crash takes the test process down),
or with ``isolated=True`` in a worker process of the local executor, as ``softmax-bench run --fn
MODULE:FUNCTION`` does (the function must then be importable).
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness import registry
from harness.engine.core import Engine, EngineOptions
from harness.errors import HarnessError
from harness.messages import AccuracyTask, Catalog, Hello, Reply, Request
from harness.ops import OPS
from harness.planning.accuracy import AccuracyPlanner
from harness.planning.request import DEFAULT_TIMEOUT, RunOptions
from harness.store import RunDirectory, load
from harness.vocabulary import DEVICES, DTYPE_NAMES, FAILURE_VERDICTS, PASSES
from harness.worker import loop
from harness.worker.adapters import get_adapter
from harness.worker.adapters.base import Adapter, NotDifferentiable
from softmax_bench.testing._arrays import to_numpy


class _HostAdapter:
    """The framework's adapter, but whatever the function returns comes back through
    ``softmax_bench.testing``'s conversion (a numpy function may return a torch tensor)."""

    def __init__(self, inner: Adapter) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        if isinstance(tensor, np.ndarray):
            return np.array(tensor, copy=True)
        try:
            return self._inner.to_numpy(tensor)
        except Exception:
            return to_numpy(tensor)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


class InProcessSession:
    """Answers accuracy tasks in this process with the framework's adapter."""

    def __init__(self, framework: str, impls: dict[str, registry.Implementation]) -> None:
        self.framework = framework
        self.impls = impls
        self._adapter: Any = None
        self._hello: Hello | None = None

    @property
    def hello(self) -> Hello | None:
        return self._hello

    def _start(self) -> str:
        try:
            adapter = get_adapter(self.framework)
            available, reason = adapter.availability()
        except HarnessError as exc:
            return exc.message
        if not available:
            return reason
        self._adapter = _HostAdapter(adapter)
        self._hello = Hello(True, "", tuple(loop.info(i) for i in self.impls.values()))
        return ""

    def request(self, message: Request, timeout: float) -> Reply:
        if self._adapter is None and (reason := self._start()):
            return Reply("unavailable", reason)
        if not isinstance(message, AccuracyTask):
            return Reply("error", "verify runs accuracy tasks only")
        impl = self.impls[message.impl]
        try:
            return loop.run_task(self._adapter, impl, message)
        except NotDifferentiable as exc:
            return Reply("unsupported", _one_line(exc))
        except Exception as exc:  # the function's own failure is a result
            return Reply("error", _one_line(exc))

    def close(self) -> None:
        return None


class InProcessExecutor:
    """Runs the units one after another in the calling thread."""

    name = "in-process"

    def __init__(self, impls: Sequence[registry.Implementation]) -> None:
        self.impls = {i.name: i for i in impls}
        self._stopped = False

    def run(self, units: Sequence[Any], run_unit: Callable[[Any, Any], None], *,
            jobs: int | None = None) -> None:
        sessions: dict[str, InProcessSession] = {}
        for unit in units:
            if self._stopped:
                return
            session = sessions.setdefault(unit.framework, InProcessSession(
                unit.framework, {n: i for n, i in self.impls.items()
                                 if i.framework == unit.framework}))
            run_unit(session, unit)

    def stop(self) -> None:
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify`` found: ``records`` (one row per task, the columns of
    ``harness.store.load``), ``failures`` (the records with a failing verdict), ``passed`` (none
    failed); ``str()`` names each failing case family with its worst element."""

    name: str
    op: str
    records: pd.DataFrame
    run_dir: Path | None = None

    @property
    def failures(self) -> pd.DataFrame:
        return self.records[self.records["verdict"].isin(sorted(FAILURE_VERDICTS))]

    @property
    def passed(self) -> bool:
        return self.failures.empty

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        rec = self.records
        counts = rec["verdict"].fillna(rec["status"]).value_counts()
        summary = ", ".join(f"{int(n)} {v}" for v, n in counts.items())
        fails = self.failures
        head = (f"verify {self.name} ({self.op}): {len(rec)} record(s): {summary}; "
                + ("passed" if fails.empty else f"{len(fails)} failing, in "
                   f"{fails['case_family'].nunique()} case famil"
                   f"{'y' if fails['case_family'].nunique() == 1 else 'ies'}"))
        lines = [head]
        for family, group in fails.groupby("case_family", sort=False):
            worst = _worst(group)
            lines.append(f"  {family}: {len(group)} failing record(s); worst "
                         f"{worst['case']} {worst['dtype']} {worst['pass']}: "
                         f"{worst['verdict']}{_detail(worst)}")
        return "\n".join(lines)


def _worst(group: pd.DataFrame) -> Any:
    from harness.vocabulary import VERDICT_RANK

    ranked = group.assign(_rank=group["verdict"].map(VERDICT_RANK).fillna(-1),
                          _ulp=pd.to_numeric(group["max_ulp"], errors="coerce").fillna(-1))
    return ranked.sort_values(["_rank", "_ulp"], ascending=False, kind="stable").iloc[0]


def _detail(rec: Any) -> str:
    def has(name: str) -> bool:
        value = rec.get(name)
        return value is not None and not (isinstance(value, float) and np.isnan(value))

    parts = []
    if has("score_message"):
        parts.append(str(rec["score_message"]))
    elif has("message") and rec["message"]:
        parts.append(str(rec["message"]))
    if has("worst_index"):
        where = f"at output{list(rec['worst_index'])}"
        values = [f"{k} {rec[k]}" for k in ("got", "expected", "exact") if has(k)]
        parts.append(where + (": " + ", ".join(values) if values else ""))
    if has("worst_row"):
        row = list(rec["worst_row"])
        shown = row if len(row) <= 8 else [*row[:6], "...", *row[-2:]]
        parts.append(f"input row {shown}")
    return (" (" + "; ".join(parts) + ")") if parts else ""


def _name_of(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "__main__"
    qual = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return f"{module}:{qual}"


def _import_root(module: str) -> str | None:
    """The sys.path entry ``module`` was imported from (to import it again in a worker)."""
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    depth = module.count(".") + (1 if Path(file).name == "__init__.py" else 0)
    for _ in range(depth):
        root = root.parent
    return str(root)


def _fn_spec(fn: Callable[..., Any], op: str, framework: str) -> registry.FnSpec:
    """The ``--fn`` spec of a live function, checked to import back to ``fn`` by name."""
    name = _name_of(fn)
    module, _, qual = name.partition(":")
    if "<" in qual or module == "__main__":
        raise ValueError(f"verify(isolated=True) runs {name} in a worker process, which must "
                         "import it by name: define it at the top level of an importable module")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part, None)
    if obj is not fn:
        raise ValueError(f"verify(isolated=True): {name} does not name this function")
    return registry.FnSpec(name, op, framework, _import_root(module))


def verify(fn: Callable[..., Any], op: str, *, suite: str = "quick",
           dtypes: Iterable[str] | str = ("float32",), passes: Iterable[str] | str = ("forward",),
           device: str = "cpu", isolated: bool = False, framework: str = "numpy",
           timeout: float = DEFAULT_TIMEOUT, out: str | Path | None = None) -> VerifyResult:
    """Run ``fn`` as an implementation of ``op`` over ``suite``'s cases and score every output.

    ``fn`` takes the op's inputs (``x``, or ``x, labels``; cross_entropy's options as keywords)
    as ``framework``'s tensors: numpy arrays by default, torch tensors with
    ``framework="torch"`` (whose autodiff gives the backward pass), ... It may return any
    framework's tensor. ``dtypes`` and ``passes`` choose the records; ``device`` is ``cpu`` or
    ``cuda`` (the framework's). In process unless ``isolated`` (then in a worker process with
    the timeout: ``fn`` must be importable by name). ``out``: keep the run directory there
    (``softmax-bench report OUT`` makes its report); by default it is temporary.
    """
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    dtype_list = tuple([dtypes] if isinstance(dtypes, str) else dtypes)
    pass_list = tuple([passes] if isinstance(passes, str) else passes)
    for value, allowed, what in ((dtype_list, DTYPE_NAMES, "dtype"), (pass_list, PASSES, "pass"),
                                 ((device,), DEVICES, "device")):
        bad = [v for v in value if v not in allowed]
        if bad or not value:
            raise ValueError(f"{what} {bad or value!r}: expected one or more of "
                             f"{', '.join(allowed)}")
    if isolated:
        spec = _fn_spec(fn, op, framework)
        info = registry.fn_info(spec)
    else:
        spec = None
        impl = registry.Implementation(_name_of(fn), op, framework, fn, dtypes=DTYPE_NAMES,
                                       devices=DEVICES, source="verify")
        impl.validate()
        info = loop.info(impl)
    with tempfile.TemporaryDirectory(prefix="softmax-bench-verify-") as tmp:
        run_dir = Path(out) if out is not None else Path(tmp) / "run"
        extra: dict[str, Any] = {}
        if "reference_jobs" in RunOptions.__dataclass_fields__:
            extra["reference_jobs"] = 0  # references inline: no process pool in a test process
        opts = RunOptions(suite=suite, include=(info.name,), device=device, dtypes=dtype_list,
                          timeout=timeout, out=run_dir, jobs=1, **extra)
        planner = AccuracyPlanner.make(opts, Catalog((info,)))
        planner.tasks = [t for t in planner.tasks if t.pass_ in pass_list]
        executor: Any
        if spec is not None:
            from harness.engine.local import LocalExecutor
            from harness.frameworks import framework_statuses

            executor = LocalExecutor(device, 1)
            executor.env[registry.FN_ENV] = registry.encode_fn_specs([spec])
            statuses = {s.name: s for s in framework_statuses()}
        else:
            executor = InProcessExecutor([impl])
            statuses = {}
        store = RunDirectory.create(run_dir, planner.run_meta())
        engine = Engine(planner, executor, store, statuses, EngineOptions())
        try:
            counts = engine.run()
        except BaseException:
            store.close()
            raise
        finally:
            planner.close()
        store.finish({"counts": counts, "framework_settings": engine.settings,
                      "executor": executor.name})
        records = load(run_dir)
    return VerifyResult(info.name, op, records, run_dir if out is not None else None)


def assert_verified(fn: Callable[..., Any], op: str, **kwargs: Any) -> VerifyResult:
    """``verify(fn, op, **kwargs)``; raises AssertionError with its summary on a failure."""
    result = verify(fn, op, **kwargs)
    if not result.passed:
        raise AssertionError(str(result))
    return result
