"""Frameworks added as plugins (entry-point group softmax_bench.adapters), with ONNX Runtime."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from harness import frameworks, vocabulary
from harness.store import load

ROOT = Path(__file__).resolve().parents[2]
ORT = "softmax_bench.contrib.onnxruntime_adapter:OnnxRuntimeAdapter"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_onnxruntime_registers_only_through_the_entry_point() -> None:
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="softmax_bench.adapters")}
    assert eps.get("onnxruntime") == ORT
    assert "onnxruntime" not in vocabulary.FRAMEWORKS  # not a built-in
    for path in (ROOT / "harness").rglob("*.py"):
        assert "onnxruntime" not in path.read_text(), path
    found = frameworks.find_framework("onnxruntime")
    assert found is not None and found.adapter == ORT and found.module == "onnxruntime"
    assert found.install_hint == "pip install 'softmax-bench[onnxruntime]'"


@pytest.mark.framework  # needs onnxruntime (make test installs it)
def test_list_shows_onnxruntime_and_its_implementations() -> None:
    out = cli("list")
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("onnxruntime "))
    assert " available " in line and metadata.version("onnxruntime") in line
    for name in ("onnxruntime.Softmax", "onnxruntime.LogSoftmax",
                 "onnxruntime.SoftmaxCrossEntropyLoss"):
        assert name in out.stdout


@pytest.mark.framework  # needs onnxruntime (make test installs it)
def test_run_records_and_report(tmp_path: Path) -> None:
    out = cli("run", "--impl", "onnxruntime.*", "--dtype", "float32", "--dtype", "bfloat16",
              "--out", str(tmp_path / "run"), "--quiet")
    assert out.returncode == 0, out.stderr
    records = load(tmp_path / "run")
    assert set(records["framework"]) == {"onnxruntime"}
    assert set(records["implementation"]) == {"onnxruntime.Softmax", "onnxruntime.LogSoftmax",
                                              "onnxruntime.SoftmaxCrossEntropyLoss"}
    forward32 = records[(records["pass"] == "forward") & (records["dtype"] == "float32")]
    assert (forward32["status"].isin(["ok", "error"])).all()
    assert (forward32["verdict"] == "pass").sum() > 20
    bf16 = records[records["dtype"] == "bfloat16"]
    assert (bf16["status"] == "unsupported").all()
    backward = records[records["pass"] == "backward"]
    assert (backward["status"] == "unsupported").all()  # inference sessions have no autodiff
    site = tmp_path / "run" / "report"
    assert "onnxruntime.Softmax" in (site / "implementations.html").read_text()
    settings = __import__("json").loads((tmp_path / "run" / "run.json").read_text())
    assert "onnxruntime" in settings["environment"]["frameworks_settings"]


BROKEN = '''
class NotAnAdapter:
    module = "json"
'''


def test_a_broken_adapter_plugin_is_unavailable_with_a_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    dist = site / "broken_fw-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-fw\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(
        "[softmax_bench.adapters]\nghostfw = no_such_module:Adapter\n"
        "fakefw = broken_fw_mod:NotAnAdapter\nnumpy = broken_fw_mod:NotAnAdapter\n")
    (site / "broken_fw_mod.py").write_text(BROKEN)
    monkeypatch.setenv("PYTHONPATH", f"{site}:{ROOT}")
    out = cli("list")
    assert out.returncode == 0, out.stderr
    lines = {ln.split(" ", 1)[0]: ln for ln in out.stdout.splitlines()}
    assert "unavailable" in lines["ghostfw"] and "No module named 'no_such_module'" in \
        lines["ghostfw"]
    assert "unavailable" in lines["fakefw"] and "is not a harness.worker.adapters.base." \
        "Adapter subclass" in lines["fakefw"]
    assert " available " in lines["numpy"]  # a plugin cannot take a built-in's name ...
    assert "adapter plugin numpy (broken_fw_mod:NotAnAdapter) cannot be used: ValueError: " \
        "the name 'numpy' is a built-in framework's" in out.stderr  # ... and is warned about
    run = cli("run", "--impl", "numpy.softmax*", "--dtype", "float32", "--no-report",
              "--quiet", "--out", str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr
    records = load(tmp_path / "run")
    assert set(records["framework"]) == {"numpy"} and (records["status"] == "ok").any()
