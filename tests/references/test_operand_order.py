"""The mpmath tier never multiplies or adds ``mpf`` by a whole array with the mpf on the left.

``mpf * ndarray`` makes mpmath try to convert the array, formatting all of it for an error
message before giving up (about 10x slower than ``ndarray * mpf``); references/_kernels.py keeps
arrays first. This counts such conversions while the exact references of the quick suite are
computed: any new one is a slow path."""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest

from harness.ops import OPS
from harness.planning import cases, suites


def test_no_mpf_op_ndarray_in_the_reference_kernels(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Any) -> None:
    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", str(tmp_path))  # compute, do not read a cache
    context = type(mpmath.mp)
    original = context.npconvert
    arrays: list[str] = []

    def npconvert(ctx: Any, x: Any) -> Any:
        if isinstance(x, np.ndarray):
            arrays.append(f"{x.dtype} {x.shape}")
        return original(ctx, x)

    monkeypatch.setattr(context, "npconvert", npconvert)
    computed = 0
    for case in cases.generate(suites.get_suite("quick")):
        for pass_ in ("forward", "backward"):
            try:
                result = OPS[case.op].reference(pass_, case.inputs, case.cotangent, case.options)
            except (ValueError, TypeError):  # no exact value (labels out of range)
                continue
            _ = result.hi, result.lo  # evaluate (results are lazy)
            computed += 1
    assert computed > 500
    assert not arrays, f"{len(arrays)} mpf-op-array slow paths, e.g. {arrays[:3]}"
