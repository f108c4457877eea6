"""A plain NumPy softmax / log-softmax / cross-entropy kernel, as a kernel author would write it.

The "naive_" functions are the bugs the test file catches (see test_numpy_softmax.py).
"""

from __future__ import annotations

import numpy as np


def _shifted(x: np.ndarray) -> np.ndarray:
    """x minus its row maximum; rows with no finite maximum are shifted by 0, so -inf rows
    give NaN (0/0, the reference's answer) and +inf/NaN propagate."""
    with np.errstate(invalid="ignore"):
        m = np.max(x, axis=-1, keepdims=True, initial=-np.inf)
    return x - np.where(np.isfinite(m), m, 0).astype(x.dtype)


def softmax(x: np.ndarray) -> np.ndarray:
    """Stable softmax over the last axis, computed in float32 for the 16-bit dtypes."""
    work = x.astype(np.float32) if x.dtype.itemsize < 4 else x
    with np.errstate(all="ignore"):
        e = np.exp(_shifted(work))
        out = e / np.sum(e, axis=-1, keepdims=True)
    return out.astype(x.dtype)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Stable log-softmax: d - log1p(tail) with d = x - max and tail = the sum of exp(d) off the
    maximum (log(sum) would round 1 + tail to 1 and lose every small tail), in float64."""
    with np.errstate(all="ignore"):
        d = _shifted(x.astype(np.float64))
        at_max = (d == 0).sum(axis=-1, keepdims=True)
        tail = (at_max - 1) + np.sum(np.where(d < 0, np.exp(d), 0.0), axis=-1, keepdims=True)
        out = d - np.where(at_max > 0, np.log1p(tail), np.log(tail + 1))
        out = np.where(np.isnan(d).any(axis=-1, keepdims=True), np.nan, out)  # NaN in, NaN out
    return out.astype(x.dtype)


def sparse_cross_entropy(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row loss -log_softmax(x)[label]."""
    return -np.take_along_axis(log_softmax(x), labels[..., None], axis=-1)[..., 0]


# -- the bugs ---------------------------------------------------------------------------------

def naive_softmax(x: np.ndarray) -> np.ndarray:
    """exp(x) / sum(exp(x)): overflows to inf/inf = NaN for logits near 1000."""
    with np.errstate(all="ignore"):
        e = np.exp(x)
        return e / np.sum(e, axis=-1, keepdims=True)


def naive_log_softmax(x: np.ndarray) -> np.ndarray:
    """log(softmax(x)): loses every tail entry that softmax rounds to 0 or 1."""
    with np.errstate(all="ignore"):
        return np.log(softmax(x))
