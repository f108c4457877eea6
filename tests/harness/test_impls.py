"""Built-in implementations: listing imports no framework; every one runs and is roughly right.

Each built-in runs forward (and backward where differentiable) through its adapter on a small
input and is compared with a float64 NumPy computation at a loose tolerance (exact scoring is
the reference's job). torch/TensorFlow/JAX tests carry the `framework` marker: they FAIL when the
framework is missing (CI installs them all); the numpy-only tox env deselects them with
`-m "not framework and not benchmark_reference"`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from harness.registry import Implementation, builtin_implementations
from harness.vocabulary import FRAMEWORK_NAMES as FRAMEWORKS
from harness.vocabulary import FRAMEWORKS as KNOWN
from harness.worker.adapters import Adapter, NotDifferentiable
from harness.worker.impls import CompiledFn, mode_of

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "tensorflow", "jax")
NP_DTYPES: dict[str, Any] = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
                             "float32": np.float32, "float64": np.float64}
C = 7  # classes

# Output dtypes that are not the input dtype, by design of the API (see the impl modules).
KERAS_PREFIX = "keras.losses."
WIDENING_TORCH = ("torch.nn.functional.softmax(dtype=float32)",
                  "torch.nn.functional.log_softmax(dtype=float32)")


def all_builtins() -> list[Implementation]:
    return [impl for fw in FRAMEWORKS for impl in builtin_implementations(fw)]


def impl_params(select: Callable[[Implementation], bool] = lambda i: True) -> list[Any]:
    params = []
    for impl in all_builtins():
        if select(impl):
            marks = [pytest.mark.framework] if impl.framework in HEAVY else []
            params.append(pytest.param(impl, id=impl.name, marks=marks))
    return params


def expected_output_dtype(impl: Implementation, dtype: str) -> str:
    if impl.name.startswith(KERAS_PREFIX):
        return "float32"  # Keras losses compute in keras.backend.floatx()
    if impl.name.split("@")[0] in WIDENING_TORCH:
        return "float32"
    if impl.name == "scipy.special.logsumexp" and dtype == "bfloat16":
        return "float64"  # SciPy does not see ml_dtypes.bfloat16 as floating
    return dtype


# -- listing ------------------------------------------------------------------------------------

LISTING_SCRIPT = """
import importlib, sys
module = importlib.import_module({module!r})
impls = module.implementations()
assert impls, "no implementations"
import harness.worker.adapters
harness.worker.adapters.get_adapter({framework!r})  # constructing an adapter imports nothing either
heavy = sorted(m for m in ("torch", "tensorflow", "jax", "jaxlib", "keras", "optax", "scipy")
               if m in sys.modules)
print(",".join(heavy))
"""


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_listing_imports_no_framework(framework: str) -> None:
    script = LISTING_SCRIPT.format(module=KNOWN[framework].builtins, framework=framework)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"listing {framework} imported {proc.stdout.strip()}"


def test_names_unique_and_valid() -> None:
    impls = all_builtins()
    names = [i.name for i in impls]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
    for impl in impls:
        impl.validate()
        assert impl.description
        assert impl.dtypes, impl.name


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_framework_and_modes(framework: str) -> None:
    impls = builtin_implementations(framework)
    assert {i.framework for i in impls} == {framework}
    modes = {"numpy": set(), "scipy": set(), "torch": {"compile"},
             "tensorflow": {"function", "xla"}, "jax": {"jit"}}[framework]
    eager = [i for i in impls if "@" not in i.name]
    names = {i.name for i in impls}
    for impl in eager:
        assert {f"{impl.name}@{m}" for m in modes} <= names, impl.name
    for impl in impls:
        mode = impl.name.partition("@")[2] or "eager"
        assert mode_of(impl.fn) == mode, impl.name
        if isinstance(impl.fn, CompiledFn):
            assert not impl.fn.built, f"{impl.name} compiled at listing time"
    assert all(not i.differentiable for i in impls) == (framework in ("numpy", "scipy"))


@pytest.mark.parametrize("framework", [
    "numpy", *(pytest.param(f, marks=pytest.mark.framework) for f in HEAVY)])
def test_composed_and_fused_cross_entropy(framework: str) -> None:
    """Every framework has a composed softmax-log-pick path beside its fused losses (JAX's
    fused ones are Optax's, listed only when optax is installed: hence the marker)."""
    ops = [i.op for i in builtin_implementations(framework) if "@" not in i.name]
    composed = [i.name for i in builtin_implementations(framework) if "composed" in i.name]
    assert ops.count("sparse_softmax_cross_entropy") >= 2
    assert ops.count("softmax_cross_entropy") >= 2
    assert composed, f"{framework} has no composed softmax-log-pick path"


# -- running ------------------------------------------------------------------------------------

def case_inputs(op: str, dtype: str, shape: tuple[int, ...] = (3, C), seed: int = 0
                ) -> dict[str, np.ndarray]:
    """Logits, dense labels and targets rounded to `dtype` (targets int64)."""
    rng = np.random.default_rng(seed)
    npdt = NP_DTYPES[dtype]
    x = (2 * rng.standard_normal(shape)).astype(npdt)
    y = rng.random(shape)
    y = (y / y.sum(-1, keepdims=True)).astype(npdt)
    targets = rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int64)
    return {"x": x, "labels": y, "targets": targets}


def op_args(op: str, data: dict[str, np.ndarray]) -> list[np.ndarray]:
    if op in ("softmax", "log_softmax", "logsumexp"):
        return [data["x"]]
    if op == "softmax_cross_entropy":
        return [data["x"], data["labels"]]
    return [data["x"], data["targets"]]


def _softmax64(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return np.asarray(e / e.sum(-1, keepdims=True))


def _lse64(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return np.asarray((m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0])


def _ce_q(x: np.ndarray, t: np.ndarray, options: dict[str, Any]) -> tuple[np.ndarray, float]:
    """PyTorch's cross_entropy as -sum(q * log_softmax): q per row, and the divisor."""
    n_cls = x.shape[-1]
    w = np.asarray(options.get("weight", np.ones(n_cls)), dtype=np.float64)
    eps = float(options.get("label_smoothing", 0.0))
    active = t != options.get("ignore_index", -100)
    onehot = np.eye(n_cls)[np.where(active, t, 0)]
    q = ((1 - eps) * onehot * w + eps / n_cls * w) * active[..., None]
    reduction = options.get("reduction", "mean")
    divisor = float(np.sum(w[t[active]])) if reduction == "mean" else 1.0
    return q / divisor, divisor


def expected_forward(op: str, args: list[np.ndarray], options: dict[str, Any]) -> np.ndarray:
    x = args[0].astype(np.float64)
    if op == "softmax":
        return _softmax64(x)
    if op == "log_softmax":
        return x - _lse64(x)[..., None]
    if op == "logsumexp":
        return _lse64(x)
    if op == "softmax_cross_entropy":
        return np.asarray(np.sum(args[1].astype(np.float64) * (_lse64(x)[..., None] - x), -1))
    if op == "sparse_softmax_cross_entropy":
        picked = np.take_along_axis(x, args[1][..., None], axis=-1)[..., 0]
        return np.asarray(_lse64(x) - picked)
    q, _ = _ce_q(x, args[1], options)
    loss = -np.sum(q * (x - _lse64(x)[..., None]), -1)
    return loss if options.get("reduction", "mean") == "none" else np.asarray(loss.sum())


def expected_backward(op: str, args: list[np.ndarray], options: dict[str, Any],
                      g: np.ndarray | None) -> np.ndarray:
    x = args[0].astype(np.float64)
    p = _softmax64(x)
    if op == "softmax":
        assert g is not None
        g64 = g.astype(np.float64)
        return np.asarray(p * (g64 - np.sum(g64 * p, -1, keepdims=True)))
    if op == "log_softmax":
        assert g is not None
        g64 = g.astype(np.float64)
        return np.asarray(g64 - p * np.sum(g64, -1, keepdims=True))
    if op == "logsumexp":
        return p
    if op == "softmax_cross_entropy":
        y = args[1].astype(np.float64)
        return np.asarray(y.sum(-1, keepdims=True) * p - y)
    if op == "sparse_softmax_cross_entropy":
        return np.asarray(p - np.eye(x.shape[-1])[args[1]])
    q, _ = _ce_q(x, args[1], options)
    return np.asarray(q.sum(-1, keepdims=True) * p - q)


def tolerance(*dtypes: str) -> float:
    eps = max(float(ml_dtypes.finfo(NP_DTYPES[d]).eps) for d in dtypes)
    return 32 * eps


def assert_close(actual: np.ndarray, expected: np.ndarray, tol: float, what: str) -> None:
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=tol, atol=tol,
                               err_msg=what)


def dtype_for(impl: Implementation) -> str:
    return "float32" if "float32" in impl.dtypes else impl.dtypes[0]


CE_OPTION_CASES: list[dict[str, Any]] = [
    {"reduction": "none"},
    {"reduction": "mean", "weight": np.array([1, 2, 0.5, 1, 1, 3, 0.25], dtype=np.float32),
     "ignore_index": 4, "label_smoothing": 0.125},
    {"reduction": "sum", "label_smoothing": 0.25},
]


def option_cases(impl: Implementation) -> list[dict[str, Any]]:
    if impl.op != "cross_entropy":
        return [{}]
    # Each option set is another Inductor graph: compiled, run only the one that uses them all.
    return CE_OPTION_CASES[1:2] if impl.name.endswith("@compile") else CE_OPTION_CASES


@pytest.mark.parametrize("impl", impl_params())
def test_forward_and_backward(impl: Implementation, adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters(impl.framework)
    dtype = dtype_for(impl)
    data = case_inputs(impl.op, dtype)
    data["targets"][1] = 4  # ignored by the weighted option case
    args = op_args(impl.op, data)
    inputs = [adapter.to_framework(a, dtype, "cpu") for a in args]
    out_dtype = expected_output_dtype(impl, dtype)
    tol = tolerance(dtype, out_dtype)
    for options in option_cases(impl):
        what = f"{impl.name} {options}"
        out = adapter.to_numpy(adapter.forward(impl, inputs, options))
        assert str(out.dtype) == out_dtype, what
        assert_close(out, expected_forward(impl.op, args, options), tol, what)
        if not impl.differentiable:
            with pytest.raises(NotDifferentiable, match="forward only"):
                adapter.backward(impl, inputs, options, None)
            continue
        cotangent = None
        if impl.op in ("softmax", "log_softmax"):  # seeded random cotangent, like the suites
            rng = np.random.default_rng(1)
            cotangent = rng.standard_normal(out.shape).astype(NP_DTYPES[dtype])
        grad = adapter.backward(impl, inputs, options, cotangent)
        assert grad.shape == args[0].shape, what
        assert str(grad.dtype) == dtype, what
        assert_close(grad, expected_backward(impl.op, args, options, cotangent), tol,
                     f"backward {what}")


def _not_torch_compile(impl: Implementation) -> bool:
    # Every new dtype is another Inductor compile (seconds each); float32 is covered above.
    return not impl.name.endswith("@compile")


@pytest.mark.parametrize("impl", impl_params(_not_torch_compile))
def test_forward_every_declared_dtype(impl: Implementation,
                                      adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters(impl.framework)
    for dtype in [d for d in impl.dtypes if d != dtype_for(impl)]:  # that one ran above
        data = case_inputs(impl.op, dtype, seed=2)
        args = op_args(impl.op, data)
        options = {"reduction": "none"} if impl.op == "cross_entropy" else {}
        inputs = [adapter.to_framework(a, dtype, "cpu") for a in args]
        out = adapter.to_numpy(adapter.forward(impl, inputs, options))
        out_dtype = expected_output_dtype(impl, dtype)
        assert str(out.dtype) == out_dtype, f"{impl.name} {dtype}"
        assert_close(out, expected_forward(impl.op, args, options),
                     tolerance(dtype, out_dtype), f"{impl.name} {dtype}")


@pytest.mark.parametrize("impl", impl_params(
    lambda i: "@" not in i.name and i.op != "cross_entropy"))
def test_class_axis_is_last_for_rank_3(impl: Implementation,
                                       adapters: Callable[[str], Adapter]) -> None:
    """(2, 3, C) logits: every op reduces the last axis (torch losses move it to dim 1).

    Compiled variants wrap the same eager function, so its axis handling is theirs too."""
    adapter = adapters(impl.framework)
    dtype = dtype_for(impl)
    args = op_args(impl.op, case_inputs(impl.op, dtype, shape=(2, 3, C), seed=3))
    inputs = [adapter.to_framework(a, dtype, "cpu") for a in args]
    out = adapter.to_numpy(adapter.forward(impl, inputs, {}))
    assert_close(out, expected_forward(impl.op, args, {}),
                 tolerance(dtype, expected_output_dtype(impl, dtype)), impl.name)
