"""The tests the NumPy kernel's author writes: only softmax-bench's documented API.

Run with ``pytest examples/kernels``; the project's CI runs them (tests/softmax_bench/
test_examples.py). The plugin (fixture ``softmax_case``) comes with ``pip install
softmax-bench``.
"""

import numpy as np
import pytest
from numpy_softmax import log_softmax, softmax, sparse_cross_entropy

from softmax_bench.testing import assert_close_to_exact, assert_verified


@pytest.mark.softmax_cases(op="softmax", suite="quick", dtypes=("float32", "float16"))
def test_softmax_on_every_quick_case(softmax_case):
    softmax_case.check(softmax(softmax_case.x))


@pytest.mark.softmax_cases(op="log_softmax", dtypes=("float32",))
def test_log_softmax_on_every_quick_case(softmax_case):
    softmax_case.check(log_softmax(softmax_case.x))


@pytest.mark.softmax_cases(op="sparse_softmax_cross_entropy", dtypes=("float32",))
def test_cross_entropy_on_every_quick_case(softmax_case):
    softmax_case.call(sparse_cross_entropy)  # some cases expect an error: call() judges that


def test_softmax_near_the_overflow_threshold():
    x = np.array([[1000.0, 999.0, 998.0], [88.0, 89.0, 0.0]], dtype=np.float32)
    assert_close_to_exact(softmax(x), x, op="softmax")


def test_log_softmax_keeps_the_tail():
    x = np.array([0.0, -20.0], dtype=np.float32)
    assert_close_to_exact(log_softmax(x), x, op="log_softmax")


def test_whole_quick_suite_in_float64():
    assert_verified(softmax, "softmax", dtypes=("float64",))
