"""`softmax-bench run` and `compare` end to end on a tiny suite (NumPy only, no framework)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

SUITE = """name = "tiny"
[[cases]]
family = "large_offset"
dtypes = ["float32"]
ops = ["softmax"]
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    return path


def test_run_then_compare(suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["run", "--suite", str(suite), "--impl", "numpy.softmax_*", "--out", str(out),
            "--quiet", "--no-report"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"run directory: {out}" in printed
    assert (out / "run.json").exists() and (out / "results.jsonl").exists()
    assert main(["compare", str(out), str(out)]) == 0
    assert "no regressions" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--suite", "nope"], "unknown suite 'nope'"),
    (["--impl", "zzz*"], "--impl 'zzz*' matches no implementation"),
    (["--out", "/proc/softmax-bench-cannot-write"], "cannot write run directory"),
    (["--jobs", "0"], "--jobs 0: must be at least 1"),
])
def test_user_mistakes_are_one_line_and_exit_2(args: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--quiet", "--no-report", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_malformed_suite_names_file_line_and_key(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[cases]]\nfamily = "smoke_small"\ndtypes = ["float8"]\n')
    assert main(["run", "--suite", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{bad}:4: cases[0].dtypes: unknown dtype 'float8'" in err


def test_frameworks_in_parallel_give_the_same_records_as_one_at_a_time(
        tmp_path: Path) -> None:
    """--jobs 2 runs NumPy's and SciPy's workers at once; every record is as with --jobs 1."""
    from harness import store as results

    suite = tmp_path / "two.toml"
    suite.write_text('name = "two"\n[[cases]]\nfamily = "large_offset"\nops = ["softmax"]\n'
                     '[[cases]]\nfamily = "smoke_small"\nops = ["softmax", "log_softmax"]\n')
    frames = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        assert main(["run", "--suite", str(suite), "--impl", "numpy.*softmax_shifted",
                     "--impl", "scipy.special.*softmax", "--jobs", jobs, "--out", str(out),
                     "--quiet", "--no-report"]) == 0
        frame = results.load(out).drop(columns=["wall_s", "run_id"])
        frames.append(frame.sort_values(list(results.KEY_FIELDS)).reset_index(drop=True))
    assert set(frames[0]["framework"]) == {"numpy", "scipy"}
    assert len(frames[0]) == len(frames[1]) > 0
    assert frames[0].astype(str).equals(frames[1].astype(str))


def test_unit_queue_keeps_each_thread_on_one_framework() -> None:
    from harness.engine.queue import UnitQueue

    queue: UnitQueue[str] = UnitQueue()
    for name, weight in [("np1", 1), ("np2", 1), ("jax1", 5), ("jax2", 5), ("tf1", 4),
                         ("tf2", 4)]:
        queue.add({"n": "numpy", "j": "jax", "t": "tensorflow"}[name[0]], name, weight)
    first, second = queue.take(None), queue.take(None)
    assert first == ("jax", "jax1")  # the most work first
    assert second == ("tensorflow", "tf1")  # the next thread: a framework nobody runs
    assert queue.take("jax") == ("jax", "jax2")  # stay while the framework has units
    assert queue.take("jax") == ("numpy", "np1")  # jax done; numpy is idle, tensorflow busy
    assert queue.take("tensorflow") == ("tensorflow", "tf2")
    assert queue.take("tensorflow") == ("numpy", "np2")  # joins the only framework left
    assert queue.take("numpy") is None and queue.take("numpy") is None


def test_references_computed_ahead_in_a_pool_give_the_same_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference pool (processes, computed ahead) and the inline path score alike, on
    families that escalate past the float64 tier and one with no exact value (bad labels)."""
    import json

    from harness import store as results

    monkeypatch.setenv("SOFTMAX_BENCH_CACHE", "off")  # every reference computed, not read
    suite = tmp_path / "escalate.toml"
    suite.write_text('name = "escalate"\n'
                     '[[cases]]\nfamily = "dominant_logit"\nops = ["log_softmax", "logsumexp"]\n'
                     'dtypes = ["float32", "float64"]\n'
                     '[[cases]]\nfamily = "labels_out_of_range"\n'
                     'ops = ["sparse_softmax_cross_entropy"]\ndtypes = ["float32"]\n')
    frames = []
    for jobs in ("0", "2"):
        out = tmp_path / f"ref{jobs}"
        assert main(["run", "--suite", str(suite), "--impl", "numpy.*", "--reference-jobs",
                     jobs, "--out", str(out), "--quiet", "--no-report"]) == 0
        frame = results.load(out).drop(columns=["wall_s", "run_id"])
        frames.append(frame.sort_values(list(results.KEY_FIELDS)).reset_index(drop=True))
        end = json.loads((out / "run.json").read_text())["end"]
        assert end["reference_jobs"] == int(jobs)
        assert sum(end["reference_tiers"].values()) > 0  # rows decided, counted per tier
    assert (frames[0]["status"] == "ok").sum() > 0 and (frames[0]["verdict"] == "pass").sum() > 0
    assert len(frames[0]) == len(frames[1])
    assert frames[0].astype(str).equals(frames[1].astype(str))


def test_an_output_judged_once_gives_the_records_of_judging_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Implementations that return the same bits for a case share one judgement (ScoreMemo):
    the records are those of a run that judges every output afresh."""
    import json

    from harness import store as results
    from harness.planning import accuracy

    suite = tmp_path / "same.toml"
    suite.write_text('name = "same"\n[[cases]]\nfamily = "smoke_small"\n'
                     'ops = ["softmax", "log_softmax"]\ndtypes = ["float32", "float64"]\n'
                     '[[cases]]\nfamily = "large_offset"\nops = ["softmax"]\n')
    args = ["run", "--suite", str(suite), "--impl", "numpy.*", "--impl", "scipy.special.*",
            "--quiet", "--no-report"]
    frames, ends = [], []
    for name in ("memo", "fresh"):
        out = tmp_path / name
        if name == "fresh":  # every output judged: nothing kept between calls
            monkeypatch.setattr(accuracy.ScoreMemo, "get", lambda self, task, actual, sha:
                                accuracy.score_case(task.case, task.pass_, actual, None,
                                                    self.references))
        assert main([*args, "--out", str(out)]) == 0
        frame = results.load(out).drop(columns=["wall_s", "run_id"])
        frames.append(frame.sort_values(list(results.KEY_FIELDS)).reset_index(drop=True))
        ends.append(json.loads((out / "run.json").read_text())["end"])
    scored = ends[0]["outputs_scored"]
    assert scored["reused"] > 0 and scored["judged"] > 0
    assert scored["judged"] + scored["reused"] == (frames[0]["status"] == "ok").sum()
    assert ends[1]["outputs_scored"] == {"judged": 0, "reused": 0}  # the memo was bypassed
    assert len(frames[0]) == len(frames[1]) > 0
    assert frames[0].astype(str).equals(frames[1].astype(str))
