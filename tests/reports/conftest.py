"""Sites built once per test session from the fixture run (building one takes about a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports import build_report
from tests.reports.runs import FIXTURE, regressed_run


@pytest.fixture(scope="session")
def fixture_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the fixture run."""
    out = tmp_path_factory.mktemp("site") / "site"
    assert build_report([FIXTURE], out) == out / "index.html"
    return out


@pytest.fixture(scope="session")
def comparison_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a regressed copy of the fixture, compared with the fixture as baseline."""
    runs = tmp_path_factory.mktemp("runs")
    out = tmp_path_factory.mktemp("site") / "compared"
    build_report([regressed_run(runs / "regressed")], out, baseline=[FIXTURE])
    return out
