"""The framework adapter: everything between numpy case data and a framework's own tensors.

A worker process runs one framework on one device through one `Adapter`. The adapter imports its
framework lazily (never at module import), converts the exact numpy inputs into framework tensors
on the device, calls an implementation, synchronises, differentiates through the framework's own
autodiff for the backward pass, and brings results back to numpy, bit for bit. Conversion and
the copy back happen outside any timed region: the runner times `forward` (or `backward`) and
`synchronize` only.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import sys
import time
import tracemalloc
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.registry import Implementation
from harness.vocabulary import DTYPE_NAMES, DTYPES

NUMPY_DTYPES = DTYPES


class NotDifferentiable(HarnessError):
    """The implementation has no backward pass (no autodiff, or its output is cut off from x)."""


def _import(module: str) -> ModuleType:
    """Import seam: tests replace it to simulate a broken install."""
    return importlib.import_module(module)


def dtype_name(dtype: Any) -> str:
    """The harness name ("float32", "bfloat16", "int64", ...) of a numpy-compatible dtype."""
    return str(np.dtype(dtype))


def exact_cast(array: np.ndarray, dtype: str, what: str = "input") -> np.ndarray:
    """`array` as a C-contiguous array of `dtype`, refusing any conversion that changes a value.

    Integer arrays (class-index targets) keep their integer type. Case data is already rounded to
    the target dtype, so a lossy conversion means a harness bug, never something to paper over.
    """
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        return _contiguous(array)
    if dtype not in NUMPY_DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_NAMES)}")
    target = NUMPY_DTYPES[dtype]
    if array.dtype == target:
        return _contiguous(array)
    converted = array.astype(target)
    back = converted.astype(np.float64)
    original = array.astype(np.float64)
    same = (back == original) | (np.isnan(back) & np.isnan(original))
    # -0.0 == 0.0, so compare signs as well: a sign flip of zero is a change of value.
    same &= np.signbit(back) == np.signbit(original)
    if not bool(np.all(same)):
        bad = int(np.argmin(same.reshape(-1)))
        raise ValueError(f"{what} is not exactly representable in {dtype}: element {bad} is "
                         f"{original.reshape(-1)[bad]!r}; round case data to {dtype} first")
    return _contiguous(converted)


def _contiguous(array: np.ndarray) -> np.ndarray:
    # np.ascontiguousarray would turn a 0-d array into a 1-d one.
    return array if array.flags.c_contiguous else array.copy(order="C")


def denormal_state() -> dict[str, bool]:
    """Flush-to-zero / denormals-are-zero of this thread's FPU, probed with numpy scalars.

    A framework (or a library it loads) that sets FTZ/DAZ on the main thread changes what numpy
    and the reference computation see in the same process; worker threads may differ.
    """
    with np.errstate(all="ignore"):
        tiny = np.float32(np.finfo(np.float32).tiny)
        ftz = bool(tiny * np.float32(0.5) == 0)
        # Made from bits, not arithmetic, so FTZ cannot flush it; DAZ reads it as zero, and
        # scaling it by 2**40 would otherwise give the normal number 2**-99.
        subnormal = np.array([2**10], dtype=np.uint32).view(np.float32)[0]
        daz = bool(subnormal * np.float32(2.0**40) == 0)
    return {"main_thread_flush_to_zero": ftz, "main_thread_denormals_are_zero": daz}


def option_key(options: dict[str, Any]) -> tuple[Any, ...]:
    """A hashable key for option values (arrays by content), for caching compiled callables."""
    items: list[Any] = []
    for name in sorted(options):
        value = options[name]
        if isinstance(value, np.ndarray):
            value = ("ndarray", value.dtype.str, value.shape, value.tobytes())
        items.append((name, value if _hashable(value) else ("id", id(value))))
    return tuple(items)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


class Adapter(ABC):
    """One framework, seen through the operations a worker needs.

    Subclasses set `framework` (harness name), `module` (import name) and `install_hint` (the
    pip command that installs it), and implement the abstract methods. `devices()` lists "cpu"
    plus whatever `_gpu_devices()` discovers: the CUDA seam, left for the GPU work.
    """

    framework: str
    module: str
    install_hint: str

    def __init__(self) -> None:
        self._module: ModuleType | None = None
        self._threads_requested: int | None = None
        self._threads_notes: list[str] = []

    # -- availability --------------------------------------------------------------------------

    def availability(self) -> tuple[bool, str]:
        """(True, "") when the framework imports, else (False, the reason with what to do)."""
        try:
            self.load()
        except ImportError as exc:
            return False, self._import_reason(exc)
        except Exception as exc:  # a broken install can raise anything at import
            return False, f"{self.module} failed to import: {type(exc).__name__}: " \
                          f"{_first_line(exc)}"
        return True, ""

    def _import_reason(self, exc: ImportError) -> str:
        missing = getattr(exc, "name", None)
        if isinstance(exc, ModuleNotFoundError) and missing is not None and (
                missing == self.module or self.module.startswith(missing + ".")):
            return f"{self.module} not installed: {self.install_hint}"
        return f"{self.module} failed to import: {_first_line(exc)}"

    def load(self) -> ModuleType:
        """Import (once) and configure the framework; raises ImportError when it is missing."""
        if self._module is None:
            self._before_import()
            module = _import(self.module)
            self._after_import(module)
            self._module = module
        return self._module

    def _before_import(self) -> None:
        """Environment that must be set before the first import (threads, backends)."""
        return None

    def _after_import(self, module: ModuleType) -> None:
        """Configuration right after import (e.g. JAX x64)."""
        return None

    def version(self) -> str | None:
        try:
            return str(self.load().__version__)
        except Exception:
            return None

    # -- devices and dtypes --------------------------------------------------------------------

    def devices(self) -> list[str]:
        """"cpu" plus the GPUs this framework sees (see `_gpu_devices`)."""
        return ["cpu", *self._gpu_devices()]

    def _gpu_devices(self) -> list[str]:
        """GPU device names ("cuda") this framework can use; none by default.

        This is the seam for the CUDA work: subclasses report what they discover, and
        `to_framework`/`synchronize` already accept "cuda" where the framework has it.
        """
        return []

    def dtype_supported(self, dtype: str, device: str) -> str | None:
        """None when this framework can hold and compute `dtype` on `device`, else why not.

        Per-implementation limits are in `Implementation.dtypes`; this is the framework's own.
        """
        if dtype not in NUMPY_DTYPES:
            return f"unknown dtype {dtype!r}"
        if device not in self.devices():
            return f"device {device!r} not available to {self.framework} " \
                   f"(have: {', '.join(self.devices())})"
        return None

    # -- conversion ----------------------------------------------------------------------------

    @abstractmethod
    def to_framework(self, array: np.ndarray, dtype: str, device: str) -> Any:
        """`array` as a framework tensor of `dtype` on `device`, every value unchanged.

        Floating arrays (logits, dense labels, cotangents) become `dtype`; integer arrays (class
        indices) become the integer type the framework's losses want.
        """

    @abstractmethod
    def to_numpy(self, tensor: Any) -> np.ndarray:
        """A host numpy copy with the tensor's own dtype (bfloat16 as ml_dtypes.bfloat16)."""

    def convert_options(self, options: dict[str, Any], like: Any) -> dict[str, Any]:
        """Option values that are numpy arrays (e.g. class weights) become tensors like `like`."""
        if not any(isinstance(v, np.ndarray) for v in options.values()):
            return dict(options)
        dtype = self.dtype_of(like)
        device = self.device_of(like)
        return {k: self.to_framework(exact_cast(v, dtype, k), dtype, device)
                if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
                for k, v in options.items()}

    @abstractmethod
    def dtype_of(self, tensor: Any) -> str:
        """The harness dtype name of a framework tensor."""

    @abstractmethod
    def device_of(self, tensor: Any) -> str:
        """"cpu" or "cuda" for a framework tensor."""

    # -- running -------------------------------------------------------------------------------

    @abstractmethod
    def synchronize(self, device: str, result: Any = None) -> None:
        """Wait until all work queued on `device` (and, where the framework needs the value to
        wait on, as JAX does, the computation of `result`) has finished."""

    def forward_fn(self, impl: Implementation, inputs: list[Any],
                   options: dict[str, Any]) -> Callable[[], Any]:
        """A no-argument callable running the forward pass on prepared tensors: what a timer
        calls (then `synchronize`). Option arrays are converted here, outside the timed call."""
        fn = impl.fn
        args = list(inputs)
        kwargs = self.convert_options(options, inputs[0])
        return lambda: fn(*args, **kwargs)

    def forward(self, impl: Implementation, inputs: list[Any], options: dict[str, Any]) -> Any:
        """`impl.fn(*inputs, **options)`: the framework's own output tensor (not synchronised)."""
        return self.forward_fn(impl, inputs, options)()

    def backward_fn(self, impl: Implementation, inputs: list[Any], options: dict[str, Any],
                    cotangent_np: np.ndarray | None) -> Callable[[], Any]:
        """A no-argument callable returning the VJP with respect to `inputs[0]` as a framework
        tensor: what a timer calls for the backward pass (forward plus autodiff, as in training).

        `cotangent_np` None means ones of the output's shape. Raises NotDifferentiable (with the
        reason) for an implementation without a backward pass. The first call may convert the
        cotangent (it needs the output's dtype): treat it as the warm-up.
        """
        if not impl.differentiable:
            raise NotDifferentiable(f"{impl.name} is forward only: it has no backward pass "
                                    f"through {self.framework}'s autodiff")
        return self._vjp_fn(impl, list(inputs), self.convert_options(options, inputs[0]),
                            cotangent_np)

    def backward(self, impl: Implementation, inputs: list[Any], options: dict[str, Any],
                 cotangent_np: np.ndarray | None) -> np.ndarray:
        """The VJP of the output with respect to the logits `inputs[0]`, as numpy."""
        return self.to_numpy(self.backward_fn(impl, inputs, options, cotangent_np)())

    def _vjp_fn(self, impl: Implementation, inputs: list[Any], options: dict[str, Any],
                cotangent_np: np.ndarray | None) -> Callable[[], Any]:
        raise NotDifferentiable(f"{impl.name}: {self.framework} has no autodiff")

    def _cotangent_like(self, cotangent_np: np.ndarray, output: Any) -> Any:
        if tuple(cotangent_np.shape) != tuple(output.shape):
            raise ValueError(f"cotangent shape {tuple(cotangent_np.shape)} does not match the "
                             f"output shape {tuple(output.shape)}")
        dtype = self.dtype_of(output)
        return self.to_framework(exact_cast(cotangent_np, dtype, "cotangent"), dtype,
                                 self.device_of(output))

    # -- timing (harness.worker.timing) ------------------------------------------------------

    def timing_clock(self, device: str) -> tuple[Callable[[], float], str]:
        """The clock pytest-benchmark reads before and after each round of calls, and its name.

        ``time.perf_counter`` here. A framework that queues work on a device overrides this with
        a synchronising clock (sync, then read the host clock), so that a round ends when the
        device work of its calls has finished, with one sync per round rather than per call.
        """
        return time.perf_counter, "perf_counter"

    def timed(self, call: Callable[[], Any], device: str) -> tuple[Callable[[], Any], str]:
        """``call`` plus whatever makes its work finished when it returns (the result is
        returned), and a description of what was added ("" for nothing).

        The default synchronises on the result after every call (``synchronize``), which is
        right for every framework; adapters whose ``timing_clock`` already synchronises, or
        whose calls are synchronous, override it to add nothing.
        """

        def run() -> Any:
            result = call()
            self.synchronize(device, result)
            return result

        return run, f"{self.framework} synchronize() on each call's result"

    def copy_fn(self, device: str, nbytes: int) -> tuple[Callable[[], Any], str]:
        """A no-argument callable copying a buffer of ``nbytes`` into a preallocated one on
        ``device`` (it moves 2 * nbytes: read + write), and what it is, for the copy roofline.

        On the CPU every framework works in the same host memory, and only numpy offers a copy
        into an existing buffer (torch's ``copy_`` is a vectorised loop at about half of
        memcpy's speed; TensorFlow and JAX allocate a fresh output, so their copies mostly
        measure page faults): the roofline is ``numpy.copyto``, measured in this worker.
        """
        if device != "cpu":
            raise NotImplementedError(f"{self.framework}: no copy roofline on {device!r}")
        src = np.ones(nbytes // 4, dtype=np.float32)
        dst = np.zeros_like(src)
        return (lambda: np.copyto(dst, src)), "numpy.copyto(dst, src) into a preallocated " \
                                                "float32 buffer (host memory)"

    def peak_memory(self, target: Callable[[], Any], device: str) -> tuple[int | None, str]:
        """Peak bytes one call of ``target`` needs above what was in use before it, and how
        that was measured (or, with None, why it could not be).

        CPU default: the process's resident high-water mark (``rss_peak``), which sees every
        allocator. Device counters belong to the framework adapters.
        """
        if device == "cpu":
            return rss_peak(target)
        return None, f"no peak-memory counter for {self.framework} on {device}"

    def intra_op_threads(self) -> int | None:
        """The intra-op threads this framework computes with in this process (None: unknown)."""
        return self._threads_requested

    # -- settings ------------------------------------------------------------------------------

    @abstractmethod
    def set_threads(self, n: int) -> None:
        """Use `n` intra-op threads. Call before the first computation: several frameworks fix
        their thread pools when they start. What could not be set is noted in `settings()`."""

    def settings(self) -> dict[str, Any]:
        """Numerics-relevant settings of this framework in this process, for run.json."""
        out: dict[str, Any] = {"framework": self.framework, "version": self.version()}
        out["threads_requested"] = self._threads_requested
        if self._threads_notes:
            out["threads_notes"] = list(self._threads_notes)
        out.update(denormal_state())
        out["numpy_cpu_dispatch"] = _numpy_simd()
        return out


def synced_clock(sync: Callable[[], Any]) -> Callable[[], float]:
    """A clock that waits for ``sync()`` (the device's queued work) before reading
    ``time.perf_counter``: timing then covers the work, not only its launch."""
    perf_counter = time.perf_counter

    def clock() -> float:
        sync()
        return perf_counter()

    return clock


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _numpy_simd() -> list[str]:
    """NumPy's SIMD targets in use: its float32 exp/log kernels differ per target."""
    try:
        umath = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:  # pragma: no cover - numpy layout changed
        return []
    features = getattr(umath, "__cpu_features__", {})
    dispatch = getattr(umath, "__cpu_dispatch__", [])
    baseline = getattr(umath, "__cpu_baseline__", [])
    return list(baseline) + [d for d in dispatch if features.get(d)]


# -- peak memory on the CPU --------------------------------------------------------------------

RSS_METHOD = ("rss_hwm: peak resident set size of the worker during one call (VmHWM, reset by "
              "writing 5 to /proc/self/clear_refs) minus the resident size just before it, after "
              "gc.collect() and malloc_trim(0); sees every allocator, at page granularity; memory "
              "an allocator already held is not counted, so it is a lower bound")
TRACEMALLOC_METHOD = ("tracemalloc: peak of traced allocations during one call minus those "
                      "before it; numpy registers its array buffers with tracemalloc, so this is "
                      "exact for numpy/scipy arrays (Python objects included)")


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _malloc_trim() -> None:
    """Return glibc's free heap memory to the system, so that reuse does not hide a peak."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        pass


def rss_peak(target: Callable[[], Any]) -> tuple[int | None, str]:
    """Peak resident bytes of one ``target()`` call above the resident size before it (Linux).

    Returns (None, reason) where the kernel's high-water mark cannot be reset.
    """
    if not sys.platform.startswith("linux"):
        return None, f"rss_hwm needs Linux's /proc/self/clear_refs; not on {sys.platform}"
    gc.collect()
    _malloc_trim()
    before = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    except OSError as exc:
        return None, f"rss_hwm: cannot reset the peak RSS ({exc.strerror or exc})"
    result = target()
    peak = _status_kib("VmHWM")
    del result
    if before is None or peak is None:
        return None, "rss_hwm: /proc/self/status has no VmRSS/VmHWM"
    return max(0, peak - before) * 1024, RSS_METHOD


def tracemalloc_peak(target: Callable[[], Any]) -> tuple[int | None, str]:
    """Peak traced bytes of one ``target()`` call above those traced before it."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = target()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(0, peak - before), TRACEMALLOC_METHOD
