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

    ``tier_counts``: rows decided by each tier of the engine in what this result computed so
    far (``special``, ``exact``, ``float64``, ``binary128``, ``arb``, ``mpmath``, ``undecided``;
    ``cache``: rows read from the cache); empty until something is computed.

    A result made by :meth:`materialised` (e.g. by ``references.pool``) holds its arrays
    already: using it (``hi``, ``rounded``, ``references.metrics.ulp_error``) is plain numpy,
    never touches mpmath's or Arb's global precision, and is safe from several threads.
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
        self._tier_counts: dict[str, int] = {}

    @classmethod
    def materialised(cls, op: str, hi: np.ndarray, lo: np.ndarray, direction: np.ndarray,
                     undecided: np.ndarray, tier_counts: dict[str, int] | None = None
                     ) -> ReferenceResult:
        """A result whose arrays are given (all of the same shape); nothing left to compute."""
        arrays = (np.asarray(hi, dtype=np.float64), np.asarray(lo, dtype=np.float64),
                  np.asarray(direction, dtype=np.int8), np.asarray(undecided, dtype=bool))
        shape = arrays[0].shape
        if any(a.shape != shape for a in arrays):
            raise ValueError("hi, lo, direction and undecided must have the same shape; got "
                             f"{[a.shape for a in arrays]}")
        for a in arrays:
            a.setflags(write=False)

        def full() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            return arrays

        res = cls(op, shape, full, lambda fmt: None)
        res._full = arrays
        res._tier_counts = dict(tier_counts or {})
        return res

    @property
    def tier_counts(self) -> dict[str, int]:
        """Rows decided by each tier so far (a copy)."""
        return dict(self._tier_counts)

    def add_tier_counts(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            if n:
                self._tier_counts[name] = self._tier_counts.get(name, 0) + int(n)

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
