"""Score one output against the exact value, with the harness's own scoring; explain a failure.

``score`` returns a :class:`CheckResult`; ``assert_close_to_exact`` and
``assert_grad_close_to_exact`` raise ``AssertionError`` with its explanation when the verdict is
a failure. The verdict, the limits and the metric fields are exactly those of a
``softmax-bench run`` record (``harness.scoring.score_outcome`` against
``harness.ops.OPS[op].reference``); ``max_ulp`` replaces the limit on the accuracy verdict.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import scoring
from harness.ops import OPS
from harness.scoring.fields import empty_fields
from harness.vocabulary import (
    BACKWARD,
    DENSE_CE,
    DTYPES,
    FAILURE_VERDICTS,
    FORWARD,
    PER_ROW_OUTPUT_OPS,
    SCORED,
    TORCH_CE,
    VERDICT_INFO,
)
from references import metrics
from references.formats import format_of
from softmax_bench.testing._arrays import BFLOAT16, to_numpy

# mpmath's working precision is process-wide and results evaluate lazily: one scoring at a time.
_LOCK = threading.RLock()
_ROW_HEX_MAX = 64  # longer input rows are saved to a .npy file rather than printed as hex
_ROW_SHOWN = 16  # longer rows are shortened in the message


@dataclass(frozen=True)
class CheckResult:
    """The judgement of one output: ``verdict`` (docs/scoring.md), ``passed`` (not a failing
    verdict), ``max_ulp`` (largest ULP error over the scored elements), ``limit`` (the ULP limit
    that applied: ``max_ulp=`` when given, else the harness's), ``norm_ulp`` and ``severity``
    where the harness's scorer gives them, ``fields`` (every metric field of the record) and
    ``message`` (what ``str()`` prints; the AssertionError's text on a failure)."""

    verdict: str
    passed: bool
    max_ulp: float | None
    limit: float | None
    norm_ulp: float | None
    severity: str | None
    op: str
    pass_: str
    dtype: str
    fields: Mapping[str, Any] = field(repr=False)
    message: str = field(repr=False, default="")

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Input:
    """What was scored: the op's inputs (class axis last) and how to name and rebuild them."""

    op: str
    pass_: str
    dtype: str
    inputs: dict[str, np.ndarray]
    options: dict[str, Any]
    cotangent: np.ndarray | None
    case_status: str = SCORED
    family: str = ""
    rebuild: str | None = None  # an expression giving x (a case's), else x is dumped


def _dtype_name(x: np.ndarray, what: str) -> str:
    name = str(x.dtype)
    if name not in DTYPES:
        raise TypeError(f"{what} has dtype {name}; softmax-bench judges "
                        f"{', '.join(DTYPES)} inputs (the exact value of each element is the "
                        "input)")
    return name


def prepare(x: Any, op: str, pass_: str, *, axis: int = -1, labels: Any = None,
            cotangent: Any = None, options: Mapping[str, Any] | None = None
            ) -> tuple[_Input, int]:
    """The op's inputs as the harness takes them (class axis moved last) and that axis."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    spec = OPS[op]
    xa = to_numpy(x)
    dtype = _dtype_name(xa, "x")
    if xa.ndim == 0:
        raise ValueError("x must have a class axis (at least 1 dimension)")
    axis = axis % xa.ndim if -xa.ndim <= axis < xa.ndim else _bad_axis(axis, xa.ndim)
    if op == TORCH_CE and axis != xa.ndim - 1:
        raise ValueError("cross_entropy takes the classes on the last axis here")
    xa = np.moveaxis(xa, axis, -1)
    inputs = {"x": xa}
    if len(spec.inputs) > 1:
        if labels is None:
            raise TypeError(f"{op} needs labels=")
        la = to_numpy(labels)
        if op == DENSE_CE:
            la = np.moveaxis(la, axis, -1)
            if la.dtype != xa.dtype:
                from harness.worker.adapters.base import exact_cast

                la = exact_cast(la, dtype, "labels")
            inputs["labels"] = la
        else:
            if la.dtype.kind in "f" and op == TORCH_CE:
                inputs["targets"] = la.astype(xa.dtype) if la.dtype != xa.dtype else la
            elif la.dtype.kind in "iu":
                inputs["targets"] = la.astype(np.int64)
            else:
                raise TypeError(f"{op} takes integer class labels, got dtype {la.dtype}")
    elif labels is not None:
        raise TypeError(f"{op} takes no labels")
    opts = dict(options or {})
    if opts and op != TORCH_CE:
        raise TypeError(f"{op} takes no options ({', '.join(sorted(opts))}); only "
                        "cross_entropy does")
    if opts.get("weight") is not None:
        opts["weight"] = np.asarray(to_numpy(opts["weight"]), dtype=np.float64)
    cot = None
    if pass_ == BACKWARD:
        if spec.random_cotangent:
            if cotangent is None:
                raise TypeError(f"the {op} backward pass needs cotangent= (the upstream "
                                "gradient; with ones the exact gradient is 0)")
            cot = np.moveaxis(to_numpy(cotangent), axis, -1)
            if cot.dtype != xa.dtype:
                from harness.worker.adapters.base import exact_cast

                cot = exact_cast(cot, dtype, "cotangent")
        elif cotangent is not None:
            raise TypeError(f"the {op} backward pass here is the gradient of the sum of its "
                            "outputs (cotangent of ones): leave cotangent out")
    return _Input(op, pass_, dtype, inputs, opts, cot), axis


def _bad_axis(axis: int, ndim: int) -> int:
    raise ValueError(f"axis {axis} is out of range for an input of {ndim} dimensions")


def expected_shape(inp: _Input) -> tuple[int, ...] | None:
    shape = tuple(inp.inputs["x"].shape)
    if inp.op == TORCH_CE and inp.pass_ == FORWARD:
        return None  # depends on the reduction
    return shape[:-1] if inp.op in PER_ROW_OUTPUT_OPS and inp.pass_ == FORWARD else shape


def judge(actual: Any, inp: _Input, *, axis: int = -1, max_ulp: float | None = None,
          raised: str | None = None) -> CheckResult:
    """Score ``actual`` (or the exception text ``raised``) on ``inp`` and explain the verdict."""
    y = None if actual is None else to_numpy(actual)
    ndim = inp.inputs["x"].ndim
    if y is not None and axis != ndim - 1 and y.ndim == ndim:  # elementwise: classes last
        y = np.moveaxis(y, axis, -1)
    with _LOCK:
        try:
            reference: Any = OPS[inp.op].reference(inp.pass_, inp.inputs, inp.cotangent,
                                                   inp.options)
        except (ValueError, TypeError) as exc:  # no exact value (e.g. labels out of range)
            reference = exc
        want = expected_shape(inp)
        if y is not None and raised is None and want is not None and y.shape != want:
            fields = empty_fields(verdict="wrong_shape", output_dtype=str(y.dtype),
                                  score_message=f"output has shape {y.shape}, expected {want}")
        else:
            fields = scoring.score_outcome(
                op=inp.op, pass_=inp.pass_, dtype=inp.dtype, actual=y, reference=reference,
                inputs=inp.inputs, case_status=inp.case_status, family=inp.family,
                raised=raised, cotangent=inp.cotangent)
        limit = fields.get("ulp_limit")
        if max_ulp is not None:
            fields = _override_limit(fields, float(max_ulp))
            limit = float(max_ulp)
        point = None
        if y is not None and fields.get("worst_index") is not None and not isinstance(
                reference, BaseException):
            idx = tuple(fields["worst_index"])
            if max_ulp is not None and fields["verdict"] in ("pass", "inaccurate"):
                idx = _largest_error(y, reference, inp) or idx
            point = _worst_point(y, reference, inp, idx)
    verdict = str(fields["verdict"])
    passed = verdict not in FAILURE_VERDICTS
    result = CheckResult(verdict, passed, fields.get("max_ulp"), limit, fields.get("norm_ulp"),
                         fields.get("severity"), inp.op, inp.pass_, inp.dtype, fields)
    return _with_message(result, inp, y, point)


def _override_limit(fields: dict[str, Any], max_ulp: float) -> dict[str, Any]:
    """``max_ulp`` as the accuracy limit: pass/inaccurate decided by the largest ULP error."""
    if fields.get("verdict") not in ("pass", "inaccurate") or fields.get("max_ulp") is None:
        return fields
    worst = float(fields["max_ulp"])
    out = dict(fields, ulp_limit=max_ulp,
               limit_ratio=worst / max_ulp if max_ulp > 0 else math.inf)
    if worst <= max_ulp:
        out.update(verdict="pass", score_message=None)
    else:
        out.update(verdict="inaccurate",
                   score_message=f"worst {worst:.4g} ulp > max_ulp {max_ulp:g}")
    return out


@dataclass(frozen=True)
class _Point:
    index: tuple[int, ...]
    ulps: float | None
    cls: str
    row: np.ndarray | None
    row_index: tuple[int, ...] | None
    column: int | None
    got: str | None = None
    expected: str | None = None
    exact: str | None = None


def _largest_error(y: np.ndarray, reference: Any, inp: _Input) -> tuple[int, ...] | None:
    """The element with the largest numeric ULP error (where ``max_ulp`` decided)."""
    try:
        err = metrics.ulp_error(y if _known(y) else y.astype(np.float64), reference,
                                format_of(inp.dtype).dtype)
        ulps = np.where(np.asarray(err.numeric), np.asarray(err.ulps, dtype=np.float64), -1.0)
        if not ulps.size or ulps.max() < 0:
            return None
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(ulps)), ulps.shape))
    except Exception:
        return None


def _worst_point(y: np.ndarray, reference: Any, inp: _Input, idx: tuple[int, ...]) -> _Point:
    ulps: float | None = None
    cls = ""
    got = expected = exact = None
    try:
        yj = y if _known(y) else y.astype(np.float64)
        fmt = format_of(inp.dtype)
        err = metrics.ulp_error(yj, reference, fmt.dtype)
        u = float(np.asarray(err.ulps)[idx])
        ulps = u if math.isfinite(u) else None
        cls = str(np.asarray(err.classes)[idx])
        got = _value(y[idx], y.dtype)
        rounded = np.asarray(reference.rounded(fmt.dtype)).reshape(y.shape)
        expected = _value(rounded[idx], rounded.dtype)
        exact = repr(float(np.asarray(reference.hi, dtype=np.float64).reshape(y.shape)[idx]))
    except Exception:  # the explanation must never hide the verdict
        pass
    x = inp.inputs["x"]
    row = row_index = column = None
    if y.shape == x.shape and len(idx) == x.ndim:
        row_index, column = idx[:-1], idx[-1]
    elif y.shape == x.shape[:-1] and len(idx) == x.ndim - 1:
        row_index = idx
    if row_index is not None:
        row = x[row_index]
    return _Point(idx, ulps, cls, row, row_index, column, got, expected, exact)


def _known(y: np.ndarray) -> bool:
    try:
        format_of(y.dtype)
        return True
    except TypeError:
        return False


def _value(v: Any, dtype: np.dtype[Any]) -> str:
    if dtype == BFLOAT16:
        f = float(v)
        return "nan" if math.isnan(f) else repr(f)
    return str(v)


def _shown_row(row: np.ndarray, column: int | None) -> str:
    n = row.shape[0]
    if n <= _ROW_SHOWN:
        keep = list(range(n))
    else:
        picks = set(range(6)) | set(range(n - 3, n))
        if column is not None:
            picks |= set(range(max(0, column - 2), min(n, column + 3)))
        keep = sorted(picks)
    parts: list[str] = []
    last = -1
    for i in keep:
        if i != last + 1:
            parts.append(f"... ({i - last - 1} more)")
        text = _value(row[i], row.dtype)
        parts.append(f"*{text}" if i == column and n > 1 else text)
        last = i
    if last != n - 1:
        parts.append(f"... ({n - 1 - last} more)")
    return "[" + ", ".join(parts) + "]"


def _rebuild_row(row: np.ndarray) -> str:
    """An expression that rebuilds ``row`` bit for bit (hex, or a .npy file for long rows)."""
    bf16 = row.dtype == BFLOAT16
    bits = np.ascontiguousarray(row.view(np.uint16) if bf16 else row)
    dtype = "np.uint16" if bf16 else f"np.{row.dtype}"
    view = ".view(ml_dtypes.bfloat16)" if bf16 else ""
    if row.shape[0] <= _ROW_HEX_MAX:
        return f"np.frombuffer(bytes.fromhex('{bits.tobytes().hex()}'), dtype={dtype}){view}"
    digest = hashlib.sha256(bits.tobytes()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "softmax-bench-rows"
    path = folder / f"{digest}.npy"
    try:
        folder.mkdir(exist_ok=True)
        if not path.exists():
            np.save(path, bits, allow_pickle=False)
    except OSError as exc:
        return f"(could not save the row: {exc.strerror or exc}; sha256 prefix {digest})"
    return f"np.load('{path}'){view}"


def _with_message(result: CheckResult, inp: _Input, y: np.ndarray | None,
                  point: _Point | None) -> CheckResult:
    f = result.fields
    info = VERDICT_INFO.get(result.verdict)
    head = f"{inp.op} {inp.pass_} ({inp.dtype}): {result.verdict}"
    if info is not None:
        head += f": {info.text}"
    lines = [head]
    if f.get("score_message"):
        lines.append(f"  {f['score_message']}")
    if f.get("convention"):
        lines.append(f"  convention: {f['convention']}")
    if point is not None:
        x = inp.inputs["x"]
        lines.append(f"  worst element: output{list(point.index)}")
        if point.row is not None and point.row_index is not None:
            where = f"[{', '.join(str(i) for i in point.row_index)}]" if point.row_index else ""
            star = " (* marks the worst element's class)" if point.column is not None and \
                point.row.shape[0] > 1 else ""
            lines.append(f"  its input row x{where} ({point.row.shape[0]} values, "
                         f"{inp.dtype}, class axis last){star}: "
                         f"{_shown_row(point.row, point.column)}")
            rebuild = (f"{inp.rebuild}{where}" if inp.rebuild is not None
                       else _rebuild_row(point.row))
            lines.append(f"    rebuild it: {rebuild}")
            if "targets" in inp.inputs and inp.inputs["targets"].ndim == x.ndim - 1:
                lines.append(f"    label: {inp.inputs['targets'][point.row_index]}")
        elif inp.rebuild is not None:
            lines.append(f"  input: {inp.rebuild}")
        for label, value in (("exact value", point.exact or f.get("exact")),
                             (f"correctly rounded ({inp.dtype})",
                              point.expected or f.get("expected")),
                             ("got", point.got or f.get("got"))):
            if value is not None:
                lines.append(f"  {label + ':':<31}{value}")
        if point.ulps is not None and not point.cls:
            err = f"{point.ulps:.4g} ulp"
        elif point.cls:
            err = f"not a number ({point.cls.replace('_', ' ')})" if point.ulps is None \
                else f"{point.ulps:.4g} ulp ({point.cls.replace('_', ' ')})"
        else:
            err = "-"
        lines.append(f"  ulp error there: {err}; limit: {_num(result.limit)} ulp")
    if result.max_ulp is not None:
        extra = "".join(f", {name} {_num(f.get(name))}" for name in ("norm_ulp", "severity")
                        if f.get(name) is not None)
        lines.append(f"  max ulp error over the scored elements: {_num(result.max_ulp)} "
                     f"(limit {_num(result.limit)}{extra})")
    if y is not None and str(y.dtype) != inp.dtype:
        lines.append(f"  note: the output is {y.dtype}; it is judged in {inp.dtype}, the input's "
                     "dtype")
    return CheckResult(result.verdict, result.passed, result.max_ulp, result.limit,
                       result.norm_ulp, result.severity, result.op, result.pass_, result.dtype,
                       result.fields, "\n".join(lines))


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def score(actual: Any, x: Any, op: str = "softmax", *, axis: int = -1, labels: Any = None,
          max_ulp: float | None = None, **op_options: Any) -> CheckResult:
    """Judge ``actual`` = ``op(x)`` against the exact value without raising (for
    ``hypothesis.target(result.max_ulp or 0)`` and the like). Arguments as
    :func:`assert_close_to_exact`."""
    inp, ax = prepare(x, op, FORWARD, axis=axis, labels=labels, options=op_options)
    return judge(actual, inp, axis=ax, max_ulp=max_ulp)


def score_grad(grad: Any, x: Any, op: str = "softmax", *, cotangent: Any = None,
               axis: int = -1, labels: Any = None, max_ulp: float | None = None,
               **op_options: Any) -> CheckResult:
    """Judge ``grad`` = the VJP of ``op`` at ``x`` without raising; see
    :func:`assert_grad_close_to_exact`."""
    inp, ax = prepare(x, op, BACKWARD, axis=axis, labels=labels, cotangent=cotangent,
                      options=op_options)
    return judge(grad, inp, axis=ax, max_ulp=max_ulp)


def assert_close_to_exact(actual: Any, x: Any, op: str = "softmax", *, axis: int = -1,
                          labels: Any = None, max_ulp: float | None = None,
                          **op_options: Any) -> CheckResult:
    """Assert that ``actual`` is ``op(x)`` within the harness's limits.

    ``actual``, ``x`` and ``labels``: numpy arrays or framework tensors (torch, JAX, TensorFlow,
    CuPy; anything with ``__dlpack__`` or ``__array__``; bfloat16 included; device tensors are
    copied to the host). ``x``'s dtype is the precision judged. ``op``: ``softmax``,
    ``log_softmax``, ``logsumexp``, ``softmax_cross_entropy`` (dense ``labels``),
    ``sparse_softmax_cross_entropy`` (integer ``labels``) or ``cross_entropy`` (integer or
    probability ``labels``; PyTorch's ``weight``, ``ignore_index``, ``label_smoothing``,
    ``reduction`` as keyword arguments). Losses are per row (no reduction) except
    ``cross_entropy``. ``max_ulp`` replaces the ULP limit. Returns the :class:`CheckResult`;
    raises ``AssertionError`` explaining the worst element when the verdict is a failure.
    """
    result = score(actual, x, op, axis=axis, labels=labels, max_ulp=max_ulp, **op_options)
    if not result.passed:
        raise AssertionError(result.message)
    return result


def assert_grad_close_to_exact(grad: Any, x: Any, op: str = "softmax", *, cotangent: Any = None,
                               axis: int = -1, labels: Any = None, max_ulp: float | None = None,
                               **op_options: Any) -> CheckResult:
    """Assert that ``grad`` is the gradient (vector-Jacobian product) of ``op`` at ``x`` with
    respect to the logits, within the harness's limits.

    ``softmax`` and ``log_softmax`` need ``cotangent`` (the upstream gradient, x's shape); the
    other ops return one value per row and their gradient is that of the sum of the outputs
    (cotangent of ones: leave it out). Otherwise as :func:`assert_close_to_exact`.
    """
    result = score_grad(grad, x, op, cotangent=cotangent, axis=axis, labels=labels,
                        max_ulp=max_ulp, **op_options)
    if not result.passed:
        raise AssertionError(result.message)
    return result
