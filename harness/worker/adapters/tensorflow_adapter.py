"""TensorFlow (and Keras 3 on its TensorFlow backend): gradients through tf.GradientTape.

For `@function` and `@xla` implementations the tape runs *inside* a `tf.function` (with
`jit_compile=True` for `@xla`), so the backward pass is compiled the same way as the forward
(docs/frameworks.md §4.5).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.registry import Implementation
from harness.vocabulary import FRAMEWORKS
from harness.worker import compile_cache
from harness.worker.adapters.base import (
    Adapter,
    NotDifferentiable,
    exact_cast,
    synced_clock,
)
from harness.worker.impls import CompiledFn, mode_of

_TF_DEVICES = {"cpu": "/CPU:0", "cuda": "/GPU:0"}


class TensorflowAdapter(Adapter):
    framework = "tensorflow"
    module = "tensorflow"
    install_hint = FRAMEWORKS["tensorflow"].install_hint

    def __init__(self) -> None:
        super().__init__()
        self._vjp_cache: dict[CompiledFn, Any] = {}

    def _before_import(self) -> None:
        # Keras 3 picks its backend once, at import, from KERAS_BACKEND; the keras.* built-ins
        # of this worker are the TensorFlow-backend ones.
        if "keras" not in sys.modules:
            os.environ["KERAS_BACKEND"] = "tensorflow"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # logging only, not numerics
        # XLA's persistent cache: compiled @xla code only, keyed by graph and options
        os.environ["TF_XLA_FLAGS"] = compile_cache.tensorflow_flags(
            os.environ.get("TF_XLA_FLAGS", ""))

    def _gpu_devices(self) -> list[str]:
        tf = self.load()
        return ["cuda"] if tf.config.list_physical_devices("GPU") else []

    def to_framework(self, array: np.ndarray, dtype: str, device: str) -> Any:
        tf = self.load()
        arr = exact_cast(array, dtype)
        if arr.dtype.kind in "iu" and arr.dtype not in (np.int32, np.int64):
            arr = arr.astype(np.int64)  # TF's sparse losses take int32 or int64 labels
        with tf.device(_TF_DEVICES[device]):
            # tf.constant lives on the host; identity places a copy on the device.
            return tf.identity(tf.constant(arr))

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(tensor.numpy(), copy=True)  # bfloat16 comes back as ml_dtypes.bfloat16

    def dtype_of(self, tensor: Any) -> str:
        return str(tensor.dtype.name)

    def device_of(self, tensor: Any) -> str:
        return "cuda" if ":GPU:" in tensor.device.upper() else "cpu"

    def synchronize(self, device: str, result: Any = None) -> None:
        # Eager CPU ops are synchronous; GPU kernels run on a stream.
        if device == "cuda":
            self.load().test.experimental.sync_devices()

    # -- timing -------------------------------------------------------------------------------

    def timing_clock(self, device: str) -> tuple[Callable[[], float], str]:
        # tf.test.experimental.sync_devices() waits for every queued op on every device (TF >=
        # 2.13). CPU eager execution is synchronous by default, but TF can run ops
        # asynchronously (tf.config.experimental.set_synchronous_execution(False)), so the
        # clock syncs on every device: about 30 us on the project's CPU, once per round.
        return (synced_clock(self.load().test.experimental.sync_devices),
                "perf_counter after tf.test.experimental.sync_devices()")

    def timed(self, call: Callable[[], Any], device: str) -> tuple[Callable[[], Any], str]:
        # sync_devices raises inside a tf.function; it runs in the clock, after the call returns
        return call, ""

    def copy_fn(self, device: str, nbytes: int) -> tuple[Callable[[], Any], str]:
        if device != "cuda":
            return super().copy_fn(device, nbytes)
        tf = self.load()  # CUDA path, untested here
        with tf.device(_TF_DEVICES["cuda"]):
            src = tf.random.normal((nbytes // 4,), dtype=tf.float32)

        def copy() -> Any:
            with tf.device(_TF_DEVICES["cuda"]):
                # identity may alias its input; DeepCopy always writes a new buffer (on the GPU
                # from TF's BFC pool, so no page faults are timed)
                return tf.raw_ops.DeepCopy(x=src)

        return copy, "tf.raw_ops.DeepCopy on GPU:0 (float32)"

    def peak_memory(self, target: Callable[[], Any], device: str) -> tuple[int | None, str]:
        if device != "cuda":
            # get_memory_info raises "Allocator stats not available for device 'CPU:0'"
            return super().peak_memory(target, device)
        tf = self.load()  # CUDA path, untested here
        name = "GPU:0"
        tf.test.experimental.sync_devices()
        tf.config.experimental.reset_memory_stats(name)
        before = tf.config.experimental.get_memory_info(name)["current"]
        result = target()
        tf.test.experimental.sync_devices()
        peak = tf.config.experimental.get_memory_info(name)["peak"]
        del result
        return max(0, peak - before), ("tf.config.experimental.get_memory_info('GPU:0')['peak'] "
                                       "after reset_memory_stats, minus 'current' before the call")

    def intra_op_threads(self) -> int | None:
        n = int(self.load().config.threading.get_intra_op_parallelism_threads())
        return n if n > 0 else _schedulable_cpus()  # 0: TensorFlow picks one per core

    def forward_fn(self, impl: Implementation, inputs: list[Any],
                   options: dict[str, Any]) -> Callable[[], Any]:
        tf = self.load()
        call = super().forward_fn(impl, inputs, options)
        where = inputs[0].device

        def run() -> Any:
            with tf.device(where):
                return call()

        return run

    def _vjp_fn(self, impl: Implementation, inputs: list[Any], options: dict[str, Any],
                cotangent_np: np.ndarray | None) -> Callable[[], Any]:
        tf = self.load()
        x, rest = inputs[0], tuple(inputs[1:])
        where = x.device
        if isinstance(impl.fn, CompiledFn) and mode_of(impl.fn) in ("function", "xla"):
            body = self._compiled_vjp(impl.fn)
        else:
            body = _tape_vjp(tf, impl.fn)
        seed: list[Any] = []

        def vjp() -> Any:
            with tf.device(where):
                if cotangent_np is not None and not seed:
                    # The cotangent takes the output's dtype: learn it from one eager forward.
                    seed.append(self._cotangent_like(cotangent_np, impl.fn(x, *rest, **options)))
                gx = body(x, rest, seed[0] if seed else None, **options)
            if gx is None:
                raise NotDifferentiable(f"{impl.name}: no gradient flows from the output to "
                                        "the logits")
            return gx

        return vjp

    def _compiled_vjp(self, fn: CompiledFn) -> Any:
        if fn not in self._vjp_cache:
            tf = self.load()
            self._vjp_cache[fn] = tf.function(_tape_vjp(tf, fn.eager),
                                              jit_compile=fn.mode == "xla")
        return self._vjp_cache[fn]

    def set_threads(self, n: int) -> None:
        tf = self.load()
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
        except RuntimeError as exc:
            raise ConfigError(f"TensorFlow threads: {exc} Call set_threads before the first "
                              "TensorFlow operation in the worker.") from exc
        self._threads_requested = n
        self._threads_notes = [
            f"tf.config.threading.set_intra_op_parallelism_threads({n}); XLA:CPU (@xla) runs on "
            "the same intra-op pool; inter-op pool left at its default"]

    def settings(self) -> dict[str, Any]:
        tf = self.load()
        out = super().settings()
        out.update({
            "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "tf_tensor_float_32_execution": bool(
                tf.config.experimental.tensor_float_32_execution_enabled()),
            "tf_op_determinism": _op_determinism(),
            "tf_is_cuda_build": bool(tf.sysconfig.get_build_info().get("is_cuda_build")),
            "TF_XLA_FLAGS": os.environ.get("TF_XLA_FLAGS", ""),
            # oneDNN custom ops are on by default on x86 Linux and change float results slightly.
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS",
                                                    "unset (TensorFlow default: on for x86)"),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
            "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "unset"),
        })
        keras = sys.modules.get("keras")
        if keras is not None:
            out["keras_version"] = getattr(keras, "__version__", None)
            out["keras_backend"] = keras.backend.backend()
            out["keras_floatx"] = keras.backend.floatx()
        return out


def _tape_vjp(tf: ModuleType, fn: Callable[..., Any]) -> Callable[..., Any]:
    """x, rest, cotangent (None: ones) -> d(fn(x, *rest))/dx contracted with the cotangent."""

    def vjp(x: Any, rest: tuple[Any, ...], cotangent: Any, **options: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(x, *rest, **options)
        seed = tf.ones_like(out) if cotangent is None else cotangent
        return tape.gradient(out, x, output_gradients=seed)

    return vjp


def _schedulable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _op_determinism() -> bool | None:
    try:
        from tensorflow.python.framework import config as tf_config
    except ImportError:  # pragma: no cover - private module moved
        return None
    return bool(tf_config.is_op_determinism_enabled())
