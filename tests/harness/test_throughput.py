"""Throughput suites and runs: the suite schema, the plan, the memory bound, end-to-end runs
through workers (records, crashes, timeouts, resume, run.json), the pytest path, and `compare`
flagging an artificially slowed plugin. Small shapes and short budgets; no timed assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import store as results
from harness.cli import main
from harness.errors import ConfigError
from harness.planning import suites, throughput
from harness.planning.request import RunOptions
from harness.run import run_suite
from harness.store import compare
from harness.worker import timing

ROOT = Path(__file__).resolve().parents[2]
TIMING = """[timing]
max_time = 0.05
min_rounds = 10
min_time = 0.002
warmup_time = 0.01
copy_bytes = 4194304
"""
SUITE = f"""name = "tp-test"
kind = "throughput"
{TIMING}
[[cases]]
params = {{ shape = ["4x16", "2x300"] }}
dtypes = ["float32", "float16"]
ops = ["softmax", "logsumexp"]
"""


def write(tmp_path: Path, text: str, name: str = "suite.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def catalog(*impls: dict[str, Any]) -> dict[str, Any]:
    return {"implementations": list(impls), "errors": []}


def impl(name: str, op: str = "softmax", framework: str = "numpy",
         dtypes: tuple[str, ...] = ("float32", "float16"),
         differentiable: bool = False) -> dict[str, Any]:
    return {"name": name, "op": op, "framework": framework, "dtypes": list(dtypes),
            "devices": ["cpu"], "options": [], "differentiable": differentiable,
            "description": "", "source": "builtin"}


# -- the suite schema -----------------------------------------------------------------------------

def test_the_builtin_throughput_suite() -> None:
    suite = suites.get_suite("throughput")
    assert suite.kind == "throughput" and suite.timing["min_rounds"] >= 7
    cases = throughput.cases_of(suite)
    shapes = {c.shape for c in cases}
    assert {(64, 1000), (256, 32000), (4096, 32000), (8192, 128256), (1, 2**24)} <= shapes
    assert cases[0].dtype == "float32"  # float32 first
    assert [d for d in dict.fromkeys(c.dtype for c in cases)] == [
        "float32", "bfloat16", "float16", "float64"]
    assert {c.op for c in cases} == set(timing.THROUGHPUT_OPS)
    assert suites.get_suite("quick").kind == "accuracy"


def test_a_throughput_suite_file(tmp_path: Path) -> None:
    suite = suites.get_suite(str(write(tmp_path, SUITE)))
    assert suite.kind == "throughput" and suite.timing["copy_bytes"] == 4194304
    cases = throughput.cases_of(suite)
    assert [(c.shape, c.dtype, c.op) for c in cases[:3]] == [
        ((4, 16), "float32", "softmax"), ((4, 16), "float32", "logsumexp"),
        ((2, 300), "float32", "softmax")]
    assert len(cases) == 8 and cases[0].case_id == "throughput[shape=4x16]"


@pytest.mark.parametrize("text, message", [
    ('kind = "throughput"\n[[cases]]\nparams = { shape = ["4y16"] }\n',
     ':3: cases[0].params.shape: expected a shape "NxC"'),
    ('kind = "throughput"\n[[cases]]\nparams = { shape = ["0x16"] }\n',
     "expected rows and classes >= 1"),
    ('kind = "throughput"\n[[cases]]\nops = ["cross_entropy"]\nparams = { shape = ["4x16"] }\n',
     ":3: cases[0].ops: unknown op 'cross_entropy'"),
    ('kind = "throughput"\n[[cases]]\nfamily = "smoke_small"\nparams = { shape = ["4x16"] }\n',
     "times family 'throughput' only"),
    ('kind = "throughput"\n[[cases]]\ndtypes = ["float32"]\n', "cases[0].params.shape: missing"),
    ('kind = "throughput"\n[timing]\nmax_tim = 1\n[[cases]]\nparams = { shape = ["4x16"] }\n',
     ":3: timing.max_tim: unknown key"),
    ('kind = "throughput"\n[timing]\nmin_rounds = 0\n[[cases]]\nparams = { shape = ["4x16"] }\n',
     "timing.min_rounds: expected an integer >= 1"),
    ('[timing]\nmax_time = 1\n[[cases]]\nfamily = "smoke_small"\n',
     'timing options belong to throughput suites'),
    ('kind = "speed"\n[[cases]]\nfamily = "smoke_small"\n', "kind: unknown kind 'speed'"),
    ('kind = "throughput"\ninclude = ["quick"]\n', "suite 'quick' is a accuracy suite"),
])
def test_throughput_suite_mistakes_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        suites.get_suite(str(path))
    assert message in info.value.message and "\n" not in info.value.message


# -- the plan -------------------------------------------------------------------------------------

def test_plan_order_and_skips(tmp_path: Path) -> None:
    suite = suites.get_suite(str(write(tmp_path, SUITE)))
    opts = RunOptions(suite=str(tmp_path / "suite.toml"), timeout=10.0)
    plan = throughput.make_plan(opts, suite, catalog(
        impl("a.softmax"), impl("a.lse", op="logsumexp", dtypes=("float16",)),
        impl("a.log_softmax", op="log_softmax")), available=2**40)
    keys = [(t.impl.name, t.case.shape, t.case.dtype, t.pass_) for t in plan.tasks]
    assert keys[:4] == [("a.softmax", (4, 16), "float32", "forward"),
                        ("a.softmax", (4, 16), "float32", "backward"),
                        ("a.lse", (4, 16), "float32", "forward"),
                        ("a.lse", (4, 16), "float32", "backward")]
    assert not any(name == "a.log_softmax" for name, *_ in keys)  # its op is not in the suite
    assert plan.timing.budget_s == pytest.approx(10.0 * throughput.BUDGET_SHARE)
    assert plan.timing.copy_bytes == 4194304


def test_the_memory_bound_refuses_and_says_why() -> None:
    bound = throughput.memory_bound("cpu", available=10 * 2**30)
    assert bound.limit_bytes == int(10 * 2**30 * throughput.MEMORY_SHARE)
    small = throughput.TimingCase((256, 32000), "float32", "softmax")
    huge = throughput.TimingCase((8192, 128256), "bfloat16", "softmax")
    assert bound.refuses(small, "backward") is None
    reason = bound.refuses(huge, "forward")
    assert reason is not None and "beyond the cpu memory bound: needs about 23.5 GiB" in reason
    assert "7.0 GiB allowed" in reason
    assert "largest forward N*C elements" in bound.describe()
    assert throughput.memory_bound("cuda").limit_bytes is None


# -- runs through workers -----------------------------------------------------------------------

PLUGINS = """[softmax_bench.plugins]
sleepy = sleepy_plugin:plugins
broken = broken_plugins:plugins
"""


@pytest.fixture
def plugin_site(install_plugins: Callable[[str, tuple[str, ...]], Path]) -> Path:
    """The sleepy and broken test plugins, installed into a temporary site directory."""
    return install_plugins(PLUGINS, ("sleepy_plugin.py", "broken_plugins.py"))


def tiny_suite(tmp_path: Path) -> Path:
    return write(tmp_path, f'name = "tiny"\nkind = "throughput"\n{TIMING}\n[[cases]]\n'
                           'params = { shape = ["4x8"] }\ndtypes = ["float32"]\n'
                           'ops = ["softmax"]\n', "tiny.toml")


def test_a_run_records_timings_failures_and_resumes(plugin_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    opts = RunOptions(suite=str(tiny_suite(tmp_path)), out=out, timeout=4.0,
                             include=("sleepy.steady", "sleepy.compiles", "broken.crash",
                                      "broken.hang", "numpy.softmax_shifted"))
    logged: list[str] = []
    path, counts, plan = run_suite(opts, log=logged.append)
    records = [json.loads(x) for x in (path / "results.jsonl").read_text().splitlines()]
    by = {(r["implementation"], r["pass"]): r for r in records}
    ok = by[("sleepy.steady", "forward")]
    assert ok["status"] == "ok" and ok["case"] == "throughput[shape=4x8]"
    assert ok["case_family"] == "throughput" and ok["shape"] == [4, 8]
    for name in results.TIMING_FIELDS:
        assert ok[name] is not None, name
    assert ok["threads"] == 1 and ok["rounds"] == len(ok["samples_s"]) >= 10
    assert ok["median_s"] >= 0.005  # it sleeps 5 ms per call
    assert ok["verdict"] is None and ok["max_ulp"] is None  # accuracy fields stay null
    compiles = by[("sleepy.compiles", "forward")]
    assert compiles["first_call_s"] >= 0.3 > max(compiles["samples_s"])
    assert by[("sleepy.steady", "backward")]["status"] == "unsupported"
    assert by[("broken.crash", "forward")]["status"] == "crash"
    assert by[("broken.hang", "forward")]["status"] == "timeout"
    assert by[("numpy.softmax_shifted", "forward")]["status"] == "ok"  # after a fresh worker
    loaded = results.load(path)
    assert loaded["samples_s"].map(lambda v: isinstance(v, list)).sum() == 3
    assert counts == {"ok": 3, "crash": 1, "timeout": 1, "unsupported": 5}
    run = json.loads((path / "run.json").read_text())
    assert run["meta"]["kind"] == "throughput"
    assert run["meta"]["threads"] == throughput.default_threads()
    assert run["end"]["roofline"]["numpy:cpu"] > 0
    assert run["end"]["roofline_detail"]["numpy:cpu"]["copy_bytes"] == 2 * 4194304
    # stored as shown: the share of the device's fastest copy in this run, and of its own
    assert ok["device_copy_gbps"] == run["end"]["device_copy_gbps"]["cpu"] >= ok["copy_gbps"]
    assert ok["roofline_fraction"] == pytest.approx(ok["gbps"] / ok["device_copy_gbps"])
    assert ok["framework_roofline_fraction"] == pytest.approx(ok["gbps"] / ok["copy_gbps"])
    assert any("memory bound" in line for line in logged)
    # an interrupted run: drop the last two records, resume, nothing is done twice
    lines = (path / "results.jsonl").read_text().splitlines()
    (path / "results.jsonl").write_text("\n".join(lines[:-2]) + "\n")
    run_suite(RunOptions(**{**opts.__dict__, "resume": True}), log=logged.append)
    again = [json.loads(x) for x in (path / "results.jsonl").read_text().splitlines()]
    keys = [(r["implementation"], r["pass"]) for r in again]
    assert len(keys) == len(set(keys)) == len(lines)
    # resuming a finished run starts no worker, and still reports the roofline it measured
    run_suite(RunOptions(**{**opts.__dict__, "resume": True}), log=logged.append)
    run = json.loads((path / "run.json").read_text())
    assert run["end"]["roofline"]["numpy:cpu"] == ok["copy_gbps"]
    assert len((path / "results.jsonl").read_text().splitlines()) == len(lines)


def test_compare_flags_the_slowed_plugin_only(plugin_site: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    suite = tiny_suite(tmp_path)
    common = ["run", "--suite", str(suite), "--impl", "sleepy.steady", "--impl",
              "sleepy.slowed", "--quiet", "--no-report"]
    assert main([*common, "--out", str(tmp_path / "base")]) == 0
    monkeypatch.setenv("SOFTMAX_BENCH_TEST_SLOWDOWN", "0.01")  # 5 ms -> 15 ms per call
    assert main([*common, "--out", str(tmp_path / "new")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new")]) == 0
    printed = capsys.readouterr().out
    assert "1 regression(s): 0 accuracy, 1 timing" in printed
    code = main(["compare", str(tmp_path / "base"), str(tmp_path / "new"),
                 "--fail-on-regression"])
    assert code == 1
    printed = capsys.readouterr().out
    regressions = [line for line in printed.splitlines() if line.startswith("regression")]
    assert len(regressions) == 1 and "sleepy.slowed" in regressions[0]
    assert "slower x" in regressions[0]
    table = compare.compare(results.load(tmp_path / "base"), results.load(tmp_path / "new"))
    forward = table[table["pass"] == "forward"].set_index("implementation")
    assert forward.loc["sleepy.slowed", "change"] == "regression"
    assert forward.loc["sleepy.slowed", "ratio"] > 2
    assert forward.loc["sleepy.steady", "change"] == "unchanged"
    # the same run against itself: nothing to report, exit 0 even with the flag
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "base"),
                 "--fail-on-regression"]) == 0
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--alpha",
                 "2"]) == 2


@pytest.mark.framework
def test_torch_forward_and_backward(tmp_path: Path) -> None:
    out = tmp_path / "run"
    opts = RunOptions(suite=str(tiny_suite(tmp_path)), out=out, timeout=60.0,
                             include=("torch.nn.functional.softmax",), threads=1)
    path, counts, _ = run_suite(opts, log=lambda line: None)
    assert counts == {"ok": 2}
    df = results.load(path).set_index("pass")
    assert set(df["threads"]) == {1}
    assert df.loc["backward", "bytes_moved"] == 3 * df.loc["forward", "bytes_moved"] // 2
    assert df.loc["forward", "peak_bytes_method"].startswith("rss_hwm")
    assert json.loads((path / "run.json").read_text())["meta"]["threads"] == 1


def test_the_cli_runs_a_throughput_suite(plugin_site: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["run", "--suite", str(tiny_suite(tmp_path)), "--impl", "sleepy.steady",
                 "--out", str(out), "--quiet", "--no-report", "--threads", "1"])
    assert code == 0
    captured = capsys.readouterr()
    assert f"run directory: {out} (1 ok, 1 unsupported)" in captured.out
    assert "1 intra-op threads" in captured.err and "memory bound" in captured.err


def test_pytest_runs_the_throughput_suite_directly(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_throughput.py", "-m",
         "benchmark_throughput", "--benchmark-only", "-q", "-p", "no:cacheprovider",
         "--throughput-suite", str(tiny_suite(tmp_path)), "--throughput-impl",
         "numpy.softmax_shifted", f"--benchmark-json={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed, 1 skipped" in done.stdout
    bench = json.loads(report.read_text())["benchmarks"]
    assert len(bench) == 1
    info = bench[0]["extra_info"]
    assert info["implementation"] == "numpy.softmax_shifted" and info["gbps"] > 0
    assert info["roofline_fraction"] == pytest.approx(info["gbps"] / info["copy_gbps"])
    assert bench[0]["stats"]["rounds"] >= 10  # the suite's min_rounds, through the marker


def test_the_example_throughput_suite_loads() -> None:
    suite = suites.get_suite(str(ROOT / "examples" / "suites" / "throughput-small.toml"))
    assert suite.kind == "throughput" and suite.timing["max_time"] == 0.25
    assert {c.shape for c in throughput.cases_of(suite)} == {(64, 1000), (256, 32000)}


def test_fused_versus_composed_pairs(tmp_path: Path) -> None:
    from harness.worker.loop import all_implementations

    names = {i.name for i in all_implementations()[0]}
    ops = {impl.name: impl.op for impl in all_implementations()[0]}
    for _, op, fused, composed, modes in throughput.FUSED_VS_COMPOSED:
        for mode in modes:
            assert {fused + mode, composed + mode} <= names
            assert ops[fused + mode] == ops[composed + mode] == op
    store = results.RunDirectory.create(tmp_path / "r", {"suite": "throughput"},
                                        env={"machine_fingerprint": "x"})
    base = {"op": "sparse_softmax_cross_entropy", "pass": "forward", "device": "cpu",
            "dtype": "float32", "case": "throughput[shape=4x8]", "case_family": "throughput",
            "shape": [4, 8], "status": "ok", "framework": "torch"}
    for name, median in (("torch.nn.functional.cross_entropy", 1e-3),
                         ("torch.composed_softmax_log_pick", 3e-3),
                         ("torch.nn.functional.cross_entropy@compile", 1e-3)):
        store.append({**base, "implementation": name, "median_s": median, "gbps": 1.0})
    store.finish()
    table = throughput.fused_vs_composed(results.load(tmp_path / "r"))
    assert len(table) == 1  # the @compile pair has no composed side
    row = table.iloc[0]
    assert row["mode"] == "eager" and row["speedup"] == pytest.approx(3.0)
