"""The worst-case search against plain random sampling (docs/search.md §6; `make bench`-style,
deselected in the normal test run: ``pytest -m benchmark_search benchmarks/test_search.py``).

For each known defect of a built-in (float32 log-softmax's lost tail, NumPy's naive overflow;
TensorFlow's NaN handling and optax's loss 0 at huge offsets where those frameworks are
installed) it counts the implementation calls until the first failing input, for the
structured search and for random rows (same budget, several seeds), and reports the factor
(the README's table came from the same runs through the CLI).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from harness.planning.search import SearchOptions, run_search

pytestmark = pytest.mark.benchmark_search

BUDGET = 2000
SEEDS = (0, 1, 2)
DEFECTS = [
    ("numpy.log_softmax_shifted", "float32 log-softmax's lost tail"),
    ("numpy.softmax_naive", "NumPy's naive overflow"),
    ("tensorflow.nn.softmax", "TensorFlow's NaN handling"),
    ("optax.softmax_cross_entropy_with_integer_labels", "optax's loss 0 at huge offsets"),
]


def calls_to_find(tmp: Path, impl: str, strategy: str, seed: int) -> int | None:
    opts = SearchOptions(include=(impl,), budget=BUDGET, seed=seed, strategy=strategy,
                         out=tmp / f"{impl}-{strategy}-{seed}", jobs=1)
    _, _, planner = run_search(opts)
    first = [s["first_finding_call"] for s in planner.summary()]
    return first[0] if first else None


@pytest.mark.parametrize(("impl", "what"), DEFECTS)
def test_factor_against_random_sampling(tmp_path: Path, impl: str, what: str,
                                        benchmark: Any) -> None:
    from harness.engine.workers import list_implementations

    if impl not in {i.name for i in list_implementations().implementations}:
        pytest.skip(f"{impl} is not installed here")
    structured = [calls_to_find(tmp_path, impl, "structured", s) for s in SEEDS]
    plain = [calls_to_find(tmp_path, impl, "random", s) for s in SEEDS]
    assert all(n is not None for n in structured), (impl, structured)
    s_mean = statistics.mean(n for n in structured if n is not None)
    # a random search that finds nothing within the budget counts as the budget (a lower bound)
    r_mean = statistics.mean(BUDGET if n is None else n for n in plain)
    factor = r_mean / s_mean
    benchmark.extra_info.update(defect=what, structured=structured, random=plain,
                                factor=factor)
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"\n{what}: structured {structured}, random {plain} -> factor {factor:.1f}")
