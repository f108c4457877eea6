"""Planted-bug implementations for the worst-case search's tests (tests/harness/test_search.py,
benchmarks/test_search.py; installed as a ``softmax_bench.plugins`` entry point by the
``install_plugins`` fixture).

Each ``planted.*`` implementation is exact (float64 inside, one rounding into the input dtype)
on every input but those with one feature of the search space, where it goes wrong; the
``planted.exact_*`` ones are the same code with no defect. ``TRIGGERS`` says, per
implementation, whether an input fires its defect, so the tests can check that no row of the
``quick`` and ``full`` suites does (those suites cannot see the bug) and that the search's
finding does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from harness import Implementation

F32 = ("float32",)
Array = np.ndarray


# -- the exact ones: float64 inside, one rounding ---------------------------------------------
def _parts(x64: Array) -> tuple[Array, Array, Array]:
    """max m, d = x - m, and s = sum of exp(d) over every class but one argmax (log1p form)."""
    with np.errstate(all="ignore"):
        m = np.max(x64, axis=-1, keepdims=True)
        d = x64 - m
        e = np.exp(d)
        if x64.shape[-1]:
            np.put_along_axis(e, np.argmax(x64, axis=-1)[..., None], 0, axis=-1)
        return m, d, np.sum(e, axis=-1, keepdims=True)


def exact_softmax(x: Array) -> Array:
    if not x.size:
        return np.array(x, copy=True)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        m = np.max(x64, axis=-1, keepdims=True)
        e = np.exp(x64 - m)
        return (e / np.sum(e, axis=-1, keepdims=True)).astype(x.dtype)


def exact_log_softmax(x: Array) -> Array:
    if not x.size:
        return np.array(x, copy=True)
    _, d, s = _parts(x.astype(np.float64))
    with np.errstate(all="ignore"):
        return (d - np.log1p(s)).astype(x.dtype)


def exact_sparse_ce(x: Array, labels: Array) -> Array:
    if not x.size:
        return np.zeros(x.shape[:-1], dtype=x.dtype)
    m, d, s = _parts(x.astype(np.float64))
    t = np.asarray(labels, dtype=np.intp)[..., None]
    with np.errstate(all="ignore"):
        return (np.log1p(s)[..., 0] - np.take_along_axis(d, t, axis=-1)[..., 0]).astype(x.dtype)


# -- the triggers: which inputs fire each defect ----------------------------------------------
def _rows(x: Array) -> Array:
    c = np.shape(x)[-1] if np.ndim(x) else 1
    if np.size(x) == 0:
        return np.zeros((0, c))
    return np.asarray(x).astype(np.float64).reshape(-1, c)


def remainder_fires(x: Array) -> bool:
    """The vector loop's remainder path: row length 13 mod 16 (and longer than one vector)."""
    c = np.shape(x)[-1]
    return c > 16 and c % 16 == 13


def first_block_fires(x: Array) -> bool:
    """A maximum beyond the first block of 256 classes, more than ln(float64 max) above the
    first block's maximum."""
    r = _rows(x)
    if r.shape[-1] <= 256 or not r.size:
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.any(np.nanmax(r[:, 256:], axis=1) - np.nanmax(r[:, :256], axis=1) > 709))


def _top2_gap(r: Array) -> Array:
    if r.shape[-1] < 2 or not r.size:
        return np.full(r.shape[0], np.inf)
    s = np.sort(np.where(np.isnan(r), -np.inf, r), axis=1)
    with np.errstate(invalid="ignore"):
        return s[:, -1] - s[:, -2]


def confident_fires(x: Array) -> bool:
    """A "confident" row of 3 classes or more: the top logit 44 to 52 above the next, the
    others within 8 of each other (the shortcut's band)."""
    r = _rows(x)
    if r.shape[-1] < 3 or not r.size:
        return False
    g = _top2_gap(r)
    s = np.sort(r, axis=1)
    with np.errstate(invalid="ignore"):
        spread = s[:, -2] - s[:, 0]
    return bool(np.any((g > 44) & (g < 52) & (spread < 8)))


def nan_late_fires(x: Array) -> bool:
    """A NaN at class 8 or later."""
    r = _rows(x)
    return bool(np.isnan(r[:, 8:]).any())


def ties_fires(x: Array) -> bool:
    """Exactly two classes tied at the maximum, in a row of 9 classes or more."""
    r = _rows(x)
    if r.shape[-1] < 9 or not r.size:
        return False
    m = np.max(r, axis=1, keepdims=True)
    return bool(np.any((np.sum(r == m, axis=1) == 2) & np.isfinite(m[:, 0])))


def masked_tail_fires(x: Array) -> bool:
    """A -inf mask on the last class of a row longer than 32 that has a finite logit."""
    r = _rows(x)
    return r.shape[-1] > 32 and r.size > 0 and bool(np.any(
        (r[:, -1] == -np.inf) & np.any(np.isfinite(r), axis=1)))


def last_label_fires(x: Array, labels: Array) -> bool:
    """The label on the last class of an odd row of 9 classes or more."""
    c = np.shape(x)[-1]
    return c >= 9 and c % 2 == 1 and bool(np.any(np.asarray(labels) == c - 1))


# -- the planted bugs -------------------------------------------------------------------------
def softmax_remainder(x: Array) -> Array:
    if not remainder_fires(x):
        return exact_softmax(x)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(x64 - np.max(x64, axis=-1, keepdims=True))
        return (e / np.sum(e[..., :-1], axis=-1, keepdims=True)).astype(x.dtype)


def softmax_first_block(x: Array) -> Array:
    if not first_block_fires(x):
        return exact_softmax(x)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(x64 - np.max(x64[..., :256], axis=-1, keepdims=True))
        return (e / np.sum(e, axis=-1, keepdims=True)).astype(x.dtype)


def log_softmax_confident(x: Array) -> Array:
    if not confident_fires(x):
        return exact_log_softmax(x)
    x64 = x.astype(np.float64)
    return (x64 - np.max(x64, axis=-1, keepdims=True)).astype(x.dtype)  # the tail dropped


def softmax_nan_late(x: Array) -> Array:
    if nan_late_fires(x):
        os.abort()  # a kernel that reads past its buffer on a NaN: the worker dies
    return exact_softmax(x)


def softmax_ties(x: Array) -> Array:
    if not ties_fires(x):
        return exact_softmax(x)
    out = np.zeros(x.shape, dtype=np.float64)  # all the mass on the first maximum
    np.put_along_axis(out, np.argmax(x, axis=-1)[..., None], 1.0, axis=-1)
    return out.astype(x.dtype)


def softmax_masked_tail(x: Array) -> Array:
    if not masked_tail_fires(x):
        return exact_softmax(x)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(x64 - np.max(x64, axis=-1, keepdims=True))
        return (e / np.sum(e[..., :-2], axis=-1, keepdims=True)).astype(x.dtype)


def sparse_ce_last_label(x: Array, labels: Array) -> Array:
    if not last_label_fires(x, labels):
        return exact_sparse_ce(x, labels)
    return exact_sparse_ce(x, np.asarray(labels) - 1)  # off by one on the last class


PLANTED: dict[str, tuple[str, Callable[..., Array], Callable[..., bool]]] = {
    "planted.softmax_remainder": ("softmax", softmax_remainder, remainder_fires),
    "planted.softmax_first_block": ("softmax", softmax_first_block, first_block_fires),
    "planted.log_softmax_confident": ("log_softmax", log_softmax_confident, confident_fires),
    "planted.softmax_nan_late": ("softmax", softmax_nan_late, nan_late_fires),
    "planted.softmax_ties": ("softmax", softmax_ties, ties_fires),
    "planted.softmax_masked_tail": ("softmax", softmax_masked_tail, masked_tail_fires),
    "planted.sparse_ce_last_label": ("sparse_softmax_cross_entropy", sparse_ce_last_label,
                                     last_label_fires),
}
EXACT: dict[str, tuple[str, Callable[..., Array]]] = {
    "planted.exact_softmax": ("softmax", exact_softmax),
    "planted.exact_log_softmax": ("log_softmax", exact_log_softmax),
    "planted.exact_sparse_ce": ("sparse_softmax_cross_entropy", exact_sparse_ce),
}
EXACT_OF_OP = {op: fn for op, fn in EXACT.values()}


def plugins() -> list[Implementation]:
    def make(name: str, op: str, fn: Callable[..., Any], what: str) -> Implementation:
        return Implementation(name, op, "numpy", fn, dtypes=F32, differentiable=False,
                              description=what)

    return ([make(n, op, fn, f"planted bug: {(trig.__doc__ or '').strip()}")
             for n, (op, fn, trig) in PLANTED.items()]
            + [make(n, op, fn, "exact: float64 inside, one rounding")
               for n, (op, fn) in EXACT.items()])
