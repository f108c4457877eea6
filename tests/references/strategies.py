"""Shared hypothesis strategies: dtypes, shapes and logits of controlled magnitude."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = (np.float16, ml_dtypes.bfloat16, np.float32, np.float64)


@st.composite
def logits(draw: st.DrawFn, max_rows: int = 3, max_classes: int = 12,
           scale: float = 30.0) -> np.ndarray:
    """(N, C) logits in one of the four dtypes, finite, rounded once to the dtype."""
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(1, max_rows))
    c = draw(st.integers(1, max_classes))
    values = draw(hnp.arrays(np.float64, (n, c),
                             elements=st.floats(-scale, scale, allow_nan=False, width=64)))
    return values.astype(dtype)
