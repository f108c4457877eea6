"""JAX (and Optax): gradients through jax.vjp; `@jit` implementations jit the whole VJP.

`jax_enable_x64` is switched on right after import, before any array exists: without it JAX
silently computes float64 cases in float32 (docs/frameworks.md §5.1). The flag is recorded in
`settings()`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from harness.registry import Implementation
from harness.vocabulary import FRAMEWORKS
from harness.worker import compile_cache
from harness.worker.adapters.base import (
    Adapter,
    NotDifferentiable,
    dtype_name,
    exact_cast,
    option_key,
)
from harness.worker.impls import CompiledFn, mode_of

# XLA:CPU has one thread-count switch: multi-threaded Eigen on or off (frameworks differ here).
_SINGLE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def share_mlir_context() -> bool:
    """Lower every computation of this process in one MLIR context instead of a new one each.

    JAX lowers each new (function, shape, dtype) to StableHLO in a fresh ``ir.Context``, loading
    and registering its dialects every time (``mlir.make_ir_context``). The suites call JAX's
    eager functions on thousands of shapes, each call lowering several small computations, and
    that set-up was most of the JAX worker's time: 120 shapes of an Optax loss and its VJP took
    33.5 s with a context each and 10.6 s with one shared (docs/frameworks.md §5.4). The
    lowered modules are the same (the persistent compilation cache, keyed by the module, hits
    either way) and so are the outputs; a worker answers one request at a time, so the shared
    context is never used from two threads. Returns whether the hook was found."""
    from jax._src.interpreters import mlir

    make = getattr(mlir, "make_ir_context", None)
    if make is None or getattr(make, "shared", False):
        return make is not None
    contexts: list[Any] = []

    def one_context() -> Any:
        if not contexts:
            contexts.append(make())
        return contexts[0]

    one_context.shared = True  # type: ignore[attr-defined]
    one_context.original = make  # type: ignore[attr-defined]
    mlir.make_ir_context = one_context
    return True


class JaxAdapter(Adapter):
    framework = "jax"
    module = "jax"
    install_hint = FRAMEWORKS["jax"].install_hint

    def __init__(self) -> None:
        super().__init__()
        self._x64_error: str | None = None
        self._vjp_cache: dict[tuple[Any, ...], Any] = {}
        self._shared_mlir_context = False

    def _before_import(self) -> None:
        # JAX grabs 75% of GPU memory at start by default; several workers (and PyTorch's)
        # share the GPU, so allocate on demand instead. Memory only, never numerics.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

    def _after_import(self, module: ModuleType) -> None:
        try:
            module.config.update("jax_enable_x64", True)
        except Exception as exc:  # e.g. a JAX where the flag was removed or is locked
            self._x64_error = f"{type(exc).__name__}: {exc}"
        self._shared_mlir_context = share_mlir_context()
        cache = compile_cache.directory("jax")
        if cache is not None:  # compiled code only, keyed by HLO and options (compile_cache)
            module.config.update("jax_compilation_cache_dir", str(cache))
            module.config.update("jax_persistent_cache_min_compile_time_secs", 0)
            module.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

    def _x64(self) -> bool:
        return bool(self.load().config.jax_enable_x64)

    def _gpu_devices(self) -> list[str]:
        jax = self.load()
        try:
            return ["cuda"] if jax.devices("gpu") else []
        except RuntimeError:  # "Unknown backend: 'gpu' requested ..."
            return []

    def _device(self, device: str) -> Any:
        jax = self.load()
        return jax.devices({"cpu": "cpu", "cuda": "gpu"}[device])[0]

    def dtype_supported(self, dtype: str, device: str) -> str | None:
        reason = super().dtype_supported(dtype, device)
        if reason is None and dtype == "float64" and not self._x64():
            return "float64 needs jax_enable_x64, which could not be enabled" + \
                (f": {self._x64_error}" if self._x64_error else "")
        return reason

    def to_framework(self, array: np.ndarray, dtype: str, device: str) -> Any:
        jax = self.load()
        arr = exact_cast(array, dtype)
        if arr.dtype.kind in "iu" and arr.dtype not in (np.int32, np.int64):
            arr = arr.astype(np.int64)
        out = jax.device_put(arr, self._device(device))
        if out.dtype != arr.dtype:  # x64 off: float64/int64 would silently narrow
            raise ValueError(f"JAX turned {arr.dtype} into {out.dtype}: jax_enable_x64 is off")
        return out

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(tensor, copy=True)  # bfloat16 comes back as ml_dtypes.bfloat16

    def dtype_of(self, tensor: Any) -> str:
        return dtype_name(tensor.dtype)

    def device_of(self, tensor: Any) -> str:
        platform = next(iter(tensor.devices())).platform
        return "cpu" if platform == "cpu" else "cuda"

    def synchronize(self, device: str, result: Any = None) -> None:
        """JAX dispatches asynchronously on every device, CPU included: it can only wait for a
        value, so pass the result of the call being timed."""
        if result is not None:
            self.load().block_until_ready(result)

    # -- timing -------------------------------------------------------------------------------

    def timed(self, call: Callable[[], Any], device: str) -> tuple[Callable[[], Any], str]:
        # JAX dispatches asynchronously on every device, the CPU included, and can only wait
        # for a value: block on each call's result, inside the timed loop.
        block = self.load().block_until_ready

        def run() -> Any:
            return block(call())

        return run, "jax.block_until_ready on each call's result"

    def copy_fn(self, device: str, nbytes: int) -> tuple[Callable[[], Any], str]:
        if device != "cuda":
            return super().copy_fn(device, nbytes)
        jax = self.load()  # CUDA path, untested here
        gpu = self._device("cuda")
        src = jax.device_put(np.zeros(nbytes // 4, dtype=np.float32), gpu)
        state = [jax.device_put(np.zeros(nbytes // 4, dtype=np.float32), gpu)]
        # donating the destination lets XLA write the copy into it instead of a new buffer
        copy = jax.jit(lambda dst, s: dst.at[:].set(s), donate_argnums=0)

        def run() -> Any:
            state[0] = copy(state[0], src)
            return state[0].block_until_ready()

        return run, "jax.jit(dst.at[:].set(src), donate_argnums=0) on gpu (float32)"

    def peak_memory(self, target: Callable[[], Any], device: str) -> tuple[int | None, str]:
        if device != "cuda":
            # jax's CPU device has no memory_stats() (it returns None)
            return super().peak_memory(target, device)
        stats_of = self._device("cuda").memory_stats  # CUDA path, untested here
        before = stats_of() or {}
        result = target()
        after = stats_of() or {}
        del result
        if "peak_bytes_in_use" not in after:
            return None, "jax device.memory_stats() has no peak_bytes_in_use on this backend"
        if after["peak_bytes_in_use"] <= before.get("peak_bytes_in_use", 0):
            # the counter cannot be reset: a call below an earlier peak leaves no trace
            return None, ("jax memory_stats()['peak_bytes_in_use'] cannot be reset and this "
                          "call did not exceed an earlier peak")
        return (after["peak_bytes_in_use"] - before.get("bytes_in_use", 0),
                "jax device.memory_stats(): peak_bytes_in_use after the call minus bytes_in_use "
                "before it (counts only a new process-wide peak)")

    def intra_op_threads(self) -> int | None:
        if _SINGLE_THREAD_XLA_FLAGS in os.environ.get("XLA_FLAGS", ""):
            return 1
        try:
            return len(os.sched_getaffinity(0))  # XLA:CPU uses every schedulable core
        except AttributeError:  # not Linux
            return os.cpu_count()

    def _vjp_fn(self, impl: Implementation, inputs: list[Any], options: dict[str, Any],
                cotangent_np: np.ndarray | None) -> Callable[[], Any]:
        jax = self.load()
        x, rest = inputs[0], tuple(inputs[1:])
        fn = impl.fn
        eager = fn.eager if isinstance(fn, CompiledFn) else fn
        # The output's shape and dtype by tracing only, to build the cotangent up front.
        spec = jax.eval_shape(lambda z, r: eager(z, *r, **options), x, rest)
        seed = self._seed(jax, spec, cotangent_np, x)

        if isinstance(fn, CompiledFn) and mode_of(fn) == "jit":
            key = (fn, option_key(options))
            if key not in self._vjp_cache:
                self._vjp_cache[key] = jax.jit(_pullback(jax, eager, options))
            compiled = self._vjp_cache[key]
            return lambda: compiled(x, rest, seed)

        pullback = _pullback(jax, fn, options)
        return lambda: pullback(x, rest, seed)

    def _seed(self, jax: ModuleType, spec: Any, cotangent_np: np.ndarray | None, x: Any) -> Any:
        if not np.issubdtype(np.dtype(spec.dtype), np.inexact) and \
                dtype_name(spec.dtype) != "bfloat16":
            raise NotDifferentiable(f"the output has dtype {spec.dtype}: not differentiable")
        if cotangent_np is None:
            return jax.device_put(np.ones(spec.shape, dtype=spec.dtype), next(iter(x.devices())))
        if tuple(cotangent_np.shape) != tuple(spec.shape):
            raise ValueError(f"cotangent shape {tuple(cotangent_np.shape)} does not match the "
                             f"output shape {tuple(spec.shape)}")
        dtype = dtype_name(spec.dtype)
        return self.to_framework(exact_cast(cotangent_np, dtype, "cotangent"), dtype,
                                 self.device_of(x))

    def set_threads(self, n: int) -> None:
        self._threads_requested = n
        initialised = False
        if "jax" in sys.modules:
            from jax._src import xla_bridge

            initialised = bool(xla_bridge.backends_are_initialized())
        if initialised:
            self._threads_notes = ["XLA:CPU had already started: its thread pool is unchanged "
                                   "(set_threads must come before the first JAX computation)"]
        elif n == 1:
            flags = os.environ.get("XLA_FLAGS", "")
            if _SINGLE_THREAD_XLA_FLAGS not in flags:
                os.environ["XLA_FLAGS"] = f"{flags} {_SINGLE_THREAD_XLA_FLAGS}".strip()
            self._threads_notes = [f"XLA_FLAGS += {_SINGLE_THREAD_XLA_FLAGS}"]
        else:
            self._threads_notes = [
                f"not set: XLA:CPU has no flag for {n} intra-op threads (only single-threaded "
                "Eigen); it uses every schedulable core, so limit the worker's CPU affinity "
                "(taskset) to match other frameworks"]

    def settings(self) -> dict[str, Any]:
        jax = self.load()
        out = super().settings()
        import jaxlib

        out.update({
            "jax_enable_x64": self._x64(),
            "jaxlib_version": jaxlib.__version__,
            "jax_backend": jax.default_backend(),
            "jax_devices": [str(d) for d in jax.devices()],
            "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
            "jax_softmax_custom_jvp": bool(jax.config.jax_softmax_custom_jvp),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
            "jax_compilation_cache_dir": jax.config.jax_compilation_cache_dir,
            "jax_mlir_context": ("one per worker (share_mlir_context)"
                                 if self._shared_mlir_context else "JAX's default"),
        })
        if self._x64_error:
            out["jax_enable_x64_error"] = self._x64_error
        optax = sys.modules.get("optax")
        if optax is not None:
            out["optax_version"] = getattr(optax, "__version__", None)
        return out


def _pullback(jax: ModuleType, fn: Callable[..., Any],
              options: dict[str, Any]) -> Callable[[Any, tuple[Any, ...], Any], Any]:
    """(x, rest, cotangent) -> the VJP of `fn(x, *rest, **options)` with respect to x."""

    def pullback(x: Any, rest: tuple[Any, ...], cotangent: Any) -> Any:
        _, vjp = jax.vjp(lambda z: fn(z, *rest, **options), x)
        return vjp(cotangent)[0]

    return pullback
