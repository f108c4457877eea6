"""scipy.special softmax, log_softmax and logsumexp (forward only; SciPy has no autodiff).

The axis is always passed: SciPy's default ``axis=None`` reduces over the whole array.
bfloat16 (ml_dtypes) is not a NumPy floating type to SciPy: ``softmax`` and ``log_softmax``
keep it (their ufuncs run in bfloat16), but ``logsumexp`` treats it like an integer input and
computes and returns float64 (observed with scipy 1.17); scoring follows the output dtype.
"""

from __future__ import annotations

from typing import Any

from harness.registry import Implementation
from harness.vocabulary import DTYPE_NAMES


def softmax(x: Any) -> Any:
    import scipy.special

    return scipy.special.softmax(x, axis=-1)


def log_softmax(x: Any) -> Any:
    import scipy.special

    return scipy.special.log_softmax(x, axis=-1)


def logsumexp(x: Any) -> Any:
    import scipy.special

    return scipy.special.logsumexp(x, axis=-1)


def implementations() -> list[Implementation]:
    common: dict[str, Any] = dict(framework="scipy", dtypes=DTYPE_NAMES, devices=("cpu",),
                                  differentiable=False)
    return [
        Implementation("scipy.special.softmax", "softmax", fn=softmax,
                       description="scipy.special.softmax(x, axis=-1): exp(x - max) / sum",
                       **common),
        Implementation("scipy.special.log_softmax", "log_softmax", fn=log_softmax,
                       description="scipy.special.log_softmax(x, axis=-1): "
                                   "(x - max) - log(sum(exp(x - max)))", **common),
        Implementation("scipy.special.logsumexp", "logsumexp", fn=logsumexp,
                       description="scipy.special.logsumexp(x, axis=-1): BHH log1p form "
                                   "(bfloat16 input returns float64)", **common),
    ]
