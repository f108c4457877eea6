"""The site of a run with more than 10,000 records stays under 10 MB (its build time is checked
by the benchmark in benchmarks/test_report_speed.py, not here: this machine is shared)."""

from __future__ import annotations

from pathlib import Path

from reports import build_report
from tests.reports.runs import multiplied_run

LIMIT_BYTES = 10 * 10**6


def test_a_ten_thousand_record_site_is_under_ten_megabytes(tmp_path: Path) -> None:
    run = multiplied_run(tmp_path / "run", copies=16)
    with (run / "results.jsonl").open("rb") as fh:
        assert sum(1 for _ in fh) >= 10_000
    out = tmp_path / "site"
    build_report([run], out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size < LIMIT_BYTES, f"{size / 1e6:.1f} MB"
