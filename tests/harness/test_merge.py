"""`softmax-bench merge`: the union of run directories, duplicates removed, conflicts reported,
machine fingerprints kept per record, and the report over a merged run equal to the report over
its parts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness import store as results
from harness.cli import main
from harness.planning.request import RunOptions
from harness.run import run_suite
from harness.store import merge
from reports import build_report
from reports.data import load_report_data

SUITE = """name = "tiny-merge"
[[cases]]
family = "smoke_small"
dtypes = ["float32"]
ops = ["softmax", "log_softmax"]
"""


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run (NumPy only, a few seconds); the other 'machines' are edited copies."""
    root = tmp_path_factory.mktemp("merge")
    suite = root / "suite.toml"
    suite.write_text(SUITE)
    path, _, _ = run_suite(RunOptions(suite=str(suite), include=("numpy.*softmax_shifted",),
                                      out=root / "run"))
    return path


def _machine(source: Path, dest: Path, host: str, *, run_id: str | None = None,
             edit: dict[str, object] | None = None) -> Path:
    """A copy of ``source`` as if run on ``host``; ``edit`` changes the first ok record."""
    shutil.copytree(source, dest)
    run = json.loads((dest / "run.json").read_text())
    run["run_id"] = run_id or f"run-{host}"
    run["environment"] = {**run["environment"], "hostname": host,
                          "machine_fingerprint": f"fp-{host}"}
    (dest / "run.json").write_text(json.dumps(run))
    if edit:
        lines = (dest / "results.jsonl").read_text().splitlines()
        for i, line in enumerate(lines):
            record = json.loads(line)
            if record["status"] == "ok":
                lines[i] = json.dumps({**record, **edit})
                break
        (dest / "results.jsonl").write_text("\n".join(lines) + "\n")
    return dest


def _report_records(paths: list[Path]) -> pd.DataFrame:
    return load_report_data(paths).records.astype(str)


def test_merge_unions_machines_and_keeps_their_fingerprints(one_run: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    a = _machine(one_run, tmp_path / "a", "box-a")
    b = _machine(one_run, tmp_path / "b", "box-b")
    out = tmp_path / "merged"
    assert main(["merge", str(a), str(b), "--out", str(out)]) == 0
    assert f"merged run: {out}" in capsys.readouterr().out
    merged, parts = results.load(out), results.load([a, b])
    # the same task on two machines is two results: both kept, each with its machine
    assert len(merged) == len(parts) == 2 * len(results.load(one_run))
    assert sorted(merged["machine_fingerprint"].unique()) == ["fp-box-a", "fp-box-b"]
    assert sorted(merged["run_id"].unique()) == ["run-box-a", "run-box-b"]
    key = [*results.KEY_FIELDS, "machine_fingerprint"]
    merged, parts = (f.sort_values(key).reset_index(drop=True) for f in (merged, parts))
    assert merged.astype(str).equals(parts.astype(str))
    run = results.read_run(out)
    assert [p["run"]["environment"]["hostname"] for p in run["meta"]["merged_from"]] == \
        ["box-a", "box-b"]
    # the report over the merged run is the report over its parts: the same records, runs (a
    # merged run is shown as its parts, with their run ids, machines and paths as given to
    # merge) and platforms, so the same site, file for file and byte for byte
    assert _report_records([out]).equals(_report_records([a, b]))
    of_merged, of_parts = load_report_data([out]), load_report_data([a, b])
    assert [(r.run_id, r.machine, str(r.path)) for r in of_merged.runs] == \
        [(r.run_id, r.machine, str(r.path)) for r in of_parts.runs]
    assert of_merged.platforms == of_parts.platforms
    sites = [build_report(runs, tmp_path / f"site{i}").parent
             for i, runs in enumerate(([out], [a, b]))]
    files = [sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file())
             for site in sites]
    assert files[0] == files[1] and files[0]
    for name in files[0]:
        assert (sites[0] / name).read_bytes() == (sites[1] / name).read_bytes(), name


def test_identical_duplicates_are_removed_and_merges_nest(one_run: Path, tmp_path: Path) -> None:
    a = _machine(one_run, tmp_path / "a", "box-a")
    again = _machine(one_run, tmp_path / "again", "box-a", run_id="run-box-a-again")
    b = _machine(one_run, tmp_path / "b", "box-b")
    first = merge.merge([a, again], tmp_path / "m1")
    n = len(results.load(one_run))
    assert (first.records, first.duplicates, first.conflicts) == (n, n, [])
    # identical duplicates keep the last run's record, as compare and the report do
    assert set(results.load(tmp_path / "m1")["run_id"]) == {"run-box-a-again"}
    assert _report_records([tmp_path / "m1"]).equals(_report_records([a, again]))
    nested = merge.merge([tmp_path / "m1", b], tmp_path / "m2")
    assert nested.records == 2 * n
    assert _report_records([tmp_path / "m2"]).equals(_report_records([a, again, b]))


def test_conflicting_duplicates_exit_1_unless_told_which_to_keep(
        one_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _machine(one_run, tmp_path / "a", "box-a")
    worse = _machine(one_run, tmp_path / "worse", "box-a", run_id="run-box-a-2",
                     edit={"max_ulp": 99.0, "verdict": "inaccurate"})
    out = tmp_path / "merged"
    assert main(["merge", str(a), str(worse), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "1 conflicting duplicate record(s)" in err
    assert "--prefer" in err and "nothing written" in err
    assert "max_ulp=99.0" in captured.out and "verdict=\"inaccurate\"" in captured.out
    assert not out.exists()
    for prefer, expect in (("first", 2.0), ("last", 99.0), (str(worse), 99.0), (str(a), 2.0)):
        dest = tmp_path / f"merged-{len(list(tmp_path.iterdir()))}"
        assert main(["merge", str(a), str(worse), "--out", str(dest), "--prefer", prefer]) == 0
        merged = results.load(dest)
        ulps = merged.loc[merged["verdict"] == "inaccurate", "max_ulp"].tolist()
        assert (ulps == [99.0]) == (expect == 99.0), prefer
    assert main(["merge", str(a), str(worse), "--out", str(tmp_path / "x"), "--prefer",
                 "nowhere"]) == 2
    assert "--prefer nowhere: expected first, last or one of" in capsys.readouterr().err


def test_merge_errors_are_one_line(one_run: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["merge", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2
    assert main(["merge", str(one_run), "--out", str(one_run)]) == 2  # not over a run
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "does not exist" in err[0] and "already holds files" in err[1]
