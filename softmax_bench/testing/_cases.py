"""The harness's cases, one op and dtype at a time, as a kernel author's test sees them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.ops import OPS
from harness.planning import cases as cases_mod
from harness.planning import suites
from harness.vocabulary import BACKWARD, DTYPES, FORWARD
from softmax_bench.testing._check import CheckResult, _Input, judge


@dataclass(frozen=True, eq=False)
class Case:
    """One case of a suite for one op in one dtype: ``x`` (class axis last), ``labels`` (dense
    probabilities, or integer class indices; None for softmax, log_softmax, logsumexp),
    ``options`` (cross_entropy's keyword arguments), ``cotangent`` (the backward pass's upstream
    gradient for softmax and log_softmax), ``op``, ``dtype``, ``case_id`` (which rebuilds it:
    ``get_case(case_id, op=..., dtype=...)``), ``family`` and ``status`` (``scored``,
    ``convention`` or ``error_expected``: docs/cases.md). ``unsupported``: why the case cannot
    exist in this dtype (None when it can)."""

    case_id: str
    family: str
    op: str
    dtype: str
    suite: str
    x: np.ndarray
    labels: np.ndarray | None
    options: dict[str, Any]
    cotangent: np.ndarray | None
    status: str
    backward_status: str
    unsupported: str | None = None
    _input: cases_mod.CaseInput | None = field(default=None, repr=False)

    @property
    def args(self) -> tuple[np.ndarray, ...]:
        """The op's positional inputs: ``(x,)`` or ``(x, labels)``."""
        return (self.x,) if self.labels is None else (self.x, self.labels)

    def _rebuild(self) -> str:
        return (f"softmax_bench.testing.get_case({self.case_id!r}, op={self.op!r}, "
                f"dtype={self.dtype!r}, suite={self.suite!r}).x")

    def _inp(self, pass_: str) -> _Input:
        # judged on the case's own read-only arrays: a kernel that wrote into x changes nothing
        if self._input is not None:
            inputs = dict(self._input.inputs)
        else:
            inputs = {"x": self.x}
            if self.labels is not None:
                inputs["labels" if "labels" in OPS[self.op].inputs else "targets"] = self.labels
        status = self.status if pass_ == FORWARD else self.backward_status
        own = self._input.cotangent if self._input is not None else self.cotangent
        cot = own if pass_ == BACKWARD and OPS[self.op].random_cotangent else None
        return _Input(self.op, pass_, self.dtype, inputs, dict(self.options), cot, status,
                      self.family, self._rebuild())

    def score(self, actual: Any, *, max_ulp: float | None = None) -> CheckResult:
        """The judgement of ``actual`` as this case's forward output (no exception)."""
        return judge(actual, self._inp(FORWARD), max_ulp=max_ulp)

    def check(self, actual: Any, *, max_ulp: float | None = None) -> CheckResult:
        """``assert_close_to_exact`` on this case: the harness's verdict for ``actual`` (a numpy
        array or framework tensor), with this case's expectations (a convention case accepts
        the documented conventions). Raises AssertionError explaining a failure."""
        return _raise(self.score(actual, max_ulp=max_ulp))

    def check_grad(self, grad: Any, *, max_ulp: float | None = None) -> CheckResult:
        """``assert_grad_close_to_exact`` on this case (cotangent: ``self.cotangent`` for
        softmax and log_softmax, ones for the per-row ops)."""
        return _raise(judge(grad, self._inp(BACKWARD), max_ulp=max_ulp))

    def call(self, fn: Callable[..., Any], *, max_ulp: float | None = None) -> CheckResult:
        """Call ``fn(*self.args, **self.options)`` and check what it returns; an exception it
        raises is judged too (some cases expect one, e.g. labels out of range)."""
        try:
            actual = fn(*self.args, **self.options)
        except Exception as exc:
            text = " ".join(str(exc).split())
            return _raise(judge(None, self._inp(FORWARD), max_ulp=max_ulp,
                                raised=f"{type(exc).__name__}: {text}"[:500]))
        return self.check(actual, max_ulp=max_ulp)


def _raise(result: CheckResult) -> CheckResult:
    if not result.passed:
        raise AssertionError(result.message)
    return result


def _case(ci: cases_mod.CaseInput, suite: str) -> Case:
    spec = OPS[ci.op]
    labels = np.array(ci.inputs[spec.inputs[1]]) if len(spec.inputs) > 1 else None
    cot = None if ci.cotangent is None else np.array(ci.cotangent)
    # writable copies (torch.from_numpy warns on read-only arrays)
    return Case(ci.case_id, ci.family, ci.op, ci.dtype, suite, np.array(ci.inputs["x"]), labels,
                dict(ci.options), cot, ci.status_for(FORWARD),
                ci.status_for(BACKWARD), ci.unsupported, ci)


def cases(op: str = "softmax", *, suite: str = "quick", dtypes: Iterable[str] | str = ("float32",),
          families: Iterable[str] | str | None = None) -> list[Case]:
    """Every case of ``suite`` (a built-in name or a .toml file) for ``op`` in ``dtypes``,
    optionally only those of ``families``, in the suite's order (unsupported ones included:
    see ``Case.unsupported``)."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    wanted = _names(dtypes)
    for d in wanted:
        if d not in DTYPES:
            raise ValueError(f"unknown dtype {d!r}; expected one of {', '.join(DTYPES)}")
    fams = None if families is None else set(_names(families))
    if fams is not None:
        unknown = sorted(fams - set(cases_mod.FAMILIES))
        if unknown:
            raise ValueError(f"unknown case families {unknown}; see docs/cases.md")
    found = [_case(ci, suite) for ci in cases_mod.generate(suites.get_suite(suite))
             if ci.op == op and ci.dtype in wanted and (fams is None or ci.family in fams)]
    order = {d: i for i, d in enumerate(wanted)}
    return sorted(found, key=lambda c: order[c.dtype])  # stable: suite order within a dtype


def get_case(case_id: str, *, op: str, dtype: str = "float32", suite: str = "quick") -> Case:
    """The case ``case_id`` of ``suite`` (as a failure message names it)."""
    for c in cases(op, suite=suite, dtypes=(dtype,)):
        if c.case_id == case_id:
            return c
    raise LookupError(f"no case {case_id!r} for {op} in {dtype} in suite {suite!r}")


def _names(value: Iterable[str] | str) -> Sequence[str]:
    return [value] if isinstance(value, str) else list(value)
