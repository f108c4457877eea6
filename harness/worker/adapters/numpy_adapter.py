"""NumPy and SciPy: host arrays, no device, no autodiff (forward only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from harness.vocabulary import FRAMEWORKS
from harness.worker.adapters.base import (
    Adapter,
    dtype_name,
    exact_cast,
    tracemalloc_peak,
)


class NumpyAdapter(Adapter):
    """Serves both "numpy" (the project's own baselines) and "scipy" (scipy.special)."""

    def __init__(self, framework: str = "numpy") -> None:
        super().__init__()
        if framework not in ("numpy", "scipy"):
            raise ValueError(f"NumpyAdapter serves numpy and scipy, not {framework!r}")
        self.framework = framework
        self.module = framework
        self.install_hint = FRAMEWORKS[framework].install_hint

    def dtype_supported(self, dtype: str, device: str) -> str | None:
        if device != "cpu":
            return f"{self.framework} runs on the CPU only, not {device!r}"
        return super().dtype_supported(dtype, device)

    def to_framework(self, array: np.ndarray, dtype: str, device: str) -> np.ndarray:
        if device != "cpu":
            raise ValueError(f"{self.framework} has no device {device!r}")
        # A private copy: an implementation may not write into the case data.
        return exact_cast(array, dtype).copy()

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(tensor, copy=True)

    def dtype_of(self, tensor: Any) -> str:
        return dtype_name(np.asarray(tensor).dtype)

    def device_of(self, tensor: Any) -> str:
        return "cpu"

    def synchronize(self, device: str, result: Any = None) -> None:
        """NumPy computes synchronously."""

    def timed(self, call: Callable[[], Any], device: str) -> tuple[Callable[[], Any], str]:
        return call, ""  # numpy computes synchronously

    def peak_memory(self, target: Callable[[], Any], device: str) -> tuple[int | None, str]:
        # numpy reports its array buffers to tracemalloc: exact, unlike the RSS method.
        return tracemalloc_peak(target)

    def intra_op_threads(self) -> int | None:
        return 1  # the ufuncs and reductions the numpy/scipy implementations use

    def set_threads(self, n: int) -> None:
        self._threads_requested = n
        self._threads_notes = ["numpy/scipy ufuncs and reductions used here are single-threaded; "
                               "nothing to set"]

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        import ml_dtypes

        out["numpy_version"] = np.__version__
        out["ml_dtypes_version"] = ml_dtypes.__version__
        return out


class ScipyAdapter(NumpyAdapter):
    """scipy.special's implementations: NumPy arrays, served by the NumPy adapter."""

    def __init__(self) -> None:
        super().__init__("scipy")
