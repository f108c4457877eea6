"""``cross_entropy`` with PyTorch's semantics (class axis last), and its gradient.

Every variant is a dense loss -sum_c q_c log_softmax(x)_c with a label vector q that does not
depend on the logits (docs/numerics.md §3-§4):
  class indices, active row: q = (1 - eps) w_t e_t + (eps / C) w;   ignored row: q = 0
  probabilities:             q = w * ((1 - eps) y + eps / C)
and "mean" divides q by D (the summed weight of the active rows for class indices, the number of
rows for probabilities). q is built exactly with Fractions, so the reference stays exact; the
gradient of the reduced loss is (sum q) p - q per row.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from references import _engine, api, cache
from references._exact import round_fraction
from references.result import ReferenceResult

REDUCTIONS = ("none", "sum", "mean")


def _validate_options(weight: Any, n_classes: int, label_smoothing: Any, reduction: Any
                      ) -> tuple[np.ndarray | None, Fraction]:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing,
                                                           (int, float, np.floating)):
        raise TypeError(f"label_smoothing must be a number in [0, 1]; got {label_smoothing!r}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1]; got {label_smoothing!r}")
    w = None
    if weight is not None:
        w = api._finite_float(weight, "weight", (n_classes,)).astype(np.float64)
    return w, Fraction(float(label_smoothing))


def _build_q(x: np.ndarray, target: Any, w: np.ndarray | None, eps: Fraction,
             ignore_index: int, reduction: str
             ) -> tuple[np.ndarray, Fraction | None, tuple[int, ...]]:
    """Exact label matrix q (object array of Fractions/ints), the mean's divisor, lead shape."""
    C = x.shape[-1]
    wf = [Fraction(1)] * C if w is None else [Fraction(float(v)) for v in w]
    tgt = np.asarray(target)
    if tgt.shape == x.shape:  # PyTorch: same shape as the input means class probabilities
        if tgt.dtype not in api._FLOAT_DTYPES:
            raise TypeError("target with the logits' shape holds class probabilities and must be "
                            f"floating point; got dtype {tgt.dtype}")
        if ignore_index >= 0:
            raise ValueError("ignore_index must be negative with probability targets "
                             f"(PyTorch raises); got {ignore_index}")
        y = api._finite_float(tgt, "target", x.shape).astype(np.float64).reshape(-1, C)
        q = np.full(y.shape, 0, dtype=object)
        smooth = eps / C
        for i, j in np.ndindex(*y.shape):
            q[i, j] = wf[j] * ((1 - eps) * Fraction(float(y[i, j])) + smooth)
        divisor = Fraction(y.shape[0]) if reduction == "mean" else None
        return q, divisor, x.shape[:-1]
    labels = api._sparse_labels(tgt, x.shape[:-1], C, ignore_index=ignore_index).reshape(-1)
    q = np.full((labels.size, C), 0, dtype=object)
    active = labels != ignore_index
    for i in np.nonzero(active)[0]:
        t = int(labels[i])
        if eps:
            for j in range(C):
                q[i, j] = eps / C * wf[j]
        q[i, t] = q[i, t] + (1 - eps) * wf[t]
    divisor = None
    if reduction == "mean":
        divisor = sum((wf[int(t)] for t in labels[active]), Fraction(0))
    return q, divisor, x.shape[:-1]


def _problem(op: str, logits: Any, target: Any, weight: Any, ignore_index: int,
             label_smoothing: Any, reduction: str) -> tuple[_engine.Problem, Fraction | None,
                                                         tuple[int, ...], str]:
    arr = api._as_logits(logits, "logits")
    if arr.ndim == 0:
        raise ValueError("logits must have a class axis (at least one dimension)")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index must be an integer; got {ignore_index!r}")
    api._require_classes(arr, arr.ndim - 1)
    w, eps = _validate_options(weight, arr.shape[-1], label_smoothing, reduction)
    x2 = arr.astype(np.float64).reshape(-1, arr.shape[-1])
    q, divisor, lead = _build_q(arr, target, w, eps, int(ignore_index), reduction)
    if divisor:  # "mean": the loss and its gradient are linear in q
        q = np.vectorize(lambda v: Fraction(v) / divisor, otypes=[object])(q) if q.size else q
    hi, lo, err = np.zeros(q.shape), np.zeros(q.shape), np.zeros(q.shape)
    for pos in np.ndindex(*q.shape):
        if q.item(pos) != 0:
            value = Fraction(q.item(pos))
            h, low, _ = round_fraction(value)
            hi[pos], lo[pos] = h, low
            err[pos] = 2 * abs(float(value - Fraction(h) - Fraction(low)))
    problem = _engine.Problem(op, x2, y=hi, extra={"y_lo": lo, "y_err": err,
                                                   "q_exact": _engine.ExactLabels(q)})
    key = cache.content_key(api.CACHE_VERSION, "cross_entropy", op, x2, np.asarray(target),
                            w if w is not None else "none", int(ignore_index), eps, reduction)
    return problem, divisor, lead, key


def cross_entropy(logits: Any, target: Any, *, weight: Any = None, ignore_index: int = -100,
                  label_smoothing: float = 0.0, reduction: str = "mean") -> ReferenceResult:
    """PyTorch's ``F.cross_entropy`` with the class axis last (the all-ignored mean is NaN)."""
    problem, divisor, lead, key = _problem("softmax_cross_entropy", logits, target, weight,
                                           ignore_index, label_smoothing, reduction)
    if reduction == "none":
        return api._result(problem, lead, (key,))
    n_rows = problem.x.shape[0]

    def full() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        hit = cache.load(key + "-total")
        if hit is not None:
            return hit["hi"], hit["lo"], hit["direction"], hit["undecided"]
        if reduction == "mean" and (n_rows == 0 or divisor == 0):
            # D = 0 (every target ignored, or no rows): 0/0 = NaN, as PyTorch documents.
            hi, lo, d, und = _zero_divisor_total(logits, target, weight, ignore_index,
                                                 label_smoothing)
        elif n_rows == 0:
            hi, lo, d, und = 0.0, 0.0, 0, False
        else:
            hi, lo, d, und = _engine.solve_total(problem)
        arrays = {"hi": np.array(hi), "lo": np.array(lo), "direction": np.array(d, np.int8),
                  "undecided": np.array(und)}
        cache.store(key + "-total", arrays)
        return arrays["hi"], arrays["lo"], arrays["direction"], arrays["undecided"]

    return ReferenceResult("cross_entropy", (), full, lambda fmt: None)


def _zero_divisor_total(logits: Any, target: Any, weight: Any, ignore_index: int,
                        label_smoothing: Any) -> tuple[float, float, int, bool]:
    if np.asarray(logits).size == 0:
        return np.nan, 0.0, 0, False
    total = cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                          label_smoothing=label_smoothing, reduction="sum").hi
    value = np.nan if total == 0 or np.isnan(total) else float(np.copysign(np.inf, total))
    return value, 0.0, 0, False


def cross_entropy_grad(logits: Any, target: Any, *, weight: Any = None, ignore_index: int = -100,
                       label_smoothing: float = 0.0, reduction: str = "mean") -> ReferenceResult:
    """Gradient of ``cross_entropy`` w.r.t. the logits ("none": the gradient of the sum)."""
    problem, divisor, lead, key = _problem("softmax_cross_entropy_grad", logits, target, weight,
                                           ignore_index, label_smoothing, reduction)
    shape = np.asarray(logits).shape
    if reduction == "mean" and divisor == 0:
        nan = np.full(shape, np.nan)
        zeros = np.zeros(shape)
        return ReferenceResult("cross_entropy_grad", shape,
                               lambda: (nan, zeros, zeros.astype(np.int8), zeros.astype(bool)),
                               lambda fmt: None)
    return api._result(problem, shape, (key,))
