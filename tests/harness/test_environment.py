"""harness.store.environment: captured without importing any framework, typed by one registry."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store import environment

REPO_ROOT = Path(__file__).resolve().parents[2]
# numpy is the harness's own dependency (references need it); these are the frameworks proper.
FRAMEWORK_MODULES = ("scipy", "torch", "tensorflow", "jax", "jaxlib", "optax")


def no_gpu(cmd: list[str]) -> str:
    raise FileNotFoundError("nvidia-smi")


def test_capture_imports_no_framework() -> None:
    code = ("import json, sys\n"
            "from harness.store import environment\n"
            "env = environment.capture({'torch': {'tf32': False}})\n"
            f"loaded = [m for m in {FRAMEWORK_MODULES!r} if m in sys.modules]\n"
            "print(json.dumps({'loaded': loaded, 'env': env}))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    out = json.loads(done.stdout)
    assert out["loaded"] == []
    assert out["env"]["frameworks_settings"] == {"torch": {"tf32": False}}


def test_module_itself_imports_nothing_numeric() -> None:
    tree = ast.parse(Path(environment.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"numpy", "pandas", *FRAMEWORK_MODULES}


def test_every_key_is_declared_with_its_type() -> None:
    env = environment.capture()
    assert set(env) == set(environment.METADATA)
    for name, value in env.items():
        key = environment.METADATA[name]
        assert value is None or isinstance(value, key.type), name
    json.dumps(env, allow_nan=False)
    assert env["python_version"].count(".") == 2
    assert env["cpu_count"] >= 1
    assert "OMP_NUM_THREADS" in env["numerics_env"] and "XLA_FLAGS" in env["numerics_env"]
    assert "numpy" in env["framework_versions"]


def test_gpu_fields_come_from_nvidia_smi_or_say_why_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    env = environment.capture(run=lambda cmd: "NVIDIA H100 80GB HBM3, 550.54.15, 81559\n")
    assert env["gpu_model"] == "NVIDIA H100 80GB HBM3" and env["gpu_driver"] == "550.54.15"
    assert env["gpus"][0]["memory"] == 81559 * 2**20 and env["gpu_reason"] is None
    failed = environment.capture(run=no_gpu)
    assert failed["gpu_model"] is None and "nvidia-smi failed" in failed["gpu_reason"]
    monkeypatch.setattr(environment.shutil, "which", lambda name: None)
    absent = environment.capture()
    assert absent["gpus"] == [] and "not found" in absent["gpu_reason"]


def test_fingerprint_tracks_the_machine_not_the_software(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setattr(environment.shutil, "which", lambda name: None)
    env = environment.capture()
    other_software = {**env, "python_version": "3.99.0", "framework_versions": {}}
    assert environment.fingerprint(other_software) == env["machine_fingerprint"]
    assert environment.fingerprint({**env, "gpu_model": "NVIDIA H200"}) != env[
        "machine_fingerprint"]
    assert environment.fingerprint({**env, "cpu_count": 2 * env["cpu_count"]}) != env[
        "machine_fingerprint"]


def test_format_value_uses_the_registry() -> None:
    assert environment.format_value("memory_total", 2 * 2**30) == "2.0 GiB"
    assert environment.format_value("numerics_env", {"A": "1", "B": None}) == "A=1"
    assert environment.format_value("gpu_model", None) == "-"
    assert environment.format_value("not_a_key", 3) == "3"
