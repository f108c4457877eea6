"""Fixtures shared by the harness tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from harness.adapters import get_adapter
from harness.adapters.base import Adapter


@pytest.fixture(scope="module")
def adapters() -> Iterator[Callable[[str], Adapter]]:
    """One loaded adapter per framework for a test module (TensorFlow's import is slow).

    A missing framework fails the test: CI installs every framework."""
    cache: dict[str, Adapter] = {}

    def get(framework: str) -> Adapter:
        if framework not in cache:
            adapter = get_adapter(framework)
            ok, reason = adapter.availability()
            if not ok:
                pytest.fail(f"{framework} is required here (CI installs every framework): "
                            f"{reason}")
            cache[framework] = adapter
        return cache[framework]

    yield get
