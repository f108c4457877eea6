"""Fixtures shared by the harness tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.worker.adapters import get_adapter
from harness.worker.adapters.base import Adapter


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


PluginInstaller = Callable[[str, tuple[str, ...]], Path]


@pytest.fixture
def install_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PluginInstaller:
    """Install test plugins for this test: ``install(entry_points_txt, modules)`` writes a
    dist-info with those ``softmax_bench.plugins`` entry points and copies the named modules
    of tests/harness into a site directory on the path of this process and of its workers."""
    root = Path(__file__).resolve().parents[2]

    def install(entry_points: str, modules: tuple[str, ...]) -> Path:
        site = tmp_path / "site"
        dist = site / "test_plugins-0.0.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: test-plugins\nVersion: 0.0\n")
        (dist / "entry_points.txt").write_text(entry_points)
        for module in modules:
            (site / module).write_text(Path(__file__).with_name(module).read_text())
        monkeypatch.setenv("PYTHONPATH", f"{site}:{root}")
        monkeypatch.syspath_prepend(str(site))
        return site

    return install
