"""The machine and software a run measured on, captured without importing any framework.

Every key ``capture`` writes is declared once in ``METADATA`` with its type and a description
(pyperf's ``_metadata.py`` pattern): reports and comparisons look keys up there instead of
guessing. Framework versions come from package metadata (``importlib.metadata``), never from an
import; numerics state that only a live framework knows (TF32, flush-to-zero) is reported by the
workers and passed in as ``frameworks_settings``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.vocabulary import FRAMEWORK_LIST

__all__ = ["METADATA", "MetadataKey", "capture", "fingerprint", "format_value",
           "harness_version"]


@dataclass(frozen=True)
class MetadataKey:
    """One environment key: its JSON type, what it means, and how a report shows it."""

    name: str
    type: type | tuple[type, ...]
    description: str
    unit: str = ""

    def format(self, value: Any) -> str:
        if value is None:
            return "-"
        if self.unit == "bytes" and isinstance(value, int):
            return f"{value / 2**30:.1f} GiB"
        if isinstance(value, dict):
            return ", ".join(f"{k}={v}" for k, v in value.items() if v is not None) or "-"
        if isinstance(value, list):
            return ", ".join(map(str, value)) or "-"
        return str(value)


_KEYS = (
    MetadataKey("python_version", str, "Python version (platform.python_version)"),
    MetadataKey("python_implementation", str, "CPython, PyPy, ..."),
    MetadataKey("python_executable", str, "the interpreter that ran the harness"),
    MetadataKey("hostname", str, "machine name"),
    MetadataKey("os", str, "operating system and release (platform.platform)"),
    MetadataKey("os_system", str, "Linux, Darwin, Windows"),
    MetadataKey("arch", str, "machine architecture (x86_64, aarch64, ...)"),
    MetadataKey("cpu_model", str, "CPU model name (/proc/cpuinfo or platform.processor)"),
    MetadataKey("cpu_count", int, "logical CPUs in the machine"),
    MetadataKey("cpu_affinity", int, "logical CPUs this process may use"),
    MetadataKey("cpu_flags", list, "numerics-relevant CPU features (FMA, AVX2, AVX-512, ...)"),
    MetadataKey("memory_total", int, "physical memory", "bytes"),
    MetadataKey("gpus", list, "one {name, driver, memory} per GPU (nvidia-smi)"),
    MetadataKey("gpu_model", str, "model of the first GPU"),
    MetadataKey("gpu_driver", str, "NVIDIA driver version"),
    MetadataKey("gpu_reason", str, "why no GPU is listed"),
    MetadataKey("framework_versions", dict, "installed distribution versions (package metadata)"),
    MetadataKey("numerics_env", dict, "environment variables that change numerics or threads"),
    MetadataKey("frameworks_settings", dict, "per-framework numerics state from the workers "
                "(TF32, flush-to-zero, threads)"),
    MetadataKey("harness_version", str, "softmax-bench version"),
    MetadataKey("machine_fingerprint", str, "hash of CPU model, core count, GPU model and OS: "
                "runs with equal fingerprints ran on like machines"),
)
METADATA: dict[str, MetadataKey] = {key.name: key for key in _KEYS}

# Environment variables that change numerical results or the threading that timings depend on.
NUMERICS_ENV: tuple[str, ...] = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
    "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
    "TF_DETERMINISTIC_OPS", "TF_XLA_FLAGS", "XLA_FLAGS", "NVIDIA_TF32_OVERRIDE",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "CUBLAS_WORKSPACE_CONFIG", "CUDA_VISIBLE_DEVICES",
    "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION", "JAX_PLATFORMS", "DNNL_MAX_CPU_ISA",
    "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "SOFTMAX_BENCH_THREADS",
)
# Distributions whose versions matter to results besides the frameworks themselves.
_EXTRA_DISTRIBUTIONS: tuple[str, ...] = (
    "jaxlib", "optax", "ml_dtypes", "mpmath", "gmpy2", "pandas", "numpy-quaddtype",
    "nvidia-cudnn-cu12", "nvidia-cublas-cu12", "jax-cuda12-plugin",
)
_CPU_FLAGS: tuple[str, ...] = ("fma", "f16c", "avx", "avx2", "avx512f", "avx512_bf16",
                               "avx512_fp16", "amx_bf16", "amx_tile", "asimd", "fphp", "sve")

Runner = Callable[[list[str]], str]


def harness_version() -> str:
    """The installed softmax-bench's version (what ``harness.__version__`` says), read here so
    that the store imports nothing of the harness but its errors and vocabulary."""
    try:
        return metadata.version("softmax-bench")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=15, check=True).stdout


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str | None, list[str]]:
    """CPU model name and the numerics-relevant flags, from /proc/cpuinfo (Linux)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return (platform.processor() or None), []
    model: str | None = None
    flags: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if model is None and key in ("model name", "hardware", "cpu model"):
            model = value.strip() or None
        elif not flags and key in ("flags", "features"):
            present = set(value.split())
            flags = [f for f in _CPU_FLAGS if f in present]
    return model or (platform.processor() or None), flags


def meminfo_bytes(key: str, path: Path = Path("/proc/meminfo")) -> int | None:
    """One ``/proc/meminfo`` entry (``MemTotal``, ``MemAvailable``, ...) in bytes, or None
    (not Linux, or no such entry)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _memory_total(path: Path = Path("/proc/meminfo")) -> int | None:
    total = meminfo_bytes("MemTotal", path)
    if total is not None:
        return total
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _gpus(run: Runner = _run) -> tuple[list[dict[str, Any]], str | None]:
    """GPUs from nvidia-smi, or an empty list and the reason there are none."""
    if shutil.which("nvidia-smi") is None:
        return [], "nvidia-smi not found (no NVIDIA driver on this machine)"
    try:
        out = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                   "--format=csv,noheader,nounits"])
    except (OSError, subprocess.SubprocessError) as exc:
        return [], f"nvidia-smi failed: {' '.join(str(exc).split())[:200]}"
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            mem = int(parts[2]) * 2**20 if len(parts) > 2 and parts[2].isdigit() else None
            gpus.append({"name": parts[0], "driver": parts[1], "memory": mem})
    return gpus, (None if gpus else "nvidia-smi listed no GPU")


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for fw in FRAMEWORK_LIST:
        found[fw.name] = None
        for dist in fw.distributions:
            try:
                found[fw.name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    for dist in _EXTRA_DISTRIBUTIONS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def fingerprint(env: Mapping[str, Any]) -> str:
    """Hash of what makes two machines comparable: CPU model, core count, GPU model, OS."""
    parts = [env.get("cpu_model"), env.get("cpu_count"), env.get("gpu_model"),
             env.get("os_system"), env.get("arch")]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def capture(frameworks_settings: dict[str, Any] | None = None, *, run: Runner = _run
            ) -> dict[str, Any]:
    """The environment of this process as a JSON-ready dict keyed by ``METADATA``.

    ``run`` executes external commands (nvidia-smi); tests pass a fake. No framework is imported.
    """
    model, flags = _cpuinfo()
    gpus, gpu_reason = _gpus(run)
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    env: dict[str, Any] = {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "os_system": platform.system(),
        "arch": platform.machine(),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "cpu_flags": flags,
        "memory_total": _memory_total(),
        "gpus": gpus,
        "gpu_model": gpus[0]["name"] if gpus else None,
        "gpu_driver": gpus[0]["driver"] if gpus else None,
        "gpu_reason": gpu_reason,
        "framework_versions": _versions(),
        "numerics_env": {name: os.environ.get(name) for name in NUMERICS_ENV},
        "frameworks_settings": dict(frameworks_settings or {}),
        "harness_version": harness_version(),
    }
    env["machine_fingerprint"] = fingerprint(env)
    _check_types(env)
    return env


def _check_types(env: Mapping[str, Any]) -> None:
    """Every key is declared and has its declared type (or is None): a bug guard, not input."""
    for name, value in env.items():
        key = METADATA.get(name)
        if key is None:
            raise KeyError(f"environment key {name!r} is not declared in METADATA")
        if value is not None and not isinstance(value, key.type):
            raise TypeError(f"environment key {name!r} should be {key.type}, got {value!r}")


def format_value(name: str, value: Any) -> str:
    """How a report shows one environment value (unknown keys as plain text)."""
    key = METADATA.get(name)
    return key.format(value) if key is not None else ("-" if value is None else str(value))
