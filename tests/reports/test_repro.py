"""The reproduce commands the report shows really reproduce the recorded values."""

from __future__ import annotations

import html
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reports.repro import reproduce_command
from tests.reports.runs import ROOT, read_run

SUITE = "tests/reports/data/report-fixture.toml"  # as the fixture run was given it


def record(impl: str, family: str, dtype: str, verdict: str) -> dict[str, Any]:
    _, records = read_run()
    for r in records:
        if (r["implementation"], r["case_family"], r["dtype"], r["verdict"]) == \
                (impl, family, dtype, verdict):
            return r
    raise AssertionError(f"no {verdict} record of {impl} on {family} in {dtype}")


def run(command: str) -> str:
    """Run a shown command with this interpreter in place of ``python``."""
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"] and len(argv) == 3
    done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def same(printed: str, recorded: str) -> bool:
    a, b = float(printed), float(recorded)
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("impl, family, dtype, verdict", [
    ("numpy.softmax_naive", "large_offset", "float32", "nan_where_finite"),
    ("numpy.log_softmax_naive", "large_offset", "float16", "inf_where_finite"),
    ("numpy.cross_entropy_composed", "dominant_logit", "float32", "inaccurate"),
])
def test_the_command_prints_the_recorded_value(impl: str, family: str, dtype: str,
                                               verdict: str) -> None:
    r = record(impl, family, dtype, verdict)
    printed = run(reproduce_command(r, SUITE))
    assert same(printed, r["got"]), f"printed {printed}, the run recorded {r['got']}"


def test_the_stability_page_shows_that_command(fixture_site: Path) -> None:
    """The cell shows the command of its worst record (float16 or float32 here)."""
    text = (fixture_site / "stability.html").read_text(encoding="utf-8")
    shown = {html.unescape(c) for c in re.findall(r'<pre class="cmd"[^>]*>(.*?)</pre>', text,
                                                  re.S)}
    commands = {reproduce_command(record("numpy.softmax_naive", "large_offset", dtype,
                                         "nan_where_finite"), SUITE)
                for dtype in ("float16", "float32")}
    assert len(commands & shown) == 1


def test_without_an_index_the_command_prints_the_whole_output() -> None:
    r = {**record("numpy.softmax_naive", "large_offset", "float32", "nan_where_finite"),
         "worst_index": None}
    command = reproduce_command(r, SUITE)
    assert command.endswith("print(y)'")
    assert "nan" in run(command)


@pytest.mark.framework
def test_a_backward_command_runs_the_vjp() -> None:
    """torch's softmax VJP on the quick suite's first case (the fixture has no backward)."""
    r = {"implementation": "torch.nn.functional.softmax", "op": "softmax", "pass": "backward",
         "case": "smoke_small[tf=kernel_test,rows=8]", "dtype": "float32", "device": "cpu",
         "worst_index": [0, 1]}
    printed = run(reproduce_command(r, "quick"))
    assert math.isfinite(float(printed))
