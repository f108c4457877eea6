"""ONNX Runtime as a framework plugin: its adapter and its implementations.

Registered only through the entry point ``softmax_bench.adapters`` (``onnxruntime =
"softmax_bench.contrib.onnxruntime_adapter:OnnxRuntimeAdapter"`` in pyproject.toml), exactly as a
third-party package would add a framework; nothing in ``harness`` names it. Install with
``pip install 'softmax-bench[onnxruntime]'`` (onnxruntime, and onnx to build the models).

Each implementation is one ONNX operator in a one-node model run by an ``InferenceSession`` on
the CPU execution provider: ``Softmax`` and ``LogSoftmax`` (opset 13, ``axis=-1``) and
``SoftmaxCrossEntropyLoss`` (``reduction="none"``: the per-row loss with integer labels). Sessions
are built on first use per (operator, dtype) and cached, so timing measures ``session.run``.
ONNX Runtime's CPU provider has no bfloat16 kernels for these operators, and inference sessions
have no autodiff: the implementations take float16, float32 and float64, forward only.

Importing this module imports neither onnxruntime nor onnx (the parent process lists
implementations without them).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from harness.registry import Implementation
from harness.worker.adapters.base import Adapter, dtype_name, exact_cast

FRAMEWORK = "onnxruntime"
DTYPES = ("float16", "float32", "float64")
OPSET = 13
_ONNX_TYPES = {"float16": 10, "float32": 1, "float64": 11}  # onnx.TensorProto data types
_INT64 = 7

_threads: int | None = None  # intra-op threads of new sessions (OnnxRuntimeAdapter.set_threads)
_sessions: dict[tuple[str, str], Any] = {}


def _session(operator: str, dtype: str) -> Any:
    """The cached InferenceSession of a one-node model: ``operator`` on inputs of ``dtype``."""
    key = (operator, dtype)
    if key not in _sessions:
        import onnxruntime as ort
        from onnx import helper

        elem = _ONNX_TYPES[dtype]
        inputs = [helper.make_tensor_value_info("x", elem, None)]
        if operator == "SoftmaxCrossEntropyLoss":
            inputs.append(helper.make_tensor_value_info("labels", _INT64, None))
            node = helper.make_node(operator, ["x", "labels"], ["y"], reduction="none")
        else:
            node = helper.make_node(operator, ["x"], ["y"], axis=-1)
        graph = helper.make_graph([node], operator, inputs,
                                  [helper.make_tensor_value_info("y", elem, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="softmax-bench")
        model.ir_version = 8  # read by every onnxruntime >= 1.14
        options = ort.SessionOptions()
        options.log_severity_level = 4  # errors are raised; keep them off stderr
        if _threads:
            options.intra_op_num_threads = _threads
        _sessions[key] = ort.InferenceSession(model.SerializeToString(), options,
                                              providers=["CPUExecutionProvider"])
    return _sessions[key]


def _runner(operator: str) -> Callable[..., np.ndarray]:
    def run(x: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        session = _session(operator, dtype_name(x.dtype))
        feeds = {"x": x} if labels is None else {"x": x, "labels": labels}
        out: np.ndarray = session.run(None, feeds)[0]
        return out

    run.__name__ = run.__qualname__ = f"onnxruntime_{operator}"
    return run


def implementations() -> list[Implementation]:
    common: dict[str, Any] = dict(framework=FRAMEWORK, dtypes=DTYPES, devices=("cpu",),
                                  differentiable=False)
    return [
        Implementation("onnxruntime.Softmax", "softmax", fn=_runner("Softmax"),
                       description="ONNX Softmax (opset 13, axis=-1), CPU execution provider",
                       **common),
        Implementation("onnxruntime.LogSoftmax", "log_softmax", fn=_runner("LogSoftmax"),
                       description="ONNX LogSoftmax (opset 13, axis=-1), CPU execution provider",
                       **common),
        Implementation("onnxruntime.SoftmaxCrossEntropyLoss", "sparse_softmax_cross_entropy",
                       fn=_runner("SoftmaxCrossEntropyLoss"),
                       description="ONNX SoftmaxCrossEntropyLoss (opset 13, reduction='none'), "
                                   "CPU execution provider", **common),
    ]


class OnnxRuntimeAdapter(Adapter):
    """Host numpy arrays in, numpy arrays out: session.run is synchronous and on the CPU."""

    framework = FRAMEWORK
    module = "onnxruntime"
    distributions = ("onnxruntime", "onnxruntime-gpu")
    install_hint = "pip install 'softmax-bench[onnxruntime]'"

    def _after_import(self, module: ModuleType) -> None:
        import onnx  # noqa: F401  (building the models needs it: unavailable without)

    def _import_reason(self, exc: ImportError) -> str:
        if isinstance(exc, ModuleNotFoundError) and exc.name in ("onnxruntime", "onnx"):
            return f"{exc.name} not installed: {self.install_hint}"
        return super()._import_reason(exc)

    def dtype_supported(self, dtype: str, device: str) -> str | None:
        if device != "cpu":
            return f"onnxruntime runs here on the CPU execution provider only, not {device!r}"
        if dtype not in DTYPES:
            return f"onnxruntime's CPU execution provider has no {dtype} kernels for these ops"
        return super().dtype_supported(dtype, device)

    def to_framework(self, array: np.ndarray, dtype: str, device: str) -> np.ndarray:
        if device != "cpu":
            raise ValueError(f"onnxruntime has no device {device!r} here")
        return exact_cast(array, dtype).copy()

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(tensor, copy=True)

    def dtype_of(self, tensor: Any) -> str:
        return dtype_name(np.asarray(tensor).dtype)

    def device_of(self, tensor: Any) -> str:
        return "cpu"

    def synchronize(self, device: str, result: Any = None) -> None:
        """session.run returns when the computation is done."""

    def timed(self, call: Callable[[], Any], device: str) -> tuple[Callable[[], Any], str]:
        return call, ""  # synchronous

    def set_threads(self, n: int) -> None:
        global _threads
        self._threads_requested = _threads = n
        self._threads_notes = ["SessionOptions.intra_op_num_threads of every session"]

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        try:
            ort = self.load()
            import onnx

            out["providers"] = ["CPUExecutionProvider"]
            out["available_providers"] = list(ort.get_available_providers())
            out["onnx_version"] = onnx.__version__
            out["opset"] = OPSET
        except Exception as exc:  # settings never break a run
            out["error"] = f"{type(exc).__name__}: {exc}"
        return out
