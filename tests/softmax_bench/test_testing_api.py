"""softmax_bench.testing's assertions: what a kernel author's test sees, right and wrong."""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest

import harness
import softmax_bench
from harness import scoring
from harness.ops import OPS
from softmax_bench.testing import (
    assert_close_to_exact,
    assert_grad_close_to_exact,
    score,
    to_numpy,
)


def stable_softmax(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def naive_softmax(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        e = np.exp(x)
        return e / e.sum(axis=-1, keepdims=True)


def exact(op: str, x: np.ndarray, dtype: str = "float32", **kw: np.ndarray) -> np.ndarray:
    inputs = {"x": x, **kw}
    return np.asarray(OPS[op].reference("forward", inputs, None, {}).rounded(
        np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)))


X1000 = np.array([[1000.0, 999.0, 998.0], [0.5, -1.0, 2.0]], dtype=np.float32)


def test_the_public_package() -> None:
    assert softmax_bench.Implementation is harness.Implementation
    assert softmax_bench.references.softmax is __import__("references").softmax
    assert softmax_bench.__version__ == harness.__version__
    with pytest.raises(AttributeError):
        _ = softmax_bench.nothing_here


def test_correct_kernel_passes_and_returns_the_harness_fields() -> None:
    result = assert_close_to_exact(stable_softmax(X1000), X1000, op="softmax")
    assert result.passed and result.verdict == "pass"
    assert result.max_ulp is not None and result.max_ulp <= result.limit
    assert result.limit == result.fields["ulp_limit"]


def test_same_verdict_and_limits_as_the_harness_scorer() -> None:
    y = naive_softmax(X1000)
    ref = OPS["softmax"].reference("forward", {"x": X1000}, None, {})
    fields = scoring.score_outcome(op="softmax", pass_="forward", dtype="float32", actual=y,
                                   reference=ref, inputs={"x": X1000}, case_status="scored",
                                   family="")
    result = score(y, X1000, "softmax")
    assert result.verdict == fields["verdict"] == "nan_where_finite"
    assert dict(result.fields) == fields


def test_naive_softmax_near_1000_fails_with_the_exact_value() -> None:
    with pytest.raises(AssertionError) as info:
        assert_close_to_exact(naive_softmax(X1000), X1000, op="softmax")
    text = str(info.value)
    assert "nan_where_finite" in text
    assert "worst element: output[0, 0]" in text
    assert "1000.0" in text  # the input row
    assert "0.6652409557748219" in text  # the exact value, exp(0)/(1+e^-1+e^-2)
    assert "correctly rounded (float32)" in text and "0.66524094" in text
    assert re.search(r"got:\s+nan", text)
    assert "rebuild it: np.frombuffer(bytes.fromhex(" in text


def test_hex_dump_rebuilds_the_row() -> None:
    with pytest.raises(AssertionError) as info:
        assert_close_to_exact(naive_softmax(X1000), X1000)
    expr = re.search(r"rebuild it: (.*)", str(info.value)).group(1)
    row = eval(expr, {"np": np})
    np.testing.assert_array_equal(row, X1000[0])


def test_relative_error_2_pow_minus_20_fails_by_default_and_passes_with_max_ulp_20() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 16)).astype(np.float32)
    off = (exact("softmax", x).astype(np.float64) * (1 + 2.0**-20)).astype(np.float32)
    with pytest.raises(AssertionError, match="inaccurate"):
        assert_close_to_exact(off, x, op="softmax")
    result = assert_close_to_exact(off, x, op="softmax", max_ulp=20)
    assert result.limit == 20 and 4 <= result.max_ulp <= 20
    with pytest.raises(AssertionError, match=r"max_ulp 2\b"):
        assert_close_to_exact(off, x, op="softmax", max_ulp=2)


def test_log_softmax_that_drops_the_tail_fails() -> None:
    x = np.array([0.0, -20.0], dtype=np.float32)
    with pytest.raises(AssertionError) as info:
        assert_close_to_exact(np.array([0.0, -20.0], dtype=np.float32), x, op="log_softmax")
    text = str(info.value)
    assert "inaccurate" in text and "-2.061153620314381e-09" in text
    assert_close_to_exact(exact("log_softmax", x), x, op="log_softmax")


def test_sparse_cross_entropy_with_labels() -> None:
    x = np.array([[1000.0, 999.0, 998.0], [0.0, 0.0, 30.0]], dtype=np.float32)
    labels = np.array([2, 0])
    good = exact("sparse_softmax_cross_entropy", x, targets=labels)
    assert_close_to_exact(good, x, op="sparse_softmax_cross_entropy", labels=labels)
    with pytest.raises(AssertionError) as info:
        assert_close_to_exact(good[::-1].copy(), x, op="sparse_softmax_cross_entropy",
                              labels=labels)
    assert "label: " in str(info.value)
    with pytest.raises(TypeError, match="needs labels"):
        assert_close_to_exact(good, x, op="sparse_softmax_cross_entropy")


def test_dense_cross_entropy_and_torch_cross_entropy_options() -> None:
    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float64)
    p = np.array([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]])
    assert_close_to_exact(exact("softmax_cross_entropy", x, "float64", labels=p), x,
                          op="softmax_cross_entropy", labels=p)
    t = np.array([2, 0])
    ref = OPS["cross_entropy"].reference("forward", {"x": x, "targets": t}, None,
                                         {"label_smoothing": 0.1, "reduction": "sum"})
    value = np.asarray(ref.rounded(np.dtype(np.float64)))
    assert_close_to_exact(value, x, op="cross_entropy", labels=t, label_smoothing=0.1,
                          reduction="sum")
    with pytest.raises(AssertionError):
        assert_close_to_exact(value * (1 + 1e-9), x, op="cross_entropy", labels=t,
                              label_smoothing=0.1, reduction="sum")


@pytest.mark.framework
def test_torch_tensors_including_bfloat16() -> None:
    import torch

    x = torch.tensor([[1000.0, 999.0, 998.0], [1.0, 2.0, 3.0]], dtype=torch.bfloat16)
    assert_close_to_exact(torch.softmax(x.float(), -1).to(torch.bfloat16), x, op="softmax")
    with pytest.raises(AssertionError, match=r"softmax forward \(bfloat16\): nan_where_finite"):
        assert_close_to_exact(torch.exp(x) / torch.exp(x).sum(-1, keepdim=True), x)
    x32 = torch.randn(3, 7, dtype=torch.float32, requires_grad=True)
    assert_close_to_exact(torch.log_softmax(x32, 1), x32, op="log_softmax")
    bf = to_numpy(x)
    assert bf.dtype == np.dtype(ml_dtypes.bfloat16) and float(bf[0, 0]) == 1000.0


@pytest.mark.framework
def test_jax_and_tensorflow_tensors() -> None:
    import jax
    import jax.numpy as jnp
    import tensorflow as tf

    xj = jnp.asarray(X1000)
    assert_close_to_exact(jax.nn.softmax(xj, axis=-1), xj, op="softmax", max_ulp=4)
    xb = jnp.asarray(X1000, dtype=jnp.bfloat16)
    assert to_numpy(xb).dtype == np.dtype(ml_dtypes.bfloat16)
    xt = tf.constant(X1000)
    assert_close_to_exact(tf.nn.softmax(xt), xt, op="softmax", max_ulp=4)


def test_axis_other_than_last() -> None:
    x = np.ascontiguousarray(X1000.T)  # classes on axis 0
    y = stable_softmax(X1000).T
    assert_close_to_exact(y, x, op="softmax", axis=0)
    assert_close_to_exact(exact("logsumexp", X1000), x, op="logsumexp", axis=0)


def test_wrong_shape_and_bad_input() -> None:
    with pytest.raises(AssertionError, match="wrong_shape"):
        assert_close_to_exact(stable_softmax(X1000)[:, :2], X1000)
    with pytest.raises(TypeError, match="dtype int64"):
        assert_close_to_exact(np.zeros(3), np.arange(3))
    with pytest.raises(ValueError, match="unknown op"):
        assert_close_to_exact(np.zeros(3), np.zeros(3, np.float32), op="sofmax")


@pytest.mark.framework
def test_gradients() -> None:
    import torch

    x = torch.tensor([[1000.0, 999.0, 0.0], [1.0, 2.0, 3.0]], requires_grad=True)
    g = torch.tensor([[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]])
    (grad,) = torch.autograd.grad(torch.softmax(x, -1), x, g)
    assert_grad_close_to_exact(grad, x, op="softmax", cotangent=g)
    with pytest.raises(AssertionError, match="backward"):
        assert_grad_close_to_exact(grad * 1.001, x, op="softmax", cotangent=g)
    labels = torch.tensor([0, 2])
    loss = torch.nn.functional.cross_entropy(x, labels, reduction="none")
    (gce,) = torch.autograd.grad(loss.sum(), x)
    assert_grad_close_to_exact(gce, x, op="sparse_softmax_cross_entropy", labels=labels)
    with pytest.raises(TypeError, match="needs cotangent"):
        assert_grad_close_to_exact(grad, x, op="softmax")
