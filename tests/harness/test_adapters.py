"""Framework adapters: exact conversion both ways, availability reasons, devices, settings.

torch/TensorFlow/JAX tests carry the `framework` marker and FAIL when the framework is missing;
the availability tests simulate a missing or broken framework and need none installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from harness.errors import ConfigError
from harness.registry import Implementation
from harness.worker.adapters import (
    ADAPTER_FRAMEWORKS,
    Adapter,
    NotDifferentiable,
    base,
    get_adapter,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "tensorflow", "jax")
MODULES = {"numpy": "numpy", "scipy": "scipy", "torch": "torch", "tensorflow": "tensorflow",
           "jax": "jax"}
NP_DTYPES: dict[str, Any] = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
                             "float32": np.float32, "float64": np.float64}
UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def fw_params(frameworks: tuple[str, ...] = ADAPTER_FRAMEWORKS) -> list[Any]:
    return [pytest.param(f, id=f, marks=[pytest.mark.framework] if f in HEAVY else [])
            for f in frameworks]


def special_values(dtype: str) -> np.ndarray:
    """Every awkward value of `dtype`: signed zeros, subnormals, extremes, infinities, NaN."""
    finfo = ml_dtypes.finfo(NP_DTYPES[dtype])
    npdt = NP_DTYPES[dtype]
    width = np.dtype(npdt).itemsize
    bits = np.array([1, 3], dtype=UINT[width]).view(npdt)  # smallest subnormals, from bits
    values = [0.0, -0.0, 1.0, -2.5, float(finfo.tiny), -float(finfo.tiny), float(finfo.max),
              -float(finfo.max), float(finfo.eps), np.inf, -np.inf, np.nan]
    return np.concatenate([np.array(values).astype(npdt), bits, -bits])


def bit_pattern(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(UINT[a.dtype.itemsize])


# -- the adapter registry -------------------------------------------------------------------------

@pytest.mark.parametrize("framework", ADAPTER_FRAMEWORKS)
def test_get_adapter(framework: str) -> None:
    adapter = get_adapter(framework)
    assert isinstance(adapter, Adapter)
    assert adapter.framework == framework
    assert adapter.module == MODULES[framework]


def test_unknown_framework_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no adapter for framework 'mxnet'"):
        get_adapter("mxnet")


def test_adapters_import_no_framework() -> None:
    script = ("import sys, harness.worker.adapters as a\n"
              "[a.get_adapter(f) for f in a.ADAPTER_FRAMEWORKS]\n"
              "print(','.join(m for m in ('torch', 'tensorflow', 'jax', 'scipy') "
              "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


# -- availability, simulated --------------------------------------------------------------------

@pytest.mark.parametrize("framework,hint", [
    ("numpy", "pip install softmax-bench"),
    ("scipy", "pip install 'softmax-bench[scipy]'"),
    ("torch", "pip install 'softmax-bench[torch]'"),
    ("tensorflow", "pip install 'softmax-bench[tensorflow]'"),
    ("jax", "pip install 'softmax-bench[jax]'"),
])
def test_availability_when_not_installed(framework: str, hint: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import x` raise ModuleNotFoundError(name=x), as if absent.
    monkeypatch.setitem(sys.modules, MODULES[framework], None)
    ok, reason = get_adapter(framework).availability()
    assert not ok
    assert reason == f"{MODULES[framework]} not installed: {hint}"


@pytest.mark.parametrize("framework", ADAPTER_FRAMEWORKS)
def test_availability_when_import_breaks(framework: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> ModuleType:
        raise ImportError("libfoo.so.1: cannot open shared object file\nsecond line")

    monkeypatch.setattr(base, "_import", broken)
    ok, reason = get_adapter(framework).availability()
    assert not ok
    assert reason == f"{MODULES[framework]} failed to import: libfoo.so.1: cannot open shared " \
                     "object file"


def test_availability_when_a_dependency_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing_dependency(name: str) -> ModuleType:
        raise ModuleNotFoundError("No module named 'typing_extensions'", name="typing_extensions")

    monkeypatch.setattr(base, "_import", missing_dependency)
    ok, reason = get_adapter("torch").availability()
    assert not ok
    assert reason == "torch failed to import: No module named 'typing_extensions'"


def test_availability_when_import_raises_something_else(monkeypatch: pytest.MonkeyPatch) -> None:
    def crashes(name: str) -> ModuleType:
        raise RuntimeError("CUDA driver version is insufficient")

    monkeypatch.setattr(base, "_import", crashes)
    ok, reason = get_adapter("jax").availability()
    assert not ok
    assert reason == "jax failed to import: RuntimeError: CUDA driver version is insufficient"


@pytest.mark.parametrize("framework", fw_params())
def test_available_here(framework: str, adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters(framework)
    assert adapter.availability() == (True, "")
    assert adapter.version()


# -- exact conversion ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", list(NP_DTYPES))
@pytest.mark.parametrize("framework", fw_params())
def test_round_trip_is_bit_exact(framework: str, dtype: str,
                                 adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters(framework)
    values = special_values(dtype)
    for array in (values, values.reshape(2, -1), values[:1].reshape(())):
        tensor = adapter.to_framework(array, dtype, "cpu")
        assert adapter.dtype_of(tensor) == dtype
        assert adapter.device_of(tensor) == "cpu"
        back = adapter.to_numpy(tensor)
        assert back.dtype == np.dtype(NP_DTYPES[dtype])
        assert back.shape == array.shape
        np.testing.assert_array_equal(bit_pattern(back), bit_pattern(array))


@pytest.mark.parametrize("framework", fw_params())
def test_round_trip_from_float64_exact_values(framework: str,
                                              adapters: Callable[[str], Adapter]) -> None:
    """Case data may arrive as float64 holding values already rounded to the target dtype."""
    adapter = adapters(framework)
    exact = np.array([1.0, -0.0, 2.0**-24, 65504.0, np.inf, np.nan])  # all exact in float16
    back = adapter.to_numpy(adapter.to_framework(exact, "float16", "cpu"))
    assert back.dtype == np.float16
    np.testing.assert_array_equal(back.astype(np.float64), exact)
    assert np.signbit(back[1])


@pytest.mark.parametrize("framework", fw_params())
def test_lossy_conversion_is_refused(framework: str, adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters(framework)
    with pytest.raises(ValueError, match="not exactly representable in bfloat16"):
        adapter.to_framework(np.array([1.0, 0.1]), "bfloat16", "cpu")


@pytest.mark.parametrize("framework", fw_params(("numpy", "torch", "tensorflow", "jax")))
def test_integer_labels_stay_integer(framework: str, adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters(framework)
    labels = np.array([0, 6, 3], dtype=np.int64)
    tensor = adapter.to_framework(labels, "float16", "cpu")  # the case dtype is for floats only
    assert adapter.dtype_of(tensor) == "int64"
    np.testing.assert_array_equal(adapter.to_numpy(tensor), labels)
    # torch's losses refuse int32 class indices, so the torch adapter widens them.
    int32 = adapter.to_framework(labels.astype(np.int32), "float32", "cpu")
    assert adapter.dtype_of(int32) == ("int64" if framework == "torch" else "int32")


# -- devices, dtypes, synchronisation, settings ----------------------------------------------------

@pytest.mark.parametrize("framework", fw_params())
def test_devices_and_dtypes(framework: str, adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters(framework)
    devices = adapter.devices()
    assert devices[0] == "cpu"
    assert set(devices) <= {"cpu", "cuda"}
    for dtype in NP_DTYPES:
        assert adapter.dtype_supported(dtype, "cpu") is None, dtype
    assert "unknown dtype" in (adapter.dtype_supported("float8_e4m3", "cpu") or "")
    if "cuda" not in devices:
        assert adapter.dtype_supported("float32", "cuda") is not None
    adapter.synchronize("cpu")


def test_numpy_is_cpu_only() -> None:
    adapter = get_adapter("numpy")
    assert adapter.devices() == ["cpu"]
    assert adapter.dtype_supported("float32", "cuda") == "numpy runs on the CPU only, not 'cuda'"


@pytest.mark.parametrize("framework", fw_params())
def test_settings_are_json(framework: str, adapters: Callable[[str], Adapter]) -> None:
    settings = adapters(framework).settings()
    json.dumps(settings)
    assert settings["framework"] == framework
    assert isinstance(settings["main_thread_flush_to_zero"], bool)
    assert isinstance(settings["main_thread_denormals_are_zero"], bool)
    expected_keys = {"torch": {"torch_intra_op_threads", "torch_cuda_matmul_allow_tf32"},
                     "tensorflow": {"tf_intra_op_threads", "TF_ENABLE_ONEDNN_OPTS"},
                     "jax": {"jax_enable_x64", "XLA_FLAGS"}}.get(framework, set())
    assert expected_keys <= set(settings)


@pytest.mark.framework
def test_jax_x64_is_on(adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters("jax")
    assert adapter.settings()["jax_enable_x64"] is True
    x = adapter.to_framework(np.array([1.0 + 2.0**-40]), "float64", "cpu")
    assert adapter.to_numpy(x * 1)[0] == 1.0 + 2.0**-40


@pytest.mark.framework
def test_jax_synchronize_waits_for_the_result(adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters("jax")
    x = adapter.to_framework(np.ones((4, 4), np.float32), "float32", "cpu")
    adapter.synchronize("cpu", x @ x)


@pytest.mark.framework
def test_torch_set_threads(adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters("torch")
    torch = adapter.load()
    before = torch.get_num_threads()
    try:
        adapter.set_threads(1)
        settings = adapter.settings()
        assert settings["torch_intra_op_threads"] == 1
        assert settings["threads_requested"] == 1
    finally:
        torch.set_num_threads(before)


THREADS_SCRIPT = """
import json
from harness.worker.adapters import get_adapter
from harness.errors import ConfigError
a = get_adapter({framework!r})
a.set_threads(1)
x = a.to_framework(__import__("numpy").ones(3), "float32", "cpu")
s = a.settings()
late = None
try:
    a.set_threads(2)
except ConfigError as exc:
    late = str(exc)
print(json.dumps({{"settings": s, "late": late, "notes": a.settings().get("threads_notes")}}))
"""


@pytest.mark.framework
@pytest.mark.parametrize("framework", ["tensorflow", "jax"])
def test_set_threads_before_start(framework: str) -> None:
    """TF and XLA fix their thread pools at start: set_threads works only before that."""
    proc = subprocess.run([sys.executable, "-c", THREADS_SCRIPT.format(framework=framework)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    settings = result["settings"]
    if framework == "tensorflow":
        assert settings["tf_intra_op_threads"] == 1
        assert "before the first TensorFlow operation" in result["late"]
    else:
        assert "--xla_cpu_multi_thread_eigen=false" in settings["XLA_FLAGS"]
        assert result["late"] is None
        assert "already started" in result["notes"][0]


# -- forward / backward plumbing ------------------------------------------------------------------

def _impl(framework: str, fn: Callable[..., Any], differentiable: bool = True) -> Implementation:
    return Implementation(name=f"test.{framework}", op="softmax", framework=framework, fn=fn,
                          differentiable=differentiable)


def test_numpy_backward_is_not_differentiable() -> None:
    adapter = get_adapter("numpy")
    impl = _impl("numpy", lambda x: x, differentiable=False)
    x = adapter.to_framework(np.ones(3, np.float32), "float32", "cpu")
    np.testing.assert_array_equal(adapter.to_numpy(adapter.forward(impl, [x], {})), np.ones(3))
    with pytest.raises(NotDifferentiable, match="test.numpy is forward only"):
        adapter.backward(impl, [x], {}, None)


def _scaled(framework: str) -> Callable[..., Any]:
    """x * weight (a class-weight option), written in the framework."""
    return lambda x, weight: x * weight


@pytest.mark.parametrize("framework", fw_params(HEAVY))
def test_backward_uses_the_cotangent_and_converts_options(
        framework: str, adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters(framework)
    impl = _impl(framework, _scaled(framework))
    x = adapter.to_framework(np.array([[1.0, 2.0, 3.0]], np.float32), "float32", "cpu")
    weight = np.array([1.0, 2.0, 4.0], dtype=np.float32)  # numpy in, a tensor for the fn
    out = adapter.to_numpy(adapter.forward(impl, [x], {"weight": weight}))
    np.testing.assert_array_equal(out, [[1.0, 4.0, 12.0]])
    cotangent = np.array([[1.0, -1.0, 0.5]], dtype=np.float32)
    grad = adapter.backward(impl, [x], {"weight": weight}, cotangent)
    np.testing.assert_array_equal(grad, [[1.0, -2.0, 2.0]])
    assert grad.dtype == np.float32
    ones = adapter.backward(impl, [x], {"weight": weight}, None)
    np.testing.assert_array_equal(ones, [[1.0, 2.0, 4.0]])
    with pytest.raises(ValueError, match="cotangent shape"):
        adapter.backward(impl, [x], {"weight": weight}, np.ones((2, 3), np.float32))


@pytest.mark.parametrize("framework", fw_params(HEAVY))
def test_backward_in_bfloat16(framework: str, adapters: Callable[[str], Adapter]) -> None:
    adapter = adapters(framework)
    impl = _impl(framework, lambda x: x * x)
    x = adapter.to_framework(np.array([1.5, -2.0], ml_dtypes.bfloat16), "bfloat16", "cpu")
    grad = adapter.backward(impl, [x], {}, np.array([1.0, 0.5], ml_dtypes.bfloat16))
    assert grad.dtype == np.dtype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(grad.astype(np.float64), [3.0, -2.0])
