"""`softmax-bench report`, and the report `softmax-bench run` writes into its run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from tests.reports.runs import FIXTURE, gpu_machine_run

TINY = """name = "tiny"
[[cases]]
family = "large_offset"
dtypes = ["float32"]
ops = ["softmax"]
"""


def test_report_writes_the_site_and_prints_its_index(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    assert main(["report", str(FIXTURE), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'index.html'}"
    assert (out / "index.html").is_file()


def test_report_merges_runs_and_compares_with_a_baseline(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    gpu = gpu_machine_run(tmp_path / "gpu")
    out = tmp_path / "site"
    assert main(["report", str(FIXTURE), str(gpu), "--out", str(out),
                 "--baseline", str(FIXTURE)]) == 0
    assert (out / "comparison.html").is_file()
    assert "gpu-box" in (out / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("make_args, message", [
    (lambda t: [str(t / "missing")], "missing does not exist"),
    (lambda t: [str(t)], "is not a run directory (no run.json)"),
    (lambda t: [str(FIXTURE), "--out", str(FIXTURE)],
     "already holds files that are not a softmax-bench report"),
    (lambda t: [str(FIXTURE), "--out", str(t / "file" / "site")], "choose a writable --out"),
    (lambda t: [], "the following arguments are required: RUN_DIR"),
])
def test_mistakes_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          make_args: object, message: str) -> None:
    (tmp_path / "file").write_text("not a directory")
    args = make_args(tmp_path)  # type: ignore[operator]
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_run_builds_the_report_in_its_run_directory(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    out = tmp_path / "run"
    assert main(["run", "--suite", str(suite), "--impl", "numpy.softmax_*", "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report' / 'index.html'}" in printed
    stability = (out / "report" / "stability.html").read_text(encoding="utf-8")
    assert "numpy.softmax_naive" in stability and "nan_where_finite" in stability


def test_run_with_no_report_builds_none(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    out = tmp_path / "run"
    assert main(["run", "--suite", str(suite), "--impl", "numpy.softmax_naive", "--out",
                 str(out), "--quiet", "--no-report"]) == 0
    assert not (out / "report").exists()
