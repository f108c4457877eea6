"""Public reference functions: validation, shapes, caching, and lazy results."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from references import _engine, cache, formats
from references.result import ReferenceResult

REFERENCE_VERSION = "1"


def _source_digest() -> str:
    """Digest of this package's source: any change to the engine invalidates cached results."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


CACHE_VERSION = f"{REFERENCE_VERSION}-{_source_digest()}"
_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float32),
                 np.dtype(np.float64))


def _as_logits(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float16, bfloat16, float32 or float64 array; "
                        f"got dtype {arr.dtype}")
    return arr


def _axis(axis: Any, ndim: int, name: str = "axis") -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{name} must be an integer; got {axis!r}")
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimensions")
    return int(axis) % max(ndim, 1)


def _rows(x: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Move the class axis last and flatten the rest: (N, C) float64 (exact) and the lead shape."""
    if x.ndim == 0:  # docs/numerics.md §6 row 12a: a 0-d input is one row of one class
        return x.astype(np.float64).reshape(1, 1), ()
    moved = np.moveaxis(x, axis, -1)
    lead = moved.shape[:-1]
    return moved.astype(np.float64).reshape(int(np.prod(lead)), moved.shape[-1]), lead


def _finite_float(a: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype not in _FLOAT_DTYPES and arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be a real floating-point array; got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
    if not np.all(np.isfinite(arr.astype(np.float64))):
        raise ValueError(f"{name} must be finite (NaN/inf belong in the logits, not in {name})")
    return arr


def _sparse_labels(labels: Any, shape: tuple[int, ...], n_classes: int,
                   ignore_index: int | None = None) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("labels must be integers (class indices)")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"labels must be an integer array of class indices; got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"labels must have shape {shape} (the logits without the class axis); "
                         f"got {arr.shape}")
    lab = arr.astype(np.int64)
    active = lab != ignore_index if ignore_index is not None else np.ones(lab.shape, bool)
    bad = active & ((lab < 0) | (lab >= n_classes))
    if bad.any():
        raise ValueError(f"labels must lie in [0, {n_classes}); got {lab[bad].ravel()[0]}")
    return lab


def _result(problem: _engine.Problem, out_shape: tuple[int, ...], key_parts: tuple[Any, ...]
            ) -> ReferenceResult:
    key = cache.content_key(CACHE_VERSION, problem.op, *key_parts)
    n_rows = int(problem.x.shape[0])

    def full() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        hit = cache.load(key + "-wide")
        if hit is not None:
            arrays = [hit["hi"], hit["lo"], hit["direction"], hit["undecided"]]
            res.add_tier_counts({"cache": n_rows})
        else:
            *arrays, counts = _engine.solve_wide_counted(problem)
            res.add_tier_counts(counts)
            cache.store(key + "-wide", dict(zip(["hi", "lo", "direction", "undecided"], arrays,
                                                strict=True)))
        return tuple(a.reshape(out_shape) for a in arrays)  # type: ignore[return-value]

    def narrow(fmt: formats.Format) -> np.ndarray:
        hit = cache.load(f"{key}-{fmt.name}")
        if hit is not None:
            res.add_tier_counts({"cache": n_rows})
            return hit["value"].reshape(out_shape)
        value, done, counts = _engine.solve_narrow_counted(problem, fmt)
        res.add_tier_counts(counts)
        if not done.all():  # escalate only the rows float64 could not decide
            rows = np.nonzero(~(done.all(axis=-1) if done.ndim == 2 else done))[0]
            hi, _, direction, _, wide_counts = _engine.solve_wide_counted(problem.subset(rows))
            wide_counts.pop("exact", None)  # rows partly exact: counted by the tier that finished
            res.add_tier_counts(wide_counts)
            value[rows] = np.where(done[rows], value[rows],
                                   formats.round_exact(hi, direction, fmt.dtype))
        cache.store(f"{key}-{fmt.name}", {"value": value})
        return value.reshape(out_shape)

    res = ReferenceResult(problem.op, out_shape, full, narrow)
    return res


def _row_op(op: str, x: Any, axis: int, name: str = "x") -> ReferenceResult:
    arr = _as_logits(x, name)
    ax = _axis(axis, arr.ndim)
    x2, lead = _rows(arr, ax)
    problem = _engine.Problem(op, x2)
    if op in _engine.ELEMENTWISE:
        res = _result(problem, lead + x2.shape[-1:], (x2,))
        return _moved(res, ax, arr.ndim) if arr.ndim else _reshaped(res, ())
    return _result(problem, lead, (x2,))


class _View(ReferenceResult):
    """A result whose arrays are a fixed transformation (axis move) of another's."""

    def __init__(self, base: ReferenceResult, transform: Any, shape: tuple[int, ...]):
        def full() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            return tuple(transform(a) for a in (base.hi, base.lo, base.direction,
                                                base.undecided))

        def narrow(fmt: formats.Format) -> np.ndarray:
            return np.array(transform(base.rounded(fmt.dtype)), copy=True, order="C")

        super().__init__(base.op, shape, full, narrow)
        self._base = base

    @property
    def tier_counts(self) -> dict[str, int]:
        return self._base.tier_counts


def _moved(res: ReferenceResult, axis: int, ndim: int) -> ReferenceResult:
    if axis == ndim - 1:
        return res
    shape = list(res.shape)
    shape.insert(axis, shape.pop(-1))
    return _View(res, lambda a: np.array(np.moveaxis(a, -1, axis), order="C"), tuple(shape))


def _reshaped(res: ReferenceResult, shape: tuple[int, ...]) -> ReferenceResult:
    return _View(res, lambda a: a.reshape(shape), shape)


# --------------------------------------------------------------------------- forward

def softmax(x: Any, axis: int = -1) -> ReferenceResult:
    """Exact softmax along ``axis``."""
    return _row_op("softmax", x, axis)


def log_softmax(x: Any, axis: int = -1) -> ReferenceResult:
    """Exact log-softmax along ``axis``."""
    return _row_op("log_softmax", x, axis)


def logsumexp(x: Any, axis: int = -1) -> ReferenceResult:
    """Exact log-sum-exp along ``axis`` (the axis is removed)."""
    return _row_op("logsumexp", x, axis)


def softmax_cross_entropy(logits: Any, labels: Any, axis: int = -1) -> ReferenceResult:
    """Per-row loss -sum_j y_j log_softmax(x)_j for any real dense labels (zero labels add 0)."""
    return _dense_op("softmax_cross_entropy", logits, labels, axis)


def sparse_softmax_cross_entropy(logits: Any, labels: Any) -> ReferenceResult:
    """Per-row loss logsumexp(x) - x_t for integer labels t (class axis last)."""
    return _sparse_op("sparse_softmax_cross_entropy", logits, labels)


def _require_classes(arr: np.ndarray, ax: int) -> None:
    if arr.ndim and arr.shape[ax] == 0:
        raise ValueError("logits must have at least one class for a cross-entropy "
                         "(the class axis has length 0)")


def _dense_op(op: str, logits: Any, labels: Any, axis: int) -> ReferenceResult:
    arr = _as_logits(logits, "logits")
    ax = _axis(axis, arr.ndim)
    _require_classes(arr, ax)
    y = _finite_float(labels, "labels", arr.shape)
    x2, lead = _rows(arr, ax)
    y2, _ = _rows(y.astype(np.float64), ax)
    problem = _engine.Problem(op, x2, y=y2)
    if op in _engine.ELEMENTWISE:
        res = _result(problem, lead + x2.shape[-1:], (x2, y2))
        return _moved(res, ax, arr.ndim) if arr.ndim else _reshaped(res, ())
    return _result(problem, lead, (x2, y2))


def _sparse_op(op: str, logits: Any, labels: Any) -> ReferenceResult:
    arr = _as_logits(logits, "logits")
    if arr.ndim == 0:
        raise ValueError("logits must have a class axis (at least one dimension) for sparse labels")
    _require_classes(arr, arr.ndim - 1)
    lab = _sparse_labels(labels, arr.shape[:-1], arr.shape[-1])
    x2, lead = _rows(arr, arr.ndim - 1)
    problem = _engine.Problem(op, x2, labels=lab.reshape(-1))
    out_shape = arr.shape if op in _engine.ELEMENTWISE else lead
    return _result(problem, out_shape, (x2, lab))


# --------------------------------------------------------------------------- gradients

def softmax_vjp(x: Any, g: Any, axis: int = -1) -> ReferenceResult:
    """Vector-Jacobian product of softmax: (g - <g, p>) * p."""
    return _vjp_op("softmax_vjp", x, g, axis)


def log_softmax_vjp(x: Any, g: Any, axis: int = -1) -> ReferenceResult:
    """Vector-Jacobian product of log_softmax: g - p * sum(g)."""
    return _vjp_op("log_softmax_vjp", x, g, axis)


def logsumexp_grad(x: Any, axis: int = -1, g: Any = None) -> ReferenceResult:
    """Gradient of logsumexp: softmax(x), times the per-row cotangent ``g`` (default ones)."""
    arr = _as_logits(x, "x")
    ax = _axis(axis, arr.ndim)
    x2, lead = _rows(arr, ax)
    g_rows = np.ones(x2.shape[0]) if g is None else _finite_float(g, "g", lead).reshape(-1)
    problem = _engine.Problem("logsumexp_grad", x2, g=g_rows.astype(np.float64))
    res = _result(problem, lead + x2.shape[-1:], (x2, g_rows.astype(np.float64)))
    return _moved(res, ax, arr.ndim) if arr.ndim else _reshaped(res, ())


def _vjp_op(op: str, x: Any, g: Any, axis: int) -> ReferenceResult:
    arr = _as_logits(x, "x")
    ax = _axis(axis, arr.ndim)
    gg = _finite_float(g, "g", arr.shape)
    x2, lead = _rows(arr, ax)
    g2, _ = _rows(gg.astype(np.float64), ax)
    problem = _engine.Problem(op, x2, g=g2)
    res = _result(problem, lead + x2.shape[-1:], (x2, g2))
    return _moved(res, ax, arr.ndim) if arr.ndim else _reshaped(res, ())


def softmax_cross_entropy_grad(logits: Any, labels: Any, axis: int = -1) -> ReferenceResult:
    """Gradient of the dense loss w.r.t. the logits: (sum y) * p - y."""
    return _dense_op("softmax_cross_entropy_grad", logits, labels, axis)


def sparse_softmax_cross_entropy_grad(logits: Any, labels: Any) -> ReferenceResult:
    """Gradient of the sparse loss w.r.t. the logits: p - onehot(t)."""
    return _sparse_op("sparse_softmax_cross_entropy_grad", logits, labels)
