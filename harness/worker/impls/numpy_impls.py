"""The project's NumPy baselines: textbook formulas, computed in the input dtype, forward only.

NumPy has no softmax, so these are the algorithms the frameworks choose between, written
plainly (class axis last): unshifted ("naive"), max-shifted two-pass ("shifted"), Milakov &
Gimelshein's one-pass online normaliser ("online", arXiv:1805.02867, Algorithm 3, run
sequentially over the classes), exp(x - logsumexp) ("exp_lse"/"lse"), and the log1p form of
Blanchard, Higham & Higham ("bhh", IMA J. Numer. Anal. 2021). Every operation runs in the input
dtype (ml_dtypes' bfloat16 ufuncs included); numpy's own sums may accumulate wider.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.registry import Implementation
from harness.vocabulary import DTYPE_NAMES

NUMPY_DTYPES = DTYPE_NAMES  # exp/log/log1p/max/sum all run on ml_dtypes.bfloat16 too


def _max(x: np.ndarray) -> np.ndarray:
    return np.max(x, axis=-1, keepdims=True)


def _sum(x: np.ndarray) -> np.ndarray:
    return np.sum(x, axis=-1, keepdims=True)


def _shifted(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """max m, d = x - m, and sum(exp(d)), all keepdims."""
    m = _max(x)
    d = x - m
    return m, d, _sum(np.exp(d))


def _online(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running max m and normaliser d = sum exp(x - m), one pass over the classes.

    m_j = max(m_{j-1}, x_j); d_j = d_{j-1} exp(m_{j-1} - m_j) + exp(x_j - m_j), from m_0 = -inf,
    d_0 = 0. Where m does not change the rescale factor is exactly 1, which also keeps leading
    -inf (masked) classes from turning exp(-inf - -inf) into NaN.
    """
    one = np.ones((), dtype=x.dtype)
    zero = np.zeros((), dtype=x.dtype)
    m = np.full(x.shape[:-1], -np.inf, dtype=x.dtype)
    d = np.zeros(x.shape[:-1], dtype=x.dtype)
    for j in range(x.shape[-1]):
        xj = x[..., j]
        m_new = np.maximum(m, xj)
        scale = np.where(m == m_new, one, np.exp(m - m_new))
        term = np.where(xj == -np.inf, zero, np.exp(xj - m_new))
        d = np.asarray(d * scale + term, dtype=x.dtype)
        m = np.asarray(m_new, dtype=x.dtype)
    return m[..., None], d[..., None]


def _bhh(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """max m, d = x - m, and s = sum of exp(d) over all classes but one argmax (BHH's log1p)."""
    m = _max(x)
    d = x - m
    e = np.exp(d)
    np.put_along_axis(e, np.argmax(x, axis=-1)[..., None], 0, axis=-1)
    return m, d, _sum(e)


def _lse_shifted(x: np.ndarray) -> np.ndarray:
    m, _, s = _shifted(x)
    return m + np.log(s)


def _pick(a: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.take_along_axis(a, np.asarray(labels, dtype=np.intp)[..., None], axis=-1)[..., 0]


# -- softmax ------------------------------------------------------------------------------------

def softmax_naive(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        e = np.exp(x)
        return e / _sum(e)


def softmax_shifted(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        _, d, s = _shifted(x)
        return np.exp(d) / s


def softmax_online(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        m, d = _online(x)
        return np.exp(x - m) / d


def softmax_exp_lse(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.exp(x - _lse_shifted(x))


def softmax_bhh(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        _, d, s = _bhh(x)
        return np.exp(d - np.log1p(s))


# -- log_softmax --------------------------------------------------------------------------------

def log_softmax_naive(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return x - np.log(_sum(np.exp(x)))


def log_softmax_shifted(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        _, d, s = _shifted(x)
        return d - np.log(s)


def log_softmax_online(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        m, d = _online(x)
        return x - (m + np.log(d))


def log_softmax_lse(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return x - _lse_shifted(x)


def log_softmax_bhh(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        _, d, s = _bhh(x)
        return d - np.log1p(s)


# -- logsumexp ----------------------------------------------------------------------------------

def logsumexp_naive(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.log(np.sum(np.exp(x), axis=-1))


def logsumexp_shifted(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return _lse_shifted(x)[..., 0]


def logsumexp_online(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        m, d = _online(x)
        return (m + np.log(d))[..., 0]


def logsumexp_bhh(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        m, _, s = _bhh(x)
        return (m + np.log1p(s))[..., 0]


def logaddexp_reduce(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(np.logaddexp.reduce(x, axis=-1))


# -- cross-entropy ------------------------------------------------------------------------------

def cross_entropy_composed(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return -np.log(_pick(softmax_shifted(x), labels))


def cross_entropy_fused(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return _lse_shifted(x)[..., 0] - _pick(x, labels)


def dense_cross_entropy_composed(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return -np.sum(labels * np.log(softmax_shifted(x)), axis=-1)


def dense_cross_entropy_fused(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.sum(labels * (_lse_shifted(x) - x), axis=-1)


def _impl(name: str, op: str, fn: Callable[..., np.ndarray], description: str
          ) -> Implementation:
    return Implementation(name=f"numpy.{name}", op=op, framework="numpy", fn=fn,
                          dtypes=NUMPY_DTYPES, devices=("cpu",), description=description,
                          differentiable=False)


def implementations() -> list[Implementation]:
    return [
        _impl("softmax_naive", "softmax", softmax_naive,
              "exp(x) / sum(exp(x)), unshifted: overflows for large logits"),
        _impl("softmax_shifted", "softmax", softmax_shifted,
              "two-pass exp(x - max) / sum(exp(x - max))"),
        _impl("softmax_online", "softmax", softmax_online,
              "Milakov & Gimelshein one-pass online normaliser, then exp(x - m) / d"),
        _impl("softmax_exp_lse", "softmax", softmax_exp_lse,
              "exp(x - logsumexp(x)) with the max-shifted logsumexp"),
        _impl("softmax_bhh", "softmax", softmax_bhh,
              "Blanchard-Higham-Higham: exp(x - max - log1p(sum of the other exp(x - max)))"),
        _impl("log_softmax_naive", "log_softmax", log_softmax_naive,
              "x - log(sum(exp(x))), unshifted"),
        _impl("log_softmax_shifted", "log_softmax", log_softmax_shifted,
              "(x - max) - log(sum(exp(x - max)))"),
        _impl("log_softmax_online", "log_softmax", log_softmax_online,
              "x - (m + log(d)) from the one-pass online normaliser"),
        _impl("log_softmax_lse", "log_softmax", log_softmax_lse,
              "x - (max + log(sum(exp(x - max)))): the logsumexp rounded before subtracting"),
        _impl("log_softmax_bhh", "log_softmax", log_softmax_bhh,
              "Blanchard-Higham-Higham: (x - max) - log1p(sum of the other exp(x - max))"),
        _impl("logsumexp_naive", "logsumexp", logsumexp_naive,
              "log(sum(exp(x))), unshifted"),
        _impl("logsumexp_shifted", "logsumexp", logsumexp_shifted,
              "max + log(sum(exp(x - max)))"),
        _impl("logsumexp_online", "logsumexp", logsumexp_online,
              "m + log(d) from the one-pass online normaliser"),
        _impl("logsumexp_bhh", "logsumexp", logsumexp_bhh,
              "Blanchard-Higham-Higham: max + log1p(sum of the other exp(x - max))"),
        _impl("logaddexp.reduce", "logsumexp", logaddexp_reduce,
              "np.logaddexp.reduce(x, axis=-1): pairwise log(exp(a) + exp(b)), left to right"),
        _impl("cross_entropy_composed", "sparse_softmax_cross_entropy", cross_entropy_composed,
              "-log(softmax_shifted(x)) picked at the label"),
        _impl("cross_entropy_fused", "sparse_softmax_cross_entropy", cross_entropy_fused,
              "logsumexp_shifted(x) - x[label]"),
        _impl("cross_entropy_composed(probs)", "softmax_cross_entropy",
              dense_cross_entropy_composed, "-sum(y * log(softmax_shifted(x)))"),
        _impl("cross_entropy_fused(probs)", "softmax_cross_entropy", dense_cross_entropy_fused,
              "sum(y * (logsumexp_shifted(x) - x))"),
    ]
