"""verify / assert_verified: a function over a suite's cases, through the harness's engine."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from harness.store import FIELDS, load
from softmax_bench.testing import assert_verified, verify


def naive_softmax(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        e = np.exp(x)
        return e / e.sum(axis=-1, keepdims=True)


def stable_softmax(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        m = np.max(x, axis=-1, keepdims=True, initial=-np.inf)
        e = np.exp(x - np.where(np.isfinite(m), m, 0))
        return e / e.sum(axis=-1, keepdims=True)


def test_naive_softmax_fails_and_names_large_offset() -> None:
    result = verify(naive_softmax, "softmax")  # a local function: in process
    assert not result.passed and not result
    assert "large_offset" in set(result.failures["case_family"])
    text = str(result)
    assert "large_offset:" in text and "nan_where_finite" in text
    assert "got nan" in text and "input row" in text
    with pytest.raises(AssertionError, match="large_offset"):
        assert_verified(naive_softmax, "softmax")


def test_records_have_the_store_columns_and_every_quick_case() -> None:
    from softmax_bench.testing import cases

    result = verify(stable_softmax, "softmax")
    assert result.passed, str(result)
    assert {f.name for f in FIELDS} <= set(result.records.columns)
    assert set(result.records["case"]) == {c.case_id for c in cases("softmax")}
    assert set(result.records["pass"]) == {"forward"}
    assert result.records["implementation"].iloc[0].endswith(":stable_softmax")


def test_out_keeps_a_run_directory_the_store_loads(tmp_path: Path) -> None:
    result = verify(stable_softmax, "log_softmax", dtypes=("float64",), out=tmp_path / "run")
    assert result.run_dir == tmp_path / "run"
    assert len(load(tmp_path / "run")) == len(result.records)


@pytest.mark.framework
def test_torch_function_forward_and_backward() -> None:
    import torch

    result = verify(lambda x: torch.softmax(x, -1), "softmax", framework="torch",
                    passes=("forward", "backward"))
    assert set(result.records["pass"]) == {"forward", "backward"}
    assert (result.records["status"] == "ok").all()


def test_numpy_backward_is_unsupported_not_failing() -> None:
    result = verify(stable_softmax, "softmax", passes=("backward",))
    assert set(result.records["status"]) == {"unsupported"}
    assert result.passed


def test_isolated_runs_in_a_worker_process(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kernel_mod.py").write_text(
        "import os\nimport numpy as np\nPIDS = []\n"
        "def softmax(x):\n"
        "    open(os.environ['PIDFILE'], 'a').write(f'{os.getpid()}\\n')\n"
        "    with np.errstate(all='ignore'):\n"
        "        e = np.exp(x)\n"
        "        return e / e.sum(axis=-1, keepdims=True)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("PIDFILE", str(pidfile))
    import kernel_mod

    result = verify(kernel_mod.softmax, "softmax", isolated=True)
    assert result.records["implementation"].iloc[0] == "kernel_mod:softmax"
    assert "large_offset" in set(result.failures["case_family"])
    pids = {int(p) for p in pidfile.read_text().split()}
    assert pids and sys.modules["os"].getpid() not in pids
    sys.modules.pop("kernel_mod", None)


def test_isolated_needs_an_importable_function() -> None:
    def local(x: np.ndarray) -> np.ndarray:
        return x

    with pytest.raises(ValueError, match="importable module"):
        verify(local, "softmax", isolated=True)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown op"):
        verify(stable_softmax, "softmaxx")
    with pytest.raises(ValueError, match="dtype"):
        verify(stable_softmax, "softmax", dtypes=("float8",))
