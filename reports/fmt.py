"""How numbers read in the report: short, fixed rules, the same on every page."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["bytes_", "is_missing", "number", "percent", "seconds", "ulp"]


def is_missing(value: Any) -> bool:
    """None, pandas' NA or a NaN."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pd.NA (whose comparison is NA, truthy-checked)
    except (TypeError, ValueError):
        return True


def number(value: Any, digits: int = 3) -> str:
    """``digits`` significant digits; "–" when missing."""
    if is_missing(value):
        return "–"
    v = float(value)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}g}"


def ulp(value: Any) -> str:
    """An error in ulps: 0.5, 3.2, 1.4e+07."""
    return number(value, 2 if not is_missing(value) and float(value) >= 100 else 3)


def percent(value: Any, digits: int = 0) -> str:
    if is_missing(value):
        return "–"
    return f"{100 * float(value):.{digits}f}%"


def seconds(value: Any) -> str:
    """A duration with a unit that keeps three significant digits: 812 ns, 12.3 µs, 1.05 s."""
    if is_missing(value):
        return "–"
    v = float(value)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v / 1e-9:.3g} ns"


def bytes_(value: Any) -> str:
    if is_missing(value):
        return "–"
    v = float(value)
    for unit, scale in (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.0f} B"
