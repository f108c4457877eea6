"""The per-dtype constants of docs/cases.md §0, exact rounding into a dtype, case ids and seeds."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from harness.vocabulary import DTYPES
from references.formats import round_exact

UNREPRESENTABLE = "unrepresentable in dtype"

NEG_INF, NAN, INF = -math.inf, math.nan, math.inf


@dataclass(frozen=True)
class Thresholds:
    """The per-dtype thresholds of docs/cases.md §0."""

    name: str
    p: int
    max: float
    min_normal: float
    min_sub: float

    @property
    def l_max(self) -> float:
        return math.log(self.max)

    @property
    def l_sub(self) -> float:
        return math.log(self.min_sub)

    @property
    def ln_min_normal(self) -> float:
        return math.log(self.min_normal)

    @property
    def zero_cut(self) -> float:
        return math.log(self.min_sub / 2)

    @property
    def g_1(self) -> float:
        return self.p * math.log(2)

    @property
    def g_vjp(self) -> float:
        return (self.p + 1) * math.log(2)


def as_dtype(dtype: Any) -> np.dtype[Any]:
    """A dtype from its name ("bfloat16", ...) or any numpy dtype-like."""
    return DTYPES[dtype] if isinstance(dtype, str) and dtype in DTYPES else np.dtype(dtype)


def thresholds(dtype: Any) -> Thresholds:
    """The docs/cases.md §0 constants of a dtype."""
    dt = as_dtype(dtype)
    fi = ml_dtypes.finfo(dt)
    return Thresholds(
        dt.name, int(fi.nmant) + 1, float(fi.max), float(fi.smallest_normal),
        float(fi.smallest_subnormal),
    )


class Unrepresentable(ValueError):
    """A finite parameter overflows the dtype: the (case, dtype) is unsupported."""


def _round(values: Any, dtype: Any) -> tuple[np.ndarray, bool]:
    """float64 values rounded once to nearest-even into ``dtype``; True if a finite overflowed."""
    v = np.asarray(values, dtype=np.float64)
    out = round_exact(v, np.zeros(v.shape, dtype=np.int8), as_dtype(dtype))
    overflowed = bool(np.any(np.isinf(out.astype(np.float64)) & np.isfinite(v)))
    return out, overflowed


def round_to(values: Any, dtype: Any) -> np.ndarray:
    """Round float64 values once, to nearest-even, into ``dtype`` (Unrepresentable on overflow)."""
    out, overflowed = _round(values, dtype)
    if overflowed:
        raise Unrepresentable(f"value overflows {as_dtype(dtype).name}")
    return out


def next_toward(value: float, dtype: Any, direction: int) -> float:
    """The neighbour of the dtype value nearest to ``value``, one ulp up or down."""
    dt = as_dtype(dtype)
    v = round_to([value], dt)
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dt.itemsize]
    bits = int(v.view(uint)[0])
    step = direction if float(v[0].astype(np.float64)) >= 0 else -direction
    return float(np.array([bits + step], dtype=uint).view(dt)[0].astype(np.float64))


def case_rng(case_id: str, salt: str = "") -> np.random.Generator:
    """The generator of a case: seeded from SHA-256 of its id (never Python's ``hash``)."""
    digest = hashlib.sha256((case_id + salt).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def case_id(family: str, params: Mapping[str, Any]) -> str:
    """``family[key=value,...]``."""

    def show(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, (list, tuple)):
            return ",".join(show(x) for x in v)
        return str(v)

    return f"{family}[{','.join(f'{k}={show(v)}' for k, v in params.items())}]"


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _dirichlet(rng: np.random.Generator, n: int) -> list[float]:
    return rng.dirichlet(np.ones(n)).tolist() if n else []
