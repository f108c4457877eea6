"""`softmax-bench rescore`: kept outputs, re-judging a run without running anything again
(harness.rescore, harness.store.outputs, docs/scoring.md §9)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from harness.cli import main
from harness.errors import StoreError
from harness.rescore import (
    CARRIED,
    NO_OUTPUT_OLD,
    OUTPUT,
    RECORD,
    TIMING,
    rescore,
)
from harness.store import load, outputs, read_run

SUITE = """name = "tiny"
[[cases]]
family = "large_offset"
dtypes = ["float32"]
ops = ["softmax"]
[[cases]]
family = "labels_out_of_range"
dtypes = ["float32"]
"""
BOOK = ("rescored", "rescore_reason", "previous_verdict")
DEVICE_ASSERT_MESSAGE = (
    "AcceleratorError: CUDA error: device-side assert triggered\n"
    "CUDA kernel errors might be asynchronously reported at some other API call")


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what rescore adds (the book-keeping of BOOK)."""
    return {k: v for k, v in record.items() if k not in BOOK}


def _records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def _write_records(run: Path, records: list[dict[str, Any]]) -> None:
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A NumPy run of a tiny suite (ok, error and unsupported records), outputs kept."""
    base = tmp_path_factory.mktemp("fresh")
    suite = base / "tiny.toml"
    suite.write_text(SUITE)
    out = base / "run"
    assert main(["run", "--suite", str(suite), "--impl", "numpy.*", "--out", str(out),
                 "--quiet", "--no-report", "--reference-jobs", "0"]) == 0
    return out


@pytest.fixture
def run_copy(fresh_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(fresh_run, copy)
    return copy


def test_a_run_keeps_its_outputs_content_addressed(fresh_run: Path) -> None:
    records = _records(fresh_run)
    ok = [r for r in records if r["status"] == "ok"]
    assert ok and all(r["output_sha256"] for r in ok)
    assert all(r["output_sha256"] is None for r in records if r["status"] != "ok")
    assert read_run(fresh_run)["meta"]["keep_outputs_up_to"] == 65536
    digests = {r["output_sha256"] for r in ok}
    files = list((fresh_run / outputs.OUTPUTS_DIR).rglob("*.npz"))
    assert sorted(f.stem for f in files) == sorted(digests)  # each content once
    for sha in digests:
        assert outputs.digest(outputs.get_output(fresh_run, sha)) == sha


def test_rescoring_a_fresh_run_gives_identical_records(fresh_run: Path, tmp_path: Path) -> None:
    result = rescore(fresh_run, tmp_path / "new", reference_jobs=0)
    before, after = _records(fresh_run), _records(tmp_path / "new")
    assert len(before) == len(after) == result.records
    for old, new in zip(before, after, strict=True):
        assert _fields(new) == _fields(old)
        assert new["previous_verdict"] == old["verdict"]
    assert not result.changes
    how = {r["status"]: r["rescored"] for r in after}
    assert how == {"ok": OUTPUT, "error": RECORD, "unsupported": CARRIED}
    assert set(result.not_rejudged) == {"not run (unsupported): nothing to judge"}
    # a normal run, with its outputs: it loads, and it can be rescored again
    run = read_run(tmp_path / "new")
    assert run["meta"]["rescore"]["of_run_id"] == read_run(fresh_run)["run_id"]
    assert run["meta"]["rescore"]["how"] == {OUTPUT: result.how[OUTPUT],
                                             RECORD: result.how[RECORD],
                                             CARRIED: result.how[CARRIED]}
    assert len(load(tmp_path / "new")) == len(before)
    again = rescore(tmp_path / "new", tmp_path / "again", reference_jobs=0)
    assert again.how[OUTPUT] == result.how[OUTPUT] and not again.changes


def test_rescoring_restores_a_verdict_changed_by_hand(run_copy: Path, tmp_path: Path) -> None:
    records = _records(run_copy)
    target = next(i for i, r in enumerate(records)
                  if r["status"] == "ok" and r["verdict"] == "pass")
    true = dict(records[target])
    records[target].update(verdict="nan_where_finite", severity="critical", max_ulp=1e9)
    _write_records(run_copy, records)
    result = rescore(run_copy, tmp_path / "new", reference_jobs=0)
    assert dict(result.changes) == {("nan_where_finite", "pass"): 1}
    new = _records(tmp_path / "new")[target]
    assert _fields(new) == _fields(true)
    assert new["previous_verdict"] == "nan_where_finite" and new["rescored"] == OUTPUT
    assert read_run(tmp_path / "new")["meta"]["rescore"]["verdict_changes"] == {
        "nan_where_finite -> pass": 1}


def test_a_damaged_or_missing_output_is_carried_over_with_the_reason(run_copy: Path,
                                                                    tmp_path: Path) -> None:
    records = _records(run_copy)
    ok = [r for r in records if r["status"] == "ok"]
    damaged = outputs.output_path(run_copy, ok[0]["output_sha256"])
    outputs.put_output(tmp_path, np.zeros(3))  # some other content
    shutil.copyfile(next((tmp_path / outputs.OUTPUTS_DIR).rglob("*.npz")), damaged)
    shared = sum(r.get("output_sha256") == ok[0]["output_sha256"] for r in records)
    result = rescore(run_copy, tmp_path / "new", reference_jobs=0)
    reasons = dict(result.not_rejudged)
    assert sum(n for r, n in reasons.items() if r.startswith("kept output unreadable")) == shared
    assert "does not match its digest" in next(r for r in reasons if "unreadable" in r)


def test_no_outputs_kept_says_so(run_copy: Path, tmp_path: Path) -> None:
    records = _records(run_copy)
    for r in records:
        r["output_sha256"] = None
    _write_records(run_copy, records)
    shutil.rmtree(run_copy / outputs.OUTPUTS_DIR)
    run = json.loads((run_copy / "run.json").read_text())
    run["meta"]["keep_outputs_up_to"] = 0
    (run_copy / "run.json").write_text(json.dumps(run))
    result = rescore(run_copy, tmp_path / "new", reference_jobs=0)
    n_ok = sum(r["status"] == "ok" for r in records)
    assert result.not_rejudged["no kept output: the run kept none (--keep-outputs-up-to 0)"] \
        == n_ok
    assert not (tmp_path / "new" / outputs.OUTPUTS_DIR).exists()


# -- a version-1 run, as the committed examples are ------------------------------------------

def _v1_run(tmp_path: Path, suite: str) -> Path:
    """A hand-made version-1 run: a CUDA device-side assert and an IndexError on an
    error-expected case (both verdict pass then), an ok record with no output, a crash, a timing
    record."""
    run = tmp_path / "v1"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "schema_version": 1, "run_id": "20261127T000000Z-abcdef", "suite": suite,
        "started_at": "2026-11-27T00:00:00Z", "ended_at": "2026-11-27T00:01:00Z",
        "harness_version": "0+unknown", "git_commit": None,
        "environment": {"machine_fingerprint": "h200-box", "gpu_model": "NVIDIA H200"},
        "meta": {"device": "cuda"}, "end": {"counts": {"crash": 1, "error": 2, "ok": 2}}}))
    base = {"framework": "torch", "op": "sparse_softmax_cross_entropy", "device": "cuda",
            "dtype": "float32", "case": "labels_out_of_range[tf=labels=4,3,0,-1]",
            "case_family": "labels_out_of_range", "case_status": "error-expected",
            "shape": [4, 4], "verdict": "pass", "follows_convention": True}
    records = [
        {**base, "implementation": "torch.nn.functional.cross_entropy", "pass": "forward",
         "status": "error", "message": DEVICE_ASSERT_MESSAGE,
         "convention": "raises AcceleratorError"},
        {**base, "implementation": "torch.nn.functional.cross_entropy", "pass": "backward",
         "device": "cpu", "status": "error", "message": "IndexError: Target 4 is out of bounds.",
         "convention": "raises IndexError"},
        {**base, "implementation": "torch.softmax", "op": "softmax", "pass": "forward",
         "case": "random_normal[C=8]", "case_family": "random_normal", "case_status": "scored",
         "status": "ok", "message": "", "verdict": "inaccurate", "limit_ratio": 2.5,
         "follows_convention": None},
        {**base, "implementation": "torch.softmax", "op": "softmax", "pass": "backward",
         "case": "random_normal[C=8]", "case_family": "random_normal", "case_status": "scored",
         "status": "crash", "message": "worker died (signal 11)", "verdict": "crash",
         "follows_convention": None},
        {"implementation": "torch.softmax", "framework": "torch", "op": "softmax",
         "pass": "forward", "device": "cuda", "dtype": "float32", "case": "throughput[C=1024]",
         "case_family": "throughput", "case_status": "scored", "shape": [8, 1024],
         "status": "ok", "message": "", "median_s": 1e-5, "gbps": 3.2, "copy_gbps": 4.0,
         "roofline_fraction": 0.8},
    ]
    _write_records(run, records)
    return run


def test_a_device_assert_of_a_v1_run_becomes_device_assert(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    result = rescore(_v1_run(tmp_path, str(suite)), tmp_path / "new", reference_jobs=0)
    assert dict(result.changes) == {("pass", "device_assert"): 1}
    frame = load(tmp_path / "new")
    assert read_run(tmp_path / "new")["schema_version_read"] == 3
    by_impl = {(r["implementation"], r["pass"], r["case_family"]): r
               for r in frame.to_dict("records")}
    assert_ = by_impl[("torch.nn.functional.cross_entropy", "forward", "labels_out_of_range")]
    assert (assert_["verdict"], assert_["severity"], assert_["rescored"]) == (
        "device_assert", "critical", RECORD)
    assert assert_["previous_verdict"] == "pass" and assert_["decided_by"] == "none"
    assert assert_["case_status"] == "error_expected"  # upgraded on the way
    index = by_impl[("torch.nn.functional.cross_entropy", "backward", "labels_out_of_range")]
    assert (index["verdict"], index["severity"], index["rescored"]) == ("pass", "none", RECORD)
    carried = by_impl[("torch.softmax", "forward", "random_normal")]
    assert (carried["verdict"], carried["severity"], carried["rescored"]) == (
        "inaccurate", "minor", CARRIED)
    assert carried["rescore_reason"] == NO_OUTPUT_OLD
    crash = by_impl[("torch.softmax", "backward", "random_normal")]
    assert (crash["verdict"], crash["severity"], crash["rescored"]) == (
        "crash", "critical", RECORD)
    timing = by_impl[("torch.softmax", "forward", "throughput")]
    assert timing["rescore_reason"] == TIMING and timing["roofline_fraction"] == 0.8
    assert dict(result.not_rejudged) == {NO_OUTPUT_OLD: 1, TIMING: 1}
    run = read_run(tmp_path / "new")
    assert run["environment"]["gpu_model"] == "NVIDIA H200"  # the machine that measured
    assert run["meta"]["rescore"]["measured"]["started_at"] == "2026-11-27T00:00:00Z"
    assert run["meta"]["rescore"]["not_rejudged"] == {
        "count": 2, "reasons": {NO_OUTPUT_OLD: 1, TIMING: 1}}


def test_without_its_suite_only_device_errors_are_rejudged(tmp_path: Path) -> None:
    missing = str(tmp_path / "moved" / "accuracy.toml")
    result = rescore(_v1_run(tmp_path, missing), tmp_path / "new", reference_jobs=0)
    assert dict(result.changes) == {("pass", "device_assert"): 1}
    assert result.suite_problem and missing in result.suite_problem
    records = _records(tmp_path / "new")
    index = next(r for r in records if r["message"].startswith("IndexError"))
    assert index["rescored"] == CARRIED and missing in index["rescore_reason"]
    assert result.not_rejudged[index["rescore_reason"]] == 1


def test_the_command_prints_what_it_did(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    run = _v1_run(tmp_path, str(tmp_path / "gone.toml"))
    assert main(["rescore", str(run), "--out", str(tmp_path / "new"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "(5 records: 0 re-judged from kept outputs, 2 from the record, 3 carried over)" \
        in printed
    assert f"      1  {NO_OUTPUT_OLD}" in printed and "not re-judged: 3 record(s)" in printed
    assert "verdict changes: 1 pass -> device_assert" in printed


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("not_empty", "exists and is not empty; choose another --out"),
    ("itself", "exists and is not empty"),
])
def test_bad_input_is_one_line(case: str, message: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    run = _v1_run(tmp_path, "quick")
    src = tmp_path / "nope" if case == "missing" else run
    out = run if case == "itself" else tmp_path / "out"
    if case == "not_empty":
        out.mkdir()
        (out / "x").write_text("")
    assert main(["rescore", str(src), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_outputs_round_trip_bfloat16_and_check_their_digest(tmp_path: Path) -> None:
    a = np.array([[1.5, -0.0, np.inf], [np.nan, 3e-40, 7.0]]).astype(ml_dtypes.bfloat16)
    sha = outputs.put_output(tmp_path, a)
    assert outputs.put_output(tmp_path, a.copy()) == sha  # stored once
    back = outputs.get_output(tmp_path, sha)
    assert back.dtype == a.dtype and back.tobytes() == a.tobytes()
    assert outputs.digest(a.astype(np.float32)) != sha  # the dtype is part of the address
    with np.load(outputs.output_path(tmp_path, sha), allow_pickle=False) as data:
        assert data.files == ["out@bfloat16"]
    with pytest.raises(StoreError, match="is missing"):
        outputs.get_output(tmp_path, "0" * 64)
    assert outputs.keep(a, 6) and not outputs.keep(a, 5) and not outputs.keep(a, 0)


def test_a_negative_keep_limit_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--keep-outputs-up-to", "-1", "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--keep-outputs-up-to must be 0 or more, got -1" in err and len(err.splitlines()) == 1
