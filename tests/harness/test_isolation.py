"""Broken plugins are recorded, never fatal: crash, hang, raise, wrong shape, bad registration."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import store as results
from harness.planning.request import RunOptions
from harness.run import run_suite

ENTRY_POINTS = """[softmax_bench.plugins]
broken = broken_plugins:plugins
malformed = broken_plugins:malformed
raises = broken_plugins:factory_that_raises
missing = no_such_module:plugins
sticky = broken_plugins:sticky_plugins
"""

SUITE = """name = "isolation"
description = "one small case for the isolation tests"

[[cases]]
family = "smoke_small"
dtypes = ["float32"]
ops = ["softmax"]
"""


@pytest.fixture
def plugin_site(install_plugins: Callable[[str, tuple[str, ...]], Path]) -> Path:
    return install_plugins(ENTRY_POINTS, ("broken_plugins.py",))


def test_broken_plugins_are_recorded_and_the_run_completes(plugin_site: Path,
                                                           tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    out = tmp_path / "run"
    opts = RunOptions(suite=str(suite), include=("broken.*",), timeout=5.0, out=out)
    path, counts, plan = run_suite(opts)
    df = results.load(path)
    by_impl = {name: group for name, group in df.groupby("implementation")}
    forward = lambda name: by_impl[name][by_impl[name]["pass"] == "forward"]  # noqa: E731
    assert set(forward("broken.good")["status"]) == {"ok"}
    assert set(forward("broken.good")["verdict"]) == {"pass"}
    assert set(forward("broken.crash")["status"]) == {"crash"}
    assert "SIGABRT" in forward("broken.crash")["message"].iloc[0]
    assert set(forward("broken.hang")["status"]) == {"timeout"}
    assert set(forward("broken.raise")["status"]) == {"error"}
    assert "RuntimeError: kaboom from a plugin" in forward("broken.raise")["message"].iloc[0]
    assert set(forward("broken.wrong_shape")["verdict"]) == {"wrong_shape"}
    # no autodiff for numpy plugins: the backward pass is recorded as unsupported, not missing
    backward = df[df["pass"] == "backward"]
    assert set(backward["status"]) == {"unsupported"}
    errors = " | ".join(plan.plugin_errors)
    assert "broken.bad_op" in errors and "softmaxx" in errors
    assert "plugin malformed: returned str" in errors
    assert "plugin raises: raised ImportError" in errors
    assert "plugin missing: cannot load" in errors
    run_json = json.loads((path / "run.json").read_text())
    assert run_json["meta"]["plugin_errors"] == plan.plugin_errors


def test_resume_finishes_without_redoing(plugin_site: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    out = tmp_path / "run"
    opts = RunOptions(suite=str(suite), include=("broken.good",), out=out)
    run_suite(opts)
    lines = (out / "results.jsonl").read_text().splitlines()
    # simulate an interrupted run: drop the last record and leave half a line
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])
    resumed = RunOptions(suite=str(suite), include=("broken.good",), out=out, resume=True)
    run_suite(resumed)
    again = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    keys = [(r["implementation"], r["pass"], r["case"], r["dtype"]) for r in again]
    assert len(keys) == len(set(keys)) == len(lines)


def test_the_parent_never_imports_a_framework(plugin_site: Path, tmp_path: Path) -> None:
    import subprocess

    code = ("import sys; from harness.run import plan; from harness.planning.request import "
            "RunOptions; plan(RunOptions(suite='quick'));"
            "bad = [m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules];"
            "print(bad); assert not bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_sticky_device_error_replaces_the_worker(plugin_site: Path, tmp_path: Path) -> None:
    """After a CUDA-style error the process's context is unusable: the next task gets a new one."""
    suite = tmp_path / "two.toml"
    suite.write_text(SUITE + '[[cases]]\nfamily = "large_offset"\ndtypes = ["float32"]\n'
                             'ops = ["softmax"]\n')
    opts = RunOptions(suite=str(suite), include=("sticky.*",), out=tmp_path / "run",
                             jobs=1)
    path, counts, _ = run_suite(opts)
    forward = results.load(path).query("`pass` == 'forward'")
    assert len(forward) >= 2 and set(forward["status"]) == {"error"}
    pids = {m.rsplit("pid ", 1)[1] for m in forward["message"]}
    assert len(pids) == len(forward)


def test_ctrl_c_stops_the_run_kills_its_workers_and_keeps_the_records(
        plugin_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT during a hanging task: the run stops at once (not when the task would time out),
    says in one line how to finish it, kills the worker (its own session never sees the
    Ctrl-C), records nothing for the interrupted task, and --resume then completes the run."""
    import os
    import signal
    import subprocess
    import time

    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    out, pidfile = tmp_path / "run", tmp_path / "worker.pid"
    monkeypatch.setenv("SOFTMAX_BENCH_TEST_PIDFILE", str(pidfile))
    command = [sys.executable, "-m", "harness", "run", "--suite", str(suite), "--impl",
               "broken.good", "--impl", "broken.hang", "--timeout", "600", "--jobs", "1",
               "--out", str(out), "--quiet", "--no-report"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not pidfile.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert pidfile.exists(), proc.communicate()[1]
    worker_pid = int(pidfile.read_text())
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "interrupted" in lines[0] and "--resume" in lines[0] and str(out) in lines[0]
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
    kept = results.load(out)
    assert "broken.hang" not in set(kept["implementation"])  # interrupted, not a crash
    assert set(kept["implementation"]) == {"broken.good"}
    monkeypatch.delenv("SOFTMAX_BENCH_TEST_PIDFILE")
    resumed = RunOptions(suite=str(suite), include=("broken.good", "broken.hang"),
                                timeout=2.0, out=out, resume=True, jobs=1)
    run_suite(resumed)
    done = results.load(out)
    assert len(done) == 2 * len(kept)  # forward and backward of both implementations
    assert set(done[(done["implementation"] == "broken.hang") &
                    (done["pass"] == "forward")]["status"]) == {"timeout"}


HANG_SUITE = """name = "hangs"
description = "five small softmax cases in one dtype: one unit of five tasks per pass"

[[cases]]
family = "uniform_row"
dtypes = ["float32"]
ops = ["softmax"]
"""


def test_a_hanging_implementation_costs_at_most_three_timeouts_per_unit(
        plugin_site: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(HANG_SUITE)
    out = tmp_path / "run"
    opts = RunOptions(suite=str(suite), include=("broken.hang",), timeout=1.0, out=out, jobs=1)
    _, counts, plan = run_suite(opts)
    forward = [t for t in plan.tasks if t.pass_ == "forward"]
    assert len(forward) >= 5  # enough tasks for the breaker to matter
    assert counts["timeout"] == 3  # the forward unit; backward has no autodiff (unsupported)
    assert counts["skipped"] == len(forward) - 3
    records = results.load(out)
    skipped = records[records["status"] == "skipped"]
    assert skipped["message"].str.contains("timed out 3 times in a row").all()
    assert set(skipped["verdict"]) == {"skipped"}
    # --resume alone keeps the skipped records; --retry-skipped runs them again
    run_suite(RunOptions(**{**opts.__dict__, "resume": True}))
    assert len(results.load(out)) == len(records)
    run_suite(RunOptions(**{**opts.__dict__, "resume": True, "retry_skipped": True}))
    again = results.load(out)
    retried = again.iloc[len(records):]
    assert set(retried["case"]) == set(skipped["case"])  # exactly the skipped tasks
    assert set(retried["status"]) <= {"timeout", "skipped"}
    assert (retried["status"] == "timeout").sum() == min(3, len(skipped))


def test_retry_skipped_needs_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["run", "--retry-skipped", "--out", str(tmp_path / "r")]) == 2
    assert "--retry-skipped goes with --resume" in capsys.readouterr().err
