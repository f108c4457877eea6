"""The special-value table (references.special_values), checked row by row."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import references
from references.special_values import TABLE, SpecialRow

DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32,
          "float64": np.float64}


def _call(row: SpecialRow) -> references.ReferenceResult:
    dtype = DTYPES[row.extra.get("dtype", "float64")]
    x = np.array([row.x], dtype=dtype).reshape(1, len(row.x))
    fn = getattr(references, row.op)
    if row.op.startswith("sparse"):
        return fn(x, np.array([row.extra["labels"]]))
    if "labels" in row.extra:
        return fn(x, np.array([row.extra["labels"]], dtype=np.float64))
    if "g" in row.extra:
        return fn(x, np.array([row.extra["g"]], dtype=np.float64))
    return fn(x)


@pytest.mark.parametrize("row", TABLE, ids=[f"{r.op}[{r.id}: {r.situation}]" for r in TABLE])
def test_reference_follows_the_table(row: SpecialRow) -> None:
    if row.expected == "ValueError":
        with pytest.raises(ValueError):
            _ = _call(row).hi
        return
    result = _call(row)
    dtype = DTYPES[row.extra.get("dtype", "float64")]
    got = np.asarray(result.rounded(dtype), dtype=np.float64).ravel()
    expected = np.asarray(row.expected, dtype=dtype).astype(np.float64).ravel()
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), f"{row.op}{row.x}: got {got}, expected {expected} ({row.status})"
    # exact specials carry no rounding direction (a finite value beyond a narrow format's
    # range keeps its float64 direction)
    special = ~np.isfinite(result.hi.ravel())
    assert (result.direction.ravel()[special] == 0).all()


def test_every_convention_row_names_what_else_is_accepted() -> None:
    for row in TABLE:
        assert row.status in ("math", "convention")
        if row.status == "convention" and row.id not in ("pos_inf",):
            assert row.alternatives, f"{row.id}/{row.op}: a convention must list alternatives"
