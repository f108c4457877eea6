"""The result type every reference function returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from references import formats


class ReferenceResult:
    """Exact values of one reference computation, delivered as precisely as they are asked for.

    ``hi`` is the exact value rounded to nearest float64; ``lo`` the rounded remainder, so that
    ``|hi + lo - exact| <= 2**-100 * |exact|`` wherever the exact value is a normal float64;
    ``direction`` is sign(exact - hi) as int8 (0 where the value is exactly ``hi``);
    ``undecided`` marks elements whose rounding could not be certified within the precision cap
    (none in practice; they carry the best estimate).

    ``rounded(dtype)`` for float32 and narrower formats may be served by the float64 fast tier
    without computing ``hi``/``lo`` at all (lazy evaluation).
    """

    def __init__(self, op: str, shape: tuple[int, ...],
                 full: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                 narrow: Callable[[Any], np.ndarray | None]):
        self.op = op
        self.shape = shape
        self._full_fn = full
        self._narrow_fn = narrow
        self._full: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._rounded: dict[str, np.ndarray] = {}

    def _get_full(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self._full is None:
            self._full = self._full_fn()
        return self._full

    @property
    def hi(self) -> np.ndarray:
        return self._get_full()[0]

    @property
    def lo(self) -> np.ndarray:
        return self._get_full()[1]

    @property
    def direction(self) -> np.ndarray:
        return self._get_full()[2]

    @property
    def undecided(self) -> np.ndarray:
        return self._get_full()[3]

    def rounded(self, dtype: Any) -> np.ndarray:
        """The exact value correctly rounded (nearest, ties to even) to ``dtype``."""
        fmt = formats.format_of(dtype)
        if fmt.name not in self._rounded:
            if fmt.name == "float64":
                value = self.hi.copy()
            elif self._full is not None:
                value = formats.round_exact(self.hi, self.direction, fmt.dtype)
            else:
                narrow = self._narrow_fn(fmt)
                value = (narrow if narrow is not None
                         else formats.round_exact(self.hi, self.direction, fmt.dtype))
            value.setflags(write=False)
            self._rounded[fmt.name] = value
        return self._rounded[fmt.name]

    def __repr__(self) -> str:
        return f"ReferenceResult(op={self.op!r}, shape={self.shape})"
