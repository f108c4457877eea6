"""`softmax-bench run --fn MODULE:FUNCTION --op OP [--framework NAME]`: no plugin package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store import load

ROOT = Path(__file__).resolve().parents[2]
MYMODULE = '''
import numpy as np

def my_softmax(x):
    with np.errstate(all="ignore"):
        e = np.exp(x)
        return e / e.sum(axis=-1, keepdims=True)

def my_log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))
'''


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SOFTMAX_BENCH_FN"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def here(tmp_path: Path) -> Path:
    (tmp_path / "mymodule.py").write_text(MYMODULE)
    return tmp_path


def test_run_fn_from_the_current_directory(here: Path) -> None:
    out = cli("run", "--fn", "mymodule:my_softmax", "--op", "softmax", "--dtype", "float32",
              "--out", "run", "--quiet", cwd=here)
    assert out.returncode == 0, out.stderr
    assert "report:" in out.stdout
    records = load(here / "run")
    assert set(records["implementation"]) == {"mymodule:my_softmax"}
    forward = records[records["pass"] == "forward"]
    assert (forward["status"] == "ok").all()
    assert "nan_where_finite" in set(forward[forward["case_family"] == "large_offset"]["verdict"])
    assert (here / "run" / "report" / "index.html").exists()


def test_several_fn_and_a_framework(here: Path) -> None:
    out = cli("run", "--fn", "mymodule:my_softmax", "--fn", "mymodule:my_log_softmax",
              "--op", "softmax", "--framework", "numpy", "--dtype", "float64", "--out", "run",
              "--quiet", "--no-report", cwd=here)
    assert out.returncode == 0, out.stderr
    assert set(load(here / "run")["implementation"]) == {"mymodule:my_softmax",
                                                         "mymodule:my_log_softmax"}


@pytest.mark.parametrize("args, message", [
    (["--fn", "mymodule", "--op", "softmax"], "expected MODULE:FUNCTION"),
    (["--fn", "nomodule:f", "--op", "softmax"],
     "cannot import nomodule: ModuleNotFoundError"),
    (["--fn", "mymodule:missing", "--op", "softmax"], "module mymodule has no 'missing'"),
    (["--fn", "mymodule:my_softmax", "--op", "sofmax"], "invalid choice: 'sofmax'"),
    (["--fn", "mymodule:my_softmax"], "--fn needs --op"),
    (["--op", "softmax"], "--op and --framework go with --fn"),
    (["--fn", "mymodule:my_softmax", "--op", "softmax", "--framework", "nope"],
     "--framework 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(here: Path, args: list[str], message: str) -> None:
    out = cli("run", *args, "--out", "run", "--quiet", cwd=here)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softmax-bench: error: "), out.stderr
    assert message in lines[0]
    assert not (here / "run").exists()


def test_an_import_error_inside_the_module(here: Path) -> None:
    (here / "broken.py").write_text("import numpy\nraise RuntimeError('boom at import')\n")
    out = cli("run", "--fn", "broken:f", "--op", "softmax", "--out", "run", cwd=here)
    assert out.returncode == 2
    assert out.stderr.strip() == ("softmax-bench: error: --fn broken:f: cannot import broken: "
                                  "RuntimeError: boom at import")
