"""harness.store: the run directory (create, append, resume, finish) and load()."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import store as results
from harness.errors import StoreError
from harness.store import run_directory

ENV = {"machine_fingerprint": "abc123", "cpu_model": "test cpu", "frameworks_settings": {}}


def record(impl: str = "numpy.softmax_naive", case: str = "smoke_small[C=3]", **extra: Any
           ) -> dict[str, Any]:
    base = {"implementation": impl, "framework": "numpy", "op": "softmax", "pass": "forward",
            "device": "cpu", "dtype": "float32", "case": case, "case_family": "smoke_small",
            "shape": (2, 3), "status": "ok", "message": "", "verdict": "pass",
            "max_ulp": np.float64(0.5), "counts": {}}
    return {**base, **extra}


def new_run(path: Path, **meta: Any) -> results.RunDirectory:
    return results.RunDirectory.create(path, {"suite": "quick", **meta}, env=ENV)


def test_create_writes_run_json_with_version_and_environment(tmp_path: Path) -> None:
    store = new_run(tmp_path / "run", run_id="r1", timeout_s=5)
    run = json.loads((tmp_path / "run" / results.RUN_FILE).read_text())
    assert run["schema_version"] == results.SCHEMA_VERSION
    assert run["run_id"] == store.run_id == "r1"
    assert run["suite"] == "quick" and run["ended_at"] is None and run["started_at"]
    assert run["environment"] == ENV and run["meta"] == {"timeout_s": 5}
    assert "harness_version" in run and "git_commit" in run
    assert (tmp_path / "run" / results.RESULTS_FILE).exists()


def test_create_captures_the_environment_by_default(tmp_path: Path) -> None:
    store = results.RunDirectory.create(tmp_path / "run", {"suite": "quick"})
    assert store.run["environment"]["machine_fingerprint"]


def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(StoreError, match="--resume"):
        new_run(tmp_path)
    new_run(tmp_path / "empty")  # an existing empty directory is fine
    with pytest.raises(StoreError, match="already holds files"):
        new_run(tmp_path / "empty")


def test_unwritable_directory_is_one_line_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as info:
        new_run(blocker / "run")
    assert "\n" not in str(info.value) and str(blocker / "run") in str(info.value)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(StoreError, match="cannot write run directory"):
            new_run(locked / "run")


def test_append_writes_one_json_line_per_record(tmp_path: Path) -> None:
    store = new_run(tmp_path / "run")
    store.append(record(max_ulp=float("nan"), counts={"nan_where_finite": np.int64(2)},
                        message="naïve \"quoted\"\nline"))
    store.append(record(case="smoke_small[C=4]"))
    lines = (tmp_path / "run" / results.RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["max_ulp"] is None  # NaN is not JSON
    assert first["counts"] == {"nan_where_finite": 2}
    assert first["shape"] == [2, 3] and first["message"] == "naïve \"quoted\"\nline"
    assert first["median_s"] is None and "gbps" in first  # timing fields present as null


def test_appends_are_flushed_at_once_and_fsynced_once_a_second(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(run_directory.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    clock = [100.0]
    monkeypatch.setattr(run_directory.time, "monotonic", lambda: clock[0])
    store = new_run(tmp_path / "run")
    synced.clear()  # run.json's atomic write
    path = tmp_path / "run" / results.RESULTS_FILE
    store.append(record())
    store.append(record(case="smoke_small[C=4]"))
    # another reader sees both lines right away (flushed), with no fsync yet
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2 and synced == []
    clock[0] += results.FSYNC_INTERVAL_S
    store.append(record(case="smoke_small[C=5]"))
    assert len(synced) == 1
    store.append(record(case="smoke_small[C=6]"))
    assert len(synced) == 1
    store.close()  # the last records are fsynced when the run ends (finish closes too)
    assert len(synced) == 2


def test_append_rejects_records_without_their_key(tmp_path: Path) -> None:
    store = new_run(tmp_path / "run")
    bad = record()
    del bad["dtype"]
    with pytest.raises(ValueError, match="dtype"):
        store.append(bad)
    with pytest.raises(ValueError, match="status"):
        store.append(record(status="fine"))


def test_resume_drops_a_truncated_last_line_and_lists_finished_keys(tmp_path: Path) -> None:
    path = tmp_path / "run"
    store = new_run(path)
    store.append(record(case="a"))
    store.append(record(case="b"))
    store.close()
    results_file = path / results.RESULTS_FILE
    with results_file.open("a", encoding="utf-8") as fh:
        fh.write('{"implementation": "numpy.softmax_naive", "op": "soft')  # killed mid-write
    resumed = results.RunDirectory.open_for_resume(path)
    assert resumed.finished_keys() == {
        ("numpy.softmax_naive", "softmax", "forward", c, "float32", "cpu") for c in "ab"}
    resumed.append(record(case="c"))
    resumed.finish({"counts": {"ok": 3}, "framework_settings": {"numpy": {"ftz": False}}})
    lines = results_file.read_text().splitlines()
    assert [json.loads(line)["case"] for line in lines] == ["a", "b", "c"]
    run = json.loads((path / results.RUN_FILE).read_text())
    assert run["ended_at"] and run["end"] == {"counts": {"ok": 3}}
    assert run["resumed_at"] and run["environment"]["frameworks_settings"] == {
        "numpy": {"ftz": False}}
    assert len(results.load(path)) == 3


def test_unterminated_valid_last_line_is_also_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "run"
    new_run(path).close()
    (path / results.RESULTS_FILE).write_text(json.dumps(record(case="a")) + "\n"
                                             + json.dumps(record(case="b")))
    assert len(results.load(path)) == 1  # b never got its newline: not known to be complete
    store = results.RunDirectory.open_for_resume(path)
    assert len(store.finished_keys()) == 1
    assert (path / results.RESULTS_FILE).read_text().endswith("\n")


def test_garbage_in_the_middle_is_a_store_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "run"
    new_run(path).close()
    (path / results.RESULTS_FILE).write_text(
        json.dumps(record(case="a")) + "\nnot json\n" + json.dumps(record(case="b")) + "\n")
    with pytest.raises(StoreError, match=r"results\.jsonl:2"):
        results.load(path)


def test_load_merges_runs_with_their_fingerprints_and_types(tmp_path: Path) -> None:
    one = new_run(tmp_path / "one", run_id="r1")
    one.append(record(max_ulp=0.25, n_scored=6, follows_convention=True))
    one.append(record(case="other", status="unsupported", verdict="unsupported",
                      message="no float16", max_ulp=None))
    one.finish()
    two = results.RunDirectory.create(tmp_path / "two", {"suite": "quick", "run_id": "r2"},
                                      env={**ENV, "machine_fingerprint": "def456"})
    two.append(record(max_ulp=3.0, extra_field="kept"))
    two.finish()
    frame = results.load([tmp_path / "one", str(tmp_path / "two")])
    assert len(frame) == 3
    assert list(frame["run_id"]) == ["r1", "r1", "r2"]
    assert list(frame["machine_fingerprint"]) == ["abc123", "abc123", "def456"]
    assert frame["max_ulp"].dtype == np.float64 and np.isnan(frame["max_ulp"].iloc[1])
    assert str(frame["n_scored"].dtype) == "Int64"
    assert str(frame["follows_convention"].dtype) == "boolean"
    assert isinstance(frame["implementation"].dtype, pd.StringDtype)
    assert frame["shape"].iloc[0] == [2, 3] and frame["counts"].iloc[0] == {}
    assert frame["extra_field"].iloc[2] == "kept"
    assert list(frame.columns[: len(results.FIELDS)]) == [f.name for f in results.FIELDS]


def test_load_of_an_empty_run_has_the_typed_columns(tmp_path: Path) -> None:
    new_run(tmp_path / "run").finish()
    frame = results.load(tmp_path / "run")
    assert len(frame) == 0 and "verdict" in frame.columns and "run_id" in frame.columns


def test_load_rejects_unknown_schema_versions_with_advice(tmp_path: Path) -> None:
    new_run(tmp_path / "run").finish()
    run_file = tmp_path / "run" / results.RUN_FILE
    run = json.loads(run_file.read_text())
    run["schema_version"] = 99
    run_file.write_text(json.dumps(run))
    with pytest.raises(StoreError, match="schema version 99.*reads versions 1, 2.*re-run"):
        results.load(tmp_path / "run")
    with pytest.raises(StoreError, match="schema version"):
        results.RunDirectory.open_for_resume(tmp_path / "run")


@pytest.mark.parametrize("damage", ["missing_dir", "missing_run", "garbled_run", "no_results"])
def test_missing_or_garbled_runs_name_the_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "run"
    if damage != "missing_dir":
        new_run(path).finish()
    if damage == "missing_run":
        (path / results.RUN_FILE).unlink()
    elif damage == "garbled_run":
        (path / results.RUN_FILE).write_text("{not json")
    elif damage == "no_results":
        (path / results.RESULTS_FILE).unlink()
    with pytest.raises(StoreError, match=str(path)):
        results.load(path)


def test_no_pickle_anywhere_in_the_store(tmp_path: Path) -> None:
    store = new_run(tmp_path / "run")
    store.append(record())
    store.finish()
    for file in (tmp_path / "run").iterdir():
        json.loads(file.read_text()) if file.suffix == ".json" else [
            json.loads(line) for line in file.read_text().splitlines()]


def test_a_version_1_run_loads_and_resumes_in_this_version_s_words(tmp_path: Path) -> None:
    """Runs written before schema 2 spelled the case status 'error-expected'."""
    store = new_run(tmp_path / "run")
    store.append(record(case_status="error-expected"))
    store.finish()
    run_file = tmp_path / "run" / results.RUN_FILE
    run = json.loads(run_file.read_text())
    run["schema_version"] = 1
    run_file.write_text(json.dumps(run))
    assert list(results.load(tmp_path / "run")["case_status"]) == ["error_expected"]
    resumed = results.RunDirectory.open_for_resume(tmp_path / "run")
    resumed.append(record(case="smoke_small[C=5]", case_status="error_expected"))
    resumed.finish()
    assert json.loads(run_file.read_text())["schema_version"] == 1  # its old records stay v1
    assert set(results.load(tmp_path / "run")["case_status"]) == {"error_expected"}


def timing(impl: str, framework: str, device: str, gbps: float | None, copy: float,
           share: float | None, status: str = "ok") -> dict[str, Any]:
    return record(impl, "throughput[shape=64x32000]", framework=framework, device=device,
                  case_family="throughput", verdict=None, max_ulp=None, status=status,
                  gbps=gbps, copy_gbps=copy, roofline_fraction=share)


def as_version_1(path: Path, records: list[dict[str, Any]]) -> Path:
    """A run directory as schema version 1 wrote it: no meta.families, the roofline share of
    each framework's own copy, no device_copy_gbps or framework_roofline_fraction."""
    old_fields = {"device_copy_gbps", "framework_roofline_fraction"}
    path.mkdir()
    (path / results.RUN_FILE).write_text(json.dumps(
        {"schema_version": 1, "run_id": "old", "suite": "throughput", "environment": ENV,
         "meta": {"device": "cuda"}}))
    (path / results.RESULTS_FILE).write_text("".join(
        json.dumps({f.name: None for f in results.FIELDS if f.name not in old_fields} | r)
        + "\n" for r in records))
    return path


def test_roofline_share_is_of_the_fastest_copy_on_the_device(tmp_path: Path) -> None:
    """Two frameworks' copies on one GPU (4 and 2 TB/s): a version-1 run stored each share of
    the framework's own copy; loaded, both are of 4 TB/s and the own-copy share is kept."""
    old = as_version_1(tmp_path / "v1", [
        timing("torch.softmax", "torch", "cuda", 2000.0, 4000.0, 0.5),
        timing("jax.softmax", "jax", "cuda", 1500.0, 2000.0, 0.75),
        timing("numpy.softmax", "numpy", "cpu", 10.0, 30.0, 1 / 3),
        # not ok: its copy does not count (a framework that failed measures nothing)
        timing("jax.broken", "jax", "cuda", None, 9000.0, None, status="error"),
        record(),  # an accuracy record: no timing fields at all
    ])
    frame = results.load(old)
    assert np.allclose(frame["roofline_fraction"][:3], [0.5, 0.375, 1 / 3])
    assert np.allclose(frame["framework_roofline_fraction"][:3], [0.5, 0.75, 1 / 3])
    assert list(frame["device_copy_gbps"][:3]) == [4000.0, 4000.0, 30.0]
    assert list(frame["copy_gbps"][:3]) == [4000.0, 2000.0, 30.0]  # each framework's own
    assert frame[["roofline_fraction", "device_copy_gbps"]][3:].isna().all().all()
    assert results.device_copy_gbps(results.RunDirectory(old, {}).records()) == {
        "cpu": 30.0, "cuda": 4000.0}


def test_stored_rooflines_of_this_version_are_read_as_stored(tmp_path: Path) -> None:
    """From schema 2 on the engine writes the three fields: load changes none of them."""
    store = new_run(tmp_path / "run")
    store.append(timing("jax.softmax", "jax", "cuda", 1500.0, 2000.0, 0.3)
                 | {"device_copy_gbps": 5000.0, "framework_roofline_fraction": 0.75})
    store.finish({"device_copy_gbps": {"cuda": 5000.0}})
    frame = results.load(tmp_path / "run")
    assert (frame["roofline_fraction"][0], frame["framework_roofline_fraction"][0],
            frame["device_copy_gbps"][0]) == (0.3, 0.75, 5000.0)
    assert results.read_run(tmp_path / "run")["end"]["device_copy_gbps"] == {"cuda": 5000.0}


def test_adversarial_families_come_from_the_run(tmp_path: Path) -> None:
    store = new_run(tmp_path / "new", families={"large_offset": {"adversarial": True},
                                                "smoke_small": {"adversarial": False}})
    store.finish()
    assert results.adversarial_families(results.read_run(tmp_path / "new")) == ("large_offset",)
    old = as_version_1(tmp_path / "v1", [record()])
    run = results.read_run(old)
    assert (run["schema_version"], run["schema_version_read"]) == (results.SCHEMA_VERSION, 1)
    assert results.adversarial_families(run) == results.STABILITY_FAMILIES_V1
    assert run["meta"]["device"] == "cuda"  # the rest of meta is kept
    results.RunDirectory.open_for_resume(old).finish()
    assert "families" not in (old / results.RUN_FILE).read_text()  # an upgrade is not written
    assert results.adversarial_families(results.read_run(old)) == results.STABILITY_FAMILIES_V1
