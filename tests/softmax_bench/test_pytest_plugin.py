"""The pytest plugin (pytest11 entry point) and the worked examples in examples/kernels."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from softmax_bench.testing import cases

ROOT = Path(__file__).resolve().parents[2]


def pytest_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def test_registered_through_pytest11() -> None:
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
    assert eps.get("softmax_bench") == "softmax_bench.pytest_plugin"


def test_plugin_imports_nothing_heavy_at_startup() -> None:
    code = ("import sys, softmax_bench.pytest_plugin; "
            "print(sorted(m for m in ('numpy', 'harness', 'references', 'torch', 'jax', "
            "'tensorflow', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_fixture_expands_over_every_quick_case(tmp_path: Path) -> None:
    (tmp_path / "test_k.py").write_text(
        "import pytest\n"
        "@pytest.mark.softmax_cases(op='log_softmax', suite='quick', dtypes=('float32',))\n"
        "def test_k(softmax_case):\n"
        "    assert softmax_case.op == 'log_softmax' and softmax_case.dtype == 'float32'\n")
    out = pytest_run("--collect-only", "-q", "test_k.py", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [line.split("[", 1)[1][:-1] for line in out.stdout.splitlines()
           if line.startswith("test_k.py::test_k[")]
    assert ids == [c.case_id for c in cases("log_softmax", suite="quick", dtypes="float32")]


def test_several_dtypes_families_and_a_useful_failure(tmp_path: Path) -> None:
    (tmp_path / "test_k.py").write_text(
        "import numpy as np, pytest\n"
        "@pytest.mark.softmax_cases(op='softmax', dtypes=('float32', 'float16'),\n"
        "                           families=['large_offset', 'smoke_small'])\n"
        "def test_naive(softmax_case):\n"
        "    with np.errstate(all='ignore'):\n"
        "        e = np.exp(softmax_case.x)\n"
        "    softmax_case.check(e / e.sum(-1, keepdims=True))\n"
        "def test_no_marker(softmax_case):\n"
        "    pass\n")
    out = pytest_run("-v", "test_k.py", cwd=tmp_path)
    text = out.stdout
    assert out.returncode == 1, text
    assert "test_naive[large_offset[c=0.9max,C=2,rows=8]-float32] FAILED" in text, text
    assert "test_naive[smoke_small[tf=kernel_test,rows=8]-float32] PASSED" in text, text
    assert "nan_where_finite" in text and "get_case('large_offset" in text
    assert "test_no_marker ERROR" in text and "needs @pytest.mark.softmax_cases" in text


def test_the_worked_examples_pass(tmp_path: Path) -> None:
    """examples/kernels: the NumPy kernel's tests pass; the Triton ones run on CUDA only."""
    out = pytest_run("-rs", "-q", str(ROOT / "examples" / "kernels"), cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
    import importlib.util

    if importlib.util.find_spec("triton") is None:
        assert "triton is not installed" in out.stdout


@pytest.mark.parametrize("bad, message", [
    ("op='sofmax'", "unknown op"),
    ("op='softmax', families=['nope']", "unknown case families"),
    ("op='softmax', colour='red'", "unknown arguments"),
])
def test_bad_marker_is_a_usage_error(tmp_path: Path, bad: str, message: str) -> None:
    (tmp_path / "test_k.py").write_text(
        f"import pytest\n@pytest.mark.softmax_cases({bad})\n"
        "def test_k(softmax_case):\n    pass\n")
    out = pytest_run("-q", "test_k.py", cwd=tmp_path)
    assert out.returncode != 0 and message in out.stdout + out.stderr
