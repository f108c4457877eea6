"""A row-wise Triton softmax (one program per row, the whole row in one block), the kernel of
Triton's fused-softmax tutorial. Needs a CUDA GPU, torch and triton."""

from __future__ import annotations

from typing import Any

import triton
import triton.language as tl


@triton.jit
def _softmax_kernel(out_ptr, in_ptr, in_stride, out_stride, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(in_ptr + row * in_stride + cols, mask=mask, other=-float("inf"))
    x = x.to(tl.float32)
    shifted = x - tl.max(x, axis=0)
    e = tl.exp(shifted)
    y = e / tl.sum(e, axis=0)
    tl.store(out_ptr + row * out_stride + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def softmax(x: Any) -> Any:
    """Softmax over the last axis of a 2-D CUDA tensor (float16, bfloat16 or float32)."""
    import torch

    rows, cols = x.shape
    out = torch.empty_like(x)
    if rows and cols:
        _softmax_kernel[(rows,)](out, x, x.stride(0), out.stride(0), cols,
                                 BLOCK=triton.next_power_of_2(cols))
    return out
