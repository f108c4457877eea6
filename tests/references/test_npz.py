"""references.npz: every .npz read of the project goes through one lock (CPython 3.11's AST
constructor, used by NumPy's header parser, is not safe from two threads at once)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import numpy as np

from references import npz

ROOT = Path(__file__).resolve().parents[2]


def test_read_gives_every_array_back(tmp_path: Path) -> None:
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2], dtype=np.int8)}
    np.savez(tmp_path / "x.npz", **arrays)  # type: ignore[arg-type]
    got = npz.read(tmp_path / "x.npz")
    assert list(got) == ["a", "b"]
    for name, arr in arrays.items():
        assert got[name].dtype == arr.dtype and np.array_equal(got[name], arr)


def test_many_threads_read_at_once(tmp_path: Path) -> None:
    path = tmp_path / "many.npz"
    np.savez(path, **{f"a{k}": np.full((k + 1, 3), k, dtype=np.float32)  # type: ignore[arg-type]
                      for k in range(40)})
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(50):
                assert len(npz.read(path)) == 40
        except BaseException as exc:  # noqa: BLE001 - any failure is the test's answer
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_no_other_module_calls_np_load() -> None:
    """np.load outside references/npz.py would bypass the lock."""
    offenders = []
    for package in ("references", "harness", "reports", "softmax_bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "references" / "npz.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "load" and isinstance(node.func.value, ast.Name)
                        and node.func.value.id in ("np", "numpy")):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
