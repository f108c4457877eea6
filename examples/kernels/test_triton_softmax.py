"""The Triton kernel's tests: the quick suite's cases on the GPU, through the same API.

Skipped, with the reason, where there is no CUDA GPU or no triton.
"""

import importlib.util

import numpy as np
import pytest

from softmax_bench.testing import assert_close_to_exact


def _why_not() -> str | None:
    for module in ("torch", "triton"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU (the Triton kernel runs on CUDA only)"
    return None


REASON = _why_not()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def _to_cuda(x: np.ndarray):
    import torch

    if x.dtype.name == "bfloat16":
        return torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16).cuda()
    return torch.from_numpy(x.copy()).cuda()


@pytest.mark.softmax_cases(op="softmax", dtypes=("float32", "float16", "bfloat16"))
def test_triton_softmax_on_every_quick_case(softmax_case):
    from triton_softmax import softmax

    softmax_case.check(softmax(_to_cuda(softmax_case.x)))  # a CUDA tensor: copied back


def test_triton_softmax_large_offset():
    from triton_softmax import softmax

    x = np.array([[1000.0, 999.0, 998.0]], dtype=np.float32)
    assert_close_to_exact(softmax(_to_cuda(x)), x, op="softmax")
